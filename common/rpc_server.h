/* rpc_server.h -- the unary gRPC server both daemons run, on gRPC's C core.
 *
 * A daemon describes its methods in a table and supplies a handler per
 * method; the runtime owns everything else:
 *   - one completion queue and one thread per worker (default: one per
 *     core), several requests armed per method so arrivals never wait;
 *   - reading the request into one contiguous buffer, enforcing the
 *     method's size limit (INVALID_ARGUMENT / RESOURCE_EXHAUSTED naming it);
 *   - answering unknown methods with UNIMPLEMENTED (core would otherwise
 *     leave them hanging until the client's deadline);
 *   - grpc.health.v1.Health/Check for "" and every registered service
 *     (NOT_FOUND for other names, NOT_SERVING while draining);
 *   - metrics: calls by method and status code, latency histogram;
 *   - listening on several addresses (IPv4 and IPv6), optional TLS and
 *     optional required client certificates (mutual TLS);
 *   - transport limits per client (rpc_server_limits): connections per
 *     address, streams per connection, handshake, idle and age timeouts,
 *     ping abuse, a memory quota, and no compressed requests;
 *   - draining on shutdown: stop accepting, let in-flight calls finish;
 *   - holding the replies a handler marks as refusals of abuse
 *     (rpc_reply.hold, rpc_server_config.refusal_hold_ms).
 *
 * Handlers run on the worker thread that received the call and may block
 * (e.g. on Redis); each worker has its own state from worker_init, so a
 * handler needs no locks for per-worker resources. A blocking handler
 * should honour rpc_ctx_remaining_ms: shutdown waits for handlers to return.
 *
 * Metrics (metrics.h) recorded for every call:
 *   pa_grpc_calls_total{method="activation.v1.Activation/Activate",code="OK"}
 *   pa_grpc_call_seconds{method=...}  histogram, arrival to reply queued
 * and for each method with a batch handler
 *   pa_batch_calls{method=...}  histogram, calls per batch handler run
 * Unknown methods count as method="unknown",code="UNIMPLEMENTED". A call
 * whose reply the client never got (deadline, cancel) counts as CANCELLED.
 * Connections reset at accept for the per-address cap count in
 *   pa_grpc_connections_refused_total{reason="per_address"}
 * and are logged as server.connection_refused (at most every 10 s, with
 * the number refused since the last line).
 *
 * Request size: each method's max_request_bytes is checked before the
 * handler runs (RESOURCE_EXHAUSTED "request is N bytes; /x.Y/Z accepts at
 * most M bytes"). The transport itself refuses messages above twice the
 * largest method limit (GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH), also with
 * RESOURCE_EXHAUSTED, before buffering them.
 *
 * Signals belong to the daemon, not to this runtime. gRPC starts threads of
 * its own, and a signal may be delivered to any thread that does not block
 * it, so the daemon blocks SIGTERM/SIGINT before anything starts a thread
 * and waits for them in main:
 *
 *   sigset_t sigs;
 *   sigemptyset(&sigs);
 *   sigaddset(&sigs, SIGTERM);
 *   sigaddset(&sigs, SIGINT);
 *   pthread_sigmask(SIG_BLOCK, &sigs, NULL);   // before grpc_init / any thread
 *   grpc_init();
 *   rpc_server *s = rpc_server_start(&cfg, methods, n, err, sizeof err);
 *   int sig;
 *   sigwait(&sigs, &sig);                      // SIGTERM: drain
 *   rpc_server_set_serving(s, false);          // optional: let probes see it first
 *   rpc_server_shutdown(s, 10000);
 *   grpc_shutdown();                           // balances grpc_init; LeakSanitizer stays quiet
 *
 * The runtime calls grpc_init/grpc_shutdown itself too (they are counted),
 * so the daemon's pair is about ordering, not correctness. Never fork after
 * grpc_init. */
#ifndef PA_RPC_SERVER_H
#define PA_RPC_SERVER_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rpc_server rpc_server;
typedef struct rpc_ctx rpc_ctx;   /* one call, as the handler sees it */

/* What a handler produces. The runtime owns `body` (a per-worker buffer
 * reused across calls); fill it with rpc_reply_message or rpc_reply_error. */
typedef struct rpc_reply {
    grpc_status_code status;      /* GRPC_STATUS_OK unless set otherwise */
    char message[256];            /* status details: human-readable, no secrets */
    uint8_t *body;                /* serialized response message */
    size_t body_len;
    size_t body_cap;
    int retry_after_s;            /* > 0: sent as trailing metadata "retry-after" */
    const char *reason;           /* static string; with an error status, sent as trailing
                                     metadata "error-reason" (a machine-readable cause) */
    bool hold;                    /* a refusal of abuse: sent no sooner than the server's
                                     refusal_hold_ms after the call arrived (see below) */
} rpc_reply;

#define RPC_DEFAULT_MAX_REQUEST 65536        /* max_request_bytes == 0 means this */
#define RPC_DEFAULT_REQUESTS_PER_METHOD 16   /* requests_per_method == 0 means this */

typedef void (*rpc_handler_fn)(rpc_ctx *ctx, const uint8_t *req, size_t req_len, rpc_reply *reply);

/* One call of a batch: what a single handler gets, for each call. */
typedef struct rpc_batch_call {
    rpc_ctx *ctx;       /* the call's own context (rpc_ctx_defer works on it) */
    const uint8_t *req; /* request bytes, valid until the batch handler returns */
    size_t req_len;
    rpc_reply *reply; /* the call's own reply, answered when the batch handler returns */
} rpc_batch_call;

/* Natural batching (docs/batching.md): a worker that finds several calls of
 * a method already waiting on its queue hands them over together. The size
 * limit, the shutdown check and the metrics are per call as for a single
 * handler; the handler fills every reply (or defers the call). It may hand a
 * call to the method's single handler (calls[i].ctx, .req, .req_len,
 * .reply): a call that does not fit the batch leaves it that way. n >= 1. */
typedef void (*rpc_batch_fn)(rpc_batch_call *calls, size_t n);

typedef struct rpc_method {
    const char *path;             /* "/activation.v1.Activation/Activate" */
    rpc_handler_fn handler;
    size_t max_request_bytes;     /* larger requests are refused before the handler runs; 0 = default */
    rpc_batch_fn batch_handler;   /* optional: the calls that arrived together, in one go */
} rpc_method;

typedef struct rpc_tls_config {
    const char *cert_pem;         /* server certificate chain (PEM text, not a path) */
    const char *key_pem;          /* its private key */
    const char *client_ca_pem;    /* if set, clients must present a cert chaining to it */
} rpc_tls_config;

/* What one client may cost the server, enforced by the transport before any
 * handler runs (docs/operations.md, "Transport limits"). A field left 0
 * takes the default in brackets.
 *
 * Fixed, not configurable: compressed requests are refused (UNIMPLEMENTED,
 * "Compression algorithm 'gzip' is disabled") when their headers arrive,
 * before a byte is inflated -- every request of these APIs is a few hundred
 * bytes, and a 60 KB gzip bomb would otherwise inflate to 60 MB; nothing in
 * the stack decompresses (per-message decompression is off as well). */
typedef struct rpc_server_limits {
    int max_connections_per_address; /* open connections per IPv4 address or IPv6 /64; more are
                                        reset at accept [64] (conn_limit.h) */
    int max_concurrent_streams;      /* calls in flight on one connection; HTTP/2 refuses
                                        more streams [100, the minimum RFC 7540 recommends] */
    int handshake_timeout_ms;        /* TLS handshake and the client's HTTP/2 SETTINGS must
                                        arrive within this after accept [10000] */
    int max_connection_idle_ms;      /* a connection with no call for this long is closed
                                        (GOAWAY) [120000] */
    int max_connection_age_ms;       /* every connection is closed after this long [3600000] */
    int max_connection_age_grace_ms; /* ... its calls in flight then get this long [30000] */
    int min_ping_interval_ms;        /* a client ping sooner than this after the last one, with
                                        no call between, is a strike [300000, gRPC's own] */
    int max_ping_strikes;            /* strikes before GOAWAY "too_many_pings" [2] */
    int memory_limit_mb;             /* gRPC's resource quota for the whole server; new
                                        connections are dropped near it [256] */
    int batch_max;                   /* calls a worker takes from its queue at once for a
                                        batch handler; 1 disables batching [32] */
} rpc_server_limits;

#define RPC_DEFAULT_MAX_CONNECTIONS_PER_ADDRESS 64
#define RPC_DEFAULT_MAX_CONCURRENT_STREAMS 100
#define RPC_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define RPC_DEFAULT_MAX_CONNECTION_IDLE_MS 120000
#define RPC_DEFAULT_MAX_CONNECTION_AGE_MS 3600000
#define RPC_DEFAULT_MAX_CONNECTION_AGE_GRACE_MS 30000
#define RPC_DEFAULT_MIN_PING_INTERVAL_MS 300000
#define RPC_DEFAULT_MAX_PING_STRIKES 2
#define RPC_DEFAULT_MEMORY_LIMIT_MB 256
#define RPC_DEFAULT_BATCH_MAX 32
#define RPC_DEFAULT_REFUSAL_HOLD_MAX 1024

typedef struct rpc_server_config {
    const char *const *listen;    /* "127.0.0.1:0", "[::1]:50051", ... */
    size_t n_listen;
    int workers;                  /* 0 = one per core */
    const rpc_tls_config *tls;    /* NULL = plaintext */
    void *app;                    /* passed to worker_init and visible via rpc_ctx_app */
    /* Creates per-worker state (e.g. a Redis connection). Called for every
     * worker on the thread calling rpc_server_start, before any call is
     * served; the state is then used only by that worker's thread. NULL
     * return aborts start. worker_free runs at shutdown after the join. */
    void *(*worker_init)(int worker_index, void *app);
    void (*worker_free)(void *worker_state);
    const char *const *health_services; /* service names Health/Check reports SERVING, besides
                                           those of the methods, which are always known */
    size_t n_health_services;
    /* Requests kept armed per method per worker; 0 = default. Calls beyond
     * these wait inside gRPC and are refused if shutdown starts first. */
    int requests_per_method;
    rpc_server_limits limits; /* zeroes: the defaults */
    /* Refusal hold: a reply marked `hold` (the daemon marks refusals of
     * abuse, such as keys that are not genuine) is sent this long after its
     * call arrived, not at once; 0 sends it at once. A client keeps only so
     * many calls in flight (max_concurrent_streams per connection), so held
     * refusals slow a flood to calls-in-flight / hold, whatever it costs to
     * refuse, while callers who are not refused see no change. A held reply
     * goes at once when the client's deadline would pass first, when the
     * worker already holds refusal_hold_max, and at shutdown. */
    int refusal_hold_ms;
    int refusal_hold_max; /* held replies per worker; 0 = RPC_DEFAULT_REFUSAL_HOLD_MAX */
} rpc_server_config;

/* Creates and starts the server. Returns NULL with a message in err (bind
 * failure, bad TLS material, ...). */
rpc_server *rpc_server_start(const rpc_server_config *cfg, const rpc_method *methods,
                             size_t n_methods, char *err, size_t errlen);

/* The port bound for listen address `i` (useful with port 0). */
int rpc_server_port(const rpc_server *s, size_t i);

/* Health/Check answers NOT_SERVING while false (e.g. while draining). */
void rpc_server_set_serving(rpc_server *s, bool serving);

/* Stops accepting, waits up to grace_ms for in-flight calls (negative:
 * forever), cancels the rest, joins the workers and frees everything.
 * Returns the number of calls that had to be cancelled.
 *
 * Every call a handler has been given (or that is queued for one) is
 * answered. Calls arriving while the connections learn of the shutdown
 * (GOAWAY, about a millisecond on loopback) are reset by gRPC core 1.51
 * itself: the client sees CANCELLED, no handler ever sees them, and they
 * are not counted in the metrics. Clients should retry a CANCELLED they did
 * not cause like UNAVAILABLE. To shrink that window behind a load balancer,
 * call rpc_server_set_serving(s, false) and wait a little first. */
int rpc_server_shutdown(rpc_server *s, int grace_ms);

/* --- inside a handler --- */
void *rpc_ctx_worker(rpc_ctx *ctx);      /* state from worker_init */
void *rpc_ctx_app(rpc_ctx *ctx);
int rpc_ctx_worker_index(rpc_ctx *ctx);  /* 0 .. workers-1 */
/* Client address as gRPC reports it, e.g. "ipv4:127.0.0.1:50000". */
const char *rpc_ctx_peer(rpc_ctx *ctx);
/* The peer address without the scheme and port, e.g. "127.0.0.1" or "::1". */
const char *rpc_ctx_peer_ip(rpc_ctx *ctx);
/* Request metadata: the `index`-th entry (0 = the first) named `key`
 * (lowercase, as gRPC delivers names), copied into buf NUL-terminated and
 * cut to cap - 1 bytes. Returns the value's whole length (>= cap: it was
 * cut), or -1 when there is no such entry. Only the client's word: trust a
 * value only from a peer you trust. */
int rpc_ctx_metadata(rpc_ctx *ctx, const char *key, size_t index, char *buf, size_t cap);
/* Milliseconds left before the client's deadline (INT64_MAX if none). */
int64_t rpc_ctx_remaining_ms(rpc_ctx *ctx);
/* With mutual TLS: the client certificate's common name, or NULL. */
const char *rpc_ctx_peer_identity(rpc_ctx *ctx);
/* With TLS: calls fn once per value of the peer's auth-context property
 * `name` (GRPC_X509_SAN_PROPERTY_NAME, GRPC_X509_CN_PROPERTY_NAME,
 * GRPC_X509_PEM_CERT_PROPERTY_NAME, ... from grpc_security_constants.h),
 * until fn returns false. The value is not NUL-terminated and is valid only
 * during the callback. Returns how many values fn saw (0 without TLS). */
typedef bool (*rpc_property_fn)(const char *value, size_t len, void *arg);
size_t rpc_ctx_peer_properties(rpc_ctx *ctx, const char *name, rpc_property_fn fn, void *arg);

/* --- deferred replies ---
 * A handler that would wait on something slow (another server) need not
 * hold its worker -- and every call queued behind it -- meanwhile: it calls
 * rpc_ctx_defer and returns at once (what its reply holds is ignored), and
 * another thread answers later with rpc_deferred_reply, exactly once. The
 * request bytes are gone when the handler returns: copy what the answer
 * needs first. Until the answer the call counts as in flight, so
 * rpc_server_shutdown waits for it (and cancels it after the grace period;
 * the answer is then dropped by gRPC): whatever answers deferred calls must
 * keep running until rpc_server_shutdown has returned.
 * rpc_deferred_ctx gives the call's context for rpc_ctx_peer, _peer_ip,
 * _remaining_ms, _peer_identity and _peer_properties, from any thread;
 * rpc_ctx_worker there is the receiving worker's state, which belongs to
 * that worker's thread. */
typedef struct rpc_deferred rpc_deferred;
/* NULL (out of memory, or called twice): answer now instead. */
rpc_deferred *rpc_ctx_defer(rpc_ctx *ctx);
rpc_ctx *rpc_deferred_ctx(rpc_deferred *d);
/* Sends `reply` (the caller keeps it) and frees d. */
void rpc_deferred_reply(rpc_deferred *d, const rpc_reply *reply);

/* Sets an error status; the body is dropped. printf-style message. */
void rpc_reply_error(rpc_reply *r, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Serializes `msg` into the reply body (status stays OK). Returns 0 or -1
 * (then the reply is INTERNAL). */
int rpc_reply_message(rpc_reply *r, const ProtobufCMessage *msg);
/* Copies raw bytes into the reply body (status stays OK). Returns 0 or -1
 * (then the reply is INTERNAL). */
int rpc_reply_bytes(rpc_reply *r, const void *data, size_t len);

#endif
