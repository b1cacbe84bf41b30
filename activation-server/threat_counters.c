/* threat_counters.c -- see threat_counters.h. The flusher takes each tally's
 * lock just long enough to copy its cells out and clear them, then writes
 * that copy to Redis in one pipeline per tally, so a worker never waits on
 * Redis and waits on the flusher only for a memcpy. */
#include "threat_counters.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "redis_keys.h"
#include "task.h"

#define MAX_LOAD (THREAT_TALLY_CELLS * 3 / 4) /* keeps probes short; counts beyond are dropped */

typedef struct threat_cell {
    uint32_t group;           /* the group counted */
    uint32_t minute;          /* unix minute; 0 marks an empty cell */
    uint32_t n[THREAT_KINDS]; /* counts by kind */
} threat_cell;

typedef struct threat_hitter {
    char address[THREAT_ADDRESS_MAX]; /* client address (IPv6: its /64) */
    uint32_t hour;                    /* unix hour of the refusals */
    uint64_t count;                   /* refusals (space-saving: may over-count) */
} threat_hitter;

struct threat_tally {
    pthread_mutex_t lock;                          /* owner thread vs. the flusher */
    struct threat_tally *next;                     /* the counters' list */
    bool claimed;                                  /* in use by a thread (else reusable) */
    uint32_t used;                                 /* cells holding counts */
    uint32_t n_hitters;                            /* hitters in use */
    threat_cell cells[THREAT_TALLY_CELLS];         /* open addressing by (group, minute) */
    threat_hitter hitters[THREAT_TALLY_ADDRESSES]; /* the most refusing addresses */
    metric *dropped;                               /* pa_threat_counts_dropped_total */
};

struct threat_counters {
    pthread_mutex_t lock;                               /* the tally list */
    pthread_mutex_t flush_lock;                         /* one flush at a time: the task's, a test's, the last */
    threat_tally *tallies;                              /* every tally ever claimed */
    rstore *redis;                                      /* the flusher's own connection (lazy) */
    task *task;                                         /* the periodic flush; NULL when flush_ms is 0 */
    int flush_ms;                                       /* --threat-flush-ms */
    metric *dropped;                                    /* counts that found no cell */
    metric *failures;                                   /* flushes Redis refused */
    threat_cell snap_cells[THREAT_TALLY_CELLS];         /* one tally's copy, flush_lock */
    threat_hitter snap_hitters[THREAT_TALLY_ADDRESSES]; /* likewise */
};

static const char kind_letter[THREAT_KINDS] = {
    [THREAT_ATTEMPT] = PA_THREAT_KIND_ATTEMPT,
    [THREAT_NOT_GENUINE] = PA_THREAT_KIND_NOT_GENUINE,
    [THREAT_RATE_LIMITED] = PA_THREAT_KIND_RATE_LIMITED,
    [THREAT_GRANT] = PA_THREAT_KIND_GRANT,
    [THREAT_MACHINE_LIMIT] = PA_THREAT_KIND_MACHINE_LIMIT,
};

/* ---- hot path ----------------------------------------------------------- */

static void cell_add(threat_tally *t, uint32_t group, uint32_t minute, threat_kind kind) {
    uint32_t h = (group * 2654435761u) ^ (minute * 40503u);
    for (uint32_t i = 0; i < THREAT_TALLY_CELLS; i++) {
        threat_cell *c = &t->cells[(h + i) & (THREAT_TALLY_CELLS - 1)];
        if (c->minute == minute && c->group == group) {
            c->n[kind]++;
            return;
        }
        if (c->minute != 0) continue;
        if (t->used >= MAX_LOAD) break;
        *c = (threat_cell){.group = group, .minute = minute};
        c->n[kind] = 1;
        t->used++;
        return;
    }
    metric_inc(t->dropped);
}

static void hitter_add(threat_tally *t, const char *address, uint32_t hour) {
    threat_hitter *least = NULL;
    for (uint32_t i = 0; i < t->n_hitters; i++) {
        threat_hitter *h = &t->hitters[i];
        if (h->hour == hour && strcmp(h->address, address) == 0) {
            h->count++;
            return;
        }
        if (!least || h->count < least->count) least = h;
    }
    uint64_t inherited = 0;
    if (t->n_hitters < THREAT_TALLY_ADDRESSES) {
        least = &t->hitters[t->n_hitters++];
    } else {
        inherited = least->count;
    }
    snprintf(least->address, sizeof least->address, "%s", address);
    least->hour = hour;
    least->count = inherited + 1;
}

void threat_count(threat_tally *t, uint32_t group, threat_kind kind, const char *address) {
    if (!t || (unsigned)kind >= THREAT_KINDS) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    uint32_t minute = (uint32_t)(ts.tv_sec / 60);
    bool refusal = kind == THREAT_NOT_GENUINE || kind == THREAT_RATE_LIMITED;
    pthread_mutex_lock(&t->lock);
    cell_add(t, group, minute, kind);
    if (refusal && address && *address) hitter_add(t, address, minute / 60);
    pthread_mutex_unlock(&t->lock);
}

/* ---- tallies ------------------------------------------------------------ */

threat_tally *threat_tally_claim(threat_counters *tc) {
    if (!tc) return NULL;
    pthread_mutex_lock(&tc->lock);
    threat_tally *t = tc->tallies;
    while (t && t->claimed) t = t->next;
    if (!t && (t = calloc(1, sizeof *t))) {
        pthread_mutex_init(&t->lock, NULL);
        t->dropped = tc->dropped;
        t->next = tc->tallies;
        tc->tallies = t;
    }
    if (t) t->claimed = true;
    pthread_mutex_unlock(&tc->lock);
    return t;
}

/* The counts stay in the tally until the next flush. */
void threat_tally_release(threat_tally *t) {
    if (!t) return;
    pthread_mutex_lock(&t->lock);
    t->claimed = false;
    pthread_mutex_unlock(&t->lock);
}

/* ---- flush -------------------------------------------------------------- */

static uint32_t utc_stamp(uint32_t unix_s, bool with_hour) {
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    uint32_t day = (uint32_t)((tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
    return with_hour ? day * 100 + (uint32_t)tm.tm_hour : day;
}

/* Appends one command given as strings; counts it in *sent. */
static int append(rstore *r, int *sent, int argc, const char **argv) {
    if (rstore_append_argv(r, argc, argv, NULL) != 0) return -1;
    (*sent)++;
    return 0;
}

static int append_cell(rstore *r, int *sent, const threat_cell *c) {
    char rkey[PA_RKEY_MAX], field[24], num[24], ttl[16];
    if (pa_rkey_threat_group(rkey, sizeof rkey, c->group, utc_stamp(c->minute * 60u, false)) < 0) return -1;
    for (int k = 0; k < THREAT_KINDS; k++) {
        if (!c->n[k]) continue;
        snprintf(field, sizeof field, PA_THREAT_FIELD_FMT, (unsigned)(c->minute % 1440), kind_letter[k]);
        snprintf(num, sizeof num, "%u", (unsigned)c->n[k]);
        if (append(r, sent, 4, (const char *[]){"HINCRBY", rkey, field, num}) != 0) return -1;
    }
    snprintf(ttl, sizeof ttl, "%d", PA_THREAT_RETENTION_S);
    return append(r, sent, 3, (const char *[]){"EXPIRE", rkey, ttl});
}

static int append_hitter(rstore *r, int *sent, const threat_hitter *h) {
    char rkey[PA_RKEY_MAX], num[24], ttl[16], keep[16];
    if (pa_rkey_threat_top(rkey, sizeof rkey, utc_stamp(h->hour * 3600u, true)) < 0) return -1;
    snprintf(num, sizeof num, "%llu", (unsigned long long)h->count);
    snprintf(ttl, sizeof ttl, "%d", PA_THREAT_RETENTION_S);
    snprintf(keep, sizeof keep, "%d", -(PA_THREAT_TOP_KEEP + 1));
    if (append(r, sent, 4, (const char *[]){"ZINCRBY", rkey, num, h->address}) != 0 ||
        append(r, sent, 4, (const char *[]){"ZREMRANGEBYRANK", rkey, "0", keep}) != 0)
        return -1;
    return append(r, sent, 3, (const char *[]){"EXPIRE", rkey, ttl});
}

/* Reads `sent` replies; -1 when any is missing or an error (logged once). */
static int read_replies(threat_counters *tc, int sent) {
    int rc = 0;
    for (int i = 0; i < sent; i++) {
        redisReply *rep = rstore_get_reply(tc->redis);
        if (!rep) {
            log_warn("threat.flush_failed", LOG_S("error", rstore_error(tc->redis)), LOG_END);
            return -1;
        }
        if (rep->type == REDIS_REPLY_ERROR && rc == 0) {
            log_warn("threat.flush_failed", LOG_S("error", rep->str), LOG_END);
            rc = -1;
        }
        freeReplyObject(rep);
    }
    return rc;
}

/* Copies one tally's counts out and clears it; returns the cells copied. */
static uint32_t take(threat_counters *tc, threat_tally *t, uint32_t *n_hitters) {
    uint32_t n = 0;
    pthread_mutex_lock(&t->lock);
    for (uint32_t i = 0; i < THREAT_TALLY_CELLS && n < t->used; i++)
        if (t->cells[i].minute) tc->snap_cells[n++] = t->cells[i];
    if (t->used) memset(t->cells, 0, sizeof t->cells);
    t->used = 0;
    *n_hitters = t->n_hitters;
    memcpy(tc->snap_hitters, t->hitters, t->n_hitters * sizeof *t->hitters);
    t->n_hitters = 0;
    pthread_mutex_unlock(&t->lock);
    return n;
}

static int flush_tally(threat_counters *tc, threat_tally *t) {
    uint32_t n_hitters, n = take(tc, t, &n_hitters);
    if (n == 0 && n_hitters == 0) return 0;
    int sent = 0, rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) rc = append_cell(tc->redis, &sent, &tc->snap_cells[i]);
    for (uint32_t i = 0; i < n_hitters && rc == 0; i++) rc = append_hitter(tc->redis, &sent, &tc->snap_hitters[i]);
    if (rc != 0) log_warn("threat.flush_failed", LOG_S("error", rstore_error(tc->redis)), LOG_END);
    if (read_replies(tc, sent) != 0) rc = -1;
    return rc;
}

int threat_counters_flush(threat_counters *tc) {
    if (!tc) return 0;
    int rc = 0;
    pthread_mutex_lock(&tc->flush_lock);
    pthread_mutex_lock(&tc->lock);
    threat_tally *first = tc->tallies; /* new tallies go in front: this list stays valid */
    pthread_mutex_unlock(&tc->lock);
    for (threat_tally *t = first; t; t = t->next)
        if (flush_tally(tc, t) != 0) rc = -1;
    pthread_mutex_unlock(&tc->flush_lock);
    if (rc != 0) metric_inc(tc->failures);
    return rc;
}

static void flush_loop(task *t, void *arg) {
    threat_counters *tc = arg;
    while (task_sleep(t, tc->flush_ms)) threat_counters_flush(tc);
}

threat_counters *threat_counters_start(const threat_counters_config *cfg, char *err, size_t errlen) {
    threat_counters *tc = calloc(1, sizeof *tc);
    if (!tc) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&tc->lock, NULL);
    pthread_mutex_init(&tc->flush_lock, NULL);
    tc->flush_ms = cfg->flush_ms;
    tc->dropped = metric_counter("pa_threat_counts_dropped_total",
                                 "threat counts dropped: a worker's table was full between two flushes", "");
    tc->failures = metric_counter("pa_threat_flush_failures_total", "threat count flushes Redis refused", "");
    if (!(tc->redis = rstore_new(&cfg->store, true, err, errlen))) {
        threat_counters_stop(tc);
        return NULL;
    }
    if (tc->flush_ms > 0 && !(tc->task = task_start("threat-flush", flush_loop, tc, err, errlen))) {
        threat_counters_stop(tc);
        return NULL;
    }
    return tc;
}

void threat_counters_stop(threat_counters *tc) {
    if (!tc) return;
    task_stop(tc->task);
    if (tc->redis && tc->flush_ms > 0) threat_counters_flush(tc);
    for (threat_tally *t = tc->tallies, *next; t; t = next) {
        next = t->next;
        pthread_mutex_destroy(&t->lock);
        free(t);
    }
    rstore_free(tc->redis);
    pthread_mutex_destroy(&tc->lock);
    pthread_mutex_destroy(&tc->flush_lock);
    free(tc);
}
