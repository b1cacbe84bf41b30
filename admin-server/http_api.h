/* http_api.h -- what a route handler of the admin server sees: the request,
 * the caller, and the ways to answer (docs/admin.md, "HTTP conventions").
 *
 * The HTTP server (http_server.c, libmicrohttpd) reads the request, checks
 * the body size, the session, the route's least role and, for a change, the
 * CSRF token, before it calls the handler; so a handler only parses its own
 * input and does its work. Routes are one table (routes.c). Every handler
 * answers exactly once with one of the http_reply_* calls.
 *
 * Streaming: an export answers with http_reply_stream; the server pulls the
 * body from the producer as the client reads, so memory stays flat however
 * many rows there are. */
#ifndef PA_ADMIN_HTTP_API_H
#define PA_ADMIN_HTTP_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "redis_store.h"

typedef enum admin_role {
    ROLE_NONE = 0,     /* routes anyone may call (login, the API document) */
    ROLE_VIEWER = 1,   /* reads everything */
    ROLE_OPERATOR = 2, /* also changes orders, machines, revocations */
    ROLE_ADMIN = 3,    /* also users and webhooks */
} admin_role;

typedef struct admin_app admin_app; /* the server's shared state (admin_app.h) */

typedef struct http_request {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* the whole path, e.g. "/api/v1/orders/20261201" */
    const char *params[4];    /* the route's {placeholders}, in order */
    const char *body;         /* NUL-terminated copy of the body (NULL when none) */
    size_t body_len;          /* its length (a body may hold NUL bytes: order files) */
    const char *content_type; /* the body's Content-Type header, NULL when none */
    const char *client_addr;  /* the peer's address as text, for the trail and rate limits */
    const char *user;         /* the session's user, NULL when not logged in */
    admin_role role;          /* the session's role, ROLE_NONE when not logged in */
    rstore *redis;            /* this connection thread's Redis A connection (user admin) */
    admin_app *app;           /* options and shared parts */
    void *conn;               /* the server's own state; handlers pass it on only */
} http_request;

/* The value of query parameter `name`, or NULL. */
const char *http_query(const http_request *rq, const char *name);

/* Refuses (400, naming it) any query parameter not in the NULL-terminated
 * list `allowed`. Returns true when all are known; otherwise it has answered. */
bool http_query_only(const http_request *rq, const char *const *allowed);

/* Query parameter `name` as an integer in [min, max]; `dflt` when absent.
 * false after answering 400 (naming it). */
bool http_query_int(const http_request *rq, const char *name, long long min, long long max, long long dflt,
                    long long *out);

/* True when a Content-Type value names the media type `type` (case aside,
 * parameters such as "; charset=utf-8" allowed). */
bool http_type_is(const char *content_type, const char *type);

/* The body parsed as a JSON object whose keys are all in `allowed`
 * (NULL-terminated). NULL after answering 400 (malformed JSON, not an
 * object, an unknown field: the message names it) or 415. */
json_t *http_body_json(const http_request *rq, const char *const *allowed);

/* Answers `status` with the JSON value (takes the reference). */
void http_reply_json(const http_request *rq, int status, json_t *body);

/* Answers an error: {"error":{"code":CODE,"message":...}}; the code follows
 * from the status (docs/admin.md). */
__attribute__((format(printf, 3, 4))) void http_reply_error(const http_request *rq, int status, const char *fmt, ...);

/* Answers 429 with Retry-After. */
void http_reply_rate_limited(const http_request *rq, int retry_after_s);

/* Writes up to `max` bytes of the body into buf; returns how many, 0 at the
 * end, -1 on an error (the connection is then closed: the client sees a
 * truncated body, never a silently short one with a 200 trailer). */
typedef ssize_t (*http_stream_fn)(void *state, char *buf, size_t max);

/* Answers 200 with a body produced by `next`; `done` frees the state when
 * the response ends (also when the client went away). `filename` sets
 * Content-Disposition: attachment. */
void http_reply_stream(const http_request *rq, const char *content_type, const char *filename, http_stream_fn next,
                       void (*done)(void *state), void *state);

/* Records a change in the admin trail: the caller, its address, `action`
 * (e.g. "order.import"), `target` (e.g. "20261201") and `result` ("ok" or
 * the refusal's message). The server calls it itself for refusals before
 * the handler (role, CSRF); a handler calls it once for what it did. */
void http_trail(const http_request *rq, const char *action, const char *target, const char *result);

/* A route handler. */
typedef void (*http_handler)(const http_request *rq);

typedef struct http_route {
    const char *method;   /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *pattern;  /* "/api/v1/orders/{serial}": each {name} takes one path segment */
    admin_role least;     /* the least role that may call it */
    http_handler handler; /* what answers it */
    const char *summary;  /* one line for the OpenAPI document */
} http_route;

/* The route table (routes.c) and its length. */
extern const http_route admin_routes[];
extern const size_t admin_n_routes;

#endif
