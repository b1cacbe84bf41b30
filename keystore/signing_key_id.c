/* signing_key_id.c -- naming a license-signing key (see signing_key_id.h). */
#include "signing_key_id.h"

#include <openssl/sha.h>
#include <stdint.h>

#include "hex.h"

int signing_key_id(EVP_PKEY *key, char out[SIGNING_KEY_ID_LEN + 1]) {
    uint8_t raw[32], digest[SHA256_DIGEST_LENGTH];
    size_t len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != sizeof raw) return -1;
    SHA256(raw, len, digest);
    pa_hex_encode(digest, SIGNING_KEY_ID_LEN / 2, out);
    return 0;
}
