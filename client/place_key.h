/* place_key.h -- (internal) the installer's place key: the Ed25519 key pair
 * an activation binds its place on the server to (activation.proto, "Proof
 * of possession"), and the proofs Renew and Deactivate carry to show they
 * hold it.
 *
 * Two files in the state directory, both mode 0600:
 *   place-key.pem          the key the place is known to be bound to: the
 *                          server accepted a call made with it;
 *   place-key.pending.pem  a key sent to the server whose binding is not
 *                          confirmed yet. It is stored before the call, so a
 *                          reply lost on the way cannot leave the place bound
 *                          to a key nobody kept, and the next attempt sends
 *                          the same key again. Once the server accepts it, it
 *                          is renamed to place-key.pem (place_key_confirm).
 * Activation, and a Renew or Deactivate without a confirmed key (a machine
 * activated before place keys existed), use the pending key; `activate
 * request` uses the confirmed key if there is one, else the pending one,
 * which `install` confirms. */
#ifndef PA_PLACE_KEY_H
#define PA_PLACE_KEY_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "activation/v1/activation.pb-c.h"
#include "place_proof.h"

/* A proof ready to send: `msg` points into the buffers beside it. */
typedef struct place_key_proof {
    uint8_t pub[PLACE_KEY_LEN];
    uint8_t sig[PLACE_PROOF_SIG_LEN];
    Activation__V1__PlaceProof msg;
} place_key_proof;

/* Return values of the loaders besides 0 (*key set). */
enum { PLACE_KEY_NONE = 1, PLACE_KEY_IO = -1, PLACE_KEY_DAMAGED = -2 };

/* The confirmed key: 0 with *key, PLACE_KEY_NONE, or PLACE_KEY_IO /
 * PLACE_KEY_DAMAGED with `err`. */
int place_key_load(const char *state_dir, EVP_PKEY **key, char *err, size_t errlen);
/* The pending key, made and stored now if there is none. The same returns
 * (never PLACE_KEY_NONE). A damaged pending key is replaced: it was never
 * confirmed, so nothing depends on it. */
int place_key_pending(const char *state_dir, EVP_PKEY **key, char *err, size_t errlen);
/* The server accepted the pending key: it becomes the confirmed one. 0 (also
 * when there is no pending key) or -1 with `err`. */
int place_key_confirm(const char *state_dir, char *err, size_t errlen);
/* Removes both files (after a Deactivate: the place is gone). 0 or -1. */
int place_key_remove(const char *state_dir, char *err, size_t errlen);
/* True when a confirmed key is stored (a binding renewal is due otherwise). */
bool place_key_confirmed(const char *state_dir);

/* The raw 32-byte public half. 0 or -1. */
int place_key_public(EVP_PKEY *key, uint8_t out[PLACE_KEY_LEN]);
/* A proof for `op` on (license_id, machine_id), made now. 0 or -1. */
int place_key_prove(EVP_PKEY *key, place_op op, const char *license_id, const uint8_t machine_id[32],
                    place_key_proof *out);

#endif
