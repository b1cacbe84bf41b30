/* http_server.c -- the admin server's HTTP(S) server on libmicrohttpd
 * (http_server.h, http_api.h).
 *
 * Design: libmicrohttpd runs a pool of --http-threads threads, each with
 * its own event loop; a connection stays on one thread, so a handler and
 * the stream it starts run on the thread that owns the connection. Each
 * thread opens its own Redis connection on first use (a thread-local
 * rstore, freed when the thread ends), so there are no locks between
 * requests. A request is served in three steps of the access callback:
 *   1. headers: a declared body over DROP_FACTOR x --max-body-bytes is
 *      answered 413 at once, before a byte of it is read;
 *   2. body: appended to a buffer; a body that is (or grows) past the
 *      limit is no longer kept: the rest is read and dropped, then 413;
 *   3. done: route, session, role, CSRF, handler (dispatch).
 * Handlers answer through http_reply_*, which only build the response;
 * the server adds the security headers and queues it once the handler
 * returns. */
#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "route_match.h"
#include "session.h"
#include "static_files.h"

#define STREAM_BLOCK (64 * 1024)
/* A declared body up to this many times --max-body-bytes is read (and
 * dropped) before the 413, so a client that sends it without waiting for
 * 100 Continue still reads the answer; a larger one is answered at once
 * and its connection closed, which such a client may see as a reset. */
#define DROP_FACTOR 8

struct http_server {
    struct MHD_Daemon *mhd; /* the libmicrohttpd daemon */
    const admin_app *app;   /* options, for every request */
    int port;               /* bound port */
    atomic_int in_flight;   /* requests between their first callback and completion, for the drain */
    bool tls;               /* HTTPS: adds Strict-Transport-Security */
};

/* One request's state, from its first callback to its completion. */
typedef struct conn {
    http_server *srv;            /* the server it belongs to */
    struct MHD_Connection *mhd;  /* libmicrohttpd's connection, for headers and queueing */
    char *body;                  /* the body so far, NUL-terminated */
    size_t len, cap;             /* its length and allocation */
    bool too_large;              /* the body passed --max-body-bytes: dropped, answered 413 */
    bool answered;               /* the reply is queued: later callbacks only drain the body */
    struct MHD_Response *resp;   /* the reply the handler built, queued after it returns */
    unsigned status;             /* its status */
    char *set_cookie;            /* a Set-Cookie header for the reply (session.c) */
    char addr[INET6_ADDRSTRLEN]; /* client address as text */
    char *segs;                  /* the route's param values, which rq.params point into */
    session_info sess;           /* the session, when rq.user is set */
    http_request rq;             /* what the handler sees */
} conn;

static pthread_key_t store_key;
static pthread_once_t store_once = PTHREAD_ONCE_INIT;
static void store_free(void *p) { rstore_free(p); }
static void store_key_make(void) { (void)pthread_key_create(&store_key, store_free); }

/* This thread's Redis connection, opened on first use; NULL when it cannot be made. */
static rstore *thread_store(const admin_app *app) {
    rstore *r = pthread_getspecific(store_key);
    if (r) return r;
    char err[256];
    r = admin_store_open(app, true, err, sizeof err);
    if (!r) {
        log_error("http.store", LOG_S("error", err), LOG_END);
        return NULL;
    }
    (void)pthread_setspecific(store_key, r);
    return r;
}

/* ---- answering --------------------------------------------------------- */

static const char *error_code(int status) {
    switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthenticated";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 409: return "conflict";
    case 413: return "payload_too_large";
    case 415: return "unsupported_media_type";
    case 429: return "rate_limited";
    case 503: return "unavailable";
    default: return status >= 500 ? "internal" : "bad_request";
    }
}

/* Takes `resp` as the reply, unless the handler has answered already (a bug:
 * logged, the first reply stands). */
static void set_reply(conn *c, unsigned status, struct MHD_Response *resp) {
    if (!resp) return;
    if (c->resp) {
        log_error("http.reply.twice", LOG_S("path", c->rq.path), LOG_END);
        MHD_destroy_response(resp);
        return;
    }
    c->resp = resp;
    c->status = status;
}

static void reply_text(conn *c, unsigned status, const char *type, char *text) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return;
    }
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    set_reply(c, status, r);
}

void http_reply_json(const http_request *rq, int status, json_t *body) {
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) text = strdup("{}");
    if (text) reply_text(rq->conn, (unsigned)status, "application/json", text);
}

__attribute__((format(printf, 3, 0))) static void vreply_error(conn *c, int status, const char *fmt, va_list ap) {
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    json_t *e = json_pack("{s:{s:s,s:s}}", "error", "code", error_code(status), "message", msg);
    http_reply_json(&c->rq, status, e);
}

void http_reply_error(const http_request *rq, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreply_error(rq->conn, status, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 3, 4))) static void conn_error(conn *c, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreply_error(c, status, fmt, ap);
    va_end(ap);
}

void http_reply_rate_limited(const http_request *rq, int retry_after_s) {
    conn *c = rq->conn;
    if (retry_after_s < 1) retry_after_s = 1;
    http_reply_error(rq, 429, "too many tries; wait %d s", retry_after_s);
    char v[16];
    snprintf(v, sizeof v, "%d", retry_after_s);
    if (c->resp && c->status == 429) (void)MHD_add_response_header(c->resp, "Retry-After", v);
}

/* A producer wrapped for libmicrohttpd's content reader. */
typedef struct stream {
    http_stream_fn next;  /* the handler's producer */
    void (*done)(void *); /* frees its state */
    void *state;          /* the producer's own */
} stream;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    stream *s = cls;
    ssize_t n = s->next(s->state, buf, max);
    if (n == 0) return MHD_CONTENT_READER_END_OF_STREAM;
    if (n < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    return n;
}

static void stream_free(void *cls) {
    stream *s = cls;
    if (s->done) s->done(s->state);
    free(s);
}

/* Keeps a download's name to letters, digits and ".-_" (it goes in a header). */
static void safe_filename(const char *in, char *out, size_t n) {
    size_t j = 0;
    for (; in && *in && j + 1 < n; in++) {
        char ch = *in;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                  ch == '-' || ch == '_';
        out[j++] = ok ? ch : '_';
    }
    out[j] = '\0';
}

void http_reply_stream(const http_request *rq, const char *content_type, const char *filename, http_stream_fn next,
                       void (*done)(void *state), void *state) {
    conn *c = rq->conn;
    stream *s = malloc(sizeof *s);
    struct MHD_Response *r =
        s ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, s, stream_free) : NULL;
    if (!r) {
        free(s);
        if (done) done(state);
        http_reply_error(rq, 500, "cannot start the download");
        return;
    }
    *s = (stream){next, done, state};
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (filename) {
        char safe[128], v[160];
        safe_filename(filename, safe, sizeof safe);
        snprintf(v, sizeof v, "attachment; filename=\"%s\"", safe);
        (void)MHD_add_response_header(r, "Content-Disposition", v);
    }
    set_reply(c, 200, r);
}

/* ---- reading ----------------------------------------------------------- */

const char *http_query(const http_request *rq, const char *name) {
    return MHD_lookup_connection_value(((conn *)rq->conn)->mhd, MHD_GET_ARGUMENT_KIND, name);
}

typedef struct query_check {
    const char *const *allowed; /* the known names */
    const char *unknown;        /* the first name not among them */
} query_check;

static enum MHD_Result query_one(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    query_check *q = cls;
    for (const char *const *a = q->allowed; a && *a; a++)
        if (strcmp(*a, key) == 0) return MHD_YES;
    q->unknown = key;
    return MHD_NO;
}

bool http_query_only(const http_request *rq, const char *const *allowed) {
    query_check q = {allowed, NULL};
    MHD_get_connection_values(((conn *)rq->conn)->mhd, MHD_GET_ARGUMENT_KIND, query_one, &q);
    if (!q.unknown) return true;
    http_reply_error(rq, 400, "query parameter \"%.64s\": unknown", q.unknown);
    return false;
}

const char *http_header(const http_request *rq, const char *name) {
    return MHD_lookup_connection_value(((conn *)rq->conn)->mhd, MHD_HEADER_KIND, name);
}

json_t *http_body_json(const http_request *rq, const char *const *allowed) {
    if (!rq->body || rq->body_len == 0) {
        http_reply_error(rq, 400, "a JSON object is required as the body");
        return NULL;
    }
    if (!http_type_is(http_header(rq, MHD_HTTP_HEADER_CONTENT_TYPE), "application/json")) {
        http_reply_error(rq, 415, "the body must be application/json");
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        http_reply_error(rq, 400, "malformed JSON at line %d, column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        http_reply_error(rq, 400, "the body must be a JSON object");
        return NULL;
    }
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        const char *const *a = allowed;
        while (a && *a && strcmp(*a, key) != 0) a++;
        if (a && *a) continue;
        http_reply_error(rq, 400, "field \"%.64s\": unknown", key);
        json_decref(v);
        return NULL;
    }
    return v;
}

void http_set_cookie(const http_request *rq, const char *cookie) {
    conn *c = rq->conn;
    free(c->set_cookie);
    c->set_cookie = strdup(cookie);
}

const char *http_session_csrf(const http_request *rq) {
    const conn *c = rq->conn;
    return rq->user ? c->sess.csrf : NULL;
}

const char *http_session_key(const http_request *rq) {
    const conn *c = rq->conn;
    return rq->user ? c->sess.key : NULL;
}

/* ---- one request --------------------------------------------------------- */

static bool is_change(const char *method) { return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0; }

static bool csrf_ok(const conn *c) {
    const char *sent = MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, "X-CSRF-Token");
    size_t n = strlen(c->sess.csrf);
    return sent && n > 0 && strlen(sent) == n && CRYPTO_memcmp(sent, c->sess.csrf, n) == 0;
}

static void serve_static(conn *c) {
    const char *dir = c->srv->app->console_dir;
    if (!dir) {
        conn_error(c, 404, "no such path: %.200s", c->rq.path);
        return;
    }
    if (strcmp(c->rq.method, "GET") != 0 && strcmp(c->rq.method, "HEAD") != 0) {
        conn_error(c, 405, "method %s not allowed (allowed: GET, HEAD)", c->rq.method);
        if (c->resp) (void)MHD_add_response_header(c->resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        return;
    }
    static_file f;
    int rc = static_open(dir, c->rq.path, &f);
    if (rc == 400) conn_error(c, 400, "path: \"..\" segments, backslashes and control characters are refused");
    if (rc == 404) conn_error(c, 404, "no such file: %.200s", c->rq.path);
    if (rc != 200) return;
    struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)f.size, f.fd);
    if (!r) {
        close(f.fd);
        return;
    }
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, f.content_type);
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, f.is_index ? "no-cache" : "max-age=3600");
    set_reply(c, 200, r);
}

/* The session of the request's cookie, if any. false after answering 503. */
static bool load_session(conn *c) {
    http_request *rq = &c->rq;
    const char *cookie = MHD_lookup_connection_value(c->mhd, MHD_COOKIE_KIND, SESSION_COOKIE);
    if (!cookie) return true;
    int found = rq->redis ? session_lookup(rq->redis, c->srv->app, cookie, &c->sess) : -1;
    if (found < 0) {
        conn_error(c, 503, "the store is unavailable: %s", rq->redis ? rstore_error(rq->redis) : "no connection");
        return false;
    }
    if (found) {
        rq->user = c->sess.user;
        rq->role = c->sess.role;
        session_refresh_cookie(rq, cookie);
    }
    return true;
}

/* Session, least role and CSRF token; false after answering (refusals of
 * role and token are trailed). */
static bool admit(conn *c, const http_route *rt) {
    http_request *rq = &c->rq;
    if (!load_session(c)) return false;
    if (rt->least == ROLE_NONE) return true;
    if (!rq->redis) {
        conn_error(c, 503, "the store is unavailable");
        return false;
    }
    if (!rq->user) {
        conn_error(c, 401, "log in first (POST /api/v1/session)");
        return false;
    }
    char action[160];
    snprintf(action, sizeof action, "%s %s", rt->method, rt->pattern);
    if (rq->role < rt->least) {
        char why[64];
        snprintf(why, sizeof why, "forbidden: needs role %s", user_role_name(rt->least));
        http_trail(rq, action, rq->path, why);
        conn_error(c, 403, "this needs role %s; you are %s", user_role_name(rt->least), user_role_name(rq->role));
        return false;
    }
    if (is_change(rq->method) && !csrf_ok(c)) {
        http_trail(rq, action, rq->path, "forbidden: CSRF token missing or wrong");
        conn_error(c, 403, "header X-CSRF-Token: missing or not this session's token");
        return false;
    }
    return true;
}

static void dispatch(conn *c) {
    http_request *rq = &c->rq;
    if (c->too_large) {
        conn_error(c, 413, "the body is over %zu bytes", c->srv->app->max_body_bytes);
        return;
    }
    if (strncmp(rq->path, "/api/", 5) != 0) {
        serve_static(c);
        return;
    }
    char allow[64];
    const http_route *rt =
        route_find(admin_routes, admin_n_routes, rq->method, rq->path, c->segs, c->rq.params, allow, sizeof allow);
    if (!rt && allow[0]) {
        conn_error(c, 405, "method %s not allowed on %.200s (allowed: %s)", rq->method, rq->path, allow);
        if (c->resp) (void)MHD_add_response_header(c->resp, MHD_HTTP_HEADER_ALLOW, allow);
        return;
    }
    if (!rt) {
        conn_error(c, 404, "no such route: %.200s", rq->path);
        return;
    }
    rq->redis = thread_store(c->srv->app);
    if (!admit(c, rt)) return;
    rt->handler(rq);
    if (!c->resp) conn_error(c, 500, "the handler gave no answer");
}

static void add_security_headers(const conn *c, struct MHD_Response *r) {
    (void)MHD_add_response_header(r, "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'");
    (void)MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    (void)MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    (void)MHD_add_response_header(r, "X-Frame-Options", "DENY");
    if (c->srv->tls) (void)MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
    if (strncmp(c->rq.path, "/api/", 5) == 0)
        (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
}

static void count(unsigned status) {
    char labels[32];
    snprintf(labels, sizeof labels, "status=\"%u\"", status);
    metric_inc(metric_counter("pa_admin_http_requests_total", "HTTP requests answered, by status", labels));
}

/* Queues the reply (a 500 if there is none). */
static enum MHD_Result finish(conn *c) {
    if (!c->resp) conn_error(c, 500, "internal error");
    if (!c->resp) return MHD_NO;
    add_security_headers(c, c->resp);
    if (c->set_cookie) (void)MHD_add_response_header(c->resp, MHD_HTTP_HEADER_SET_COOKIE, c->set_cookie);
    enum MHD_Result rc = MHD_queue_response(c->mhd, c->status, c->resp);
    MHD_destroy_response(c->resp);
    c->resp = NULL;
    c->answered = true;
    count(c->status);
    log_info("http.request", LOG_S("method", c->rq.method), LOG_S("path", c->rq.path), LOG_I("status", c->status),
             LOG_S("user", c->rq.user ? c->rq.user : ""), LOG_S("addr", c->addr), LOG_END);
    c->status = 0;
    return rc;
}

static bool body_append(conn *c, const char *data, size_t n) {
    size_t max = c->srv->app->max_body_bytes;
    if (c->too_large || c->len + n > max) {
        c->too_large = true;
        free(c->body);
        c->body = NULL;
        c->len = c->cap = 0;
        return true;
    }
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n + 1) cap *= 2;
        if (cap > max + 1) cap = max + 1;
        char *b = realloc(c->body, cap);
        if (!b) return false;
        c->body = b;
        c->cap = cap;
    }
    memcpy(c->body + c->len, data, n);
    c->len += n;
    c->body[c->len] = '\0';
    return true;
}

static void client_address(struct MHD_Connection *mc, char *out, size_t n) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, n, "?");
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
    if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
}

/* The first callback of a request: its state, and 413 for a declared body over the limit. */
static enum MHD_Result begin(http_server *srv, struct MHD_Connection *mc, const char *url, const char *method,
                             void **con_cls) {
    conn *c = calloc(1, sizeof *c);
    if (!c) return MHD_NO;
    *con_cls = c;
    atomic_fetch_add(&srv->in_flight, 1);
    c->srv = srv;
    c->mhd = mc;
    client_address(mc, c->addr, sizeof c->addr);
    c->rq =
        (http_request){.method = method, .path = url, .client_addr = c->addr, .app = (admin_app *)srv->app, .conn = c};
    if (!(c->segs = malloc(strlen(url) + 1))) return MHD_NO;
    const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
    if (declared <= srv->app->max_body_bytes) return MHD_YES;
    c->too_large = true; /* not kept: read and dropped, answered at its end */
    if (declared / DROP_FACTOR <= srv->app->max_body_bytes) return MHD_YES;
    dispatch(c); /* far too large to read: answered now, the connection then closes */
    return finish(c);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    conn *c = *con_cls;
    if (!c) return begin(cls, mc, url, method, con_cls);
    if (*upload_data_size) {
        bool ok = body_append(c, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return ok ? MHD_YES : MHD_NO;
    }
    if (c->answered) return MHD_YES; /* 413 went out at the headers */
    c->rq.body = c->body;
    c->rq.body_len = c->len;
    c->rq.content_type = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    dispatch(c);
    return finish(c);
}

static void on_done(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode toe) {
    http_server *srv = cls;
    conn *c = *con_cls;
    if (!c) return;
    if (c->resp) MHD_destroy_response(c->resp);
    free(c->body);
    free(c->segs);
    free(c->set_cookie);
    OPENSSL_cleanse(&c->sess, sizeof c->sess);
    free(c);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->in_flight, 1);
}

/* ---- the server ------------------------------------------------------------ */

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap) {
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = '\0';
    log_warn("http.server", LOG_S("error", msg), LOG_END);
}

/* "127.0.0.1:8443" or "[::1]:8443" into a socket address. */
static bool parse_listen(const char *listen, struct sockaddr_storage *ss, bool *v6) {
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host) return false;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 0 || port > 65535) return false;
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    size_t hl = strlen(host);
    *v6 = host[0] == '[' && host[hl - 1] == ']';
    if (*v6) {
        host[hl - 1] = '\0';
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        return inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1;
    }
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &a4->sin_addr) == 1;
}

http_server *http_server_start(const admin_app *app, const char *listen, const char *cert_pem, const char *key_pem,
                               char *err, size_t errlen) {
    struct sockaddr_storage ss;
    bool v6;
    if (!parse_listen(listen, &ss, &v6)) {
        snprintf(err, errlen, "--listen %s: expected IPv4:port or [IPv6]:port", listen);
        return NULL;
    }
    (void)pthread_once(&store_once, store_key_make);
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->app = app;
    s->tls = cert_pem && key_pem;
    /* poll(2), not epoll: with a thread pool, MHD_quiesce_daemon (the
     * drain) and the workers both take the listening socket out of their
     * epoll sets, and the loser of that race aborts (libmicrohttpd
     * 0.9.75). The admin server has few connections; poll costs nothing. */
    unsigned flags = MHD_USE_POLL | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | (v6 ? MHD_USE_IPv6 : 0) |
                     (s->tls ? MHD_USE_TLS : 0);
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &ss},
        {MHD_OPTION_THREAD_POOL_SIZE, app->http_threads, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, 1024, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_done, s},
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL},
        /* Plain HTTP ends the list here. */
        {s->tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, (void *)key_pem},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert_pem},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
        {MHD_OPTION_END, 0, NULL},
    };
    s->mhd = MHD_start_daemon(flags | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, opts,
                              MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, errlen, "cannot serve on %s (address in use, or a bad certificate or key)", listen);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    return s;
}

int http_server_port(const http_server *s) { return s->port; }

int http_server_stop(http_server *s, int drain_ms) {
    if (!s) return 0;
    MHD_socket fd = MHD_quiesce_daemon(s->mhd);
    int64_t end = pa_mono_ms() + drain_ms;
    while (atomic_load(&s->in_flight) > 0 && pa_mono_ms() < end) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int left = atomic_load(&s->in_flight);
    MHD_stop_daemon(s->mhd);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    free(s);
    return left;
}
