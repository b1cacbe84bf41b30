/* test_admin_threats.c -- the threat counters end to end: a real
 * activation-server counts grants, not-genuine and rate-limit refusals and
 * machine-limit refusals, flushes them to Redis A, and the admin server's
 * threat view (threat_view.h) reads them back as series and top addresses.
 * Keys of a made-up group are refused but never become counter keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "act_env.h"
#include "redis_keys.h"
#include "redis_store.h"
#include "threat_view.h"

#define G_THREAT 811 /* grants, refusals */
#define G_ONE 812    /* one machine per key: the machine-limit refusals */
#define G_MADE_UP 8999

static act_env env;
static rstore *admin;   /* Redis A as user admin, as the admin server reads it */
static redisContext *m; /* every command: looks at the keys */
static int64_t t0;      /* before the first call */

static void tune_one(group_record *r) { r->policy.max_machines = 1; }

static int setup(void **state) {
    (void)state;
    t0 = (int64_t)time(NULL);
    if (env_start_stores(&env) != 0 || env_create_group(&env, G_THREAT, NULL) != 0 ||
        env_create_group(&env, G_ONE, tune_one) != 0)
        return -1;
    /* A small address bucket: the refusals run into the rate limit. */
    const char *flags[] = {
        "--threat-flush-ms", "200", "--rate-address-per-s", "0.001", "--rate-address-burst", "30", NULL};
    /* The measuring user first: its ACL LOAD drops every other connection. */
    if (env_start_server(&env, flags) != 0 || !(m = env_measuring_connection(&env))) return -1;
    char url[160], err[256];
    snprintf(url, sizeof url, "redis://admin:%s@127.0.0.1:%d", FIXTURE_PW_ADMIN, env.a.port);
    rstore_config cfg = {.url = url, .connect_timeout_ms = 2000, .command_timeout_ms = 2000};
    if (!(admin = rstore_new(&cfg, false, err, sizeof err))) {
        fprintf(stderr, "admin store: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    rstore_free(admin);
    if (m) redisFree(m);
    int st = env.server >= 0 ? env_stop_server(&env) : 0;
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

static grpc_status_code activate(uint32_t group, uint32_t serial, uint64_t spoil, unsigned machine) {
    char key[PK_TEXT_LEN + 1];
    uint8_t mid[32];
    rpc_result res;
    assert_int_equal(env_make_key(&env, group, serial, false, spoil, key), 0);
    env_machine(mid, machine);
    grpc_status_code st = env_activate(&env, key, mid, sizeof mid, &res, NULL);
    rpc_result_clear(&res);
    return st;
}

/* Sums one field of a group's series. */
static long long total(const json_t *view, uint32_t group, const char *field) {
    size_t i, j;
    json_t *g, *pt;
    long long sum = 0;
    json_array_foreach(json_object_get(view, "groups"), i, g) {
        if (json_integer_value(json_object_get(g, "group")) != group) continue;
        json_array_foreach(json_object_get(g, "series"), j, pt) sum += json_integer_value(json_object_get(pt, field));
    }
    return sum;
}

static json_t *read_view(const char *groups) {
    threat_query q;
    char err[256], to[24], from[24];
    snprintf(from, sizeof from, "%lld", (long long)(t0 / 60 * 60));
    snprintf(to, sizeof to, "%lld", (long long)time(NULL) + 120);
    assert_int_equal(threat_query_parse(&q, groups, from, to, "60", (int64_t)time(NULL), err, sizeof err), 0);
    json_t *v = threat_view_read(admin, &q, err, sizeof err);
    if (!v) fprintf(stderr, "threat view: %s\n", err);
    assert_non_null(v);
    return v;
}

/* Polls the view until the group shows `attempts` (the flush is every 200 ms),
 * then reads it once more two flush intervals later: a flush is a pipeline of
 * several commands, so the read that first saw the attempts may have come
 * before the same flush's grants or top addresses. */
static json_t *view_with(uint32_t group, long long attempts) {
    char g[16];
    snprintf(g, sizeof g, "%u", (unsigned)group);
    for (int i = 0; i < 100; i++) {
        json_t *v = read_view(g);
        bool seen = total(v, group, "attempts") >= attempts;
        json_decref(v);
        if (seen) {
            usleep(400 * 1000);
            return read_view(g);
        }
        usleep(100 * 1000);
    }
    fail_msg("the counts of group %u never reached %lld attempts", (unsigned)group, attempts);
    return NULL;
}

static void test_counts_read_back(void **state) {
    (void)state;
    for (unsigned s = 1; s <= 3; s++) assert_int_equal(activate(G_THREAT, s, 0, s), GRPC_STATUS_OK);
    int refused = 0;
    for (unsigned s = 10; s < 30; s++) refused += activate(G_THREAT, s, 7, 100 + s) != GRPC_STATUS_OK;
    assert_int_equal(refused, 20);
    char made_up[PK_TEXT_LEN + 1];
    uint8_t mid[32];
    rpc_result res;
    env_forge_key(G_MADE_UP, 1, made_up);
    env_machine(mid, 999);
    assert_int_not_equal(env_activate(&env, made_up, mid, sizeof mid, &res, NULL), GRPC_STATUS_OK);
    rpc_result_clear(&res);

    json_t *v = view_with(G_THREAT, 23);
    assert_int_equal(total(v, G_THREAT, "attempts"), 23);
    assert_int_equal(total(v, G_THREAT, "grants"), 3);
    long long ng = total(v, G_THREAT, "not_genuine"), rl = total(v, G_THREAT, "rate_limited");
    assert_int_equal(ng + rl, 20);
    assert_true(ng >= 1);
    assert_true(rl >= 1);
    /* The refusing address is the test's: 127.0.0.1, with every refusal. */
    json_t *top = json_object_get(v, "top_addresses");
    assert_true(json_array_size(top) >= 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(top, 0), "address")), "127.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(top, 0), "refusals")), 20);
    /* The rate of the minute with refusals is theirs over its attempts. */
    size_t i;
    json_t *pt;
    json_array_foreach(json_object_get(json_array_get(json_object_get(v, "groups"), 0), "series"), i, pt) {
        long long a = json_integer_value(json_object_get(pt, "attempts"));
        double want = a ? (double)json_integer_value(json_object_get(pt, "not_genuine")) / (double)a : 0.0;
        assert_true(json_real_value(json_object_get(pt, "not_genuine_rate")) - want < 1e-9);
    }
    json_decref(v);

    /* Nothing for the made-up group, and the keys expire (8 days). */
    redisReply *k = redisCommand(m, "KEYS threat:g:%u:*", (unsigned)G_MADE_UP);
    assert_int_equal(k->elements, 0);
    freeReplyObject(k);
    k = redisCommand(m, "KEYS threat:g:%u:*", (unsigned)G_THREAT);
    assert_true(k->elements >= 1);
    redisReply *ttl = redisCommand(m, "TTL %s", k->element[0]->str);
    assert_true(ttl->integer > 7 * 86400 && ttl->integer <= PA_THREAT_RETENTION_S);
    freeReplyObject(ttl);
    freeReplyObject(k);
    /* Every group when none is named. */
    v = read_view(NULL);
    assert_int_equal(json_array_size(json_object_get(v, "groups")), 2);
    json_decref(v);
}

/* A second machine on a one-machine key: refused, counted as machine limit. */
static void test_machine_limit(void **state) {
    (void)state;
    assert_int_equal(activate(G_ONE, 1, 0, 501), GRPC_STATUS_OK);
    assert_int_not_equal(activate(G_ONE, 1, 0, 502), GRPC_STATUS_OK);
    json_t *v = view_with(G_ONE, 2);
    assert_int_equal(total(v, G_ONE, "machine_limit"), 1);
    assert_int_equal(total(v, G_ONE, "grants"), 1);
    json_decref(v);
}

/* Bad queries are refused with the parameter's name. */
static void test_query_checks(void **state) {
    (void)state;
    threat_query q;
    char err[256];
    assert_int_equal(threat_query_parse(&q, "12,x", NULL, NULL, NULL, 100000, err, sizeof err), -1);
    assert_non_null(strstr(err, "\"group\""));
    assert_int_equal(threat_query_parse(&q, NULL, "5", "1", NULL, 100000, err, sizeof err), -1);
    assert_non_null(strstr(err, "\"from\""));
    assert_int_equal(threat_query_parse(&q, NULL, NULL, NULL, "90", 100000, err, sizeof err), -1);
    assert_non_null(strstr(err, "\"step\""));
    assert_int_equal(threat_query_parse(&q, NULL, "0", "864000", "3600", 864000, err, sizeof err), -1);
    assert_int_equal(threat_query_parse(&q, "7,8", NULL, "100000", NULL, 0, err, sizeof err), 0);
    assert_int_equal(q.n_groups, 2);
    assert_int_equal(q.from, 100000 - 3600);
    assert_int_equal(q.step, 60);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_machine_limit), /* first: the next one drains the address's bucket */
        cmocka_unit_test(test_counts_read_back),
        cmocka_unit_test(test_query_checks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
