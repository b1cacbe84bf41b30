/* test_redis_wait_batch.c -- --redis-wait-replicas 1 with calls answered
 * in batches (docs/batching.md, docs/operations.md "Waiting for
 * replicas"): Redis A as a primary and one replica, the activation server
 * with one worker, so a burst of concurrent Activates meets on its queue.
 *
 * Checked:
 *   - every call of the burst is granted, and each grant is on the
 *     replica (a grant is answered only once WAIT acknowledged it);
 *   - a batch sends ONE WAIT after its pipeline: Redis A counts at most
 *     as many WAITs (INFO commandstats) as the server ran batches, and
 *     fewer than the calls it granted;
 *   - with the replica gone, a burst is answered UNAVAILABLE call by call
 *     (the WAIT that fell short fails every grant it covered), and
 *     pa_redis_wait_short_total counts each of them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "act_env.h"
#include "clock.h"
#include "redis_keys.h"

enum { GROUP = 43, BURST = 48 };

static act_env env;
static redis_fixture replica;
static redisContext *admin; /* INFO on Redis A */

static void tune(group_record *r) { r->policy.max_machines = 10; }

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Replicas the primary has connected (ROLE); -1 on failure. */
static long replicas_connected(void) {
    redisReply *r = redisCommand(admin, "ROLE");
    long n = r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[2]->type == REDIS_REPLY_ARRAY
                 ? (long)r->element[2]->elements
                 : -1;
    if (r) freeReplyObject(r);
    return n;
}

/* WAIT commands Redis A has run so far (INFO commandstats). */
static long long wait_calls(void) {
    long long n = redis_fixture_command_calls(admin, "wait");
    assert_true(n >= 0);
    return n;
}

static double batches(void) { return env_metric(&env, "pa_batch_calls_count{method=\"" PA_RPC_ACTIVATE_LABEL "\"}"); }

typedef struct burst_call {
    char key[PK_TEXT_LEN + 1];
    uint32_t serial;
    grpc_status_code got;
    pthread_barrier_t *start;
} burst_call;

static void *run_call(void *p) {
    burst_call *c = p;
    uint8_t m[32];
    env_machine(m, c->serial);
    rpc_result res;
    pthread_barrier_wait(c->start);
    c->got = env_activate(&env, c->key, m, sizeof m, &res, NULL);
    rpc_result_clear(&res);
    return NULL;
}

/* BURST concurrent Activates of fresh keys from `first` on; how many got `want`. */
static int burst(uint32_t first, grpc_status_code want) {
    static burst_call c[BURST];
    pthread_t t[BURST];
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, BURST), 0);
    for (int i = 0; i < BURST; i++) {
        c[i] = (burst_call){.serial = first + (uint32_t)i, .start = &start};
        assert_int_equal(env_make_key(&env, GROUP, c[i].serial, false, 0, c[i].key), 0);
    }
    for (int i = 0; i < BURST; i++) assert_int_equal(pthread_create(&t[i], NULL, run_call, &c[i]), 0);
    for (int i = 0; i < BURST; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    int n = 0;
    for (int i = 0; i < BURST; i++) n += c[i].got == want;
    return n;
}

static int setup(void **state) {
    (void)state;
    if (env_start_stores(&env) != 0) return -1;
    redis_fixture_stop(&env.a); /* Redis A again, as a primary with a replica */
    if (redis_fixture_start_ha(&env.a, FIXTURE_STORE_ACTIVATION, 0) != 0 || env_keystore_reconnect(&env) != 0 ||
        env_create_group(&env, GROUP, tune) != 0 || !(admin = env_measuring_connection(&env)) ||
        redis_fixture_start_ha(&replica, FIXTURE_STORE_ACTIVATION, env.a.port) != 0)
        return -1;
    for (long long end = pa_mono_ms() + 10000; replicas_connected() != 1; sleep_ms(50))
        if (pa_mono_ms() > end) return -1;
    const char *flags[] = {"--workers",
                           "1",
                           "--redis-wait-replicas",
                           "1",
                           "--redis-wait-timeout-ms",
                           "200",
                           "--rate-address-per-s",
                           "0",
                           "--rate-group-per-s",
                           "0",
                           NULL};
    return env_start_server(&env, flags);
}

static int teardown(void **state) {
    (void)state;
    int st = env_stop_server(&env);
    if (admin) redisFree(admin);
    if (replica.pid > 0) redis_fixture_stop(&replica);
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

/* Grants the Redis of `f` lacks, of serials first..first+BURST. */
static int missing_on(const redis_fixture *f, uint32_t first) {
    redisContext *c = redis_fixture_connect(f, "keystore", FIXTURE_PW_KEYSTORE);
    assert_non_null(c);
    int missing = 0;
    for (uint32_t s = first; s < first + BURST; s++) {
        redisReply *r = redisCommand(c, "EXISTS " PA_RKEY_RECORD_FMT, GROUP, s);
        assert_non_null(r);
        missing += r->type != REDIS_REPLY_INTEGER || r->integer != 1;
        freeReplyObject(r);
    }
    redisFree(c);
    return missing;
}

static void test_one_wait_per_batch(void **state) {
    (void)state;
    long long waits0 = wait_calls();
    double batches0 = batches() > 0 ? batches() : 0;
    assert_int_equal(burst(1000, GRPC_STATUS_OK), BURST);
    long long waits = wait_calls() - waits0;
    double ran = batches() - batches0;
    fprintf(stderr, "%d grants in %.0f batches: %lld WAIT\n", BURST, ran, waits);
    assert_true(waits >= 1);
    assert_true((double)waits <= ran); /* at most one per batch */
    assert_true(waits < BURST);        /* calls shared a WAIT */
    assert_int_equal(missing_on(&replica, 1000), 0);
}

static void test_short_of_replicas_fails_each_grant(void **state) {
    (void)state;
    redis_fixture_stop(&replica);
    for (long long end = pa_mono_ms() + 10000; replicas_connected() != 0; sleep_ms(50)) assert_true(pa_mono_ms() < end);
    double short0 = env_metric(&env, "pa_redis_wait_short_total");
    if (short0 < 0) short0 = 0;
    long long waits0 = wait_calls();
    double batches0 = batches();
    assert_int_equal(burst(2000, GRPC_STATUS_UNAVAILABLE), BURST);
    long long waits = wait_calls() - waits0;
    assert_true(waits >= 1 && (double)waits <= batches() - batches0);
    assert_true(env_metric(&env, "pa_redis_wait_short_total") - short0 == BURST);
    assert_int_equal(missing_on(&env.a, 2000), 0); /* the grants stay on the primary (a retry gets them back) */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_wait_per_batch),
        cmocka_unit_test(test_short_of_replicas_fails_each_grant),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
