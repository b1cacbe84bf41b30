/* cluster_store_bench.c -- what the store carries on a Redis Cluster of 1
 * and of 3 masters, in one run.
 *
 * Starts a private cluster (tests/harness/cluster_fixture.h) with one
 * master, then one with three, and on each runs the same load: N threads,
 * each with its own rstore (as each worker of the activation server has),
 * sending pipelined batches of a policy-shaped script -- read the group
 * record, take a token from the group's bucket, write the place on the
 * key's record, all under one hash tag {g:N} -- over keys of many groups,
 * so the batches spread over every master. Prints calls/s for both and the
 * ratio. On a small shared machine the masters compete for the same cores,
 * so the ratio says more about the routing's overhead than about the
 * cluster's scaling; figures are indicative. Run by hand; --quick is the
 * smoke run ctest registers (it asserts no figure).
 *
 *   cluster_store_bench [--threads N] [--seconds S] [--batch B] [--groups G] [--quick] */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cluster_fixture.h"
#include "redis_store.h"

/* The shape of policy.lua's grant: a read of the group record (named in
 * ARGV, as policy.lua does: the ACL lets the server only read it), a
 * bucket, a place; all in one slot. */
static const char SCRIPT[] =
    "local max = redis.call('HGET', ARGV[5], 'max_machines')\n"
    "local b = redis.call('HMGET', KEYS[1], 't', 'ts')\n"
    "local now = tonumber(ARGV[1])\n"
    "local burst = tonumber(ARGV[3])\n"
    "local t = tonumber(b[1]) or burst\n"
    "local ts = tonumber(b[2]) or now\n"
    "t = math.min(burst, t + (now - ts) * tonumber(ARGV[2]))\n"
    "if t < 1 then return {0, 0} end\n"
    "redis.call('HSET', KEYS[1], 't', t - 1, 'ts', now)\n"
    "redis.call('HSET', KEYS[2], ARGV[4], now)\n"
    "return {1, redis.call('HLEN', KEYS[2])}\n";

typedef struct opts {
    int threads; /* client threads, one rstore each */
    int seconds; /* per cluster size */
    int batch;   /* scripts per pipeline */
    int groups;  /* groups the keys are spread over */
} opts;

typedef struct runner {
    const opts *o;
    const char *url;  /* the cluster */
    int id;           /* thread number: its machine field */
    long long calls;  /* scripts answered */
    long long failed; /* scripts with no or a wrong answer */
    pthread_t thread;
} runner;

/* One pipelined batch; counts what came back. */
static void one_batch(runner *r, rstore *s, int script, unsigned *seed) {
    char keys[3][48], now[24], mach[16];
    snprintf(now, sizeof now, "%lld", (long long)(pa_mono_ms() / 1000));
    snprintf(mach, sizeof mach, "m%d", r->id);
    for (int i = 0; i < r->o->batch; i++) {
        unsigned g = (unsigned)rand_r(seed) % (unsigned)r->o->groups;
        snprintf(keys[0], sizeof keys[0], "{g:%u}:group", g);
        snprintf(keys[1], sizeof keys[1], "{g:%u}:rl", g);
        snprintf(keys[2], sizeof keys[2], "{g:%u}:k:%u", g, (unsigned)rand_r(seed) % 64);
        const char *argv[] = {keys[1], keys[2], now, "1000000", "1000000", mach, keys[0]};
        if (rstore_eval_append(s, script, 2, 5, argv, NULL) != 0) r->failed++;
    }
    for (int i = 0; i < r->o->batch; i++) {
        redisReply *rep = rstore_get_reply(s);
        if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) r->calls++;
        else if (rstore_reply_noscript(rep)) r->calls++; /* loaded at connect; counted, not expected */
        else if (r->failed++ == 0)
            fprintf(stderr, "cluster_store_bench: thread %d: %s\n", r->id, rep ? rep->str : rstore_error(s));
        if (rep) freeReplyObject(rep);
    }
}

static void *run(void *arg) {
    runner *r = arg;
    char err[256];
    rstore_config cfg = {.url = r->url, .connect_timeout_ms = 500, .command_timeout_ms = 2000};
    rstore *s = rstore_new(&cfg, false, err, sizeof err);
    int script = s ? rstore_script_add(s, SCRIPT) : -1;
    if (!s || script < 0) {
        fprintf(stderr, "cluster_store_bench: thread %d failed to connect: %s\n", r->id, s ? "script" : err);
        r->failed++;
        rstore_free(s);
        return NULL;
    }
    unsigned seed = 0x9e3779b9u * (unsigned)(r->id + 1);
    long long end = pa_mono_ms() + r->o->seconds * 1000LL;
    while (pa_mono_ms() < end) one_batch(r, s, script, &seed);
    rstore_free(s);
    return NULL;
}

/* The load on a fresh cluster of `masters`; calls/s, or -1. */
static double measure(const opts *o, int masters) {
    cluster_fixture f;
    if (cluster_fixture_start(&f, masters, 0) != 0) return -1;
    char url[1024];
    cluster_fixture_url(&f, "activation", FIXTURE_PW_ACTIVATION, url, sizeof url);
    runner *rs = calloc((size_t)o->threads, sizeof *rs);
    if (!rs) {
        cluster_fixture_stop(&f);
        return -1;
    }
    long long calls = 0, failed = 0;
    uint64_t t0 = pa_mono_ns();
    for (int t = 0; t < o->threads; t++) {
        rs[t] = (runner){.o = o, .url = url, .id = t};
        pthread_create(&rs[t].thread, NULL, run, &rs[t]);
    }
    for (int t = 0; t < o->threads; t++) {
        pthread_join(rs[t].thread, NULL);
        calls += rs[t].calls, failed += rs[t].failed;
    }
    double secs = (double)(pa_mono_ns() - t0) / 1e9;
    free(rs);
    cluster_fixture_stop(&f);
    printf("%d master%s: %lld calls in %.1f s, %.0f calls/s%s\n", masters, masters > 1 ? "s" : "", calls, secs,
           (double)calls / secs, failed ? " (some calls failed)" : "");
    if (failed) printf("cluster_store_bench: %lld calls failed on %d masters\n", failed, masters);
    return failed ? -1 : (double)calls / secs;
}

static int usage(FILE *to, int code) {
    fprintf(to,
            "usage: cluster_store_bench [--threads N] [--seconds S] [--batch B] [--groups G] [--quick]\n"
            "  Store throughput on a Redis Cluster of 1 and of 3 masters (loopback, private).\n"
            "  --threads N   client threads, one store each (default 4)\n"
            "  --seconds S   load per cluster size (default 5)\n"
            "  --batch B     scripts per pipeline (default 32)\n"
            "  --groups G    groups the keys spread over (default 1000)\n"
            "  --quick       a short smoke run (1 s each)\n");
    return code;
}

static int parse(int argc, char **argv, opts *o) {
    for (int i = 1; i < argc; i++) {
        int *slot = strcmp(argv[i], "--threads") == 0   ? &o->threads
                    : strcmp(argv[i], "--seconds") == 0 ? &o->seconds
                    : strcmp(argv[i], "--batch") == 0   ? &o->batch
                    : strcmp(argv[i], "--groups") == 0  ? &o->groups
                                                        : NULL;
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout, 0);
            return -1; /* done, successfully */
        }
        if (strcmp(argv[i], "--quick") == 0) {
            o->seconds = 1;
            continue;
        }
        char *end;
        long v = slot && i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
        if (!slot || i + 1 >= argc || *end || v < 1 || v > 100000) {
            fprintf(stderr, "cluster_store_bench: bad argument '%s'\n", argv[i]);
            return usage(stderr, 2);
        }
        *slot = (int)v;
        i++;
    }
    return 0;
}

int main(int argc, char **argv) {
    opts o = {.threads = 4, .seconds = 5, .batch = 32, .groups = 1000};
    int rc = parse(argc, argv, &o);
    if (rc != 0) return rc < 0 ? 0 : rc;
    printf("cluster_store_bench: %d threads, batches of %d, %d groups, %d s per size\n", o.threads, o.batch, o.groups,
           o.seconds);
    double one = measure(&o, 1), three = measure(&o, 3);
    if (one <= 0 || three <= 0) {
        printf("cluster_store_bench: a run failed\n");
        return 1;
    }
    printf("3 masters / 1 master: %.2f\n", three / one);
    return 0;
}
