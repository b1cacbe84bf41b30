/* client_auth.c -- the allow-list and CRL check of mTLS clients (see
 * client_auth.h). The certificate is taken from the call's auth context as
 * PEM (the leaf gRPC verified) and parsed with OpenSSL only when a worker
 * meets it for the first time. */
#include "client_auth.h"

#include <grpc/grpc_security_constants.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"

#define PIN_LEN SHA256_DIGEST_LENGTH
#define CACHE_SLOTS 16 /* certificates remembered per worker */
#define WHO_MAX 160    /* names kept for the log */

struct client_auth {
    char **names; /* --allow-client */
    size_t n_names;
    uint8_t (*pins)[PIN_LEN]; /* --allow-client-spki, decoded */
    size_t n_pins;
    X509_CRL **crls; /* --tls-client-crl, each verified against the CA bundle */
    size_t n_crls;
};

typedef struct cache_slot {
    bool used;
    uint8_t digest[SHA256_DIGEST_LENGTH]; /* of the certificate's PEM text */
    client_verdict verdict;
    char who[WHO_MAX];
} cache_slot;

struct client_auth_cache {
    const client_auth *a;
    cache_slot slot[CACHE_SLOTS];
    size_t next; /* slot replaced next (round robin) */
};

const char *client_verdict_name(client_verdict v) {
    static const char *const names[CLIENT_VERDICTS] = {"allowed", "not_allowed", "revoked", "no_certificate"};
    return (unsigned)v < CLIENT_VERDICTS ? names[v] : "unknown";
}

/* ------------------------------------------------------------- the rules */

static int decode_pin(const char *text, uint8_t out[PIN_LEN]) {
    size_t len = strlen(text);
    /* 32 bytes are 44 base64 characters, the last one '='. */
    if (len != 44 || text[43] != '=' || text[42] == '=') return -1;
    unsigned char buf[48];
    if (EVP_DecodeBlock(buf, (const unsigned char *)text, (int)len) != 33) return -1;
    memcpy(out, buf, PIN_LEN);
    return 0;
}

/* Reads every CRL of the PEM text; each must be signed by a CA of ca_pem. */
static int load_crls(client_auth *a, const char *crl_pem, const char *ca_pem, bool *stale, char *err, size_t errlen) {
    STACK_OF(X509_INFO) *cas = NULL;
    BIO *cb = BIO_new_mem_buf(ca_pem, -1), *rb = BIO_new_mem_buf(crl_pem, -1);
    int rc = -1;
    if (!cb || !rb || !(cas = PEM_X509_INFO_read_bio(cb, NULL, NULL, NULL))) {
        err_set(err, errlen, "--tls-client-ca: cannot read its certificates");
        goto out;
    }
    for (X509_CRL *crl; (crl = PEM_read_bio_X509_CRL(rb, NULL, NULL, NULL));) {
        X509_CRL **grown = realloc(a->crls, (a->n_crls + 1) * sizeof *grown);
        if (!grown) {
            X509_CRL_free(crl);
            err_set(err, errlen, "out of memory");
            goto out;
        }
        a->crls = grown;
        a->crls[a->n_crls++] = crl;
        bool signed_by_ca = false;
        for (int i = 0; i < sk_X509_INFO_num(cas) && !signed_by_ca; i++) {
            X509 *ca = sk_X509_INFO_value(cas, i)->x509;
            EVP_PKEY *key = ca ? X509_get0_pubkey(ca) : NULL;
            signed_by_ca = key && X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) == 0 &&
                           X509_CRL_verify(crl, key) == 1;
        }
        if (!signed_by_ca) {
            char issuer[128];
            X509_NAME_oneline(X509_CRL_get_issuer(crl), issuer, sizeof issuer);
            err_set(err, errlen, "--tls-client-crl: CRL %zu (issuer %s) is not signed by a CA of --tls-client-ca",
                    a->n_crls, issuer);
            goto out;
        }
        const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
        if (next && X509_cmp_current_time(next) < 0) *stale = true;
    }
    ERR_clear_error(); /* the loop ends on "no start line" */
    if (a->n_crls == 0) err_set(err, errlen, "--tls-client-crl: no PEM X509 CRL in the file");
    else rc = 0;
out:
    sk_X509_INFO_pop_free(cas, X509_INFO_free);
    BIO_free(cb);
    BIO_free(rb);
    return rc;
}

client_auth *client_auth_new(const char *const *names, size_t n_names, const char *const *pins, size_t n_pins,
                             const char *crl_pem, const char *ca_pem, bool *stale_crl, char *err, size_t errlen) {
    *stale_crl = false;
    client_auth *a = calloc(1, sizeof *a);
    if (!a || (n_names && !(a->names = calloc(n_names, sizeof *a->names))) ||
        (n_pins && !(a->pins = calloc(n_pins, sizeof *a->pins)))) {
        err_set(err, errlen, "out of memory");
        client_auth_free(a);
        return NULL;
    }
    for (size_t i = 0; i < n_names; i++) {
        if (!names[i][0] || strlen(names[i]) > 255) {
            err_set(err, errlen, "--allow-client: a name must be 1-255 characters, got '%.40s'", names[i]);
            client_auth_free(a);
            return NULL;
        }
        if (!(a->names[a->n_names++] = strdup(names[i]))) {
            err_set(err, errlen, "out of memory");
            client_auth_free(a);
            return NULL;
        }
    }
    for (size_t i = 0; i < n_pins; i++) {
        if (decode_pin(pins[i], a->pins[a->n_pins++]) != 0) {
            err_set(err, errlen,
                    "--allow-client-spki: '%.60s' is not the base64 SHA-256 of a public key (44 characters "
                    "ending in '=')",
                    pins[i]);
            client_auth_free(a);
            return NULL;
        }
    }
    if (crl_pem && load_crls(a, crl_pem, ca_pem, stale_crl, err, errlen) != 0) {
        client_auth_free(a);
        return NULL;
    }
    return a;
}

void client_auth_free(client_auth *a) {
    if (!a) return;
    for (size_t i = 0; i < a->n_names; i++) free(a->names[i]);
    for (size_t i = 0; i < a->n_crls; i++) X509_CRL_free(a->crls[i]);
    free(a->names), free(a->pins), free(a->crls);
    free(a);
}

bool client_auth_restricted(const client_auth *a) { return a->n_names > 0 || a->n_pins > 0; }

size_t client_auth_crls(const client_auth *a) { return a->n_crls; }

/* -------------------------------------------------------- one certificate */

/* The names a certificate carries, appended to `who` for the log. */
static void who_add(char *who, size_t cap, const char *kind, const char *name, size_t len) {
    size_t n = strlen(who);
    if (n + 1 >= cap) return;
    snprintf(who + n, cap - n, "%s%s:%.*s", n ? "," : "", kind, (int)len, name);
}

static bool name_allowed(const client_auth *a, const char *name, size_t len) {
    for (size_t i = 0; i < a->n_names; i++)
        if (strlen(a->names[i]) == len && memcmp(a->names[i], name, len) == 0) return true;
    return false;
}

/* CN entries and DNS/URI SANs: true when one is on the allow-list. */
static bool names_match(const client_auth *a, X509 *x, char *who, size_t wholen) {
    bool match = false;
    X509_NAME *subject = X509_get_subject_name(x);
    for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
        const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
        const char *v = (const char *)ASN1_STRING_get0_data(s);
        size_t len = (size_t)ASN1_STRING_length(s);
        who_add(who, wholen, "cn", v, len);
        match |= memchr(v, '\0', len) == NULL && name_allowed(a, v, len);
    }
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type != GEN_DNS && g->type != GEN_URI) continue;
        const ASN1_IA5STRING *s = g->type == GEN_DNS ? g->d.dNSName : g->d.uniformResourceIdentifier;
        const char *v = (const char *)ASN1_STRING_get0_data(s);
        size_t len = (size_t)ASN1_STRING_length(s);
        who_add(who, wholen, g->type == GEN_DNS ? "dns" : "uri", v, len);
        /* An embedded NUL would let "a\0b" pass as "a": never a match. */
        match |= memchr(v, '\0', len) == NULL && name_allowed(a, v, len);
    }
    GENERAL_NAMES_free(sans);
    return match;
}

static bool pin_matches(const client_auth *a, X509 *x) {
    if (a->n_pins == 0) return false;
    unsigned char *der = NULL;
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    if (len <= 0) return false;
    uint8_t digest[PIN_LEN];
    SHA256(der, (size_t)len, digest);
    OPENSSL_free(der);
    for (size_t i = 0; i < a->n_pins; i++)
        if (CRYPTO_memcmp(digest, a->pins[i], PIN_LEN) == 0) return true;
    return false;
}

static bool revoked(const client_auth *a, X509 *x) {
    for (size_t i = 0; i < a->n_crls; i++) {
        X509_REVOKED *entry = NULL;
        if (X509_NAME_cmp(X509_CRL_get_issuer(a->crls[i]), X509_get_issuer_name(x)) == 0 &&
            X509_CRL_get0_by_cert(a->crls[i], &entry, x) == 1)
            return true;
    }
    return false;
}

static client_verdict decide(const client_auth *a, const char *pem, size_t len, char *who, size_t wholen) {
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!x) return CLIENT_NO_CERTIFICATE;
    bool named = names_match(a, x, who, wholen);
    client_verdict v = CLIENT_ALLOWED;
    if (revoked(a, x)) v = CLIENT_REVOKED;
    else if (client_auth_restricted(a) && !named && !pin_matches(a, x)) v = CLIENT_NOT_ALLOWED;
    X509_free(x);
    return v;
}

/* ----------------------------------------------------------- per worker */

client_auth_cache *client_auth_cache_new(const client_auth *a) {
    client_auth_cache *c = calloc(1, sizeof *c);
    if (c) c->a = a;
    return c;
}

void client_auth_cache_free(client_auth_cache *c) { free(c); }

typedef struct pem_ref {
    uint8_t digest[SHA256_DIGEST_LENGTH];
    char *pem; /* copied: the property is valid only during the callback */
    size_t len;
    bool seen;
} pem_ref;

static bool take_pem(const char *value, size_t len, void *arg) {
    pem_ref *p = arg;
    SHA256((const unsigned char *)value, len, p->digest);
    p->seen = true;
    if ((p->pem = malloc(len))) {
        memcpy(p->pem, value, len);
        p->len = len;
    }
    return false; /* the leaf only */
}

client_verdict client_auth_check(client_auth_cache *c, rpc_ctx *ctx, char *who, size_t wholen, bool *first) {
    *first = false;
    who[0] = '\0';
    /* Nothing configured: the handshake's chain check is all there is. */
    if (!client_auth_restricted(c->a) && c->a->n_crls == 0) return CLIENT_ALLOWED;
    pem_ref p = {.seen = false};
    rpc_ctx_peer_properties(ctx, GRPC_X509_PEM_CERT_PROPERTY_NAME, take_pem, &p);
    if (!p.seen) return CLIENT_NO_CERTIFICATE;
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        const cache_slot *s = &c->slot[i];
        if (s->used && memcmp(s->digest, p.digest, sizeof p.digest) == 0) {
            free(p.pem);
            snprintf(who, wholen, "%s", s->who);
            return s->verdict;
        }
    }
    if (!p.pem) return CLIENT_NO_CERTIFICATE; /* out of memory: refuse rather than guess */
    cache_slot *s = &c->slot[c->next];
    c->next = (c->next + 1) % CACHE_SLOTS;
    s->who[0] = '\0';
    s->verdict = decide(c->a, p.pem, p.len, s->who, sizeof s->who);
    memcpy(s->digest, p.digest, sizeof p.digest);
    s->used = true;
    free(p.pem);
    *first = true;
    snprintf(who, wholen, "%s", s->who);
    return s->verdict;
}
