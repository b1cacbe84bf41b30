/* revocation_puller.c -- the poll loop, the apply script and the
 * reconciliation (see revocation_puller.h). The Redis connection is used by
 * the loop thread and by revocation_puller_poll / _reconcile callers, so one
 * mutex serialises rounds; a round is a few milliseconds every half second,
 * never on a request path. */
#include "revocation_puller.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "task.h"

/* Moves the position (last_seq, epoch, last_id) from what the batch was
 * fetched after to its last entry, SADDing every entry on the way -- or
 * does nothing when another puller moved the position first.
 * KEYS: last_seq, epoch, last_id, then one {g:ID}:revoked per entry.
 * ARGV: expected seq, epoch, id; new seq, epoch, id; one serial per entry.
 * Returns {applied (1/0), seq, epoch, id now} and, when applied, each
 * SADD's result (1: the serial is newly revoked here). */
static const char APPLY_LUA[] =
    "local raw = redis.call('GET', KEYS[1]) or '0'\n"
    "local epoch = redis.call('GET', KEYS[2]) or ''\n"
    "local id = redis.call('GET', KEYS[3]) or ''\n"
    "if tonumber(raw) ~= tonumber(ARGV[1]) or epoch ~= ARGV[2] or id ~= ARGV[3] then\n"
    "  return {0, raw, epoch, id}\n"
    "end\n"
    "local added = {}\n"
    "for i = 4, #KEYS do added[i - 3] = redis.call('SADD', KEYS[i], ARGV[i + 3]) end\n"
    "redis.call('SET', KEYS[1], ARGV[4])\n"
    "redis.call('SET', KEYS[2], ARGV[5])\n"
    "redis.call('SET', KEYS[3], ARGV[6])\n"
    "return {1, ARGV[4], ARGV[5], ARGV[6], added}\n";

/* Reconciliation: SADDs every entry; returns each SADD's result (1 = the
 * serial was missing). KEYS: one {g:ID}:revoked per entry; ARGV: serials. */
static const char RESTORE_LUA[] =
    "local out = {}\n"
    "for i = 1, #KEYS do out[i] = redis.call('SADD', KEYS[i], ARGV[i]) end\n"
    "return out\n";

/* Re-syncs from 0 at most this often per round: a log that keeps changing
 * under the puller is an error, not a reason to loop. */
#define MAX_RESYNCS 2

/* Where this Redis A stands in the audit server's log. */
typedef struct position {
    uint64_t seq;
    char epoch[AUDIT_LOG_ID_MAX + 1];
    char last_id[AUDIT_LOG_ID_MAX + 1];
} position;

struct revocation_puller {
    revocation_puller_config cfg;     /* defaults applied */
    rstore *rs;                       /* private Redis A connection */
    int script_apply;                 /* index of APPLY_LUA */
    int script_restore;               /* index of RESTORE_LUA */
    pthread_mutex_t mu;               /* one round at a time */
    task *loop;                       /* the polling loop; NULL when polled by hand */
    _Atomic uint64_t last_seq;        /* last applied sequence seen in Redis A */
    metric *m_applied;                /* pa_audit_revocations_applied_total */
    metric *m_last;                   /* pa_audit_revocation_last_sequence */
    metric *m_errors;                 /* pa_audit_revocation_pull_errors_total */
    metric *m_resyncs;                /* pa_audit_revocation_resyncs_total */
    metric *m_healed;                 /* pa_audit_revocations_healed_total */
};

/* A decimal sequence number and nothing else; 0 or -1. */
static int parse_seq(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end || errno) return -1;
    *out = v;
    return 0;
}

/* A position's three values from replies (nil reads as 0 / ""). */
static int parse_position(const redisReply *seq, const redisReply *epoch, const redisReply *id, position *out,
                          char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (seq->type == REDIS_REPLY_STRING && parse_seq(seq->str, &out->seq) != 0)
        return snprintf(err, errlen, "%s is '%.32s', not a sequence number", PA_RKEY_REVOCATIONS_LAST_SEQ, seq->str),
               -1;
    if ((seq->type != REDIS_REPLY_STRING && seq->type != REDIS_REPLY_NIL) ||
        (epoch->type != REDIS_REPLY_STRING && epoch->type != REDIS_REPLY_NIL) ||
        (id->type != REDIS_REPLY_STRING && id->type != REDIS_REPLY_NIL) ||
        (epoch->type == REDIS_REPLY_STRING && epoch->len > AUDIT_LOG_ID_MAX) ||
        (id->type == REDIS_REPLY_STRING && id->len > AUDIT_LOG_ID_MAX))
        return snprintf(err, errlen, "the revocation position in Redis A (%s, %s, %s) is malformed",
                        PA_RKEY_REVOCATIONS_LAST_SEQ, PA_RKEY_REVOCATIONS_EPOCH, PA_RKEY_REVOCATIONS_LAST_ID),
               -1;
    if (epoch->type == REDIS_REPLY_STRING) memcpy(out->epoch, epoch->str, epoch->len);
    if (id->type == REDIS_REPLY_STRING) memcpy(out->last_id, id->str, id->len);
    return 0;
}

/* The position from Redis A; -1 when unreachable or malformed. */
static int read_position(revocation_puller *p, position *out, char *err, size_t errlen) {
    redisReply *r = rstore_command(p->rs, "MGET %s %s %s", PA_RKEY_REVOCATIONS_LAST_SEQ, PA_RKEY_REVOCATIONS_EPOCH,
                                   PA_RKEY_REVOCATIONS_LAST_ID);
    int rc = -1;
    if (!r) snprintf(err, errlen, "activation store unavailable: %s", rstore_error(p->rs));
    else if (r->type == REDIS_REPLY_ARRAY && r->elements == 3)
        rc = parse_position(r->element[0], r->element[1], r->element[2], out, err, errlen);
    else
        snprintf(err, errlen, "reading the revocation position: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    return rc;
}

/* Applies entries (may be none) moving the position from `expect` to
 * `target`; returns 1 applied, 0 lost the race, -1. *now gets the position
 * in Redis A afterwards. */
static int apply(revocation_puller *p, const position *expect, const position *target, const audit_revocation *e,
                 size_t n, position *now, bool *added, char *err, size_t errlen) {
    size_t nkeys = 3 + n, argc = nkeys + 6 + n;
    const char **argv = calloc(argc, sizeof *argv);
    char(*keys)[PA_RKEY_MAX] = calloc(n ? n : 1, sizeof *keys), (*serials)[12] = calloc(n ? n : 1, sizeof *serials);
    char expected[24], next[24];
    int rc = -1;
    if (!argv || !keys || !serials) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    snprintf(expected, sizeof expected, "%" PRIu64, expect->seq);
    snprintf(next, sizeof next, "%" PRIu64, target->seq);
    const char **args = argv + nkeys;
    argv[0] = PA_RKEY_REVOCATIONS_LAST_SEQ;
    argv[1] = PA_RKEY_REVOCATIONS_EPOCH;
    argv[2] = PA_RKEY_REVOCATIONS_LAST_ID;
    args[0] = expected, args[1] = expect->epoch, args[2] = expect->last_id;
    args[3] = next, args[4] = target->epoch, args[5] = target->last_id;
    for (size_t i = 0; i < n; i++) {
        pa_rkey_revoked(keys[i], sizeof keys[i], e[i].group);
        snprintf(serials[i], sizeof serials[i], "%" PRIu32, e[i].serial);
        argv[3 + i] = keys[i];
        args[6 + i] = serials[i];
    }
    redisReply *r = rstore_eval(p->rs, p->script_apply, (int)nkeys, (int)(6 + n), argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 4 || r->element[0]->type != REDIS_REPLY_INTEGER) {
        snprintf(err, errlen, "applying revocations: %s",
                 !r ? rstore_error(p->rs) : r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    } else if (parse_position(r->element[1], r->element[2], r->element[3], now, err, errlen) == 0) {
        rc = r->element[0]->integer == 1 ? 1 : 0;
        const redisReply *flags = r->elements > 4 ? r->element[4] : NULL;
        for (size_t i = 0; i < n; i++)
            added[i] = flags && flags->type == REDIS_REPLY_ARRAY && i < flags->elements &&
                       flags->element[i]->type == REDIS_REPLY_INTEGER && flags->element[i]->integer == 1;
    }
    freeReplyObject(r);
out:
    free(argv), free(keys), free(serials);
    return rc;
}

/* The threat view's revocations over time (docs/admin.md, "Threat view"):
 * each serial newly revoked in Redis A counts in its group's day hash at
 * the minute it arrived. Statistics only: a failure is logged, the
 * revocations themselves are applied already. */
static void count_revocations(revocation_puller *p, const audit_revocation *e, const bool *added, size_t n) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    uint32_t day = (uint32_t)((tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
    char field[24], ttl[16];
    snprintf(field, sizeof field, PA_THREAT_FIELD_FMT, (unsigned)(tm.tm_hour * 60 + tm.tm_min), PA_THREAT_KIND_REVOKED);
    snprintf(ttl, sizeof ttl, "%d", PA_THREAT_RETENTION_S);
    int sent = 0;
    for (size_t i = 0; i < n; i++) {
        char rkey[PA_RKEY_MAX];
        if (!added[i] || pa_rkey_threat_group(rkey, sizeof rkey, e[i].group, day) < 0) continue;
        const char *incr[] = {"HINCRBY", rkey, field, "1"}, *expire[] = {"EXPIRE", rkey, ttl};
        if (rstore_append_argv(p->rs, 4, incr, NULL) != 0 || rstore_append_argv(p->rs, 3, expire, NULL) != 0) break;
        sent += 2;
    }
    for (int i = 0; i < sent; i++) {
        redisReply *r = rstore_get_reply(p->rs);
        if (!r || r->type == REDIS_REPLY_ERROR)
            log_warn("audit.revocations.count_failed", LOG_S("error", r ? r->str : rstore_error(p->rs)), LOG_END);
        if (r) freeReplyObject(r);
        if (!r) break;
    }
}

/* Why the log no longer continues from `pos`, or NULL when it does. */
static const char *diverged(const position *pos, const audit_revocation_page *page) {
    if (pos->seq == 0) return NULL;
    if (strcmp(page->epoch, pos->epoch) != 0) return "epoch";
    if (!page->after_found) return "behind";
    if (strcmp(page->after_entry_id, pos->last_id) != 0) return "entry_id";
    return NULL;
}

static int poll_locked(revocation_puller *p, char *err, size_t errlen) {
    position pos;
    if (read_position(p, &pos, err, errlen) != 0) return -1;
    atomic_store(&p->last_seq, pos.seq);
    uint64_t from = pos.seq; /* where the next page starts: 0 while re-syncing */
    int total = 0, resyncs = 0;
    for (;;) {
        audit_revocation_page page;
        if (audit_client_list_revocations(p->cfg.client, from, p->cfg.batch, &page, err, errlen) != 0)
            return total ? total : -1;
        const char *why = from > 0 ? diverged(&pos, &page) : NULL;
        if (why) {
            if (++resyncs > MAX_RESYNCS) {
                snprintf(err, errlen, "the revocation log keeps changing (epoch %s, last sequence %" PRIu64 ")",
                         page.epoch, page.last_sequence);
                audit_revocation_page_free(&page);
                return total ? total : -1;
            }
            log_warn("audit.revocations.resync", LOG_S("reason", why), LOG_U("applied", pos.seq),
                     LOG_U("audit_last", page.last_sequence), LOG_S("epoch", pos.epoch),
                     LOG_S("audit_epoch", page.epoch), LOG_END);
            metric_inc(p->m_resyncs);
            audit_revocation_page_free(&page);
            from = 0; /* everything again, from the log as it is now */
            continue;
        }
        position target = {0};
        snprintf(target.epoch, sizeof target.epoch, "%s", page.epoch);
        if (page.n > 0) {
            target.seq = page.entries[page.n - 1].sequence;
            snprintf(target.last_id, sizeof target.last_id, "%s", page.entries[page.n - 1].entry_id);
        } else if (from > 0 || (pos.seq == 0 && strcmp(pos.epoch, page.epoch) == 0 && !pos.last_id[0])) {
            audit_revocation_page_free(&page); /* up to date */
            break;
        }
        /* else: a re-sync found the log empty; record that, so its first
         * entry is taken from sequence 1. */
        position now;
        bool *added = calloc(page.n ? page.n : 1, sizeof *added);
        int rc = added ? apply(p, &pos, &target, page.entries, page.n, &now, added, err, errlen) : -1;
        if (!added) snprintf(err, errlen, "out of memory");
        if (rc == 1) {
            count_revocations(p, page.entries, added, page.n);
            total += (int)page.n;
            metric_add(p->m_applied, page.n);
            for (size_t i = 0; i < page.n; i++)
                log_info("audit.revocation.applied", LOG_U("sequence", page.entries[i].sequence),
                         LOG_U("group", page.entries[i].group), LOG_U("serial", page.entries[i].serial), LOG_END);
        }
        free(added);
        uint64_t server_last = page.last_sequence;
        bool empty = page.n == 0;
        audit_revocation_page_free(&page);
        if (rc < 0) return total ? total : -1;
        pos = now; /* ours, or where another server moved it */
        from = pos.seq;
        atomic_store(&p->last_seq, pos.seq);
        metric_set(p->m_last, (int64_t)pos.seq);
        if (rc == 1 && (empty || from >= server_last)) break;
    }
    return total;
}

int revocation_puller_poll(revocation_puller *p, char *err, size_t errlen) {
    pthread_mutex_lock(&p->mu);
    int rc = poll_locked(p, err, errlen);
    pthread_mutex_unlock(&p->mu);
    if (rc < 0) metric_inc(p->m_errors);
    return rc;
}

/* SADDs entries again; returns how many were missing (logged), or -1. */
static int restore(revocation_puller *p, const audit_revocation *e, size_t n, char *err, size_t errlen) {
    const char **argv = calloc(2 * n, sizeof *argv);
    char(*keys)[PA_RKEY_MAX] = calloc(n, sizeof *keys), (*serials)[12] = calloc(n, sizeof *serials);
    int healed = -1;
    if (!argv || !keys || !serials) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        pa_rkey_revoked(keys[i], sizeof keys[i], e[i].group);
        snprintf(serials[i], sizeof serials[i], "%" PRIu32, e[i].serial);
        argv[i] = keys[i];
        argv[n + i] = serials[i];
    }
    redisReply *r = rstore_eval(p->rs, p->script_restore, (int)n, (int)n, argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        snprintf(err, errlen, "reconciling revocations: %s",
                 !r                             ? rstore_error(p->rs)
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "unexpected reply");
    } else {
        healed = 0;
        for (size_t i = 0; i < n; i++) {
            if (r->element[i]->type != REDIS_REPLY_INTEGER || r->element[i]->integer != 1) continue;
            healed++;
            log_warn("audit.revocations.healed", LOG_U("sequence", e[i].sequence), LOG_U("group", e[i].group),
                     LOG_U("serial", e[i].serial),
                     LOG_S("why", "a revoked serial was missing from Redis A and is back"), LOG_END);
        }
    }
    freeReplyObject(r);
out:
    free(argv), free(keys), free(serials);
    return healed;
}

/* A reconciliation in progress: the log up to `upto` (the position when it
 * began), page by page. */
typedef struct reconcile_cursor {
    bool active;
    uint64_t from, upto;
    char epoch[AUDIT_LOG_ID_MAX + 1];
    int healed;
} reconcile_cursor;

static int reconcile_begin(revocation_puller *p, reconcile_cursor *c, char *err, size_t errlen) {
    position pos;
    if (read_position(p, &pos, err, errlen) != 0) return -1;
    *c = (reconcile_cursor){.active = pos.seq > 0, .upto = pos.seq};
    snprintf(c->epoch, sizeof c->epoch, "%s", pos.epoch);
    return 0;
}

/* One page: SADDs its entries again. Clears c->active when done (a log with
 * another epoch is left to the next poll, which re-syncs first). 0 or -1. */
static int reconcile_page(revocation_puller *p, reconcile_cursor *c, char *err, size_t errlen) {
    audit_revocation_page page;
    if (audit_client_list_revocations(p->cfg.client, c->from, p->cfg.batch, &page, err, errlen) != 0) return -1;
    size_t k = 0;
    while (k < page.n && page.entries[k].sequence <= c->upto) k++;
    bool same_log = strcmp(page.epoch, c->epoch) == 0;
    int rc = same_log && k > 0 ? restore(p, page.entries, k, err, errlen) : 0;
    if (rc > 0) {
        c->healed += rc;
        metric_add(p->m_healed, (uint64_t)rc);
    }
    if (k > 0) c->from = page.entries[k - 1].sequence;
    if (!same_log || k == 0 || k < page.n || c->from >= c->upto) c->active = false;
    audit_revocation_page_free(&page);
    return rc < 0 ? -1 : 0;
}

int revocation_puller_reconcile(revocation_puller *p, char *err, size_t errlen) {
    pthread_mutex_lock(&p->mu);
    reconcile_cursor c;
    int rc = reconcile_begin(p, &c, err, errlen);
    while (rc == 0 && c.active) rc = reconcile_page(p, &c, err, errlen);
    pthread_mutex_unlock(&p->mu);
    if (rc < 0) metric_inc(p->m_errors);
    return rc < 0 ? -1 : c.healed;
}

/* The loop's share of a reconciliation: one page per round, after the poll,
 * so a long log (or a slow audit server) never delays new revocations by
 * more than one page. */
static void reconcile_round(revocation_puller *p, reconcile_cursor *c, int64_t *next_ms) {
    char err[300];
    pthread_mutex_lock(&p->mu);
    int rc = c->active || pa_mono_ms() < *next_ms ? 0 : reconcile_begin(p, c, err, sizeof err);
    if (rc == 0 && c->active) rc = reconcile_page(p, c, err, sizeof err);
    pthread_mutex_unlock(&p->mu);
    if (rc < 0) {
        metric_inc(p->m_errors);
        c->active = false; /* again next round */
        log_warn("audit.revocations.reconcile_failed", LOG_S("error", err), LOG_END);
    } else if (!c->active && pa_mono_ms() >= *next_ms) {
        *next_ms = pa_mono_ms() + p->cfg.reconcile_ms;
    }
}

static void run(task *t, void *arg) {
    revocation_puller *p = arg;
    bool failing = false;
    reconcile_cursor c = {.active = false};
    int64_t reconcile_at = pa_mono_ms(); /* once at start, then every reconcile_ms */
    do {
        char err[300];
        int rc = revocation_puller_poll(p, err, sizeof err);
        if (rc < 0 && !failing) log_warn("audit.revocations.unavailable", LOG_S("error", err), LOG_END);
        if (rc >= 0 && failing) log_info("audit.revocations.recovered", LOG_END);
        failing = rc < 0;
        if (rc >= 0 && p->cfg.reconcile_ms > 0) reconcile_round(p, &c, &reconcile_at);
    } while (task_sleep(t, p->cfg.interval_ms));
}

revocation_puller *revocation_puller_start(const revocation_puller_config *cfg, char *err, size_t errlen) {
    if (!cfg->client) {
        snprintf(err, errlen, "revocation puller: no audit client");
        return NULL;
    }
    revocation_puller *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    if (p->cfg.interval_ms == 0) p->cfg.interval_ms = 500;
    if (p->cfg.batch == 0 || p->cfg.batch > 10000) p->cfg.batch = 1000;
    if (p->cfg.reconcile_ms == 0) p->cfg.reconcile_ms = 60000;
    p->rs = rstore_new(&cfg->store, true, err, errlen);
    if (!p->rs || (p->script_apply = rstore_script_add(p->rs, APPLY_LUA)) < 0 ||
        (p->script_restore = rstore_script_add(p->rs, RESTORE_LUA)) < 0 || pthread_mutex_init(&p->mu, NULL) != 0) {
        if (p->rs) snprintf(err, errlen, "revocation puller: cannot set up its store");
        rstore_free(p->rs);
        free(p);
        return NULL;
    }
    p->m_applied = metric_counter("pa_audit_revocations_applied_total",
                                  "Revocations pulled from the audit server and applied to Redis A", "");
    p->m_last = metric_gauge("pa_audit_revocation_last_sequence", "Last revocation sequence applied", "");
    p->m_errors = metric_counter("pa_audit_revocation_pull_errors_total",
                                 "Revocation polls that failed (audit server or Redis A unreachable)", "");
    p->m_resyncs =
        metric_counter("pa_audit_revocation_resyncs_total",
                       "Times the revocation log was applied again from 0 (new epoch, or the log went back)", "");
    p->m_healed = metric_counter("pa_audit_revocations_healed_total",
                                 "Revoked serials found missing from Redis A by reconciliation and put back", "");
    if (p->cfg.interval_ms > 0 && !(p->loop = task_start("revocation puller", run, p, err, errlen))) {
        pthread_mutex_destroy(&p->mu);
        rstore_free(p->rs);
        free(p);
        return NULL;
    }
    return p;
}

void revocation_puller_stop(revocation_puller *p) {
    if (!p) return;
    task_stop(p->loop);
    pthread_mutex_destroy(&p->mu);
    rstore_free(p->rs);
    free(p);
}

uint64_t revocation_puller_last_sequence(const revocation_puller *p) {
    return atomic_load(&((revocation_puller *)p)->last_seq);
}
