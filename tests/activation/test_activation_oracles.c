/* test_activation_oracles.c -- what a caller can learn, and what it costs
 * the server, when it asks about things that do not exist: the activation
 * user's rights on Redis A.
 *
 * Redis work is counted with INFO commandstats on the private Redis A, read
 * by an extra measuring user added to this instance only (no production
 * user may run INFO). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act_env.h"
#include "redis_keys.h"

enum { G_KNOWN = 501 };

static act_env env;

static void tune(group_record *r) { r->policy.max_machines = 100; }

static int start_with(const char *const *flags) {
    if (env.server >= 0 && env_stop_server(&env) != 0) return -1;
    return env_start_server(&env, flags);
}

static int setup(void **state) {
    if (env_start_stores(&env) != 0) return -1;
    if (env_create_group(&env, G_KNOWN, tune) != 0) return -1;
    return start_with(NULL);
}

static int teardown(void **state) {
    int st = env.server >= 0 ? env_stop_server(&env) : 0;
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

static redisContext *connect_as_activation(void) {
    redisContext *c = redis_fixture_connect(&env.a, "activation", FIXTURE_PW_ACTIVATION);
    assert_non_null(c);
    return c;
}

static void activate_ok(uint32_t group, uint32_t serial, unsigned machine) {
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, group, serial, false, 0, key), 0);
    uint8_t m[32];
    env_machine(m, machine);
    rpc_result res;
    grpc_status_code st = env_activate(&env, key, m, sizeof m, &res, NULL);
    if (st != GRPC_STATUS_OK) fprintf(stderr, "activate: %d %s\n", st, res.message);
    assert_int_equal(st, GRPC_STATUS_OK);
    rpc_result_clear(&res);
}

/* The internet-facing user reads group records but cannot rewrite them
 * (a changed max_machines or lease would be the server granting itself
 * more); activation keeps working under that rule. */
static void test_group_record_is_read_only(void **state) {
    redisContext *c = connect_as_activation();
    const char *writes[] = {"HSET " PA_RKEY_GROUP_FMT " max_machines 0", "HDEL " PA_RKEY_GROUP_FMT " upgrade_allowed",
                            "DEL " PA_RKEY_GROUP_FMT, "HINCRBY " PA_RKEY_GROUP_FMT " version 1"};
    for (size_t i = 0; i < sizeof writes / sizeof *writes; i++) {
        redisReply *r = redisCommand(c, writes[i], G_KNOWN);
        assert_non_null(r);
        if (r->type != REDIS_REPLY_ERROR) fprintf(stderr, "allowed: %s\n", writes[i]);
        assert_int_equal(r->type, REDIS_REPLY_ERROR);
        assert_non_null(strstr(r->str, "NOPERM"));
        freeReplyObject(r);
    }
    /* Nor from inside a script, where policy.lua runs (named in ARGV, as
     * policy.lua names it: passed in KEYS it would be refused up front). */
    redisReply *r = redisCommand(c, "EVAL %s 0 " PA_RKEY_GROUP_FMT,
                                 "return redis.call('HSET', ARGV[1], 'lease_seconds', '1')", G_KNOWN);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "can't access")); /* Redis 7.0's NOPERM inside a script */
    freeReplyObject(r);
    /* Reading is still allowed. */
    r = redisCommand(c, "HGET " PA_RKEY_GROUP_FMT " product", G_KNOWN);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    redisFree(c);
    activate_ok(G_KNOWN, 1, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_record_is_read_only),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
