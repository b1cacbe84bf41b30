/* loadgen_core.h -- a reusable gRPC load generator on the C core client API.
 *
 * T threads, each with its own completion queue, keep `concurrency` unary
 * calls outstanding between them over C connections (channels), either as
 * fast as the server answers (closed loop) or at a fixed rate (open loop,
 * latency measured from the intended send time, so a stalled server cannot
 * hide its queueing). A callback builds every request, so each benchmark
 * plugs in its own request mix:
 *
 *   static int build(void *user, int thread, uint64_t seq, loadgen_request *req) {
 *       req->method = 0;                      // index into cfg.methods
 *       req->klass = seq % 10 == 0 ? 1 : 0;   // e.g. 1 = invalid keys
 *       req->len = pack_my_request(req->buf, req->cap, ...);
 *       return 0;                             // -1: this thread stops
 *   }
 *   const char *methods[] = {PA_RPC_ACTIVATE};   // rpc_methods.h
 *   loadgen_config cfg = {.target = "127.0.0.1:50051", .methods = methods, .n_methods = 1,
 *                         .threads = 2, .channels = 2, .concurrency = 32, .duration_s = 5};
 *   loadgen_result res;
 *   if (loadgen_run(&cfg, build, NULL, &res) == 0) loadgen_print(stdout, "activate", &cfg, &res);
 *
 * Latencies go into per-thread log-linear histograms (HDR style: 128
 * sub-buckets per power of two, under 1 % error) allocated before the run,
 * so recording a call costs a few instructions and no allocation.
 * Results are kept per "class" (chosen by the builder) and in total.
 *
 * With `sources`, each channel is a socket bound to one of those local
 * addresses (127.0.0.x on loopback) and connected before gRPC gets it
 * (grpc_channel_create_from_fd): gRPC's own channels cannot choose their
 * source address, and a server that limits per address must see many.
 * Plaintext channels have gRPC's retries off (no retry policy applies, and
 * the retry filter costs every call): a call that never left the client
 * counts as failed, not retried. */
#ifndef PA_LOADGEN_CORE_H
#define PA_LOADGEN_CORE_H

#include "grpc_status_name.h"
#include "rpc_client.h"

#include <grpc/grpc.h>
#include <stdint.h>
#include <stdio.h>

#define LOADGEN_MAX_METHODS 8
#define LOADGEN_MAX_CLASSES 8
#define LOADGEN_STATUS_CODES PA_GRPC_STATUS_CODES /* index: the gRPC status code */

typedef struct loadgen_request {
    int method;                   /* index into loadgen_config.methods (0 unless set) */
    int klass;                    /* result class 0..LOADGEN_MAX_CLASSES-1 (0 unless set) */
    uint8_t *buf;                 /* the builder writes the serialized request here */
    size_t cap;                   /* room in buf (loadgen_config.max_request_bytes) */
    size_t len;                   /* bytes written; set by the builder */
} loadgen_request;

/* Builds request number `seq` (counted per thread from 0) for `thread`.
 * Called on that thread only. Returns 0, or -1 to make the thread stop. */
typedef int (*loadgen_request_fn)(void *user, int thread, uint64_t seq, loadgen_request *req);

/* Optional: sees every measured response (body only when status is OK).
 * Called on the thread that made the call. */
typedef void (*loadgen_response_fn)(void *user, int thread, const loadgen_request *req,
                                    grpc_status_code status, const uint8_t *body, size_t len);

typedef struct loadgen_config {
    const char *target;           /* "127.0.0.1:50051", "[::1]:50051", ... */
    const rpc_client_tls *tls;    /* NULL: plaintext */
    const char *const *methods;   /* gRPC paths the builder picks from */
    size_t n_methods;
    int threads;                  /* client threads, each with its own queue (default 1) */
    int channels;                 /* connections; call slot i uses channel i % channels (default threads) */
    int concurrency;              /* calls outstanding over all threads (default threads) */
    double duration_s;            /* measured time (default 5 s unless count is set) */
    uint64_t count;               /* or: stop after this many measured calls */
    double warmup_s;              /* calls started before this are not measured */
    double rate;                  /* open loop: calls/s over all threads; 0 = closed loop */
    int timeout_ms;               /* deadline per call (default 5000) */
    size_t max_request_bytes;     /* builder buffer per call slot (default 4096) */
    loadgen_response_fn on_response;
    const char *const *class_names; /* optional labels for loadgen_print, LOADGEN_MAX_CLASSES at most */
    const char *const *sources;     /* optional local IPv4 addresses: channel i binds to sources[i % n_sources]
                                     (plaintext only), so the server sees many clients */
    int n_sources;
} loadgen_config;

typedef struct loadgen_stats {
    uint64_t calls;               /* measured calls */
    uint64_t status[LOADGEN_STATUS_CODES]; /* by gRPC status code */
    double mean_us, p50_us, p90_us, p99_us, p999_us, max_us;
} loadgen_stats;

typedef struct loadgen_result {
    loadgen_stats total;
    loadgen_stats klass[LOADGEN_MAX_CLASSES];
    double seconds;               /* measured period: first measured start to last completion */
    double calls_per_s;           /* total.calls / seconds */
    uint64_t late_starts;         /* open loop: calls started late because all slots were busy */
    uint64_t all_calls;           /* every completed call, warm-up included (for CPU per call) */
    double thread_cpu_s;          /* CPU of the generator's own threads over the whole run (its cost per call) */
    uint64_t waits;               /* its threads' wake-ups with a completion: all_calls / waits = calls per wake-up */
    uint64_t recv_bytes;          /* response bytes received over the whole run (message size per call) */
    uint64_t csw_voluntary;       /* its threads' context switches (blocking waits) over the whole run */
    uint64_t csw_involuntary;     /* and preemptions: the other programs taking the cores */
    char first_error[256];        /* first non-OK status and message seen, for diagnosis */
} loadgen_result;

/* Runs the load. Returns 0, or -1 with a reason in out->first_error (bad
 * config, cannot connect within 5 s). */
int loadgen_run(const loadgen_config *cfg, loadgen_request_fn build, void *user, loadgen_result *out);

/* One line of totals, plus one per class when several were used. */
void loadgen_print(FILE *f, const char *label, const loadgen_config *cfg, const loadgen_result *res);

#endif
