/* queue_worker.h -- background threads that audit Submit'ed records.
 *
 * Delivery from the queue is at-least-once (a Redis consumer group: an entry
 * stays pending until acknowledged, and a crashed worker's entries are read
 * again or claimed by another), while auditing is exactly-once: the verdict,
 * the revocation, the "done" mark of the request and the acknowledgement
 * are one script, and that script skips a request already marked done.
 *
 * A worker that cannot judge (Redis B down, a secret that does not unwrap)
 * leaves its entries pending and retries with backoff; nothing is dropped
 * except entries that cannot be parsed at all. */
#ifndef PA_QUEUE_WORKER_H
#define PA_QUEUE_WORKER_H

#include <stdint.h>

#include "redis_store.h"
#include "secret_wrap.h"

typedef struct queue_worker queue_worker;

typedef struct queue_worker_config {
    rstore_config store;          /* Redis B as user `audit` */
    const uint8_t *kek;           /* KEK_LEN bytes (copied) */
    const char *consumer;         /* stable consumer-name prefix, e.g. the host name,
                                   * so a restart reads its own pending entries first */
    int threads;                  /* worker threads (default 1) */
    int batch;                    /* entries per read (default 64) */
    int claim_idle_ms;            /* take over entries idle this long at other consumers (default 30000) */
    int64_t request_retention_s;  /* how long a request id is remembered (0: audit_store's default) */
} queue_worker_config;

/* Starts the threads. NULL with err on failure. */
queue_worker *queue_worker_start(const queue_worker_config *cfg, char *err, size_t errlen);

/* Stops after the batch in hand (its records are recorded or stay pending)
 * and joins the threads. */
void queue_worker_stop(queue_worker *q);

#endif
