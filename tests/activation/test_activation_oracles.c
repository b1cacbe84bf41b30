/* test_activation_oracles.c -- what a caller can learn, and what it costs
 * the server, when it asks about things that do not exist; which address a
 * call is charged to (trusted proxies); the activation user's rights on
 * Redis A.
 *
 * Redis work is counted with INFO commandstats on the private Redis A, read
 * by an extra measuring user added to this instance only (no production
 * user may run INFO). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <grpc/byte_buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act_env.h"
#include "client_address.h"
#include "redis_keys.h"

enum { G_KNOWN = 501, G_NEW = 502, G_GUESSED = 503, G_OTHER = 504, G_ABSENT = 999 };

static act_env env;
static redisContext *admin; /* INFO on Redis A (the measuring user) */

static void tune(group_record *r) { r->policy.max_machines = 100; }

static int setup(void **state) {
    if (env_start_stores(&env) != 0 || !(admin = env_measuring_connection(&env))) return -1;
    if (env_create_group(&env, G_KNOWN, tune) != 0 || env_create_group(&env, G_GUESSED, tune) != 0 ||
        env_create_group(&env, G_OTHER, tune) != 0)
        return -1;
    return env_restart_server(&env, NULL);
}

static int teardown(void **state) {
    int st = env.server >= 0 ? env_stop_server(&env) : 0;
    if (admin) redisFree(admin);
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

static redisContext *connect_as_activation(void) {
    redisContext *c = redis_fixture_connect(&env.a, "activation", FIXTURE_PW_ACTIVATION);
    assert_non_null(c);
    return c;
}

/* One Activate carrying request metadata `name: value` (both may be NULL). */
static grpc_status_code activate_with(const char *key, unsigned machine, const char *name, const char *value) {
    uint8_t m[32], buf[512];
    env_machine(m, machine);
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = (char *)key;
    rq.machine_id = (ProtobufCBinaryData){.len = sizeof m, .data = m};
    size_t len = activation__v1__activate_request__pack(&rq, buf);

    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(5000, GPR_TIMESPAN));
    grpc_slice method = grpc_slice_from_static_string(PA_RPC_ACTIVATE);
    grpc_call *call = grpc_channel_create_call(rpc_channel_grpc(env.ch), NULL, GRPC_PROPAGATE_DEFAULTS, cq, method,
                                               NULL, deadline, NULL);
    assert_non_null(call);
    grpc_metadata md = {0};
    if (name) {
        md.key = grpc_slice_from_static_string(name);
        md.value = grpc_slice_from_copied_string(value);
    }
    grpc_slice body = grpc_slice_from_copied_buffer((const char *)buf, len);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    grpc_byte_buffer *recv = NULL;
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = name ? 1 : 0;
    ops[0].data.send_initial_metadata.metadata = &md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    assert_int_equal(grpc_call_start_batch(call, ops, 6, call, NULL), GRPC_CALL_OK);
    grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    assert_int_equal(ev.type, GRPC_OP_COMPLETE);
    if (recv) grpc_byte_buffer_destroy(recv);
    grpc_byte_buffer_destroy(send);
    grpc_slice_unref(details);
    if (name) grpc_slice_unref(md.value);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    return status;
}

/* Whether Redis A holds the address bucket of `ip`. */
static bool bucket_exists(const char *ip) {
    char k[PA_RKEY_MAX];
    pa_rkey_address_bucket(k, sizeof k, ip);
    redisContext *c = connect_as_activation();
    redisReply *r = redisCommand(c, "EXISTS %s", k);
    assert_non_null(r);
    bool yes = r->integer == 1;
    freeReplyObject(r);
    redisFree(c);
    return yes;
}

/* Drops the address bucket of `ip` (as if it had been idle long). */
static void forget_bucket(const char *ip) {
    redisContext *c = connect_as_activation();
    redisReply *r = redisCommand(c, "DEL " PA_RKEY_ADDRESS_BUCKET_FMT, ip);
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
}

/* Commands Redis A has run so far (INFO commandstats), by name or, for
 * NULL, all of them but INFO itself; script-internal calls count too. */
static long long commands(const char *name) {
    redisReply *r = redisCommand(admin, "INFO commandstats");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    long long total = 0;
    for (char *line = strstr(r->str, "cmdstat_"); line; line = strstr(line + 1, "cmdstat_")) {
        char cmd[64];
        long long calls;
        if (sscanf(line, "cmdstat_%63[^:]:calls=%lld", cmd, &calls) != 2) continue;
        if (name ? strcmp(cmd, name) == 0 : strcmp(cmd, "info") != 0) total += calls;
    }
    freeReplyObject(r);
    return total;
}

/* Log lines of `event` at `level` in the server log so far. */
static int log_lines(const char *level, const char *event) {
    char *log = env_read_log(&env);
    assert_non_null(log);
    char lv[64], ev[128];
    snprintf(lv, sizeof lv, "\"level\":\"%s\"", level);
    snprintf(ev, sizeof ev, "\"event\":\"%s\"", event);
    int n = 0;
    for (char *line = log, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        if (strstr(line, lv) && strstr(line, ev)) n++;
    }
    free(log);
    return n;
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

/* x-forwarded-for is believed from a trusted proxy, and only from one. */
static void test_forwarded_address_from_trusted_proxy(void **state) {
    const char *flags[] = {"--trusted-proxy",
                           "10.0.0.0/8",
                           "--trusted-proxy",
                           "127.0.0.1",
                           "--rate-address-per-s",
                           "0.01",
                           "--rate-address-burst",
                           "3",
                           NULL};
    assert_int_equal(env_restart_server(&env, flags), 0);
    forget_bucket("127.0.0.1");
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_KNOWN, 20, false, 0, key), 0);
    /* The proxy (127.0.0.1) appended its client 192.0.2.1; what the client
     * claimed itself (198.51.100.7) stays unread. */
    const char *xff = "198.51.100.7, 192.0.2.1";
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(activate_with(key, 20, CLIENT_FORWARDED_HEADER, xff), GRPC_STATUS_OK);
    assert_int_equal(activate_with(key, 20, CLIENT_FORWARDED_HEADER, xff), GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_true(bucket_exists("192.0.2.1"));
    assert_false(bucket_exists("198.51.100.7"));
    assert_false(bucket_exists("127.0.0.1"));
    /* Another client behind the same proxy has a bucket of its own; a
     * second trusted proxy hop (10.1.2.3) is looked through. */
    assert_int_equal(activate_with(key, 20, CLIENT_FORWARDED_HEADER, "192.0.2.2,10.1.2.3"), GRPC_STATUS_OK);
    assert_true(bucket_exists("192.0.2.2"));
    assert_false(bucket_exists("10.1.2.3"));
    /* A proxy writing nonsense gets its clients charged to itself. */
    assert_int_equal(activate_with(key, 20, CLIENT_FORWARDED_HEADER, "not-an-address"), GRPC_STATUS_OK);
    assert_true(bucket_exists("127.0.0.1"));
}

static void test_forwarded_address_ignored_from_others(void **state) {
    const char *flags[] = {
        "--trusted-proxy", "10.0.0.0/8", "--rate-address-per-s", "0.01", "--rate-address-burst", "3", NULL};
    assert_int_equal(env_restart_server(&env, flags), 0);
    forget_bucket("127.0.0.1");
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_KNOWN, 21, false, 0, key), 0);
    /* 127.0.0.1 is no trusted proxy here: every call is its own, whatever
     * address it claims to forward. */
    for (unsigned i = 0; i < 3; i++) {
        char xff[32];
        snprintf(xff, sizeof xff, "192.0.2.%u", 50 + i);
        assert_int_equal(activate_with(key, 21, CLIENT_FORWARDED_HEADER, xff), GRPC_STATUS_OK);
    }
    assert_int_equal(activate_with(key, 21, CLIENT_FORWARDED_HEADER, "192.0.2.99"), GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_true(bucket_exists("127.0.0.1"));
    assert_false(bucket_exists("192.0.2.50"));
    assert_false(bucket_exists("192.0.2.99"));
}

/* One Renew or Deactivate of a license id nobody holds. */
static grpc_status_code license_call(const char *path, uint32_t group) {
    char license_id[40];
    snprintf(license_id, sizeof license_id, "%08x%08x0011223344556677", group, 7u);
    uint8_t m[32], buf[512];
    env_machine(m, 7);
    /* A valid proof: what is tested is the lookup behind it. */
    EVP_PKEY *k = env_place_key(7);
    place_op op = strcmp(path, PA_RPC_RENEW) == 0 ? PLACE_OP_RENEW : PLACE_OP_DEACTIVATE;
    size_t len = env_license_request(license_id, m, k, op, 0, buf, sizeof buf);
    EVP_PKEY_free(k);
    assert_true(len > 0);
    rpc_result res;
    grpc_status_code st = env_call(&env, path, buf, len, 5000, &res);
    rpc_result_clear(&res);
    return st;
}

enum { FLOOD = 60, FLOOD_BURST = 5 };

/* A flood of FLOOD calls naming `group` from one address; returns how many
 * were NOT_FOUND (the rest must be RESOURCE_EXHAUSTED) and the Redis
 * commands and info lines they cost. */
static int flood(const char *path, const char *event, uint32_t group, long long *cmds, int *info_lines) {
    long long c0 = commands(NULL);
    int l0 = log_lines("info", event);
    int not_found = 0;
    for (int i = 0; i < FLOOD; i++) {
        grpc_status_code st = license_call(path, group);
        if (st != GRPC_STATUS_NOT_FOUND && st != GRPC_STATUS_RESOURCE_EXHAUSTED)
            fprintf(stderr, "%s call %d: status %d\n", path, i, st);
        assert_true(st == GRPC_STATUS_NOT_FOUND || st == GRPC_STATUS_RESOURCE_EXHAUSTED);
        /* Rate-limited from the moment the burst is spent, never again found. */
        assert_int_equal(st, i < FLOOD_BURST ? GRPC_STATUS_NOT_FOUND : GRPC_STATUS_RESOURCE_EXHAUSTED);
        not_found += st == GRPC_STATUS_NOT_FOUND;
    }
    usleep(100 * 1000); /* the log writer */
    *cmds = commands(NULL) - c0;
    *info_lines = log_lines("info", event) - l0;
    return not_found;
}

/* Renew and Deactivate take the address token before they look at the
 * group: a group that does not exist reads like a license nobody holds,
 * and a flood of either stops at the address's burst. What it costs Redis
 * and the log is bounded, and made-up groups are not logged at info. */
static void test_renew_deactivate_rate_limit_first(void **state) {
    char burst[16];
    snprintf(burst, sizeof burst, "%d", FLOOD_BURST);
    const char *flags[] = {"--rate-address-per-s", "0.001", "--rate-address-burst", burst, NULL};
    struct {
        const char *path, *event;
        uint32_t group;
    } runs[] = {
        {PA_RPC_RENEW, "renew.refused", G_ABSENT},
        {PA_RPC_RENEW, "renew.refused", G_KNOWN},
        {PA_RPC_DEACTIVATE, "deactivate.refused", G_ABSENT},
        {PA_RPC_DEACTIVATE, "deactivate.refused", G_KNOWN},
    };
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        /* A fresh server and bucket each run: no hold, no token left over. */
        assert_int_equal(env_restart_server(&env, flags), 0);
        forget_bucket("127.0.0.1");
        long long cmds;
        int info;
        assert_int_equal(flood(runs[i].path, runs[i].event, runs[i].group, &cmds, &info), FLOOD_BURST);
        fprintf(stderr, "%s group %u: %d calls, %lld Redis commands, %d info lines\n", runs[i].path, runs[i].group,
                FLOOD, cmds, info);
        /* The burst's scripts (a handful of commands each), then at most one
         * script per worker learns the refusal; the rest cost Redis nothing. */
        assert_true(cmds <= (FLOOD_BURST + 2) * 8);
        assert_true(info <= (runs[i].group == G_ABSENT ? 0 : FLOOD_BURST));
    }
}

/* Redis commands one Activate of `key` costs. */
static long long cost_of(const char *key, unsigned machine, grpc_status_code want) {
    long long c0 = commands(NULL);
    uint8_t m[32];
    env_machine(m, machine);
    rpc_result res;
    grpc_status_code st = env_activate(&env, key, m, sizeof m, &res, NULL);
    if (st != want) fprintf(stderr, "activate: %d %s\n", st, res.message);
    assert_int_equal(st, want);
    rpc_result_clear(&res);
    return commands(NULL) - c0;
}

/* A key of a group that does not exist costs Redis exactly what a wrong
 * key of a real group costs (one reject script), never a group lookup: the
 * set of groups is in memory. Rate-limited, both cost nothing. */
static void test_unknown_group_costs_what_a_known_one_does(void **state) {
    /* Refusals are held (--refusal-hold-ms): no background task may write
     * to Redis A meanwhile, or its commands would count as the call's. */
    const char *flags[] = {"--rate-address-per-s",
                           "0.001",
                           "--rate-address-burst",
                           "1000",
                           "--order-sweep-ms",
                           "0",
                           "--group-refresh-ms",
                           "0",
                           "--threat-flush-ms",
                           "0",
                           NULL};
    assert_int_equal(env_restart_server(&env, flags), 0);
    forget_bucket("127.0.0.1");
    char wrong[PK_TEXT_LEN + 1], unknown[PK_TEXT_LEN + 1];
    /* Each worker reads a real group's record once; do that first. */
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(env_make_key(&env, G_KNOWN, 30 + i, false, 1, wrong), 0);
        cost_of(wrong, 30, GRPC_STATUS_PERMISSION_DENIED);
    }
    char wrongs[20][PK_TEXT_LEN + 1]; /* made first: the keystore reads Redis A too */
    for (unsigned i = 0; i < 20; i++) assert_int_equal(env_make_key(&env, G_KNOWN, 40 + i, false, 1, wrongs[i]), 0);
    long long hgetall0 = commands("hgetall");
    for (unsigned i = 0; i < 20; i++) {
        /* Fresh made-up groups each time: nothing can be cached for them. */
        env_forge_key(700000 + i, 1, unknown);
        memcpy(wrong, wrongs[i], sizeof wrong);
        long long known_cost = cost_of(wrong, 31, GRPC_STATUS_PERMISSION_DENIED);
        long long unknown_cost = cost_of(unknown, 31, GRPC_STATUS_PERMISSION_DENIED);
        if (known_cost != unknown_cost)
            fprintf(stderr, "call %u: known %lld, unknown %lld\n", i, known_cost, unknown_cost);
        assert_int_equal(known_cost, unknown_cost);
        assert_true(known_cost >= 1 && known_cost <= 10);
    }
    assert_int_equal(commands("hgetall"), hgetall0);
    /* Spend the address's tokens (5 per refusal, 1000 in all), then the
     * same: a throttled caller costs Redis nothing either way. */
    for (unsigned i = 0; i < 200; i++) {
        env_forge_key(710000 + i, 1, unknown);
        uint8_t m[32];
        env_machine(m, 32);
        rpc_result res;
        env_activate(&env, unknown, m, sizeof m, &res, NULL);
        rpc_result_clear(&res);
    }
    for (int w = 0; w < 4; w++) cost_of(unknown, 32, GRPC_STATUS_RESOURCE_EXHAUSTED); /* every worker learns */
    for (unsigned i = 0; i < 10; i++) {
        env_forge_key(720000 + i, 1, unknown);
        assert_int_equal(env_make_key(&env, G_KNOWN, 60 + i, false, 1, wrong), 0);
        assert_int_equal(cost_of(wrong, 33, GRPC_STATUS_RESOURCE_EXHAUSTED), 0);
        assert_int_equal(cost_of(unknown, 33, GRPC_STATUS_RESOURCE_EXHAUSTED), 0);
    }
}

/* A group created while the server runs, with no refresh of the set of
 * groups due: its first activation finds it (the reject call says it
 * exists) and succeeds. */
static void test_new_group_found_at_first_activation(void **state) {
    const char *flags[] = {"--group-refresh-ms", "0", NULL};
    assert_int_equal(env_restart_server(&env, flags), 0);
    forget_bucket("127.0.0.1");
    assert_int_equal(env_create_group(&env, G_NEW, tune), 0);
    for (unsigned i = 0; i < 4; i++) activate_ok(G_NEW, 1 + i, 40); /* on every worker */
    char wrong[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_NEW, 9, false, 1, wrong), 0);
    cost_of(wrong, 41, GRPC_STATUS_PERMISSION_DENIED);
}

/* Activate `key` as the client `ip` behind the trusted proxy 127.0.0.1. */
static grpc_status_code activate_from(const char *ip, const char *key, unsigned machine) {
    return activate_with(key, machine, CLIENT_FORWARDED_HEADER, ip);
}

/* Guesses spread over many addresses, each well within its own budget,
 * still spend their group's failure budget; then the group takes no key at
 * all, not even a right one (else the right guess would stand out), while
 * other groups are untouched. A made-up group has a failure budget too, so
 * the limit does not tell whether a group exists. */
static void test_failures_from_many_addresses_exhaust_the_group(void **state) {
    const char *flags[] = {"--trusted-proxy",
                           "127.0.0.1",
                           "--rate-group-failures-per-s",
                           "0.001",
                           "--rate-group-failures-burst",
                           "5",
                           NULL};
    assert_int_equal(env_restart_server(&env, flags), 0);
    char wrong[PK_TEXT_LEN + 1], right[PK_TEXT_LEN + 1], other[PK_TEXT_LEN + 1], ip[32];
    assert_int_equal(env_make_key(&env, G_GUESSED, 1, false, 1, wrong), 0);
    assert_int_equal(env_make_key(&env, G_GUESSED, 2, false, 0, right), 0);
    assert_int_equal(env_make_key(&env, G_OTHER, 1, false, 0, other), 0);
    uint32_t groups[] = {G_GUESSED, G_ABSENT};
    for (size_t g = 0; g < 2; g++) {
        char guess[PK_TEXT_LEN + 1];
        if (groups[g] == G_GUESSED) memcpy(guess, wrong, sizeof guess);
        else env_forge_key(G_ABSENT, 1, guess);
        /* One guess from each of five addresses: all refused as not genuine. */
        for (unsigned i = 0; i < 5; i++) {
            snprintf(ip, sizeof ip, "198.51.100.%zu", 10 * g + i + 1);
            assert_int_equal(activate_from(ip, guess, 50), GRPC_STATUS_PERMISSION_DENIED);
        }
        /* The sixth, from yet another address, finds the group's budget spent. */
        snprintf(ip, sizeof ip, "198.51.100.%zu", 10 * g + 9);
        assert_int_equal(activate_from(ip, guess, 50), GRPC_STATUS_RESOURCE_EXHAUSTED);
    }
    /* A right key of the guessed group is refused alike, from a fresh address... */
    assert_int_equal(activate_from("203.0.113.1", right, 51), GRPC_STATUS_RESOURCE_EXHAUSTED);
    /* ...and on a server that holds nothing in memory (the limit is in Redis). */
    assert_int_equal(env_restart_server(&env, flags), 0);
    assert_int_equal(activate_from("203.0.113.2", right, 51), GRPC_STATUS_RESOURCE_EXHAUSTED);
    /* Another group is not affected. */
    assert_int_equal(activate_from("203.0.113.3", other, 52), GRPC_STATUS_OK);
    assert_true(env_metric(&env, "pa_rate_limited_total{scope=\"group\"}") >= 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_record_is_read_only),
        cmocka_unit_test(test_forwarded_address_from_trusted_proxy),
        cmocka_unit_test(test_forwarded_address_ignored_from_others),
        cmocka_unit_test(test_renew_deactivate_rate_limit_first),
        cmocka_unit_test(test_unknown_group_costs_what_a_known_one_does),
        cmocka_unit_test(test_new_group_found_at_first_activation),
        cmocka_unit_test(test_failures_from_many_addresses_exhaust_the_group),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
