/* echo_bench.c -- the ceiling of the gRPC runtime: a bare unary echo.
 *
 * Starts an echo server on common/rpc_server in this process (or uses
 * --target) and drives it with bench/loadgen_core at several thread /
 * channel / concurrency settings, printing calls/s and latency
 * percentiles for each. Any service built on the same runtime can only be
 * slower than this, so other benchmarks quote their rate as a ratio of it.
 * Client and server share the machine's cores, as they do in those
 * benchmarks. Each run also prints the CPU time this process (client and
 * server together) spent per call, which stays meaningful when other
 * programs share the machine and the calls/s figure does not.
 * --sync also measures the blocking rpc_call client path.
 * --serve runs only the server, until SIGINT/SIGTERM, so client and server
 * can be measured (or profiled) as separate processes. */
#include "clock.h"
#include "loadgen_core.h"
#include "rpc_client.h"
#include "rpc_server.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ECHO_PATH "/bench.v1.Echo/Echo"
#define MAX_RUNS 32

static void echo(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    rpc_reply_bytes(reply, req, len);
}

static size_t g_size = 32;        /* payload bytes per request */

static int build_echo(void *user, int thread, uint64_t seq, loadgen_request *req) {
    memset(req->buf, 'e', g_size);
    req->len = g_size;
    return 0;
}

typedef struct run_spec {
    int threads, channels, concurrency;
} run_spec;

static void usage(FILE *f) {
    fprintf(f,
            "usage: echo_bench [options]\n"
            "Measures unary echo calls/s and latency on the shared gRPC runtime.\n"
            "  --target HOST:PORT   drive a running server (method " ECHO_PATH ") instead of\n"
            "                       starting one in this process\n"
            "  --server-workers N   workers of the in-process server (default: one per core)\n"
            "  --run T,C,N          one run: T client threads, C channels, N calls in flight;\n"
            "                       repeat for several (default: 1,1,1 4,1,4 4,4,4 2,2,16 2,2,64)\n"
            "  --duration S         measured seconds per run (default 3)\n"
            "  --warmup S           unmeasured seconds before each run (default 0.5)\n"
            "  --size BYTES         request (and response) payload size (default 32)\n"
            "  --sync T             also run T threads of blocking rpc_call, one channel each\n"
            "  --serve ADDR         only serve echo on ADDR (e.g. 127.0.0.1:50099) until SIGINT/SIGTERM\n"
            "  --help               this text\n");
}

static int parse_run(const char *s, run_spec *r) {
    char tail;
    if (sscanf(s, "%d,%d,%d%c", &r->threads, &r->channels, &r->concurrency, &tail) != 3) return -1;
    if (r->threads < 1 || r->channels < 1 || r->channels > 64 || r->concurrency < r->threads) return -1;
    return 0;
}

/* The echo server on `addr`, or NULL after saying why. */
static rpc_server *echo_server_start(const char *addr, int workers) {
    const char *listen[] = {addr};
    const rpc_method methods[] = {{ECHO_PATH, echo, 65536, NULL}};
    rpc_server_config cfg = {.listen = listen, .n_listen = 1, .workers = workers};
    cfg.limits.max_connections_per_address = 10000; /* every channel of the bench comes from one address */
    char err[256];
    rpc_server *server = rpc_server_start(&cfg, methods, 1, err, sizeof err);
    if (!server) fprintf(stderr, "echo_bench: cannot start the echo server: %s\n", err);
    return server;
}

/* Serve-only mode: the signal pattern every daemon on this runtime uses
 * (see rpc_server.h): block the signals before any thread exists, then
 * wait for them in main. */
static int serve(const char *addr, int workers) {
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    grpc_init();
    rpc_server *server = echo_server_start(addr, workers);
    if (!server) {
        grpc_shutdown();
        return 1;
    }
    printf("echo server: %s (port %d); SIGINT or SIGTERM stops it\n", addr, rpc_server_port(server, 0));
    fflush(stdout);
    int sig;
    sigwait(&sigs, &sig);
    int cancelled = rpc_server_shutdown(server, 5000);
    printf("echo server: stopped by signal %d, %d calls cancelled\n", sig, cancelled);
    grpc_shutdown();
    return 0;
}

/* --- the blocking client path ------------------------------------------------ */

typedef struct sync_arg {
    const char *target;
    double seconds;
    uint64_t calls, failed;
} sync_arg;

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec * 1e-6;
}

static void *sync_thread(void *p) {
    sync_arg *a = p;
    rpc_channel *ch = rpc_channel_new(a->target, NULL);
    rpc_client_method *m = ch ? rpc_channel_method(ch, ECHO_PATH) : NULL;
    uint8_t buf[65536];
    memset(buf, 'e', sizeof buf);
    rpc_result r;
    if (m) rpc_call(ch, m, buf, g_size, 5000, &r), rpc_result_clear(&r);   /* connect */
    double end = pa_mono_s() + a->seconds;
    while (m && pa_mono_s() < end) {
        if (rpc_call(ch, m, buf, g_size, 5000, &r) == GRPC_STATUS_OK) a->calls++;
        else a->failed++;
        rpc_result_clear(&r);
    }
    rpc_channel_free(ch);
    return NULL;
}

static void run_sync(const char *target, int threads, double seconds) {
    pthread_t t[64];
    sync_arg a[64];
    if (threads > 64) threads = 64;
    int started = 0;
    for (; started < threads; started++) {
        a[started] = (sync_arg){.target = target, .seconds = seconds};
        if (pthread_create(&t[started], NULL, sync_thread, &a[started]) != 0) break;
    }
    if (started < threads) {
        /* a rate from fewer threads than asked for would be mislabelled */
        fprintf(stderr, "echo_bench: cannot start sync thread %d of %d; stopping\n", started + 1, threads);
        exit(1);
    }
    uint64_t calls = 0, failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        calls += a[i].calls;
        failed += a[i].failed;
    }
    printf("sync rpc_call: threads %d channels %d: %.0f calls/s (%llu failed)\n", threads, threads,
           (double)calls / seconds, (unsigned long long)failed);
}

/* What the command line asked for. */
typedef struct options {
    const char *target;           /* a running server to drive; NULL: start one here */
    const char *serve_addr;       /* --serve: only serve, on this address */
    int workers;                  /* in-process server workers; 0: one per core */
    int sync_threads;             /* blocking rpc_call threads after the runs; 0: none */
    double duration, warmup;      /* seconds per run, measured and not */
    run_spec runs[MAX_RUNS];      /* the settings to measure, in order */
    int n_runs;
} options;

/* Returns -1 to go on, or the exit status (0 after --help, 2 on bad usage). */
static int parse_options(int argc, char **argv, options *o) {
    static const struct option opts[] = {
        {"target", required_argument, NULL, 't'}, {"server-workers", required_argument, NULL, 'w'},
        {"run", required_argument, NULL, 'r'},    {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'u'}, {"size", required_argument, NULL, 's'},
        {"sync", required_argument, NULL, 'y'},  {"serve", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    *o = (options){.duration = 3, .warmup = 0.5};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': o->target = optarg; break;
        case 'w': o->workers = atoi(optarg); break;
        case 'd': o->duration = atof(optarg); break;
        case 'u': o->warmup = atof(optarg); break;
        case 'y': o->sync_threads = atoi(optarg); break;
        case 'S': o->serve_addr = optarg; break;
        case 's':
            g_size = (size_t)atol(optarg);
            if (g_size > 65536) {
                fprintf(stderr, "echo_bench: --size %s is over 65536\n", optarg);
                return 2;
            }
            break;
        case 'r':
            if (o->n_runs == MAX_RUNS || parse_run(optarg, &o->runs[o->n_runs]) != 0) {
                fprintf(stderr, "echo_bench: --run %s: want T,C,N with 1<=C<=64 and N>=T (at most %d runs)\n",
                        optarg, MAX_RUNS);
                return 2;
            }
            o->n_runs++;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || o->duration <= 0 || o->warmup < 0) {
        usage(stderr);
        return 2;
    }
    if (o->n_runs == 0) {
        const run_spec def[] = {{1, 1, 1}, {4, 1, 4}, {4, 4, 4}, {2, 2, 16}, {2, 2, 64}};
        o->n_runs = (int)(sizeof def / sizeof def[0]);
        memcpy(o->runs, def, sizeof def);
    }
    return -1;
}

/* One measured setting against `target`, printed. The CPU figure covers
 * client and server only when the server runs in this process. */
static int measure(const options *o, const char *target, const run_spec *run, bool server_here) {
    const char *paths[] = {ECHO_PATH};
    loadgen_config lc = {.target = target, .methods = paths, .n_methods = 1, .threads = run->threads,
                         .channels = run->channels, .concurrency = run->concurrency,
                         .duration_s = o->duration, .warmup_s = o->warmup, .max_request_bytes = 65536};
    loadgen_result res;
    double cpu0 = cpu_s();
    int failed = loadgen_run(&lc, build_echo, NULL, &res);
    double cpu = cpu_s() - cpu0;   /* includes the warm-up, and so does all_calls */
    if (failed) {
        fprintf(stderr, "echo_bench: %s\n", res.first_error);
        return 1;
    }
    loadgen_print(stdout, "echo", &lc, &res);
    if (server_here && res.all_calls > 0)
        printf("  cpu (client + server, this process): %.1f us per call\n", cpu / (double)res.all_calls * 1e6);
    if (res.all_calls > 0 && res.waits > 0)
        printf("  load generator (its threads): %.1f us CPU per call, %.2f calls per wake-up\n",
               res.thread_cpu_s / (double)res.all_calls * 1e6, (double)res.all_calls / (double)res.waits);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    options o;
    int status = parse_options(argc, argv, &o);
    if (status >= 0) return status;
    if (o.serve_addr) return serve(o.serve_addr, o.workers);

    grpc_init();
    rpc_server *server = NULL;
    const char *target = o.target;
    char own_target[64];
    if (!target) {
        if (!(server = echo_server_start("127.0.0.1:0", o.workers))) return 1;
        snprintf(own_target, sizeof own_target, "127.0.0.1:%d", rpc_server_port(server, 0));
        target = own_target;
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        printf("in-process echo server on %s: %d workers, %zu-byte payload, %ld cores shared with the client\n",
               target, o.workers > 0 ? o.workers : (int)cores, g_size, cores);
    }
    int rc = 0;
    for (int i = 0; i < o.n_runs && rc == 0; i++) rc = measure(&o, target, &o.runs[i], server != NULL);
    if (rc == 0 && o.sync_threads > 0) run_sync(target, o.sync_threads, o.duration);
    if (server) rpc_server_shutdown(server, 1000);
    rpc_client_thread_done();
    grpc_shutdown();
    return rc;
}
