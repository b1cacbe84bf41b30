/* verdict.h -- the audit decision for one key: is its second security value
 * the one only this server can compute?
 *
 * Both audit paths (online Verify and the queue worker) judge through this
 * one function, so they can never disagree. A key is FORGED when its group
 * has no audit record or its second value does not match; either way the
 * key is revoked, since nobody holding the real secrets made it. A key that
 * does not even decode is MALFORMED: it is recorded, but there is no key to
 * revoke. When the secret cannot be loaded (store down, wrong KEK) there is
 * no verdict at all -- the caller answers UNAVAILABLE or retries later,
 * never guesses. */
#ifndef PA_VERDICT_H
#define PA_VERDICT_H

#include <stdbool.h>
#include <stdint.h>

#include "keycodec.h"
#include "redis_store.h"
#include "secret_cache.h"

typedef enum verdict_kind {
    VERDICT_KIND_GENUINE = 1,
    VERDICT_KIND_FORGED = 2,
    VERDICT_KIND_MALFORMED = 3,
} verdict_kind;

typedef struct verdict {
    verdict_kind kind;
    bool revoke;                  /* the key must go to the revocation log */
    char reason[96];              /* for the trail and the caller; no secret */
} verdict;

/* "genuine" | "forged" | "malformed". */
const char *verdict_name(verdict_kind k);

/* Judges a decoded key. `key_status` is the decoder's result for it.
 * Returns 0 with *out filled, or -1 (no verdict possible now; err says why). */
int verdict_judge(secret_cache *cache, rstore *store, pk_status key_status, const pk_fields *key,
                  verdict *out, char *err, size_t errlen);

#endif
