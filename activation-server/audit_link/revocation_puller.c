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

/* A round applies a batch in two steps (docs/cluster.md, "The revocation
 * apply script"), so that no call names keys of two hash slots on Redis
 * Cluster: first one SADD per group of the batch, pipelined; then this
 * compare-and-set moves the position (last_seq, epoch, last_id, all under
 * the {rev} tag) from what the batch was fetched after to its last entry --
 * or does nothing when another puller moved it first. SADD is idempotent,
 * so a crash between the steps, or two pullers doing the same batch, only
 * adds what is there already; its answer (members new to the set) is 1 for
 * a serial exactly once over all pullers, which keeps the revoked threat
 * counter exact. The position moves only once every SADD of the batch
 * succeeded, so it never passes an entry that is not applied.
 * KEYS: last_seq, epoch, last_id. ARGV: expected seq, epoch, id; new seq,
 * epoch, id. Returns {applied (1/0), seq, epoch, id now}. */
static const char MOVE_LUA[] =
    "local raw = redis.call('GET', KEYS[1]) or '0'\n"
    "local epoch = redis.call('GET', KEYS[2]) or ''\n"
    "local id = redis.call('GET', KEYS[3]) or ''\n"
    "if tonumber(raw) ~= tonumber(ARGV[1]) or epoch ~= ARGV[2] or id ~= ARGV[3] then\n"
    "  return {0, raw, epoch, id}\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[4])\n"
    "redis.call('SET', KEYS[2], ARGV[5])\n"
    "redis.call('SET', KEYS[3], ARGV[6])\n"
    "return {1, ARGV[4], ARGV[5], ARGV[6]}\n";

/* The position under its names before the {rev} tag, copied to the tagged
 * names when none of those exists yet (an upgraded Redis A); 1 copied, 0
 * not. KEYS: last_seq, epoch, last_id (tagged). ARGV: the old three's
 * values, '' for a missing one. */
static const char ADOPT_LUA[] =
    "if redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3]) > 0 then return 0 end\n"
    "local copied = 0\n"
    "for i = 1, 3 do\n"
    "  if ARGV[i] ~= '' then redis.call('SET', KEYS[i], ARGV[i]); copied = 1 end\n"
    "end\n"
    "return copied\n";

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
    int script_move;                  /* index of MOVE_LUA */
    int script_adopt;                 /* index of ADOPT_LUA */
    bool adopted;                     /* the old position names were looked at (once per start) */
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

/* The position under its old names (PA_RKEY_REVOCATIONS_OLD_*), copied to
 * the tagged ones if those are all missing (ADOPT_LUA). 0, or -1 when
 * Redis A could not answer. */
static int adopt_old_position(revocation_puller *p, char *err, size_t errlen) {
    const char *old[3] = {PA_RKEY_REVOCATIONS_OLD_LAST_SEQ, PA_RKEY_REVOCATIONS_OLD_EPOCH,
                          PA_RKEY_REVOCATIONS_OLD_LAST_ID};
    char values[3][AUDIT_LOG_ID_MAX + 1] = {"", "", ""};
    int rc = 0;
    for (int i = 0; i < 3; i++) { /* one key per call: the three lie in three slots */
        const char *get[] = {"GET", old[i]};
        if (rstore_append_argv(p->rs, 2, get, NULL) != 0) return snprintf(err, errlen, "%s", rstore_error(p->rs)), -1;
    }
    for (int i = 0; i < 3; i++) {
        redisReply *r = rstore_get_reply(p->rs);
        if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
            snprintf(err, errlen, "reading %s: %s", old[i], !r ? rstore_error(p->rs) : r->str ? r->str : "bad reply");
            rc = -1;
        } else if (r->type == REDIS_REPLY_STRING && r->len < sizeof values[i]) {
            memcpy(values[i], r->str, r->len);
        }
        freeReplyObject(r);
        if (!r) return -1;
    }
    if (rc != 0 || !values[0][0]) return rc; /* nothing under the old names */
    const char *argv[] = {PA_RKEY_REVOCATIONS_LAST_SEQ,
                          PA_RKEY_REVOCATIONS_EPOCH,
                          PA_RKEY_REVOCATIONS_LAST_ID,
                          values[0],
                          values[1],
                          values[2]};
    redisReply *r = rstore_eval(p->rs, p->script_adopt, 3, 3, argv, NULL);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        snprintf(err, errlen, "copying the revocation position: %s",
                 !r                             ? rstore_error(p->rs)
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "unexpected reply");
        freeReplyObject(r);
        return -1;
    }
    if (r->integer == 1)
        log_info("audit.revocations.position_copied", LOG_S("from", PA_RKEY_REVOCATIONS_OLD_LAST_SEQ),
                 LOG_S("to", PA_RKEY_REVOCATIONS_LAST_SEQ), LOG_S("last_seq", values[0]), LOG_END);
    freeReplyObject(r);
    return 0;
}

/* The position from Redis A; -1 when unreachable or malformed. */
static int read_position(revocation_puller *p, position *out, char *err, size_t errlen) {
    if (!p->adopted) {
        if (adopt_old_position(p, err, errlen) != 0) return -1;
        p->adopted = true;
    }
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

/* The SADDs of a batch, one per group: e[order[first..first+n)] are the
 * group's entries. */
typedef struct group_run {
    uint32_t group;  /* the group */
    size_t first;    /* where its entries begin in the sorted order */
    size_t n;        /* how many */
    long long added; /* SADD's answer: serials new to {g:ID}:revoked */
} group_run;

static const audit_revocation *sort_base; /* qsort has no context argument; one round at a time (p->mu) */

static int by_group(const void *a, const void *b) {
    uint32_t ga = sort_base[*(const size_t *)a].group, gb = sort_base[*(const size_t *)b].group;
    if (ga != gb) return ga < gb ? -1 : 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : *(const size_t *)a > *(const size_t *)b;
}

/* Step 1: SADD the entries, one call per group, pipelined. Fills runs
 * (*nruns of them); 0, or -1 when any SADD failed (the position must then
 * stay where it is). */
static int add_by_group(revocation_puller *p, const audit_revocation *e, size_t n, group_run *runs, size_t *nruns,
                        char *err, size_t errlen) {
    size_t *order = calloc(n ? n : 1, sizeof *order);
    const char **argv = calloc(n + 2, sizeof *argv);
    char(*serials)[12] = calloc(n ? n : 1, sizeof *serials), key[PA_RKEY_MAX];
    int rc = -1, sent = 0;
    *nruns = 0;
    if (!order || !argv || !serials) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) order[i] = i;
    sort_base = e;
    qsort(order, n, sizeof *order, by_group);
    rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        group_run *g = &runs[(*nruns)++];
        *g = (group_run){.group = e[order[i]].group, .first = i};
        pa_rkey_revoked(key, sizeof key, g->group);
        argv[0] = "SADD", argv[1] = key;
        for (; i < n && e[order[i]].group == g->group; i++, g->n++) {
            snprintf(serials[g->n], sizeof serials[g->n], "%" PRIu32, e[order[i]].serial);
            argv[2 + g->n] = serials[g->n];
        }
        if (rstore_append_argv(p->rs, (int)(2 + g->n), argv, NULL) != 0) rc = -1;
        else sent++;
    }
    for (int i = 0; i < sent; i++) {
        redisReply *r = rstore_get_reply(p->rs);
        if (r && r->type == REDIS_REPLY_INTEGER) runs[i].added = r->integer;
        else if (rc == 0) {
            rc = -1;
            snprintf(err, errlen, "applying revocations: %s",
                     !r                             ? rstore_error(p->rs)
                     : r->type == REDIS_REPLY_ERROR ? r->str
                                                    : "unexpected reply");
        }
        freeReplyObject(r);
        if (!r) break;
    }
    if (rc != 0 && !err[0]) snprintf(err, errlen, "applying revocations: %s", rstore_error(p->rs));
out:
    free(order), free(argv), free(serials);
    return rc;
}

/* Step 2: moves the position from `expect` to `target` (MOVE_LUA); 1
 * moved, 0 lost the race, -1. *now gets the position in Redis A after. */
static int move_position(revocation_puller *p, const position *expect, const position *target, position *now, char *err,
                         size_t errlen) {
    char expected[24], next[24];
    snprintf(expected, sizeof expected, "%" PRIu64, expect->seq);
    snprintf(next, sizeof next, "%" PRIu64, target->seq);
    const char *argv[] = {PA_RKEY_REVOCATIONS_LAST_SEQ,
                          PA_RKEY_REVOCATIONS_EPOCH,
                          PA_RKEY_REVOCATIONS_LAST_ID,
                          expected,
                          expect->epoch,
                          expect->last_id,
                          next,
                          target->epoch,
                          target->last_id};
    redisReply *r = rstore_eval(p->rs, p->script_move, 3, 6, argv, NULL);
    int rc = -1;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 4 || r->element[0]->type != REDIS_REPLY_INTEGER)
        snprintf(err, errlen, "moving the revocation position: %s",
                 !r                             ? rstore_error(p->rs)
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "unexpected reply");
    else if (parse_position(r->element[1], r->element[2], r->element[3], now, err, errlen) == 0)
        rc = r->element[0]->integer == 1 ? 1 : 0;
    freeReplyObject(r);
    return rc;
}

/* The threat view's revocations over time (docs/admin.md, "Threat view"):
 * each serial newly revoked in Redis A counts in its group's day hash at
 * the minute it arrived. Statistics only: a failure is logged, the
 * revocations themselves are applied already. */
static void count_revocations(revocation_puller *p, const group_run *runs, size_t nruns) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    uint32_t day = (uint32_t)((tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
    char field[24], ttl[16];
    snprintf(field, sizeof field, PA_THREAT_FIELD_FMT, (unsigned)(tm.tm_hour * 60 + tm.tm_min), PA_THREAT_KIND_REVOKED);
    snprintf(ttl, sizeof ttl, "%d", PA_THREAT_RETENTION_S);
    int sent = 0;
    for (size_t i = 0; i < nruns; i++) {
        char rkey[PA_RKEY_MAX], by[24];
        if (runs[i].added <= 0 || pa_rkey_threat_group(rkey, sizeof rkey, runs[i].group, day) < 0) continue;
        snprintf(by, sizeof by, "%lld", runs[i].added);
        const char *incr[] = {"HINCRBY", rkey, field, by}, *expire[] = {"EXPIRE", rkey, ttl};
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

/* Applies entries (may be none) and moves the position from `expect` to
 * `target`; returns 1 applied, 0 lost the race, -1. *now gets the position
 * in Redis A afterwards. The serials new to Redis A are counted whatever
 * the race's outcome: SADD says so to exactly one puller. */
static int apply(revocation_puller *p, const position *expect, const position *target, const audit_revocation *e,
                 size_t n, position *now, char *err, size_t errlen) {
    group_run *runs = calloc(n ? n : 1, sizeof *runs);
    size_t nruns = 0;
    err[0] = '\0';
    if (!runs) return snprintf(err, errlen, "out of memory"), -1;
    int rc = add_by_group(p, e, n, runs, &nruns, err, errlen);
    count_revocations(p, runs, nruns); /* also after a failed SADD: the others' new serials count now or never */
    free(runs);
    return rc == 0 ? move_position(p, expect, target, now, err, errlen) : -1;
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
        int rc = apply(p, &pos, &target, page.entries, page.n, &now, err, errlen);
        if (rc == 1) {
            total += (int)page.n;
            metric_add(p->m_applied, page.n);
            for (size_t i = 0; i < page.n; i++)
                log_info("audit.revocation.applied", LOG_U("sequence", page.entries[i].sequence),
                         LOG_U("group", page.entries[i].group), LOG_U("serial", page.entries[i].serial), LOG_END);
        }
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

/* SADDs entries again, one SADD per entry, pipelined (each call one slot;
 * per entry, not per group, so each healed serial is logged by name);
 * returns how many were missing (logged), or -1. */
static int restore(revocation_puller *p, const audit_revocation *e, size_t n, char *err, size_t errlen) {
    int healed = 0;
    size_t sent = 0;
    for (; sent < n; sent++) {
        char key[PA_RKEY_MAX], serial[12];
        pa_rkey_revoked(key, sizeof key, e[sent].group);
        snprintf(serial, sizeof serial, "%" PRIu32, e[sent].serial);
        const char *argv[] = {"SADD", key, serial};
        if (rstore_append_argv(p->rs, 3, argv, NULL) != 0) break;
    }
    if (sent < n) {
        snprintf(err, errlen, "reconciling revocations: %s", rstore_error(p->rs));
        healed = -1;
    }
    for (size_t i = 0; i < sent; i++) {
        redisReply *r = rstore_get_reply(p->rs);
        if (!r || r->type != REDIS_REPLY_INTEGER) {
            if (healed >= 0)
                snprintf(err, errlen, "reconciling revocations: %s",
                         !r                             ? rstore_error(p->rs)
                         : r->type == REDIS_REPLY_ERROR ? r->str
                                                        : "unexpected reply");
            healed = -1;
        } else if (r->integer == 1 && healed >= 0) {
            healed++;
            log_warn("audit.revocations.healed", LOG_U("sequence", e[i].sequence), LOG_U("group", e[i].group),
                     LOG_U("serial", e[i].serial),
                     LOG_S("why", "a revoked serial was missing from Redis A and is back"), LOG_END);
        }
        freeReplyObject(r);
        if (!r) break;
    }
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
    if (!p->rs || (p->script_move = rstore_script_add(p->rs, MOVE_LUA)) < 0 ||
        (p->script_adopt = rstore_script_add(p->rs, ADOPT_LUA)) < 0 || pthread_mutex_init(&p->mu, NULL) != 0) {
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
