/* redis_wait_bench.c -- what --redis-wait-replicas costs an Activate.
 *
 * Starts Redis A as a primary with one replica (the tests' fixtures,
 * tests/harness), the activation-server binary through the activation
 * tests' environment, and runs the same load twice: a new key on a new
 * machine per call from a few client threads, first without WAIT, then
 * with --redis-wait-replicas 1 (the server restarted in between, same
 * stores). Prints Activate/s and the latency percentiles of both, and the
 * difference. Replica and primary share this machine, so the figure is
 * the protocol's cost (one more round trip and the replica's ack), not a
 * network's. Run by hand; it prints figures, it is not a test.
 *
 *   redis_wait_bench [--threads N] [--calls N]   (calls per thread) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "act_env.h"
#include "clock.h"

enum { GROUP = 51 };

typedef struct runner {
    act_env *e;
    char (*keys)[PK_TEXT_LEN + 1]; /* this thread's fresh keys */
    uint32_t first_serial;         /* of keys[0]; machines follow serials */
    int calls;
    double *lat_ms; /* per call */
    int failed;
    pthread_t thread;
} runner;

static void *run(void *arg) {
    runner *r = arg;
    uint8_t m[32];
    for (int i = 0; i < r->calls; i++) {
        env_machine(m, r->first_serial + (unsigned)i);
        rpc_result res;
        uint64_t t0 = pa_mono_ns();
        grpc_status_code st = env_activate(r->e, r->keys[i], m, sizeof m, &res, NULL);
        r->lat_ms[i] = (double)(pa_mono_ns() - t0) / 1e6;
        if (st != GRPC_STATUS_OK) r->failed++;
        rpc_result_clear(&res);
    }
    rpc_client_thread_done();
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct figures {
    double per_s, p50, p99;
    int failed;
} figures;

/* One load run with keys [base, base + threads*calls). */
static int load(act_env *e, int threads, int calls, uint32_t base, figures *out) {
    runner *rs = calloc((size_t)threads, sizeof *rs);
    double *all = calloc((size_t)threads * (size_t)calls, sizeof *all);
    if (!rs || !all) return -1;
    for (int t = 0; t < threads; t++) {
        rs[t] = (runner){.e = e, .calls = calls, .first_serial = base + (uint32_t)(t * calls)};
        rs[t].keys = calloc((size_t)calls, sizeof *rs[t].keys);
        rs[t].lat_ms = all + (size_t)t * (size_t)calls;
        for (int i = 0; rs[t].keys && i < calls; i++)
            if (env_make_key(e, GROUP, rs[t].first_serial + (uint32_t)i, false, 0, rs[t].keys[i]) != 0) return -1;
    }
    uint64_t t0 = pa_mono_ns();
    for (int t = 0; t < threads; t++) pthread_create(&rs[t].thread, NULL, run, &rs[t]);
    out->failed = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(rs[t].thread, NULL);
        out->failed += rs[t].failed;
        free(rs[t].keys);
    }
    double secs = (double)(pa_mono_ns() - t0) / 1e9;
    size_t n = (size_t)threads * (size_t)calls;
    qsort(all, n, sizeof *all, cmp_double);
    out->per_s = (double)n / secs;
    out->p50 = all[n / 2];
    out->p99 = all[n * 99 / 100];
    free(all);
    free(rs);
    return 0;
}

static void tune(group_record *r) { r->policy.max_machines = 10; }

/* Redis A as the primary of a replicated pair; *replica its replica. */
static int start_pair(act_env *e, redis_fixture *replica) {
    if (env_start_stores(e) != 0) return -1;
    redis_fixture_stop(&e->a);
    if (redis_fixture_start_ha(&e->a, FIXTURE_STORE_ACTIVATION, 0) != 0 || env_keystore_reconnect(e) != 0 ||
        redis_fixture_start_ha(replica, FIXTURE_STORE_ACTIVATION, e->a.port) != 0)
        return -1;
    for (long long end = pa_mono_ms() + 10000; pa_mono_ms() < end;) {
        redisReply *r = redisCommand(e->ks_a, "ROLE");
        bool synced = r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[2]->elements == 1;
        if (r) freeReplyObject(r);
        if (synced) return env_create_group(e, GROUP, tune);
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "redis_wait_bench: the replica never connected\n");
    return -1;
}

int main(int argc, char **argv) {
    int threads = 4, calls = 1000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc) calls = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: redis_wait_bench [--threads N] [--calls N]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (threads < 1 || threads > 64 || calls < 10 || calls > 100000) {
        fprintf(stderr, "redis_wait_bench: --threads 1..64, --calls 10..100000\n");
        return 2;
    }
    static act_env e;
    redis_fixture replica = {.pid = -1};
    const char *off[] = {"--rate-address-per-s", "0", "--rate-group-per-s", "0", "--log-level", "warn", NULL};
    const char *on[] = {"--rate-address-per-s",  "0", "--rate-group-per-s",      "0",   "--log-level", "warn",
                        "--redis-wait-replicas", "1", "--redis-wait-timeout-ms", "500", NULL};
    figures f_off, f_on;
    int rc = 1;
    if (start_pair(&e, &replica) == 0 && env_start_server(&e, off) == 0 &&
        load(&e, threads, calls, 1000, &f_off) == 0 && env_restart_server(&e, on) == 0 &&
        load(&e, threads, calls, 1000 + (uint32_t)(threads * calls), &f_on) == 0) {
        printf(
            "redis_wait_bench: %d threads x %d Activate calls, new key and machine each, primary + 1 replica "
            "on this host\n",
            threads, calls);
        printf("  %-22s %10s %9s %9s %7s\n", "", "Activate/s", "p50 ms", "p99 ms", "failed");
        printf("  %-22s %10.0f %9.3f %9.3f %7d\n", "no WAIT", f_off.per_s, f_off.p50, f_off.p99, f_off.failed);
        printf("  %-22s %10.0f %9.3f %9.3f %7d\n", "WAIT 1 (500 ms)", f_on.per_s, f_on.p50, f_on.p99, f_on.failed);
        printf("  cost of WAIT: %+.3f ms at p50, %+.3f ms at p99, %+.1f%% Activate/s\n", f_on.p50 - f_off.p50,
               f_on.p99 - f_off.p99, 100.0 * (f_on.per_s - f_off.per_s) / f_off.per_s);
        rc = f_off.failed || f_on.failed ? 1 : 0;
    }
    redis_fixture_stop(&replica);
    env_stop(&e);
    return rc;
}
