/* test_redis_cluster.c -- redis_store.h in cluster mode against a real
 * Redis Cluster on loopback (tests/harness/cluster_fixture.h): cluster
 * URLs, redirect parsing (empty host, IPv6) and first keys, keys of many
 * slots landing on their owners, a script reloaded on its node after
 * SCRIPT FLUSH, a slot moved for good (MOVED, also inside a pipeline, and
 * the map refreshed), a slot migrating (ASK for the moved key only,
 * TRYAGAIN for a script whose keys are split), cross-slot scripts refused
 * before sending, pipelines over several masters keeping their order,
 * commands to every master, and a killed master failing only its own
 * slots until its replica takes over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "cluster_fixture.h"
#include "redis_cluster.h"
#include "redis_slot.h"
#include "redis_store.h"

static cluster_fixture cl; /* 3 masters, no replicas: shared by the routing tests */

static int setup(void **state) {
    (void)state;
    return cluster_fixture_start(&cl, 3, 0);
}

static int teardown(void **state) {
    (void)state;
    cluster_fixture_stop(&cl);
    return 0;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static rstore *open_on(const cluster_fixture *f) {
    char url[1024], err[256];
    cluster_fixture_url(f, "activation", FIXTURE_PW_ACTIVATION, url, sizeof url);
    rstore_config cfg = {.url = url, .connect_timeout_ms = 300, .command_timeout_ms = 1000};
    rstore *s = rstore_new(&cfg, false, err, sizeof err);
    if (!s) fprintf(stderr, "rstore_new: %s\n", err);
    return s;
}

/* GET straight on node i, as the operator; malloc'd value or NULL. */
static char *get_on(const cluster_fixture *f, int i, const char *key) {
    redisContext *c = cluster_fixture_connect(f, i);
    redisReply *r = c ? redisCommand(c, "GET %s", key) : NULL;
    char *v = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    if (r) freeReplyObject(r);
    if (c) redisFree(c);
    return v;
}

static void set_ok(rstore *s, const char *key, const char *value) {
    redisReply *r = rstore_command(s, "SET %s %s", key, value);
    if (!r || r->type == REDIS_REPLY_ERROR) fprintf(stderr, "SET %s: %s\n", key, r ? r->str : rstore_error(s));
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
}

static void assert_get(rstore *s, const char *key, const char *want) {
    redisReply *r = rstore_command(s, "GET %s", key);
    if (!r) fprintf(stderr, "GET %s: %s\n", key, rstore_error(s));
    assert_non_null(r);
    if (r->type != REDIS_REPLY_STRING) fprintf(stderr, "GET %s: type %d %s\n", key, r->type, r->str ? r->str : "");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, want);
    freeReplyObject(r);
}

static int port_for_key(rstore *s, const char *key) {
    redisContext *c = rstore_context_for_key(s, key, strlen(key));
    return c ? c->tcp.port : -1;
}

static void expect_url_error(const char *url, const char *needle) {
    char err[512];
    bool ok = rstore_url_check(url, err, sizeof err);
    if (ok || !strstr(err, needle)) fprintf(stderr, "%s: %s (wanted '%s')\n", url, ok ? "accepted" : err, needle);
    assert_false(ok);
    assert_non_null(strstr(err, needle));
    assert_null(strstr(err, "s3cret"));
}

static void test_cluster_urls(void **state) {
    (void)state;
    char err[256];
    assert_true(rstore_url_check("redis-cluster://u:p@127.0.0.1:7000,[::1]:7001,h.example:7002", err, sizeof err));
    expect_url_error("redis-cluster://", "no seed");
    expect_url_error("redis-cluster://u:s3cret@", "no seed");
    expect_url_error("redis-cluster://u:s3cret@h:7000,,h:7001", "bad seed address ''");
    expect_url_error("redis-cluster://u:s3cret@h:70000", "bad seed address 'h:70000'");
    expect_url_error("redis-cluster://u:s3cret@h", "bad seed address 'h'");
    expect_url_error("redis-cluster://u:s3cret@h:7000/2", "database 0 only");
    expect_url_error("redis-cluster://u:s3cret@h:7000/mymaster", "Sentinel and cluster modes exclude");

    rstore_config cfg = {.url = "redis-cluster://127.0.0.1:1", .sentinel_password_file = "/nonexistent"};
    assert_null(rstore_new(&cfg, true, err, sizeof err));
    assert_non_null(strstr(err, "exclude each other"));
    rstore_config user_only = {.url = "redis-cluster://someone@127.0.0.1:1"};
    assert_null(rstore_new(&user_only, true, err, sizeof err));
    assert_non_null(strstr(err, "no password"));

    /* Lazy with no node up: the store exists, its commands fail naming the seed. */
    rstore_config lazy = {.url = "redis-cluster://127.0.0.1:1", .connect_timeout_ms = 200};
    rstore *s = rstore_new(&lazy, true, err, sizeof err);
    assert_non_null(s);
    assert_true(rstore_is_cluster(s));
    assert_null(rstore_command(s, "GET x"));
    assert_non_null(strstr(rstore_error(s), "127.0.0.1:1"));
    rstore_free(s);
}

static void test_redirects_and_keys(void **state) {
    (void)state;
    unsigned slot;
    char host[64];
    int port;
    assert_int_equal(cluster_redirect_parse("MOVED 12 10.0.0.2:7001", "h", &slot, host, sizeof host, &port),
                     CLUSTER_REDIRECT_MOVED);
    assert_int_equal(slot, 12);
    assert_string_equal(host, "10.0.0.2");
    assert_int_equal(port, 7001);
    assert_int_equal(cluster_redirect_parse("MOVED 12 :7001", "answering.host", &slot, host, sizeof host, &port),
                     CLUSTER_REDIRECT_MOVED); /* no announced host: the node that answered */
    assert_string_equal(host, "answering.host");
    assert_int_equal(cluster_redirect_parse("ASK 16383 fe80::1:7002", "h", &slot, host, sizeof host, &port),
                     CLUSTER_REDIRECT_ASK); /* IPv6: split at the last ':' */
    assert_int_equal(slot, 16383);
    assert_string_equal(host, "fe80::1");
    assert_int_equal(port, 7002);
    assert_int_equal(cluster_redirect_parse("ASK 3 [::1]:7003", "h", &slot, host, sizeof host, &port),
                     CLUSTER_REDIRECT_ASK);
    assert_string_equal(host, "::1");
    const char *bad[] = {"MOVED",         "MOVED 16384 h:1", "MOVED x h:1", "MOVED 1 h", "MOVED 1 h:0",
                         "ASK 1 h:99999", "ERR MOVED 1 h:1", "TRYAGAIN",    NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(cluster_redirect_parse(bad[i], "h", &slot, host, sizeof host, &port), CLUSTER_REDIRECT_NONE);

    const char *evalsha[] = {"EVALSHA", "abc", "2", "{g:1}:k", "{g:1}:rl", "arg"};
    assert_int_equal(cluster_key_index(6, evalsha, NULL), 3); /* KEYS[1] */
    const char *nokeys[] = {"EVAL", "return 1", "0"};
    assert_int_equal(cluster_key_index(3, nokeys, NULL), -1);
    const char *xrg[] = {"XREADGROUP", "GROUP", "g", "c", "COUNT", "5", "STREAMS", "{ob:1}:outbox", ">"};
    assert_int_equal(cluster_key_index(9, xrg, NULL), 7);
    const char *wait[] = {"WAIT", "1", "100"}, *get[] = {"get", "k"};
    assert_int_equal(cluster_key_index(3, wait, NULL), -1);
    assert_int_equal(cluster_key_index(2, get, NULL), 1);

    const char resp[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n";
    const char **argv;
    size_t *len;
    assert_int_equal(cluster_resp_split(resp, sizeof resp - 1, &argv, &len), 3);
    assert_int_equal(len[2], 4);
    assert_memory_equal(argv[2], "a\r\nb", 4); /* binary-safe */
    free(argv);
    free(len);
    assert_int_equal(cluster_resp_split("*2\r\n$3\r\nGET\r\n", 13, &argv, &len), -1);
}

static void test_keys_land_on_owners(void **state) {
    (void)state;
    rstore *s = open_on(&cl);
    assert_non_null(s);
    assert_true(rstore_is_cluster(s));
    assert_null(rstore_context(s));
    int per_master[3] = {0};
    for (int g = 0; g < 300; g++) {
        char key[64], val[32];
        snprintf(key, sizeof key, "{g:%d}:k:1", g);
        snprintf(val, sizeof val, "v%d", g);
        set_ok(s, key, val);
        int owner = cluster_fixture_owner(&cl, redis_slot_of(key, strlen(key)));
        assert_true(owner >= 0 && owner < 3);
        per_master[owner]++;
        char *got = get_on(&cl, owner, key);
        assert_non_null(got);
        assert_string_equal(got, val);
        free(got);
        assert_int_equal(port_for_key(s, key), cl.node[owner].port);
    }
    for (int m = 0; m < 3; m++) assert_true(per_master[m] > 0);
    assert_true(rstore_connected(s));
    rstore_free(s);
}

static void test_cross_slot_refused(void **state) {
    (void)state;
    rstore *s = open_on(&cl);
    assert_non_null(s);
    int idx = rstore_script_add(s, "return redis.call('GET', KEYS[1])");
    assert_true(idx >= 0);
    const char *two[] = {"{g:1}:k:a", "{g:2}:k:b"};
    assert_int_not_equal(redis_slot_of(two[0], strlen(two[0])), redis_slot_of(two[1], strlen(two[1])));
    assert_null(rstore_eval(s, idx, 2, 0, two, NULL));
    assert_non_null(strstr(rstore_error(s), "'{g:1}:k:a'"));
    assert_non_null(strstr(rstore_error(s), "'{g:2}:k:b'"));
    assert_int_equal(rstore_eval_append(s, idx, 2, 0, two, NULL), -1);
    /* One slot, several keys: runs (and the script is loaded where it runs). */
    const char *same[] = {"{g:1}:k:a", "{g:1}:k:b"};
    set_ok(s, same[0], "x");
    redisReply *r = rstore_eval(s, idx, 2, 0, same, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "x");
    freeReplyObject(r);
    /* The script flushed on its master: loaded again there, transparently. */
    int owner = cluster_fixture_owner(&cl, redis_slot_of(same[0], strlen(same[0])));
    assert_int_equal(cluster_fixture_exec(&cl, owner, "SCRIPT FLUSH"), 0);
    r = rstore_eval(s, idx, 2, 0, same, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    rstore_free(s);
}

static void test_pipeline_order(void **state) {
    (void)state;
    rstore *s = open_on(&cl);
    assert_non_null(s);
    int idx = rstore_script_add(s, "return redis.call('INCRBY', KEYS[1], ARGV[1])");
    enum { N = 90 };
    char keys[N][48], incr[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "{g:p%d}:k:n", i);
        snprintf(incr[i], sizeof incr[i], "%d", 1000 + i);
        const char *del[] = {"DEL", keys[i]};
        assert_int_equal(rstore_append_argv(s, 2, del, NULL), 0);
    }
    for (int i = 0; i < N; i++) {
        redisReply *r = rstore_get_reply(s);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        freeReplyObject(r);
    }
    /* Scripts and plain commands mixed, over every master, read in order. */
    for (int i = 0; i < N; i++) {
        const char *a[] = {keys[i], incr[i]};
        if (i % 2) assert_int_equal(rstore_eval_append(s, idx, 1, 1, a, NULL), 0);
        else assert_int_equal(rstore_append_argv(s, 3, (const char *[]){"INCRBY", keys[i], incr[i]}, NULL), 0);
    }
    for (int i = 0; i < N; i++) {
        redisReply *r = rstore_get_reply(s);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        assert_int_equal(r->integer, 1000 + i);
        freeReplyObject(r);
    }
    assert_null(rstore_get_reply(s)); /* nothing more is waiting */
    rstore_free(s);
}

static void count_master(void *arg, const char *node, const redisReply *r) {
    (void)node;
    if (r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0) ++*(int *)arg;
}

static void test_command_all(void **state) {
    (void)state;
    rstore *s = open_on(&cl);
    assert_non_null(s);
    int pongs = 0;
    assert_int_equal(rstore_command_all(s, count_master, &pongs, "PING"), 0);
    assert_int_equal(pongs, 3);
    rstore_free(s);
}

static long long keys_in_slot(int node, unsigned slot) {
    redisContext *c = cluster_fixture_connect(&cl, node);
    redisReply *r = c ? redisCommand(c, "CLUSTER COUNTKEYSINSLOT %u", slot) : NULL;
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r) freeReplyObject(r);
    if (c) redisFree(c);
    return n;
}

/* A key of master `from` in a slot holding no key yet (so the test can
 * move the slot). */
static void key_in_slot_of(int from, const char *tag, char *key, size_t n) {
    for (int i = 0;; i++) {
        snprintf(key, n, "{g:%s%d}:k:1", tag, i);
        unsigned slot = redis_slot_of(key, strlen(key));
        if (cluster_fixture_owner(&cl, slot) == from && keys_in_slot(from, slot) == 0) return;
    }
}

static void setslot_everywhere(unsigned slot, int to) {
    for (int i = 0; i < cl.n; i++)
        assert_int_equal(cluster_fixture_exec(&cl, i, "CLUSTER SETSLOT %u NODE %s", slot, cl.id[to]), 0);
}

static void test_moved_followed(void **state) {
    (void)state;
    rstore *s = open_on(&cl);
    assert_non_null(s);
    char k1[64], k2[64];
    key_in_slot_of(0, "mv", k1, sizeof k1);
    for (int i = 0;; i++) { /* a second key of master 0, in another slot */
        key_in_slot_of(0, i ? "mw" : "mx", k2, sizeof k2);
        if (redis_slot_of(k2, strlen(k2)) != redis_slot_of(k1, strlen(k1))) break;
    }
    unsigned s1 = redis_slot_of(k1, strlen(k1)), s2 = redis_slot_of(k2, strlen(k2));
    assert_int_equal(port_for_key(s, k1), cl.node[0].port); /* the store maps both to master 0 */
    assert_int_equal(port_for_key(s, k2), cl.node[0].port);
    setslot_everywhere(s1, 1); /* empty slots move at once */
    setslot_everywhere(s2, 1);
    /* In a pipeline: the MOVED reply is re-sent alone, the order kept. */
    const char *set1[] = {"SET", k1, "piped"}, *other[] = {"SET", "{g:other}:k:1", "o"}, *get1[] = {"GET", k1};
    assert_int_equal(rstore_append_argv(s, 3, set1, NULL), 0);
    assert_int_equal(rstore_append_argv(s, 3, other, NULL), 0);
    assert_int_equal(rstore_append_argv(s, 2, get1, NULL), 0);
    for (int i = 0; i < 3; i++) {
        redisReply *p = rstore_get_reply(s);
        assert_non_null(p);
        assert_int_equal(p->type, i < 2 ? REDIS_REPLY_STATUS : REDIS_REPLY_STRING);
        if (i == 2) assert_string_equal(p->str, "piped");
        freeReplyObject(p);
    }
    set_ok(s, k1, "moved"); /* straight to the new owner: the MOVED above fixed the slot */
    char *v = get_on(&cl, 1, k1);
    assert_non_null(v);
    assert_string_equal(v, "moved");
    free(v);
    assert_int_equal(port_for_key(s, k1), cl.node[1].port);
    sleep_ms(150); /* past the refresh spacing: the next command re-reads the map */
    assert_int_equal(port_for_key(s, k2), cl.node[1].port);
    redisReply *r = rstore_command(s, "DEL %s", k1);
    assert_non_null(r);
    freeReplyObject(r);
    setslot_everywhere(s1, 0); /* empty again: back where it was */
    setslot_everywhere(s2, 0);
    rstore_free(s);
}

static void test_ask_and_tryagain(void **state) {
    (void)state;
    rstore *s = open_on(&cl);
    assert_non_null(s);
    int idx = rstore_script_add(s, "return redis.call('GET', KEYS[1]) .. redis.call('GET', KEYS[2])");
    char base[64], k1[80], k2[80];
    key_in_slot_of(2, "ask", base, sizeof base);
    snprintf(k1, sizeof k1, "%s:a", base); /* same tag: same slot */
    snprintf(k2, sizeof k2, "%s:b", base);
    unsigned slot = redis_slot_of(k1, strlen(k1));
    set_ok(s, k1, "one");
    set_ok(s, k2, "two");
    assert_int_equal(cluster_fixture_exec(&cl, 1, "CLUSTER SETSLOT %u IMPORTING %s", slot, cl.id[2]), 0);
    assert_int_equal(cluster_fixture_exec(&cl, 2, "CLUSTER SETSLOT %u MIGRATING %s", slot, cl.id[1]), 0);
    assert_int_equal(cluster_fixture_exec(&cl, 2, "MIGRATE 127.0.0.1 %d %s 0 5000 AUTH2 clusterops %s", cl.node[1].port,
                                          k1, FIXTURE_PW_CLUSTER_OPS),
                     0);
    char *gone = get_on(&cl, 2, k1);
    assert_null(gone);                                      /* really moved */
    assert_get(s, k1, "one");                               /* ASK: read from the importing node */
    assert_get(s, k2, "two");                               /* still on the migrating node: no ASK */
    assert_int_equal(port_for_key(s, k1), cl.node[2].port); /* an ASK leaves the map alone */

    const char *both[] = {k1, k2};
    assert_null(rstore_eval(s, idx, 2, 0, both, NULL)); /* split keys: TRYAGAIN, retried, then refused */
    assert_non_null(strstr(rstore_error(s), "retries"));
    assert_non_null(strstr(rstore_error(s), "TRYAGAIN"));

    /* The migration ends: the same script follows the slot to its new owner. */
    assert_int_equal(cluster_fixture_exec(&cl, 2, "MIGRATE 127.0.0.1 %d %s 0 5000 AUTH2 clusterops %s", cl.node[1].port,
                                          k2, FIXTURE_PW_CLUSTER_OPS),
                     0);
    setslot_everywhere(slot, 1);
    redisReply *r = rstore_eval(s, idx, 2, 0, both, NULL);
    if (!r) fprintf(stderr, "eval: %s\n", rstore_error(s));
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "onetwo");
    freeReplyObject(r);
    rstore_free(s);
}

/* A master killed: its slots fail (naming it), the others do not; after
 * the failover the store finds the promoted replica. */
static void test_killed_master(void **state) {
    (void)state;
    cluster_fixture ha;
    assert_int_equal(cluster_fixture_start(&ha, 3, 1), 0);
    rstore *s = open_on(&ha);
    assert_non_null(s);
    char keys[3][64];
    for (int m = 0; m < 3; m++)
        for (int i = 0;; i++) {
            snprintf(keys[m], sizeof keys[m], "{g:f%d}:k:1", i);
            if (cluster_fixture_owner(&ha, redis_slot_of(keys[m], strlen(keys[m]))) == m) break;
        }
    for (int m = 0; m < 3; m++) set_ok(s, keys[m], "kept");
    for (int m = 0; m < 3; m++) { /* the replicas hold it before the master dies */
        redisContext *c = cluster_fixture_connect(&ha, m);
        redisReply *w = c ? redisCommand(c, "WAIT 1 5000") : NULL;
        if (!w || w->type != REDIS_REPLY_INTEGER || w->integer != 1)
            fprintf(stderr, "WAIT on master %d: %d %lld %s\n", m, w ? w->type : -1, w ? w->integer : -1,
                    w && w->str ? w->str : "");
        assert_true(w && w->type == REDIS_REPLY_INTEGER && w->integer == 1);
        freeReplyObject(w);
        redisFree(c);
    }
    char dead[32];
    snprintf(dead, sizeof dead, "127.0.0.1:%d", ha.node[0].port);
    cluster_fixture_kill(&ha, 0);
    redisReply *r = rstore_command(s, "GET %s", keys[0]);
    assert_null(r);
    assert_non_null(strstr(rstore_error(s), dead));
    assert_null(rstore_command(s, "GET %s", keys[0])); /* fails fast again: the backoff holds */
    assert_get(s, keys[1], "kept");
    assert_get(s, keys[2], "kept");

    unsigned slot0 = redis_slot_of(keys[0], strlen(keys[0]));
    long long deadline = pa_mono_ms() + 30000;       /* a bound on a hang, not a timing check */
    while (cluster_fixture_owner(&ha, slot0) != 3) { /* the replica takes over */
        assert_true(pa_mono_ms() < deadline);
        sleep_ms(100);
    }
    assert_int_equal(cluster_fixture_wait_ok(&ha, 0, 20000), 0);
    while (!(r = rstore_command(s, "GET %s", keys[0])) || r->type != REDIS_REPLY_STRING) {
        if (pa_mono_ms() >= deadline)
            fprintf(stderr, "GET after failover: type %d %s\n", r ? r->type : -1, r ? r->str : rstore_error(s));
        if (r) freeReplyObject(r);
        assert_true(pa_mono_ms() < deadline);
        sleep_ms(100);
    }
    assert_string_equal(r->str, "kept");
    freeReplyObject(r);
    assert_int_equal(port_for_key(s, keys[0]), ha.node[3].port); /* master 0's replica */
    rstore_free(s);
    cluster_fixture_stop(&ha);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_urls),        cmocka_unit_test(test_redirects_and_keys),
        cmocka_unit_test(test_keys_land_on_owners), cmocka_unit_test(test_cross_slot_refused),
        cmocka_unit_test(test_pipeline_order),      cmocka_unit_test(test_command_all),
        cmocka_unit_test(test_moved_followed),      cmocka_unit_test(test_ask_and_tryagain),
        cmocka_unit_test(test_killed_master),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
