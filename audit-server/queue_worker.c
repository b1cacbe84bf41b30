/* queue_worker.c -- the loop that turns queued records into verdicts.
 *
 * Each thread has its own Redis connection and secret cache (nothing is
 * shared but the stop flag). Reads block at most QUEUE_BLOCK_MS so a stop is
 * noticed quickly; the command timeout is set above that. */
#include "queue_worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit_metrics.h"
#include "audit_store.h"
#include "log.h"
#include "secret_cache.h"
#include "verdict.h"

#define QUEUE_BLOCK_MS 500
#define QUEUE_BACKOFF_MAX_MS 2000

typedef struct queue_thread {
    pthread_t tid;                /* joined by queue_worker_stop */
    bool started;                 /* tid is valid */
    struct queue_worker *owner;   /* shared stop flag and settings */
    audit_store *store;           /* private Redis B connection */
    secret_cache *cache;          /* private prepared secrets */
    char consumer[160];           /* consumer name in the group: prefix-index */
    queued_record *batch;         /* read buffer, cfg.batch entries */
} queue_thread;

struct queue_worker {
    atomic_bool stop;             /* set by queue_worker_stop */
    int batch;                    /* entries per read */
    int claim_idle_ms;            /* XAUTOCLAIM idle threshold */
    int n;                        /* threads */
    queue_thread *threads;
};

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Audits one record: judge, then record atomically. Returns 0 or -1 (the
 * record stays pending). */
static int audit_one(queue_thread *t, const queued_record *q) {
    const audit_metrics *m = audit_metrics_get();
    char err[256];
    pk_fields key = {.group = q->group, .serial = q->serial, .upgrade = q->upgrade,
                     .security_second = q->security_second};
    pk_status st = strcmp(q->key_status, "ok") == 0 ? PK_OK : PK_ERR_RANGE;
    verdict v;
    if (verdict_judge(t->cache, audit_store_rstore(t->store), st, &key, &v, err, sizeof err) != 0)
        goto fail;
    if (st != PK_OK) snprintf(v.reason, sizeof v.reason, "key does not decode: %s", q->key_status);
    audit_entry e = {
        .request_id = q->request_id, .source = "queue", .group = q->group, .serial = q->serial,
        .verdict = verdict_name(v.kind), .reason = v.reason, .machine_id = q->machine_id,
        .machine_id_len = q->machine_id_len, .client_address = q->client_address,
        .origin = q->origin, .peer = q->peer, .sample_reason = q->sample_reason,
        .received_at = q->received_at, .revoke = v.revoke, .revoke_reason = v.reason,
    };
    audit_outcome out;
    if (audit_store_record(t->store, &e, q->queue_id, &out, err, sizeof err) != 0) goto fail;
    if (!out.recorded) {
        log_info("audit.queue.duplicate", LOG_S("request_id", q->request_id), LOG_END);
        return 0;
    }
    metric_inc(m->verdicts[AUDIT_SOURCE_QUEUE][v.kind]);
    if (out.newly_revoked) metric_inc(m->revocations);
    log_info("audit.queue.verdict", LOG_U("group", q->group), LOG_U("serial", q->serial),
             LOG_S("verdict", verdict_name(v.kind)), LOG_S("reason", v.reason),
             LOG_U("revocation_sequence", out.sequence), LOG_S("request_id", q->request_id),
             LOG_S("origin", q->origin), LOG_S("peer_cn", q->peer), LOG_END);
    return 0;
fail:
    metric_inc(m->store_errors);
    log_error("audit.queue.retry", LOG_S("request_id", q->request_id), LOG_U("group", q->group),
              LOG_U("serial", q->serial), LOG_S("error", err), LOG_END);
    return -1;
}

static int next_backoff(int ms) {
    if (ms == 0) return 100;
    return ms * 2 > QUEUE_BACKOFF_MAX_MS ? QUEUE_BACKOFF_MAX_MS : ms * 2;
}

static void *run(void *arg) {
    queue_thread *t = arg;
    struct queue_worker *w = t->owner;
    const audit_metrics *m = audit_metrics_get();
    int backoff = 0;
    bool prepared = false;
    char err[256];
    while (!atomic_load(&w->stop)) {
        if (backoff) sleep_ms(backoff);
        if (!prepared && audit_store_queue_prepare(t->store, err, sizeof err) != 0) {
            backoff = next_backoff(backoff);
            log_warn("audit.queue.unavailable", LOG_S("error", err), LOG_END);
            continue;
        }
        prepared = true;
        int n = audit_store_queue_read(t->store, t->consumer, t->batch, (size_t)w->batch,
                                       QUEUE_BLOCK_MS, w->claim_idle_ms, err, sizeof err);
        int failed = n < 0;
        for (int i = 0; i < n && !failed; i++) failed = audit_one(t, &t->batch[i]) != 0;
        if (failed) {
            if (n < 0) log_warn("audit.queue.unavailable", LOG_S("error", err), LOG_END);
            backoff = next_backoff(backoff);
            continue;
        }
        backoff = 0;
        long long len = audit_store_queue_length(t->store);
        if (len >= 0) metric_set(m->queue_length, len);
    }
    return NULL;
}

static void free_thread(queue_thread *t) {
    audit_store_close(t->store);
    secret_cache_free(t->cache);
    free(t->batch);
}

queue_worker *queue_worker_start(const queue_worker_config *cfg, char *err, size_t errlen) {
    queue_worker *q = calloc(1, sizeof *q);
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q->n = cfg->threads > 0 ? cfg->threads : 1;
    q->batch = cfg->batch > 0 ? cfg->batch : 64;
    q->claim_idle_ms = cfg->claim_idle_ms > 0 ? cfg->claim_idle_ms : 30000;
    q->threads = calloc((size_t)q->n, sizeof *q->threads);
    if (!q->threads) {
        free(q);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    rstore_config sc = cfg->store;
    if (sc.command_timeout_ms < QUEUE_BLOCK_MS * 2) sc.command_timeout_ms = QUEUE_BLOCK_MS * 2;
    for (int i = 0; i < q->n; i++) {
        queue_thread *t = &q->threads[i];
        t->owner = q;
        snprintf(t->consumer, sizeof t->consumer, "%s-%d", cfg->consumer ? cfg->consumer : "audit", i);
        t->store = audit_store_open(&sc, true, err, errlen);
        t->cache = secret_cache_new(cfg->kek);
        t->batch = calloc((size_t)q->batch, sizeof *t->batch);
        if (!t->store || !t->cache || !t->batch) {
            if (t->store && (!t->cache || !t->batch)) snprintf(err, errlen, "out of memory");
            queue_worker_stop(q);
            return NULL;
        }
        if (pthread_create(&t->tid, NULL, run, t) != 0) {
            snprintf(err, errlen, "cannot start the queue worker thread");
            queue_worker_stop(q);
            return NULL;
        }
        t->started = true;
    }
    return q;
}

void queue_worker_stop(queue_worker *q) {
    if (!q) return;
    atomic_store(&q->stop, true);
    for (int i = 0; i < q->n; i++) {
        if (q->threads[i].started) pthread_join(q->threads[i].tid, NULL);
        free_thread(&q->threads[i]);
    }
    free(q->threads);
    free(q);
}
