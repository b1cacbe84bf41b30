/* test_activation_api.c -- the activation server over gRPC, against a real
 * redis-server and the real binary: every success path and every error of
 * DESIGN.md §4 that does not need a fault, plus health, metrics, IPv6, the
 * offline-audit outbox and the logs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "act_env.h"
#include "grpc/health/v1/health.pb-c.h"
#include "redis_keys.h"

enum {
    G_BASIC = 4365,   /* 3 machines per key, permanent */
    G_MAX2 = 101,     /* 2 machines per key */
    G_ONE = 102,      /* 1 machine per key */
    G_LEASE = 103,    /* 60 s lease, renew after 30 s */
    G_SHORT = 104,    /* 2 s lease, 1 machine */
    G_AUDIT = 106,    /* every activation sampled for audit */
    G_FIRST = 107,    /* only a key's first activation audited */
    G_REFRESH = 108,  /* record changed while the server runs */
    G_ABSENT = 999,   /* never created */
};

static act_env env;
static int port6;     /* the server's IPv6 listener */

static void tune_basic(group_record *r) { r->policy.max_machines = 3; }
static void tune_max2(group_record *r) { r->policy.max_machines = 2; }
static void tune_one(group_record *r) { r->policy.max_machines = 1; }
static void tune_lease(group_record *r) {
    r->policy.max_machines = 5;
    r->policy.lease_seconds = 60;
    r->policy.renew_seconds = 30;
    r->channel = GROUP_CHANNEL_VOLUME;
}
static void tune_short(group_record *r) {
    r->policy.max_machines = 1;
    r->policy.lease_seconds = 2;
    r->policy.renew_seconds = 1;
}
static void tune_audit(group_record *r) {
    r->policy.max_machines = 10;
    r->policy.audit_rate_ppm = 1000000;
}
static void tune_first(group_record *r) {
    r->policy.max_machines = 10;
    r->policy.audit_rate_ppm = 0;
    r->policy.audit_first_activation = true;
}

static int setup(void **state) {
    if (env_start_stores(&env) != 0) return -1;
    struct { uint32_t id; void (*tune)(group_record *); } groups[] = {
        {G_BASIC, tune_basic}, {G_MAX2, tune_max2}, {G_ONE, tune_one},
        {G_LEASE, tune_lease}, {G_SHORT, tune_short}, {G_AUDIT, tune_audit},
        {G_FIRST, tune_first}, {G_REFRESH, tune_basic},
    };
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++)
        if (env_create_group(&env, groups[i].id, groups[i].tune) != 0) return -1;
    port6 = fixture_free_port();
    char listen6[64], audit_target[64];
    snprintf(listen6, sizeof listen6, "[::1]:%d", port6);
    /* Auditing on, against an audit server that is not there: sampled
     * activations stay in the outbox where the tests below read them (the
     * audit path end to end is tests/audit/test_audit_e2e.c). */
    snprintf(audit_target, sizeof audit_target, "127.0.0.1:%d", fixture_free_port());
    if (env_make_certs(&env) != 0) return -1;
    const char *const *audit = env_audit_flags(&env, audit_target);
    const char *extra[32] = {"--listen", listen6, "--rate-address-per-s", "100000",
                             "--rate-address-burst", "100000", "--audit-flush-ms", "0"};
    size_t n = 8;
    for (size_t i = 0; audit[i]; i++) extra[n++] = audit[i];
    extra[n] = NULL;
    return env_start_server(&env, extra);
}

static int teardown(void **state) {
    int st = env_stop_server(&env);
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

static void key_for(uint32_t group, uint32_t serial, char key[PK_TEXT_LEN + 1]) {
    assert_int_equal(env_make_key(&env, group, serial, false, 0, key), 0);
}

/* Activates and returns the decoded response; fails the test unless OK. */
static Activation__V1__ActivateResponse *activate_ok(const char *key, unsigned machine_no) {
    uint8_t m[32];
    env_machine(m, machine_no);
    rpc_result res;
    Activation__V1__ActivateResponse *resp;
    grpc_status_code st = env_activate(&env, key, m, sizeof m, &res, &resp);
    if (st != GRPC_STATUS_OK) fprintf(stderr, "activate: %d %s\n", st, res.message);
    assert_int_equal(st, GRPC_STATUS_OK);
    assert_non_null(resp);
    rpc_result_clear(&res);
    return resp;
}

/* Activates expecting `code`; returns the message (static). */
static const char *activate_fails(const char *key, const uint8_t *m, size_t mlen,
                                  grpc_status_code code, int *retry_after) {
    static char msg[256];
    rpc_result res;
    grpc_status_code st = env_activate(&env, key, m, mlen, &res, NULL);
    if (st != code) fprintf(stderr, "expected %d, got %d: %s\n", code, st, res.message);
    assert_int_equal(st, code);
    snprintf(msg, sizeof msg, "%s", res.message);
    if (retry_after) *retry_after = res.retry_after_s;
    rpc_result_clear(&res);
    return msg;
}

static Activation__V1__License *open_license(const Activation__V1__ActivateResponse *r) {
    Activation__V1__License *l = env_open_answer(&env, r);
    assert_non_null(l);
    return l;
}

/* Renew or Deactivate by license id, proven with machine_no's place key
 * (env_place_key; the first proven call binds a place activated without
 * one); returns the status, *res filled. An id that cannot be signed goes
 * without a proof (the server refuses it before looking at one). */
static grpc_status_code license_call(const char *path, const char *license_id, unsigned machine_no,
                                     rpc_result *res) {
    uint8_t m[32], buf[512];
    env_machine(m, machine_no);
    EVP_PKEY *k = env_place_key(machine_no);
    assert_non_null(k);
    place_op op = strcmp(path, PA_RPC_RENEW) == 0 ? PLACE_OP_RENEW : PLACE_OP_DEACTIVATE;
    size_t len = env_license_request(license_id, m, k, op, 0, buf, sizeof buf);
    if (len == 0) len = env_license_request(license_id, m, NULL, op, 0, buf, sizeof buf);
    EVP_PKEY_free(k);
    return env_call(&env, path, buf, len, 5000, res);
}

static void test_activate_grants_signed_license(void **state) {
    char key[PK_TEXT_LEN + 1];
    key_for(G_BASIC, 11, key);
    time_t before = time(NULL);
    Activation__V1__ActivateResponse *r = activate_ok(key, 1);
    assert_int_equal(r->activation_count, 1);
    assert_int_equal(r->renew_after, 0);
    assert_int_equal(r->expires_at, 0);
    assert_int_equal(r->signature.len, 64);
    Activation__V1__License *l = open_license(r);
    uint8_t m[32];
    env_machine(m, 1);
    assert_int_equal(l->format_version, 1);
    assert_string_equal(l->product, "Demo Office");
    assert_string_equal(l->edition, "Professional");
    assert_int_equal(l->channel, ACTIVATION__V1__CHANNEL__CHANNEL_RETAIL);
    assert_int_equal(l->n_features, 2);
    assert_string_equal(l->features[0], "editor");
    assert_string_equal(l->features[1], "spreadsheet");
    assert_int_equal(l->machine_id.len, 32);
    assert_memory_equal(l->machine_id.data, m, 32);
    assert_int_equal(l->key_group, G_BASIC);
    assert_int_equal(l->key_serial, 11);
    assert_true(l->issued_at >= before - 1 && l->issued_at <= time(NULL) + 1);
    assert_string_equal(l->signing_key_id, r->key_id);
    assert_int_equal(strlen(l->license_id), 32);
    assert_memory_equal(l->license_id, "0000110d0000000b", 16);   /* group 4365, serial 11 */
    activation__v1__license__free_unpacked(l, NULL);
    activation__v1__activate_response__free_unpacked(r, NULL);
}

static void test_reactivation_keeps_place(void **state) {
    char key[PK_TEXT_LEN + 1];
    key_for(G_BASIC, 12, key);
    Activation__V1__ActivateResponse *a = activate_ok(key, 7);
    Activation__V1__ActivateResponse *b = activate_ok(key, 7);   /* e.g. after a reinstall */
    assert_int_equal(a->activation_count, 1);
    assert_int_equal(b->activation_count, 1);
    Activation__V1__License *la = open_license(a), *lb = open_license(b);
    assert_string_equal(la->license_id, lb->license_id);
    activation__v1__license__free_unpacked(la, NULL);
    activation__v1__license__free_unpacked(lb, NULL);
    activation__v1__activate_response__free_unpacked(a, NULL);
    activation__v1__activate_response__free_unpacked(b, NULL);
    /* The key's record counts one use: activating again is not another. */
    redisReply *r = redisCommand(env.ks_a, "HGET " PA_RKEY_RECORD_FMT " n", G_BASIC, 12);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "1");
    freeReplyObject(r);
}

static void test_max_machines(void **state) {
    char key[PK_TEXT_LEN + 1];
    key_for(G_MAX2, 1, key);
    Activation__V1__ActivateResponse *a = activate_ok(key, 1), *b = activate_ok(key, 2);
    assert_int_equal(a->activation_count, 1);
    assert_int_equal(b->activation_count, 2);
    uint8_t m3[32];
    env_machine(m3, 3);
    const char *msg = activate_fails(key, m3, 32, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL);
    assert_non_null(strstr(msg, "maximum number of machines (2)"));
    /* A machine that holds a place still re-activates. */
    Activation__V1__ActivateResponse *again = activate_ok(key, 1);
    assert_int_equal(again->activation_count, 2);
    activation__v1__activate_response__free_unpacked(a, NULL);
    activation__v1__activate_response__free_unpacked(b, NULL);
    activation__v1__activate_response__free_unpacked(again, NULL);
}

static void test_deactivate_then_activate_elsewhere(void **state) {
    char key[PK_TEXT_LEN + 1];
    key_for(G_ONE, 5, key);
    Activation__V1__ActivateResponse *a = activate_ok(key, 10);
    Activation__V1__License *la = open_license(a);
    uint8_t m11[32];
    env_machine(m11, 11);
    activate_fails(key, m11, 32, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL);

    rpc_result res;
    /* Another machine cannot give up machine 10's place. */
    assert_int_equal(license_call(PA_RPC_DEACTIVATE, la->license_id, 11, &res), GRPC_STATUS_NOT_FOUND);
    rpc_result_clear(&res);
    /* Nor can a guessed license id (right group and serial, wrong random part). */
    char guessed[33];
    snprintf(guessed, sizeof guessed, "%.16s%016x", la->license_id, 0x1234);
    assert_int_equal(license_call(PA_RPC_DEACTIVATE, guessed, 10, &res), GRPC_STATUS_NOT_FOUND);
    rpc_result_clear(&res);

    assert_int_equal(license_call(PA_RPC_DEACTIVATE, la->license_id, 10, &res), GRPC_STATUS_OK);
    Activation__V1__DeactivateResponse *d =
        activation__v1__deactivate_response__unpack(NULL, res.body_len, res.body);
    assert_non_null(d);
    assert_int_equal(d->activation_count, 0);
    activation__v1__deactivate_response__free_unpacked(d, NULL);
    rpc_result_clear(&res);
    /* Twice is NOT_FOUND: the place is gone. */
    assert_int_equal(license_call(PA_RPC_DEACTIVATE, la->license_id, 10, &res), GRPC_STATUS_NOT_FOUND);
    rpc_result_clear(&res);

    Activation__V1__ActivateResponse *b = activate_ok(key, 11);
    assert_int_equal(b->activation_count, 1);
    activation__v1__license__free_unpacked(la, NULL);
    activation__v1__activate_response__free_unpacked(a, NULL);
    activation__v1__activate_response__free_unpacked(b, NULL);
}

static void test_renew_extends_lease(void **state) {
    char key[PK_TEXT_LEN + 1];
    key_for(G_LEASE, 3, key);
    Activation__V1__ActivateResponse *a = activate_ok(key, 20);
    Activation__V1__License *la = open_license(a);
    assert_int_equal(la->channel, ACTIVATION__V1__CHANNEL__CHANNEL_VOLUME);
    assert_int_equal(la->expires_at, la->issued_at + 60);
    assert_int_equal(la->renew_after, la->issued_at + 30);
    assert_int_equal(a->expires_at, la->expires_at);
    assert_int_equal(a->renew_after, la->renew_after);
    sleep(1);

    rpc_result res;
    assert_int_equal(license_call(PA_RPC_RENEW, la->license_id, 20, &res), GRPC_STATUS_OK);
    Activation__V1__RenewResponse *r =
        activation__v1__renew_response__unpack(NULL, res.body_len, res.body);
    assert_non_null(r);
    Activation__V1__License *lr = env_open_answer(&env, r);
    assert_non_null(lr);
    assert_string_equal(lr->license_id, la->license_id);
    assert_true(lr->expires_at > la->expires_at);
    assert_int_equal(lr->expires_at, lr->issued_at + 60);
    assert_int_equal(r->activation_count, 1);
    activation__v1__license__free_unpacked(lr, NULL);
    activation__v1__renew_response__free_unpacked(r, NULL);
    rpc_result_clear(&res);

    /* Renewal needs the machine that holds the place. */
    assert_int_equal(license_call(PA_RPC_RENEW, la->license_id, 21, &res), GRPC_STATUS_NOT_FOUND);
    rpc_result_clear(&res);
    activation__v1__license__free_unpacked(la, NULL);
    activation__v1__activate_response__free_unpacked(a, NULL);
}

static void test_lease_expiry(void **state) {
    char key[PK_TEXT_LEN + 1], key2[PK_TEXT_LEN + 1];
    key_for(G_SHORT, 1, key);
    Activation__V1__ActivateResponse *a = activate_ok(key, 30);
    Activation__V1__License *la = open_license(a);
    uint8_t m31[32];
    env_machine(m31, 31);
    activate_fails(key, m31, 32, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL);   /* place taken */
    /* A second key whose lease lapses too, but which is also revoked. */
    key_for(G_SHORT, 2, key2);
    Activation__V1__ActivateResponse *a2 = activate_ok(key2, 32);
    Activation__V1__License *la2 = open_license(a2);
    redisReply *x = redisCommand(env.ks_a, "SADD {g:%u}:revoked 2", G_SHORT);
    assert_non_null(x);
    freeReplyObject(x);
    sleep(3); /* the 2 s leases lapse */
    rpc_result res;
    assert_int_equal(license_call(PA_RPC_RENEW, la->license_id, 30, &res), GRPC_STATUS_FAILED_PRECONDITION);
    assert_non_null(strstr(res.message, "expired"));
    /* The wire tells a lapsed lease (activate again) from a revoked key. */
    assert_string_equal(res.reason, "LEASE_EXPIRED");
    rpc_result_clear(&res);
    /* Revoked and lapsed: revocation wins, activating again would not help. */
    assert_int_equal(license_call(PA_RPC_RENEW, la2->license_id, 32, &res), GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(res.reason, "KEY_REVOKED");
    rpc_result_clear(&res);
    activation__v1__license__free_unpacked(la2, NULL);
    activation__v1__activate_response__free_unpacked(a2, NULL);
    /* The lapsed place is reclaimed for another machine. */
    Activation__V1__ActivateResponse *b = activate_ok(key, 31);
    assert_int_equal(b->activation_count, 1);
    activation__v1__license__free_unpacked(la, NULL);
    activation__v1__activate_response__free_unpacked(a, NULL);
    activation__v1__activate_response__free_unpacked(b, NULL);
}

static void test_revoked_key(void **state) {
    char key[PK_TEXT_LEN + 1];
    key_for(G_LEASE, 9, key);
    Activation__V1__ActivateResponse *a = activate_ok(key, 40);
    Activation__V1__License *la = open_license(a);
    redisReply *r = redisCommand(env.ks_a, "SADD " PA_RKEY_REVOKED_FMT " 9", G_LEASE);
    assert_non_null(r);
    freeReplyObject(r);
    uint8_t m[32];
    env_machine(m, 41);
    rpc_result res;
    assert_int_equal(env_activate(&env, key, m, sizeof m, &res, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    assert_non_null(strstr(res.message, "revoked"));
    assert_string_equal(res.reason, "KEY_REVOKED");
    rpc_result_clear(&res);
    assert_int_equal(license_call(PA_RPC_RENEW, la->license_id, 40, &res), GRPC_STATUS_FAILED_PRECONDITION);
    assert_non_null(strstr(res.message, "revoked"));
    assert_string_equal(res.reason, "KEY_REVOKED");
    rpc_result_clear(&res);
    /* Other refusals carry no reason: the status code says it all. */
    assert_int_equal(license_call(PA_RPC_RENEW, la->license_id, 41, &res), GRPC_STATUS_NOT_FOUND);
    assert_string_equal(res.reason, "");
    rpc_result_clear(&res);
    activation__v1__license__free_unpacked(la, NULL);
    activation__v1__activate_response__free_unpacked(a, NULL);
}

static void test_key_errors(void **state) {
    uint8_t m[32];
    env_machine(m, 50);
    char key[PK_TEXT_LEN + 1];
    key_for(G_BASIC, 20, key);
    const char *msg = activate_fails("", m, 32, GRPC_STATUS_INVALID_ARGUMENT, NULL);
    assert_non_null(strstr(msg, "product_key"));
    assert_non_null(strstr(msg, "empty"));

    char bad[PK_TEXT_LEN + 1];
    memcpy(bad, key, sizeof bad);
    bad[6] = 'O';   /* not in the alphabet */
    msg = activate_fails(bad, m, 32, GRPC_STATUS_INVALID_ARGUMENT, NULL);
    assert_non_null(strstr(msg, "product_key"));
    assert_non_null(strstr(msg, "'O'"));

    msg = activate_fails("ABCDE", m, 32, GRPC_STATUS_INVALID_ARGUMENT, NULL);
    assert_non_null(strstr(msg, "25 characters"));

    /* Older 5x5 keys have no N: say so, do not call it a typo. */
    msg = activate_fails("BCDFG-HJKMP-QRTVW-XY234-6789B", m, 32, GRPC_STATUS_INVALID_ARGUMENT, NULL);
    assert_non_null(strstr(msg, "legacy"));

    /* One character changed: the checksum catches it (almost always). */
    pk_fields f;
    int at = 7;
    while (key[at] == 'N' || key[at] == '-') at++;
    for (const char *c = "BCDFGHJKMPQRTVWXY2346789"; *c; c++) {
        memcpy(bad, key, sizeof bad);
        if (bad[at] == *c) continue;
        bad[at] = *c;
        if (pk_decode(bad, strlen(bad), &f, NULL) == PK_ERR_CHECKSUM) break;
    }
    assert_int_equal(pk_decode(bad, strlen(bad), &f, NULL), PK_ERR_CHECKSUM);
    msg = activate_fails(bad, m, 32, GRPC_STATUS_INVALID_ARGUMENT, NULL);
    assert_non_null(strstr(msg, "checksum"));
}

static void test_not_genuine_reads_the_same(void **state) {
    uint8_t m[32];
    env_machine(m, 60);
    char unknown[PK_TEXT_LEN + 1], wrong[PK_TEXT_LEN + 1], upgrade[PK_TEXT_LEN + 1];
    env_forge_key(G_ABSENT, 1, unknown);
    assert_int_equal(env_make_key(&env, G_BASIC, 30, false, 1, wrong), 0);
    assert_int_equal(env_make_key(&env, G_BASIC, 31, true, 0, upgrade), 0);  /* group takes none */
    char first[256];
    snprintf(first, sizeof first, "%s",
             activate_fails(unknown, m, 32, GRPC_STATUS_PERMISSION_DENIED, NULL));
    assert_string_equal(activate_fails(wrong, m, 32, GRPC_STATUS_PERMISSION_DENIED, NULL), first);
    assert_string_equal(activate_fails(upgrade, m, 32, GRPC_STATUS_PERMISSION_DENIED, NULL), first);
    /* Asked again (now from the negative cache): still the same answer. */
    assert_string_equal(activate_fails(unknown, m, 32, GRPC_STATUS_PERMISSION_DENIED, NULL), first);
    /* Nothing was written for them. */
    redisReply *r = redisCommand(env.ks_a, "EXISTS " PA_RKEY_RECORD_FMT, G_BASIC, 30);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

/* Packs a request with the given text fields around a genuine key. */
static size_t request_with(uint8_t *buf, size_t cap, const char *key, const uint8_t *m, size_t mlen,
                           const char *hostname, const char *os) {
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = (char *)key;
    rq.machine_id = (ProtobufCBinaryData){.len = mlen, .data = (uint8_t *)m};
    rq.hostname = (char *)hostname;
    rq.os = (char *)os;
    assert_true(activation__v1__activate_request__get_packed_size(&rq) <= cap);
    return activation__v1__activate_request__pack(&rq, buf);
}

static void expect_request_error(const uint8_t *buf, size_t len, grpc_status_code code,
                                 const char *needle) {
    rpc_result res;
    grpc_status_code st = env_call(&env, PA_RPC_ACTIVATE, buf, len, 5000, &res);
    if (st != code || !strstr(res.message, needle))
        fprintf(stderr, "expected %d '%s', got %d: %s\n", code, needle, st, res.message);
    assert_int_equal(st, code);
    assert_non_null(strstr(res.message, needle));
    rpc_result_clear(&res);
}

static void test_request_errors(void **state) {
    char key[PK_TEXT_LEN + 1];
    key_for(G_BASIC, 40, key);
    uint8_t m[32], buf[8192];
    env_machine(m, 70);
    static char huge[6000], long_host[260], long_os[70];
    memset(huge, 'h', sizeof huge - 1);
    memset(long_host, 'h', 254);
    memset(long_os, 'o', 65);

    size_t n = request_with(buf, sizeof buf, key, m, 32, huge, "");
    expect_request_error(buf, n, GRPC_STATUS_RESOURCE_EXHAUSTED, "4096");

    const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
    expect_request_error(garbage, sizeof garbage, GRPC_STATUS_INVALID_ARGUMENT,
                         "not a valid activation.v1.ActivateRequest");

    n = request_with(buf, sizeof buf, key, m, 0, "pc", "");
    expect_request_error(buf, n, GRPC_STATUS_INVALID_ARGUMENT, "machine_id: missing");
    n = request_with(buf, sizeof buf, key, m, 31, "pc", "");
    expect_request_error(buf, n, GRPC_STATUS_INVALID_ARGUMENT, "machine_id: must be exactly 32");
    n = request_with(buf, sizeof buf, key, m, 32, long_host, "");
    expect_request_error(buf, n, GRPC_STATUS_INVALID_ARGUMENT, "hostname: at most 253");
    n = request_with(buf, sizeof buf, key, m, 32, "evil\nhost", "");
    expect_request_error(buf, n, GRPC_STATUS_INVALID_ARGUMENT, "hostname: byte 0x0A");
    n = request_with(buf, sizeof buf, key, m, 32, "pc", long_os);
    expect_request_error(buf, n, GRPC_STATUS_INVALID_ARGUMENT, "os: at most 64");
    n = request_with(buf, sizeof buf, key, m, 32, "pc", "Linux\x1b[31m");
    expect_request_error(buf, n, GRPC_STATUS_INVALID_ARGUMENT, "os: byte 0x1B");

    /* None of these reached the key's record. */
    redisReply *r = redisCommand(env.ks_a, "EXISTS " PA_RKEY_RECORD_FMT, G_BASIC, 40);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

static void test_license_reference_errors(void **state) {
    rpc_result res;
    assert_int_equal(license_call(PA_RPC_RENEW, "not-a-license", 1, &res), GRPC_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(res.message, "license_id"));
    rpc_result_clear(&res);
    assert_int_equal(license_call(PA_RPC_DEACTIVATE, "0000110D0000000B0000000000000000", 1, &res),
                     GRPC_STATUS_INVALID_ARGUMENT); /* upper case is not how ids are issued */
    rpc_result_clear(&res);
    /* A group that does not exist: the license is simply not held. */
    assert_int_equal(license_call(PA_RPC_RENEW, "000003e7000000010000000000000000", 1, &res), GRPC_STATUS_NOT_FOUND);
    rpc_result_clear(&res);
    assert_int_equal(license_call(PA_RPC_DEACTIVATE, "000003e7000000010000000000000000", 1, &res),
                     GRPC_STATUS_NOT_FOUND);
    rpc_result_clear(&res);
}

/* One command as the activation user (rate-limit keys and the outbox are its). */
static redisReply *as_activation(const char *cmd) {
    redisContext *c = redisConnect("127.0.0.1", env.a.port);
    assert_non_null(c);
    redisReply *r = redisCommand(c, "AUTH activation %s", FIXTURE_PW_ACTIVATION);
    freeReplyObject(r);
    r = redisCommand(c, cmd);
    redisFree(c);
    return r;
}

/* Reads every audit:outbox entry. */
static redisReply *outbox(void) {
    redisReply *r = as_activation("XRANGE " PA_RKEY_OUTBOX " - +");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    return r;
}

static const redisReply *field(const redisReply *entry, const char *name) {
    const redisReply *kv = entry->element[1];
    for (size_t i = 0; i + 1 < kv->elements; i += 2)
        if (strcmp(kv->element[i]->str, name) == 0) return kv->element[i + 1];
    fail_msg("outbox entry has no field %s", name);
    return NULL;
}

static size_t entries_for(const redisReply *r, uint32_t group) {
    size_t n = 0;
    char g[16];
    snprintf(g, sizeof g, "%u", group);
    for (size_t i = 0; i < r->elements; i++) n += strcmp(field(r->element[i], "group")->str, g) == 0;
    return n;
}

static void test_audit_outbox(void **state) {
    char key[PK_TEXT_LEN + 1];
    key_for(G_AUDIT, 77, key);
    Activation__V1__ActivateResponse *a = activate_ok(key, 80);
    activation__v1__activate_response__free_unpacked(a, NULL);
    redisReply *r = outbox();
    assert_int_equal(entries_for(r, G_AUDIT), 1);
    const redisReply *e = NULL;
    for (size_t i = 0; i < r->elements; i++)
        if (strcmp(field(r->element[i], "group")->str, "106") == 0) e = r->element[i];
    pk_fields f;
    assert_int_equal(pk_decode(key, strlen(key), &f, NULL), PK_OK);
    char sf[24], ss[16];
    snprintf(sf, sizeof sf, "%llu", (unsigned long long)f.security_first);
    snprintf(ss, sizeof ss, "%u", f.security_second);
    assert_string_equal(field(e, "serial")->str, "77");
    assert_string_equal(field(e, "upgrade")->str, "0");
    assert_string_equal(field(e, "security_first")->str, sf);
    assert_string_equal(field(e, "security_second")->str, ss);
    assert_string_equal(field(e, "client_address")->str, "127.0.0.1");
    assert_string_equal(field(e, "sample_reason")->str, "base-rate");
    assert_int_equal(strlen(field(e, "request_id")->str), 32);
    assert_true(llabs(atoll(field(e, "received_at")->str) - (long long)time(NULL)) < 5);
    uint8_t m[32];
    env_machine(m, 80);
    assert_int_equal(field(e, "machine_id")->len, 32);
    assert_memory_equal(field(e, "machine_id")->str, m, 32);
    freeReplyObject(r);

    /* Audit of a key's first use only: one record for two machines. */
    key_for(G_FIRST, 1, key);
    a = activate_ok(key, 81);
    activation__v1__activate_response__free_unpacked(a, NULL);
    a = activate_ok(key, 82);
    activation__v1__activate_response__free_unpacked(a, NULL);
    r = outbox();
    assert_int_equal(entries_for(r, G_FIRST), 1);
    for (size_t i = 0; i < r->elements; i++)
        if (strcmp(field(r->element[i], "group")->str, "107") == 0)
            assert_string_equal(field(r->element[i], "sample_reason")->str, "first-activation");
    freeReplyObject(r);
}

static void test_group_change_reaches_licenses(void **state) {
    char key[PK_TEXT_LEN + 1];
    key_for(G_REFRESH, 1, key);
    Activation__V1__ActivateResponse *a = activate_ok(key, 90);
    Activation__V1__License *l = open_license(a);
    assert_int_equal(l->n_features, 2);
    activation__v1__license__free_unpacked(l, NULL);
    activation__v1__activate_response__free_unpacked(a, NULL);

    redisReply *r = redisCommand(env.ks_a, "HSET " PA_RKEY_GROUP_FMT " features %s edition %s", G_REFRESH,
                                 "editor,spreadsheet,macros", "Enterprise");
    freeReplyObject(r);
    r = redisCommand(env.ks_a, "HINCRBY " PA_RKEY_GROUP_FMT " version 1", G_REFRESH);
    freeReplyObject(r);
    /* Both workers may have cached the group: each sees the new version. */
    for (unsigned i = 0; i < 6; i++) {
        a = activate_ok(key, 90);
        l = open_license(a);
        assert_int_equal(l->n_features, 3);
        assert_string_equal(l->features[2], "macros");
        assert_string_equal(l->edition, "Enterprise");
        activation__v1__license__free_unpacked(l, NULL);
        activation__v1__activate_response__free_unpacked(a, NULL);
    }
}

static void health(rpc_channel *ch, const char *service, int expect_status) {
    Grpc__Health__V1__HealthCheckRequest rq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    rq.service = (char *)service;
    rpc_result res;
    assert_int_equal(rpc_call_message(ch, rpc_channel_method(ch, PA_RPC_HEALTH_CHECK), &rq.base, 5000, &res),
                     GRPC_STATUS_OK);
    Grpc__Health__V1__HealthCheckResponse *r =
        grpc__health__v1__health_check_response__unpack(NULL, res.body_len, res.body);
    assert_non_null(r);
    assert_int_equal(r->status, expect_status);
    grpc__health__v1__health_check_response__free_unpacked(r, NULL);
    rpc_result_clear(&res);
}

static void test_health_check(void **state) {
    health(env.ch, "", GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    health(env.ch, PA_RPC_ACTIVATION_SERVICE, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
}

static void test_ipv6_listener(void **state) {
    char target[64], key[PK_TEXT_LEN + 1];
    snprintf(target, sizeof target, "[::1]:%d", port6);
    rpc_channel *saved = env.ch;
    env.ch = rpc_channel_new(target, NULL);
    assert_non_null(env.ch);
    health(env.ch, "", GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    key_for(G_BASIC, 50, key);
    Activation__V1__ActivateResponse *r = activate_ok(key, 100);
    assert_int_equal(r->activation_count, 1);
    activation__v1__activate_response__free_unpacked(r, NULL);
    rpc_channel_free(env.ch);
    env.ch = saved;
    /* IPv6 clients are rate-limited by their /64. */
    char cmd[16 + PA_RKEY_MAX] = "EXISTS ";
    pa_rkey_address_bucket(cmd + 7, sizeof cmd - 7, "::/64");
    redisReply *x = as_activation(cmd);
    assert_non_null(x);
    assert_int_equal(x->integer, 1);
    freeReplyObject(x);
}

static void test_metrics_endpoint(void **state) {
    char key[PK_TEXT_LEN + 1], wrong[PK_TEXT_LEN + 1];
    key_for(G_BASIC, 60, key);
    assert_int_equal(env_make_key(&env, G_BASIC, 61, false, 5, wrong), 0);
    Activation__V1__ActivateResponse *r = activate_ok(key, 110);
    activation__v1__activate_response__free_unpacked(r, NULL);
    uint8_t m[32];
    env_machine(m, 111);
    activate_fails(wrong, m, 32, GRPC_STATUS_PERMISSION_DENIED, NULL);

    assert_true(env_metric(&env, "pa_activations_granted_total{kind=\"new\"}") >= 1);
    assert_true(env_metric(&env, "pa_activations_granted_total{kind=\"again\"}") >= 1);
    assert_true(env_metric(&env, "pa_activations_refused_total{reason=\"not_genuine\"}") >= 1);
    assert_true(env_metric(&env, "pa_activations_refused_total{reason=\"invalid_key\"}") >= 1);
    assert_true(env_metric(&env, "pa_activations_refused_total{reason=\"no_place\"}") >= 1);
    /* Renew's refusals by the same reasons (from the tests above): a lapsed
     * lease and a revoked key apart. */
    assert_true(env_metric(&env, "pa_renewals_refused_total{reason=\"lease_expired\"}") == 1);
    assert_true(env_metric(&env, "pa_renewals_refused_total{reason=\"revoked\"}") == 2);
    assert_true(env_metric(&env, "pa_renewals_refused_total{reason=\"not_found\"}") >= 1);
    assert_true(env_metric(&env, "pa_renewals_refused_total{reason=\"invalid_request\"}") >= 1);
    assert_true(env_metric(&env, "pa_renewals_refused_total{reason=\"deadline_expired\"}") == 0);
    assert_true(env_metric(&env, "pa_activate_stage_nanoseconds_total{stage=\"sign\"}") > 0);
    assert_true(env_metric(&env, "pa_activate_stage_nanoseconds_total{stage=\"redis\"}") > 0);
    assert_true(env_metric(&env, "pa_activate_stage_calls_total") >= 1);
    assert_true(env_metric(&env, "pa_audit_sampled_total") >= 2);
    assert_true(env_metric(&env, "pa_group_cache_loads_total") >= 1);
    assert_true(env_metric(&env, "pa_redis_errors_total") == 0);
    assert_true(env_metric(&env, "pa_grpc_calls_total{method=\"" PA_RPC_ACTIVATE_LABEL "\","
                                 "code=\"OK\"}") >= 1);
    assert_true(env_metric(&env, "pa_grpc_calls_total{method=\"" PA_RPC_ACTIVATE_LABEL "\","
                                 "code=\"PERMISSION_DENIED\"}") >= 1);
    char *text = fixture_http_get("127.0.0.1", env.metrics_port, "/metrics");
    assert_non_null(text);
    assert_non_null(strstr(text, "pa_grpc_call_seconds_bucket{method=\"" PA_RPC_ACTIVATE_LABEL "\""));
    assert_non_null(strstr(text, "pa_rate_limited_total{scope=\"address\"}"));
    free(text);
}

/* Runs last: every key this suite used must be absent from the log. */
static void test_log_has_no_full_key(void **state) {
    char *log = env_read_log(&env);
    assert_non_null(log);
    assert_non_null(strstr(log, "\"event\":\"activate.granted\""));
    for (char *line = log; *line; line = strchr(line, '\n') + 1) {
        assert_int_equal(line[0], '{');
        char *end = strchr(line, '\n');
        assert_non_null(end);
        assert_int_equal(end[-1], '}');
    }
    uint32_t used[][2] = {{G_BASIC, 11}, {G_BASIC, 12}, {G_MAX2, 1},  {G_ONE, 5},    {G_LEASE, 3},
                          {G_SHORT, 1},  {G_SHORT, 2},  {G_LEASE, 9}, {G_AUDIT, 77}, {G_BASIC, 60}};
    for (size_t i = 0; i < sizeof used / sizeof *used; i++) {
        char key[PK_TEXT_LEN + 1], bare[PK_CHARS + 1];
        key_for(used[i][0], used[i][1], key);
        size_t k = 0;
        for (const char *c = key; *c; c++)
            if (*c != '-') bare[k++] = *c;
        bare[k] = '\0';
        assert_null(strstr(log, key));
        assert_null(strstr(log, bare));
        assert_null(strstr(log, key + 6));   /* not even the last four groups */
    }
    free(log);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activate_grants_signed_license),
        cmocka_unit_test(test_reactivation_keeps_place),
        cmocka_unit_test(test_max_machines),
        cmocka_unit_test(test_deactivate_then_activate_elsewhere),
        cmocka_unit_test(test_renew_extends_lease),
        cmocka_unit_test(test_lease_expiry),
        cmocka_unit_test(test_revoked_key),
        cmocka_unit_test(test_key_errors),
        cmocka_unit_test(test_not_genuine_reads_the_same),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_license_reference_errors),
        cmocka_unit_test(test_audit_outbox),
        cmocka_unit_test(test_group_change_reaches_licenses),
        cmocka_unit_test(test_health_check),
        cmocka_unit_test(test_ipv6_listener),
        cmocka_unit_test(test_metrics_endpoint),
        cmocka_unit_test(test_log_has_no_full_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
