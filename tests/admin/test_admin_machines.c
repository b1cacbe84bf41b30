/* test_admin_machines.c -- the machine routes through the real
 * admin-server over HTTPS (admin_env.h): machine log entries written as
 * the activation servers write them reach the directory through the
 * server's own ingest task; GET /api/v1/machines by each filter, exact and
 * prefix, paged with its cursor; GET /api/v1/machines/{id} with its
 * history; and the refusals of bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin_env.h"
#include "redis_keys.h"

#define PW "correct horse battery"
#define N_MACHINES 120

static admin_env env;
static long now;

static void xadd(redisContext *c, const char *key, const char *op, int m, long t, const char *ip, const char *host,
                 const char *mac, const char *hs, long e, const char *g, const char *s, const char *o) {
    char mdig[16] = {0};
    snprintf(mdig, sizeof mdig, "%c%07d", o[0] ? 'v' : 'm', m);
    redisReply *r = redisCommand(c, "XADD %s * op %s m %b g %s s %s o %s t %ld ip %s h %s mac %s hs %s os linux e %ld",
                                 key, op, mdig, (size_t)16, g, s, o, t, ip, host, mac, hs, e);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR) fail_msg("%s", r->str);
    freeReplyObject(r);
}

static int setup(void **state) {
    (void)state;
    if (admin_env_start(&env, NULL) != 0) return -1;
    if (admin_env_add_user(&env, "watcher", "viewer", PW) != 0) return -1;
    if (admin_login(&env, "watcher", PW) != 200) return -1;
    redisContext *ks = redis_fixture_connect(&env.redis, "keystore", FIXTURE_PW_KEYSTORE);
    if (!ks) return -1;
    now = (long)time(NULL);
    freeReplyObject(redisCommand(ks, "SADD " PA_RKEY_GROUPS " 4343"));
    freeReplyObject(redisCommand(ks, "SADD " PA_RKEY_ORDERS " 20261201"));
    char key[PA_RKEY_MAX], host[32], ip[32], mac[32], hs[32], serial[16];
    pa_rkey_group_mlog(key, sizeof key, 4343);
    for (int i = 0; i < N_MACHINES; i++) {
        snprintf(host, sizeof host, "ws-%04d", i);
        snprintf(ip, sizeof ip, "10.0.%d.%d", i / 100, i % 100);
        snprintf(mac, sizeof mac, "02:00:00:00:00:%02x", i);
        snprintf(hs, sizeof hs, "PF%04d", i);
        snprintf(serial, sizeof serial, "%d", i + 1);
        xadd(ks, key, "a", i, now - 1000 + i, ip, host, mac, hs, now + 3600, "4343", serial, "");
    }
    xadd(ks, key, "r", 5, now, "10.0.9.9", "", "", "", now + 7200, "4343", "6", "");
    xadd(ks, key, "d", 6, now, "10.0.0.6", "", "", "", 0, "4343", "7", "");
    pa_rkey_order_mlog(key, sizeof key, "20261201");
    xadd(ks, key, "p", 1, now, "10.9.0.1", "vol-0001", "", "", 0, "", "", "20261201");
    redisFree(ks);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    admin_env_stop(&env);
    return 0;
}

static json_t *get(const char *path, int want) {
    int st;
    json_t *j = admin_call(&env, "GET", path, NULL, &st);
    if (st != want) fail_msg("GET %s: %d, wanted %d: %s", path, st, want, env.body);
    return j;
}

static size_t count(const char *path) {
    json_t *j = get(path, 200);
    size_t n = json_array_size(json_object_get(j, "items"));
    json_decref(j);
    return n;
}

static const char *str(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* The server's ingest task runs every second: wait for all of them. */
static void test_ingested(void **state) {
    (void)state;
    for (int i = 0; i < 100 && count("/api/v1/machines?limit=500") < N_MACHINES + 1; i++) usleep(100000);
    assert_int_equal(count("/api/v1/machines?limit=500"), N_MACHINES + 1);
}

static void test_filters(void **state) {
    (void)state;
    assert_int_equal(count("/api/v1/machines?hostname=ws-0042"), 1);
    assert_int_equal(count("/api/v1/machines?hostname=WS-004*"), 10);
    assert_int_equal(count("/api/v1/machines?ip=10.0.1.7"), 1);
    assert_int_equal(count("/api/v1/machines?ip=10.0.1.*"), 20);
    assert_int_equal(count("/api/v1/machines?mac=02:00:00:00:00:2a"), 1);
    assert_int_equal(count("/api/v1/machines?host_serial=PF00*&limit=500"), 100);
    assert_int_equal(count("/api/v1/machines?group=4343&serial=9"), 1);
    assert_int_equal(count("/api/v1/machines?group=4343&limit=500"), N_MACHINES);
    assert_int_equal(count("/api/v1/machines?order=20261201"), 1);
    assert_int_equal(count("/api/v1/machines?status=pending"), 1);
    assert_int_equal(count("/api/v1/machines?status=deactivated"), 1);
    assert_int_equal(count("/api/v1/machines?status=active&limit=500"), N_MACHINES - 1);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/machines?from=%ld&to=%ld", now - 1000 + 10, now - 1000 + 19);
    assert_int_equal(count(path), 10);
    /* the renew moved the address (10.0.0.5 is gone from the index) and the lease */
    assert_int_equal(count("/api/v1/machines?ip=10.0.0.5"), 0);
    json_t *j = get("/api/v1/machines?ip=10.0.9.9", 200);
    json_t *row = json_array_get(json_object_get(j, "items"), 0);
    assert_non_null(row);
    assert_string_equal(str(row, "hostname"), "ws-0005");
    assert_string_equal(str(row, "status"), "active");
    assert_int_equal(json_integer_value(json_object_get(row, "expires_at")), now + 7200);
    assert_int_equal(json_integer_value(json_object_get(row, "group")), 4343);
    assert_int_equal(json_integer_value(json_object_get(row, "serial")), 6);
    assert_string_equal(json_string_value(json_array_get(json_object_get(row, "macs"), 0)), "02:00:00:00:00:05");
    assert_string_equal(str(row, "host_serial"), "PF0005");
    assert_string_equal(str(row, "os"), "linux");
    assert_int_equal(json_integer_value(json_object_get(row, "first_seen")), now - 1000 + 5);
    assert_int_equal(json_integer_value(json_object_get(row, "last_seen")), now);
    assert_int_equal(strlen(str(row, "id")), 16);
    json_decref(j);
}

static void test_paging(void **state) {
    (void)state;
    char path[512] = "/api/v1/machines?hostname=ws-*&limit=50";
    size_t total = 0, pages = 0;
    char last[32] = "";
    for (;;) {
        json_t *j = get(path, 200);
        json_t *items = json_object_get(j, "items");
        for (size_t i = 0; i < json_array_size(items); i++) {
            const char *h = str(json_array_get(items, i), "hostname");
            assert_true(strcmp(h, last) > 0); /* in order, none twice */
            snprintf(last, sizeof last, "%s", h);
        }
        total += json_array_size(items);
        pages++;
        const char *next = str(j, "next_cursor");
        if (!next) {
            json_decref(j);
            break;
        }
        snprintf(path, sizeof path, "/api/v1/machines?hostname=ws-*&limit=50&cursor=%s", next);
        json_decref(j);
        assert_true(pages < 10);
    }
    assert_int_equal(total, N_MACHINES);
    assert_int_equal(pages, 3);
}

static void test_one_machine(void **state) {
    (void)state;
    json_t *j = get("/api/v1/machines?hostname=ws-0006", 200);
    const char *id = str(json_array_get(json_object_get(j, "items"), 0), "id");
    assert_non_null(id);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/machines/%s", id);
    json_decref(j);
    j = get(path, 200);
    assert_string_equal(str(j, "hostname"), "ws-0006");
    assert_string_equal(str(j, "status"), "deactivated");
    json_t *h = json_object_get(j, "history");
    assert_int_equal(json_array_size(h), 2);
    assert_string_equal(str(json_array_get(h, 0), "op"), "deactivate");
    assert_string_equal(str(json_array_get(h, 1), "op"), "activate");
    json_decref(j);
    json_decref(get("/api/v1/machines/AAAAAAAAAAAAAAAA", 404));
    json_decref(get("/api/v1/machines/not-an-id", 404));
}

static void test_refusals(void **state) {
    (void)state;
    const char *bad[] = {"/api/v1/machines?hostnme=x",  "/api/v1/machines?status=gone", "/api/v1/machines?serial=3",
                         "/api/v1/machines?group=x",    "/api/v1/machines?limit=0",     "/api/v1/machines?limit=501",
                         "/api/v1/machines?cursor=%%%", "/api/v1/machines?from=-1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *j = get(bad[i], 400);
        assert_string_equal(admin_error_code(j), "bad_request");
        json_decref(j);
    }
    /* a cursor of another search */
    json_t *j = get("/api/v1/machines?hostname=ws-*&limit=5", 200);
    char path[256];
    snprintf(path, sizeof path, "/api/v1/machines?ip=10.*&cursor=%s", str(j, "next_cursor"));
    json_decref(j);
    json_decref(get(path, 400));
    admin_forget_session(&env);
    json_decref(get("/api/v1/machines", 401));
    assert_int_equal(admin_login(&env, "watcher", PW), 200);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ingested),    cmocka_unit_test(test_filters),  cmocka_unit_test(test_paging),
        cmocka_unit_test(test_one_machine), cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
