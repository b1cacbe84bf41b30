/* test_machine_ingest.c -- the machine log from end to end: the real
 * activation-server (tests/activation/act_env.h) grants, renews and
 * deactivates over gRPC, policy.lua writes {g:ID}:mlog in the same calls,
 * and the admin server's ingest (as the Redis user admin) makes the
 * directory the search reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "act_env.h"
#include "machine_dir.h"
#include "machine_ingest.h"
#include "machine_search.h"
#include "redis_keys.h"
#include "validate.h"

enum { G_LEASE = 4343 };

static act_env env;

static void tune_lease(group_record *r) {
    r->policy.max_machines = 3;
    r->policy.lease_seconds = 3600;
}

static int setup(void **state) {
    (void)state;
    if (env_start_stores(&env) != 0 || env_create_group(&env, G_LEASE, tune_lease) != 0) return -1;
    const char *extra[] = {"--rate-address-per-s", "100000", "--rate-address-burst", "100000", NULL};
    return env_start_server(&env, extra);
}

static int teardown(void **state) {
    (void)state;
    env_stop(&env);
    return 0;
}

static void activate(uint32_t serial, unsigned m, EVP_PKEY *k, char license_id[LICENSE_ID_LEN + 1]) {
    char key[PK_TEXT_LEN + 1];
    uint8_t id[32];
    assert_int_equal(env_make_key(&env, G_LEASE, serial, false, 0, key), 0);
    env_machine(id, m);
    rpc_result res;
    Activation__V1__ActivateResponse *r;
    grpc_status_code st = env_activate_keyed(&env, key, id, sizeof id, k, &res, &r);
    if (st != GRPC_STATUS_OK) fail_msg("activate: %d %s", st, res.message);
    rpc_result_clear(&res);
    Activation__V1__License *l = env_open_answer(&env, r);
    assert_non_null(l);
    snprintf(license_id, LICENSE_ID_LEN + 1, "%s", l->license_id);
    activation__v1__license__free_unpacked(l, NULL);
    activation__v1__activate_response__free_unpacked(r, NULL);
}

static void by_license(const char *path, place_op op, const char *lid, unsigned m, EVP_PKEY *k) {
    uint8_t id[32], buf[512];
    env_machine(id, m);
    size_t len = env_license_request(lid, id, k, op, 0, buf, sizeof buf);
    rpc_result res;
    grpc_status_code st = env_call(&env, path, buf, len, 5000, &res);
    if (st != GRPC_STATUS_OK) fail_msg("%s: %d %s", path, st, res.message);
    rpc_result_clear(&res);
}

/* The log's entries as "op:h:ip" lines. */
static void expect_log(const char *want) {
    redisReply *r = redisCommand(env.ks_a, "XRANGE " PA_RKEY_GROUP_MLOG_FMT " - +", (unsigned)G_LEASE);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    char got[512] = "";
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *fv = r->element[i]->element[1];
        assert_int_equal(fv->elements, 26); /* 13 fields, `was` last */
        size_t n = strlen(got);
        snprintf(got + n, sizeof got - n, "%s%s:%s:%s:%s", i ? " " : "", fv->element[1]->str, fv->element[15]->str,
                 fv->element[13]->str, fv->element[5]->str);
    }
    freeReplyObject(r);
    assert_string_equal(got, want);
}

static void test_log_to_directory(void **state) {
    (void)state;
    EVP_PKEY *k = env_place_key(1);
    char lid1[LICENSE_ID_LEN + 1], lid2[LICENSE_ID_LEN + 1];
    activate(7, 1, k, lid1);
    activate(8, 2, k, lid2);
    by_license(PA_RPC_RENEW, PLACE_OP_RENEW, lid1, 1, k);
    by_license(PA_RPC_DEACTIVATE, PLACE_OP_DEACTIVATE, lid2, 2, k);
    /* op : hostname (Activate only) : the client address : group */
    expect_log("a:host-1:127.0.0.1:4343 a:host-2:127.0.0.1:4343 r::127.0.0.1:4343 d::127.0.0.1:4343");

    char url[256], err[200];
    redis_fixture_url(&env.a, "admin", url, sizeof url);
    rstore_config cfg = {.url = url};
    rstore *admin = rstore_new(&cfg, false, err, sizeof err);
    if (!admin) fail_msg("admin store: %s", err);
    machine_ingest *in = machine_ingest_new(admin, 10000);
    assert_non_null(in);
    long n = machine_ingest_drain(in, 100);
    if (n < 0) fail_msg("ingest: %s", machine_ingest_error(in));
    assert_int_equal(n, 4);

    machine_filters f = {.status = MACHINE_STATUS_ANY, .hostname = "host-*"};
    machine_search *s = machine_search_open(admin, &f, NULL, err, sizeof err);
    assert_non_null(s);
    const machine_record *rec;
    assert_int_equal(machine_search_next(s, 0, &rec), 1);
    assert_string_equal(rec->row.hostname, "host-1");
    assert_int_equal(rec->row.group, G_LEASE);
    assert_int_equal(rec->row.serial, 7);
    assert_string_equal(rec->row.ip, "127.0.0.1");
    assert_int_equal(rec->row.status, MACHINE_ACTIVE);
    assert_true(rec->row.expires_at > (int64_t)time(NULL) + 3000); /* the renewed lease */
    assert_int_equal(rec->n_history, 2);
    assert_int_equal(rec->history[0].op, 'r');
    assert_int_equal(machine_search_next(s, 0, &rec), 1);
    assert_string_equal(rec->row.hostname, "host-2");
    assert_int_equal(rec->row.status, MACHINE_DEACTIVATED);
    assert_int_equal(machine_search_next(s, 0, &rec), 0);
    machine_search_close(s);

    /* by key: group + serial */
    f = (machine_filters){
        .status = MACHINE_STATUS_ANY, .has_group = true, .group = G_LEASE, .has_serial = true, .serial = 8};
    s = machine_search_open(admin, &f, NULL, err, sizeof err);
    assert_int_equal(machine_search_next(s, 0, &rec), 1);
    assert_string_equal(rec->row.hostname, "host-2");
    machine_search_close(s);

    machine_ingest_free(in);
    rstore_free(admin);
    EVP_PKEY_free(k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_to_directory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
