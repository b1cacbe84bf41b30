/* test_loadgen.c -- bench/loadgen_core against the test echo service: the
 * numbers it reports must add up, since benchmarks are judged by them. */
#include "echo_service.h"
#include "loadgen_core.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static rpc_server *g_server;
static char g_target[64];

static int group_setup(void **state) {
    const char *listen[] = {"127.0.0.1:0"};
    g_server = echo_start(listen, 1, 2, NULL);
    snprintf(g_target, sizeof g_target, "127.0.0.1:%d", rpc_server_port(g_server, 0));
    return 0;
}

static int group_teardown(void **state) { return rpc_server_shutdown(g_server, 2000) == 0 ? 0 : -1; }

/* Every 4th call goes to Limited (class 1), the rest echo their sequence
 * number (class 0); the response callback checks each echo. */
static int build(void *user, int thread, uint64_t seq, loadgen_request *req) {
    req->klass = seq % 4 == 3;
    req->method = req->klass;
    req->len = (size_t)snprintf((char *)req->buf, req->cap, "%d/%llu", thread, (unsigned long long)seq);
    return 0;
}

typedef struct seen {
    _Atomic int echoes_ok;        /* OK responses whose body looked like a request */
    _Atomic int limited;          /* RESOURCE_EXHAUSTED from class 1 */
} seen;

static void on_response(void *user, int thread, const loadgen_request *req, grpc_status_code st,
                        const uint8_t *body, size_t len) {
    seen *s = user;
    if (req->klass == 0 && st == GRPC_STATUS_OK && len == req->len && memcmp(body, req->buf, len) == 0)
        atomic_fetch_add(&s->echoes_ok, 1);
    if (req->klass == 1 && st == GRPC_STATUS_RESOURCE_EXHAUSTED) atomic_fetch_add(&s->limited, 1);
}

static void test_count_mode_adds_up(void **state) {
    const char *methods[] = {"/test.v1.Echo/Echo", "/test.v1.Echo/Limited"};
    loadgen_config cfg = {.target = g_target, .methods = methods, .n_methods = 2, .threads = 2, .channels = 3,
                          .concurrency = 8, .count = 2000, .on_response = on_response};
    seen s = {0};
    loadgen_result res;
    assert_int_equal(loadgen_run(&cfg, build, &s, &res), 0);
    assert_int_equal(res.total.calls, 2000);
    assert_int_equal(res.klass[0].calls + res.klass[1].calls, 2000);
    assert_int_equal(res.klass[0].status[GRPC_STATUS_OK], res.klass[0].calls);
    assert_int_equal(res.klass[1].status[GRPC_STATUS_RESOURCE_EXHAUSTED], res.klass[1].calls);
    assert_int_equal(atomic_load(&s.echoes_ok), (int)res.klass[0].calls);
    assert_int_equal(atomic_load(&s.limited), (int)res.klass[1].calls);
    assert_true(res.klass[1].calls >= 400);   /* a quarter of each thread's sequence */
    assert_true(res.calls_per_s > 0);
    assert_true(res.total.p50_us > 0 && res.total.p50_us <= res.total.p99_us && res.total.p99_us <= res.total.max_us);
    assert_non_null(strstr(res.first_error, "RESOURCE_EXHAUSTED"));
    const char *names[] = {"echo", "limited"};
    cfg.class_names = names;
    loadgen_print(stdout, "loadgen test", &cfg, &res);
}

static int slow_build(void *user, int thread, uint64_t seq, loadgen_request *req) {
    req->len = 0;
    return 0;
}

static void test_open_loop_rate(void **state) {
    const char *methods[] = {"/test.v1.Echo/Echo"};
    loadgen_config cfg = {.target = g_target,
                          .methods = methods,
                          .n_methods = 1,
                          .threads = 1,
                          .concurrency = 64,
                          .duration_s = 1.0,
                          .rate = 500};
    loadgen_result res;
    assert_int_equal(loadgen_run(&cfg, slow_build, NULL, &res), 0);
    /* 500 calls/s for a second, give or take the edges. 64 slots: on a
     * loaded machine calls may take tens of ms, and with all slots busy
     * the generator could not keep to the rate (4 slots held it to 4
     * calls per latency). */
    assert_true(res.total.calls >= 450 && res.total.calls <= 510);
    assert_int_equal(res.total.status[GRPC_STATUS_OK], res.total.calls);
}

static void test_bad_config_and_unreachable(void **state) {
    const char *methods[] = {"/test.v1.Echo/Echo"};
    loadgen_config cfg = {.target = g_target, .methods = methods, .n_methods = 0};
    loadgen_result res;
    assert_int_equal(loadgen_run(&cfg, slow_build, NULL, &res), -1);
    assert_non_null(strstr(res.first_error, "bad config"));
    cfg.n_methods = 1;
    cfg.target = "127.0.0.1:1";
    cfg.count = 1;
    assert_int_equal(loadgen_run(&cfg, slow_build, NULL, &res), -1);
    assert_non_null(strstr(res.first_error, "cannot connect"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_mode_adds_up),
        cmocka_unit_test(test_open_loop_rate),
        cmocka_unit_test(test_bad_config_and_unreachable),
    };
    grpc_init();
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    grpc_shutdown();
    return failed;
}
