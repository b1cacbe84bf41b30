/* rpc_server.c -- the unary gRPC server runtime on gRPC's C core API.
 *
 * Shape (see GRPC-CORE-NOTES.md for the facts behind it):
 *   - W workers, each a thread looping on its own completion queue. gRPC
 *     matches an incoming call to any queue that has a request armed, and
 *     the thread that waits on a queue also drives the sockets, so one
 *     queue per core with one thread each keeps every core busy without
 *     handing calls between threads.
 *   - Every worker arms `requests_per_method` registered requests per
 *     method (payload read by core before the call is published) and two
 *     unregistered ones, so unknown methods get UNIMPLEMENTED instead of
 *     hanging until the client's deadline. A request slot is re-armed as
 *     soon as its call has been taken out, before the handler runs.
 *   - A call is handled start to finish on the worker that received it:
 *     size check, handler, then one batch (initial metadata, message,
 *     status, close). A handler may instead defer the call (rpc_ctx_defer):
 *     another thread sends that batch later, under the worker's mutex, and
 *     the call counts in the worker's `outstanding` until then. Batches in flight live in `reply_op`s taken from a
 *     per-worker free list, so the steady state allocates nothing of ours
 *     except the slice the response travels in (gRPC needs memory it owns
 *     until the bytes are written; for bodies up to 23 bytes it is inline).
 *   - Request bytes are handed to the handler in place when they arrived as
 *     one slice, else copied once into a buffer of the call's position in
 *     the round. Each position's reply body is a buffer the handler fills
 *     and the runtime reuses.
 *   - Natural batching (docs/batching.md): after one event the worker takes
 *     every event already completed on its queue (a deadline in the past),
 *     up to batch_max calls ("taken" calls); then the calls of a method with
 *     a batch handler go to it together, the others to their handler one by
 *     one. Reply completions met meanwhile are handled at once. A batched
 *     method keeps batch_max requests armed, so a burst can fill a batch.
 *   - The refusal hold (rpc_server_config.refusal_hold_ms): a reply its
 *     handler marks `hold` is built at once but started only when due, from
 *     a FIFO per worker; the worker's wait on its queue ends by then.
 *
 * Draining: rpc_server_shutdown marks the server as not serving, calls
 * grpc_server_shutdown_and_notify (listeners close, connections get GOAWAY,
 * calls not yet matched to a request are refused), waits for the calls in
 * flight up to the grace period, cancels what is left, then shuts the
 * queues down and joins the workers. Calls already matched are handled
 * normally meanwhile: the armed requests are what make an accepted call
 * "in flight".
 *
 * A queue can be shut down only when nothing can be added to it any more,
 * and the shutdown tag does not promise that (it fires once connections
 * are gone, while published calls may still wait in a queue). So each
 * worker counts what it is still owed -- armed requests plus reply batches
 * -- and its queue is closed when that count reaches zero after the
 * server has shut down. The count lives under a per-worker mutex that only
 * shutdown ever contends for. */
#include "rpc_server.h"

#include "clock.h"
#include "conn_limit.h"
#include "errbuf.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc_status_name.h"
#include "hex.h"
#include "log.h"
#include "metrics.h"
#include "rpc_methods.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/compression.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GENERIC_REQUESTS 2          /* armed unregistered-method requests per worker */
#define REPLY_INITIAL_CAP 4096      /* first size of the per-worker reply body */

typedef struct worker worker;

/* What a completion-queue tag points at; every tagged struct starts with one. */
typedef enum tag_kind { TAG_REQUEST, TAG_GENERIC, TAG_REPLY } tag_kind;

/* What became of a reply marked to be held (pa_grpc_refusal_holds_total). */
typedef enum hold_result { HOLD_HELD, HOLD_FULL, HOLD_DEADLINE, HOLD_RESULTS } hold_result;

typedef struct method_entry {
    rpc_method m;                 /* the daemon's description (health's is ours) */
    void *handle;                 /* from grpc_server_register_method */
    char *label;                  /* metric label: the path without its leading '/' */
    _Atomic(metric *) calls[PA_GRPC_STATUS_CODES]; /* pa_grpc_calls_total series, registered on first use */
    metric *seconds;              /* pa_grpc_call_seconds for this method */
    metric *batch_calls;          /* pa_batch_calls for a method with a batch handler, else NULL */
    int armed;                    /* requests kept armed per worker: a batched method needs batch_max */
} method_entry;

/* One armed grpc_server_request_registered_call. */
typedef struct request_slot {
    tag_kind kind;                /* TAG_REQUEST */
    worker *w;                    /* owner; completions arrive on its queue */
    method_entry *method;         /* which method the slot is armed for */
    grpc_call *call;              /* filled by core on arrival */
    gpr_timespec deadline;        /* the client's deadline */
    grpc_metadata_array md;       /* request metadata (handed to the handler's rpc_ctx) */
    grpc_byte_buffer *payload;    /* the request message, read by core */
} request_slot;

/* One armed grpc_server_request_call for methods nobody registered. */
typedef struct generic_slot {
    tag_kind kind;                /* TAG_GENERIC */
    worker *w;
    grpc_call *call;
    grpc_call_details details;    /* carries the unknown method's path */
    grpc_metadata_array md;
} generic_slot;

/* One response batch in flight; lives until its tag completes. */
typedef struct reply_op {
    tag_kind kind;                /* TAG_REPLY */
    worker *w;
    grpc_call *call;              /* unref'd when the batch completes */
    method_entry *method;         /* metrics owner; NULL for unknown methods */
    grpc_status_code status;      /* what we sent, for the metrics */
    double seconds;               /* arrival to reply queued */
    grpc_byte_buffer *body;       /* NULL unless a message is sent */
    grpc_slice details;           /* status message slice (if has_details) */
    bool has_details;
    grpc_metadata trailer[2]; /* "retry-after", "error-reason" (the first n_trailer) */
    size_t n_trailer;
    int cancelled;                /* RECV_CLOSE_ON_SERVER output */
    grpc_op ops[4];               /* the batch itself; core reads it during start_batch only */
    size_t n_ops;                 /* how many of ops the batch uses */
    double started;               /* the call's arrival (pa_mono_s), for the latency metric */
    double due;                   /* held: when the batch may start (pa_mono_s) */
    struct reply_op *next_held;   /* worker's hold queue, in order of `due` */
    struct reply_op *next_free;   /* worker's free list */
    struct reply_op *next_all;    /* every op ever made, for freeing at exit */
} reply_op;

struct rpc_ctx {
    worker *w;                    /* the worker running the handler */
    grpc_call *call;              /* the call being handled */
    gpr_timespec deadline;
    char *peer;                   /* gpr_malloc'd by core on first ask, freed after the handler */
    const grpc_metadata_array *md; /* the request's metadata while the handler runs, else NULL */
    char peer_ip[64];             /* derived from peer on first ask */
    char identity[256];           /* client certificate CN on first ask */
    bool have_ip, have_identity;
    method_entry *method; /* the call's method and arrival, for a deferred reply */
    double started;
    bool deferred; /* the handler called rpc_ctx_defer */
};

/* A call taken out of its request slot, waiting for its handler (alone or
 * in a batch); everything it needs lives here until its reply is queued. */
typedef struct taken_call {
    rpc_ctx ctx;     /* the handler's view; ctx.md points at md */
    rpc_reply reply; /* its own reply; the body buffer is reused by later calls */
    method_entry *method;
    grpc_call *call;
    grpc_byte_buffer *payload;  /* the request, destroyed once the handler has returned */
    grpc_byte_buffer_reader rd; /* valid while has_reader */
    bool has_reader;
    gpr_timespec deadline;
    grpc_metadata_array md; /* moved out of the slot; its slices live as long as the call */
    double started;         /* arrival, for the latency metric */
    const uint8_t *req;     /* contiguous request bytes (in place, or req_buf) */
    size_t req_len;
    uint8_t *req_buf; /* this position's copy of multi-slice requests */
    size_t req_cap;
    bool done; /* handled in this round */
} taken_call;

/* A call whose handler returned without answering (rpc_ctx_defer). */
struct rpc_deferred {
    rpc_ctx ctx; /* a copy; ctx.w is the worker whose queue the call is on */
};

struct worker {
    rpc_server *s;
    int index;
    pthread_t thread;             /* valid when started */
    bool started;
    pthread_mutex_t mu;           /* held while handling an event; see the top comment */
    bool mu_ready;                /* mu was initialised (a failed start may stop before) */
    grpc_completion_queue *cq;    /* this worker's queue */
    int outstanding;              /* completions still due on cq: armed requests + replies (under mu) */
    bool cq_closing;              /* shutdown: close cq once outstanding reaches 0 (under mu) */
    bool cq_shut;                 /* grpc_completion_queue_shutdown was called (under mu) */
    void *state;                  /* from worker_init */
    request_slot *slots;          /* n_methods * per_method */
    size_t n_slots;
    generic_slot generic[GENERIC_REQUESTS];
    reply_op *free_ops, *all_ops; /* reply_op pool */
    reply_op *held, *held_last;   /* refusals waiting for their due time, oldest first */
    int n_held;                   /* their number, at most the server's hold_max */
    taken_call *taken;            /* batch_max calls taken from the queue in this round */
    size_t n_taken;
    rpc_batch_call *batch; /* batch_max: what a batch handler is given */
};

struct rpc_server {
    grpc_server *server;
    bool grpc_started;            /* grpc_server_start was called */
    method_entry *methods;        /* the daemon's methods, then health if we serve it */
    size_t n_methods;
    int per_method;               /* armed requests per method per worker */
    int batch_max;                /* calls taken from a queue at once (limits.batch_max) */
    worker *workers;
    int n_workers;
    int *ports;                   /* bound port per listen address */
    size_t n_ports;
    char **health_names;          /* services Health/Check knows (not "") */
    size_t n_health;
    _Atomic bool serving;         /* Health/Check answer for known services */
    _Atomic bool shutting_down;   /* no more re-arming */
    _Atomic bool cancel_issued;   /* grace ran out: grpc_server_cancel_all_calls was called */
    _Atomic int cancelled;        /* calls that ended cancelled after that */
    void (*worker_free)(void *);
    void *app;
    _Atomic(metric *) unknown_calls; /* pa_grpc_calls_total{method="unknown",code="UNIMPLEMENTED"} */
    rpc_server_limits limits;        /* cfg->limits with the defaults filled in */
    double hold_s;                   /* cfg->refusal_hold_ms in seconds; 0: no hold */
    int hold_max;                    /* replies one worker may hold */
    metric *holds[HOLD_RESULTS];     /* pa_grpc_refusal_holds_total{result=held|full|deadline} */
    conn_limit *conn_cap;            /* per-address connection cap on our ports */
    metric *conns_refused;           /* pa_grpc_connections_refused_total{reason="per_address"} */
    _Atomic int64_t refuse_logged_ms; /* last server.connection_refused line (monotonic ms) */
    _Atomic uint64_t refuse_unlogged; /* refusals since that line */
};

static const double latency_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};

/* --- metrics ------------------------------------------------------------ */

static metric *calls_metric(rpc_server *s, method_entry *me, grpc_status_code code) {
    if ((unsigned)code >= PA_GRPC_STATUS_CODES) code = GRPC_STATUS_UNKNOWN;
    _Atomic(metric *) *slot = me ? &me->calls[code] : &s->unknown_calls;
    metric *m = atomic_load_explicit(slot, memory_order_acquire);
    if (m) return m;
    char labels[512];
    snprintf(labels, sizeof labels, "method=\"%s\",code=\"%s\"", me ? me->label : "unknown", pa_grpc_status_name(code));
    m = metric_counter("pa_grpc_calls_total", "gRPC calls by method and status code", labels);
    atomic_store_explicit(slot, m, memory_order_release);
    return m;
}

static void record_call(reply_op *op) {
    rpc_server *s = op->w->s;
    grpc_status_code code = op->status;
    /* If core could not deliver our status the client saw something else
     * (its deadline, a cancel): count what really happened to the call. */
    if (op->cancelled) code = GRPC_STATUS_CANCELLED;
    if (op->cancelled && atomic_load(&s->cancel_issued)) atomic_fetch_add(&s->cancelled, 1);
    metric_inc(calls_metric(s, op->method, code));
    if (op->method) metric_observe(op->method->seconds, op->seconds);
}

/* Milliseconds before `deadline` (INT64_MAX if none). */
static int64_t remaining_ms(gpr_timespec deadline) {
    gpr_timespec d = gpr_convert_clock_type(deadline, GPR_CLOCK_MONOTONIC);
    if (gpr_time_cmp(d, gpr_inf_future(GPR_CLOCK_MONOTONIC)) == 0) return INT64_MAX;
    gpr_timespec left = gpr_time_sub(d, gpr_now(GPR_CLOCK_MONOTONIC));
    return (int64_t)left.tv_sec * 1000 + left.tv_nsec / 1000000;
}

/* --- reply ops ------------------------------------------------------------ */

static reply_op *reply_op_get(worker *w) {
    reply_op *op = w->free_ops;
    if (op) {
        w->free_ops = op->next_free;
    } else {
        op = calloc(1, sizeof *op);
        if (!op) return NULL;
        op->next_all = w->all_ops;
        w->all_ops = op;
    }
    op->kind = TAG_REPLY;
    op->w = w;
    op->body = NULL;
    op->has_details = false;
    op->n_trailer = 0;
    op->cancelled = 0;
    return op;
}

static void reply_op_finish(reply_op *op) {
    worker *w = op->w;
    if (op->body) grpc_byte_buffer_destroy(op->body);
    if (op->has_details) grpc_slice_unref(op->details);
    for (size_t i = 0; i < op->n_trailer; i++) grpc_slice_unref(op->trailer[i].value);
    grpc_call_unref(op->call);
    op->call = NULL;
    op->next_free = w->free_ops;
    w->free_ops = op;
}

/* The batch that answers `call` with `r`: status (and the body if OK). NULL
 * when out of memory: then the call is cancelled and released here. */
static reply_op *reply_build(worker *w, grpc_call *call, method_entry *me, const rpc_reply *r, double started) {
    reply_op *op = reply_op_get(w);
    if (!op) {
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory", NULL);
        grpc_call_unref(call);
        return NULL;
    }
    op->call = call;
    op->started = started;
    op->method = me;
    op->status = r->status;
    size_t n = 0;
    memset(op->ops, 0, sizeof op->ops);
    op->ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (r->status == GRPC_STATUS_OK) {
        grpc_slice body = r->body_len ? grpc_slice_from_copied_buffer((const char *)r->body, r->body_len)
                                      : grpc_empty_slice();
        op->body = grpc_raw_byte_buffer_create(&body, 1);
        grpc_slice_unref(body);
        op->ops[n].op = GRPC_OP_SEND_MESSAGE;
        op->ops[n++].data.send_message.send_message = op->body;
    }
    grpc_op *st = &op->ops[n++];
    st->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    st->data.send_status_from_server.status = r->status;
    if (r->message[0]) {
        op->details = grpc_slice_from_copied_string(r->message);
        op->has_details = true;
        st->data.send_status_from_server.status_details = &op->details;
    }
    if (r->retry_after_s > 0) {
        char v[24];
        snprintf(v, sizeof v, "%d", r->retry_after_s);
        op->trailer[op->n_trailer].key = grpc_slice_from_static_string("retry-after");
        op->trailer[op->n_trailer++].value = grpc_slice_from_copied_string(v);
    }
    if (r->status != GRPC_STATUS_OK && r->reason && r->reason[0]) {
        op->trailer[op->n_trailer].key = grpc_slice_from_static_string("error-reason");
        op->trailer[op->n_trailer++].value = grpc_slice_from_copied_string(r->reason);
    }
    if (op->n_trailer) {
        st->data.send_status_from_server.trailing_metadata_count = op->n_trailer;
        st->data.send_status_from_server.trailing_metadata = op->trailer;
    }
    op->ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op->ops[n++].data.recv_close_on_server.cancelled = &op->cancelled;
    op->n_ops = n;
    return op;
}

/* Starts the batch built by reply_build. On failure to even start it the
 * call is cancelled and released here. */
static void reply_start(worker *w, reply_op *op) {
    op->seconds = pa_mono_s() - op->started;
    if (grpc_call_start_batch(op->call, op->ops, op->n_ops, op, NULL) == GRPC_CALL_OK) {
        w->outstanding++;
    } else {
        op->cancelled = 1;
        grpc_call_cancel(op->call, NULL);
        record_call(op);
        reply_op_finish(op);
    }
}

static void send_reply(worker *w, grpc_call *call, method_entry *me, const rpc_reply *r, double started) {
    reply_op *op = reply_build(w, call, me, r, started);
    if (op) reply_start(w, op);
}

/* --- the refusal hold (rpc_server_config.refusal_hold_ms) ---------------------
 * Each worker queues its held replies in arrival order; with one hold time
 * for all, that is also the order they fall due in. The worker waits on
 * its queue no longer than until the first is due (worker_main). A held
 * reply counts in `outstanding` like a batch in flight, so the queue and
 * the server's shutdown wait for it. At shutdown everything held goes at
 * once: the worker wakes as its armed requests fail, at the latest when
 * its first held reply falls due. */

/* Sends `r` now, or queues it until its due time when it asks to be held. */
static void send_or_hold(worker *w, grpc_call *call, method_entry *me, const rpc_reply *r, double started,
                         gpr_timespec deadline) {
    rpc_server *s = w->s;
    if (!r->hold || s->hold_s <= 0 || atomic_load(&s->shutting_down)) {
        send_reply(w, call, me, r, started);
        return;
    }
    double due = started + s->hold_s;
    /* 5 ms to spare: a refusal is worth more to the client than its deadline */
    double wait_ms = (due - pa_mono_s()) * 1000 + 5;
    hold_result result = w->n_held >= s->hold_max                   ? HOLD_FULL
                         : (double)remaining_ms(deadline) < wait_ms ? HOLD_DEADLINE
                                                                    : HOLD_HELD;
    metric_inc(s->holds[result]);
    if (result != HOLD_HELD) {
        send_reply(w, call, me, r, started);
        return;
    }
    reply_op *op = reply_build(w, call, me, r, started);
    if (!op) return;
    op->due = due;
    op->next_held = NULL;
    if (w->held_last) w->held_last->next_held = op;
    else w->held = op;
    w->held_last = op;
    w->n_held++;
    w->outstanding++; /* the queue stays open until the batch is sent and done */
}

/* Starts every held reply that is due (all of them once shutting down). */
static void release_held(worker *w) {
    if (!w->held) return; /* the usual case: no clock read on every event */
    bool all = atomic_load(&w->s->shutting_down);
    double now = pa_mono_s();
    while (w->held && (all || w->held->due <= now)) {
        reply_op *op = w->held;
        w->held = op->next_held;
        if (!w->held) w->held_last = NULL;
        w->n_held--;
        w->outstanding--;
        reply_start(w, op);
    }
}

/* How long the worker may wait for its next event: until its first held
 * reply is due, else for ever. */
static gpr_timespec next_wake(worker *w) {
    if (!w->held) return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    double wait = w->held->due - pa_mono_s();
    if (wait < 0) wait = 0;
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_micros((int64_t)(wait * 1e6) + 1, GPR_TIMESPAN));
}

/* --- request slots ------------------------------------------------------------ */

static void arm_request(request_slot *sl) {
    rpc_server *s = sl->w->s;
    if (atomic_load(&s->shutting_down)) return;
    sl->call = NULL;
    sl->payload = NULL;
    grpc_metadata_array_destroy(&sl->md);
    grpc_metadata_array_init(&sl->md);
    if (grpc_server_request_registered_call(s->server, sl->method->handle, &sl->call, &sl->deadline, &sl->md,
                                            &sl->payload, sl->w->cq, sl->w->cq, sl) == GRPC_CALL_OK)
        sl->w->outstanding++;
}

static void arm_generic(generic_slot *g) {
    rpc_server *s = g->w->s;
    if (atomic_load(&s->shutting_down)) return;
    g->call = NULL;
    grpc_call_details_destroy(&g->details);
    grpc_call_details_init(&g->details);
    grpc_metadata_array_destroy(&g->md);
    grpc_metadata_array_init(&g->md);
    if (grpc_server_request_call(s->server, &g->call, &g->details, &g->md, g->w->cq, g->w->cq, g) == GRPC_CALL_OK)
        g->w->outstanding++;
}

/* Makes the request contiguous: in place when it is one slice, else one
 * copy into the worker's buffer. NULL only if that buffer cannot grow. */
static const uint8_t *request_bytes(taken_call *tc, grpc_byte_buffer_reader *rd, size_t len) {
    static const uint8_t empty[1];
    grpc_slice *first;
    if (len == 0 || !grpc_byte_buffer_reader_peek(rd, &first)) return empty;
    if (GRPC_SLICE_LENGTH(*first) == len) return GRPC_SLICE_START_PTR(*first);
    if (len > tc->req_cap) {
        uint8_t *nb = realloc(tc->req_buf, len);
        if (!nb) return NULL;
        tc->req_buf = nb;
        tc->req_cap = len;
    }
    size_t off = 0;
    grpc_slice *sl = first;
    do {
        size_t n = GRPC_SLICE_LENGTH(*sl);
        if (n > len - off) n = len - off;
        memcpy(tc->req_buf + off, GRPC_SLICE_START_PTR(*sl), n);
        off += n;
    } while (off < len && grpc_byte_buffer_reader_peek(rd, &sl));
    return tc->req_buf;
}

static void reply_reset(rpc_reply *r) {
    r->status = GRPC_STATUS_OK;
    r->message[0] = '\0';
    r->body_len = 0;
    r->retry_after_s = 0;
    r->reason = NULL;
    r->hold = false;
}

static void ctx_reset(rpc_ctx *c, grpc_call *call, gpr_timespec deadline, method_entry *me, double started) {
    c->call = call;
    c->deadline = deadline;
    c->peer = NULL;
    c->have_ip = false;
    c->have_identity = false;
    c->method = me;
    c->started = started;
    c->deferred = false;
}

/* The checks every call passes before any handler sees it; false with the
 * reply set when it fails one. */
static bool call_prepare(worker *w, taken_call *tc) {
    rpc_reply *r = &tc->reply;
    method_entry *me = tc->method;
    reply_reset(r);
    ctx_reset(&tc->ctx, tc->call, tc->deadline, me, tc->started);
    tc->ctx.md = &tc->md;
    tc->has_reader = false;
    grpc_byte_buffer *payload = tc->payload;
    if (atomic_load(&w->s->cancel_issued)) {
        /* Shutdown gave up waiting: the call is already cancelled. */
        rpc_reply_error(r, GRPC_STATUS_UNAVAILABLE, "server is shutting down");
        return false;
    }
    if (!payload) {
        rpc_reply_error(r, GRPC_STATUS_INVALID_ARGUMENT, "request message missing");
        return false;
    }
    size_t len = grpc_byte_buffer_length(payload);
    if (payload->type != GRPC_BB_RAW || payload->data.raw.compression != GRPC_COMPRESS_NONE) {
        /* Never inflated: the transport refuses compressed calls at their
         * headers, and this catches anything that slipped past that. */
        rpc_reply_error(r, GRPC_STATUS_UNIMPLEMENTED, "compressed requests are not accepted");
        return false;
    }
    if (len > me->m.max_request_bytes) {
        rpc_reply_error(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "request is %zu bytes; %s accepts at most %zu bytes", len,
                        me->m.path, me->m.max_request_bytes);
        return false;
    }
    if (!grpc_byte_buffer_reader_init(&tc->rd, payload)) {
        rpc_reply_error(r, GRPC_STATUS_INVALID_ARGUMENT, "request message could not be decompressed");
        return false;
    }
    tc->has_reader = true;
    tc->req = request_bytes(tc, &tc->rd, len);
    tc->req_len = len;
    if (!tc->req) {
        rpc_reply_error(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return false;
    }
    return true;
}

/* After the handler: the request goes, the reply is queued (unless deferred). */
static void call_finish(worker *w, taken_call *tc) {
    if (tc->has_reader) grpc_byte_buffer_reader_destroy(&tc->rd);
    tc->has_reader = false;
    if (tc->payload) grpc_byte_buffer_destroy(tc->payload);
    tc->payload = NULL;
    if (tc->ctx.peer) gpr_free(tc->ctx.peer);
    tc->ctx.peer = NULL;
    tc->ctx.call = NULL;
    tc->ctx.md = NULL;
    if (!tc->ctx.deferred) send_or_hold(w, tc->call, tc->method, &tc->reply, tc->started, tc->deadline);
    tc->call = NULL;
    grpc_metadata_array_destroy(&tc->md);
    tc->done = true;
}

static void run_single(worker *w, taken_call *tc) {
    if (call_prepare(w, tc)) tc->method->m.handler(&tc->ctx, tc->req, tc->req_len, &tc->reply);
    call_finish(w, tc);
}

/* Every call of this round for `me`, from position `first` on, through its
 * batch handler at once; the calls failing the checks are answered alone. */
static void run_batch(worker *w, method_entry *me, size_t first) {
    size_t n = 0;
    for (size_t i = first; i < w->n_taken; i++) {
        taken_call *tc = &w->taken[i];
        if (tc->done || tc->method != me) continue;
        if (!call_prepare(w, tc)) {
            call_finish(w, tc);
            continue;
        }
        w->batch[n++] = (rpc_batch_call){.ctx = &tc->ctx, .req = tc->req, .req_len = tc->req_len, .reply = &tc->reply};
    }
    if (n == 0) return;
    metric_observe(me->batch_calls, (double)n);
    me->m.batch_handler(w->batch, n);
    for (size_t i = first; i < w->n_taken; i++)
        if (!w->taken[i].done && w->taken[i].method == me) call_finish(w, &w->taken[i]);
}

/* Runs every call taken this round: batched methods' calls together, the
 * others one by one, in arrival order of each method's first call. */
static void run_taken(worker *w) {
    for (size_t i = 0; i < w->n_taken; i++) {
        taken_call *tc = &w->taken[i];
        if (tc->done) continue;
        if (tc->method->m.batch_handler && w->s->batch_max > 1) run_batch(w, tc->method, i);
        else run_single(w, tc);
    }
    w->n_taken = 0;
}

/* Moves an arrived call out of its slot (which is armed again at once). */
static void take_request(request_slot *sl) {
    worker *w = sl->w;
    taken_call *tc = &w->taken[w->n_taken++];
    tc->started = pa_mono_s();
    tc->method = sl->method;
    tc->call = sl->call;
    tc->payload = sl->payload;
    tc->deadline = sl->deadline;
    tc->md = sl->md;
    tc->done = false;
    grpc_metadata_array_init(&sl->md);
    sl->call = NULL;
    sl->payload = NULL;
    arm_request(sl);
}

static void on_request(request_slot *sl, bool ok) {
    sl->w->outstanding--;
    if (!ok) {
        /* Failed requests come back at shutdown; re-arm otherwise (the
         * shutdown check in arm_request decides). */
        if (sl->payload) grpc_byte_buffer_destroy(sl->payload);
        sl->payload = NULL;
        arm_request(sl);
        return;
    }
    take_request(sl);
    if (sl->w->n_taken >= (size_t)sl->w->s->batch_max) run_taken(sl->w);
}

static void on_generic(generic_slot *g, bool ok) {
    g->w->outstanding--;
    if (!ok) {
        arm_generic(g);
        return;
    }
    rpc_reply r;
    reply_reset(&r);
    /* The path is the client's text: keep it printable and short. */
    char path[128];
    size_t n = GRPC_SLICE_LENGTH(g->details.method);
    const char *p = (const char *)GRPC_SLICE_START_PTR(g->details.method);
    if (n >= sizeof path) n = sizeof path - 1;
    for (size_t i = 0; i < n; i++) path[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
    path[n] = '\0';
    rpc_reply_error(&r, GRPC_STATUS_UNIMPLEMENTED, "method %s is not served here", path);
    grpc_call *call = g->call;
    g->call = NULL;
    arm_generic(g);
    send_reply(g->w, call, NULL, &r, pa_mono_s());
}

static void dispatch(void *tag, bool ok) {
    switch (*(tag_kind *)tag) {
    case TAG_REQUEST: on_request(tag, ok); break;
    case TAG_GENERIC: on_generic(tag, ok); break;
    case TAG_REPLY: {
        reply_op *op = tag;
        op->w->outstanding--;
        if (!ok) op->cancelled = 1;
        record_call(op);
        reply_op_finish(op);
        break;
    }
    }
}

/* A queue may only be shut down once nothing can be added to it: no armed
 * request (it could still publish a call) and no reply batch in flight.
 * Called under w->mu by the worker after each event and by shutdown. */
static void maybe_close_cq(worker *w) {
    if (w->cq_closing && !w->cq_shut && w->outstanding == 0) {
        grpc_completion_queue_shutdown(w->cq);
        w->cq_shut = true;
    }
}

/* Takes what else has already completed on the queue, without waiting,
 * until batch_max calls are taken (docs/batching.md); other events are
 * handled as they come. At most a few rounds' worth of events, so a flood
 * of reply completions cannot hold the taken calls back. */
static void take_ready(worker *w) {
    for (int seen = 0; w->n_taken < (size_t)w->s->batch_max && seen < 4 * w->s->batch_max; seen++) {
        grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type != GRPC_OP_COMPLETE) return; /* nothing more (the queue cannot shut while we hold mu) */
        dispatch(ev.tag, ev.success != 0);
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    gpr_timespec until = gpr_inf_future(GPR_CLOCK_MONOTONIC);
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(w->cq, until, NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        pthread_mutex_lock(&w->mu);
        if (ev.type == GRPC_OP_COMPLETE) {
            dispatch(ev.tag, ev.success != 0);
            if (w->s->batch_max > 1 && w->n_taken > 0) take_ready(w);
            run_taken(w);
        }
        release_held(w);
        until = next_wake(w);
        maybe_close_cq(w);
        pthread_mutex_unlock(&w->mu);
    }
    return NULL;
}

/* --- health ------------------------------------------------------------------ */

static void health_check(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    rpc_server *s = ctx->w->s;
    Grpc__Health__V1__HealthCheckRequest *in =
        grpc__health__v1__health_check_request__unpack(NULL, len, req);
    if (!in) {
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "HealthCheckRequest could not be parsed");
        return;
    }
    bool known = in->service[0] == '\0';
    for (size_t i = 0; !known && i < s->n_health; i++) known = strcmp(in->service, s->health_names[i]) == 0;
    if (!known) {
        rpc_reply_error(reply, GRPC_STATUS_NOT_FOUND, "unknown service \"%.128s\"", in->service);
    } else {
        Grpc__Health__V1__HealthCheckResponse out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        out.status = atomic_load(&s->serving) ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                                              : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
        rpc_reply_message(reply, &out.base);
    }
    grpc__health__v1__health_check_request__free_unpacked(in, NULL);
}

static int add_health_name(rpc_server *s, const char *name, size_t len) {
    for (size_t i = 0; i < s->n_health; i++)
        if (strlen(s->health_names[i]) == len && memcmp(s->health_names[i], name, len) == 0) return 0;
    char **nn = realloc(s->health_names, (s->n_health + 1) * sizeof *nn);
    if (!nn) return -1;
    s->health_names = nn;
    if (!(nn[s->n_health] = strndup(name, len))) return -1;
    s->n_health++;
    return 0;
}

/* Known services: the configured ones, every service a method belongs to,
 * and the health service itself. */
static int collect_health_names(rpc_server *s, const rpc_server_config *cfg) {
    for (size_t i = 0; i < cfg->n_health_services; i++)
        if (add_health_name(s, cfg->health_services[i], strlen(cfg->health_services[i])) != 0) return -1;
    for (size_t i = 0; i < s->n_methods; i++) {
        const char *p = s->methods[i].m.path + 1;
        const char *slash = strchr(p, '/');
        if (slash && add_health_name(s, p, (size_t)(slash - p)) != 0) return -1;
    }
    return 0;
}

/* --- start ------------------------------------------------------------------------ */

static int copy_methods(rpc_server *s, const rpc_method *methods, size_t n, char *err, size_t errlen) {
    bool app_health = false;
    for (size_t i = 0; i < n; i++) app_health |= strcmp(methods[i].path, PA_RPC_HEALTH_CHECK) == 0;
    s->methods = calloc(n + 1, sizeof *s->methods);
    if (!s->methods) return err_set(err, errlen, "out of memory");
    for (size_t i = 0; i <= n; i++) {
        if (i == n && app_health) break;
        rpc_method m =
            i < n ? methods[i]
                  : (rpc_method){.path = PA_RPC_HEALTH_CHECK, .handler = health_check, .max_request_bytes = 1024};
        if (!m.path || m.path[0] != '/' || !strchr(m.path + 1, '/') || !m.handler)
            return err_set(err, errlen, "method %zu: path must look like \"/pkg.Service/Method\" and have a handler", i);
        for (size_t j = 0; j < s->n_methods; j++)
            if (strcmp(s->methods[j].m.path, m.path) == 0) return err_set(err, errlen, "method %s listed twice", m.path);
        if (m.max_request_bytes == 0) m.max_request_bytes = RPC_DEFAULT_MAX_REQUEST;
        method_entry *me = &s->methods[s->n_methods++];
        me->m = m;
        if (!(me->label = strdup(m.path + 1))) return err_set(err, errlen, "out of memory");
        char labels[512];
        snprintf(labels, sizeof labels, "method=\"%s\"", me->label);
        me->seconds = metric_histogram("pa_grpc_call_seconds",
                                       "Server time per gRPC call, from arrival to reply queued", labels,
                                       latency_bounds, sizeof latency_bounds / sizeof latency_bounds[0]);
        if (m.batch_handler)
            me->batch_calls = metric_histogram("pa_batch_calls", "Calls handed to a batch handler at once", labels,
                                               batch_bounds, sizeof batch_bounds / sizeof batch_bounds[0]);
    }
    return 0;
}

static int int_or(int v, int dflt) { return v > 0 ? v : dflt; }

/* cfg->limits with the defaults for zeroes; -1 with a message for a negative field. */
static int resolve_limits(rpc_server *s, const rpc_server_limits *in, char *err, size_t errlen) {
    const int fields[] = {in->max_connections_per_address,
                          in->max_concurrent_streams,
                          in->handshake_timeout_ms,
                          in->max_connection_idle_ms,
                          in->max_connection_age_ms,
                          in->max_connection_age_grace_ms,
                          in->min_ping_interval_ms,
                          in->max_ping_strikes,
                          in->memory_limit_mb,
                          in->batch_max};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        if (fields[i] < 0) return err_set(err, errlen, "transport limits must not be negative");
    s->limits = (rpc_server_limits){
        .max_connections_per_address = int_or(in->max_connections_per_address, RPC_DEFAULT_MAX_CONNECTIONS_PER_ADDRESS),
        .max_concurrent_streams = int_or(in->max_concurrent_streams, RPC_DEFAULT_MAX_CONCURRENT_STREAMS),
        .handshake_timeout_ms = int_or(in->handshake_timeout_ms, RPC_DEFAULT_HANDSHAKE_TIMEOUT_MS),
        .max_connection_idle_ms = int_or(in->max_connection_idle_ms, RPC_DEFAULT_MAX_CONNECTION_IDLE_MS),
        .max_connection_age_ms = int_or(in->max_connection_age_ms, RPC_DEFAULT_MAX_CONNECTION_AGE_MS),
        .max_connection_age_grace_ms = int_or(in->max_connection_age_grace_ms, RPC_DEFAULT_MAX_CONNECTION_AGE_GRACE_MS),
        .min_ping_interval_ms = int_or(in->min_ping_interval_ms, RPC_DEFAULT_MIN_PING_INTERVAL_MS),
        .max_ping_strikes = int_or(in->max_ping_strikes, RPC_DEFAULT_MAX_PING_STRIKES),
        .memory_limit_mb = int_or(in->memory_limit_mb, RPC_DEFAULT_MEMORY_LIMIT_MB),
        .batch_max = int_or(in->batch_max, RPC_DEFAULT_BATCH_MAX),
    };
    s->batch_max = s->limits.batch_max;
    /* A batched method keeps enough requests armed for a whole batch. */
    for (size_t i = 0; i < s->n_methods; i++)
        s->methods[i].armed =
            s->methods[i].m.batch_handler && s->per_method < s->batch_max ? s->batch_max : s->per_method;
    return 0;
}

/* The refusal hold's settings and its metric. */
static int resolve_hold(rpc_server *s, const rpc_server_config *cfg, char *err, size_t errlen) {
    if (cfg->refusal_hold_ms < 0 || cfg->refusal_hold_max < 0)
        return err_set(err, errlen, "the refusal hold must not be negative");
    s->hold_s = cfg->refusal_hold_ms / 1000.0;
    s->hold_max = int_or(cfg->refusal_hold_max, RPC_DEFAULT_REFUSAL_HOLD_MAX);
    static const char *const results[HOLD_RESULTS] = {"held", "full", "deadline"};
    for (int i = 0; i < HOLD_RESULTS; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "result=\"%s\"", results[i]);
        s->holds[i] = metric_counter("pa_grpc_refusal_holds_total",
                                     "refusals marked to be held: held, or sent at once (hold queue full, "
                                     "deadline too near)",
                                     labels);
    }
    return 0;
}

static grpc_arg int_arg(const char *key, int value) {
    grpc_arg a = {.type = GRPC_ARG_INTEGER, .key = (char *)key};
    a.value.integer = value;
    return a;
}

/* The transport refuses anything above twice the largest method limit
 * before buffering it; requests between a method's limit and that get our
 * own message naming the method's limit. A port in use is an error. The
 * limits (rpc_server_limits) become core's channel arguments; the memory
 * quota covers every connection of the server together. */
static grpc_server *create_server(rpc_server *s) {
    size_t largest = 0;
    for (size_t i = 0; i < s->n_methods; i++)
        if (s->methods[i].m.max_request_bytes > largest) largest = s->methods[i].m.max_request_bytes;
    size_t cap = largest > (size_t)INT_MAX / 2 ? (size_t)INT_MAX : 2 * largest;
    if (cap < 65536) cap = 65536;
    const rpc_server_limits *l = &s->limits;
    grpc_resource_quota *quota = grpc_resource_quota_create("pa_rpc_server");
    if (!quota) return NULL;
    grpc_resource_quota_resize(quota, (size_t)l->memory_limit_mb << 20);
    grpc_arg args[] = {
        int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, (int)cap),
        /* gRPC sets SO_REUSEPORT by default: a second server on a busy port
         * would then share it silently instead of failing to start. */
        int_arg(GRPC_ARG_ALLOW_REUSEPORT, 0),
        /* Identity only: a compressed call is refused when its headers
         * arrive, and nothing below inflates a message either. */
        int_arg(GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET, 1 << GRPC_COMPRESS_NONE),
        int_arg(GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION, 0),
        int_arg(GRPC_ARG_MAX_CONCURRENT_STREAMS, l->max_concurrent_streams),
        int_arg(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, l->handshake_timeout_ms),
        int_arg(GRPC_ARG_MAX_CONNECTION_IDLE_MS, l->max_connection_idle_ms),
        int_arg(GRPC_ARG_MAX_CONNECTION_AGE_MS, l->max_connection_age_ms),
        int_arg(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, l->max_connection_age_grace_ms),
        int_arg(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, l->min_ping_interval_ms),
        int_arg(GRPC_ARG_HTTP2_MAX_PING_STRIKES, l->max_ping_strikes),
        {.type = GRPC_ARG_POINTER,
         .key = GRPC_ARG_RESOURCE_QUOTA,
         .value.pointer = {.p = quota, .vtable = grpc_resource_quota_arg_vtable()}},
    };
    grpc_channel_args ca = {.num_args = sizeof args / sizeof *args, .args = args};
    grpc_server *server = grpc_server_create(&ca, NULL);
    grpc_resource_quota_unref(quota); /* the server holds its own reference */
    return server;
}

/* Parses PEM text with OpenSSL first, so a bad file gets a precise error
 * instead of a silent handshake failure later. */
static int check_tls(const rpc_tls_config *t, char *err, size_t errlen) {
    if (!t->cert_pem || !t->key_pem) return err_set(err, errlen, "TLS needs both a certificate and a private key");
    int rc = -1;
    BIO *cb = BIO_new_mem_buf(t->cert_pem, -1), *kb = BIO_new_mem_buf(t->key_pem, -1);
    X509 *cert = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    if (!cert) err_set(err, errlen, "TLS certificate is not a PEM X.509 certificate");
    else if (!key) err_set(err, errlen, "TLS private key is not a PEM private key (or is encrypted)");
    else if (X509_check_private_key(cert, key) != 1) err_set(err, errlen, "TLS private key does not match the certificate");
    else rc = 0;
    X509_free(cert);
    EVP_PKEY_free(key);
    BIO_free(cb);
    BIO_free(kb);
    if (rc == 0 && t->client_ca_pem) {
        BIO *ab = BIO_new_mem_buf(t->client_ca_pem, -1);
        X509 *ca = ab ? PEM_read_bio_X509(ab, NULL, NULL, NULL) : NULL;
        if (!ca) rc = err_set(err, errlen, "client CA is not a PEM X.509 certificate");
        X509_free(ca);
        BIO_free(ab);
    }
    return rc;
}

static grpc_server_credentials *server_credentials(const rpc_tls_config *t) {
    if (!t) return grpc_insecure_server_credentials_create();
    grpc_ssl_pem_key_cert_pair pair = {.private_key = t->key_pem, .cert_chain = t->cert_pem};
    return grpc_ssl_server_credentials_create_ex(
        t->client_ca_pem, &pair, 1,
        t->client_ca_pem ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                         : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        NULL);
}

static int add_ports(rpc_server *s, const rpc_server_config *cfg, char *err, size_t errlen) {
    if (cfg->n_listen == 0) return err_set(err, errlen, "no listen address given");
    s->ports = calloc(cfg->n_listen, sizeof *s->ports);
    if (!s->ports) return err_set(err, errlen, "out of memory");
    grpc_server_credentials *creds = server_credentials(cfg->tls);
    if (!creds) return err_set(err, errlen, "could not create server credentials");
    int rc = 0;
    for (size_t i = 0; i < cfg->n_listen && rc == 0; i++) {
        int port = grpc_server_add_http2_port(s->server, cfg->listen[i], creds);
        if (port <= 0) rc = err_set(err, errlen, "cannot listen on %s (in use, not a local address, or malformed)", cfg->listen[i]);
        s->ports[s->n_ports++] = port;
    }
    grpc_server_credentials_release(creds);
    return rc;
}

#define REFUSE_LOG_EVERY_MS 10000 /* server.connection_refused at most this often */

/* A connection over the per-address cap was reset (on gRPC's accepting
 * thread): count it, and say so in the log without letting a flood of them
 * flood the log. */
static void on_connection_refused(void *arg, const char *address) {
    rpc_server *s = arg;
    metric_inc(s->conns_refused);
    atomic_fetch_add(&s->refuse_unlogged, 1);
    int64_t now = pa_mono_ms(), last = atomic_load(&s->refuse_logged_ms);
    if (last != 0 && now - last < REFUSE_LOG_EVERY_MS) return;
    if (!atomic_compare_exchange_strong(&s->refuse_logged_ms, &last, now)) return;
    log_warn("server.connection_refused", LOG_S("reason", "per_address"), LOG_S("address", address),
             LOG_I("max_per_address", s->limits.max_connections_per_address),
             LOG_U("refused", atomic_exchange(&s->refuse_unlogged, 0)), LOG_END);
}

/* Puts the per-address cap on every TCP port the server listens on. */
static int cap_connections(rpc_server *s, const rpc_server_config *cfg, char *err, size_t errlen) {
    s->conns_refused =
        metric_counter("pa_grpc_connections_refused_total",
                       "Connections reset at accept: their address had too many open", "reason=\"per_address\"");
    s->conn_cap = conn_limit_new(s->limits.max_connections_per_address, on_connection_refused, s);
    if (!s->conn_cap) return err_set(err, errlen, "out of memory");
    for (size_t i = 0; i < s->n_ports; i++) {
        if (strncmp(cfg->listen[i], "unix", 4) == 0) continue;
        if (conn_limit_watch(s->conn_cap, s->ports[i]) != 0)
            return err_set(err, errlen, "cannot cap connections on port %d (another server of this process has it)",
                           s->ports[i]);
    }
    return 0;
}

static int workers_create(rpc_server *s, const rpc_server_config *cfg, char *err, size_t errlen) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    s->n_workers = cfg->workers > 0 ? cfg->workers : (cores > 0 ? (int)cores : 1);
    s->workers = calloc((size_t)s->n_workers, sizeof *s->workers);
    if (!s->workers) return err_set(err, errlen, "out of memory");
    for (int i = 0; i < s->n_workers; i++) {
        worker *w = &s->workers[i];
        w->s = s;
        w->index = i;
        if (pthread_mutex_init(&w->mu, NULL) != 0) return err_set(err, errlen, "worker %d: cannot create its lock", i);
        w->mu_ready = true;
        if (!(w->cq = grpc_completion_queue_create_for_next(NULL)))
            return err_set(err, errlen, "worker %d: cannot create its completion queue", i);
        grpc_server_register_completion_queue(s->server, w->cq, NULL);
        w->taken = calloc((size_t)s->batch_max, sizeof *w->taken);
        w->batch = calloc((size_t)s->batch_max, sizeof *w->batch);
        w->n_slots = 0;
        for (size_t m = 0; m < s->n_methods; m++) w->n_slots += (size_t)s->methods[m].armed;
        w->slots = calloc(w->n_slots, sizeof *w->slots);
        if (!w->taken || !w->batch || !w->slots) return err_set(err, errlen, "out of memory");
        for (int t = 0; t < s->batch_max; t++) w->taken[t].ctx.w = w;
        size_t j = 0;
        for (size_t m = 0; m < s->n_methods; m++)
            for (int k = 0; k < s->methods[m].armed; k++, j++) {
                w->slots[j] = (request_slot){.kind = TAG_REQUEST, .w = w, .method = &s->methods[m]};
                grpc_metadata_array_init(&w->slots[j].md);
            }
        for (int g = 0; g < GENERIC_REQUESTS; g++) {
            w->generic[g] = (generic_slot){.kind = TAG_GENERIC, .w = w};
            grpc_call_details_init(&w->generic[g].details);
            grpc_metadata_array_init(&w->generic[g].md);
        }
        if (cfg->worker_init && !(w->state = cfg->worker_init(i, cfg->app)))
            return err_set(err, errlen, "worker %d failed to initialise", i);
    }
    return 0;
}

static void teardown(rpc_server *s);

rpc_server *rpc_server_start(const rpc_server_config *cfg, const rpc_method *methods, size_t n_methods,
                             char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    rpc_server *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, errlen, "out of memory"), NULL;
    grpc_init();
    s->app = cfg->app;
    s->worker_free = cfg->worker_free;
    s->per_method = cfg->requests_per_method > 0 ? cfg->requests_per_method : RPC_DEFAULT_REQUESTS_PER_METHOD;
    atomic_store(&s->serving, true);
    int rc = copy_methods(s, methods, n_methods, err, errlen);
    if (rc == 0 && collect_health_names(s, cfg) != 0) rc = err_set(err, errlen, "out of memory");
    if (rc == 0 && cfg->tls) rc = check_tls(cfg->tls, err, errlen);
    if (rc == 0) rc = resolve_limits(s, &cfg->limits, err, errlen);
    if (rc == 0) rc = resolve_hold(s, cfg, err, errlen);
    if (rc == 0 && !(s->server = create_server(s))) rc = err_set(err, errlen, "grpc_server_create failed");
    for (size_t i = 0; rc == 0 && i < s->n_methods; i++) {
        s->methods[i].handle = grpc_server_register_method(s->server, s->methods[i].m.path, NULL,
                                                           GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        if (!s->methods[i].handle) rc = err_set(err, errlen, "cannot register method %s", s->methods[i].m.path);
    }
    if (rc == 0) rc = workers_create(s, cfg, err, errlen);
    if (rc == 0) rc = add_ports(s, cfg, err, errlen);
    if (rc == 0) rc = cap_connections(s, cfg, err, errlen);
    if (s->server) {
        /* Started even on failure: a server with listeners can only be
         * destroyed after a shutdown, and only a started one shuts down. */
        grpc_server_start(s->server);
        s->grpc_started = true;
    }
    if (rc != 0) {
        teardown(s);
        return NULL;
    }
    for (int i = 0; i < s->n_workers; i++) {
        worker *w = &s->workers[i];
        for (size_t j = 0; j < w->n_slots; j++) arm_request(&w->slots[j]);
        for (int g = 0; g < GENERIC_REQUESTS; g++) arm_generic(&w->generic[g]);
    }
    for (int i = 0; i < s->n_workers; i++) {
        worker *w = &s->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            err_set(err, errlen, "cannot start worker thread %d", i);
            teardown(s);
            return NULL;
        }
        w->started = true;
    }
    return s;
}

int rpc_server_port(const rpc_server *s, size_t i) { return i < s->n_ports ? s->ports[i] : -1; }

void rpc_server_set_serving(rpc_server *s, bool serving) { atomic_store(&s->serving, serving); }

/* --- shutdown ------------------------------------------------------------------------ */

/* Drains a queue nobody else is reading (workers never started), freeing
 * what the pending events carry. */
static void drain_unstarted(worker *w) {
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) return;
        if (ev.type != GRPC_OP_COMPLETE) continue;
        dispatch(ev.tag, ev.success != 0);
        run_taken(w);
        maybe_close_cq(w);
    }
}

static void worker_release(rpc_server *s, worker *w) {
    for (size_t j = 0; w->slots && j < w->n_slots; j++) {
        if (w->slots[j].payload) grpc_byte_buffer_destroy(w->slots[j].payload);
        grpc_metadata_array_destroy(&w->slots[j].md);
    }
    for (int g = 0; g < GENERIC_REQUESTS; g++) {
        if (!w->generic[g].w) continue;
        grpc_call_details_destroy(&w->generic[g].details);
        grpc_metadata_array_destroy(&w->generic[g].md);
    }
    while (w->all_ops) {
        reply_op *op = w->all_ops;
        w->all_ops = op->next_all;
        free(op);
    }
    if (w->state && s->worker_free) s->worker_free(w->state);
    if (w->cq) grpc_completion_queue_destroy(w->cq);
    if (w->mu_ready) pthread_mutex_destroy(&w->mu);
    free(w->slots);
    for (int t = 0; w->taken && t < s->batch_max; t++) {
        free(w->taken[t].reply.body);
        free(w->taken[t].req_buf);
    }
    free(w->taken);
    free(w->batch);
}

/* Waits for the shutdown tag; cancels the remaining calls after grace_ms
 * (negative: wait forever). The tag only says the connections are gone:
 * calls already published may still sit in the workers' queues, which is
 * why the queues close by their own count (maybe_close_cq). */
static void wait_for_calls(rpc_server *s, int grace_ms) {
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    if (!cq) {
        /* gRPC aborts on out of memory before it returns NULL here; without the
         * queue the shutdown cannot be waited for, and going on would free live calls. */
        fprintf(stderr, "rpc_server: cannot create the shutdown completion queue\n");
        abort();
    }
    static int shutdown_tag;
    grpc_server_shutdown_and_notify(s->server, cq, &shutdown_tag);
    gpr_timespec until = grace_ms < 0 ? gpr_inf_future(GPR_CLOCK_MONOTONIC)
                                      : gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                                     gpr_time_from_millis(grace_ms, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_pluck(cq, &shutdown_tag, until, NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) {
        atomic_store(&s->cancel_issued, true);
        grpc_server_cancel_all_calls(s->server);
        ev = grpc_completion_queue_pluck(cq, &shutdown_tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    }
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    grpc_completion_queue_destroy(cq);
}

static int teardown_with_grace(rpc_server *s, int grace_ms) {
    atomic_store(&s->serving, false);
    atomic_store(&s->shutting_down, true);
    if (s->server && s->grpc_started) wait_for_calls(s, grace_ms);
    for (int i = 0; s->workers && i < s->n_workers; i++) {
        worker *w = &s->workers[i];
        if (!w->cq) continue;
        pthread_mutex_lock(&w->mu);
        w->cq_closing = true;
        maybe_close_cq(w);                 /* else the worker does it after its last event */
        pthread_mutex_unlock(&w->mu);
        if (w->started) pthread_join(w->thread, NULL);
        else drain_unstarted(w);
    }
    if (s->server) grpc_server_destroy(s->server);
    conn_limit_free(s->conn_cap); /* after the listeners are gone: nothing accepts any more */
    for (int i = 0; s->workers && i < s->n_workers; i++) worker_release(s, &s->workers[i]);
    for (size_t i = 0; s->methods && i < s->n_methods; i++) free(s->methods[i].label);
    for (size_t i = 0; i < s->n_health; i++) free(s->health_names[i]);
    free(s->health_names);
    free(s->methods);
    free(s->workers);
    free(s->ports);
    int cancelled = atomic_load(&s->cancelled);
    free(s);
    grpc_shutdown();
    return cancelled;
}

static void teardown(rpc_server *s) { teardown_with_grace(s, 0); }

int rpc_server_shutdown(rpc_server *s, int grace_ms) {
    if (!s) return 0;
    return teardown_with_grace(s, grace_ms);
}

/* --- inside a handler ------------------------------------------------------------------ */

void *rpc_ctx_worker(rpc_ctx *ctx) { return ctx->w->state; }

void *rpc_ctx_app(rpc_ctx *ctx) { return ctx->w->s->app; }

int rpc_ctx_worker_index(rpc_ctx *ctx) { return ctx->w->index; }

const char *rpc_ctx_peer(rpc_ctx *ctx) {
    if (!ctx->peer && ctx->call) ctx->peer = grpc_call_get_peer(ctx->call);
    return ctx->peer ? ctx->peer : "";
}

/* "ipv4:1.2.3.4:5", "ipv6:[::1]:5" or its percent-encoded form -> the address. */
static void peer_to_ip(const char *peer, char *out, size_t cap) {
    const char *p = strchr(peer, ':');
    p = p ? p + 1 : peer;
    char dec[128];
    size_t n = 0;
    for (; *p && n + 1 < sizeof dec; p++) {
        if (p[0] == '%' && pa_hex_digit(p[1]) >= 0 && pa_hex_digit(p[2]) >= 0) {
            dec[n++] = (char)(pa_hex_digit(p[1]) * 16 + pa_hex_digit(p[2]));
            p += 2;
        } else {
            dec[n++] = *p;
        }
    }
    dec[n] = '\0';
    const char *start = dec, *end;
    if (dec[0] == '[') {
        start = dec + 1;
        end = strchr(start, ']');
    } else {
        end = strrchr(dec, ':');
    }
    size_t len = end ? (size_t)(end - start) : strlen(start);
    if (len >= cap) len = cap - 1;
    memcpy(out, start, len);
    out[len] = '\0';
}

const char *rpc_ctx_peer_ip(rpc_ctx *ctx) {
    if (!ctx->have_ip) {
        peer_to_ip(rpc_ctx_peer(ctx), ctx->peer_ip, sizeof ctx->peer_ip);
        ctx->have_ip = true;
    }
    return ctx->peer_ip;
}

int rpc_ctx_metadata(rpc_ctx *ctx, const char *key, size_t index, char *buf, size_t cap) {
    size_t klen = strlen(key);
    for (size_t i = 0; ctx->md && i < ctx->md->count; i++) {
        const grpc_metadata *m = &ctx->md->metadata[i];
        if (GRPC_SLICE_LENGTH(m->key) != klen || memcmp(GRPC_SLICE_START_PTR(m->key), key, klen) != 0) continue;
        if (index-- > 0) continue;
        size_t n = GRPC_SLICE_LENGTH(m->value);
        if (cap > 0) {
            size_t c = n < cap - 1 ? n : cap - 1;
            memcpy(buf, GRPC_SLICE_START_PTR(m->value), c);
            buf[c] = '\0';
        }
        return n > INT_MAX ? INT_MAX : (int)n;
    }
    return -1;
}

int64_t rpc_ctx_remaining_ms(rpc_ctx *ctx) { return remaining_ms(ctx->deadline); }

const char *rpc_ctx_peer_identity(rpc_ctx *ctx) {
    if (!ctx->have_identity && ctx->call) {
        ctx->have_identity = true;
        ctx->identity[0] = '\0';
        grpc_auth_context *ac = grpc_call_auth_context(ctx->call);
        if (ac) {
            grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(ac, GRPC_X509_CN_PROPERTY_NAME);
            const grpc_auth_property *prop = grpc_auth_property_iterator_next(&it);
            if (prop && prop->value_length < sizeof ctx->identity) {
                memcpy(ctx->identity, prop->value, prop->value_length);
                ctx->identity[prop->value_length] = '\0';
            }
            grpc_auth_context_release(ac);
        }
    }
    return ctx->identity[0] ? ctx->identity : NULL;
}

size_t rpc_ctx_peer_properties(rpc_ctx *ctx, const char *name, rpc_property_fn fn, void *arg) {
    grpc_auth_context *ac = ctx->call ? grpc_call_auth_context(ctx->call) : NULL;
    if (!ac) return 0;
    size_t n = 0;
    grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(ac, name);
    for (const grpc_auth_property *p; (p = grpc_auth_property_iterator_next(&it));) {
        n++;
        if (!fn(p->value, p->value_length, arg)) break;
    }
    grpc_auth_context_release(ac);
    return n;
}

/* --- deferred replies ------------------------------------------------------------------ */

/* Runs inside the handler, so under w->mu: the queue's count is safe to touch. */
rpc_deferred *rpc_ctx_defer(rpc_ctx *ctx) {
    if (!ctx->call || ctx->deferred) return NULL;
    rpc_deferred *d = malloc(sizeof *d);
    if (!d) return NULL;
    d->ctx = *ctx;          /* the call's reference and the peer text move to d */
    d->ctx.deferred = true; /* the copy cannot be deferred again */
    d->ctx.md = NULL;       /* the metadata array goes with the handler's return */
    ctx->peer = NULL;
    ctx->deferred = true;
    ctx->w->outstanding++; /* the queue stays open until the answer */
    return d;
}

rpc_ctx *rpc_deferred_ctx(rpc_deferred *d) { return &d->ctx; }

void rpc_deferred_reply(rpc_deferred *d, const rpc_reply *reply) {
    worker *w = d->ctx.w;
    pthread_mutex_lock(&w->mu);
    w->outstanding--;
    send_reply(w, d->ctx.call, d->ctx.method, reply, d->ctx.started);
    maybe_close_cq(w);
    pthread_mutex_unlock(&w->mu);
    if (d->ctx.peer) gpr_free(d->ctx.peer);
    free(d);
}

/* --- replies ------------------------------------------------------------------------ */

void rpc_reply_error(rpc_reply *r, grpc_status_code code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
    r->status = code;
    r->body_len = 0;
}

static int reply_reserve(rpc_reply *r, size_t len) {
    if (len <= r->body_cap) return 0;
    size_t cap = r->body_cap ? r->body_cap : REPLY_INITIAL_CAP;
    while (cap < len) cap *= 2;
    uint8_t *nb = realloc(r->body, cap);
    if (!nb) {
        rpc_reply_error(r, GRPC_STATUS_INTERNAL, "server out of memory for the response");
        return -1;
    }
    r->body = nb;
    r->body_cap = cap;
    return 0;
}

int rpc_reply_message(rpc_reply *r, const ProtobufCMessage *msg) {
    size_t len = protobuf_c_message_get_packed_size(msg);
    if (reply_reserve(r, len) != 0) return -1;
    r->body_len = protobuf_c_message_pack(msg, r->body);
    return 0;
}

int rpc_reply_bytes(rpc_reply *r, const void *data, size_t len) {
    if (reply_reserve(r, len) != 0) return -1;
    if (len) memcpy(r->body, data, len);
    r->body_len = len;
    return 0;
}
