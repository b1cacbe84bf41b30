/* proof_check.h -- the server's check of a Renew or Deactivate PlaceProof
 * (activation.proto, "Proof of possession").
 *
 * Everything that needs no Redis is checked here, before the policy script
 * runs: the proof is there and well formed, its timestamp lies within
 * PROOF_WINDOW_S of the server's clock, and the signature verifies with the
 * key it names over this call's message. What is left -- is that the key
 * the place is bound to? -- needs the place record, so the script compares
 * the digest this returns with the one it stored. */
#ifndef PA_ACTIVATION_PROOF_CHECK_H
#define PA_ACTIVATION_PROOF_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "activation/v1/activation.pb-c.h"
#include "place_proof.h"

/* How far a proof's timestamp may be from the server's clock, either way:
 * the replay window, and the clock skew an installer may have. */
#define PROOF_WINDOW_S 300

typedef enum proof_verdict {
    PROOF_OK,
    PROOF_INVALID, /* missing, malformed, or the signature does not verify */
    PROOF_STALE,   /* the timestamp is outside the window */
} proof_verdict;

/* Checks `p` for `op` on (license_id, machine_id) at server time `now`
 * (unix seconds). On PROOF_OK `digest` holds the place key's digest for the
 * script; otherwise `msg` says what is wrong ("proof: ..."). license_id and
 * machine_id must already be validated (validate_license_ref). */
proof_verdict proof_check(const Activation__V1__PlaceProof *p, place_op op, const char *license_id,
                          const uint8_t *machine_id, int64_t now, uint8_t digest[PLACE_KEY_DIGEST_LEN], char *msg,
                          size_t msglen);

/* The "error-reason" trailer of a refusal: "PROOF_INVALID" or "PROOF_STALE". */
const char *proof_reason(proof_verdict v);

#endif
