/* admin_search.c -- what the machine directory costs (docs/admin.md
 * "Directory layout"), in one run:
 *   - Redis memory per machine: INFO used_memory before and after loading
 *     N machine records (default 1 000 000) through machine_dir.lua's
 *     ingest (the admin server's own code path, 500 log entries per call,
 *     entries made up here instead of read from logs), divided by N, with
 *     the records' and the index's own MEMORY USAGE beside it;
 *   - search latency, p50 / p99 over many queries of one page (50 rows):
 *     hostname prefix, exact IP, group + serial, through machine_search
 *     (the code behind GET /api/v1/machines, without HTTP);
 *   - entries/s of the ingest task's own step (machine_ingest_step: XREAD
 *     of the logs, then machine_dir.lua ingestn) over `--log-entries` new
 *     machines written into the groups' logs first;
 *   - rows/s of a full walk through machine_rows (what an export reads).
 * Redis runs with the production configuration and ACL users, plus one
 * measuring user (INFO needs @dangerous) and AOF off for the load (the
 * figure is memory, not disk). Client and Redis share this machine's
 * cores. No targets are asserted: the figures are printed. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_machines.h"
#include "clock.h"
#include "fixture.h"
#include "machine_dir.h"
#include "machine_ingest.h"
#include "machine_rows.h"
#include "machine_search.h"
#include "redis_keys.h"

#define GROUPS BENCH_GROUPS

static int die(const char *what) {
    fprintf(stderr, "admin_search: %s\n", what);
    return -1;
}

/* MEMORY USAGE summed over the keys matching `pattern`. */
static long long usage_of(redisContext *c, const char *pattern, long *keys) {
    long long total = 0;
    char cursor[32] = "0";
    *keys = 0;
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) return -1;
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        redisReply *ks = r->element[1];
        for (size_t i = 0; i < ks->elements; i++)
            redisAppendCommand(c, "MEMORY USAGE %b SAMPLES 0", ks->element[i]->str, ks->element[i]->len);
        for (size_t i = 0; i < ks->elements; i++) {
            redisReply *u;
            if (redisGetReply(c, (void **)&u) == REDIS_OK && u) {
                if (u->type == REDIS_REPLY_INTEGER) total += u->integer;
                freeReplyObject(u);
            }
        }
        *keys += (long)ks->elements;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return total;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One page (up to 50 rows) per query; prints p50 / p99 and the mean rows. */
static void latency(rstore *r, const char *what, long n, long queries, long now,
                    void (*make)(long i, long now, machine_filters *f, char *buf, size_t len)) {
    double *ms = calloc((size_t)queries, sizeof *ms);
    if (!ms) return;
    long rows = 0;
    char buf[64], err[160];
    for (long q = 0; q < queries; q++) {
        machine_filters f = {.status = MACHINE_STATUS_ANY};
        make(bench_mix((uint32_t)q * 7919u) % (uint32_t)n, now, &f, buf, sizeof buf);
        double t0 = pa_mono_s();
        machine_search *s = machine_search_open(r, &f, NULL, err, sizeof err);
        const machine_record *rec;
        int got = 0;
        while (s && got < 50 && machine_search_next(s, 5000, &rec) == 1) got++;
        machine_search_close(s);
        ms[q] = (pa_mono_s() - t0) * 1000;
        rows += got;
    }
    qsort(ms, (size_t)queries, sizeof *ms, cmp_double);
    printf("  %-28s p50 %6.2f ms  p99 %6.2f ms  (%ld queries, %.1f rows each)\n", what, ms[queries / 2],
           ms[queries * 99 / 100], queries, (double)rows / queries);
    free(ms);
}

static void by_hostname_prefix(long i, long now, machine_filters *f, char *buf, size_t len) {
    bench_machine x;
    bench_machine_make(i, now, &x);
    snprintf(buf, len, "%.6s*", x.h); /* "ws-abc*": ~240 machines of 1M */
    f->hostname = buf;
}

static void by_ip(long i, long now, machine_filters *f, char *buf, size_t len) {
    bench_machine x;
    bench_machine_make(i, now, &x);
    snprintf(buf, len, "%s", x.ip);
    f->ip = buf;
}

static void by_key(long i, long now, machine_filters *f, char *buf, size_t len) {
    (void)now;
    (void)buf;
    (void)len;
    f->has_group = f->has_serial = true;
    f->group = (uint32_t)(1000 + i % GROUPS);
    f->serial = (uint32_t)(1 + i / GROUPS);
}

/* Writes `k` new machines (numbers from `first`) into the groups' logs,
 * as policy.lua would, then times the ingest task draining them. */
static void ingest_logs(redisContext *m, rstore *r, long first, long k, long now) {
    for (long i = first; i < first + k; i++) {
        bench_machine x;
        bench_machine_make(i, now, &x);
        char key[PA_RKEY_MAX];
        uint32_t g = (uint32_t)(1000 + i % GROUPS);
        if (pa_rkey_group_mlog(key, sizeof key, g) < 0) return;
        if (i < first + GROUPS) redisAppendCommand(m, "SADD " PA_RKEY_GROUPS " %u", g);
        redisAppendCommand(m, "XADD %s * op a m %b g %s s %s t %s ip %s h %s mac %s hs %s os linux e %s", key, x.m,
                           (size_t)16, x.g, x.s, x.t, x.ip, x.h, x.mac, x.hs, x.e);
    }
    for (long i = first; i < first + k + (k < GROUPS ? k : GROUPS); i++) {
        redisReply *rep;
        if (redisGetReply(m, (void **)&rep) != REDIS_OK) return;
        freeReplyObject(rep);
    }
    machine_ingest *in = machine_ingest_new(r, 600000);
    if (!in) return;
    double t0 = pa_mono_s();
    long got = machine_ingest_drain(in, 1000);
    double dt = pa_mono_s() - t0;
    if (got < 0) fprintf(stderr, "admin_search: ingest: %s\n", machine_ingest_error(in));
    else
        printf("ingest from %d logs (machine_ingest_step): %ld entries in %.1f s = %.0f entries/s\n", GROUPS, got, dt,
               got / dt);
    machine_ingest_free(in);
}

static void full_scan(rstore *r) {
    char err[160];
    machine_filters f = {.status = MACHINE_STATUS_ANY};
    machine_rows *it = machine_rows_open(r, &f, err, sizeof err);
    if (!it) return;
    const machine_row *row;
    long n = 0;
    double t0 = pa_mono_s();
    while (machine_rows_next(it, &row) == 1) n++;
    double dt = pa_mono_s() - t0;
    machine_rows_close(it);
    printf("  full walk through machine_rows: %ld rows in %.1f s = %.0f rows/s\n", n, dt, n / dt);
}

static void usage(FILE *to) {
    fprintf(to,
            "usage: admin_search [--machines N] [--queries Q] [--log-entries L]\n"
            "  Loads N machine records (default 1000000) into a private Redis and prints\n"
            "  ingest entries/s, memory per machine, search p50/p99 (Q queries each,\n"
            "  default 2000), full-walk rows/s, then the ingest task's entries/s over L\n"
            "  new machines read from the logs (default 100000; 0: skip).\n");
}

int main(int argc, char **argv) {
    long n = 1000000, queries = 2000, log_entries = 100000;
    static const struct option opts[] = {{"machines", required_argument, 0, 'n'},
                                         {"queries", required_argument, 0, 'q'},
                                         {"log-entries", required_argument, 0, 'l'},
                                         {"help", no_argument, 0, 'h'},
                                         {0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'n') n = atol(optarg);
        else if (c == 'q') queries = atol(optarg);
        else if (c == 'l') log_entries = atol(optarg);
        else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (n < 1 || queries < 100) {
        usage(stderr);
        return 2;
    }
    redis_fixture a;
    if (redis_fixture_start(&a, FIXTURE_STORE_ACTIVATION) != 0) {
        die("cannot start redis");
        return 1;
    }
    int rc = 1;
    char url[256], err[200];
    redisContext *m = bench_measure_connect(&a);
    if (!m) goto out;
    redis_fixture_url(&a, "admin", url, sizeof url);
    rstore_config cfg = {.url = url, .command_timeout_ms = 60000};
    rstore *r = rstore_new(&cfg, false, err, sizeof err);
    if (!r) {
        fprintf(stderr, "admin_search: %s\n", err);
        redisFree(m);
        goto out;
    }
    long now = (long)time(NULL);
    long long used0 = bench_used_memory(m);
    if (bench_machines_load(r, n, now) == 0) {
        long long used1 = bench_used_memory(m);
        long kr, ki;
        long long rec = usage_of(m, PA_RKEY_MD_RECORD_PREFIX "*", &kr), ix = usage_of(m, "{md}:ix*", &ki);
        printf("Redis used_memory: %+lld bytes = %.1f bytes per machine (target <= 400)\n", used1 - used0,
               (double)(used1 - used0) / n);
        printf("  records: %ld hash buckets, MEMORY USAGE %.1f bytes per machine\n", kr, (double)rec / n);
        printf("  index:   %ld zsets (root + buckets), MEMORY USAGE %.1f bytes per machine\n", ki, (double)ix / n);
        printf("search, one page of up to 50 rows, through machine_search (no HTTP):\n");
        latency(r, "hostname prefix (ws-XYZ*)", n, queries, now, by_hostname_prefix);
        latency(r, "ip exact", n, queries, now, by_ip);
        latency(r, "group + serial", n, queries, now, by_key);
        full_scan(r);
        if (log_entries > 0) ingest_logs(m, r, n, log_entries, now);
        rc = 0;
    }
    rstore_free(r);
    redisFree(m);
out:
    redis_fixture_stop(&a);
    return rc;
}
