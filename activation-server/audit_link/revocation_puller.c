/* revocation_puller.c -- the poll loop and the apply script (see
 * revocation_puller.h). The Redis connection is used by the loop thread and
 * by revocation_puller_poll callers, so one mutex serialises rounds; a
 * round is a few milliseconds every half second, never on a request path. */
#include "revocation_puller.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "task.h"

/* KEYS: last_seq, then one {g:ID}:revoked per entry.
 * ARGV: expected last_seq, new last_seq, then one serial per entry.
 * Returns {applied (1/0), last_seq now}. */
static const char APPLY_LUA[] =
    "local cur = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if cur ~= tonumber(ARGV[1]) then return {0, cur} end\n"
    "for i = 2, #KEYS do redis.call('SADD', KEYS[i], ARGV[i + 1]) end\n"
    "redis.call('SET', KEYS[1], ARGV[2])\n"
    "return {1, tonumber(ARGV[2])}\n";

struct revocation_puller {
    revocation_puller_config cfg;     /* defaults applied */
    rstore *rs;                       /* private Redis A connection */
    int script_apply;                 /* index of APPLY_LUA */
    pthread_mutex_t mu;               /* one round at a time */
    task *loop;                       /* the polling loop; NULL when polled by hand */
    _Atomic uint64_t last_seq;        /* last applied sequence seen in Redis A */
    metric *m_applied;                /* pa_audit_revocations_applied_total */
    metric *m_last;                   /* pa_audit_revocation_last_sequence */
    metric *m_errors;                 /* pa_audit_revocation_pull_errors_total */
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

/* revocations:last_seq from Redis A; -1 when unreachable or not a number. */
static int read_last_seq(revocation_puller *p, uint64_t *out, char *err, size_t errlen) {
    redisReply *r = rstore_command(p->rs, "GET %s", PA_RKEY_REVOCATIONS_LAST_SEQ);
    int rc = -1;
    if (!r) snprintf(err, errlen, "activation store unavailable: %s", rstore_error(p->rs));
    else if (r->type == REDIS_REPLY_NIL) *out = 0, rc = 0;
    else if (r->type == REDIS_REPLY_STRING && parse_seq(r->str, out) == 0) rc = 0;
    else if (r->type == REDIS_REPLY_STRING)
        snprintf(err, errlen, "%s is '%.32s', not a sequence number", PA_RKEY_REVOCATIONS_LAST_SEQ, r->str);
    else
        snprintf(err, errlen, "reading %s: %s", PA_RKEY_REVOCATIONS_LAST_SEQ,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    return rc;
}

/* Applies entries after `after`; returns 1 applied, 0 lost the race, -1. */
static int apply(revocation_puller *p, uint64_t after, const audit_revocation *e, size_t n,
                 uint64_t *now_last, char *err, size_t errlen) {
    size_t argc = 1 + n + 2 + n;
    const char **argv = calloc(argc, sizeof *argv);
    char(*keys)[PA_RKEY_MAX] = calloc(n, sizeof *keys), (*serials)[12] = calloc(n, sizeof *serials);
    char expected[24], next[24];
    int rc = -1;
    if (!argv || !keys || !serials) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    snprintf(expected, sizeof expected, "%" PRIu64, after);
    snprintf(next, sizeof next, "%" PRIu64, e[n - 1].sequence);
    argv[0] = PA_RKEY_REVOCATIONS_LAST_SEQ;
    argv[1 + n] = expected;
    argv[2 + n] = next;
    for (size_t i = 0; i < n; i++) {
        pa_rkey_revoked(keys[i], sizeof keys[i], e[i].group);
        snprintf(serials[i], sizeof serials[i], "%" PRIu32, e[i].serial);
        argv[1 + i] = keys[i];
        argv[3 + n + i] = serials[i];
    }
    redisReply *r = rstore_eval(p->rs, p->script_apply, (int)(1 + n), (int)(2 + n), argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        snprintf(err, errlen, "applying revocations: %s",
                 !r ? rstore_error(p->rs) : r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    } else {
        rc = r->element[0]->integer == 1 ? 1 : 0;
        *now_last = (uint64_t)r->element[1]->integer;
    }
    freeReplyObject(r);
out:
    free(argv), free(keys), free(serials);
    return rc;
}

static int poll_locked(revocation_puller *p, char *err, size_t errlen) {
    uint64_t after;
    if (read_last_seq(p, &after, err, errlen) != 0) return -1;
    atomic_store(&p->last_seq, after);
    int total = 0;
    for (;;) {
        audit_revocation *e = NULL;
        size_t n = 0;
        uint64_t server_last = 0, now_last = after;
        if (audit_client_list_revocations(p->cfg.client, after, p->cfg.batch, &e, &n, &server_last, err,
                                          errlen) != 0)
            return total ? total : -1;
        if (n == 0) {
            if (server_last < after)
                log_warn("audit.revocations.behind", LOG_U("applied", after), LOG_U("audit_last", server_last), LOG_END);
            free(e);
            break;
        }
        int rc = apply(p, after, e, n, &now_last, err, errlen);
        if (rc == 1) {
            total += (int)n;
            metric_add(p->m_applied, n);
            for (size_t i = 0; i < n; i++)
                log_info("audit.revocation.applied", LOG_U("sequence", e[i].sequence), LOG_U("group", e[i].group),
                         LOG_U("serial", e[i].serial), LOG_END);
        }
        free(e);
        if (rc < 0) return total ? total : -1;
        after = now_last;   /* ours, or the value another server moved it to */
        atomic_store(&p->last_seq, after);
        metric_set(p->m_last, (int64_t)after);
        if (after >= server_last) break;
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

static void run(task *t, void *arg) {
    revocation_puller *p = arg;
    bool failing = false;
    do {
        char err[300];
        int rc = revocation_puller_poll(p, err, sizeof err);
        if (rc < 0 && !failing) log_warn("audit.revocations.unavailable", LOG_S("error", err), LOG_END);
        if (rc >= 0 && failing) log_info("audit.revocations.recovered", LOG_END);
        failing = rc < 0;
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
    p->rs = rstore_new(&cfg->store, true, err, errlen);
    if (!p->rs || (p->script_apply = rstore_script_add(p->rs, APPLY_LUA)) < 0 ||
        pthread_mutex_init(&p->mu, NULL) != 0) {
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
