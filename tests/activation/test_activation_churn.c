/* test_activation_churn.c -- seat churn and self-service (docs/machines.md
 * "Seat churn", "Self-service: listing and releasing machines") against the
 * real server and redis-server:
 *   - a key's deactivations are limited per period: the one over budget is
 *     refused (RESOURCE_EXHAUSTED, DEACTIVATION_LIMIT, retry-after, the
 *     time in the message), keeps the place, and is allowed once the
 *     period ended;
 *   - ListMachines lists a key's places oldest first, marks the caller's,
 *     and holds no machine id nor anything derived from one but the handle,
 *     which is SHA-1("pa-release-v1" 0 serial 0 field);
 *   - ReleaseMachine frees a place (a new machine then activates), logs,
 *     counts, writes the machine log; an unknown handle is NOT_FOUND; the
 *     releases are limited per period (TRANSFER_LIMIT);
 *   - a key that is not genuine (or of a made-up group) gets
 *     PERMISSION_DENIED and costs the address what Activate charges;
 *   - a revoked key is refused (KEY_REVOKED), a volume key with
 *     ORDER_MANAGED. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "act_env.h"
#include "hex.h"
#include "order_env.h"
#include "redis_keys.h"
#include "validate.h"
#include "volume_calls.h"

enum {
    G_CHURN = 4701, /* 2 deactivations per 4 s */
    G_FULL = 4702,  /* 2 machines, 2 releases per hour */
    G_VOL = 4703,   /* a volume order's group */
    G_NONE = 4799,  /* never created */
};
#define FAILURE_COST 50.0 /* --rate-failure-cost */

static act_env env;
static order_env oe;
static redisContext *measure; /* reads the address bucket */

static void tune_churn(group_record *r) {
    r->policy.max_machines = 3;
    r->policy.max_deactivations = 2;
    r->policy.churn_period_seconds = 4;
}
static void tune_full(group_record *r) {
    r->policy.max_machines = 2;
    r->policy.max_transfers = 2;
    r->policy.churn_period_seconds = 3600;
}
static void tune_volume(group_record *r) { r->channel = GROUP_CHANNEL_VOLUME; }

static int setup(void **state) {
    if (env_start_stores(&env) != 0 || order_env_init(&oe, &env) != 0 ||
        env_create_group(&env, G_CHURN, tune_churn) != 0 || env_create_group(&env, G_FULL, tune_full) != 0 ||
        env_create_group(&env, G_VOL, tune_volume) != 0)
        return -1;
    volume_calls_init(&env, &oe);
    /* Tokens barely refill, so a test can read what each call costs. */
    const char *extra[] = {"--rate-address-per-s",
                           "0.001",
                           "--rate-address-burst",
                           "1000000",
                           "--rate-failure-cost",
                           "50",
                           "--order-public-key",
                           oe.vendor_pub,
                           "--group-refresh-ms",
                           "300",
                           NULL};
    if (env_start_server(&env, extra) != 0) return -1;
    measure = env_measuring_connection(&env);
    return measure ? 0 : -1;
}

static int teardown(void **state) {
    if (measure) redisFree(measure);
    int st = env_stop_server(&env);
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

static void key_of(uint32_t group, uint32_t serial, char key[PK_TEXT_LEN + 1]) {
    assert_int_equal(env_make_key(&env, group, serial, false, 0, key), 0);
}

/* Activates machine m (place key m); its license id into lid (may be NULL). */
static grpc_status_code activate_machine(const char *key, unsigned m, char lid[LICENSE_ID_LEN + 1]) {
    grant g = activate(key, m);
    grpc_status_code st = g.status;
    if (lid && st == GRPC_STATUS_OK) {
        assert_int_equal(strlen(g.license_id), LICENSE_ID_LEN);
        memcpy(lid, g.license_id, LICENSE_ID_LEN + 1);
    }
    grant_free(&g);
    return st;
}

/* Deactivates machine m's license (place key m); `res` keeps the answer. */
static grpc_status_code deactivate(const char *lid, unsigned m, rpc_result *res) {
    uint8_t id[32], buf[512];
    env_machine(id, m);
    EVP_PKEY *k = env_place_key(m);
    size_t len = env_license_request(lid, id, k, PLACE_OP_DEACTIVATE, 0, buf, sizeof buf);
    EVP_PKEY_free(k);
    assert_true(len > 0);
    return env_call(&env, PA_RPC_DEACTIVATE, buf, len, 5000, res);
}

/* ListMachines for `key`, as machine m (0: no machine id). */
static grpc_status_code list(const char *key, unsigned m, rpc_result *res, Activation__V1__ListMachinesResponse **out) {
    uint8_t id[32], buf[256];
    env_machine(id, m);
    Activation__V1__ListMachinesRequest rq = ACTIVATION__V1__LIST_MACHINES_REQUEST__INIT;
    rq.product_key = (char *)key;
    if (m) rq.machine_id = (ProtobufCBinaryData){.len = sizeof id, .data = id};
    size_t len = activation__v1__list_machines_request__pack(&rq, buf);
    grpc_status_code st = env_call(&env, PA_RPC_LIST_MACHINES, buf, len, 5000, res);
    if (out)
        *out = st == GRPC_STATUS_OK ? activation__v1__list_machines_response__unpack(NULL, res->body_len, res->body)
                                    : NULL;
    if (out && st == GRPC_STATUS_OK) assert_non_null(*out);
    return st;
}

static grpc_status_code release(const char *key, const char *handle, rpc_result *res,
                                Activation__V1__ReleaseMachineResponse **out) {
    uint8_t buf[256];
    Activation__V1__ReleaseMachineRequest rq = ACTIVATION__V1__RELEASE_MACHINE_REQUEST__INIT;
    rq.product_key = (char *)key;
    rq.handle = (char *)handle;
    size_t len = activation__v1__release_machine_request__pack(&rq, buf);
    grpc_status_code st = env_call(&env, PA_RPC_RELEASE_MACHINE, buf, len, 5000, res);
    if (out)
        *out = st == GRPC_STATUS_OK ? activation__v1__release_machine_response__unpack(NULL, res->body_len, res->body)
                                    : NULL;
    return st;
}

/* The place field of machine m: the first 16 bytes of SHA-256(machine id). */
static void field_of(unsigned m, uint8_t field[16]) {
    uint8_t id[32], d[32];
    env_machine(id, m);
    SHA256(id, sizeof id, d);
    memcpy(field, d, 16);
}

/* The handle machine m's place on `serial` must have. */
static void handle_of(uint32_t serial, unsigned m, char out[17]) {
    uint8_t msg[64], field[16], d[SHA_DIGEST_LENGTH];
    int n = snprintf((char *)msg, sizeof msg, "pa-release-v1%c%u%c", 0, serial, 0);
    field_of(m, field);
    memcpy(msg + n, field, 16);
    SHA1(msg, (size_t)n + 16, d);
    pa_hex_encode(d, 8, out);
}

static bool place_held(uint32_t group, uint32_t serial, unsigned m) {
    uint8_t field[16];
    field_of(m, field);
    char record[PA_RKEY_MAX];
    pa_rkey_record(record, sizeof record, group, serial);
    redisReply *r = redisCommand(env.ks_a, "HEXISTS %s %b", record, field, (size_t)16);
    assert_non_null(r);
    bool held = r->integer == 1;
    freeReplyObject(r);
    return held;
}

/* Tokens left in the test's address bucket (a full bucket when absent). */
static double tokens(void) {
    char bucket[PA_RKEY_MAX];
    pa_rkey_address_bucket(bucket, sizeof bucket, "127.0.0.1");
    redisReply *r = redisCommand(measure, "GET %s", bucket);
    assert_non_null(r);
    double level = 1000000;
    if (r->type == REDIS_REPLY_STRING) {
        assert_int_equal(r->len, 16);
        memcpy(&level, r->str, sizeof level);
    }
    freeReplyObject(r);
    return level;
}

static void test_deactivation_limit(void **state) {
    char key[PK_TEXT_LEN + 1], lid[LICENSE_ID_LEN + 1];
    key_of(G_CHURN, 1, key);
    rpc_result res;
    /* Two deactivations are within the budget. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(activate_machine(key, 1, lid), GRPC_STATUS_OK);
        assert_int_equal(deactivate(lid, 1, &res), GRPC_STATUS_OK);
        rpc_result_clear(&res);
    }
    /* The third is refused: the place stays, the answer says when. */
    assert_int_equal(activate_machine(key, 1, lid), GRPC_STATUS_OK);
    double before = env_metric(&env, "pa_churn_refused_total{limit=\"deactivation\"}");
    assert_int_equal(deactivate(lid, 1, &res), GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_string_equal(res.reason, "DEACTIVATION_LIMIT");
    assert_true(res.retry_after_s >= 1 && res.retry_after_s <= 4);
    assert_non_null(strstr(res.message, "next deactivation allowed at 20"));
    assert_true(place_held(G_CHURN, 1, 1));
    assert_true(env_metric(&env, "pa_churn_refused_total{limit=\"deactivation\"}") == before + 1);
    /* Counters are no place: a third machine still fits (3 places). */
    assert_int_equal(activate_machine(key, 2, NULL), GRPC_STATUS_OK);
    assert_int_equal(activate_machine(key, 3, NULL), GRPC_STATUS_OK);
    assert_int_equal(activate_machine(key, 4, NULL), GRPC_STATUS_RESOURCE_EXHAUSTED);
    int wait = res.retry_after_s;
    rpc_result_clear(&res);

    /* Once the period ended, a new one begins. */
    usleep((useconds_t)wait * 1000000 + 200000);
    assert_int_equal(deactivate(lid, 1, &res), GRPC_STATUS_OK);
    rpc_result_clear(&res);
    assert_false(place_held(G_CHURN, 1, 1));
}

/* No byte string of the answer may be a machine id or a place field. */
static void assert_no_machine_bytes(const rpc_result *res, unsigned first, unsigned last) {
    for (unsigned m = first; m <= last; m++) {
        uint8_t id[32], field[16];
        env_machine(id, m);
        field_of(m, field);
        assert_null(memmem(res->body, res->body_len, id, sizeof id));
        assert_null(memmem(res->body, res->body_len, field, 8));
        assert_null(memmem(res->body, res->body_len, id, 8));
    }
}

static void test_list_and_release(void **state) {
    char key[PK_TEXT_LEN + 1], h1[17], h2[17];
    const uint32_t serial = 10;
    key_of(G_FULL, serial, key);
    handle_of(serial, 11, h1);
    handle_of(serial, 12, h2);
    assert_int_equal(activate_machine(key, 11, NULL), GRPC_STATUS_OK);
    sleep(1); /* machine 11 is seen first */
    assert_int_equal(activate_machine(key, 12, NULL), GRPC_STATUS_OK);
    assert_int_equal(activate_machine(key, 13, NULL), GRPC_STATUS_RESOURCE_EXHAUSTED);

    /* The new machine lists the key: two places, none of them its own. */
    rpc_result res;
    Activation__V1__ListMachinesResponse *l;
    assert_int_equal(list(key, 13, &res, &l), GRPC_STATUS_OK);
    assert_no_machine_bytes(&res, 11, 13);
    rpc_result_clear(&res);
    assert_int_equal(l->n_machines, 2);
    assert_int_equal(l->max_machines, 2);
    assert_int_equal(l->releases_left, 2);
    assert_int_equal(l->next_release_at, 0);
    int64_t now = (int64_t)time(NULL);
    assert_string_equal(l->machines[0]->handle, h1);
    assert_string_equal(l->machines[1]->handle, h2);
    assert_true(l->machines[0]->last_seen <= l->machines[1]->last_seen);
    for (size_t i = 0; i < 2; i++) {
        assert_false(l->machines[i]->this_machine);
        assert_true(l->machines[i]->last_seen > now - 60 && l->machines[i]->last_seen <= now + 5);
        assert_int_equal(l->machines[i]->expires_at, 0);
    }
    assert_string_equal(l->machines[0]->hostname, "host-11");
    assert_string_equal(l->machines[1]->hostname, "host-12");
    activation__v1__list_machines_response__free_unpacked(l, NULL);

    /* Machine 12 sees its own entry marked. */
    assert_int_equal(list(key, 12, &res, &l), GRPC_STATUS_OK);
    rpc_result_clear(&res);
    assert_false(l->machines[0]->this_machine);
    assert_true(l->machines[1]->this_machine);
    activation__v1__list_machines_response__free_unpacked(l, NULL);

    /* Release the dead machine 11: logged, counted, in the machine log. */
    double released = env_metric(&env, "pa_releases_total");
    Activation__V1__ReleaseMachineResponse *r;
    assert_int_equal(release(key, h1, &res, &r), GRPC_STATUS_OK);
    rpc_result_clear(&res);
    assert_int_equal(r->activation_count, 1);
    assert_int_equal(r->releases_left, 1);
    activation__v1__release_machine_response__free_unpacked(r, NULL);
    assert_false(place_held(G_FULL, serial, 11));
    assert_true(env_metric(&env, "pa_releases_total") == released + 1);
    char *log = env_read_log(&env);
    assert_non_null(strstr(log, "release.done"));
    assert_non_null(strstr(log, h1));
    assert_null(strstr(log, key));
    free(log);
    char mlog[PA_RKEY_MAX];
    pa_rkey_group_mlog(mlog, sizeof mlog, G_FULL);
    redisReply *x = redisCommand(measure, "XREVRANGE %s + - COUNT 1", mlog);
    assert_non_null(x);
    assert_int_equal(x->type, REDIS_REPLY_ARRAY);
    assert_int_equal(x->elements, 1);
    const redisReply *fields = x->element[0]->element[1];
    assert_string_equal(fields->element[0]->str, "op");
    assert_string_equal(fields->element[1]->str, "d");
    freeReplyObject(x);

    /* The freed place takes the new machine; the old handle names nothing. */
    assert_int_equal(activate_machine(key, 13, NULL), GRPC_STATUS_OK);
    assert_int_equal(release(key, h1, &res, NULL), GRPC_STATUS_NOT_FOUND);
    rpc_result_clear(&res);
    assert_int_equal(release(key, "0123456789abcdef", &res, NULL), GRPC_STATUS_NOT_FOUND);
    rpc_result_clear(&res);
    assert_int_equal(release(key, "not-a-handle", &res, NULL), GRPC_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(res.message, "handle"));
    rpc_result_clear(&res);
}

static void test_transfer_limit(void **state) {
    char key[PK_TEXT_LEN + 1], h[17];
    const uint32_t serial = 20;
    key_of(G_FULL, serial, key);
    rpc_result res;
    for (unsigned m = 21; m <= 22; m++) assert_int_equal(activate_machine(key, m, NULL), GRPC_STATUS_OK);
    /* Two releases are within the budget; each makes room for one more. */
    for (unsigned m = 21; m <= 22; m++) {
        handle_of(serial, m, h);
        assert_int_equal(release(key, h, &res, NULL), GRPC_STATUS_OK);
        rpc_result_clear(&res);
        assert_int_equal(activate_machine(key, m + 2, NULL), GRPC_STATUS_OK);
    }
    double before = env_metric(&env, "pa_churn_refused_total{limit=\"transfer\"}");
    handle_of(serial, 23, h);
    assert_int_equal(release(key, h, &res, NULL), GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_string_equal(res.reason, "TRANSFER_LIMIT");
    assert_true(res.retry_after_s > 3500 && res.retry_after_s <= 3600);
    assert_non_null(strstr(res.message, "next release allowed at 20"));
    rpc_result_clear(&res);
    assert_true(place_held(G_FULL, serial, 23));
    assert_true(env_metric(&env, "pa_churn_refused_total{limit=\"transfer\"}") == before + 1);

    Activation__V1__ListMachinesResponse *l;
    assert_int_equal(list(key, 0, &res, &l), GRPC_STATUS_OK);
    rpc_result_clear(&res);
    assert_int_equal(l->n_machines, 2);
    assert_int_equal(l->releases_left, 0);
    assert_true(l->next_release_at > (int64_t)time(NULL) + 3500);
    activation__v1__list_machines_response__free_unpacked(l, NULL);
}

/* A key that is not genuine costs what it costs on Activate, and reads the same. */
static void test_not_genuine(void **state) {
    char good[PK_TEXT_LEN + 1], bad[PK_TEXT_LEN + 1], none[PK_TEXT_LEN + 1];
    key_of(G_FULL, 30, good);
    assert_int_equal(env_make_key(&env, G_FULL, 30, false, 1, bad), 0);
    env_forge_key(G_NONE, 30, none);
    rpc_result res;

    double t0 = tokens();
    assert_int_equal(list(good, 0, &res, NULL), GRPC_STATUS_OK);
    rpc_result_clear(&res);
    double t1 = tokens();
    assert_true(t0 - t1 > 0.9 && t0 - t1 < 1.1); /* one token */

    assert_int_equal(activate_machine(bad, 31, NULL), GRPC_STATUS_PERMISSION_DENIED);
    double t2 = tokens();
    double activate_cost = t1 - t2;
    assert_true(activate_cost > FAILURE_COST - 0.5 && activate_cost < FAILURE_COST + 0.5);

    const char *keys[] = {bad, none};
    for (size_t i = 0; i < 2; i++) {
        double a = tokens();
        assert_int_equal(list(keys[i], 31, &res, NULL), GRPC_STATUS_PERMISSION_DENIED);
        assert_string_equal(res.message, "the product key is not genuine");
        rpc_result_clear(&res);
        double b = tokens();
        assert_true(a - b > activate_cost - 0.5 && a - b < activate_cost + 0.5);
        assert_int_equal(release(keys[i], "0123456789abcdef", &res, NULL), GRPC_STATUS_PERMISSION_DENIED);
        rpc_result_clear(&res);
        double c = tokens();
        assert_true(b - c > activate_cost - 0.5 && b - c < activate_cost + 0.5);
    }
}

/* A revoked key is refused as on Activate. */
static void test_revoked_key(void **state) {
    char key[PK_TEXT_LEN + 1], revoked[PA_RKEY_MAX];
    key_of(G_FULL, 40, key);
    assert_int_equal(activate_machine(key, 41, NULL), GRPC_STATUS_OK);
    pa_rkey_revoked(revoked, sizeof revoked, G_FULL);
    redisReply *r = redisCommand(measure, "SADD %s 40", revoked);
    assert_non_null(r);
    freeReplyObject(r);
    rpc_result res;
    char h[17];
    handle_of(40, 41, h);
    assert_int_equal(list(key, 41, &res, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(res.reason, "KEY_REVOKED");
    rpc_result_clear(&res);
    assert_int_equal(release(key, h, &res, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(res.reason, "KEY_REVOKED");
    rpc_result_clear(&res);
    assert_true(place_held(G_FULL, 40, 41));
}

static void test_volume_key(void **state) {
    order("47030001", G_VOL, "permanent", "5", NULL);
    char key[PK_TEXT_LEN + 1];
    key_of(G_VOL, 1, key);
    rpc_result res;
    assert_int_equal(list(key, 1, &res, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(res.reason, "ORDER_MANAGED");
    rpc_result_clear(&res);
    assert_int_equal(release(key, "0123456789abcdef", &res, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(res.reason, "ORDER_MANAGED");
    rpc_result_clear(&res);
    /* ... and a volume key that is not genuine is just that. */
    assert_int_equal(env_make_key(&env, G_VOL, 1, false, 1, key), 0);
    assert_int_equal(list(key, 1, &res, NULL), GRPC_STATUS_PERMISSION_DENIED);
    rpc_result_clear(&res);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deactivation_limit), cmocka_unit_test(test_list_and_release),
        cmocka_unit_test(test_transfer_limit),     cmocka_unit_test(test_not_genuine),
        cmocka_unit_test(test_revoked_key),        cmocka_unit_test(test_volume_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
