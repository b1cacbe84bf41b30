/* outbox_forwarder.c -- the outbox loop (see outbox_forwarder.h).
 *
 * Each turn takes one batch, in this order of preference: entries already
 * delivered to this consumer and never acknowledged (a previous run's, or a
 * Submit that failed), entries idle too long at another consumer, new
 * entries (blocking up to block_ms). Working through our own pending
 * entries first is what makes a failed Submit retry the same records
 * rather than skip them.
 *
 * The forwarder shares Redis A and the CPU with the activation hot path, so
 * it keeps its own traffic small: its pending entries are re-read only when
 * there can be some (at start and after a failure), other consumers' idle
 * entries are looked for at most once a second, and after a partial batch it
 * lingers (linger_ms) so that under steady sampling one Submit carries many
 * records instead of one each. A quiet outbox still forwards its first
 * record at once.
 *
 * On Redis Cluster the outbox is one stream per hash slot ({ob:N}:outbox,
 * outbox_shards.h; docs/cluster.md), since a grant's record is written in
 * its group's slot. The forwarder then finds the shards holding entries
 * with a pipelined XLEN of every shard (a sweep, every SWEEP_MS or when a
 * pass found nothing), and visits them in turn with the same steps as the
 * single stream, without blocking (XREADGROUP cannot wait on streams of
 * several slots). The consumer group is created on a shard when it is
 * first visited; the cap and its warning are per shard. */
#include "outbox_forwarder.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "outbox_shards.h"
#include "redis_slot.h"
#include "task.h"

#define BACKOFF_MAX_MS 2000
#define OUTBOX_HIGH_PCT 80   /* warn above this share of the cap... */
#define OUTBOX_NORMAL_PCT 70 /* ...and say so again once it is back below this */
#define SWEEP_MS 1000        /* Redis Cluster: shards' lengths asked at least this often */

/* Redis Cluster: what the forwarder knows of each shard (flags). */
#define SHARD_GROUP 1u   /* its consumer group was created (or found) */
#define SHARD_PENDING 2u /* our pending entries may be there: read them first */
#define SHARD_HIGH 4u    /* above OUTBOX_HIGH_PCT of the cap (logged) */

/* KEYS: outbox.  ARGV: group, id...  Acknowledges and deletes together so an
 * acknowledged entry never lingers in the stream. */
static const char ACK_LUA[] =
    "local ids = {}\n"
    "for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end\n"
    "redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))\n"
    "return redis.call('XDEL', KEYS[1], unpack(ids))\n";

struct outbox_forwarder {
    outbox_forwarder_config cfg;      /* defaults applied; consumer points into `consumer` */
    char consumer[128];               /* our name in the consumer group */
    rstore *rs;                       /* private Redis A connection */
    int script_ack;                   /* index of ACK_LUA */
    task *loop;                       /* the forwarding loop */
    _Atomic int64_t drain_deadline_ms; /* set before the stop: keep forwarding until then; 0 = stop at once */
    _Atomic uint64_t forwarded;       /* records acknowledged by the audit server */
    _Atomic long long length;         /* last outbox length seen, -1 unknown */
    bool own_pending;                 /* our pending entries may exist: read them first */
    int64_t claimed_ms;               /* when idle entries were last looked for */
    audit_record *batch;              /* cfg.batch records being forwarded */
    char (*ids)[48];                  /* their stream entry IDs */
    bool high;                        /* the length is above OUTBOX_HIGH_PCT of the cap (logged) */
    char stream[PA_RKEY_MAX];         /* the stream this turn works on: PA_RKEY_OUTBOX, or a shard */
    uint8_t *shard_flags;             /* Redis Cluster: SHARD_* per slot (NULL on a single node) */
    long long *shard_len;             /* Redis Cluster: each shard's length at the last sweep */
    int64_t sweep_due_ms;             /* Redis Cluster: when the next sweep is due */
    unsigned cursor;                  /* Redis Cluster: the slot the next pass starts at */
    metric *m_length;                 /* pa_audit_outbox_length */
    metric *m_max;                    /* pa_audit_outbox_max */
    metric *m_forwarded;              /* pa_audit_outbox_forwarded_total */
    metric *m_failures;               /* pa_audit_outbox_submit_failures_total */
};

/* Asked to stop, but with time left to empty the outbox. */
static bool draining(outbox_forwarder *f, task *t) {
    return task_stopping(t) && atomic_load(&f->drain_deadline_ms) != 0;
}

static bool should_stop(outbox_forwarder *f, task *t) {
    if (!task_stopping(t)) return false;
    int64_t deadline = atomic_load(&f->drain_deadline_ms);
    return deadline == 0 || pa_mono_ms() >= deadline;
}

/* Waits up to `ms`: cut short by the stop request while running; while
 * draining (the stop was requested, so a task_sleep would return at once)
 * a plain sleep, bounded by the drain deadline. */
static void pause_for(outbox_forwarder *f, task *t, int ms) {
    if (task_sleep(t, ms) || !draining(f, t)) return;
    int64_t left = atomic_load(&f->drain_deadline_ms) - pa_mono_ms();
    if (left < ms) ms = left > 0 ? (int)left : 0;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int next_backoff(int ms) { return ms == 0 ? 100 : (ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms * 2); }

static bool reply_usable(outbox_forwarder *f, redisReply *r, const char *what) {
    if (r && r->type != REDIS_REPLY_ERROR) return true;
    log_warn("audit.outbox.redis", LOG_S("op", what),
             LOG_S("error", r ? r->str : rstore_error(f->rs)), LOG_END);
    return false;
}

static int prepare_group(outbox_forwarder *f) {
    redisReply *r = rstore_command(f->rs, "XGROUP CREATE %s %s 0 MKSTREAM", f->stream, PA_OUTBOX_GROUP);
    bool ok = r && (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "BUSYGROUP", 9) == 0);
    if (!ok) reply_usable(f, r, "create consumer group");
    freeReplyObject(r);
    return ok ? 0 : -1;
}

static int ack(outbox_forwarder *f, char (*ids)[48], size_t n) {
    const char **argv = malloc((n + 2) * sizeof *argv);
    if (!argv) return -1;
    argv[0] = f->stream;
    argv[1] = PA_OUTBOX_GROUP;
    for (size_t i = 0; i < n; i++) argv[2 + i] = ids[i];
    redisReply *r = rstore_eval(f->rs, f->script_ack, 1, (int)n + 1, argv, NULL);
    free(argv);
    int rc = reply_usable(f, r, "acknowledge") ? 0 : -1;
    freeReplyObject(r);
    return rc;
}

/* Turns stream entries into records; unusable entries are acknowledged and
 * dropped at once (logged), since no retry can make them usable. */
static size_t take_entries(outbox_forwarder *f, const redisReply *entries) {
    size_t n = 0;
    char bad_ids[1][48];
    for (size_t i = 0; i < entries->elements && n < (size_t)f->cfg.batch; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[0]->len >= sizeof f->ids[n])
            continue;
        char err[160];
        if (e->element[1]->type == REDIS_REPLY_ARRAY &&
            audit_record_from_outbox(e->element[1], &f->batch[n], err, sizeof err) == 0) {
            snprintf(f->ids[n], sizeof f->ids[n], "%s", e->element[0]->str);
            n++;
            continue;
        }
        if (e->element[1]->type != REDIS_REPLY_ARRAY) snprintf(err, sizeof err, "entry deleted while pending");
        snprintf(bad_ids[0], sizeof bad_ids[0], "%s", e->element[0]->str);
        log_error("audit.outbox.drop", LOG_S("entry", bad_ids[0]), LOG_S("error", err), LOG_END);
        ack(f, bad_ids, 1);
    }
    return n;
}

/* XREADGROUP from `from` ("0" own pending, ">" new); -1 on error. */
static int read_group(outbox_forwarder *f, const char *from, int block_ms) {
    redisReply *r = block_ms > 0 ? rstore_command(f->rs, "XREADGROUP GROUP %s %s COUNT %d BLOCK %d STREAMS %s %s",
                                                  PA_OUTBOX_GROUP, f->consumer, f->cfg.batch, block_ms, f->stream, from)
                                 : rstore_command(f->rs, "XREADGROUP GROUP %s %s COUNT %d STREAMS %s %s",
                                                  PA_OUTBOX_GROUP, f->consumer, f->cfg.batch, f->stream, from);
    if (!reply_usable(f, r, "read outbox")) {
        if (r && strncmp(r->str, "NOGROUP", 7) == 0) prepare_group(f);
        freeReplyObject(r);
        return -1;
    }
    size_t n = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 2 && r->element[0]->element[1]->type == REDIS_REPLY_ARRAY)
        n = take_entries(f, r->element[0]->element[1]);
    freeReplyObject(r);
    return (int)n;
}

static int claim_idle(outbox_forwarder *f) {
    redisReply *r = rstore_command(f->rs, "XAUTOCLAIM %s %s %s %d 0-0 COUNT %d", f->stream, PA_OUTBOX_GROUP,
                                   f->consumer, f->cfg.claim_idle_ms, f->cfg.batch);
    if (!reply_usable(f, r, "claim idle entries")) {
        freeReplyObject(r);
        return -1;
    }
    size_t n = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && r->element[1]->type == REDIS_REPLY_ARRAY)
        n = take_entries(f, r->element[1]);
    freeReplyObject(r);
    if (n) log_info("audit.outbox.claimed", LOG_U("entries", n), LOG_END);
    return (int)n;
}

static int next_batch(outbox_forwarder *f, int block_ms) {
    int n = 0;
    if (f->own_pending && (n = read_group(f, "0", 0)) == 0) f->own_pending = false;
    int claim_every = f->cfg.claim_idle_ms < 1000 ? f->cfg.claim_idle_ms : 1000;
    if (n == 0 && pa_mono_ms() - f->claimed_ms >= claim_every) {
        f->claimed_ms = pa_mono_ms();
        n = claim_idle(f);
    }
    if (n == 0) n = read_group(f, ">", block_ms);
    return n;
}

/* The length for the gauge, and a warning before the cap is reached (at
 * the cap sampled activations are refused or go unaudited, as their group
 * says): audit.outbox.high once above OUTBOX_HIGH_PCT, audit.outbox.normal
 * once back below OUTBOX_NORMAL_PCT. */
static void update_length(outbox_forwarder *f) {
    redisReply *r = rstore_command(f->rs, "XLEN %s", f->stream);
    if (r && r->type == REDIS_REPLY_INTEGER) {
        long long n = r->integer, max = f->cfg.max;
        atomic_store(&f->length, n);
        metric_set(f->m_length, n);
        if (!f->high && n * 100 > max * OUTBOX_HIGH_PCT) {
            f->high = true;
            log_warn("audit.outbox.high", LOG_I("records", n), LOG_I("max", max),
                     LOG_S("why",
                           "the audit server is behind or unreachable; at the cap sampled activations are "
                           "refused or granted unaudited"),
                     LOG_END);
        } else if (f->high && n * 100 < max * OUTBOX_NORMAL_PCT) {
            f->high = false;
            log_info("audit.outbox.normal", LOG_I("records", n), LOG_I("max", max), LOG_END);
        }
    }
    freeReplyObject(r);
}

/* Submits the batch and acknowledges it; 0 on success. */
static int forward(outbox_forwarder *f, size_t n) {
    uint32_t accepted = 0, duplicates = 0;
    char err[300];
    if (audit_client_submit(f->cfg.client, f->batch, n, &accepted, &duplicates, err, sizeof err) != 0) {
        metric_inc(f->m_failures);
        log_warn("audit.outbox.submit_failed", LOG_U("records", n), LOG_S("error", err), LOG_END);
        return -1;
    }
    if (ack(f, f->ids, n) != 0) return -1;   /* stays pending; resent, then absorbed as duplicates */
    atomic_fetch_add(&f->forwarded, n);
    metric_add(f->m_forwarded, n);
    log_info("audit.outbox.forwarded", LOG_U("records", n), LOG_U("accepted", accepted),
             LOG_U("duplicates", duplicates), LOG_END);
    return 0;
}

/* ---- Redis Cluster: the shards ---------------------------------------------- */

/* The cap's warning for one shard, as update_length gives it for the one
 * stream, naming the shard. */
static void note_shard_length(outbox_forwarder *f, unsigned slot, const char *key, long long n) {
    long long max = f->cfg.max;
    bool high = f->shard_flags[slot] & SHARD_HIGH;
    if (!high && n * 100 > max * OUTBOX_HIGH_PCT) {
        f->shard_flags[slot] |= SHARD_HIGH;
        log_warn("audit.outbox.high", LOG_S("shard", key), LOG_I("records", n), LOG_I("max", max),
                 LOG_S("why",
                       "the audit server is behind or unreachable; at the cap sampled activations are "
                       "refused or granted unaudited"),
                 LOG_END);
    } else if (high && n * 100 < max * OUTBOX_NORMAL_PCT) {
        f->shard_flags[slot] &= (uint8_t)~SHARD_HIGH;
        log_info("audit.outbox.normal", LOG_S("shard", key), LOG_I("records", n), LOG_I("max", max), LOG_END);
    }
}

/* Every shard's length, one pipelined XLEN each (routed to the shard's
 * master); the gauge shows their sum. 0, or -1 when Redis A did not answer. */
static int sweep(outbox_forwarder *f) {
    char key[PA_RKEY_MAX];
    unsigned sent = 0;
    for (; sent < REDIS_SLOTS; sent++) {
        const char *argv[] = {"XLEN", key};
        if (outbox_shard_of_slot(sent, key, sizeof key) != 0 || rstore_append_argv(f->rs, 2, argv, NULL) != 0) break;
    }
    long long total = 0;
    int rc = sent == REDIS_SLOTS ? 0 : -1;
    for (unsigned s = 0; s < sent; s++) {
        redisReply *r = rstore_get_reply(f->rs);
        if (r && r->type == REDIS_REPLY_INTEGER) {
            f->shard_len[s] = r->integer;
            total += r->integer;
            if (outbox_shard_of_slot(s, key, sizeof key) == 0) note_shard_length(f, s, key, r->integer);
        } else if (rc == 0) {
            rc = -1;
            reply_usable(f, r, "shard lengths");
        }
        freeReplyObject(r);
        if (!r) break;
    }
    if (rc == 0) {
        atomic_store(&f->length, total);
        metric_set(f->m_length, total);
    }
    return rc;
}

/* One shard's turn: its group made on first sight, then one batch read
 * (not blocking) and forwarded. Records read, 0, or -1. */
static int shard_turn(outbox_forwarder *f, unsigned slot) {
    if (outbox_shard_of_slot(slot, f->stream, sizeof f->stream) != 0) return -1;
    uint8_t *flags = &f->shard_flags[slot];
    if (!(*flags & SHARD_GROUP)) {
        if (prepare_group(f) != 0) return -1;
        *flags |= SHARD_GROUP | SHARD_PENDING; /* a previous run may have left some */
    }
    f->own_pending = *flags & SHARD_PENDING;
    int n = next_batch(f, 0);
    if (n > 0 && forward(f, (size_t)n) != 0) n = -1;
    if (n < 0) f->own_pending = true;
    *flags = (uint8_t)((*flags & ~SHARD_PENDING) | (f->own_pending ? SHARD_PENDING : 0));
    f->shard_len[slot] = n > 0 && f->shard_len[slot] > n ? f->shard_len[slot] - n : 0; /* exact again at the sweep */
    return n;
}

/* One pass: the next shard with entries that yields a batch. Records
 * forwarded, 0 when no shard had any, or -1. */
static int shard_pass(outbox_forwarder *f) {
    for (unsigned i = 0; i < REDIS_SLOTS; i++) {
        unsigned slot = (f->cursor + i) % REDIS_SLOTS;
        if (f->shard_len[slot] <= 0) continue;
        int n = shard_turn(f, slot);
        if (n == 0) continue;
        f->cursor = (slot + 1) % REDIS_SLOTS; /* the next pass starts with the next shard: fair to all */
        return n;
    }
    return 0;
}

static void run_sharded(outbox_forwarder *f, task *t) {
    int backoff = 0;
    while (!should_stop(f, t)) {
        if (backoff) pause_for(f, t, backoff);
        if (should_stop(f, t)) break;
        bool emptying = draining(f, t);
        if (pa_mono_ms() >= f->sweep_due_ms) {
            if (sweep(f) != 0) {
                backoff = next_backoff(backoff);
                continue;
            }
            f->sweep_due_ms = pa_mono_ms() + SWEEP_MS;
        }
        int n = shard_pass(f);
        backoff = n < 0 ? next_backoff(backoff) : 0;
        if (n != 0) continue;
        if (emptying && atomic_load(&f->length) == 0) break;
        pause_for(f, t, emptying ? 50 : f->cfg.block_ms); /* nothing to read: sweep again after the pause */
        f->sweep_due_ms = 0;
    }
}

static void run(task *t, void *arg) {
    outbox_forwarder *f = arg;
    if (f->shard_flags) {
        run_sharded(f, t);
        return;
    }
    int backoff = 0;
    bool prepared = false;
    while (!should_stop(f, t)) {
        if (backoff) pause_for(f, t, backoff);
        if (should_stop(f, t)) break;
        if (!prepared && prepare_group(f) != 0) {
            backoff = next_backoff(backoff);
            continue;
        }
        prepared = true;
        bool emptying = draining(f, t);
        int n = next_batch(f, emptying ? 50 : f->cfg.block_ms);
        if (n > 0 && forward(f, (size_t)n) != 0) n = -1;
        if (n < 0) f->own_pending = true;   /* what was read stays pending: retry it first */
        backoff = n < 0 ? next_backoff(backoff) : 0;
        update_length(f);
        if (n == 0 && emptying && atomic_load(&f->length) == 0) break;
        if (n > 0 && n < f->cfg.batch && !emptying) task_sleep(t, f->cfg.linger_ms);
    }
}

outbox_forwarder *outbox_forwarder_start(const outbox_forwarder_config *cfg, char *err, size_t errlen) {
    if (!cfg->client) {
        snprintf(err, errlen, "outbox forwarder: no audit client");
        return NULL;
    }
    outbox_forwarder *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->cfg = *cfg;
    if (f->cfg.batch <= 0 || f->cfg.batch > 1000) f->cfg.batch = 100;
    if (f->cfg.claim_idle_ms <= 0) f->cfg.claim_idle_ms = 30000;
    if (f->cfg.block_ms <= 0) f->cfg.block_ms = 500;
    if (f->cfg.linger_ms == 0) f->cfg.linger_ms = 200;
    if (f->cfg.linger_ms < 0) f->cfg.linger_ms = 0;
    if (f->cfg.max <= 0) f->cfg.max = OUTBOX_MAX_DEFAULT;
    f->own_pending = true;            /* a previous run may have left some */
    snprintf(f->consumer, sizeof f->consumer, "%s", cfg->consumer && *cfg->consumer ? cfg->consumer : "activation");
    f->cfg.consumer = f->consumer;
    atomic_store(&f->length, -1);
    rstore_config sc = cfg->store;
    if (sc.command_timeout_ms < 2 * f->cfg.block_ms) sc.command_timeout_ms = 2 * f->cfg.block_ms;
    f->batch = calloc((size_t)f->cfg.batch, sizeof *f->batch);
    f->ids = calloc((size_t)f->cfg.batch, sizeof *f->ids);
    f->rs = f->batch && f->ids ? rstore_new(&sc, true, err, errlen) : NULL;
    snprintf(f->stream, sizeof f->stream, "%s", PA_RKEY_OUTBOX);
    if (f->rs && rstore_is_cluster(f->rs)) {
        f->shard_flags = calloc(REDIS_SLOTS, sizeof *f->shard_flags);
        f->shard_len = calloc(REDIS_SLOTS, sizeof *f->shard_len);
        if (!f->shard_flags || !f->shard_len) {
            free(f->shard_flags), free(f->shard_len);
            f->shard_flags = NULL, f->shard_len = NULL;
            rstore_free(f->rs);
            f->rs = NULL;
            snprintf(err, errlen, "out of memory");
        }
    }
    if (!f->rs || (f->script_ack = rstore_script_add(f->rs, ACK_LUA)) < 0) {
        if (f->batch && f->ids && f->rs) snprintf(err, errlen, "outbox forwarder: cannot register its script");
        else if (!f->batch || !f->ids) snprintf(err, errlen, "out of memory");
        rstore_free(f->rs), free(f->batch), free(f->ids), free(f->shard_flags), free(f->shard_len), free(f);
        return NULL;
    }
    f->m_length = metric_gauge("pa_audit_outbox_length", "Offline-audit records waiting in Redis A", "");
    f->m_max = metric_gauge("pa_audit_outbox_max", "The outbox's cap (--audit-outbox-max)", "");
    metric_set(f->m_max, f->cfg.max);
    f->m_forwarded = metric_counter("pa_audit_outbox_forwarded_total",
                                    "Offline-audit records the audit server acknowledged", "");
    f->m_failures = metric_counter("pa_audit_outbox_submit_failures_total",
                                   "Submit calls to the audit server that failed (retried)", "");
    if (!(f->loop = task_start("outbox forwarder", run, f, err, errlen))) {
        rstore_free(f->rs), free(f->batch), free(f->ids), free(f->shard_flags), free(f->shard_len), free(f);
        return NULL;
    }
    return f;
}

long long outbox_forwarder_stop(outbox_forwarder *f, int drain_ms) {
    if (!f) return -1;
    if (drain_ms > 0) atomic_store(&f->drain_deadline_ms, pa_mono_ms() + drain_ms);
    task_stop(f->loop); /* the loop sees the deadline and empties the outbox until then */
    long long left = atomic_load(&f->length);
    rstore_free(f->rs);
    free(f->batch), free(f->ids), free(f->shard_flags), free(f->shard_len);
    free(f);
    return left;
}

uint64_t outbox_forwarder_forwarded(const outbox_forwarder *f) {
    return atomic_load(&((outbox_forwarder *)f)->forwarded);
}
