/* admin_api_search.c -- machine search latency through the HTTP API at a
 * fleet's size (docs/admin.md "Directory layout"; the figure: hostname
 * prefix, IP and group+serial answered with p99 <= 20 ms through the API).
 * Run by hand; prints figures, asserts nothing.
 *
 *   admin_api_search [--machines N] [--requests R] [--no-export]
 *
 * The admin tests' environment (tests/admin/admin_env.h: Redis A with the
 * production ACL, the admin-server binary over HTTPS, a viewer logged in)
 * plus a measuring user for INFO; N machines (default 1 000 000) loaded
 * through machine_dir.lua's ingest (bench/admin_machines.h, the fleet
 * bench/admin_search measures in-process). Then R requests of each kind
 * (default 2000), one page of 50 rows, targets drawn from the loaded
 * machines, one after another on one keep-alive libcurl connection; the
 * time is the whole request as the client sees it (TLS, the server's
 * session check, the search, JSON), not the client's JSON parsing. Last,
 * the CSV export's rows/s through the API (bench/admin_http_bench.c).
 * Client, admin-server and Redis share this machine's cores. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_env.h"
#include "admin_http_bench.h"
#include "admin_machines.h"
#include "clock.h"

#define PAGE "50"
#define PW "a long bench password"

/* Writes the request path for machine i into buf. */
typedef void target_fn(long i, long now, char *buf, size_t len);

static void by_hostname_prefix(long i, long now, char *buf, size_t len) {
    bench_machine x;
    bench_machine_make(i, now, &x);
    snprintf(buf, len, "/api/v1/machines?hostname=%.6s*&limit=" PAGE, x.h); /* "ws-abc*": ~240 of 1M */
}

static void by_ip(long i, long now, char *buf, size_t len) {
    bench_machine x;
    bench_machine_make(i, now, &x);
    snprintf(buf, len, "/api/v1/machines?ip=%s&limit=" PAGE, x.ip);
}

static void by_key(long i, long now, char *buf, size_t len) {
    (void)now;
    snprintf(buf, len, "/api/v1/machines?group=%ld&serial=%ld&limit=" PAGE, 1000 + i % BENCH_GROUPS,
             1 + i / BENCH_GROUPS);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Rows in the last reply's page, or -1 when it is not one. */
static long page_rows(const admin_env *env) {
    json_t *j = json_loadb(env->body, env->body_len, 0, NULL);
    json_t *items = json_object_get(j, "items");
    long n = json_is_array(items) ? (long)json_array_size(items) : -1;
    json_decref(j);
    return n;
}

/* R requests of one kind; prints p50/p95/p99/max. 0, or -1 on a failed one. */
static int latency(admin_env *env, const char *what, long n, long requests, long now, target_fn *make) {
    double *ms = calloc((size_t)requests, sizeof *ms);
    if (!ms) return -1;
    long rows = 0;
    char path[256];
    for (long q = 0; q < requests; q++) {
        make((long)(bench_mix((uint32_t)q * 7919u) % (uint32_t)n), now, path, sizeof path);
        double t0 = pa_mono_s();
        int status = admin_request(env, "GET", path, NULL, NULL, 0);
        ms[q] = (pa_mono_s() - t0) * 1000;
        long got = status == 200 ? page_rows(env) : -1;
        if (got < 0) {
            fprintf(stderr, "admin_api_search: GET %s: status %d: %.200s\n", path, status, env->body);
            free(ms);
            return -1;
        }
        rows += got;
    }
    qsort(ms, (size_t)requests, sizeof *ms, cmp_double);
    printf("  %-26s p50 %6.2f ms  p95 %6.2f ms  p99 %6.2f ms  max %7.2f ms  (%ld requests, %.1f rows each)\n", what,
           ms[requests / 2], ms[requests * 95 / 100], ms[requests * 99 / 100], ms[requests - 1], requests,
           (double)rows / requests);
    free(ms);
    return 0;
}

/* Memory, the three searches, the export. */
static int measure(admin_env *env, redisContext *m, long n, long requests, int export_too, long long used0) {
    long long used1 = bench_used_memory(m);
    printf("Redis used_memory: %+lld bytes = %.1f bytes per machine\n", used1 - used0, (double)(used1 - used0) / n);
    long now = (long)time(NULL); /* the load's clock: only the hostname and IP depend on i, not on now */
    printf("search through GET /api/v1/machines over HTTPS, one page of up to " PAGE " rows, keep-alive:\n");
    int rc = latency(env, "hostname prefix (ws-XYZ*)", n, requests, now, by_hostname_prefix);
    if (rc == 0) rc = latency(env, "ip exact", n, requests, now, by_ip);
    if (rc == 0) rc = latency(env, "group + serial", n, requests, now, by_key);
    if (rc == 0 && export_too) rc = admin_http_export(env, EXPORT_CSV, (unsigned long long)n);
    return rc;
}

static void usage(FILE *to) {
    fprintf(to,
            "usage: admin_api_search [--machines N] [--requests R] [--no-export]\n"
            "  Loads N machine records (default 1000000) into Redis A, starts admin-server (HTTPS)\n"
            "  and prints p50/p95/p99/max of R requests (default 2000) each of GET /api/v1/machines\n"
            "  by hostname prefix, exact IP and group+serial, Redis used_memory per machine, and the\n"
            "  CSV export's rows/s through GET /api/v1/machines/export (unless --no-export).\n");
}

/* The environment, the measuring user, the session; then the load. */
static int run(long n, long requests, int export_too) {
    static admin_env env;
    if (admin_env_start(&env, NULL) != 0) return -1;
    int rc = -1;
    redisContext *m = NULL;
    /* The measuring user needs a Redis restart: the server is stopped around it. */
    if (admin_env_stop_server(&env) != 0 || !(m = bench_measure_connect(&env.redis)) ||
        admin_env_restart_server(&env, NULL) != 0) {
        fprintf(stderr, "admin_api_search: cannot set up the environment\n");
    } else if (admin_env_add_user(&env, "bench", "viewer", PW) != 0 || admin_login(&env, "bench", PW) != 200) {
        fprintf(stderr, "admin_api_search: cannot log in\n");
    } else {
        long long used0 = bench_used_memory(m);
        if (admin_http_load(&env, (unsigned long long)n) == 0) rc = measure(&env, m, n, requests, export_too, used0);
    }
    if (m) redisFree(m);
    if (admin_env_stop(&env) != 0) rc = -1;
    return rc;
}

int main(int argc, char **argv) {
    long n = 1000000, requests = 2000;
    int export_too = 1;
    static const struct option opts[] = {{"machines", required_argument, 0, 'n'},
                                         {"requests", required_argument, 0, 'r'},
                                         {"no-export", no_argument, 0, 'x'},
                                         {"help", no_argument, 0, 'h'},
                                         {0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'n') n = atol(optarg);
        else if (c == 'r') requests = atol(optarg);
        else if (c == 'x') export_too = 0;
        else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || n < 1 || requests < 100) {
        usage(stderr);
        return 2;
    }
    return run(n, requests, export_too) == 0 ? 0 : 1;
}
