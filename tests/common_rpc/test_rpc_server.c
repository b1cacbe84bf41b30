/* test_rpc_server.c -- the rpc_server / rpc_client runtime end to end, in
 * one process over loopback (plaintext; TLS lives in test_rpc_tls.c).
 *
 * Most tests share one echo server on 127.0.0.1 and ::1 started in the
 * group setup; the drain and start-failure tests start their own. */
#include "clock.h"
#include "echo_service.h"
#include "grpc/health/v1/health.pb-c.h"
#include "metrics.h"
#include "rpc_client.h"
#include "rpc_methods.h"

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

static rpc_server *g_server;
static char g_target4[64], g_target6[64];
static rpc_channel *g_ch;

static grpc_status_code call(rpc_channel *ch, const char *path, const void *req, size_t len, int timeout_ms,
                             rpc_result *out) {
    rpc_client_method *m = rpc_channel_method(ch, path);
    assert_non_null(m);
    return rpc_call(ch, m, req, len, timeout_ms, out);
}

static int group_setup(void **state) {
    const char *listen[] = {"127.0.0.1:0", "[::1]:0"};
    g_server = echo_start(listen, 2, 2, NULL);
    snprintf(g_target4, sizeof g_target4, "127.0.0.1:%d", rpc_server_port(g_server, 0));
    snprintf(g_target6, sizeof g_target6, "[::1]:%d", rpc_server_port(g_server, 1));
    g_ch = rpc_channel_new(g_target4, NULL);
    return g_ch ? 0 : -1;
}

static int group_teardown(void **state) {
    rpc_channel_free(g_ch);
    int cancelled = rpc_server_shutdown(g_server, 2000);
    rpc_client_thread_done();
    return cancelled == 0 ? 0 : -1;
}

static void test_echo_round_trip(void **state) {
    rpc_result r;
    assert_int_equal(call(g_ch, "/test.v1.Echo/Echo", "hello", 5, 5000, &r), GRPC_STATUS_OK);
    assert_int_equal(r.body_len, 5);
    assert_memory_equal(r.body, "hello", 5);
    rpc_result_clear(&r);
    /* An empty message is a message: it must arrive as zero bytes, not fail. */
    assert_int_equal(call(g_ch, "/test.v1.Echo/Echo", "", 0, 5000, &r), GRPC_STATUS_OK);
    assert_int_equal(r.body_len, 0);
    rpc_result_clear(&r);
}

static void test_large_request_within_limit(void **state) {
    size_t n = 90000;
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)(i * 7);
    rpc_result r;
    assert_int_equal(call(g_ch, "/test.v1.Echo/Big", buf, n, 5000, &r), GRPC_STATUS_OK);
    assert_int_equal(r.body_len, n);
    assert_memory_equal(r.body, buf, n);
    rpc_result_clear(&r);
    free(buf);
}

static void test_unknown_method_is_unimplemented_fast(void **state) {
    rpc_result r;
    double t0 = pa_mono_s();
    assert_int_equal(call(g_ch, "/test.v1.Echo/Nope", "x", 1, 5000, &r), GRPC_STATUS_UNIMPLEMENTED);
    assert_true(pa_mono_s() - t0 < 1.0);
    assert_non_null(strstr(r.message, "/test.v1.Echo/Nope"));
    rpc_result_clear(&r);
    assert_int_equal(call(g_ch, "/other.Service/Method", "x", 1, 5000, &r), GRPC_STATUS_UNIMPLEMENTED);
    rpc_result_clear(&r);
}

static void test_oversized_request_refused(void **state) {
    uint8_t buf[2000] = {0};
    rpc_result r;
    assert_int_equal(call(g_ch, "/test.v1.Echo/Echo", buf, sizeof buf, 5000, &r), GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(r.message, "1024"));
    assert_non_null(strstr(r.message, "2000"));
    assert_null(r.body);
    rpc_result_clear(&r);
    /* Far beyond every limit: the transport refuses it before buffering. */
    size_t n = 300000;
    uint8_t *big = calloc(1, n);
    assert_non_null(big);
    assert_int_equal(call(g_ch, "/test.v1.Echo/Echo", big, n, 5000, &r), GRPC_STATUS_RESOURCE_EXHAUSTED);
    rpc_result_clear(&r);
    free(big);
    /* The server is still fine afterwards. */
    assert_int_equal(call(g_ch, "/test.v1.Echo/Echo", "ok", 2, 5000, &r), GRPC_STATUS_OK);
    rpc_result_clear(&r);
}

static grpc_status_code health(const char *service, int *serving_status, rpc_result *r) {
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    rpc_client_method *m = rpc_channel_method(g_ch, PA_RPC_HEALTH_CHECK);
    assert_non_null(m);
    *serving_status = -1;
    if (rpc_call_message(g_ch, m, &req.base, 5000, r) == GRPC_STATUS_OK) {
        Grpc__Health__V1__HealthCheckResponse *resp =
            grpc__health__v1__health_check_response__unpack(NULL, r->body_len, r->body);
        assert_non_null(resp);
        *serving_status = resp->status;
        grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
    }
    return r->status;
}

static void test_health_check(void **state) {
    rpc_result r;
    int st;
    assert_int_equal(health("", &st, &r), GRPC_STATUS_OK);
    assert_int_equal(st, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    rpc_result_clear(&r);
    assert_int_equal(health("test.v1.Echo", &st, &r), GRPC_STATUS_OK);
    assert_int_equal(st, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    rpc_result_clear(&r);
    assert_int_equal(health("no.such.Service", &st, &r), GRPC_STATUS_NOT_FOUND);
    assert_non_null(strstr(r.message, "no.such.Service"));
    rpc_result_clear(&r);
    rpc_server_set_serving(g_server, false);
    assert_int_equal(health("test.v1.Echo", &st, &r), GRPC_STATUS_OK);
    assert_int_equal(st, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
    rpc_result_clear(&r);
    rpc_server_set_serving(g_server, true);
}

static void test_deadline_exceeded(void **state) {
    rpc_result r;
    double t0 = pa_mono_s();
    assert_int_equal(call(g_ch, "/test.v1.Echo/Sleep", "600", 3, 100, &r), GRPC_STATUS_DEADLINE_EXCEEDED);
    double took = pa_mono_s() - t0;
    assert_true(took >= 0.09 && took < 0.5);
    rpc_result_clear(&r);
}

static void test_remaining_ms(void **state) {
    rpc_result r;
    assert_int_equal(call(g_ch, "/test.v1.Echo/Remaining", "", 0, 5000, &r), GRPC_STATUS_OK);
    char buf[32];
    snprintf(buf, sizeof buf, "%.*s", (int)r.body_len, (const char *)r.body);
    long long left = atoll(buf);
    assert_true(left > 3000 && left <= 5000);
    rpc_result_clear(&r);
    assert_int_equal(call(g_ch, "/test.v1.Echo/Remaining", "", 0, 0, &r), GRPC_STATUS_OK);
    snprintf(buf, sizeof buf, "%.*s", (int)r.body_len, (const char *)r.body);
    assert_string_equal(buf, "9223372036854775807");
    rpc_result_clear(&r);
}

static void test_retry_after_and_message(void **state) {
    rpc_result r;
    assert_int_equal(call(g_ch, "/test.v1.Echo/Limited", "", 0, 5000, &r), GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(r.retry_after_s, 7);
    assert_string_equal(r.reason, "TOO_FAST"); /* both trailers arrive */
    assert_string_equal(r.message, "slow down");
    rpc_result_clear(&r);
}

static void whoami(rpc_channel *ch, char *out, size_t cap) {
    rpc_result r;
    assert_int_equal(call(ch, "/test.v1.Echo/Whoami", "", 0, 5000, &r), GRPC_STATUS_OK);
    snprintf(out, cap, "%.*s", (int)r.body_len, (const char *)r.body);
    rpc_result_clear(&r);
}

static void test_ipv4_and_ipv6_peers(void **state) {
    char who[256];
    whoami(g_ch, who, sizeof who);
    assert_string_equal(who, "127.0.0.1|-|4242");
    rpc_channel *ch6 = rpc_channel_new(g_target6, NULL);
    assert_non_null(ch6);
    whoami(ch6, who, sizeof who);
    assert_string_equal(who, "::1|-|4242");
    rpc_channel_free(ch6);
}

typedef struct hammer_arg {
    rpc_channel *ch;              /* shared by all threads or one each */
    int id;
    int calls;
    int ok;                       /* calls whose echo came back intact */
} hammer_arg;

static void *hammer(void *p) {
    hammer_arg *a = p;
    for (int i = 0; i < a->calls; i++) {
        char msg[64];
        int n = snprintf(msg, sizeof msg, "thread %d call %d", a->id, i);
        rpc_client_method *m = rpc_channel_method(a->ch, "/test.v1.Echo/Echo");
        rpc_result r;
        if (m && rpc_call(a->ch, m, (const uint8_t *)msg, (size_t)n, 5000, &r) == GRPC_STATUS_OK &&
            r.body_len == (size_t)n && memcmp(r.body, msg, (size_t)n) == 0)
            a->ok++;
        rpc_result_clear(&r);
    }
    return NULL;
}

static void test_concurrent_calls(void **state) {
    enum { THREADS = 8, CALLS = 250 };
    pthread_t t[THREADS];
    hammer_arg a[THREADS];
    rpc_channel *own = rpc_channel_new(g_target4, NULL);
    assert_non_null(own);
    for (int i = 0; i < THREADS; i++) {
        /* half share the group channel, half share a second one */
        a[i] = (hammer_arg){.ch = i % 2 ? own : g_ch, .id = i, .calls = CALLS};
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &a[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].ok, CALLS);
    }
    rpc_channel_free(own);
}

static void test_metrics_recorded(void **state) {
    rpc_result r;
    assert_int_equal(call(g_ch, "/test.v1.Echo/Echo", "m", 1, 5000, &r), GRPC_STATUS_OK);
    rpc_result_clear(&r);
    char *text = NULL;
    /* the call is counted when its batch completes, just after the client returns */
    for (int i = 0; i < 100; i++) {
        free(text);
        text = metrics_render();
        assert_non_null(text);
        if (strstr(text, "pa_grpc_calls_total{method=\"test.v1.Echo/Limited\",code=\"RESOURCE_EXHAUSTED\"} ")) break;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    assert_non_null(strstr(text, "# TYPE pa_grpc_calls_total counter"));
    assert_non_null(strstr(text, "pa_grpc_calls_total{method=\"test.v1.Echo/Echo\",code=\"OK\"} "));
    assert_non_null(strstr(text, "pa_grpc_calls_total{method=\"unknown\",code=\"UNIMPLEMENTED\"} "));
    assert_non_null(strstr(text, "# TYPE pa_grpc_call_seconds histogram"));
    assert_non_null(strstr(text, "pa_grpc_call_seconds_bucket{method=\"test.v1.Echo/Echo\",le=\"+Inf\"} "));
    assert_non_null(strstr(text, "pa_grpc_call_seconds_count{method=\"test.v1.Echo/Echo\"} "));
    /* HELP/TYPE once per name even with many series */
    const char *first = strstr(text, "# TYPE pa_grpc_calls_total");
    assert_null(strstr(first + 1, "# TYPE pa_grpc_calls_total"));
    free(text);
}

/* --- servers of their own ---------------------------------------------------- */

typedef struct sleeper_arg {
    const char *target;
    const char *ms;               /* how long the server sleeps */
    pthread_barrier_t *connected; /* passed once the channel is connected */
    grpc_status_code status;      /* what the Sleep call returned */
} sleeper_arg;

/* Connects first (an Echo call), then meets the others at the barrier, so
 * the Sleep call reaches the server within moments of the barrier. */
static void *sleeper(void *p) {
    sleeper_arg *a = p;
    rpc_channel *ch = rpc_channel_new(a->target, NULL);
    rpc_result r;
    call(ch, "/test.v1.Echo/Echo", "x", 1, 5000, &r);
    rpc_result_clear(&r);
    pthread_barrier_wait(a->connected);
    a->status = call(ch, "/test.v1.Echo/Sleep", a->ms, strlen(a->ms), 10000, &r);
    rpc_result_clear(&r);
    rpc_channel_free(ch);
    return NULL;
}

static void start_sleepers(pthread_t *t, sleeper_arg *a, int n, const char *target, const char *ms,
                           pthread_barrier_t *b) {
    pthread_barrier_init(b, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++) {
        a[i] = (sleeper_arg){.target = target, .ms = ms, .connected = b, .status = GRPC_STATUS_UNKNOWN};
        assert_int_equal(pthread_create(&t[i], NULL, sleeper, &a[i]), 0);
    }
    pthread_barrier_wait(b);
    struct timespec ts = {0, 100000000};   /* the calls are on their way; one worker sleeps through them */
    nanosleep(&ts, NULL);
}

static void test_drain_completes_calls_in_flight(void **state) {
    enum { N = 4 };
    const char *listen[] = {"127.0.0.1:0"};
    rpc_server *s = echo_start(listen, 1, 1, NULL);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", rpc_server_port(s, 0));
    pthread_t t[N];
    sleeper_arg a[N];
    pthread_barrier_t b;
    start_sleepers(t, a, N, target, "200", &b);
    double t0 = pa_mono_s();
    assert_int_equal(rpc_server_shutdown(s, 5000), 0);
    assert_true(pa_mono_s() - t0 >= 0.4); /* it really waited for the queued ones */
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].status, GRPC_STATUS_OK);
    }
    pthread_barrier_destroy(&b);
    /* and new calls are refused once it is gone */
    rpc_channel *ch = rpc_channel_new(target, NULL);
    rpc_result r;
    assert_int_equal(call(ch, "/test.v1.Echo/Echo", "x", 1, 1000, &r), GRPC_STATUS_UNAVAILABLE);
    rpc_result_clear(&r);
    rpc_channel_free(ch);
}

static void test_drain_grace_expires(void **state) {
    const char *listen[] = {"127.0.0.1:0"};
    rpc_server *s = echo_start(listen, 1, 1, NULL);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", rpc_server_port(s, 0));
    pthread_t t[3];
    sleeper_arg a[3];
    pthread_barrier_t b;
    start_sleepers(t, a, 3, target, "300", &b);
    assert_true(rpc_server_shutdown(s, 50) >= 1);
    int failed = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        failed += a[i].status != GRPC_STATUS_OK;
    }
    assert_true(failed >= 1);
    pthread_barrier_destroy(&b);
}

static void *no_state(int index, void *app) { return NULL; }

static void test_start_errors(void **state) {
    char err[256];
    const char *bad[] = {"definitely-not-an-address:99999"};
    rpc_server_config cfg = {.listen = bad, .n_listen = 1, .workers = 1};
    assert_null(rpc_server_start(&cfg, echo_methods, echo_n_methods, err, sizeof err));
    assert_non_null(strstr(err, "definitely-not-an-address"));

    const char *good[] = {"127.0.0.1:0"};
    cfg.listen = good;
    rpc_tls_config tls = {.cert_pem = "not pem", .key_pem = "nor this"};
    cfg.tls = &tls;
    assert_null(rpc_server_start(&cfg, echo_methods, echo_n_methods, err, sizeof err));
    assert_non_null(strstr(err, "certificate"));

    cfg.tls = NULL;
    cfg.worker_init = no_state;
    assert_null(rpc_server_start(&cfg, echo_methods, echo_n_methods, err, sizeof err));
    assert_non_null(strstr(err, "worker 0"));

    cfg.worker_init = NULL;
    rpc_method dup[] = {echo_methods[0], echo_methods[0]};
    assert_null(rpc_server_start(&cfg, dup, 2, err, sizeof err));
    assert_non_null(strstr(err, "twice"));

    cfg.n_listen = 0;
    assert_null(rpc_server_start(&cfg, echo_methods, echo_n_methods, err, sizeof err));
    assert_non_null(strstr(err, "listen"));

    /* a port in use is refused, not silently shared (gRPC's SO_REUSEPORT) */
    cfg.n_listen = 1;
    rpc_server *first = rpc_server_start(&cfg, echo_methods, echo_n_methods, err, sizeof err);
    assert_non_null(first);
    char busy[64];
    snprintf(busy, sizeof busy, "127.0.0.1:%d", rpc_server_port(first, 0));
    const char *taken[] = {busy};
    cfg.listen = taken;
    assert_null(rpc_server_start(&cfg, echo_methods, echo_n_methods, err, sizeof err));
    assert_non_null(strstr(err, busy));
    assert_int_equal(rpc_server_shutdown(first, 1000), 0);
}

int main(void) {
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_echo_round_trip),
        cmocka_unit_test(test_large_request_within_limit),
        cmocka_unit_test(test_unknown_method_is_unimplemented_fast),
        cmocka_unit_test(test_oversized_request_refused),
        cmocka_unit_test(test_health_check),
        cmocka_unit_test(test_deadline_exceeded),
        cmocka_unit_test(test_remaining_ms),
        cmocka_unit_test(test_retry_after_and_message),
        cmocka_unit_test(test_ipv4_and_ipv6_peers),
        cmocka_unit_test(test_concurrent_calls),
        cmocka_unit_test(test_metrics_recorded),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_drain_completes_calls_in_flight),
        cmocka_unit_test(test_drain_grace_expires),
        cmocka_unit_test(test_start_errors),
    };
    grpc_init();
    int failed = cmocka_run_group_tests_name("rpc_shared_server", shared, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("rpc_own_server", own, NULL, NULL);
    rpc_client_thread_done();
    grpc_shutdown();
    return failed;
}
