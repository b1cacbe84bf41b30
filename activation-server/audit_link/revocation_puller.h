/* revocation_puller.h -- brings the audit server's revocation log into
 * Redis A, where the policy script refuses revoked keys.
 *
 * The audit enclave accepts connections but never opens them, so every
 * activation server polls: ListRevocations(after = revocations:last_seq).
 * Each batch is applied by one script that checks last_seq is still what
 * the batch was fetched after, SADDs every serial into its group's
 * `{g:ID}:revoked` set and moves last_seq -- all or nothing. Therefore:
 *   - a crash between fetching and applying skips nothing (last_seq did not
 *     move, the next poll fetches the same entries again);
 *   - several activation servers sharing one Redis A may all poll: the
 *     first to apply a batch wins, the others see last_seq moved, re-read
 *     it and continue from there (SADD is idempotent anyway);
 *   - after a restart the puller resumes from last_seq in Redis A.
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
} revocation_puller_config;

typedef struct revocation_puller revocation_puller;

revocation_puller *revocation_puller_start(const revocation_puller_config *cfg, char *err, size_t errlen);
void revocation_puller_stop(revocation_puller *p);

/* The last sequence this puller saw applied in Redis A (0 before the first poll). */
uint64_t revocation_puller_last_sequence(const revocation_puller *p);

/* One fetch-and-apply round on the caller's thread, for start-up catch-up
 * and tests: returns entries applied by this call, or -1 with err. */
int revocation_puller_poll(revocation_puller *p, char *err, size_t errlen);

#endif
