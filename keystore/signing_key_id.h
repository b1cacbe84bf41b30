/* signing_key_id.h -- the name of a license-signing key (docs/activation-flow.md,
 * "The license"): key_id = the first 16 hex characters of SHA-256 over the
 * 32-byte raw Ed25519 public key.
 *
 * The activation server stamps it into every license it signs and the
 * client uses it to pick the vendor key that verifies one; both must derive
 * it the same way, so the rule lives here once. In pa_keystore because both
 * sides already link it (and it needs only OpenSSL). */
#ifndef PA_SIGNING_KEY_ID_H
#define PA_SIGNING_KEY_ID_H

#include <openssl/evp.h>

#define SIGNING_KEY_ID_LEN 16    /* hex characters */

/* key_id of an Ed25519 key (public or private). Returns 0, or -1 when the
 * key has no 32-byte raw public key. */
int signing_key_id(EVP_PKEY *key, char out[SIGNING_KEY_ID_LEN + 1]);

#endif
