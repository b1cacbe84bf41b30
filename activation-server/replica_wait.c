/* replica_wait.c -- a grant reaches replicas before it is answered
 * (replica_wait.h). WAIT covers every write the connection made before
 * it, so one call after the script is enough, however many keys the
 * script touched -- and one after a batch's pipeline covers every grant
 * of the batch. On a Redis Cluster that connection is the one to the
 * master of the group's slot (rstore_command_at), where the script ran;
 * a batch there waits per grant (its grants may lie on several masters). */
#include "replica_wait.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "redis_keys.h"

void replica_wait_init(replica_wait *rw, int replicas, int timeout_ms) {
    static const double bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
    *rw = (replica_wait){.replicas = replicas, .timeout_ms = timeout_ms};
    if (replicas <= 0) return;
    rw->short_of = metric_counter("pa_redis_wait_short_total",
                                  "grants answered UNAVAILABLE because too few replicas acknowledged them", "");
    rw->seconds = metric_histogram("pa_redis_wait_seconds", "time a grant waited for its replicas (WAIT)", "", bounds,
                                   sizeof bounds / sizeof bounds[0]);
}

bool replica_wait_grant(const replica_wait *rw, rstore *r, int64_t group, policy_result *p) {
    return replica_wait_grants(rw, r, group, 1, p);
}

bool replica_wait_grants(const replica_wait *rw, rstore *r, int64_t group, size_t n, policy_result *p) {
    if (rw->replicas <= 0 || n == 0) return true;
    uint64_t t0 = pa_mono_ns();
    char key[32];
    snprintf(key, sizeof key, PA_RKEY_GROUP_FMT, (unsigned)group);
    redisReply *rep = group >= 0 ? rstore_command_at(r, key, strlen(key), "WAIT %d %d", rw->replicas, rw->timeout_ms)
                                 : rstore_command(r, "WAIT %d %d", rw->replicas, rw->timeout_ms);
    metric_observe(rw->seconds, (double)(pa_mono_ns() - t0) / 1e9);
    long long acked = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    if (acked < 0)
        snprintf(p->error, sizeof p->error, "waiting for replicas: %s",
                 rep && rep->type == REDIS_REPLY_ERROR ? rep->str : rstore_error(r));
    else if (acked < rw->replicas)
        snprintf(p->error, sizeof p->error, "the grant reached %lld of %d replicas within %d ms", acked, rw->replicas,
                 rw->timeout_ms);
    if (rep) freeReplyObject(rep);
    if (acked >= rw->replicas) return true;
    metric_add(rw->short_of, n);
    p->status = POLICY_UNAVAILABLE;
    return false;
}
