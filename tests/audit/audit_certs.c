/* audit_certs.c -- extra test certificates and CRLs (see audit_certs.h). */
#include "audit_certs.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static X509 *read_cert(const char *path) {
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    if (!x) fprintf(stderr, "audit_certs: cannot read certificate %s\n", path);
    return x;
}

static EVP_PKEY *read_key(const char *path) {
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    if (!k) fprintf(stderr, "audit_certs: cannot read key %s\n", path);
    return k;
}

/* The CA of ca_dir: its certificate and key. */
static int load_ca(const char *ca_dir, X509 **ca, EVP_PKEY **key) {
    char p[512];
    snprintf(p, sizeof p, "%s/ca.pem", ca_dir);
    *ca = read_cert(p);
    snprintf(p, sizeof p, "%s/ca.key", ca_dir);
    *key = read_key(p);
    return *ca && *key ? 0 : -1;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int rc = e && X509_add_ext(x, e, -1) == 1 ? 0 : -1;
    X509_EXTENSION_free(e);
    if (rc) fprintf(stderr, "audit_certs: extension %d '%s' refused\n", nid, value);
    return rc;
}

int certs_make(const char *ca_dir, const char *dir, const char *name, const char *cn, const char *san, bool server,
               long serial) {
    X509 *ca = NULL, *x = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;
    int rc = -1;
    char path[512];
    if (load_ca(ca_dir, &ca, &ca_key) != 0) goto out;
    if (!(key = EVP_EC_gen("P-256")) || !(x = X509_new())) goto out;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 30);
    X509_set_pubkey(x, key);
    X509_NAME *subject = X509_get_subject_name(x);
    if (cn && X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) != 1)
        goto out;
    X509_set_issuer_name(x, X509_get_subject_name(ca));
    if (add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        add_ext(x, ca, NID_key_usage, "critical,digitalSignature") != 0 ||
        add_ext(x, ca, NID_ext_key_usage, server ? "serverAuth" : "clientAuth") != 0 ||
        (san && add_ext(x, ca, NID_subject_alt_name, san) != 0))
        goto out;
    if (X509_sign(x, ca_key, EVP_sha256()) <= 0) goto out;
    snprintf(path, sizeof path, "%s/%s.pem", dir, name);
    FILE *f = fopen(path, "w");
    if (!f || PEM_write_X509(f, x) != 1) {
        if (f) fclose(f);
        goto out;
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    f = fopen(path, "w");
    if (!f || PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1) {
        if (f) fclose(f);
        goto out;
    }
    fclose(f);
    chmod(path, 0600);
    rc = 0;
out:
    if (rc) fprintf(stderr, "audit_certs: cannot make certificate %s in %s\n", name, dir);
    X509_free(ca), X509_free(x);
    EVP_PKEY_free(ca_key), EVP_PKEY_free(key);
    return rc;
}

int certs_make_crl(const char *ca_dir, const char *out, const char *const *revoked, int n, long next_update_s) {
    X509 *ca = NULL;
    EVP_PKEY *ca_key = NULL;
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *now = ASN1_TIME_new(), *next = ASN1_TIME_new();
    int rc = -1;
    if (!crl || !now || !next || load_ca(ca_dir, &ca, &ca_key) != 0) goto out;
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
    X509_gmtime_adj(now, next_update_s < 0 ? next_update_s - 3600 : -60);
    X509_gmtime_adj(next, next_update_s);
    X509_CRL_set1_lastUpdate(crl, now);
    X509_CRL_set1_nextUpdate(crl, next);
    for (int i = 0; i < n; i++) {
        X509 *x = read_cert(revoked[i]);
        X509_REVOKED *r = X509_REVOKED_new();
        if (!x || !r) {
            X509_free(x), X509_REVOKED_free(r);
            goto out;
        }
        X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(x));
        X509_REVOKED_set_revocationDate(r, now);
        X509_CRL_add0_revoked(crl, r);
        X509_free(x);
    }
    X509_CRL_sort(crl);
    if (X509_CRL_sign(crl, ca_key, EVP_sha256()) <= 0) goto out;
    FILE *f = fopen(out, "w");
    if (!f || PEM_write_X509_CRL(f, crl) != 1) {
        if (f) fclose(f);
        goto out;
    }
    rc = fclose(f) == 0 ? 0 : -1;
out:
    if (rc) fprintf(stderr, "audit_certs: cannot make CRL %s\n", out);
    X509_CRL_free(crl), X509_free(ca), EVP_PKEY_free(ca_key);
    ASN1_TIME_free(now), ASN1_TIME_free(next);
    return rc;
}

int certs_spki_pin(const char *cert_path, char out[64]) {
    X509 *x = read_cert(cert_path);
    if (!x) return -1;
    unsigned char *der = NULL, digest[SHA256_DIGEST_LENGTH];
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    X509_free(x);
    if (len <= 0) return -1;
    SHA256(der, (size_t)len, digest);
    OPENSSL_free(der);
    EVP_EncodeBlock((unsigned char *)out, digest, sizeof digest);
    return 0;
}
