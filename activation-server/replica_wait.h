/* replica_wait.h -- a grant reaches replicas before it is answered.
 *
 * With --redis-wait-replicas N (N > 0) every Activate that the policy
 * script granted is followed by WAIT N T on the same connection; when
 * fewer than N replicas acknowledged within T ms the call is answered
 * UNAVAILABLE instead of with the license. The grant stays on the primary:
 * that is safe because Activate is idempotent per (key, machine) -- the
 * client retries and gets the same place back -- while a license whose
 * grant a failover could lose would let one seat be sold twice
 * (docs/operations.md, "Waiting for replicas"). */
#ifndef PA_REPLICA_WAIT_H
#define PA_REPLICA_WAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "policy.h"
#include "redis_store.h"

typedef struct replica_wait {
    int replicas;     /* --redis-wait-replicas: acknowledgements needed; 0 = off */
    int timeout_ms;   /* --redis-wait-timeout-ms: how long WAIT may block a worker */
    metric *short_of; /* pa_redis_wait_short_total: grants refused for want of replicas */
    metric *seconds;  /* pa_redis_wait_seconds: what WAIT costs */
} replica_wait;

/* Off when replicas is 0 (no metrics are registered then). */
void replica_wait_init(replica_wait *rw, int replicas, int timeout_ms);

/* After a granting script on `r`: true when enough replicas hold the
 * grant (or the setting is off); false with p->status UNAVAILABLE and
 * p->error saying how many acknowledged. On a Redis Cluster WAIT must go
 * to the master the grant wrote to: that of group `group`'s keys, or,
 * when group is negative (a volume grant, written by the call just made),
 * the master of the previous command. */
bool replica_wait_grant(const replica_wait *rw, rstore *r, int64_t group, policy_result *p);

/* The same for the n grants a batch's pipeline made on `r` (one WAIT
 * covers them all; `group` as above, for a single-node store any); a
 * shortfall counts n grants refused, and *p says why for each of them. */
bool replica_wait_grants(const replica_wait *rw, rstore *r, int64_t group, size_t n, policy_result *p);

#endif
