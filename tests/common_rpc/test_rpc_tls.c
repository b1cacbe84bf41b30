/* test_rpc_tls.c -- server TLS and mutual TLS on the rpc runtime.
 *
 * The certificates are made here with the OpenSSL API, in memory, for each
 * run: a CA, a server certificate for "localhost" and a client certificate
 * with CN "installer-7" signed by it, plus a second, unrelated CA with a
 * client certificate of its own. Nothing touches the disk. */
#include "echo_service.h"
#include "rpc_client.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pem_pair {
    char *cert;                   /* PEM certificate */
    char *key;                    /* PEM private key (PKCS#8) */
    X509 *x509;                   /* kept to sign others with (CAs) */
    EVP_PKEY *pkey;
} pem_pair;

static pem_pair g_ca, g_server, g_client, g_other_ca, g_other_client;

static char *bio_string(BIO *b) {
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = strndup(data, (size_t)n);
    BIO_free(b);
    return s;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A P-256 key and a certificate for it, self-signed when issuer is NULL. */
static pem_pair make_cert(const char *cn, const pem_pair *issuer, bool ca, const char *san) {
    static long serial = 1;
    pem_pair p = {0};
    p.pkey = EVP_EC_gen("P-256");
    assert_non_null(p.pkey);
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, p.pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->x509) : name);
    X509 *signer = issuer ? issuer->x509 : x;
    add_ext(x, signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, signer, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_ext(x, signer, NID_subject_key_identifier, "hash");
    if (issuer) add_ext(x, signer, NID_authority_key_identifier, "keyid");
    if (!ca) add_ext(x, signer, NID_ext_key_usage, "serverAuth,clientAuth");
    if (san) add_ext(x, signer, NID_subject_alt_name, san);
    assert_true(X509_sign(x, issuer ? issuer->pkey : p.pkey, EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    p.cert = bio_string(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, p.pkey, NULL, NULL, 0, NULL, NULL);
    p.key = bio_string(b);
    p.x509 = x;
    return p;
}

static void pem_free(pem_pair *p) {
    free(p->cert);
    free(p->key);
    X509_free(p->x509);
    EVP_PKEY_free(p->pkey);
}

static int group_setup(void **state) {
    g_ca = make_cert("Test Root CA", NULL, true, NULL);
    g_server = make_cert("localhost", &g_ca, false, "DNS:localhost");
    g_client = make_cert("installer-7", &g_ca, false, NULL);
    g_other_ca = make_cert("Other Root CA", NULL, true, NULL);
    g_other_client = make_cert("intruder", &g_other_ca, false, NULL);
    return 0;
}

static int group_teardown(void **state) {
    pem_free(&g_ca);
    pem_free(&g_server);
    pem_free(&g_client);
    pem_free(&g_other_ca);
    pem_free(&g_other_client);
    return 0;
}

/* Whoami over a fresh channel; returns the status and the answer. */
static grpc_status_code whoami(const char *target, const rpc_client_tls *tls, char *out, size_t cap) {
    rpc_channel *ch = rpc_channel_new(target, tls);
    assert_non_null(ch);
    rpc_client_method *m = rpc_channel_method(ch, "/test.v1.Echo/Whoami");
    rpc_result r;
    grpc_status_code st = rpc_call(ch, m, (const uint8_t *)"", 0, 5000, &r);
    snprintf(out, cap, "%.*s", (int)r.body_len, r.body ? (const char *)r.body : "");
    if (st != GRPC_STATUS_OK) snprintf(out, cap, "%s", r.message);
    rpc_result_clear(&r);
    rpc_channel_free(ch);
    return st;
}

static rpc_server *start(const rpc_tls_config *tls, char *target, size_t cap) {
    const char *listen[] = {"127.0.0.1:0"};
    rpc_server *s = echo_start(listen, 1, 1, tls);
    snprintf(target, cap, "127.0.0.1:%d", rpc_server_port(s, 0));
    return s;
}

static void test_mutual_tls(void **state) {
    rpc_tls_config tls = {.cert_pem = g_server.cert, .key_pem = g_server.key, .client_ca_pem = g_ca.cert};
    char target[64], who[256];
    rpc_server *s = start(&tls, target, sizeof target);

    rpc_client_tls good = {.ca_pem = g_ca.cert, .cert_pem = g_client.cert, .key_pem = g_client.key,
                           .target_name_override = "localhost"};
    assert_int_equal(whoami(target, &good, who, sizeof who), GRPC_STATUS_OK);
    assert_string_equal(who, "127.0.0.1|installer-7|4242");

    assert_int_equal(whoami(target, NULL, who, sizeof who), GRPC_STATUS_UNAVAILABLE);

    rpc_client_tls no_cert = {.ca_pem = g_ca.cert, .target_name_override = "localhost"};
    assert_int_equal(whoami(target, &no_cert, who, sizeof who), GRPC_STATUS_UNAVAILABLE);

    rpc_client_tls foreign = {.ca_pem = g_ca.cert, .cert_pem = g_other_client.cert,
                              .key_pem = g_other_client.key, .target_name_override = "localhost"};
    assert_int_equal(whoami(target, &foreign, who, sizeof who), GRPC_STATUS_UNAVAILABLE);

    /* and a client that does not trust the server's CA refuses it */
    rpc_client_tls distrust = {.ca_pem = g_other_ca.cert, .cert_pem = g_client.cert, .key_pem = g_client.key,
                               .target_name_override = "localhost"};
    assert_int_equal(whoami(target, &distrust, who, sizeof who), GRPC_STATUS_UNAVAILABLE);

    assert_int_equal(rpc_server_shutdown(s, 2000), 0);
}

static void test_server_tls_only(void **state) {
    rpc_tls_config tls = {.cert_pem = g_server.cert, .key_pem = g_server.key};
    char target[64], who[256];
    rpc_server *s = start(&tls, target, sizeof target);
    rpc_client_tls anon = {.ca_pem = g_ca.cert, .target_name_override = "localhost"};
    assert_int_equal(whoami(target, &anon, who, sizeof who), GRPC_STATUS_OK);
    assert_string_equal(who, "127.0.0.1|-|4242");
    assert_int_equal(whoami(target, NULL, who, sizeof who), GRPC_STATUS_UNAVAILABLE);
    assert_int_equal(rpc_server_shutdown(s, 2000), 0);
}

static void test_mismatched_key_refused_at_start(void **state) {
    rpc_tls_config tls = {.cert_pem = g_server.cert, .key_pem = g_client.key};
    const char *listen[] = {"127.0.0.1:0"};
    rpc_server_config cfg = {.listen = listen, .n_listen = 1, .workers = 1, .tls = &tls};
    char err[256];
    assert_null(rpc_server_start(&cfg, echo_methods, echo_n_methods, err, sizeof err));
    assert_non_null(strstr(err, "does not match"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutual_tls),
        cmocka_unit_test(test_server_tls_only),
        cmocka_unit_test(test_mismatched_key_refused_at_start),
    };
    grpc_init();
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    rpc_client_thread_done();
    grpc_shutdown();
    return failed;
}
