/* queue_worker.c -- the loop that turns queued records into verdicts.
 *
 * Each thread is a task (common/task.h) with its own Redis connection and
 * secret cache; nothing is shared but settings. Reads block at most
 * QUEUE_BLOCK_MS so a stop is noticed quickly; the command timeout is set
 * above that.
 *
 * Per-record Redis traffic is what auditing costs, so a batch is judged in
 * memory and then recorded with one script call (which also acknowledges
 * the batch's queue entries and returns the queue length for the metric),
 * and the loop keeps its reads few: its own pending entries are re-read only
 * when there can be some (at start and after a failure), and other
 * consumers' idle entries are looked for at most once a second. */
#include "queue_worker.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit_metrics.h"
#include "audit_store.h"
#include "clock.h"
#include "log.h"
#include "secret_cache.h"
#include "task.h"
#include "verdict.h"

#define QUEUE_BLOCK_MS 500
#define QUEUE_BACKOFF_MAX_MS 2000

typedef struct queue_thread {
    task *loop;                   /* the thread; stopped by queue_worker_stop */
    struct queue_worker *owner;   /* shared settings */
    audit_store *store;           /* private Redis B connection */
    secret_cache *cache;          /* private prepared secrets */
    char consumer[160];           /* consumer name in the group: prefix-index */
    queued_record *batch;         /* read buffer, cfg.batch entries */
    verdict *verdicts;            /* the batch's verdicts, for recording and logging */
    audit_entry *entries;         /* the batch as trail entries (point into batch, verdicts) */
    const char **queue_ids;       /* the batch's queue entry IDs (point into batch) */
    audit_outcome *outcomes;      /* what recording each did */
    bool own_pending;             /* our pending entries may exist: read them first */
    int64_t claimed_ms;           /* when idle entries were last looked for */
} queue_thread;

struct queue_worker {
    int batch;                    /* entries per read */
    int claim_idle_ms;            /* XAUTOCLAIM idle threshold */
    int n;                        /* threads */
    queue_thread *threads;
};

/* Judges one record into v and e (e points into q and v). Returns 0, or -1
 * with err (the record stays pending). */
static int judge_one(queue_thread *t, const queued_record *q, verdict *v, audit_entry *e,
                     char *err, size_t errlen) {
    pk_fields key = {.group = q->group, .serial = q->serial, .upgrade = q->upgrade,
                     .security_second = q->security_second};
    pk_status st = strcmp(q->key_status, "ok") == 0 ? PK_OK : PK_ERR_RANGE;
    if (verdict_judge(t->cache, audit_store_rstore(t->store), st, &key, v, err, errlen) != 0)
        return -1;
    if (st != PK_OK) snprintf(v->reason, sizeof v->reason, "key does not decode: %s", q->key_status);
    *e = (audit_entry){
        .request_id = q->request_id, .source = "queue", .group = q->group, .serial = q->serial,
        .verdict = verdict_name(v->kind), .reason = v->reason, .machine_id = q->machine_id,
        .machine_id_len = q->machine_id_len, .client_address = q->client_address,
        .origin = q->origin, .peer = q->peer, .sample_reason = q->sample_reason,
        .received_at = q->received_at, .revoke = v->revoke, .revoke_reason = v->reason,
    };
    return 0;
}

/* Logs and counts what recording one record did. */
static void report_one(const queued_record *q, const verdict *v, const audit_outcome *out) {
    const audit_metrics *m = audit_metrics_get();
    if (!out->recorded) {
        log_info("audit.queue.duplicate", LOG_S("request_id", q->request_id), LOG_END);
        return;
    }
    metric_inc(m->verdicts[AUDIT_SOURCE_QUEUE][v->kind]);
    if (out->newly_revoked) metric_inc(m->revocations);
    log_info("audit.queue.verdict", LOG_U("group", q->group), LOG_U("serial", q->serial),
             LOG_S("verdict", verdict_name(v->kind)), LOG_S("reason", v->reason),
             LOG_U("revocation_sequence", out->sequence), LOG_S("request_id", q->request_id),
             LOG_S("origin", q->origin), LOG_S("peer_cn", q->peer), LOG_END);
}

/* Audits a batch: judges the records in order up to the first that cannot
 * be judged, then records those in one store call. Returns 0 when the whole
 * batch is recorded, -1 when some of it stays pending (retried). Sets
 * *queue_length from the store (-1 unknown). */
static int audit_batch(queue_thread *t, int n, long long *queue_length) {
    char err[256];
    int judged = 0;
    while (judged < n && judge_one(t, &t->batch[judged], &t->verdicts[judged],
                                   &t->entries[judged], err, sizeof err) == 0) {
        t->queue_ids[judged] = t->batch[judged].queue_id;
        judged++;
    }
    const queued_record *failed = judged < n ? &t->batch[judged] : NULL;
    char rerr[256];
    size_t recorded = audit_store_record_batch(t->store, t->entries, t->queue_ids, (size_t)judged,
                                               t->outcomes, queue_length, rerr, sizeof rerr);
    for (size_t i = 0; i < recorded; i++) report_one(&t->batch[i], &t->verdicts[i], &t->outcomes[i]);
    if (recorded < (size_t)judged) {
        failed = &t->batch[recorded];
        snprintf(err, sizeof err, "%s", rerr);
    }
    if (!failed) return 0;
    metric_inc(audit_metrics_get()->store_errors);
    log_error("audit.queue.retry", LOG_S("request_id", failed->request_id), LOG_U("group", failed->group),
              LOG_U("serial", failed->serial), LOG_S("error", err), LOG_END);
    return -1;
}

static int next_backoff(int ms) {
    if (ms == 0) return 100;
    return ms * 2 > QUEUE_BACKOFF_MAX_MS ? QUEUE_BACKOFF_MAX_MS : ms * 2;
}

static void run(task *loop, void *arg) {
    queue_thread *t = arg;
    struct queue_worker *w = t->owner;
    const audit_metrics *m = audit_metrics_get();
    int backoff = 0;
    bool prepared = false;
    char err[256];
    while (!task_stopping(loop)) {
        if (backoff && !task_sleep(loop, backoff)) break;
        if (!prepared && audit_store_queue_prepare(t->store, err, sizeof err) != 0) {
            backoff = next_backoff(backoff);
            log_warn("audit.queue.unavailable", LOG_S("error", err), LOG_END);
            continue;
        }
        prepared = true;
        int claim_every = w->claim_idle_ms < 1000 ? w->claim_idle_ms : 1000;
        bool claim = pa_mono_ms() - t->claimed_ms >= claim_every;
        if (claim) t->claimed_ms = pa_mono_ms();
        int n = audit_store_queue_read(t->store, t->consumer, t->batch, (size_t)w->batch,
                                       QUEUE_BLOCK_MS, &t->own_pending, claim ? w->claim_idle_ms : 0,
                                       err, sizeof err);
        long long len = -1;
        if (n < 0) log_warn("audit.queue.unavailable", LOG_S("error", err), LOG_END);
        if (n < 0 || (n > 0 && audit_batch(t, n, &len) != 0)) {
            t->own_pending = true;   /* what was read stays pending: retry it first */
            backoff = next_backoff(backoff);
            continue;
        }
        backoff = 0;
        if (len < 0) len = audit_store_queue_length(t->store);
        if (len >= 0) metric_set(m->queue_length, len);
    }
}

static void free_thread(queue_thread *t) {
    audit_store_close(t->store);
    secret_cache_free(t->cache);
    free(t->batch), free(t->verdicts), free(t->entries), free(t->queue_ids), free(t->outcomes);
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
        if (t->store) audit_store_set_retention(t->store, cfg->request_retention_s);
        t->cache = secret_cache_new(cfg->kek);
        t->own_pending = true;   /* a previous run may have left some */
        t->claimed_ms = pa_mono_ms() - 1000000;
        t->batch = calloc((size_t)q->batch, sizeof *t->batch);
        t->verdicts = calloc((size_t)q->batch, sizeof *t->verdicts);
        t->entries = calloc((size_t)q->batch, sizeof *t->entries);
        t->queue_ids = calloc((size_t)q->batch, sizeof *t->queue_ids);
        t->outcomes = calloc((size_t)q->batch, sizeof *t->outcomes);
        bool mem = t->batch && t->verdicts && t->entries && t->queue_ids && t->outcomes;
        if (!t->store || !t->cache || !mem) {
            if (t->store && (!t->cache || !mem)) snprintf(err, errlen, "out of memory");
            queue_worker_stop(q);
            return NULL;
        }
        if (!(t->loop = task_start("queue worker", run, t, err, errlen))) {
            queue_worker_stop(q);
            return NULL;
        }
    }
    return q;
}

void queue_worker_stop(queue_worker *q) {
    if (!q) return;
    for (int i = 0; i < q->n; i++) /* all asked first, so they wind down together */
        if (q->threads[i].loop) task_request_stop(q->threads[i].loop);
    for (int i = 0; i < q->n; i++) {
        task_stop(q->threads[i].loop);
        free_thread(&q->threads[i]);
    }
    free(q->threads);
    free(q);
}
