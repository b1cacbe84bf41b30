/* loadgen_core.c -- the load generator described in loadgen_core.h.
 *
 * Each thread owns a completion queue and a fixed array of call slots.
 * A slot holds everything one call needs (ops, receive buffers, the
 * request buffer the builder fills), so starting a call allocates nothing
 * of ours and copies nothing: the send slice points at the slot's buffer
 * (it is rebuilt only after the call completed); gRPC allocates the call
 * and the byte buffer as it must. When a call completes, its latency goes
 * into the thread's histogram for the call's class; the thread then takes
 * every other completion already queued before it starts calls again, so
 * the freed slots' calls are started together (chttp2 may write them in
 * one go), at once (closed loop) or when the next send is due (open loop).
 * Profiled (perf, callgrind), the generator's own code is 1-2 % of its
 * CPU; the rest is gRPC's per-call client work and the kernel. That work
 * is the same for every unary call of this size (callgrind: the same
 * instructions per call against the activation server as against the
 * echo), but its CPU time is not: the slower the server answers, the
 * longer the threads sleep between bursts of completions, and each burst
 * runs on caches the other processes have filled meanwhile, with more
 * futex and epoll wake-ups per call. So the cost per call rises as the
 * call rate falls; the benchmarks print it with the calls per wake-up and
 * context switches per call that explain it. Threads share nothing
 * on the hot path but the count of calls left (count mode, one atomic
 * decrement per call); histograms are merged once at the end. */
#include "loadgen_core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/* --- log-linear histogram of nanoseconds ----------------------------------- */

#define SUB_BITS 7
#define SUB (1u << SUB_BITS)            /* sub-buckets per power of two */
#define MAX_EXP 40                      /* values clamp at 2^41 ns (~36 min) */
#define HIST_BUCKETS ((MAX_EXP - SUB_BITS + 2) * SUB)

typedef struct hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t n;                         /* observations */
    uint64_t max;                       /* exact largest value */
    double sum;                         /* for the mean */
} hist;

static unsigned hist_index(uint64_t v) {
    if (v < SUB) return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    if (e > MAX_EXP) return HIST_BUCKETS - 1;
    unsigned shift = e - SUB_BITS;
    return (shift + 1) * SUB + (unsigned)((v >> shift) - SUB);
}

/* The middle of the range a bucket stands for. */
static double hist_value(unsigned idx) {
    if (idx < SUB) return idx;
    unsigned shift = idx / SUB - 1;
    uint64_t lower = (uint64_t)(idx % SUB + SUB) << shift;
    return (double)lower + (double)(1ull << shift) / 2.0;
}

static void hist_record(hist *h, uint64_t v) {
    h->counts[hist_index(v)]++;
    h->n++;
    h->sum += (double)v;
    if (v > h->max) h->max = v;
}

static void hist_merge(hist *into, const hist *from) {
    for (unsigned i = 0; i < HIST_BUCKETS; i++) into->counts[i] += from->counts[i];
    into->n += from->n;
    into->sum += from->sum;
    if (from->max > into->max) into->max = from->max;
}

static double hist_percentile_ns(const hist *h, double q) {
    if (h->n == 0) return 0;
    uint64_t want = (uint64_t)ceil(q * (double)h->n), seen = 0;
    if (want == 0) want = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            double v = hist_value(i);
            return v > (double)h->max ? (double)h->max : v;
        }
    }
    return (double)h->max;
}

/* --- state ---------------------------------------------------------------------- */

typedef struct lg_thread lg_thread;

typedef struct slot {
    lg_thread *t;
    int channel;                  /* index into the shared channels */
    bool busy;                    /* a call is in flight */
    bool measured;                /* started after the warm-up */
    uint64_t intended_ns;         /* when it should have started (latency origin) */
    grpc_call *call;
    grpc_byte_buffer *send, *recv;
    grpc_metadata_array initial, trailing;
    grpc_status_code status;
    grpc_slice details;
    const char *error_string;
    grpc_op ops[6];
    loadgen_request req;          /* req.buf is the slot's own buffer */
} slot;

typedef struct shared {
    const loadgen_config *cfg;
    loadgen_request_fn build;
    void *user;
    rpc_channel **chans;                    /* TLS channels (NULL entries for plaintext ones, made here) */
    grpc_channel *grpc[64];                 /* every channel's gRPC handle, whichever made it */
    bool own[64];                           /* made here (plaintext): ours to destroy */
    void *handles[64][LOADGEN_MAX_METHODS]; /* registered call per channel and method */
    int n_chans;
    uint64_t t0_ns, warm_ns, end_ns;  /* start, measuring from, stop starting at */
    _Atomic int64_t remaining;        /* count mode: measured calls left to start */
    bool count_mode;
} shared;

struct lg_thread {
    shared *sh;
    int index;
    pthread_t th;
    grpc_completion_queue *cq;
    slot *slots;
    int n_slots, busy;
    uint64_t seq;                 /* requests built so far */
    bool stopped;                 /* builder said stop, or the count ran out */
    hist h[LOADGEN_MAX_CLASSES];
    uint64_t status[LOADGEN_MAX_CLASSES][LOADGEN_STATUS_CODES];
    uint64_t first_start, last_end; /* measured window seen by this thread */
    uint64_t late;
    uint64_t completed;           /* all calls, warm-up included */
    uint64_t cpu_ns;              /* this thread's CPU over its run */
    uint64_t waits;               /* blocking queue waits that returned a completion (wake-ups) */
    uint64_t recv_bytes;          /* response bytes received, to compare benchmarks' message sizes */
    long csw_voluntary, csw_involuntary; /* this thread's context switches over its run */
    uint8_t *scratch;             /* contiguous response copy for on_response */
    size_t scratch_cap;
    char first_error[256];
};

/* --- one call ---------------------------------------------------------------------- */

static void slot_reset(slot *s) {
    s->call = NULL;
    s->send = s->recv = NULL;
    grpc_metadata_array_init(&s->initial);
    grpc_metadata_array_init(&s->trailing);
    s->details = grpc_empty_slice();
    s->error_string = NULL;
    s->status = GRPC_STATUS_UNKNOWN;
}

/* Starts a call meant to begin at `intended`. False if the thread must stop. */
static bool slot_start(slot *s, uint64_t intended, uint64_t now) {
    lg_thread *t = s->t;
    shared *sh = t->sh;
    const loadgen_config *cfg = sh->cfg;
    s->measured = intended >= sh->warm_ns;
    if (s->measured && sh->count_mode && atomic_fetch_sub(&sh->remaining, 1) <= 0) return false;
    s->req.method = 0;
    s->req.klass = 0;
    s->req.len = 0;
    s->req.cap = cfg->max_request_bytes;
    if (sh->build(sh->user, t->index, t->seq++, &s->req) != 0) return false;
    if (s->req.method < 0 || (size_t)s->req.method >= cfg->n_methods || s->req.klass < 0 ||
        s->req.klass >= LOADGEN_MAX_CLASSES || s->req.len > s->req.cap) {
        snprintf(t->first_error, sizeof t->first_error, "builder returned method %d class %d len %zu: out of range",
                 s->req.method, s->req.klass, s->req.len);
        return false;
    }
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(cfg->timeout_ms, GPR_TIMESPAN));
    s->call = grpc_channel_create_registered_call(sh->grpc[s->channel], NULL, GRPC_PROPAGATE_DEFAULTS, t->cq,
                                                  sh->handles[s->channel][s->req.method], deadline, NULL);
    if (!s->call) {
        snprintf(t->first_error, sizeof t->first_error, "grpc_channel_create_registered_call failed");
        return false;
    }
    /* The slot's buffer outlives the call (rebuilt only once it completed),
     * so gRPC may point at it instead of copying it into an allocation. */
    grpc_slice body = grpc_slice_from_static_buffer(s->req.buf, s->req.len);
    s->send = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    memset(s->ops, 0, sizeof s->ops);
    s->ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    s->ops[1].op = GRPC_OP_SEND_MESSAGE;
    s->ops[1].data.send_message.send_message = s->send;
    s->ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    s->ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    s->ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial;
    s->ops[4].op = GRPC_OP_RECV_MESSAGE;
    s->ops[4].data.recv_message.recv_message = &s->recv;
    s->ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    s->ops[5].data.recv_status_on_client.trailing_metadata = &s->trailing;
    s->ops[5].data.recv_status_on_client.status = &s->status;
    s->ops[5].data.recv_status_on_client.status_details = &s->details;
    /* gRPC formats an error string for every failed call it is asked for;
     * only the thread's first error is kept, so ask only until then. */
    s->ops[5].data.recv_status_on_client.error_string = t->first_error[0] ? NULL : &s->error_string;
    if (grpc_call_start_batch(s->call, s->ops, 6, s, NULL) != GRPC_CALL_OK) {
        snprintf(t->first_error, sizeof t->first_error, "grpc_call_start_batch failed");
        grpc_byte_buffer_destroy(s->send);
        grpc_call_unref(s->call);
        slot_reset(s);
        return false;
    }
    if (s->measured && intended + 1000000 < now) t->late++;
    s->intended_ns = intended;
    s->busy = true;
    t->busy++;
    return true;
}

static void report_response(slot *s) {
    lg_thread *t = s->t;
    const uint8_t *body = NULL;
    size_t len = 0;
    grpc_byte_buffer_reader rd;
    if (s->status == GRPC_STATUS_OK && s->recv && grpc_byte_buffer_reader_init(&rd, s->recv)) {
        len = grpc_byte_buffer_length(rd.buffer_out);
        if (len > t->scratch_cap) {
            uint8_t *nb = realloc(t->scratch, len);
            if (nb) {
                t->scratch = nb;
                t->scratch_cap = len;
            }
        }
        size_t off = 0;
        grpc_slice *sl;
        while (len <= t->scratch_cap && off < len && grpc_byte_buffer_reader_peek(&rd, &sl)) {
            size_t n = GRPC_SLICE_LENGTH(*sl) < len - off ? GRPC_SLICE_LENGTH(*sl) : len - off;
            memcpy(t->scratch + off, GRPC_SLICE_START_PTR(*sl), n);
            off += n;
        }
        grpc_byte_buffer_reader_destroy(&rd);
        body = t->scratch;
        len = off;
    }
    t->sh->cfg->on_response(t->sh->user, t->index, &s->req, s->status, body, len);
}

static void slot_complete(slot *s) {
    lg_thread *t = s->t;
    uint64_t end = pa_mono_ns();
    t->completed++;
    if (s->measured) {
        int k = s->req.klass;
        int st = (unsigned)s->status < LOADGEN_STATUS_CODES ? (int)s->status : GRPC_STATUS_UNKNOWN;
        hist_record(&t->h[k], end - s->intended_ns);
        t->status[k][st]++;
        if (!t->first_start || s->intended_ns < t->first_start) t->first_start = s->intended_ns;
        if (end > t->last_end) t->last_end = end;
        if (st != GRPC_STATUS_OK && !t->first_error[0]) {
            char msg[200];
            rpc_copy_status_message(msg, sizeof msg, &s->details, s->error_string);
            snprintf(t->first_error, sizeof t->first_error, "%s: %s", pa_grpc_status_name(st), msg);
        }
        if (t->sh->cfg->on_response) report_response(s);
    }
    if (s->recv) {
        t->recv_bytes += grpc_byte_buffer_length(s->recv);
        grpc_byte_buffer_destroy(s->recv);
    }
    grpc_byte_buffer_destroy(s->send);
    grpc_slice_unref(s->details);
    if (s->error_string) gpr_free((void *)s->error_string);
    grpc_metadata_array_destroy(&s->initial);
    grpc_metadata_array_destroy(&s->trailing);
    grpc_call_unref(s->call);
    slot_reset(s);
    s->busy = false;
    t->busy--;
}

/* --- threads ----------------------------------------------------------------------- */

static slot *free_slot(lg_thread *t) {
    for (int i = 0; i < t->n_slots; i++)
        if (!t->slots[i].busy) return &t->slots[i];
    return NULL;
}

static uint64_t thread_cpu_ns(void) {
    struct timespec ts;
    return clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0 ? (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec
                                                            : 0;
}

static void thread_switches(long *voluntary, long *involuntary) {
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0) ru.ru_nvcsw = ru.ru_nivcsw = 0;
    *voluntary = ru.ru_nvcsw;
    *involuntary = ru.ru_nivcsw;
}

static void *thread_main(void *arg) {
    lg_thread *t = arg;
    long vol0, invol0;
    thread_switches(&vol0, &invol0);
    uint64_t cpu0 = thread_cpu_ns();
    shared *sh = t->sh;
    const loadgen_config *cfg = sh->cfg;
    /* open loop: this thread's share of the rate, staggered between threads */
    uint64_t interval = cfg->rate > 0 ? (uint64_t)(1e9 * cfg->threads / cfg->rate) : 0;
    uint64_t next_due = sh->t0_ns + (interval ? interval * (uint64_t)t->index / (uint64_t)cfg->threads : 0);
    for (;;) {
        uint64_t now = pa_mono_ns();
        if (now >= sh->end_ns) t->stopped = true;
        slot *s;
        while (!t->stopped && (s = free_slot(t)) != NULL && (!interval || next_due <= now)) {
            if (!slot_start(s, interval ? next_due : now, now)) t->stopped = true;
            next_due += interval;
        }
        if (t->stopped && t->busy == 0) break;
        gpr_timespec until = gpr_inf_future(GPR_CLOCK_MONOTONIC);
        if (!t->stopped && free_slot(t)) {
            /* wake for the next send (open loop) or the end of the run */
            uint64_t wake = interval ? next_due : sh->end_ns;
            if (wake > sh->end_ns) wake = sh->end_ns;
            int64_t wait = wake > now ? (int64_t)(wake - now) : 0;
            until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(wait, GPR_TIMESPAN));
        }
        grpc_event ev = grpc_completion_queue_next(t->cq, until, NULL);
        if (ev.type == GRPC_OP_COMPLETE) {
            t->waits++;
            slot_complete(ev.tag);
        }
        /* Take what else has completed before starting the next calls, so
         * they are started together (chttp2 may write them in one go). */
        while (ev.type == GRPC_OP_COMPLETE &&
               (ev = grpc_completion_queue_next(t->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL)).type ==
                   GRPC_OP_COMPLETE)
            slot_complete(ev.tag);
    }
    t->cpu_ns = thread_cpu_ns() - cpu0;
    thread_switches(&t->csw_voluntary, &t->csw_involuntary);
    t->csw_voluntary -= vol0;
    t->csw_involuntary -= invol0;
    return NULL;
}

/* --- set-up ------------------------------------------------------------------------ */

static int connect_all(shared *sh, char *err, size_t errlen) {
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    if (!cq) {
        snprintf(err, errlen, "cannot create a completion queue");
        return -1;
    }
    gpr_timespec until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(5, GPR_TIMESPAN));
    int rc = 0;
    for (int i = 0; i < sh->n_chans && rc == 0; i++) {
        if (sh->cfg->n_sources > 0) break; /* connected before gRPC got it */
        grpc_channel *ch = sh->grpc[i];
        grpc_connectivity_state st;
        while ((st = grpc_channel_check_connectivity_state(ch, 1)) != GRPC_CHANNEL_READY) {
            grpc_channel_watch_connectivity_state(ch, st, until, cq, NULL);
            grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
            if (ev.type == GRPC_OP_COMPLETE && !ev.success) {
                snprintf(err, errlen, "cannot connect to %s within 5 s", sh->cfg->target);
                rc = -1;
                break;
            }
        }
    }
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    return rc;
}

/* The arguments of the channels made here. No retries: with no retry
 * policy there is nothing to retry, yet the retry filter costs every call
 * about a sixth of the instructions the client spends on it (callgrind,
 * bench/echo_bench); a call it would have retried transparently (never
 * sent) is counted as failed instead. */
static grpc_channel_args channel_args(grpc_arg args[2]) {
    args[0] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, .value.integer = 1};
    args[1] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_RETRIES, .value.integer = 0};
    return (grpc_channel_args){.num_args = 2, .args = args};
}

/* A plaintext channel over a TCP connection from `source` (IPv4) to
 * cfg->target ("A.B.C.D:PORT"); NULL with a reason in err. */
static grpc_channel *bound_channel(const char *target, const char *source, char *err, size_t errlen) {
    char host[64];
    const char *colon = strrchr(target, ':');
    struct sockaddr_in to = {.sin_family = AF_INET}, from = {.sin_family = AF_INET};
    if (!colon || (size_t)(colon - target) >= sizeof host) {
        snprintf(err, errlen, "sources need an IPv4 target A.B.C.D:PORT, not \"%s\"", target);
        return NULL;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - target), target);
    to.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &to.sin_addr) != 1 || inet_pton(AF_INET, source, &from.sin_addr) != 1) {
        snprintf(err, errlen, "sources need IPv4 addresses: target \"%s\", source \"%s\"", target, source);
        return NULL;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&from, sizeof from) != 0 || connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        snprintf(err, errlen, "cannot connect from %s to %s: %s", source, target, strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_arg args[2];
    grpc_channel_args ca = channel_args(args);
    grpc_channel *ch = grpc_channel_create_from_fd(target, fd, creds, &ca);
    grpc_channel_credentials_release(creds);
    if (!ch) snprintf(err, errlen, "gRPC refused the connection from %s", source);
    return ch;
}

/* A plaintext channel of its own (the local subchannel pool keeps channels
 * to one target on separate connections, as rpc_channel_new does). */
static grpc_channel *plain_channel(const char *target) {
    grpc_arg args[2];
    grpc_channel_args ca = channel_args(args);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = creds ? grpc_channel_create(target, creds, &ca) : NULL;
    if (creds) grpc_channel_credentials_release(creds);
    return ch;
}

static int register_methods(shared *sh, int i, char *err, size_t errlen) {
    for (size_t m = 0; m < sh->cfg->n_methods; m++) {
        const char *path = sh->cfg->methods[m];
        if (path[0] != '/') return snprintf(err, errlen, "method path \"%s\" must start with '/'", path), -1;
        sh->handles[i][m] = grpc_channel_register_call(sh->grpc[i], path, NULL, NULL);
    }
    return 0;
}

/* Plaintext channels are made here (bound to a source, or not); TLS ones
 * by rpc_channel_new, which knows the credentials. */
static int open_channel(shared *sh, int i, char *err, size_t errlen) {
    const loadgen_config *cfg = sh->cfg;
    if (!cfg->tls) {
        sh->own[i] = true;
        if (cfg->n_sources > 0) sh->grpc[i] = bound_channel(cfg->target, cfg->sources[i % cfg->n_sources], err, errlen);
        else if (!(sh->grpc[i] = plain_channel(cfg->target)))
            snprintf(err, errlen, "cannot create a channel to %s", cfg->target);
        return sh->grpc[i] ? register_methods(sh, i, err, errlen) : -1;
    }
    if (!(sh->chans[i] = rpc_channel_new(cfg->target, cfg->tls)))
        return snprintf(err, errlen, "cannot create a channel to %s", cfg->target), -1;
    sh->grpc[i] = rpc_channel_grpc(sh->chans[i]);
    for (size_t m = 0; m < cfg->n_methods; m++) {
        rpc_client_method *cm = rpc_channel_method(sh->chans[i], cfg->methods[m]);
        if (!cm) return snprintf(err, errlen, "method path \"%s\" must start with '/'", cfg->methods[m]), -1;
        sh->handles[i][m] = rpc_client_method_handle(cm);
    }
    return 0;
}

static int open_channels(shared *sh, char *err, size_t errlen) {
    sh->chans = calloc((size_t)sh->n_chans, sizeof *sh->chans);
    if (!sh->chans) return snprintf(err, errlen, "out of memory"), -1;
    for (int i = 0; i < sh->n_chans; i++)
        if (open_channel(sh, i, err, errlen) != 0) return -1;
    return connect_all(sh, err, errlen);
}

static void close_channels(shared *sh) {
    for (int i = 0; i < sh->n_chans; i++) {
        if (sh->own[i] && sh->grpc[i]) grpc_channel_destroy(sh->grpc[i]);
        else if (sh->chans) rpc_channel_free(sh->chans[i]);
    }
    free(sh->chans);
}

static int threads_create(shared *sh, lg_thread *ts, int n_threads, int concurrency) {
    const loadgen_config *cfg = sh->cfg;
    for (int i = 0; i < n_threads; i++) {
        lg_thread *t = &ts[i];
        t->sh = sh;
        t->index = i;
        if (!(t->cq = grpc_completion_queue_create_for_next(NULL))) return -1; /* gRPC's out of memory */
        /* slot g (over all threads) = thread + j * threads; its channel is g % channels */
        t->n_slots = concurrency / n_threads + (i < concurrency % n_threads);
        t->slots = calloc((size_t)(t->n_slots ? t->n_slots : 1), sizeof *t->slots);
        if (!t->slots) return -1;
        for (int j = 0; j < t->n_slots; j++) {
            slot *s = &t->slots[j];
            s->t = t;
            s->channel = (i + j * n_threads) % sh->n_chans;
            s->req.buf = malloc(cfg->max_request_bytes);
            if (!s->req.buf) return -1;
            slot_reset(s);
        }
    }
    return 0;
}

static void threads_free(lg_thread *ts, int n) {
    for (int i = 0; i < n; i++) {
        lg_thread *t = &ts[i];
        for (int j = 0; t->slots && j < t->n_slots; j++) {
            grpc_metadata_array_destroy(&t->slots[j].initial);
            grpc_metadata_array_destroy(&t->slots[j].trailing);
            free(t->slots[j].req.buf);
        }
        free(t->slots);
        free(t->scratch);
        if (t->cq) {
            grpc_completion_queue_shutdown(t->cq);
            while (grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
                   GRPC_QUEUE_SHUTDOWN) {
            }
            grpc_completion_queue_destroy(t->cq);
        }
    }
    free(ts);
}

static void fill_stats(loadgen_stats *st, const hist *h) {
    st->mean_us = h->n ? h->sum / (double)h->n / 1e3 : 0;
    st->p50_us = hist_percentile_ns(h, 0.50) / 1e3;
    st->p90_us = hist_percentile_ns(h, 0.90) / 1e3;
    st->p99_us = hist_percentile_ns(h, 0.99) / 1e3;
    st->p999_us = hist_percentile_ns(h, 0.999) / 1e3;
    st->max_us = (double)h->max / 1e3;
}

static void collect(lg_thread *ts, int n, loadgen_result *out) {
    hist *merged = calloc(LOADGEN_MAX_CLASSES + 1, sizeof *merged);   /* classes, then the total */
    if (!merged) return;
    uint64_t first = 0, last = 0;
    for (int i = 0; i < n; i++) {
        lg_thread *t = &ts[i];
        for (int k = 0; k < LOADGEN_MAX_CLASSES; k++) {
            hist_merge(&merged[k], &t->h[k]);
            hist_merge(&merged[LOADGEN_MAX_CLASSES], &t->h[k]);
            for (int c = 0; c < LOADGEN_STATUS_CODES; c++) {
                out->klass[k].status[c] += t->status[k][c];
                out->total.status[c] += t->status[k][c];
            }
        }
        if (t->first_start && (!first || t->first_start < first)) first = t->first_start;
        if (t->last_end > last) last = t->last_end;
        out->late_starts += t->late;
        out->all_calls += t->completed;
        out->thread_cpu_s += (double)t->cpu_ns / 1e9;
        out->waits += t->waits;
        out->recv_bytes += t->recv_bytes;
        out->csw_voluntary += (uint64_t)t->csw_voluntary;
        out->csw_involuntary += (uint64_t)t->csw_involuntary;
        if (!out->first_error[0] && t->first_error[0]) snprintf(out->first_error, sizeof out->first_error, "%s", t->first_error);
    }
    for (int k = 0; k < LOADGEN_MAX_CLASSES; k++) {
        out->klass[k].calls = merged[k].n;
        fill_stats(&out->klass[k], &merged[k]);
    }
    out->total.calls = merged[LOADGEN_MAX_CLASSES].n;
    fill_stats(&out->total, &merged[LOADGEN_MAX_CLASSES]);
    out->seconds = last > first ? (double)(last - first) / 1e9 : 0;
    out->calls_per_s = out->seconds > 0 ? (double)out->total.calls / out->seconds : 0;
    free(merged);
}

int loadgen_run(const loadgen_config *in, loadgen_request_fn build, void *user, loadgen_result *out) {
    memset(out, 0, sizeof *out);
    loadgen_config cfg = *in;
    if (cfg.threads <= 0) cfg.threads = 1;
    if (cfg.channels <= 0) cfg.channels = cfg.threads;
    if (cfg.concurrency <= 0) cfg.concurrency = cfg.threads;
    if (cfg.timeout_ms <= 0) cfg.timeout_ms = 5000;
    if (cfg.max_request_bytes == 0) cfg.max_request_bytes = 4096;
    if (cfg.duration_s <= 0 && cfg.count == 0) cfg.duration_s = 5;
    if (!cfg.target || !build || cfg.n_methods == 0 || cfg.n_methods > LOADGEN_MAX_METHODS || cfg.channels > 64 ||
        cfg.concurrency < cfg.threads || cfg.n_sources < 0 || (cfg.n_sources > 0 && (cfg.tls || !cfg.sources))) {
        snprintf(out->first_error, sizeof out->first_error,
                 "bad config: need a target, a builder, 1..%d methods, at most 64 channels, concurrency >= threads, "
                 "sources only in plaintext",
                 LOADGEN_MAX_METHODS);
        return -1;
    }
    grpc_init();
    shared *sh = calloc(1, sizeof *sh);
    lg_thread *ts = calloc((size_t)cfg.threads, sizeof *ts);
    int rc = -1;
    if (!sh || !ts) {
        snprintf(out->first_error, sizeof out->first_error, "out of memory");
        goto done;
    }
    sh->cfg = &cfg;
    sh->build = build;
    sh->user = user;
    sh->n_chans = cfg.channels;
    sh->count_mode = cfg.count > 0;
    atomic_store(&sh->remaining, (int64_t)cfg.count);
    if (open_channels(sh, out->first_error, sizeof out->first_error) != 0) goto done;
    if (threads_create(sh, ts, cfg.threads, cfg.concurrency) != 0) {
        snprintf(out->first_error, sizeof out->first_error, "out of memory");
        goto done;
    }
    sh->t0_ns = pa_mono_ns();
    sh->warm_ns = sh->t0_ns + (uint64_t)(cfg.warmup_s * 1e9);
    sh->end_ns = sh->count_mode ? UINT64_MAX : sh->warm_ns + (uint64_t)(cfg.duration_s * 1e9);
    int started = 0;
    for (; started < cfg.threads; started++)
        if (pthread_create(&ts[started].th, NULL, thread_main, &ts[started]) != 0) break;
    for (int i = 0; i < started; i++) pthread_join(ts[i].th, NULL);
    if (started < cfg.threads) {
        snprintf(out->first_error, sizeof out->first_error, "cannot start thread %d", started);
        goto done;
    }
    collect(ts, cfg.threads, out);
    rc = 0;
done:
    if (ts) threads_free(ts, cfg.threads);
    if (sh) close_channels(sh);
    free(sh);
    grpc_shutdown();
    return rc;
}

/* --- output ------------------------------------------------------------------------- */

static void print_stats(FILE *f, const loadgen_stats *st) {
    fprintf(f, "p50 %.0f us  p90 %.0f us  p99 %.0f us  p99.9 %.0f us  max %.0f us ", st->p50_us, st->p90_us,
            st->p99_us, st->p999_us, st->max_us);
    for (int c = 0; c < LOADGEN_STATUS_CODES; c++)
        if (st->status[c]) fprintf(f, " %s=%llu", pa_grpc_status_name(c), (unsigned long long)st->status[c]);
    fputc('\n', f);
}

void loadgen_print(FILE *f, const char *label, const loadgen_config *cfg, const loadgen_result *res) {
    int threads = cfg->threads > 0 ? cfg->threads : 1;
    fprintf(f, "%s: threads %d channels %d concurrency %d%s: %llu calls in %.2f s = %.0f calls/s  ", label,
            threads, cfg->channels > 0 ? cfg->channels : threads, cfg->concurrency > 0 ? cfg->concurrency : threads,
            cfg->rate > 0 ? " (open loop)" : "", (unsigned long long)res->total.calls, res->seconds,
            res->calls_per_s);
    print_stats(f, &res->total);
    int used = 0;
    for (int k = 0; k < LOADGEN_MAX_CLASSES; k++) used += res->klass[k].calls > 0;
    for (int k = 0; used > 1 && k < LOADGEN_MAX_CLASSES; k++) {
        if (!res->klass[k].calls) continue;
        char name[32];
        if (cfg->class_names && cfg->class_names[k]) snprintf(name, sizeof name, "%s", cfg->class_names[k]);
        else snprintf(name, sizeof name, "%d", k);
        fprintf(f, "  class %-12s %8llu calls  ", name, (unsigned long long)res->klass[k].calls);
        print_stats(f, &res->klass[k]);
    }
    if (res->late_starts) fprintf(f, "  %llu calls started over 1 ms late (all slots busy: raise concurrency)\n",
                                  (unsigned long long)res->late_starts);
    if (res->first_error[0]) fprintf(f, "  first error: %s\n", res->first_error);
}
