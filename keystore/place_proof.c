/* place_proof.c -- the place-key proof message, signing and verifying (see
 * place_proof.h). */
#include "place_proof.h"

#include <openssl/err.h>
#include <openssl/sha.h>
#include <string.h>

static const char *tag_of(place_op op) { return op == PLACE_OP_RENEW ? "pa-renew-v1" : "pa-deactivate-v1"; }

size_t place_proof_message(place_op op, const char *license_id, const uint8_t machine_id[PLACE_PROOF_MACHINE_ID_LEN],
                           int64_t timestamp, uint8_t out[PLACE_PROOF_MSG_MAX]) {
    if (!license_id || strlen(license_id) != PLACE_PROOF_LICENSE_ID_LEN) return 0;
    const char *tag = tag_of(op);
    size_t n = strlen(tag) + 1; /* the NUL ends the tag: no tag is a prefix of a message */
    memcpy(out, tag, n);
    memcpy(out + n, license_id, PLACE_PROOF_LICENSE_ID_LEN);
    n += PLACE_PROOF_LICENSE_ID_LEN;
    memcpy(out + n, machine_id, PLACE_PROOF_MACHINE_ID_LEN);
    n += PLACE_PROOF_MACHINE_ID_LEN;
    uint64_t t = (uint64_t)timestamp;
    for (int i = 7; i >= 0; i--, t >>= 8) out[n + (size_t)i] = (uint8_t)(t & 0xff);
    return n + 8;
}

void place_key_digest(const uint8_t key[PLACE_KEY_LEN], uint8_t out[PLACE_KEY_DIGEST_LEN]) {
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256(key, PLACE_KEY_LEN, d);
    memcpy(out, d, PLACE_KEY_DIGEST_LEN);
}

int place_proof_sign(EVP_PKEY *key, place_op op, const char *license_id,
                     const uint8_t machine_id[PLACE_PROOF_MACHINE_ID_LEN], int64_t timestamp,
                     uint8_t sig[PLACE_PROOF_SIG_LEN]) {
    uint8_t msg[PLACE_PROOF_MSG_MAX];
    size_t len = place_proof_message(op, license_id, machine_id, timestamp, msg);
    if (len == 0 || !key || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sig_len = PLACE_PROOF_SIG_LEN;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestSign(ctx, sig, &sig_len, msg, len) == 1 && sig_len == PLACE_PROOF_SIG_LEN;
    EVP_MD_CTX_free(ctx);
    if (!ok) ERR_clear_error();
    return ok ? 0 : -1;
}

bool place_proof_verify(const uint8_t key[PLACE_KEY_LEN], place_op op, const char *license_id,
                        const uint8_t machine_id[PLACE_PROOF_MACHINE_ID_LEN], int64_t timestamp,
                        const uint8_t sig[PLACE_PROOF_SIG_LEN]) {
    uint8_t msg[PLACE_PROOF_MSG_MAX];
    size_t len = place_proof_message(op, license_id, machine_id, timestamp, msg);
    if (len == 0) return false;
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key, PLACE_KEY_LEN);
    EVP_MD_CTX *ctx = k ? EVP_MD_CTX_new() : NULL;
    bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1 &&
              EVP_DigestVerify(ctx, sig, PLACE_PROOF_SIG_LEN, msg, len) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(k);
    ERR_clear_error(); /* a bad signature or point leaves errors on the thread's queue */
    return ok;
}
