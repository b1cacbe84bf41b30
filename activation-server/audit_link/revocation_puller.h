/* revocation_puller.h -- brings the audit server's revocation log into
 * Redis A, where the policy script refuses revoked keys.
 *
 * The audit enclave accepts connections but never opens them, so every
 * activation server polls ListRevocations(after = {rev}:last_seq).
 * Each batch is applied in two steps, each inside one hash slot (Redis
 * Cluster, docs/cluster.md): one SADD per group of the batch into its
 * `{g:ID}:revoked` set (pipelined), then a compare-and-set that moves the
 * position only if it is still what the batch was fetched after, and only
 * once every SADD succeeded. Therefore:
 *   - a crash between fetching and moving the position skips nothing (the
 *     position did not move, the next poll fetches the same entries again
 *     and SADDs them again: SADD is idempotent, and its answer says "new
 *     here" for a serial exactly once, so the revoked counts stay exact);
 *   - several activation servers sharing one Redis A may all poll: the
 *     first to apply a batch wins, the others see the position moved,
 *     re-read it and continue from there (SADD is idempotent anyway);
 *   - after a restart the puller resumes from the position in Redis A.
 *
 * The position is not a number alone. A sequence number means something
 * only in the log it came from, and Redis B can go back: restored from a
 * backup, or losing its last writes in a crash. New revocations would then
 * reuse sequences this puller has already passed and never be applied. So
 * the position is ({rev}:last_seq, {rev}:epoch, {rev}:last_id; copied
 * once at start from the untagged names revocations:* they had before,
 * when the tagged ones are missing): the log's epoch and the entry_id of the entry at
 * last_seq. Every answer of ListRevocations carries the log's epoch and the
 * id of the entry at the sequence asked for; when either differs (or that
 * entry is gone) the puller logs audit.revocations.resync and applies the
 * whole log again from sequence 0.
 *
 * Reconciliation: every reconcile_ms (and once at start) the puller also
 * reads the whole log up to its position and SADDs every entry again, one
 * page per poll round so new revocations are never held up by it. A
 * member removed from a {g:ID}:revoked set by hand, or by anyone holding the
 * `activation` Redis user, so comes back within one interval; each one is
 * logged (audit.revocations.healed) and counted. Nothing is ever removed
 * from the sets: only the audit server's log adds, and a log that lost
 * entries must not un-revoke keys.
 *
 * With the default 500 ms interval a revocation is enforced by every server
 * within about a second. */
#ifndef PA_REVOCATION_PULLER_H
#define PA_REVOCATION_PULLER_H

#include <stdint.h>

#include "audit_client.h"
#include "redis_keys.h"
#include "redis_store.h"

typedef struct revocation_puller_config {
    rstore_config store;              /* Redis A as user `activation` */
    audit_client *client;             /* borrowed; must outlive the puller */
    int interval_ms;                  /* poll period (default 500); < 0: no thread, the
                                       * caller polls with revocation_puller_poll */
    uint32_t batch;                   /* entries per ListRevocations (default 1000) */
    int reconcile_ms;                 /* full reconciliation period (default 60000); < 0: never
                                       * (revocation_puller_reconcile still works) */
} revocation_puller_config;

typedef struct revocation_puller revocation_puller;

revocation_puller *revocation_puller_start(const revocation_puller_config *cfg, char *err, size_t errlen);
void revocation_puller_stop(revocation_puller *p);

/* The last sequence this puller saw applied in Redis A (0 before the first poll). */
uint64_t revocation_puller_last_sequence(const revocation_puller *p);

/* One fetch-and-apply round on the caller's thread, for start-up catch-up
 * and tests: returns entries applied by this call, or -1 with err. */
int revocation_puller_poll(revocation_puller *p, char *err, size_t errlen);

/* One reconciliation on the caller's thread: returns how many revoked
 * serials were missing from their sets and were put back, or -1 with err. */
int revocation_puller_reconcile(revocation_puller *p, char *err, size_t errlen);

#endif
