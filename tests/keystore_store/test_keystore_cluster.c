/* test_keystore_cluster.c -- the built `keystore` CLI against Redis A as a
 * Redis Cluster of three masters (redis-cluster:// URL, the production
 * keystore ACL user on every node) and Redis B as one node.
 *
 * Groups are chosen so their records land on each of the three masters;
 * every command that touches the activation store (group create, show,
 * list, keys generate, key verify) runs through the CLI, and the records
 * are then read straight from the master that owns their slot, so a
 * command sent to the wrong node cannot pass unnoticed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_fixture.h"
#include "fixture.h"
#include "keycodec.h"
#include "redis_keys.h"
#include "redis_slot.h"

enum { MASTERS = 3 };

static cluster_fixture ca; /* Redis A */
static redis_fixture rb;   /* Redis B */
static char dir[256];      /* KEKs */
static char url_a[1024], url_b[256];
static char kek_a_path[300], kek_b_path[300];
static uint32_t ids[MASTERS]; /* a group whose record master i owns */

/* The first group ID from `from` whose record master `m` owns. */
static uint32_t group_on(int m, uint32_t from) {
    char key[PA_RKEY_MAX];
    for (uint32_t id = from;; id++) {
        pa_rkey_group(key, sizeof key, id);
        if (cluster_fixture_owner(&ca, redis_slot_of(key, strlen(key))) == m) return id;
    }
}

static int setup(void **state) {
    (void)state;
    uint8_t kek[KEK_LEN];
    if (cluster_fixture_start(&ca, MASTERS, 0) || redis_fixture_start(&rb, FIXTURE_STORE_AUDIT)) return -1;
    if (fixture_tmpdir(dir, sizeof dir, "keystore-cluster")) return -1;
    cluster_fixture_url(&ca, "keystore", FIXTURE_PW_KEYSTORE, url_a, sizeof url_a);
    redis_fixture_url(&rb, "keystore", url_b, sizeof url_b);
    if (fixture_make_kek(dir, "a.kek", kek_a_path, sizeof kek_a_path, kek) ||
        fixture_make_kek(dir, "b.kek", kek_b_path, sizeof kek_b_path, kek))
        return -1;
    for (int m = 0; m < MASTERS; m++) ids[m] = group_on(m, 100 + 1000 * (uint32_t)m);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    cluster_fixture_stop(&ca);
    redis_fixture_stop(&rb);
    fixture_rmtree(dir);
    return 0;
}

/* Runs the CLI with both stores and KEKs appended after `args`; its exit code. */
static int cli(const char *const *args, char **out, char **err) {
    const char *argv[32];
    char bin[4096];
    int n = 0;
    snprintf(bin, sizeof bin, "%s", fixture_bin("keystore/keystore"));
    argv[n++] = bin;
    for (; *args; args++) argv[n++] = *args;
    const char *s[] = {"--activation-redis", url_a,      "--audit-redis", url_b,
                       "--activation-kek",   kek_a_path, "--audit-kek",   kek_b_path};
    for (int i = 0; i < 8; i++) argv[n++] = s[i];
    argv[n] = NULL;
    return fixture_run((char *const *)argv, out, err);
}

/* The CLI must exit `want`; its stdout is returned (caller frees). */
static char *cli_expect(int want, const char *const *args) {
    char *out = NULL, *err = NULL;
    int rc = cli(args, &out, &err);
    if (rc != want) fprintf(stderr, "keystore %s %s: exit %d, stderr: %s\n", args[0], args[1], rc, err);
    assert_int_equal(rc, want);
    free(err);
    return out;
}

/* EXISTS `key` on node m itself (no redirect followed): 1, 0, or -1 for
 * an error reply such as MOVED. */
static int exists_on(int m, const char *key) {
    redisContext *c = cluster_fixture_connect(&ca, m);
    assert_non_null(c);
    redisReply *r = redisCommand(c, "EXISTS %s", key);
    int n = r && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
    if (r) freeReplyObject(r);
    redisFree(c);
    return n;
}

static void test_groups_on_every_master(void **state) {
    (void)state;
    char id[16], key[PA_RKEY_MAX];
    for (int m = 0; m < MASTERS; m++) {
        snprintf(id, sizeof id, "%u", ids[m]);
        const char *create[] = {"group", "create", "--id", id, "--product", "Clustered", NULL};
        free(cli_expect(0, create));
        pa_rkey_group(key, sizeof key, ids[m]);
        assert_int_equal(exists_on(m, key), 1);
        for (int o = 0; o < MASTERS; o++) /* the others answer MOVED: not their slot */
            if (o != m) assert_int_equal(exists_on(o, key), -1);
        /* The second create of the same ID is refused: nothing rewritten. */
        char *out = NULL, *err = NULL;
        assert_int_equal(cli(create, &out, &err), 1);
        assert_non_null(strstr(err, "already exists"));
        free(out);
        free(err);
    }
    /* `groups` (its own slot, on whichever master) names all three. */
    char *out = cli_expect(0, (const char *const[]){"group", "list", "--json", NULL});
    json_error_t je;
    json_t *list = json_loads(out, 0, &je);
    assert_non_null(list);
    assert_int_equal(json_array_size(list), MASTERS);
    for (int m = 0; m < MASTERS; m++) {
        json_t *g = json_array_get(list, (size_t)m);
        assert_int_equal(json_integer_value(json_object_get(g, "id")), ids[m]);
        assert_string_equal(json_string_value(json_object_get(g, "product")), "Clustered");
    }
    json_decref(list);
    free(out);
}

static void test_generate_show_verify(void **state) {
    (void)state;
    char id[16], want[64];
    for (int m = 0; m < MASTERS; m++) {
        snprintf(id, sizeof id, "%u", ids[m]);
        char *keys = cli_expect(0, (const char *const[]){"keys", "generate", "--group", id, "--count", "4", NULL});
        assert_int_equal(strlen(keys), 4 * (PK_TEXT_LEN + 1));
        char key0[PK_TEXT_LEN + 1];
        memcpy(key0, keys + 3 * (PK_TEXT_LEN + 1), PK_TEXT_LEN);
        key0[PK_TEXT_LEN] = '\0';
        free(keys);
        char *v = cli_expect(0, (const char *const[]){"key", "verify", key0, NULL});
        assert_non_null(strstr(v, "second security value: ok"));
        free(v);
        char *show = cli_expect(0, (const char *const[]){"group", "show", id, NULL});
        snprintf(want, sizeof want, "serials issued:    %d", 4);
        assert_non_null(strstr(show, want));
        free(show);
    }
    /* A group that does not exist: refused on the master that would own it. */
    char *out = NULL, *err = NULL;
    assert_int_equal(cli((const char *const[]){"group", "show", "999999", NULL}, &out, &err), 1);
    assert_non_null(strstr(err, "does not exist"));
    free(out);
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups_on_every_master),
        cmocka_unit_test(test_generate_show_verify),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
