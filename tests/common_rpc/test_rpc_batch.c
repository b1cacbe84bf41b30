/* test_rpc_batch.c -- natural batching in the rpc_server runtime
 * (docs/batching.md): calls already waiting on a worker's queue reach a
 * method's batch handler together, each call keeps its own answer, size
 * limit and metrics, and a lone call is a batch of one.
 *
 * The service has one method, /test.v1.Batch/Tag, whose batch handler
 * answers each call with "<request>|<batch size>" after a short pause (the
 * pause is what lets concurrent calls pile up behind a running batch); a
 * request starting with "single:" leaves the batch through the single
 * handler, which answers "<request>|single"; "defer:" is answered from
 * another thread (rpc_ctx_defer). One worker, so every call meets the
 * others on the same queue. */
#include "metrics.h"
#include "rpc_client.h"
#include "rpc_server.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TAG_PATH "/test.v1.Batch/Tag"
#define TAG_LIMIT 64

static void pause_ms(long ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void answer(rpc_reply *reply, const uint8_t *req, size_t len, const char *tail) {
    char buf[TAG_LIMIT + 32];
    int n = snprintf(buf, sizeof buf, "%.*s|%s", (int)len, (const char *)req, tail);
    rpc_reply_bytes(reply, buf, (size_t)n);
}

static void tag_single(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    (void)ctx;
    answer(reply, req, len, "single");
}

typedef struct deferred_job {
    rpc_deferred *d;
    char text[TAG_LIMIT + 1];
} deferred_job;

static void *answer_later(void *p) {
    deferred_job *j = p;
    pause_ms(2);
    rpc_reply r = {.status = GRPC_STATUS_OK};
    answer(&r, (const uint8_t *)j->text, strlen(j->text), "deferred");
    rpc_deferred_reply(j->d, &r);
    free(r.body);
    free(j);
    return NULL;
}

static bool starts(const rpc_batch_call *c, const char *prefix) {
    size_t n = strlen(prefix);
    return c->req_len >= n && memcmp(c->req, prefix, n) == 0;
}

static void defer_call(rpc_batch_call *c) {
    deferred_job *j = calloc(1, sizeof *j);
    pthread_t t;
    assert_non_null(j);
    snprintf(j->text, sizeof j->text, "%.*s", (int)c->req_len, (const char *)c->req);
    assert_non_null(j->d = rpc_ctx_defer(c->ctx));
    assert_int_equal(pthread_create(&t, NULL, answer_later, j), 0);
    pthread_detach(t);
}

static void tag_batch(rpc_batch_call *calls, size_t n) {
    pause_ms(3);
    char size[16];
    snprintf(size, sizeof size, "%zu", n);
    for (size_t i = 0; i < n; i++) {
        rpc_batch_call *c = &calls[i];
        if (starts(c, "single:")) tag_single(c->ctx, c->req, c->req_len, c->reply);
        else if (starts(c, "defer:")) defer_call(c);
        else answer(c->reply, c->req, c->req_len, size);
    }
}

static const rpc_method methods[] = {
    {.path = TAG_PATH, .handler = tag_single, .max_request_bytes = TAG_LIMIT, .batch_handler = tag_batch},
};

static rpc_server *start(int batch_max) {
    const char *listen[] = {"127.0.0.1:0"};
    rpc_server_config cfg = {.listen = listen, .n_listen = 1, .workers = 1, .limits = {.batch_max = batch_max}};
    char err[256];
    rpc_server *s = rpc_server_start(&cfg, methods, 1, err, sizeof err);
    if (!s) fail_msg("rpc_server_start: %s", err);
    return s;
}

typedef struct caller_arg {
    int port; /* the server's */
    int id;
    int calls;
    int ok;                /* answers that were exactly this call's */
    int max_batch;         /* the largest batch size an answer reported */
    int deferred, singles; /* answers of those kinds */
    int too_big;           /* oversized requests refused on their own */
} caller_arg;

/* What the call `i` of a thread sends: mostly plain, some leave the batch,
 * some are deferred, some are too big. */
static int request_of(const caller_arg *a, int i, char *msg, size_t cap) {
    const char *kind = i % 7 == 3 ? "single:" : i % 11 == 5 ? "defer:" : "";
    if (i % 13 == 7) {
        memset(msg, 'x', cap - 1);
        return (int)cap - 1; /* above TAG_LIMIT */
    }
    return snprintf(msg, cap, "%st%d-c%d", kind, a->id, i);
}

static void check_answer(caller_arg *a, const char *msg, int n, const rpc_result *r) {
    if (r->body_len <= (size_t)n + 1 || memcmp(r->body, msg, (size_t)n) != 0 || r->body[n] != '|') return;
    const char *tail = (const char *)r->body + n + 1;
    size_t tl = r->body_len - (size_t)n - 1;
    if (tl == 6 && memcmp(tail, "single", 6) == 0) {
        a->singles += strncmp(msg, "single:", 7) == 0;
        a->ok += strncmp(msg, "single:", 7) == 0;
    } else if (tl == 8 && memcmp(tail, "deferred", 8) == 0) {
        a->deferred += strncmp(msg, "defer:", 6) == 0;
        a->ok += strncmp(msg, "defer:", 6) == 0;
    } else {
        char digits[16]; /* the body is not NUL-terminated */
        if (tl >= sizeof digits) return;
        memcpy(digits, tail, tl);
        digits[tl] = '\0';
        int size = atoi(digits);
        if (size > a->max_batch) a->max_batch = size;
        a->ok += size >= 1;
    }
}

/* One of the 32 channels this process opens at once to itself now and then
 * fails its first connect (gRPC reports errno ENOENT from its connect
 * path), and its calls then fail fast with UNAVAILABLE for gRPC's 1 s
 * reconnect backoff. This test is about batching, not connecting: such a
 * call is sent again, for at most about 5 s. */
static grpc_status_code call_connected(rpc_channel *ch, rpc_client_method *m, const char *msg, int n, rpc_result *r) {
    grpc_status_code code = rpc_call(ch, m, (const uint8_t *)msg, (size_t)n, 10000, r);
    for (int tries = 0; code == GRPC_STATUS_UNAVAILABLE && tries < 20; tries++) {
        rpc_result_clear(r);
        pause_ms(250);
        code = rpc_call(ch, m, (const uint8_t *)msg, (size_t)n, 10000, r);
    }
    return code;
}

static void *caller(void *p) {
    caller_arg *a = p;
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", a->port);
    rpc_channel *ch = rpc_channel_new(target, NULL); /* a connection each: the calls really are concurrent */
    rpc_client_method *m = ch ? rpc_channel_method(ch, TAG_PATH) : NULL;
    for (int i = 0; m && i < a->calls; i++) {
        char msg[TAG_LIMIT + 8];
        int n = request_of(a, i, msg, sizeof msg);
        rpc_result r;
        grpc_status_code code = call_connected(ch, m, msg, n, &r);
        if (n > TAG_LIMIT) {
            a->too_big += code == GRPC_STATUS_RESOURCE_EXHAUSTED;
            a->ok += code == GRPC_STATUS_RESOURCE_EXHAUSTED;
        } else if (code == GRPC_STATUS_OK) {
            check_answer(a, msg, n, &r);
        }
        rpc_result_clear(&r);
    }
    rpc_channel_free(ch);
    rpc_client_thread_done();
    return NULL;
}

static void run_callers(int port, caller_arg *a, int threads, int calls) {
    pthread_t t[64];
    for (int i = 0; i < threads; i++) {
        a[i] = (caller_arg){.port = port, .id = i, .calls = calls};
        assert_int_equal(pthread_create(&t[i], NULL, caller, &a[i]), 0);
    }
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
}

/* The histogram's count of batches of exactly one: its le="1" bucket. */
static long batches_of_one(void) {
    char *text = metrics_render();
    assert_non_null(text);
    const char *key = "pa_batch_calls_bucket{method=\"test.v1.Batch/Tag\",le=\"1\"} ";
    const char *at = strstr(text, key);
    long n = at ? atol(at + strlen(key)) : -1;
    free(text);
    return n;
}

static void test_concurrent_calls_share_batches(void **state) {
    (void)state;
    enum { THREADS = 32, CALLS = 40 };
    rpc_server *s = start(0); /* the default bound */
    caller_arg a[THREADS];
    run_callers(rpc_server_port(s, 0), a, THREADS, CALLS);
    int max_batch = 0, singles = 0, deferred = 0, too_big = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(a[i].ok, CALLS); /* every call got its own answer */
        if (a[i].max_batch > max_batch) max_batch = a[i].max_batch;
        singles += a[i].singles;
        deferred += a[i].deferred;
        too_big += a[i].too_big;
    }
    assert_true(max_batch > 1);
    assert_true(max_batch <= RPC_DEFAULT_BATCH_MAX);
    assert_true(singles > 0 && deferred > 0 && too_big > 0);
    char *text = metrics_render();
    assert_non_null(strstr(text, "# TYPE pa_batch_calls histogram"));
    assert_non_null(strstr(text, "pa_grpc_calls_total{method=\"test.v1.Batch/Tag\",code=\"RESOURCE_EXHAUSTED\"} "));
    free(text);
    assert_int_equal(rpc_server_shutdown(s, 5000), 0);
}

static void test_lone_calls_are_batches_of_one(void **state) {
    (void)state;
    rpc_server *s = start(0);
    caller_arg a[1];
    long before = batches_of_one();
    run_callers(rpc_server_port(s, 0), a, 1, 20);
    assert_int_equal(a[0].ok, 20);
    assert_int_equal(a[0].max_batch, 1);
    /* the plain calls among the 20 (the rest left the batch or were too big)
     * each ran as a batch of one; deferred and single ones are in a batch too */
    assert_true(batches_of_one() - (before < 0 ? 0 : before) >= 14);
    assert_int_equal(rpc_server_shutdown(s, 5000), 0);
}

static void test_batch_max_one_disables_batching(void **state) {
    (void)state;
    enum { THREADS = 8, CALLS = 20 };
    rpc_server *s = start(1);
    caller_arg a[THREADS];
    run_callers(rpc_server_port(s, 0), a, THREADS, CALLS);
    for (int i = 0; i < THREADS; i++) {
        /* no batch handler ever runs: plain calls get the single handler's answer */
        assert_int_equal(a[i].max_batch, 0);
    }
    assert_int_equal(rpc_server_shutdown(s, 5000), 0);
}

static void test_drain_answers_batched_calls(void **state) {
    (void)state;
    enum { THREADS = 16, CALLS = 10 };
    rpc_server *s = start(0);
    caller_arg a[THREADS];
    run_callers(rpc_server_port(s, 0), a, THREADS, CALLS);
    /* nothing left in flight: a drain cancels nothing */
    assert_int_equal(rpc_server_shutdown(s, 5000), 0);
    for (int i = 0; i < THREADS; i++) assert_int_equal(a[i].ok, CALLS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_calls_share_batches),
        cmocka_unit_test(test_lone_calls_are_batches_of_one),
        cmocka_unit_test(test_batch_max_one_disables_batching),
        cmocka_unit_test(test_drain_answers_batched_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
