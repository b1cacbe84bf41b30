/* test_rpc_hold.c -- the refusal hold of the rpc_server runtime
 * (rpc_server_config.refusal_hold_ms): a reply its handler marks `hold`
 * goes out no sooner than the hold after the call arrived; other calls are
 * not kept waiting behind it; a client deadline nearer than the hold, a
 * full hold queue and a shutdown each send it at once, never drop it.
 *
 * The service has one method, /test.v1.Hold/Call, batched like Activate:
 * a request starting with "refuse" is answered PERMISSION_DENIED and
 * marked to be held, anything else OK with the request echoed. One worker,
 * so every call meets the held ones on the same queue. The hold times are
 * far above what a loaded machine adds to a loopback call, and the checks
 * compare against fractions of them. */
#include "clock.h"
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

#define HOLD_PATH "/test.v1.Hold/Call"

static void answer(const uint8_t *req, size_t len, rpc_reply *reply) {
    if (len >= 6 && memcmp(req, "refuse", 6) == 0) {
        rpc_reply_error(reply, GRPC_STATUS_PERMISSION_DENIED, "refused: %.*s", (int)len, (const char *)req);
        reply->hold = true;
    } else {
        rpc_reply_bytes(reply, req, len);
    }
}

static void call_single(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    (void)ctx;
    answer(req, len, reply);
}

static void call_batch(rpc_batch_call *calls, size_t n) {
    for (size_t i = 0; i < n; i++) answer(calls[i].req, calls[i].req_len, calls[i].reply);
}

static const rpc_method methods[] = {
    {.path = HOLD_PATH, .handler = call_single, .max_request_bytes = 64, .batch_handler = call_batch},
};

static rpc_server *start(int hold_ms, int hold_max) {
    const char *listen[] = {"127.0.0.1:0"};
    rpc_server_config cfg = {
        .listen = listen, .n_listen = 1, .workers = 1, .refusal_hold_ms = hold_ms, .refusal_hold_max = hold_max};
    char err[256];
    rpc_server *s = rpc_server_start(&cfg, methods, 1, err, sizeof err);
    if (!s) fail_msg("rpc_server_start: %s", err);
    return s;
}

static int64_t holds(const char *result) {
    char labels[64];
    snprintf(labels, sizeof labels, "result=\"%s\"", result);
    return metric_value(metric_counter("pa_grpc_refusal_holds_total", "", labels));
}

/* One call on its own connection; its status and milliseconds taken. */
typedef struct one_call {
    int port;
    const char *msg;
    int deadline_ms;
    grpc_status_code code;
    char details[256];
    int64_t took_ms;
} one_call;

static void *make_call(void *p) {
    one_call *c = p;
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", c->port);
    rpc_channel *ch = rpc_channel_new(target, NULL);
    rpc_client_method *m = ch ? rpc_channel_method(ch, HOLD_PATH) : NULL;
    c->code = GRPC_STATUS_UNKNOWN;
    if (m) {
        rpc_result r;
        int64_t t0 = pa_mono_ms();
        c->code = rpc_call(ch, m, (const uint8_t *)c->msg, strlen(c->msg), c->deadline_ms, &r);
        c->took_ms = pa_mono_ms() - t0;
        snprintf(c->details, sizeof c->details, "%s", r.message);
        rpc_result_clear(&r);
    }
    rpc_channel_free(ch);
    rpc_client_thread_done();
    return NULL;
}

/* One refused call made now, which must be refused. */
static one_call refused_now(rpc_server *s, const char *msg, int deadline_ms) {
    one_call c = {.port = rpc_server_port(s, 0), .msg = msg, .deadline_ms = deadline_ms};
    make_call(&c);
    assert_int_equal(c.code, GRPC_STATUS_PERMISSION_DENIED);
    return c;
}

/* `n` refused calls, each on a thread of its own. */
static void refusals_start(pthread_t *t, one_call *c, int n, rpc_server *s, int deadline_ms) {
    for (int i = 0; i < n; i++) {
        c[i] = (one_call){.port = rpc_server_port(s, 0), .msg = "refuse-n", .deadline_ms = deadline_ms};
        assert_int_equal(pthread_create(&t[i], NULL, make_call, &c[i]), 0);
    }
}

static void calls_join(pthread_t *t, int n) {
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
}

/* Waits up to 10 s for the worker to hold `n` more replies than `before`. */
static void wait_held(int64_t before, int n) {
    for (int i = 0; i < 1000 && holds("held") - before < n; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_true(holds("held") - before >= n);
}

static void test_refusal_waits_out_the_hold(void **state) {
    (void)state;
    rpc_server *s = start(400, 0);
    int64_t held = holds("held");
    one_call c = refused_now(s, "refuse-1", 10000);
    assert_string_equal(c.details, "refused: refuse-1"); /* the reply itself is unchanged */
    assert_true(c.took_ms >= 390);
    assert_int_equal(holds("held") - held, 1);
    one_call ok = {.port = c.port, .msg = "hello", .deadline_ms = 10000};
    make_call(&ok);
    assert_int_equal(ok.code, GRPC_STATUS_OK);
    assert_int_equal(holds("held") - held, 1); /* only what the handler marked */
    assert_int_equal(rpc_server_shutdown(s, 5000), 0);
}

static void test_no_hold_when_off(void **state) {
    (void)state;
    rpc_server *s = start(0, 0);
    int64_t held = holds("held");
    refused_now(s, "refuse-2", 10000);
    assert_int_equal(holds("held"), held);
    assert_int_equal(rpc_server_shutdown(s, 5000), 0);
}

/* Eight refusals held for 3 s on the one worker; meanwhile other calls
 * on the same worker are answered as usual. */
static void test_other_calls_pass_held_ones(void **state) {
    (void)state;
    enum { REFUSED = 8, OK_CALLS = 20 };
    rpc_server *s = start(3000, 0);
    int64_t held = holds("held");
    pthread_t t[REFUSED];
    one_call r[REFUSED];
    refusals_start(t, r, REFUSED, s, 20000);
    wait_held(held, REFUSED);
    int64_t t0 = pa_mono_ms();
    for (int i = 0; i < OK_CALLS; i++) {
        one_call ok = {.port = rpc_server_port(s, 0), .msg = "pass", .deadline_ms = 10000};
        make_call(&ok);
        assert_int_equal(ok.code, GRPC_STATUS_OK);
    }
    assert_true(pa_mono_ms() - t0 < 1500); /* they did not wait for the held ones */
    calls_join(t, REFUSED);
    for (int i = 0; i < REFUSED; i++) {
        assert_int_equal(r[i].code, GRPC_STATUS_PERMISSION_DENIED);
        assert_true(r[i].took_ms >= 2990);
    }
    assert_int_equal(rpc_server_shutdown(s, 5000), 0);
}

/* A client that gives up sooner than the hold gets the refusal, not its deadline. */
static void test_near_deadline_sends_at_once(void **state) {
    (void)state;
    rpc_server *s = start(5000, 0);
    int64_t early = holds("deadline");
    one_call c = refused_now(s, "refuse-4", 1000);
    assert_true(c.took_ms < 1000);
    assert_int_equal(holds("deadline") - early, 1);
    assert_int_equal(rpc_server_shutdown(s, 5000), 0);
}

/* With room for two held replies, further refusals go at once. */
static void test_full_queue_sends_at_once(void **state) {
    (void)state;
    enum { CALLS = 6, ROOM = 2 };
    rpc_server *s = start(4000, ROOM);
    int64_t held = holds("held"), full = holds("full");
    pthread_t t[CALLS];
    one_call c[CALLS];
    refusals_start(t, c, ROOM, s, 20000);
    wait_held(held, ROOM);
    refusals_start(t + ROOM, c + ROOM, CALLS - ROOM, s, 20000);
    calls_join(t, CALLS);
    for (int i = 0; i < CALLS; i++) {
        assert_int_equal(c[i].code, GRPC_STATUS_PERMISSION_DENIED);
        if (i < ROOM) assert_true(c[i].took_ms >= 3990);
        else assert_true(c[i].took_ms < 2000);
    }
    assert_int_equal(holds("held") - held, ROOM);
    assert_int_equal(holds("full") - full, CALLS - ROOM);
    assert_int_equal(rpc_server_shutdown(s, 5000), 0);
}

/* A drain sends what is held at once: nothing is cancelled or lost. */
static void test_shutdown_sends_held_replies(void **state) {
    (void)state;
    enum { CALLS = 4 };
    rpc_server *s = start(8000, 0);
    int64_t held = holds("held");
    pthread_t t[CALLS];
    one_call c[CALLS];
    refusals_start(t, c, CALLS, s, 30000);
    wait_held(held, CALLS);
    int64_t t0 = pa_mono_ms();
    assert_int_equal(rpc_server_shutdown(s, 20000), 0);
    assert_true(pa_mono_ms() - t0 < 7000); /* not the hold's 8 s */
    calls_join(t, CALLS);
    for (int i = 0; i < CALLS; i++) assert_int_equal(c[i].code, GRPC_STATUS_PERMISSION_DENIED);
}

static void test_negative_hold_is_refused(void **state) {
    (void)state;
    const char *listen[] = {"127.0.0.1:0"};
    rpc_server_config cfg = {.listen = listen, .n_listen = 1, .workers = 1, .refusal_hold_ms = -1};
    char err[256];
    assert_null(rpc_server_start(&cfg, methods, 1, err, sizeof err));
    assert_non_null(strstr(err, "refusal hold"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusal_waits_out_the_hold), cmocka_unit_test(test_no_hold_when_off),
        cmocka_unit_test(test_other_calls_pass_held_ones), cmocka_unit_test(test_near_deadline_sends_at_once),
        cmocka_unit_test(test_full_queue_sends_at_once),   cmocka_unit_test(test_shutdown_sends_held_replies),
        cmocka_unit_test(test_negative_hold_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
