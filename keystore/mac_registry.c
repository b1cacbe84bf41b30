/* mac_registry.c -- security values from OpenSSL 3 EVP_MAC, by algorithm ID.
 *
 * Why it looks like this:
 * - The registry is a small table (ID, name, EVP_MAC name, parameter, output
 *   size), so a new algorithm is one row, and a group's record names its row.
 * - The expensive part of a MAC key (HMAC's inner/outer pad states, CMAC's
 *   AES key schedule and subkeys) is done once in mac_key_new. Every call
 *   then re-initialises the same EVP_MAC_CTX with a NULL key, which OpenSSL 3
 *   documents as "reuse the key already set". bench/keystore_bench measured
 *   this against duplicating a keyed template context (EVP_MAC_CTX_dup) per
 *   call; re-init was faster (the bench prints both).
 * - Security values are compared as big-endian bytes with CRYPTO_memcmp, so
 *   the time taken does not depend on where a forged value first differs.
 * - HMAC accepts any non-empty key length (RFC 4231's test keys are 4 to 131
 *   bytes); production secrets are MAC_SECRET_LEN bytes. AES-256-CMAC takes
 *   exactly 32. */
#include "mac_registry.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One row per algorithm this build knows. */
typedef struct mac_alg_info {
    int id;                  /* the number stored in a group's verification record */
    const char *name;        /* the name the CLI and records print */
    const char *evp_name;    /* EVP_MAC_fetch name */
    const char *param_name;  /* the one parameter the MAC needs (digest or cipher) */
    const char *param_value; /* its value */
    size_t key_len;          /* required key length, 0 = any non-empty length */
    size_t out_len;          /* bytes of MAC output */
} mac_alg_info;

static const mac_alg_info mac_algs[] = {
    {MAC_ALG_HMAC_SHA256, "hmac-sha256", "HMAC", OSSL_MAC_PARAM_DIGEST, "SHA256", 0, 32},
    {MAC_ALG_AES256_CMAC, "aes256-cmac", "CMAC", OSSL_MAC_PARAM_CIPHER, "AES-256-CBC", 32, 16},
};

struct mac_key {
    const mac_alg_info *alg; /* the registry row this key computes */
    EVP_MAC_CTX *ctx;        /* keyed once; re-initialised with a NULL key per call */
};

static const mac_alg_info *mac_alg_find(int alg) {
    for (size_t i = 0; i < sizeof mac_algs / sizeof mac_algs[0]; i++)
        if (mac_algs[i].id == alg) return &mac_algs[i];
    return NULL;
}

bool mac_alg_known(int alg) {
    return mac_alg_find(alg) != NULL;
}

const char *mac_alg_name(int alg) {
    const mac_alg_info *a = mac_alg_find(alg);
    return a ? a->name : NULL;
}

int mac_alg_parse(const char *s) {
    if (!s || !*s) return 0;
    char *end;
    long n = strtol(s, &end, 10);
    if (*end == '\0') return n > 0 && n <= INT_MAX && mac_alg_known((int)n) ? (int)n : 0;
    for (size_t i = 0; i < sizeof mac_algs / sizeof mac_algs[0]; i++)
        if (strcasecmp(s, mac_algs[i].name) == 0) return mac_algs[i].id;
    return 0;
}

mac_key *mac_key_new(int alg, const uint8_t *secret, size_t secret_len) {
    const mac_alg_info *a = mac_alg_find(alg);
    if (!a || !secret || secret_len == 0) return NULL;
    if (a->key_len && secret_len != a->key_len) return NULL;

    mac_key *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    k->alg = a;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, a->evp_name, NULL);
    if (mac) k->ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);  /* the context holds its own reference */

    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(a->param_name, (char *)a->param_value, 0),
        OSSL_PARAM_construct_end(),
    };
    if (!k->ctx || EVP_MAC_init(k->ctx, secret, secret_len, params) != 1) {
        mac_key_free(k);
        return NULL;
    }
    return k;
}

mac_key *mac_key_dup(const mac_key *k) {
    if (!k) return NULL;
    mac_key *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->alg = k->alg;
    d->ctx = EVP_MAC_CTX_dup(k->ctx);
    if (!d->ctx) {
        free(d);
        return NULL;
    }
    return d;
}

void mac_key_free(mac_key *k) {
    if (!k) return;
    EVP_MAC_CTX_free(k->ctx);  /* OpenSSL cleanses the key material */
    free(k);
}

void mac_identity(uint8_t out[MAC_IDENTITY_LEN], mac_role role, uint32_t group,
                  uint32_t serial, bool upgrade) {
    out[0] = 0x01;
    out[1] = (uint8_t)role;
    out[2] = (uint8_t)(group >> 24);
    out[3] = (uint8_t)(group >> 16);
    out[4] = (uint8_t)(group >> 8);
    out[5] = (uint8_t)group;
    out[6] = (uint8_t)(serial >> 24);
    out[7] = (uint8_t)(serial >> 16);
    out[8] = (uint8_t)(serial >> 8);
    out[9] = (uint8_t)serial;
    out[10] = upgrade ? 1 : 0;
}

int mac_compute(mac_key *k, const uint8_t *in, size_t in_len, uint8_t out[32]) {
    size_t n = 0;
    if (!k || (!in && in_len)) return -1;
    if (EVP_MAC_init(k->ctx, NULL, 0, NULL) != 1) return -1;
    if (in_len && EVP_MAC_update(k->ctx, in, in_len) != 1) return -1;
    if (EVP_MAC_final(k->ctx, out, &n, 32) != 1 || n != k->alg->out_len) return -1;
    return (int)n;
}

int mac_security_value(mac_key *k, mac_role role, uint32_t group, uint32_t serial,
                       bool upgrade, uint64_t *out) {
    uint8_t id[MAC_IDENTITY_LEN], m[32];
    if (role != MAC_ROLE_FIRST && role != MAC_ROLE_SECOND) return -1;
    mac_identity(id, role, group, serial, upgrade);
    if (mac_compute(k, id, sizeof id, m) < 0) return -1;
    if (role == MAC_ROLE_FIRST)
        *out = (uint64_t)m[0] << 32 | (uint64_t)m[1] << 24 | (uint64_t)m[2] << 16 |
               (uint64_t)m[3] << 8 | m[4];
    else
        *out = (uint64_t)m[0] << 5 | m[1] >> 3;
    OPENSSL_cleanse(m, sizeof m);
    return 0;
}

static void mac_be64(uint64_t v, uint8_t out[8]) {
    for (int i = 7; i >= 0; i--, v >>= 8) out[i] = (uint8_t)v;
}

bool mac_security_check(mac_key *k, mac_role role, uint32_t group, uint32_t serial,
                        bool upgrade, uint64_t presented) {
    uint64_t expected;
    uint8_t want[8], got[8];
    if (mac_security_value(k, role, group, serial, upgrade, &expected) != 0) return false;
    mac_be64(expected, want);
    mac_be64(presented, got);
    bool genuine = CRYPTO_memcmp(want, got, sizeof want) == 0;
    OPENSSL_cleanse(want, sizeof want);
    return genuine;
}
