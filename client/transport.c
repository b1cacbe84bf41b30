/* transport.c -- calls to the activation servers, with failover.
 *
 * Servers come in the order discovery chose (last good first, then RFC 2782
 * order). A call goes to the first; if that server is UNAVAILABLE (down,
 * refusing, its store or audit server down), misses the deadline, or
 * dropped the call while draining (CANCELLED), the same request goes to
 * the next. Any other answer -- success or a real
 * refusal such as PERMISSION_DENIED -- ends the walk: another server would
 * give the same verdict, and trying it would only double the load and the
 * rate-limit count. Retrying is safe because every server call is
 * idempotent for the same machine: Activate re-activates without spending
 * a place, Renew renews, Deactivate of a freed place says NOT_FOUND.
 *
 * A dead server must not cost a whole call deadline: before the call, the
 * channel gets `connect_timeout_ms` to become READY (a server that refuses
 * or fails the TLS handshake says so at once; one that drops packets is
 * given up on after that time), and only then the call its own deadline.
 * So ten dead SRV records cost ten connect timeouts (3 s each by default),
 * not ten call timeouts.
 *
 * Channels are opened on first use and kept for the life of the client, so
 * the daemon reuses its connection between renewals; each channel
 * registers the method paths it has used (rpc_channel_method) once.
 * gRPC starts with the first channel (rpc_client does the grpc_init), so
 * programs that only check keys or read the stored license never start its
 * threads. */
#include "transport.h"

#include <grpc/support/time.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METHODS_MAX 4  /* Activate, Renew, Deactivate, and room to grow */

/* A server and, once used, its channel. */
typedef struct conn {
    endpoint ep;                          /* where it is */
    rpc_channel *ch;                      /* NULL until first used */
    const char *paths[METHODS_MAX];       /* method paths registered on ch (static strings) */
    rpc_client_method *methods[METHODS_MAX];
    size_t n_methods;
} conn;

struct transport {
    conn *conns;                /* servers in the order to try */
    size_t n;
    int timeout_ms;             /* deadline of one call to one server */
    int connect_timeout_ms;     /* ... and of its connection, before that */
    grpc_completion_queue *cq;  /* connectivity watches (created on first use) */
    rpc_client_tls tls;         /* copies of the caller's strings */
    bool use_tls;               /* tls holds trust anchors */
    bool called;                /* this thread made calls: its completion queue exists */
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

transport *transport_new(const rpc_client_tls *tls, int timeout_ms, int connect_timeout_ms) {
    transport *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->timeout_ms = timeout_ms;
    t->connect_timeout_ms = connect_timeout_ms;
    if (tls && tls->ca_pem) {
        t->use_tls = true;
        t->tls.ca_pem = dup_or_null(tls->ca_pem);
        t->tls.cert_pem = dup_or_null(tls->cert_pem);
        t->tls.key_pem = dup_or_null(tls->key_pem);
        t->tls.target_name_override = dup_or_null(tls->target_name_override);
    }
    return t;
}

static void close_conns(transport *t) {
    for (size_t i = 0; i < t->n; i++)
        if (t->conns[i].ch) rpc_channel_free(t->conns[i].ch);
    free(t->conns);
    t->conns = NULL;
    t->n = 0;
}

void transport_free(transport *t) {
    if (!t) return;
    close_conns(t);
    if (t->cq) {
        grpc_completion_queue_shutdown(t->cq);
        grpc_completion_queue_pluck(t->cq, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        grpc_completion_queue_destroy(t->cq);
    }
    free((char *)t->tls.ca_pem);
    free((char *)t->tls.cert_pem);
    free((char *)t->tls.key_pem);
    free((char *)t->tls.target_name_override);
    if (t->called) rpc_client_thread_done();  /* the thread's queue, so gRPC can shut down */
    free(t);
}

void transport_set_endpoints(transport *t, endpoint *e, size_t n) {
    close_conns(t);
    t->conns = calloc(n ? n : 1, sizeof *t->conns);
    if (t->conns) {
        for (size_t i = 0; i < n; i++) t->conns[i].ep = e[i];
        t->n = n;
    }
    free(e);
}

size_t transport_endpoint_count(const transport *t) { return t->n; }

static rpc_client_method *method_on(transport *t, conn *c, const char *path) {
    if (!c->ch) {
        /* An endpoint dialled at an address (mDNS) names the host its
         * certificate must carry, unless the caller named one for all. */
        rpc_client_tls tls = t->tls;
        if (!tls.target_name_override && c->ep.tls_name[0]) tls.target_name_override = c->ep.tls_name;
        c->ch = rpc_channel_new(c->ep.target, t->use_tls ? &tls : NULL);
        if (!c->ch) return NULL;
    }
    for (size_t i = 0; i < c->n_methods; i++)
        if (strcmp(c->paths[i], path) == 0) return c->methods[i];
    if (c->n_methods == METHODS_MAX) return NULL;
    rpc_client_method *m = rpc_channel_method(c->ch, path);
    if (!m) return NULL;
    c->paths[c->n_methods] = path;
    c->methods[c->n_methods++] = m;
    return m;
}

static bool settled(grpc_connectivity_state st) {
    return st == GRPC_CHANNEL_READY || st == GRPC_CHANNEL_TRANSIENT_FAILURE || st == GRPC_CHANNEL_SHUTDOWN;
}

/* Gives the channel up to connect_timeout_ms to connect. Returns READY, or
 * TRANSIENT_FAILURE / SHUTDOWN when it failed outright (refused, TLS
 * handshake failed), or CONNECTING when it was still trying at the
 * deadline. */
static grpc_connectivity_state settle(transport *t, conn *c) {
    grpc_channel *ch = rpc_channel_grpc(c->ch);
    grpc_connectivity_state st = grpc_channel_check_connectivity_state(ch, 1);
    if (settled(st)) return st;
    if (!t->cq && !(t->cq = grpc_completion_queue_create_for_pluck(NULL))) return GRPC_CHANNEL_TRANSIENT_FAILURE;
    static int tag;
    gpr_timespec until =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(t->connect_timeout_ms, GPR_TIMESPAN));
    for (;;) {
        grpc_channel_watch_connectivity_state(ch, st, until, t->cq, &tag);
        grpc_event ev = grpc_completion_queue_pluck(t->cq, &tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (!ev.success) return GRPC_CHANNEL_CONNECTING; /* the deadline came first */
        st = grpc_channel_check_connectivity_state(ch, 1);
        if (settled(st)) return st;
    }
}

/* True when the channel is READY, or failed outright: the call then fails
 * at once and carries gRPC's reason. False when it was still trying at the
 * deadline. */
static bool connected_in_time(transport *t, conn *c) { return settle(t, c) != GRPC_CHANNEL_CONNECTING; }

/* Drops a channel that did not connect, so the next attempt dials afresh
 * instead of waiting out gRPC's reconnect back-off. */
static void close_conn(conn *c) {
    if (c->ch) rpc_channel_free(c->ch);
    c->ch = NULL;
    c->n_methods = 0;
}

static void prefer(transport *t, size_t i);

bool transport_reach(transport *t, char *why, size_t n) {
    snprintf(why, n, "%s", t->n ? "" : "no servers to try");
    for (size_t i = 0; i < t->n; i++) {
        conn *c = &t->conns[i];
        if (!c->ch && !(c->ch = rpc_channel_new(c->ep.target, t->use_tls ? &t->tls : NULL))) continue;
        grpc_connectivity_state st = settle(t, c);
        if (st == GRPC_CHANNEL_READY) {
            prefer(t, i);
            return true;
        }
        size_t used = strlen(why);
        if (used + 1 < n)
            snprintf(why + used, n - used, "%s%s: %s", used ? "; " : "", c->ep.name,
                     st == GRPC_CHANNEL_CONNECTING ? "no connection in time" : "connection failed");
        close_conn(c);
    }
    return false;
}

/* CANCELLED too: a call that crosses a draining server's GOAWAY is
 * dropped by gRPC core before the server saw it, and comes back CANCELLED. */
static bool try_next(grpc_status_code s) {
    return s == GRPC_STATUS_UNAVAILABLE || s == GRPC_STATUS_DEADLINE_EXCEEDED || s == GRPC_STATUS_CANCELLED;
}

/* Moves the server that answered to the front, so the next call (the
 * daemon's next renewal) goes straight to it. */
static void prefer(transport *t, size_t i) {
    if (i == 0) return;
    conn c = t->conns[i];
    memmove(&t->conns[1], &t->conns[0], i * sizeof c);
    t->conns[0] = c;
}

/* Appends "name: message" to the summary of servers that did not answer. */
static void note_failure(char *sum, size_t n, const char *name, const char *msg) {
    size_t used = strlen(sum);
    if (used + 1 >= n) return;
    snprintf(sum + used, n - used, "%s%s: %s", used ? "; " : "", name, msg[0] ? msg : "unavailable");
}

grpc_status_code transport_call(transport *t, const char *path, const ProtobufCMessage *msg, rpc_result *out,
                                const char **answered) {
    char summary[sizeof out->message] = "";
    memset(out, 0, sizeof *out);
    *answered = "";
    out->status = GRPC_STATUS_UNAVAILABLE;
    for (size_t i = 0; i < t->n; i++) {
        conn *c = &t->conns[i];
        rpc_client_method *m = method_on(t, c, path);
        if (!m) {
            note_failure(summary, sizeof summary, c->ep.name, "cannot open a channel");
            continue;
        }
        rpc_result_clear(out);
        t->called = true;
        if (!connected_in_time(t, c)) {
            char why[64];
            snprintf(why, sizeof why, "no connection within %d ms", t->connect_timeout_ms);
            note_failure(summary, sizeof summary, c->ep.name, why);
            continue;
        }
        rpc_call_message(c->ch, m, msg, t->timeout_ms, out);
        if (!try_next(out->status)) {
            prefer(t, i);
            *answered = t->conns[0].ep.name;
            return out->status;
        }
        note_failure(summary, sizeof summary, c->ep.name, out->message);
    }
    rpc_result_clear(out);
    out->status = GRPC_STATUS_UNAVAILABLE;
    snprintf(out->message, sizeof out->message, "%s", t->n ? summary : "no servers to try");
    return out->status;
}
