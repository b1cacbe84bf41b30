/* api_stub.c -- the http_api.h functions over a captured answer (api_stub.h). */
#include "api_stub.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct stub_conn {
    api_result *out;   /* where the answer goes */
    const char *query; /* the query string */
} stub_conn;

static api_result *result_of(const http_request *rq) { return ((stub_conn *)rq->conn)->out; }

const char *http_query(const http_request *rq, const char *name) {
    static _Thread_local char values[8][512]; /* a handler may hold several values at once */
    static _Thread_local unsigned next;
    char *value = values[next++ % 8];
    const char *q = ((stub_conn *)rq->conn)->query;
    size_t n = strlen(name);
    for (const char *p = q; p && *p;) {
        const char *end = strchr(p, '&'), *eq = strchr(p, '=');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (eq && eq < p + len && (size_t)(eq - p) == n && strncmp(p, name, n) == 0) {
            snprintf(value, sizeof values[0], "%.*s", (int)(len - n - 1), eq + 1);
            return value;
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

bool http_query_only(const http_request *rq, const char *const *allowed) {
    const char *q = ((stub_conn *)rq->conn)->query;
    for (const char *p = q; p && *p;) {
        const char *end = strchr(p, '&'), *eq = strchr(p, '=');
        size_t len = eq && (!end || eq < end) ? (size_t)(eq - p) : end ? (size_t)(end - p) : strlen(p);
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++) known = strlen(*a) == len && strncmp(*a, p, len) == 0;
        if (!known) {
            http_reply_error(rq, 400, "query parameter \"%.*s\": unknown", (int)len, p);
            return false;
        }
        p = end ? end + 1 : NULL;
    }
    return true;
}

json_t *http_body_json(const http_request *rq, const char *const *allowed) {
    json_error_t e;
    json_t *j = rq->body ? json_loadb(rq->body, rq->body_len, 0, &e) : NULL;
    if (!j) {
        http_reply_error(rq, 400, "body: malformed JSON");
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        http_reply_error(rq, 400, "body: expected a JSON object");
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++) known = strcmp(*a, k) == 0;
        if (!known) {
            http_reply_error(rq, 400, "field \"%s\": unknown", k);
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

void http_reply_json(const http_request *rq, int status, json_t *body) {
    api_result *a = result_of(rq);
    a->answers++;
    a->status = status;
    json_decref(a->body);
    a->body = body;
}

void http_reply_error(const http_request *rq, int status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_reply_json(rq, status, json_pack("{s:{s:i, s:s}}", "error", "status", status, "message", msg));
}

void http_reply_rate_limited(const http_request *rq, int retry_after_s) {
    http_reply_error(rq, 429, "retry after %d s", retry_after_s);
}

void http_reply_stream(const http_request *rq, const char *content_type, const char *filename, http_stream_fn next,
                       void (*done)(void *state), void *state) {
    http_reply_error(rq, 500, "streams are not captured by the stub");
    if (done) done(state);
}

void http_trail(const http_request *rq, const char *action, const char *target, const char *result) {
    api_result *a = result_of(rq);
    a->trails++;
    snprintf(a->trail, sizeof a->trail, "%s %s %s", action, target, result);
}

api_result api_call(http_handler h, rstore *r, const char *method, const char *const *params, const char *query,
                    const char *body, size_t body_len) {
    api_result out = {0};
    stub_conn conn = {&out, query};
    char *copy = NULL;
    if (body) {
        copy = malloc(body_len + 1);
        memcpy(copy, body, body_len);
        copy[body_len] = '\0';
    }
    http_request rq = {.method = method,
                       .path = "/api/v1/...",
                       .body = copy,
                       .body_len = body ? body_len : 0,
                       .content_type = body ? "application/octet-stream" : NULL, /* the stub's JSON reader ignores it */
                       .client_addr = "127.0.0.1",
                       .user = "tester",
                       .role = ROLE_OPERATOR,
                       .redis = r,
                       .conn = &conn};
    for (size_t i = 0; params && params[i] && i < 4; i++) rq.params[i] = params[i];
    h(&rq);
    free(copy);
    return out;
}

api_result api_call_json(http_handler h, rstore *r, const char *method, const char *const *params, const char *query,
                         const char *body) {
    return api_call(h, r, method, params, query, body, body ? strlen(body) : 0);
}

void api_result_clear(api_result *a) {
    json_decref(a->body);
    a->body = NULL;
}

const char *api_error(const api_result *a) {
    const char *m = json_string_value(json_object_get(json_object_get(a->body, "error"), "message"));
    return m ? m : "";
}
