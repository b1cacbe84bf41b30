/* soak.c -- the service at half of its peak for a while (scripts/soak.sh,
 * and the bounded ctest faults.soak): does anything creep?
 *
 * Starts Redis A and B, the audit server and the activation server (audit
 * on: one group sampled 5 % offline, so the outbox forwarder works too),
 * finds the peak Activate rate in a short closed-loop run, then drives half
 * of it for --seconds. The load re-activates a fixed set of keys on three
 * machines each (every place is made in the first passes, later calls
 * re-activate), so after warm-up the stores should stop growing. At the
 * start, after warm-up (a tenth of the run, at least 5 s), at a few points
 * between and at the end it prints each daemon's RSS (/proc/PID/status) and
 * open files (/proc/PID/fd), and Redis A's and B's used_memory; at the end
 * where each store's memory is, by key shape, so growth can be told apart
 * from a leak (the audit trail in Redis B grows by design).
 *
 * It fails (exit 1) on a call that did not succeed, and, with --check, when
 * a daemon's open files grew by more than 16 after warm-up. RSS and memory
 * are printed, never asserted: under AddressSanitizer (its quarantine holds
 * freed memory) and on a shared machine they move for reasons that are not
 * leaks. Exit 2: bad usage. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act_env.h"
#include "clock.h"
#include "fault_audit.h"
#include "redis_keys.h"

enum { GROUP = 601, THREADS = 4, KEYS_PER_THREAD = 300, MACHINES = 3, SAMPLES = 6 };

static act_env env;
static redisContext *meas_a, *meas_b;
static pid_t audit = -1;

typedef struct worker {
    char (*keys)[PK_TEXT_LEN + 1]; /* this thread's keys */
    unsigned t;                    /* which thread (machine numbers) */
    double per_s;                  /* target rate of this thread; 0: as fast as it can */
    volatile int *stop;            /* end of the phase */
    unsigned long ok, failed;      /* answers */
    char failure[300];             /* the first failure */
    pthread_t thread;
} worker;

static void *drive(void *p) {
    worker *w = p;
    rpc_channel *ch = rpc_channel_new(env.target, NULL);
    rpc_client_method *m = ch ? rpc_channel_method(ch, PA_RPC_ACTIVATE) : NULL;
    double t0 = pa_mono_s();
    for (unsigned long i = 0; m && !*w->stop; i++) {
        unsigned k = (unsigned)(i % KEYS_PER_THREAD), machine = (unsigned)(i / KEYS_PER_THREAD % MACHINES);
        uint8_t id[32], buf[512];
        env_machine(id, (w->t * KEYS_PER_THREAD + k) * MACHINES + machine + 1);
        Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
        rq.product_key = w->keys[k];
        rq.machine_id = (ProtobufCBinaryData){.len = sizeof id, .data = id};
        rq.hostname = "soak";
        size_t len = activation__v1__activate_request__pack(&rq, buf);
        rpc_result res;
        grpc_status_code st = rpc_call(ch, m, buf, len, 5000, &res);
        if (st == GRPC_STATUS_OK) w->ok++;
        else if (w->failed++ == 0) snprintf(w->failure, sizeof w->failure, "status %d: %s", st, res.message);
        rpc_result_clear(&res);
        if (w->per_s > 0) { /* open loop: keep to the schedule, never catch up in a burst */
            double due = t0 + (double)(i + 1) / w->per_s, now = pa_mono_s();
            if (due > now) usleep((useconds_t)((due - now) * 1e6));
            else if (now - due > 1) t0 = now - (double)(i + 1) / w->per_s;
        }
    }
    rpc_channel_free(ch);
    rpc_client_thread_done();
    return NULL;
}

/* Runs the workers at per_s calls/s each (0: closed loop) for `seconds`,
 * calling sample(k) at SAMPLES evenly spaced points (may be NULL). */
static unsigned long run_phase(worker *w, double per_s, double seconds, void (*sample)(int, double)) {
    volatile int stop = 0;
    for (unsigned t = 0; t < THREADS; t++) {
        w[t].per_s = per_s, w[t].stop = &stop, w[t].ok = 0; /* failures add up over the phases */
        if (pthread_create(&w[t].thread, NULL, drive, &w[t]) != 0) {
            stop = 1;
            while (t-- > 0) pthread_join(w[t].thread, NULL);
            return 0;
        }
    }
    double t0 = pa_mono_s();
    for (int k = 1; k <= SAMPLES; k++) {
        while (pa_mono_s() - t0 < seconds * k / SAMPLES) usleep(50 * 1000);
        if (sample) sample(k, pa_mono_s() - t0);
    }
    stop = 1;
    unsigned long ok = 0;
    for (unsigned t = 0; t < THREADS; t++) {
        pthread_join(w[t].thread, NULL);
        ok += w[t].ok;
    }
    return ok;
}

/* ---- what is measured ---- */

typedef struct figures {
    long rss_kb[3]; /* activation-server, audit-server, redis-server A */
    int fds[3];
    long long used_a, used_b; /* Redis used_memory */
} figures;

static long rss_kb(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

static int open_fds(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static long long used_memory(redisContext *c) {
    redisReply *r = redisCommand(c, "INFO memory");
    const char *p = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "used_memory:") : NULL;
    long long v = p ? atoll(p + 12) : -1;
    if (r) freeReplyObject(r);
    return v;
}

static figures measure(void) {
    figures f;
    pid_t pids[3] = {env.server, audit, env.a.pid};
    for (int i = 0; i < 3; i++) f.rss_kb[i] = rss_kb(pids[i]), f.fds[i] = open_fds(pids[i]);
    f.used_a = used_memory(meas_a);
    f.used_b = used_memory(meas_b);
    return f;
}

static void print_figures(const char *when, double t, const figures *f) {
    printf(
        "  %-9s %6.0f s  activation-server %6ld kB %3d fds | audit-server %6ld kB %3d fds | redis A %6ld kB "
        "%3d fds, used_memory %lld | redis B used_memory %lld\n",
        when, t, f->rss_kb[0], f->fds[0], f->rss_kb[1], f->fds[1], f->rss_kb[2], f->fds[2], f->used_a, f->used_b);
    fflush(stdout);
}

static figures warm, last;
static double phase_offset; /* seconds of the run before the sampled phase */

/* Where a store's memory is: MEMORY USAGE summed by key shape (digits
 * folded to N), the largest four printed. */
enum { SHAPES = 64 };
typedef struct shape {
    char name[64];
    long long bytes, keys;
} shape;

/* Digits fold to N, and a token (between ':', '{', '}') of 12 or more
 * characters -- a request id, a machine hash -- to X. */
static void fold(const char *key, char *out, size_t n) {
    size_t j = 0;
    for (const char *p = key; *p && j + 1 < n;) {
        size_t tok = strcspn(p, ":{}");
        if (tok >= 12) {
            out[j++] = 'X';
            p += tok;
        } else if (*p >= '0' && *p <= '9') {
            if (j == 0 || out[j - 1] != 'N') out[j++] = 'N';
            p++;
        } else out[j++] = *p++;
    }
    out[j] = '\0';
}

static void print_shapes(redisContext *c, const char *store) {
    static shape s[SHAPES];
    size_t n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(c, "SCAN %s COUNT 1000", cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r) freeReplyObject(r);
            return;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *key = r->element[1]->element[i]->str;
            char name[64];
            fold(key, name, sizeof name);
            redisReply *u = redisCommand(c, "MEMORY USAGE %s", key);
            long long b = u && u->type == REDIS_REPLY_INTEGER ? u->integer : 0;
            if (u) freeReplyObject(u);
            size_t k = 0;
            while (k < n && strcmp(s[k].name, name) != 0) k++;
            if (k == n && n < SHAPES) snprintf(s[n++].name, sizeof s[k].name, "%s", name);
            if (k < n) s[k].bytes += b, s[k].keys++;
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    for (int top = 0; top < 4; top++) {
        size_t best = n;
        for (size_t k = 0; k < n; k++)
            if (s[k].keys && (best == n || s[k].bytes > s[best].bytes)) best = k;
        if (best == n) break;
        printf("  %s: %-28s %6lld keys %10lld bytes\n", store, s[best].name, s[best].keys, s[best].bytes);
        s[best].keys = 0;
    }
    memset(s, 0, sizeof s);
}

static void sample(int k, double t) {
    last = measure();
    print_figures(k == SAMPLES ? "end" : "", phase_offset + t, &last);
}

/* ---- the service ---- */

static void tune(group_record *r) {
    r->policy.max_machines = MACHINES;
    r->policy.audit_rate_ppm = 50000;
    r->policy.audit = AUDIT_MODE_OFFLINE;
}

static int start(void) {
    if (env_start_stores(&env) != 0 || env_make_certs(&env) != 0 || env_create_group(&env, GROUP, tune) != 0) return -1;
    meas_a = env_measuring_connection(&env);
    meas_b = env_measuring_connection_b(&env);
    if (!meas_a || !meas_b) return -1;
    char target[64];
    audit = fault_audit_start(&env, NULL, "127.0.0.1", "127.0.0.1", target);
    if (audit < 0) return -1;
    /* One load generator is one address: without the per-address threat
     * signal off it would look like an attack and raise sampling to 100 %. */
    const char *more[] = {"--rate-address-per-s",
                          "0",
                          "--rate-group-per-s",
                          "0",
                          "--threat-address-requests",
                          "4000000000",
                          "--log-level",
                          "warn",
                          NULL};
    const char *flags[32];
    fault_audit_flags(&env, target, more, flags, 32);
    return env_start_server(&env, flags);
}

static void stop(void) {
    if (env.server > 0) env_stop_server(&env);
    if (audit > 0) fixture_stop(audit, SIGTERM, 10000);
    if (meas_a) redisFree(meas_a);
    if (meas_b) redisFree(meas_b);
    env_stop(&env);
}

static int usage(FILE *to, int rc) {
    fprintf(to,
            "usage: faults_soak [--seconds N] [--check]\n"
            "  --seconds N  how long to run at half of the peak rate (default 600)\n"
            "  --check      fail when a daemon's open files grew after warm-up\n"
            "Prints RSS, open files and Redis used_memory along the run (docs/testing.md, \"Fault matrix\").\n"
            "Needs PA_BUILD_DIR and PA_SOURCE_DIR (ctest sets them; scripts/soak.sh too).\n");
    return rc;
}

int main(int argc, char **argv) {
    double seconds = 600;
    int check = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return usage(stdout, 0);
        else if (strcmp(argv[i], "--check") == 0) check = 1;
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            char *end;
            seconds = strtod(argv[++i], &end);
            if (*end || seconds < 10 || seconds > 7 * 86400) {
                fprintf(stderr, "faults_soak: --seconds: expected a number from 10 to 604800, got '%s'\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "faults_soak: unknown argument '%s'\n", argv[i]);
            return usage(stderr, 2);
        }
    }
    static char keys[THREADS][KEYS_PER_THREAD][PK_TEXT_LEN + 1];
    worker w[THREADS];
    int rc = 1;
    if (start() != 0) goto out;
    for (unsigned t = 0; t < THREADS; t++) {
        w[t] = (worker){.keys = keys[t], .t = t};
        for (unsigned k = 0; k < KEYS_PER_THREAD; k++)
            if (env_make_key(&env, GROUP, t * KEYS_PER_THREAD + k + 1, false, 0, keys[t][k]) != 0) goto out;
    }
    figures f0 = measure();
    print_figures("start", 0, &f0);
    double peak = (double)run_phase(w, 0, 4, NULL) / 4;
    printf("  peak (closed loop, %d threads, 4 s): %.0f Activate/s; soak at %.0f/s for %.0f s\n", THREADS, peak,
           peak / 2, seconds);
    double warmup = seconds / 10 < 5 ? 5 : seconds / 10;
    run_phase(w, peak / 2 / THREADS, warmup, NULL);
    warm = measure();
    print_figures("warm", warmup, &warm);
    phase_offset = warmup;
    unsigned long ok = run_phase(w, peak / 2 / THREADS, seconds - warmup, sample);
    unsigned long failed = 0;
    for (unsigned t = 0; t < THREADS; t++) {
        failed += w[t].failed;
        if (w[t].failed)
            fprintf(stderr, "faults_soak: thread %u: %lu failed, first %s\n", t, w[t].failed, w[t].failure);
    }
    printf(
        "  after warm-up: %lu OK (%.0f/s), %lu failed in the whole run; RSS growth activation-server %+.1f %%, "
        "audit-server "
        "%+.1f %%, redis A %+.1f %%; open files %+d, %+d, %+d\n",
        ok, ok / (seconds - warmup), failed, 100.0 * (last.rss_kb[0] - warm.rss_kb[0]) / warm.rss_kb[0],
        100.0 * (last.rss_kb[1] - warm.rss_kb[1]) / warm.rss_kb[1],
        100.0 * (last.rss_kb[2] - warm.rss_kb[2]) / warm.rss_kb[2], last.fds[0] - warm.fds[0],
        last.fds[1] - warm.fds[1], last.fds[2] - warm.fds[2]);
    print_shapes(meas_a, "redis A");
    print_shapes(meas_b, "redis B");
    rc = failed == 0 && ok > 0 ? 0 : 1;
    for (int i = 0; check && i < 3; i++)
        if (last.fds[i] > warm.fds[i] + 16) {
            fprintf(stderr, "faults_soak: open files of daemon %d grew from %d to %d\n", i, warm.fds[i], last.fds[i]);
            rc = 1;
        }
out:
    stop();
    return rc;
}
