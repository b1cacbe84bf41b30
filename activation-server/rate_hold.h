/* rate_hold.h -- callers Redis has just rate-limited, remembered per worker.
 *
 * The token buckets live in Redis (policy.lua), so by themselves they are
 * consulted only inside the script, after the handler has looked up the
 * group and checked the key. A flood from a throttled address would still
 * cost a lookup and a script call each, and what the handler does before
 * the script (a group record read, an online audit) would tell a throttled
 * caller things. So when the script answers RATE_LIMITED, the worker holds
 * that address (or, for the product's buckets, that group) until the
 * retry-after it was given, and refuses its calls at once, before any lookup
 * and without Redis, with the same status, message and a retry-after
 * counting down.
 *
 * A hold never outlasts what the caller was told, so it refuses no call the
 * shared bucket would have granted, except for the rounding of retry-after
 * up to whole seconds. Each worker holds on its own (no locks); the table
 * is small and direct-mapped: a newer hold may evict an older one, which
 * costs at most one more script call. */
#ifndef PA_ACTIVATION_RATE_HOLD_H
#define PA_ACTIVATION_RATE_HOLD_H

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"

typedef struct rate_hold rate_hold;

rate_hold *rate_hold_new(void);
void rate_hold_free(rate_hold *h);

/* After a script's RATE_LIMITED for `address_key` (scope "address") or
 * `group` (scope "group"): hold it for p->retry_after_s seconds. Other
 * results are ignored. */
void rate_hold_note(rate_hold *h, const char *address_key, uint32_t group, const policy_result *p);

/* True if the address (or, when by_group, also the group) is held; then
 * *out reads like the script's RATE_LIMITED answer. */
bool rate_hold_check(rate_hold *h, const char *address_key, bool by_group, uint32_t group, policy_result *out);

#endif
