/* proof_check.c -- a PlaceProof, checked without Redis (see proof_check.h).
 *
 * The window is checked before the signature: an old proof is refused for
 * the cheaper reason, and a client with a wrong clock learns that (with the
 * server's time in the message) rather than reading a bad signature. */
#include "proof_check.h"

#include <stdio.h>

proof_verdict proof_check(const Activation__V1__PlaceProof *p, place_op op, const char *license_id,
                          const uint8_t *machine_id, int64_t now, uint8_t digest[PLACE_KEY_DIGEST_LEN], char *msg,
                          size_t msglen) {
    if (!p) {
        snprintf(msg, msglen,
                 "proof: missing; Renew and Deactivate must be signed with the place key "
                 "given at Activate");
        return PROOF_INVALID;
    }
    if (p->place_key.len != PLACE_KEY_LEN) {
        snprintf(msg, msglen, "proof: place_key must be exactly %d bytes, got %zu", PLACE_KEY_LEN, p->place_key.len);
        return PROOF_INVALID;
    }
    if (p->signature.len != PLACE_PROOF_SIG_LEN) {
        snprintf(msg, msglen, "proof: signature must be exactly %d bytes, got %zu", PLACE_PROOF_SIG_LEN,
                 p->signature.len);
        return PROOF_INVALID;
    }
    /* Compared without subtracting: a timestamp near INT64_MIN must not wrap. */
    if (p->timestamp < now - PROOF_WINDOW_S || p->timestamp > now + PROOF_WINDOW_S) {
        snprintf(msg, msglen,
                 "proof: timestamp %lld is more than %d s from the server's clock (%lld); "
                 "check this machine's clock",
                 (long long)p->timestamp, PROOF_WINDOW_S, (long long)now);
        return PROOF_STALE;
    }
    if (!place_proof_verify(p->place_key.data, op, license_id, machine_id, p->timestamp, p->signature.data)) {
        snprintf(msg, msglen,
                 "proof: the signature does not verify for this %s of this license and "
                 "machine",
                 op == PLACE_OP_RENEW ? "Renew" : "Deactivate");
        return PROOF_INVALID;
    }
    place_key_digest(p->place_key.data, digest);
    return PROOF_OK;
}

const char *proof_reason(proof_verdict v) { return v == PROOF_STALE ? "PROOF_STALE" : "PROOF_INVALID"; }
