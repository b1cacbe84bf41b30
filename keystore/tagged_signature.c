/* tagged_signature.c -- see tagged_signature.h. */
#include "tagged_signature.h"

#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

/* TAG || 0x00 || data in one malloc'd buffer (Ed25519 signs the whole
 * message in one pass, so it cannot be fed in pieces). */
static uint8_t *tagged_message(const char *tag, const uint8_t *data, size_t len, size_t *out_len) {
    size_t t = strlen(tag) + 1;
    if (len > SIZE_MAX - t) return NULL;
    uint8_t *m = malloc(t + len ? t + len : 1);
    if (!m) return NULL;
    memcpy(m, tag, t);
    if (len) memcpy(m + t, data, len);
    *out_len = t + len;
    return m;
}

int tagged_sign(EVP_PKEY *key, const char *tag, const uint8_t *data, size_t len, uint8_t sig[TAGGED_SIG_LEN]) {
    if (!key || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) return -1;
    size_t mlen;
    uint8_t *m = tagged_message(tag, data, len, &mlen);
    if (!m) return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sig_len = TAGGED_SIG_LEN;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestSign(ctx, sig, &sig_len, m, mlen) == 1 && sig_len == TAGGED_SIG_LEN;
    EVP_MD_CTX_free(ctx);
    free(m);
    if (!ok) ERR_clear_error();
    return ok ? 0 : -1;
}

bool tagged_verify(EVP_PKEY *key, const char *tag, const uint8_t *data, size_t len, const uint8_t *sig,
                   size_t sig_len) {
    if (!key || !sig || sig_len != TAGGED_SIG_LEN || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) return false;
    size_t mlen;
    uint8_t *m = tagged_message(tag, data, len, &mlen);
    if (!m) return false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
              EVP_DigestVerify(ctx, sig, sig_len, m, mlen) == 1;
    EVP_MD_CTX_free(ctx);
    free(m);
    ERR_clear_error(); /* a bad signature leaves errors on the thread's queue */
    return ok;
}

bool tagged_verify_raw(const uint8_t *key, size_t key_len, const char *tag, const uint8_t *data, size_t len,
                       const uint8_t *sig, size_t sig_len) {
    if (!key || key_len != TAGGED_KEY_LEN) return false;
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key, key_len);
    bool ok = k && tagged_verify(k, tag, data, len, sig, sig_len);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return ok;
}
