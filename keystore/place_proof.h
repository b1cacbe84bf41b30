/* place_proof.h -- the proof that an installer holds its place
 * (activation.proto, "Proof of possession"; docs/activation-flow.md).
 *
 * A license file names its place by license id and machine id, neither of
 * them secret, so at Activate the installer makes an Ed25519 key pair (the
 * place key) and sends its public half; the server keeps a 16-byte digest of
 * it with the place. Renew and Deactivate then carry a signature by the
 * private half over
 *
 *   TAG || 0x00 || license_id (32 ASCII) || machine_id (32) || timestamp (8, big-endian)
 *
 * with TAG "pa-renew-v1" or "pa-deactivate-v1". The tag keeps one
 * operation's proof from serving the other; the license and machine ids tie
 * it to one place; the timestamp lets the server refuse an old proof without
 * a round trip for a nonce.
 *
 * The installer signs and the server verifies: both build the message here,
 * so the two cannot drift apart. In pa_keyformat because both sides link it
 * (OpenSSL only). */
#ifndef PA_PLACE_PROOF_H
#define PA_PLACE_PROOF_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLACE_KEY_LEN 32        /* raw Ed25519 public key */
#define PLACE_KEY_DIGEST_LEN 16 /* what the server keeps: SHA-256(place key), first half */
#define PLACE_PROOF_SIG_LEN 64  /* Ed25519 signature */
#define PLACE_PROOF_LICENSE_ID_LEN 32
#define PLACE_PROOF_MACHINE_ID_LEN 32
#define PLACE_PROOF_MSG_MAX (sizeof "pa-deactivate-v1" + 32 + 32 + 8)

typedef enum place_op { PLACE_OP_RENEW, PLACE_OP_DEACTIVATE } place_op;

/* The signed message for `op`. Returns its length, or 0 when license_id is
 * not exactly 32 characters. */
size_t place_proof_message(place_op op, const char *license_id, const uint8_t machine_id[PLACE_PROOF_MACHINE_ID_LEN],
                           int64_t timestamp, uint8_t out[PLACE_PROOF_MSG_MAX]);

/* The first 16 bytes of SHA-256 over the raw public key. */
void place_key_digest(const uint8_t key[PLACE_KEY_LEN], uint8_t out[PLACE_KEY_DIGEST_LEN]);

/* Signs the message with an Ed25519 private key. 0, or -1 (bad license id,
 * not an Ed25519 key, OpenSSL failure). */
int place_proof_sign(EVP_PKEY *key, place_op op, const char *license_id,
                     const uint8_t machine_id[PLACE_PROOF_MACHINE_ID_LEN], int64_t timestamp,
                     uint8_t sig[PLACE_PROOF_SIG_LEN]);

/* True when `sig` is the place key's signature over the message. */
bool place_proof_verify(const uint8_t key[PLACE_KEY_LEN], place_op op, const char *license_id,
                        const uint8_t machine_id[PLACE_PROOF_MACHINE_ID_LEN], int64_t timestamp,
                        const uint8_t sig[PLACE_PROOF_SIG_LEN]);

#endif
