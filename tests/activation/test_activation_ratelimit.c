/* test_activation_ratelimit.c -- token buckets in Redis, per client address
 * and per group: RESOURCE_EXHAUSTED with a retry-after, failed genuineness
 * checks costing extra tokens, and no oracle once an address is throttled.
 * These servers run without --audit-target: the last test checks that
 * auditing is then off and said to be. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act_env.h"
#include "clock.h"
#include "redis_keys.h"

enum { G_A = 201, G_B = 202 };

static act_env env;

static void tune(group_record *r) { r->policy.max_machines = 100; }

static int start_with(const char *const *flags) {
    if (env.server >= 0 && env_stop_server(&env) != 0) return -1;
    return env_start_server(&env, flags);
}

static int setup(void **state) {
    if (env_start_stores(&env) != 0) return -1;
    if (env_create_group(&env, G_A, tune) != 0 || env_create_group(&env, G_B, tune) != 0) return -1;
    const char *flags[] = {"--rate-address-per-s", "1", "--rate-address-burst", "5",
                           "--rate-failure-cost", "5", NULL};
    return start_with(flags);
}

static int teardown(void **state) {
    int st = env_stop_server(&env);
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

/* Forgets the loopback address's bucket (as the activation user). */
static void reset_address_bucket(void) {
    redisContext *c = redisConnect("127.0.0.1", env.a.port);
    assert_non_null(c);
    redisReply *r = redisCommand(c, "AUTH activation %s", FIXTURE_PW_ACTIVATION);
    freeReplyObject(r);
    r = redisCommand(c, "DEL " PA_RKEY_ADDRESS_BUCKET_FMT, "127.0.0.1");
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
}

static grpc_status_code try_activate(const char *key, unsigned machine, rpc_result *res) {
    uint8_t m[32];
    env_machine(m, machine);
    return env_activate(&env, key, m, sizeof m, res, NULL);
}

static void expect(const char *key, unsigned machine, grpc_status_code code, int *retry_after,
                   const char *needle) {
    rpc_result res;
    grpc_status_code st = try_activate(key, machine, &res);
    if (st != code) fprintf(stderr, "expected %d, got %d: %s\n", code, st, res.message);
    assert_int_equal(st, code);
    if (needle) assert_non_null(strstr(res.message, needle));
    if (retry_after) *retry_after = res.retry_after_s;
    rpc_result_clear(&res);
}

static void test_address_bucket(void **state) {
    reset_address_bucket();
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_A, 1, false, 0, key), 0);
    for (unsigned i = 0; i < 5; i++) expect(key, 1, GRPC_STATUS_OK, NULL, NULL);   /* the burst */
    int retry = 0;
    expect(key, 1, GRPC_STATUS_RESOURCE_EXHAUSTED, &retry, "from this address");
    assert_true(retry >= 1 && retry <= 2);
    assert_true(env_metric(&env, "pa_rate_limited_total{scope=\"address\"}") >= 1);
    assert_true(env_metric(&env, "pa_activations_refused_total{reason=\"rate_limited\"}") >= 1);
    sleep((unsigned)retry);
    expect(key, 1, GRPC_STATUS_OK, NULL, NULL);   /* refilled after retry-after */
}

static void test_failures_cost_more_and_tell_nothing(void **state) {
    reset_address_bucket();
    char key[PK_TEXT_LEN + 1], wrong[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_A, 2, false, 0, key), 0);
    assert_int_equal(env_make_key(&env, G_A, 3, false, 1, wrong), 0);
    /* One wrong key costs the whole burst of 5 tokens... */
    expect(wrong, 2, GRPC_STATUS_PERMISSION_DENIED, NULL, "not genuine");
    /* ...after which a genuine key and a wrong one get the same answer. */
    int r1 = 0, r2 = 0;
    expect(key, 2, GRPC_STATUS_RESOURCE_EXHAUSTED, &r1, "from this address");
    expect(wrong, 2, GRPC_STATUS_RESOURCE_EXHAUSTED, &r2, "from this address");
    assert_true(r1 >= 1);
    assert_true(r2 >= 1);
    /* A made-up group too. */
    char forged[PK_TEXT_LEN + 1];
    env_forge_key(999, 1, forged);
    expect(forged, 2, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "from this address");
}

/* Configuration layers: the file, then PA_ACTIVATION_* variables, then
 * flags, each winning over the one before. */
static void test_config_file_env_and_flags(void **state) {
    char path[600];
    snprintf(path, sizeof path, "%s/activation.conf", env.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# limits for this test\nrate-address-per-s = 0.5\nrate-address-burst = 10\n"
               "log-level = error\n");
    fclose(f);
    setenv("PA_ACTIVATION_RATE_ADDRESS_BURST", "3", 1);   /* beats the file */
    const char *flags[] = {"--config", path, NULL};        /* --log-level debug beats the file */
    int started = start_with(flags);
    unsetenv("PA_ACTIVATION_RATE_ADDRESS_BURST");
    assert_int_equal(started, 0);
    reset_address_bucket();
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_B, 50, false, 0, key), 0);
    for (unsigned i = 0; i < 3; i++) expect(key, 300, GRPC_STATUS_OK, NULL, NULL);
    int retry = 0;
    expect(key, 300, GRPC_STATUS_RESOURCE_EXHAUSTED, &retry, "from this address");
    assert_int_equal(retry, 2);   /* one token at 0.5 per second */
    char *log = env_read_log(&env), *run = log, *p;
    assert_non_null(log);
    while ((p = strstr(run + 1, "\"event\":\"server.started\""))) run = p;   /* this server's lines */
    assert_non_null(strstr(run, "\"level\":\"debug\""));
    free(log);
}

static void test_group_bucket(void **state) {
    const char *flags[] = {"--rate-address-per-s", "0", "--rate-group-per-s", "0.5",
                           "--rate-group-burst", "3", NULL};
    assert_int_equal(start_with(flags), 0);
    char a[PK_TEXT_LEN + 1], b[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_A, 10, false, 0, a), 0);
    assert_int_equal(env_make_key(&env, G_B, 10, false, 0, b), 0);
    for (unsigned i = 0; i < 3; i++) expect(a, 100 + i, GRPC_STATUS_OK, NULL, NULL);
    int retry = 0;
    expect(a, 103, GRPC_STATUS_RESOURCE_EXHAUSTED, &retry, "for this product");
    assert_true(retry >= 1 && retry <= 2);
    assert_true(env_metric(&env, "pa_rate_limited_total{scope=\"group\"}") >= 1);
    /* Another group has its own bucket; no address limit is configured. */
    for (unsigned i = 0; i < 3; i++) expect(b, 200 + i, GRPC_STATUS_OK, NULL, NULL);
}

#define HELD "pa_grpc_refusal_holds_total{result=\"held\"}"

/* The refusal hold (default 100 ms): a key that is not genuine and a rate
 * limit are answered after it, a grant is not held; 0 turns it off. */
static void test_refusals_are_held(void **state) {
    const char *flags[] = {
        "--rate-address-per-s", "0.001", "--rate-address-burst", "1", "--rate-failure-cost", "1", NULL};
    assert_int_equal(start_with(flags), 0);
    reset_address_bucket();
    char key[PK_TEXT_LEN + 1], wrong[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_A, 60, false, 0, key), 0);
    assert_int_equal(env_make_key(&env, G_A, 61, false, 1, wrong), 0);
    int64_t t0 = pa_mono_ms();
    expect(wrong, 400, GRPC_STATUS_PERMISSION_DENIED, NULL, "not genuine"); /* spends the one token */
    assert_true(pa_mono_ms() - t0 >= 95);
    assert_int_equal(env_metric(&env, HELD), 1);
    t0 = pa_mono_ms();
    expect(key, 400, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "from this address");
    assert_true(pa_mono_ms() - t0 >= 95);
    assert_int_equal(env_metric(&env, HELD), 2);

    const char *unlimited[] = {"--rate-address-per-s", "0", NULL};
    assert_int_equal(start_with(unlimited), 0);
    expect(key, 401, GRPC_STATUS_OK, NULL, NULL);
    assert_int_equal(env_metric(&env, HELD), 0);

    const char *off[] = {"--rate-address-per-s", "0", "--refusal-hold-ms", "0", NULL};
    assert_int_equal(start_with(off), 0);
    expect(wrong, 402, GRPC_STATUS_PERMISSION_DENIED, NULL, "not genuine");
    assert_int_equal(env_metric(&env, HELD), 0);
}

/* Without --audit-target nothing is sampled or pulled, and start-up says so. */
static void test_audit_off_without_target(void **state) {
    char *log = env_read_log(&env);
    assert_non_null(log);
    assert_non_null(strstr(log, "\"event\":\"audit.disabled\""));
    assert_null(strstr(log, "audit.enabled"));
    free(log);
    char *m = fixture_http_get("127.0.0.1", env.metrics_port, "/metrics");
    assert_non_null(m);
    assert_null(strstr(m, "pa_audit_decisions_total"));
    assert_null(strstr(m, "pa_audit_outbox_length"));
    free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_bucket),
        cmocka_unit_test(test_failures_cost_more_and_tell_nothing),
        cmocka_unit_test(test_config_file_env_and_flags),
        cmocka_unit_test(test_group_bucket),
        cmocka_unit_test(test_refusals_are_held),
        cmocka_unit_test(test_audit_off_without_target),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
