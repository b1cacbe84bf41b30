/* test_admin_cluster.c -- the real admin-server with Redis A on a
 * 3-master Redis Cluster (cluster_fixture.h): the calls whose keys cross
 * slots on one node run split (docs/cluster.md "Others to check"): the
 * `user` commands, login and its two rate-limit buckets, webhook endpoints
 * and deliveries; the machine directory takes in the machine logs of
 * groups living on every master; organisation create and rename refuse
 * by name. No CROSSSLOT (nor any other cross-slot refusal) in the log. */
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
#include "cluster_fixture.h"
#include "redis_keys.h"
#include "webhook_receiver.h"

#define PW "correct horse battery"
#define MASTERS 3
#define GROUPS_PER_MASTER 2
#define MACHINES_PER_GROUP 5

static cluster_fixture cf;
static admin_env env;
static int rx_port;

/* The master (0..MASTERS-1) owning `key`'s slot, and a connection to it. */
static redisContext *owner_of(const char *key, int *master) {
    redisContext *any = cluster_fixture_connect(&cf, 0);
    assert_non_null(any);
    redisReply *r = redisCommand(any, "CLUSTER KEYSLOT %s", key);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    int node = cluster_fixture_owner(&cf, (unsigned)r->integer);
    freeReplyObject(r);
    redisFree(any);
    assert_true(node >= 0 && node < MASTERS);
    if (master) *master = node;
    redisContext *c = cluster_fixture_connect(&cf, node);
    assert_non_null(c);
    return c;
}

/* Runs one command on the owner of `key` (the command's first key). */
static redisReply *on_owner(const char *key, const char *fmt, ...) {
    redisContext *c = owner_of(key, NULL);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR) fail_msg("%s: %s", key, r->str);
    return r;
}

static int setup(void **state) {
    (void)state;
    if (cluster_fixture_start(&cf, MASTERS, 0) != 0 || (rx_port = receiver_start()) < 0) return -1;
    char url[128];
    size_t o = (size_t)snprintf(url, sizeof url, "redis-cluster://admin@");
    for (int i = 0; i < MASTERS; i++)
        o += (size_t)snprintf(url + o, sizeof url - o, "%s127.0.0.1:%d", i ? "," : "", cf.node[i].port);
    const char *flags[] = {"--login-tries", "3", "--login-refill-s", "60", "--webhook-interval-ms", "100", NULL};
    if (admin_env_start_on(&env, url, flags) != 0) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    int rc = admin_env_stop(&env);
    receiver_stop();
    cluster_fixture_stop(&cf);
    return rc;
}

/* `user add` and `user remove` through the real command: the record and
 * the list are on two masters here, each written on its own. */
static void test_users(void **state) {
    (void)state;
    char ku[PA_RKEY_MAX];
    pa_rkey_admin_user(ku, sizeof ku, "root");
    int m_user, m_list;
    redisFree(owner_of(ku, &m_user));
    redisFree(owner_of(PA_RKEY_ADMIN_USERS, &m_list));
    assert_int_not_equal(m_user, m_list); /* the split is what is tested */
    assert_int_equal(admin_env_add_user(&env, "root", "admin", PW), 0);
    assert_int_equal(admin_env_add_user(&env, "ops", "operator", PW), 0);
    assert_int_equal(admin_env_add_user(&env, "gone", "viewer", PW), 0);
    redisReply *r = on_owner(PA_RKEY_ADMIN_USERS, "SCARD %s", PA_RKEY_ADMIN_USERS);
    assert_int_equal(r->integer, 3);
    freeReplyObject(r);
    const char *rm[] = {"remove", "gone", NULL};
    assert_int_equal(admin_env_user_cli(&env, rm, NULL, NULL, NULL), 0);
    r = on_owner(PA_RKEY_ADMIN_USERS, "SISMEMBER %s gone", PA_RKEY_ADMIN_USERS);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    pa_rkey_admin_user(ku, sizeof ku, "gone");
    r = on_owner(ku, "EXISTS %s", ku);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    int st;
    assert_int_equal(admin_login(&env, "root", PW), 200);
    json_t *j = admin_call(&env, "GET", "/api/v1/users", NULL, &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_array_size(json_object_get(j, "items")), 2);
    json_decref(j);
}

static int login_from(const char *addr, const char *user, const char *password) {
    snprintf(env.source_addr, sizeof env.source_addr, "%s", addr);
    int st = admin_login(&env, user, password);
    env.source_addr[0] = '\0';
    return st;
}

/* The address bucket and the account bucket, each its own call. */
static void test_login_rate_limits(void **state) {
    (void)state;
    admin_forget_session(&env);
    for (int i = 0; i < 3; i++) assert_int_equal(login_from("127.0.0.1", "ops", "not the password"), 401);
    assert_int_equal(login_from("127.0.0.1", "ops", PW), 429);
    assert_non_null(admin_header(&env, "Retry-After"));
    assert_int_equal(login_from("127.0.0.2", "ops", PW), 429);  /* the account's bucket */
    assert_int_equal(login_from("127.0.0.2", "root", PW), 200); /* another account from there */
    assert_int_equal(login_from("127.0.0.1", "root", PW), 429); /* the first address's bucket */
    for (int i = 0; i < 5; i++) assert_int_equal(login_from("127.0.0.3", "root", PW), 200);
}

/* Groups whose machine logs live on every master, ingested into the
 * directory (in {md}'s slot) by the server's own task. */
static void test_machines_on_every_master(void **state) {
    (void)state;
    int per_master[MASTERS] = {0}, groups[MASTERS * GROUPS_PER_MASTER], n = 0;
    long now = (long)time(NULL);
    for (uint32_t g = 1; n < MASTERS * GROUPS_PER_MASTER && g < 1000; g++) {
        char key[PA_RKEY_MAX], id[16];
        pa_rkey_group_mlog(key, sizeof key, g);
        int m;
        redisContext *c = owner_of(key, &m);
        if (per_master[m] == GROUPS_PER_MASTER) {
            redisFree(c);
            continue;
        }
        per_master[m]++;
        groups[n++] = (int)g;
        snprintf(id, sizeof id, "%u", g);
        for (int i = 0; i < MACHINES_PER_GROUP; i++) {
            char mid[17], host[32];
            snprintf(mid, sizeof mid, "m%03u%012d", g, i);
            snprintf(host, sizeof host, "cl-%u-%d", g, i);
            redisReply *r = redisCommand(
                c, "XADD %s * op a m %b g %s s %d o %s t %ld ip 10.1.%u.%d h %s mac %s hs %s os linux e %ld", key, mid,
                (size_t)16, id, i + 1, "", now, g, i, host, "", "", now + 3600);
            assert_non_null(r);
            if (r->type == REDIS_REPLY_ERROR) fail_msg("%s", r->str);
            freeReplyObject(r);
        }
        redisFree(c);
        freeReplyObject(on_owner(PA_RKEY_GROUPS, "SADD %s %s", PA_RKEY_GROUPS, id));
    }
    assert_int_equal(n, MASTERS * GROUPS_PER_MASTER);
    assert_int_equal(admin_login(&env, "root", PW), 200);
    size_t want = (size_t)n * MACHINES_PER_GROUP, got = 0;
    for (int t = 0; t < 100 && got < want; t++) {
        int st;
        json_t *j = admin_call(&env, "GET", "/api/v1/machines?hostname=cl-*&limit=500", NULL, &st);
        assert_int_equal(st, 200);
        got = json_array_size(json_object_get(j, "items"));
        json_decref(j);
        if (got < want) usleep(100000);
    }
    assert_int_equal(got, want);
    for (int i = 0; i < n; i++) { /* every group's machines, whichever master holds its log */
        char path[96];
        int st;
        snprintf(path, sizeof path, "/api/v1/machines?group=%d", groups[i]);
        json_t *j = admin_call(&env, "GET", path, NULL, &st);
        assert_int_equal(st, 200);
        assert_int_equal(json_array_size(json_object_get(j, "items")), MACHINES_PER_GROUP);
        json_decref(j);
    }
    /* The logs were trimmed by the ingest (XTRIM on each log's own master):
     * a second pass finds nothing new, and the positions are in {md}'s slot. */
    redisReply *r = on_owner(PA_RKEY_MLOG_POS_CLUSTER, "HLEN %s", PA_RKEY_MLOG_POS_CLUSTER);
    assert_true(r->integer >= n);
    freeReplyObject(r);
}

/* An endpoint (record and list on two masters, no MULTI) and one delivery
 * (record and schedule likewise) reaching the receiver. */
static void test_webhook(void **state) {
    (void)state;
    assert_int_equal(admin_login(&env, "root", PW), 200);
    char body[160];
    int st;
    snprintf(body, sizeof body, "{\"url\":\"http://127.0.0.1:%d/h\",\"events\":[\"seats.below_threshold\"]}", rx_port);
    json_t *j = admin_call(&env, "POST", "/api/v1/webhooks", body, &st);
    assert_int_equal(st, 201);
    receiver_set_secret("/h", json_string_value(json_object_get(j, "secret")));
    json_decref(j);
    j = admin_call(&env, "GET", "/api/v1/webhooks", NULL, &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_array_size(json_object_get(j, "items")), 1);
    json_decref(j);
    char ko[PA_RKEY_MAX], kn[PA_RKEY_MAX];
    snprintf(ko, sizeof ko, PA_RKEY_ORDER_FMT, "50000001");
    snprintf(kn, sizeof kn, PA_RKEY_ORDER_COUNTS_FMT, "50000001");
    freeReplyObject(on_owner(ko, "HSET %s seats 3 seat_warning 2 revision 1 retired 0", ko));
    freeReplyObject(on_owner(kn, "HSET %s seats 2", kn));
    freeReplyObject(on_owner(PA_RKEY_ORDERS, "SADD %s 50000001", PA_RKEY_ORDERS));
    assert_int_equal(receiver_wait("/h", "seats.below_threshold", 1), 1);
    assert_true(receiver_last("/h", "seats.below_threshold")->signed_ok);
}

/* Not split yet: refused by name, never a Redis error. */
static void test_organisations_refused(void **state) {
    (void)state;
    assert_int_equal(admin_login(&env, "root", PW), 200);
    int st;
    json_t *j = admin_call(&env, "POST", "/api/v1/organisations", "{\"name\":\"Acme\"}", &st);
    assert_int_equal(st, 501);
    assert_non_null(strstr(env.body, "organisation.create"));
    assert_non_null(strstr(env.body, "Redis Cluster"));
    json_decref(j);
    j = admin_call(&env, "PATCH", "/api/v1/organisations/1", "{\"name\":\"Acme\"}", &st);
    assert_int_equal(st, 501);
    json_decref(j);
}

/* Nothing above met a cross-slot refusal, nor logged an error or a
 * failed step (ingest, claim, delivery: events named *failed). */
static void test_no_crossslot(void **state) {
    (void)state;
    FILE *f = fopen(env.log_path, "r");
    assert_non_null(f);
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "CROSSSLOT") || strstr(line, "non local key") || strstr(line, "different slots") ||
            strstr(line, "\"level\":\"error\"") || strstr(line, "failed\","))
            fail_msg("admin-server log: %s", line);
    }
    fclose(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_users),
        cmocka_unit_test(test_machines_on_every_master),
        cmocka_unit_test(test_webhook),
        cmocka_unit_test(test_organisations_refused),
        cmocka_unit_test(test_login_rate_limits), /* last: it empties 127.0.0.1's bucket */
        cmocka_unit_test(test_no_crossslot),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
