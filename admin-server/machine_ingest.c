/* machine_ingest.c -- see machine_ingest.h. */
#include "machine_ingest.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "machine_dir.h"
#include "redis_keys.h"
#include "task.h"

#define LOGS_PER_XREAD 64 /* logs named in one XREAD */
/* Log entries per machine_dir.lua call: one batch, its index changes sorted
 * and applied together. Bigger batches share more index buckets, but the
 * call holds Redis A (and the activation servers' requests) for its whole
 * length: 500 is about 0.1 s on a busy 2-core machine. */
#define ENTRIES_PER_CALL 500

struct machine_ingest {
    rstore *r;             /* the caller's connection */
    int lease_ms;          /* how long one step holds the lease */
    char token[33];        /* this ingest's lease token (random hex) */
    bool holds;            /* the last step held the lease */
    bool cluster;          /* Redis A is a Redis Cluster: one XREAD per log, logs trimmed here */
    const char *pos_key;   /* the log positions' hash (in {md}'s slot on a cluster) */
    const char *lease_key; /* the ingest lease (likewise) */
    char error[200];       /* why the last step failed */
};

machine_ingest *machine_ingest_new(rstore *r, int lease_ms) {
    machine_ingest *in = calloc(1, sizeof *in);
    if (!in) return NULL;
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        free(in);
        return NULL;
    }
    for (int i = 0; i < 16; i++) snprintf(in->token + 2 * i, 3, "%02x", raw[i]);
    in->r = r;
    in->lease_ms = lease_ms > 0 ? lease_ms : 10000;
    in->cluster = rstore_is_cluster(r);
    in->pos_key = in->cluster ? PA_RKEY_MLOG_POS_CLUSTER : PA_RKEY_MLOG_POS;
    in->lease_key = in->cluster ? PA_RKEY_INGEST_LEASE_CLUSTER : PA_RKEY_INGEST_LEASE;
    return in;
}

void machine_ingest_free(machine_ingest *in) { free(in); }
bool machine_ingest_holds(const machine_ingest *in) { return in->holds; }
const char *machine_ingest_error(const machine_ingest *in) { return in->error; }

static int failed(machine_ingest *in, const char *what, redisReply *rep) {
    snprintf(in->error, sizeof in->error, "%s: %s", what,
             !rep                             ? rstore_error(in->r)
             : rep->type == REDIS_REPLY_ERROR ? rep->str
                                              : "unexpected reply");
    if (rep) freeReplyObject(rep);
    return -1;
}

static int take_lease(machine_ingest *in) {
    char ms[16];
    snprintf(ms, sizeof ms, "%d", in->lease_ms);
    const char *argv[] = {in->lease_key, in->token, ms};
    redisReply *rep = machine_dir_call(in->r, "lease", 3, argv, NULL);
    if (!rep || rep->type != REDIS_REPLY_INTEGER) return failed(in, "ingest lease", rep);
    in->holds = rep->integer == 1;
    freeReplyObject(rep);
    return 0;
}

/* The log names: one per group and per order. */
typedef struct logs {
    char **key; /* log key names */
    char **pos; /* their saved positions ("0-0" when none) */
    size_t n;
} logs;

static void logs_free(logs *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->key[i]);
        free(l->pos[i]);
    }
    free(l->key);
    free(l->pos);
    memset(l, 0, sizeof *l);
}

static int logs_add(logs *l, const char *key) {
    char **k = realloc(l->key, (l->n + 1) * sizeof *k);
    if (!k) return -1;
    l->key = k;
    char **p = realloc(l->pos, (l->n + 1) * sizeof *p);
    if (!p) return -1;
    l->pos = p;
    if (!(l->key[l->n] = strdup(key))) return -1;
    if (!(l->pos[l->n] = strdup("0-0"))) {
        free(l->key[l->n]);
        return -1;
    }
    l->n++;
    return 0;
}

static int list_logs(machine_ingest *in, logs *l) {
    const char *sets[] = {PA_RKEY_GROUPS, PA_RKEY_ORDERS};
    for (int s = 0; s < 2; s++) {
        redisReply *rep = rstore_command(in->r, "SMEMBERS %s", sets[s]);
        if (!rep || rep->type != REDIS_REPLY_ARRAY) return failed(in, sets[s], rep);
        for (size_t i = 0; i < rep->elements; i++) {
            const redisReply *m = rep->element[i];
            char key[PA_RKEY_MAX];
            int ok = -1;
            if (m->type == REDIS_REPLY_STRING && s == 0) {
                char *end;
                unsigned long id = strtoul(m->str, &end, 10);
                if (*end == 0 && id <= UINT32_MAX) ok = pa_rkey_group_mlog(key, sizeof key, (uint32_t)id);
            } else if (m->type == REDIS_REPLY_STRING) {
                ok = pa_rkey_order_mlog(key, sizeof key, m->str);
            }
            if (ok >= 0 && logs_add(l, key) != 0) {
                freeReplyObject(rep);
                snprintf(in->error, sizeof in->error, "out of memory");
                return -1;
            }
        }
        freeReplyObject(rep);
    }
    return 0;
}

/* The value of field `name` in an entry's [f, v, f, v...] array. */
static const redisReply *field(const redisReply *fv, const char *name) {
    for (size_t i = 0; i + 1 < fv->elements; i += 2)
        if (fv->element[i]->type == REDIS_REPLY_STRING && strcmp(fv->element[i]->str, name) == 0)
            return fv->element[i + 1];
    return NULL;
}

/* One script call being made: the logs it saves positions of and the
 * entries (pointers into the XREAD answer) it takes in. */
typedef struct batch {
    const redisReply *log[LOGS_PER_XREAD];  /* the logs' key names */
    const redisReply *last[LOGS_PER_XREAD]; /* the last entry id of each in this batch */
    size_t n_logs;
    const redisReply *entry[ENTRIES_PER_CALL]; /* each entry's [f, v, ...] array (or NULL) */
    size_t n_entries;
} batch;

/* On Redis Cluster, after the batch's positions are saved: each log drops
 * what the directory now holds (what ingestn does inside the script on one
 * node), one pipelined XTRIM per log. A crash before it only leaves the
 * logs longer until the next batch; their MAXLEN still bounds them. */
static int trim_logs(machine_ingest *in, const batch *b) {
    size_t sent = 0;
    while (sent < b->n_logs) {
        const char *v[] = {"XTRIM", b->log[sent]->str, "MINID", "~", b->last[sent]->str};
        if (rstore_append_argv(in->r, 5, v, NULL) != 0) break;
        sent++;
    }
    int rc = sent == b->n_logs ? 0 : failed(in, "trimming a machine log", NULL);
    for (size_t l = 0; l < sent; l++) { /* every reply is read, so the pipeline stays in step */
        redisReply *rep = rstore_get_reply(in->r);
        if (!rep || rep->type != REDIS_REPLY_INTEGER) {
            if (rc == 0) rc = failed(in, "trimming a machine log", rep);
            else if (rep) freeReplyObject(rep);
        } else {
            freeReplyObject(rep);
        }
    }
    return rc;
}

/* Hands a batch to machine_dir.lua ingestn (and empties it). */
static int batch_send(machine_ingest *in, batch *b) {
    if (!b->n_entries) return 0;
    size_t n = 2 + 2 * b->n_logs + b->n_entries * MD_ENTRY_FIELDS;
    const char **v = calloc(n, sizeof *v);
    size_t *len = calloc(n, sizeof *len);
    if (!v || !len) {
        free(v);
        free(len);
        snprintf(in->error, sizeof in->error, "out of memory");
        return -1;
    }
    char nlogs[24];
    snprintf(nlogs, sizeof nlogs, "%zu", b->n_logs);
    v[0] = in->pos_key;
    len[0] = strlen(v[0]);
    v[1] = nlogs;
    len[1] = strlen(nlogs);
    size_t at = 2;
    for (size_t l = 0; l < b->n_logs; l++) {
        v[at] = b->log[l]->str;
        len[at++] = b->log[l]->len;
        v[at] = b->last[l]->str;
        len[at++] = b->last[l]->len;
    }
    for (size_t e = 0; e < b->n_entries; e++) {
        const redisReply *fv = b->entry[e];
        for (size_t f = 0; f < MD_ENTRY_FIELDS; f++, at++) {
            const redisReply *x = fv ? field(fv, md_entry_fields[f]) : NULL;
            v[at] = x ? x->str : "";
            len[at] = x ? x->len : 0;
        }
    }
    redisReply *rep = machine_dir_call(in->r, in->cluster ? "ingestn_keep" : "ingestn", n, v, len);
    free(v);
    free(len);
    if (!rep || rep->type != REDIS_REPLY_INTEGER) {
        b->n_logs = b->n_entries = 0;
        return failed(in, "machine directory ingest", rep);
    }
    freeReplyObject(rep);
    int rc = in->cluster ? trim_logs(in, b) : 0;
    b->n_logs = b->n_entries = 0;
    return rc;
}

/* Adds entry e of log `key` to the batch, sending it first when full. */
static int batch_add(machine_ingest *in, batch *b, const redisReply *key, const redisReply *e) {
    if (b->n_entries == ENTRIES_PER_CALL && batch_send(in, b) != 0) return -1;
    if (!b->n_logs || b->log[b->n_logs - 1] != key) b->log[b->n_logs++] = key;
    b->last[b->n_logs - 1] = e->element[0];
    const redisReply *fv = e->element[1];
    b->entry[b->n_entries++] = fv && fv->type == REDIS_REPLY_ARRAY ? fv : NULL;
    return 0;
}

/* The saved positions of logs [from, to). */
static int read_positions(machine_ingest *in, logs *l, size_t from, size_t to) {
    size_t k = to - from;
    const char **v = calloc(2 + k, sizeof *v);
    if (!v) return failed(in, "positions", NULL);
    v[0] = "HMGET";
    v[1] = in->pos_key;
    for (size_t i = 0; i < k; i++) v[2 + i] = l->key[from + i];
    redisReply *rep = rstore_commandargv(in->r, (int)(2 + k), v, NULL);
    free(v);
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != k) return failed(in, in->pos_key, rep);
    for (size_t i = 0; i < k; i++) {
        const redisReply *p = rep->element[i];
        char *copy = p->type == REDIS_REPLY_STRING ? strdup(p->str) : NULL;
        if (copy) {
            free(l->pos[from + i]);
            l->pos[from + i] = copy;
        }
    }
    freeReplyObject(rep);
    return 0;
}

/* The answers to reading logs [from, to) into reps: one XREAD naming them
 * all, or on Redis Cluster (each log in its own slot) one per log,
 * pipelined. Returns how many answers, or -1 (reps may hold some). */
static long xread_logs(machine_ingest *in, const logs *l, size_t from, size_t to, const char *count,
                       redisReply **reps) {
    size_t k = to - from, per = in->cluster ? 1 : k, calls = in->cluster ? k : 1;
    const char *v[4 + 2 * LOGS_PER_XREAD] = {"XREAD", "COUNT", count, "STREAMS"};
    size_t sent = 0;
    for (; sent < calls; sent++) {
        for (size_t i = 0; i < per; i++) {
            v[4 + i] = l->key[from + sent * per + i];
            v[4 + per + i] = l->pos[from + sent * per + i];
        }
        if (!in->cluster) {
            reps[0] = rstore_commandargv(in->r, (int)(4 + 2 * per), v, NULL);
            sent = 1;
            break;
        }
        if (rstore_append_argv(in->r, (int)(4 + 2 * per), v, NULL) != 0) break;
    }
    long rc = sent == calls ? (long)calls : failed(in, "xread", NULL);
    for (size_t c = 0; c < sent; c++) {
        if (in->cluster) reps[c] = rstore_get_reply(in->r);
        if (!reps[c] || (reps[c]->type != REDIS_REPLY_ARRAY && reps[c]->type != REDIS_REPLY_NIL)) {
            if (rc >= 0) rc = failed(in, "xread", reps[c]); /* frees it */
            else if (reps[c]) freeReplyObject(reps[c]);
            reps[c] = NULL;
        }
    }
    return rc;
}

/* Adds the entries of one XREAD answer to the batch; `taken` plus their
 * number, or -1. */
static long take_answer(machine_ingest *in, batch *b, const redisReply *rep, long taken) {
    for (size_t s = 0; rep->type == REDIS_REPLY_ARRAY && s < rep->elements && taken >= 0; s++) {
        const redisReply *st = rep->element[s];
        if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 || st->element[0]->type != REDIS_REPLY_STRING ||
            st->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        const redisReply *entries = st->element[1];
        for (size_t e = 0; e < entries->elements && taken >= 0; e++) {
            const redisReply *x = entries->element[e];
            if (x->type != REDIS_REPLY_ARRAY || x->elements != 2 || x->element[0]->type != REDIS_REPLY_STRING) continue;
            if (batch_add(in, b, st->element[0], x) != 0) taken = -1;
            else taken++;
        }
    }
    return taken;
}

/* Reads logs [from, to) once; returns the entries taken in or -1. */
static long read_logs(machine_ingest *in, logs *l, size_t from, size_t to, size_t per_log) {
    if (read_positions(in, l, from, to) != 0) return -1;
    char count[24];
    snprintf(count, sizeof count, "%zu", per_log);
    redisReply *reps[LOGS_PER_XREAD] = {0};
    long n = xread_logs(in, l, from, to, count, reps);
    batch *b = n >= 0 ? calloc(1, sizeof *b) : NULL;
    long taken = b ? 0 : n >= 0 ? failed(in, "xread", NULL) : -1;
    for (long a = 0; taken >= 0 && a < n; a++) taken = take_answer(in, b, reps[a], taken);
    if (taken >= 0 && batch_send(in, b) != 0) taken = -1;
    free(b);
    for (size_t a = 0; a < LOGS_PER_XREAD; a++)
        if (reps[a]) freeReplyObject(reps[a]);
    return taken;
}

long machine_ingest_step(machine_ingest *in, size_t per_log) {
    in->error[0] = 0;
    if (take_lease(in) != 0) return -1;
    if (!in->holds) return 0;
    logs l = {0};
    if (list_logs(in, &l) != 0) {
        logs_free(&l);
        return -1;
    }
    long total = 0;
    for (size_t i = 0; i < l.n; i += LOGS_PER_XREAD) {
        size_t end = i + LOGS_PER_XREAD < l.n ? i + LOGS_PER_XREAD : l.n;
        long n = read_logs(in, &l, i, end, per_log ? per_log : 1000);
        if (n < 0) {
            total = -1;
            break;
        }
        total += n;
    }
    logs_free(&l);
    return total;
}

long machine_ingest_drain(machine_ingest *in, size_t per_log) {
    long total = 0, n;
    while ((n = machine_ingest_step(in, per_log)) > 0) total += n;
    return n < 0 ? -1 : total;
}

/* ---- the task thread (common/task.h) ------------------------------------- */

struct machine_ingest_task {
    task *t;            /* runs loop() */
    rstore *r;          /* the task's own connection */
    machine_ingest *in; /* its ingest */
    int interval_ms;    /* pause between steps when nothing is new */
};

static void loop(task *t, void *arg) {
    machine_ingest_task *it = arg;
    while (!task_stopping(t)) {
        long n = machine_ingest_step(it->in, 1000);
        if (n < 0) log_warn("machine_ingest.failed", LOG_S("error", machine_ingest_error(it->in)), LOG_END);
        if (n <= 0) task_sleep(t, it->interval_ms); /* behind: go on at once */
    }
}

machine_ingest_task *machine_ingest_start(const rstore_config *cfg, int interval_ms, char *err, size_t errlen) {
    machine_ingest_task *it = calloc(1, sizeof *it);
    if (!it) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    it->interval_ms = interval_ms > 0 ? interval_ms : 1000;
    if (!(it->r = rstore_new(cfg, true, err, errlen))) {
        free(it);
        return NULL;
    }
    /* The lease outlives a few missed steps, so a slow step keeps it. */
    if (!(it->in = machine_ingest_new(it->r, it->interval_ms * 10 + 5000))) {
        snprintf(err, errlen, "out of memory");
    } else if ((it->t = task_start("machine_ingest", loop, it, err, errlen))) {
        return it;
    }
    machine_ingest_free(it->in);
    rstore_free(it->r);
    free(it);
    return NULL;
}

void machine_ingest_stop(machine_ingest_task *it) {
    if (!it) return;
    task_stop(it->t);
    machine_ingest_free(it->in);
    rstore_free(it->r);
    free(it);
}
