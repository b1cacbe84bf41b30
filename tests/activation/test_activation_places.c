/* test_activation_places.c -- what happens to a key's places over time and
 * across failures: a call that fails after its place was written is safe to
 * retry (same place, same license id, not another use), a refusal for lack
 * of a place changes nothing, and places nothing depends on any more are
 * forgotten after the retention period (here seconds), through the
 * record's index or its expiry, never by scanning the record.
 *
 * Redis work is counted with INFO commandstats, read by a measuring user
 * added to this private Redis A only. */
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
#include "clock.h"
#include "redis_keys.h"

enum { G_ONE = 601, G_UNLIMITED = 602, G_LEASED = 603, G_SMALL = 604 };
enum { LEASED_MAX = 20 }; /* above policy.lua's SCAN_MAX: these keys are indexed */

static act_env env;
static redisContext *admin; /* INFO on Redis A */

static void tune_one(group_record *r) { r->policy.max_machines = 1; }
static void tune_unlimited(group_record *r) { r->policy.max_machines = 0; }
static void tune_leased(group_record *r) {
    r->policy.max_machines = LEASED_MAX;
    r->policy.lease_seconds = 1;
}
static void tune_small(group_record *r) {
    r->policy.max_machines = 2;
    r->policy.lease_seconds = 1;
}

static int setup(void **state) {
    if (env_start_stores(&env) != 0 || !(admin = env_measuring_connection(&env))) return -1;
    if (env_create_group(&env, G_ONE, tune_one) != 0 || env_create_group(&env, G_UNLIMITED, tune_unlimited) != 0 ||
        env_create_group(&env, G_LEASED, tune_leased) != 0 || env_create_group(&env, G_SMALL, tune_small) != 0)
        return -1;
    return 0;
}

static int teardown(void **state) {
    int st = env.server >= 0 ? env_stop_server(&env) : 0;
    if (admin) redisFree(admin);
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
        Activation__V1__License *l = env_open_answer(&env, a);
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
    assert_int_equal(env_restart_server(&env, flags), 0);
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

/* Calls of one Redis command so far (INFO commandstats). */
static long long calls_of(const char *name) {
    long long n = redis_fixture_command_calls(admin, name);
    assert_true(n >= 0);
    return n;
}

static long long integer(const char *fmt, uint32_t group, uint32_t serial) {
    redisReply *r = redisCommand(admin, fmt, group, serial);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}
#define PLACES(g, s) (integer("HLEN " PA_RKEY_RECORD_FMT, g, s) - 1)
#define INDEXED(g, s) integer("ZCARD " PA_RKEY_RECORD_INDEX_FMT, g, s)
#define RECORD_EXISTS(g, s) integer("EXISTS " PA_RKEY_RECORD_FMT, g, s)
#define RECORD_TTL_MS(g, s) integer("PTTL " PA_RKEY_RECORD_FMT, g, s)

static void key(uint32_t group, uint32_t serial, char out[PK_TEXT_LEN + 1]) {
    assert_int_equal(env_make_key(&env, group, serial, false, 0, out), 0);
}

static uint32_t activate_ok(const char *k, unsigned machine, char license_id[64]) {
    uint32_t count = 0;
    assert_int_equal(activate(k, machine, 5000, license_id, &count), GRPC_STATUS_OK);
    return count;
}

static grpc_status_code renew(const char *license_id, unsigned machine, char reason[32]) {
    uint8_t m[32], buf[512];
    env_machine(m, machine);
    EVP_PKEY *k = env_place_key(machine); /* binds the place at the first renewal */
    size_t len = env_license_request(license_id, m, k, PLACE_OP_RENEW, 0, buf, sizeof buf);
    EVP_PKEY_free(k);
    assert_true(len > 0);
    rpc_result res;
    grpc_status_code st = env_call(&env, PA_RPC_RENEW, buf, len, 5000, &res);
    if (reason) snprintf(reason, 32, "%s", res.reason);
    rpc_result_clear(&res);
    return st;
}

/* Sleeps until `s` seconds after t0 (monotonic). */
static void until(double t0, double s) {
    double left = t0 + s - pa_mono_s();
    if (left > 0) usleep((useconds_t)(left * 1e6));
}

/* One timeline, retention 4 s. Redis's clock counts whole seconds, so a
 * place idle for less than 3 s is surely kept and one idle for more than
 * 4 s surely forgotten, whatever the fraction of a second at the start; the
 * t=0 step may take up to a second (a loaded machine) and the timeline holds:
 *   t=0    unlimited key K1: machines 1-3; unlimited key K2: machine 1;
 *          leased keys (1 s lease, 20 places, indexed) K3: machines 1, 2
 *          and K5: machines 1-20; leased key K6 of 2 places (small, not
 *          indexed): machines 1, 2; one-machine permanent key K4: machine 1
 *   t=2.5  K1: machine 4; K5, full of lapsed places, takes machine 21 (they
 *          are reclaimed through the index), and K6 machine 3 (by reading
 *          its two places); K3's machine 1 renews: its lease lapsed but it
 *          is still remembered (LEASE_EXPIRED)
 *   t=5.2  K1: machine 5 finds machines 1-3 forgotten, 4 kept; K2 has
 *          expired as a whole; K3's lapsed places are forgotten; K4's
 *          permanent place is kept, with no expiry at all. */
static void test_idle_places_are_forgotten(void **state) {
    const char *flags[] = {"--place-retention-s", "4", NULL};
    assert_int_equal(env_restart_server(&env, flags), 0);
    char k1[PK_TEXT_LEN + 1], k2[PK_TEXT_LEN + 1], k3[PK_TEXT_LEN + 1], k4[PK_TEXT_LEN + 1], k5[PK_TEXT_LEN + 1],
        k6[PK_TEXT_LEN + 1];
    key(G_UNLIMITED, 1, k1);
    key(G_UNLIMITED, 2, k2);
    key(G_LEASED, 3, k3);
    key(G_ONE, 4, k4);
    key(G_LEASED, 5, k5);
    key(G_SMALL, 6, k6);
    char lic3[64];

    /* t=0 */
    double t0 = pa_mono_s();
    for (unsigned m = 1; m <= 3; m++) assert_int_equal(activate_ok(k1, m, NULL), m);
    activate_ok(k3, 1, lic3);
    activate_ok(k3, 2, NULL);
    for (unsigned m = 1; m <= LEASED_MAX; m++) activate_ok(k5, m, NULL);
    activate_ok(k6, 1, NULL);
    activate_ok(k6, 2, NULL);
    assert_int_equal(activate_ok(k2, 1, NULL), 1);
    assert_int_equal(activate_ok(k4, 1, NULL), 1);
    assert_true(pa_mono_s() - t0 < 1); /* the timeline's margin: see above */
    assert_int_equal(INDEXED(G_UNLIMITED, 1), 3);
    assert_true(RECORD_TTL_MS(G_UNLIMITED, 1) > 0 && RECORD_TTL_MS(G_UNLIMITED, 1) <= 4000);
    assert_int_equal(INDEXED(G_UNLIMITED, 2), 0); /* one place: no index, only an expiry */
    assert_true(RECORD_TTL_MS(G_UNLIMITED, 2) > 0 && RECORD_TTL_MS(G_UNLIMITED, 2) <= 4000);
    assert_int_equal(INDEXED(G_LEASED, 5), LEASED_MAX);
    assert_true(RECORD_TTL_MS(G_LEASED, 5) > 0 && RECORD_TTL_MS(G_LEASED, 5) <= 6000); /* lease + 4 s */
    assert_int_equal(INDEXED(G_SMALL, 6), 0);
    assert_true(RECORD_TTL_MS(G_SMALL, 6) > 0 && RECORD_TTL_MS(G_SMALL, 6) <= 6000);
    assert_int_equal(RECORD_TTL_MS(G_ONE, 4), -1);
    assert_int_equal(INDEXED(G_ONE, 4), 0);

    /* t=2.5 */
    until(t0, 2.5);
    assert_int_equal(activate_ok(k1, 4, NULL), 4);
    long long scans = calls_of("hgetall");
    assert_int_equal(activate_ok(k5, LEASED_MAX + 1, NULL), 1); /* every lapsed place reclaimed */
    assert_int_equal(calls_of("hgetall"), scans);               /* through the index, no scan */
    assert_int_equal(PLACES(G_LEASED, 5), 1);
    assert_int_equal(INDEXED(G_LEASED, 5), 0); /* down to one place: the index went with the others */
    assert_int_equal(activate_ok(k6, 3, NULL), 1);
    assert_int_equal(INDEXED(G_SMALL, 6), 0);
    char reason[32];
    assert_int_equal(renew(lic3, 1, reason), GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(reason, "LEASE_EXPIRED");

    /* t=5.2 */
    until(t0, 5.2);
    scans = calls_of("hgetall");
    assert_int_equal(activate_ok(k1, 5, NULL), 2); /* 4 and 5 */
    assert_int_equal(PLACES(G_UNLIMITED, 1), 2);
    assert_int_equal(INDEXED(G_UNLIMITED, 1), 2);
    assert_int_equal(RECORD_EXISTS(G_UNLIMITED, 2), 0);
    assert_int_equal(activate_ok(k3, 3, NULL), 1);
    assert_int_equal(calls_of("hgetall"), scans);
    assert_int_equal(renew(lic3, 1, NULL), GRPC_STATUS_NOT_FOUND); /* forgotten now */
    assert_int_equal(activate(k4, 2, 5000, NULL, NULL), GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(PLACES(G_ONE, 4), 1);
    assert_int_equal(RECORD_TTL_MS(G_ONE, 4), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after_lost_reply_is_idempotent),
        cmocka_unit_test(test_idle_places_are_forgotten),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
