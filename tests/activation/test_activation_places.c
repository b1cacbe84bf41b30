/* test_activation_places.c -- what happens to a key's places over time and
 * across failures: a call that fails after its place was written is safe to
 * retry (same place, same license id, not another use), and a refusal for
 * lack of a place changes nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act_env.h"
#include "redis_keys.h"

enum { G_ONE = 601 };

static act_env env;

static void tune_one(group_record *r) { r->policy.max_machines = 1; }

static int start_with(const char *const *flags) {
    if (env.server >= 0 && env_stop_server(&env) != 0) return -1;
    return env_start_server(&env, flags);
}

static int setup(void **state) {
    if (env_start_stores(&env) != 0) return -1;
    if (env_create_group(&env, G_ONE, tune_one) != 0) return -1;
    return 0;
}

static int teardown(void **state) {
    int st = env.server >= 0 ? env_stop_server(&env) : 0;
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

/* Activates; returns the status and (on OK) the license id and count. */
static grpc_status_code activate(const char *key, unsigned machine, int timeout_ms, char license_id[64],
                                 uint32_t *count) {
    uint8_t m[32], buf[512];
    env_machine(m, machine);
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = (char *)key;
    rq.machine_id = (ProtobufCBinaryData){.len = sizeof m, .data = m};
    size_t len = activation__v1__activate_request__pack(&rq, buf);
    rpc_result res;
    grpc_status_code st = env_call(&env, PA_RPC_ACTIVATE, buf, len, timeout_ms, &res);
    if (st == GRPC_STATUS_OK) {
        Activation__V1__ActivateResponse *a = activation__v1__activate_response__unpack(NULL, res.body_len, res.body);
        assert_non_null(a);
        Activation__V1__License *l = env_open_license(&env, &a->license, &a->signature, a->key_id);
        assert_non_null(l);
        if (license_id) snprintf(license_id, 64, "%s", l->license_id);
        if (count) *count = a->activation_count;
        activation__v1__license__free_unpacked(l, NULL);
        activation__v1__activate_response__free_unpacked(a, NULL);
    }
    rpc_result_clear(&res);
    return st;
}

/* The key's use count ("n"), -1 when absent. */
static long long uses_of(uint32_t group, uint32_t serial) {
    redisReply *r = redisCommand(env.ks_a, "HGET " PA_RKEY_RECORD_FMT " n", group, serial);
    assert_non_null(r);
    long long n = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
    freeReplyObject(r);
    return n;
}

typedef struct busy_redis {
    int port;
    double seconds;
} busy_redis;

/* Keeps Redis A busy in a Lua loop: every other client waits meanwhile. */
static void *occupy_redis(void *p) {
    busy_redis *b = p;
    redisContext *c = redisConnect("127.0.0.1", b->port);
    redisReply *r = redisCommand(c, "AUTH keystore %s", FIXTURE_PW_KEYSTORE);
    freeReplyObject(r);
    r = redisCommand(c, "EVAL %s 0 %f",
                     "local function us() local t = redis.call('TIME') return t[1] * 1e6 + t[2] end "
                     "local s = us() while us() - s < tonumber(ARGV[1]) * 1e6 do end return 1",
                     b->seconds);
    if (r) freeReplyObject(r);
    redisFree(c);
    return NULL;
}

/* The caller gives up while the server waits in its policy script: the
 * place is taken but the license never arrives. The retry from the same
 * machine gets that place (on a one-machine key, not "already activated on
 * its maximum"), the same license id, and is not another use; a second
 * machine's refusal for lack of a place counts nothing either. */
static void test_retry_after_lost_reply_is_idempotent(void **state) {
    const char *flags[] = {"--workers", "1", "--redis-timeout-ms", "3000", NULL};
    assert_int_equal(start_with(flags), 0);
    char key[PK_TEXT_LEN + 1], warm[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_ONE, 1, false, 0, key), 0);
    assert_int_equal(env_make_key(&env, G_ONE, 2, false, 0, warm), 0);
    /* The group record is cached, so the script is the only wait. */
    assert_int_equal(activate(warm, 9, 5000, NULL, NULL), GRPC_STATUS_OK);

    busy_redis busy = {.port = env.a.port, .seconds = 1.2};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, occupy_redis, &busy), 0);
    usleep(150 * 1000);
    assert_int_equal(activate(key, 1, 500, NULL, NULL), GRPC_STATUS_DEADLINE_EXCEEDED);
    pthread_join(t, NULL);
    usleep(200 * 1000);                     /* the handler finishes its lost call */
    assert_int_equal(uses_of(G_ONE, 1), 1); /* the place was taken */

    char first[64], again[64];
    uint32_t count = 0;
    assert_int_equal(activate(key, 1, 5000, first, &count), GRPC_STATUS_OK);
    assert_int_equal(count, 1);
    assert_int_equal(uses_of(G_ONE, 1), 1);
    assert_int_equal(activate(key, 1, 5000, again, &count), GRPC_STATUS_OK);
    assert_string_equal(again, first);
    assert_int_equal(count, 1);
    assert_int_equal(uses_of(G_ONE, 1), 1);
    /* Another machine: no place, and nothing recorded for the refusal. */
    assert_int_equal(activate(key, 2, 5000, NULL, NULL), GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(uses_of(G_ONE, 1), 1);
    redisReply *r = redisCommand(env.ks_a, "HLEN " PA_RKEY_RECORD_FMT, G_ONE, 1);
    assert_non_null(r);
    assert_int_equal(r->integer, 2); /* "n" and the one place */
    freeReplyObject(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after_lost_reply_is_idempotent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
