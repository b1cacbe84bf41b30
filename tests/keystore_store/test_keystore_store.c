/* test_keystore_store.c -- the keystore against two real redis-servers
 * (Redis A, the activation store, and Redis B, the audit store) with the
 * production ACL users: groups, serial batches, key generation and
 * verification through the library and through the `keystore` CLI, the
 * offline decoder, and the ACL wall between the activation side and the
 * audit data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "group.h"
#include "keycodec.h"
#include "mac_registry.h"
#include "redis_keys.h"
#include "redis_store.h"
#include "secret_wrap.h"
#include "serials.h"

static redis_fixture ra, rb;            /* Redis A and Redis B */
static char dir[256];                   /* temp dir for KEKs and key files */
static char url_a[256], url_b[256];     /* keystore user URLs */
static char kek_a_path[300], kek_b_path[300], kek_wrong_path[300];
static uint8_t kek_a[KEK_LEN], kek_b[KEK_LEN], kek_wrong[KEK_LEN];
static rstore *sa, *sb;                 /* keystore connections to A and B */

static rstore *connect_url(const char *url) {
    char err[256];
    rstore_config cfg = {.url = url, .connect_timeout_ms = 1000, .command_timeout_ms = 10000};
    rstore *s = rstore_new(&cfg, false, err, sizeof err);
    if (!s) fprintf(stderr, "connect: %s\n", err);
    return s;
}

static int setup(void **state) {
    (void)state;
    if (redis_fixture_start(&ra, FIXTURE_STORE_ACTIVATION) || redis_fixture_start(&rb, FIXTURE_STORE_AUDIT)) return -1;
    if (fixture_tmpdir(dir, sizeof dir, "keystore")) return -1;
    redis_fixture_url(&ra, "keystore", url_a, sizeof url_a);
    redis_fixture_url(&rb, "keystore", url_b, sizeof url_b);
    if (fixture_make_kek(dir, "a.kek", kek_a_path, sizeof kek_a_path, kek_a) ||
        fixture_make_kek(dir, "b.kek", kek_b_path, sizeof kek_b_path, kek_b) ||
        fixture_make_kek(dir, "wrong.kek", kek_wrong_path, sizeof kek_wrong_path, kek_wrong))
        return -1;
    sa = connect_url(url_a);
    sb = connect_url(url_b);
    return sa && sb ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    rstore_free(sa);
    rstore_free(sb);
    redis_fixture_stop(&ra);
    redis_fixture_stop(&rb);
    fixture_rmtree(dir);
    return 0;
}

static redisContext *ca(void) { return rstore_context(sa); }
static redisContext *cb(void) { return rstore_context(sb); }

static void create_group(uint32_t id, const char *product) {
    group_record rec;
    char err[512];
    group_record_defaults(&rec);
    rec.id = id;
    snprintf(rec.product, sizeof rec.product, "%s", product);
    int rc = group_create(ca(), kek_a, cb(), kek_b, &rec, err, sizeof err);
    if (rc) fprintf(stderr, "group_create: %s\n", err);
    assert_int_equal(rc, 0);
}

/* Runs the CLI with the store options appended after `args`. */
static int cli(const char *const *args, int with_stores, char **out, char **err) {
    const char *argv[64];
    int n = 0;
    argv[n++] = fixture_bin("keystore/keystore");
    char bin[4096];
    snprintf(bin, sizeof bin, "%s", argv[0]);
    argv[0] = bin;
    for (; *args; args++) argv[n++] = *args;
    if (with_stores) {
        const char *s[] = {"--activation-redis", url_a, "--audit-redis", url_b, "--activation-kek", kek_a_path,
                           "--audit-kek", kek_b_path};
        for (int i = 0; i < 8; i++) argv[n++] = s[i];
    }
    argv[n] = NULL;
    return fixture_run((char *const *)argv, out, err);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = calloc(1, (size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) b[0] = '\0';
    fclose(f);
    return b;
}

/* The JSON value the CLI printed: exactly one compact line. */
static json_t *parse_json(const char *out) {
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    if (!j) fprintf(stderr, "not JSON (%s at %d): %s\n", e.text, e.position, out);
    assert_non_null(j);
    assert_non_null(strchr(out, '\n'));
    assert_int_equal(strchr(out, '\n')[1], '\0');
    return j;
}

static long long jint(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) fprintf(stderr, "\"%s\" is not an integer\n", key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static bool jbool(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (!json_is_boolean(v)) fprintf(stderr, "\"%s\" is not a boolean\n", key);
    assert_true(json_is_boolean(v));
    return json_is_true(v);
}

static const char *jstr(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v)) fprintf(stderr, "\"%s\" is not a string\n", key);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

/* The object's keys, in the order printed, joined by commas. */
static void assert_keys(const json_t *o, const char *want) {
    char got[512] = "";
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        if (got[0]) strcat(got, ",");
        strncat(got, k, sizeof got - strlen(got) - 2);
    }
    assert_string_equal(got, want);
}

/* Checks both security values of `key` with the library. */
static bool genuine(const char *key, uint32_t group) {
    pk_fields f;
    char err[512];
    group_record rec;
    mac_key *k1 = NULL, *k2 = NULL;
    int alg2;
    if (pk_decode(key, PK_TEXT_LEN, &f, NULL) != PK_OK || f.group != group) return false;
    assert_int_equal(group_load(ca(), kek_a, group, &rec, &k1, err, sizeof err), 0);
    assert_int_equal(group_load_audit(cb(), kek_b, group, &alg2, &k2, err, sizeof err), 0);
    bool ok = mac_security_check(k1, MAC_ROLE_FIRST, f.group, f.serial, f.upgrade, f.security_first) &&
              mac_security_check(k2, MAC_ROLE_SECOND, f.group, f.serial, f.upgrade, f.security_second);
    mac_key_free(k1);
    mac_key_free(k2);
    return ok;
}

/* ---- groups ---- */

static void test_group_roundtrip(void **state) {
    (void)state;
    group_record rec, got;
    char err[512];
    group_record_defaults(&rec);
    rec.id = 4365;
    strcpy(rec.product, "Office");
    strcpy(rec.edition, "Pro \"Plus\"");
    rec.channel = GROUP_CHANNEL_VOLUME;
    rec.upgrade_allowed = true;
    rec.alg_first = MAC_ALG_AES256_CMAC;
    rec.alg_second = MAC_ALG_HMAC_SHA256;
    rec.policy.max_machines = 25;
    rec.policy.lease_seconds = 180 * 86400;
    rec.policy.renew_seconds = 7 * 86400;
    rec.policy.audit_rate_ppm = 123456;
    rec.policy.audit = AUDIT_MODE_ONLINE;
    rec.policy.on_audit_down = AUDIT_UNREACHABLE_OFFLINE;
    rec.policy.audit_first_activation = true;
    strcpy(rec.policy.features, "word,excel");
    assert_int_equal(group_create(ca(), kek_a, cb(), kek_b, &rec, err, sizeof err), 0);
    assert_true(rec.created_at > 0);

    mac_key *k1 = NULL, *k2 = NULL;
    assert_int_equal(group_load(ca(), kek_a, 4365, &got, &k1, err, sizeof err), 0);
    assert_non_null(k1);
    assert_string_equal(got.product, "Office");
    assert_string_equal(got.edition, "Pro \"Plus\"");
    assert_int_equal(got.channel, GROUP_CHANNEL_VOLUME);
    assert_true(got.upgrade_allowed);
    assert_int_equal(got.alg_first, MAC_ALG_AES256_CMAC);
    assert_int_equal(got.created_at, rec.created_at);
    assert_int_equal(got.version, 1);
    assert_int_equal(got.policy.max_machines, 25);
    assert_int_equal(got.policy.lease_seconds, 180 * 86400);
    assert_int_equal(got.policy.renew_seconds, 7 * 86400);
    assert_int_equal(got.policy.audit_rate_ppm, 123456);
    assert_int_equal(got.policy.audit, AUDIT_MODE_ONLINE);
    assert_int_equal(got.policy.on_audit_down, AUDIT_UNREACHABLE_OFFLINE);
    assert_true(got.policy.audit_first_activation);
    assert_string_equal(got.policy.features, "word,excel");
    int alg2 = 0;
    assert_int_equal(group_load_audit(cb(), kek_b, 4365, &alg2, &k2, err, sizeof err), 0);
    assert_int_equal(alg2, MAC_ALG_HMAC_SHA256);
    /* The two secrets are independent: the same identity gives unrelated MACs. */
    uint8_t in[MAC_IDENTITY_LEN] = {0}, m1[32], m2[32];
    assert_true(mac_compute(k1, in, sizeof in, m1) > 0);
    assert_true(mac_compute(k2, in, sizeof in, m2) > 0);
    assert_memory_not_equal(m1, m2, 16);
    mac_key_free(k1);
    mac_key_free(k2);

    /* What lives where: the second secret only in B, wrapped blobs only. */
    redisReply *r = rstore_command(sa, "EXISTS " PA_RKEY_AUDIT_FMT, 4365);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    r = rstore_command(sb, "HGET " PA_RKEY_AUDIT_FMT " secret", 4365);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(r->len, WRAP_BLOB_LEN);
    freeReplyObject(r);
    r = rstore_command(sa, "HGET " PA_RKEY_GROUP_FMT " secret", 4365);
    assert_int_equal(r->len, WRAP_BLOB_LEN);
    freeReplyObject(r);

    uint32_t *ids;
    size_t n;
    create_group(12, "Early");
    assert_int_equal(group_list(ca(), &ids, &n, err, sizeof err), 0);
    assert_true(n >= 2);
    for (size_t i = 1; i < n; i++) assert_true(ids[i - 1] < ids[i]);
    bool found = false;
    for (size_t i = 0; i < n; i++) found |= ids[i] == 4365;
    assert_true(found);
    free(ids);
    assert_int_equal(group_load(ca(), kek_a, 999999, &got, NULL, err, sizeof err), 1);
}

static void test_duplicate_and_invalid_refused(void **state) {
    (void)state;
    group_record rec;
    char err[512];
    create_group(5000, "Dup");
    redisReply *before = rstore_command(sa, "HGET " PA_RKEY_GROUP_FMT " secret", 5000);
    group_record_defaults(&rec);
    rec.id = 5000;
    strcpy(rec.product, "Dup again");
    assert_int_equal(group_create(ca(), kek_a, cb(), kek_b, &rec, err, sizeof err), -1);
    assert_non_null(strstr(err, "already exists"));
    redisReply *after = rstore_command(sa, "HGET " PA_RKEY_GROUP_FMT " secret", 5000);
    assert_memory_equal(before->str, after->str, WRAP_BLOB_LEN);   /* untouched */
    freeReplyObject(before);
    freeReplyObject(after);

    /* Present only in the audit store (a create that stopped halfway). */
    redisReply *r = rstore_command(sb, "HSET " PA_RKEY_AUDIT_FMT " alg 1", 5001);
    freeReplyObject(r);
    rec.id = 5001;
    assert_int_equal(group_create(ca(), kek_a, cb(), kek_b, &rec, err, sizeof err), -1);
    assert_non_null(strstr(err, "audit store"));
    r = rstore_command(sa, "EXISTS " PA_RKEY_GROUP_FMT, 5001);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);

    rec.id = PK_GROUP_MAX + 1;
    assert_int_equal(group_create(ca(), kek_a, cb(), kek_b, &rec, err, sizeof err), -1);
    assert_non_null(strstr(err, "20-bit"));
    rec.id = 5002;
    rec.alg_first = 99;
    assert_int_equal(group_create(ca(), kek_a, cb(), kek_b, &rec, err, sizeof err), -1);
    assert_non_null(strstr(err, "algorithm"));

    /* A stored number read back takes digits only: no blank, no sign, no overflow. */
    create_group(5003, "Numbers");
    const char *damaged[] = {" 5", "+5", "5 ", "-1", "18446744073709551616", ""};
    for (size_t i = 0; i < sizeof damaged / sizeof damaged[0]; i++) {
        r = rstore_command(sa, "HSET {g:5003}:group max_machines %s", damaged[i]);
        freeReplyObject(r);
        group_record got;
        assert_int_equal(group_load(ca(), kek_a, 5003, &got, NULL, err, sizeof err), -1);
        assert_non_null(strstr(err, "max_machines"));
    }
    r = rstore_command(sa, "HSET {g:5003}:group max_machines 5");
    freeReplyObject(r);
    group_record got;
    assert_int_equal(group_load(ca(), kek_a, 5003, &got, NULL, err, sizeof err), 0);
    assert_int_equal(got.policy.max_machines, 5);
}

static void test_wrong_kek_refused(void **state) {
    (void)state;
    group_record rec;
    mac_key *k = NULL;
    char err[512];
    create_group(5100, "KEK");
    assert_int_equal(group_load(ca(), kek_wrong, 5100, &rec, &k, err, sizeof err), -1);
    assert_null(k);
    assert_non_null(strstr(err, "wrong activation KEK"));
    int alg;
    assert_int_equal(group_load_audit(cb(), kek_a, 5100, &alg, &k, err, sizeof err), -1);
    assert_non_null(strstr(err, "wrong audit KEK"));

    char *out, *errs;
    const char *args[] = {"keys", "generate", "--group", "5100", "--count", "3", "--activation-redis", url_a,
                          "--audit-redis", url_b, "--activation-kek", kek_wrong_path, "--audit-kek", kek_b_path, NULL};
    assert_int_equal(cli(args, 0, &out, &errs), 1);
    assert_non_null(strstr(errs, "wrong activation KEK"));
    assert_string_equal(out, "");
    free(out);
    free(errs);
    /* The failed run reserved nothing. */
    redisReply *r = rstore_command(sa, "GET " PA_RKEY_SERIAL_FMT, 5100);
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
}

/* ---- serials ---- */

typedef struct reserver {
    uint32_t group;
    uint32_t firsts[500];
} reserver;

static void *reserve_many(void *arg) {
    reserver *r = arg;
    char url[256], err[256];
    redis_fixture_url(&ra, "keystore", url, sizeof url);
    rstore *s = connect_url(url);
    for (int i = 0; i < 500; i++)
        if (serial_reserve(rstore_context(s), r->group, 7, &r->firsts[i], err, sizeof err) != 0) r->firsts[i] = UINT32_MAX;
    rstore_free(s);
    return NULL;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void test_serial_batches_disjoint(void **state) {
    (void)state;
    create_group(6000, "Batches");
    static reserver r[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        r[i].group = 6000;
        assert_int_equal(pthread_create(&t[i], NULL, reserve_many, &r[i]), 0);
    }
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    uint32_t all[1000];
    for (int i = 0; i < 2; i++) memcpy(all + 500 * i, r[i].firsts, sizeof r[i].firsts);
    qsort(all, 1000, sizeof all[0], cmp_u32);
    for (int i = 0; i < 1000; i++) assert_int_equal(all[i], (uint32_t)i * 7);   /* disjoint, no gaps */

    char err[256];
    uint32_t first;
    assert_int_equal(serial_reserve(ca(), 424242, 1, &first, err, sizeof err), -1);
    assert_non_null(strstr(err, "does not exist"));
    assert_int_equal(serial_reserve(ca(), 6000, 0, &first, err, sizeof err), -1);
}

static void test_serial_limit(void **state) {
    (void)state;
    char err[256], ctr[32];
    uint32_t first = 0;
    create_group(6100, "Limit");
    snprintf(ctr, sizeof ctr, "%u", PK_SERIAL_MAX + 1u - 24);
    redisReply *r = rstore_command(sa, "SET " PA_RKEY_SERIAL_FMT " %s", 6100, ctr);
    freeReplyObject(r);
    assert_int_equal(serial_reserve(ca(), 6100, 25, &first, err, sizeof err), -1);
    assert_non_null(strstr(err, "24 serials left"));
    r = rstore_command(sa, "GET " PA_RKEY_SERIAL_FMT, 6100);
    assert_string_equal(r->str, ctr);   /* refused before moving */
    freeReplyObject(r);
    assert_int_equal(serial_reserve(ca(), 6100, 22, &first, err, sizeof err), 0);
    assert_int_equal(first, PK_SERIAL_MAX + 1u - 24);

    /* The CLI hands out the last two serials, then refuses. */
    char *out, *errs, path[400];
    snprintf(path, sizeof path, "%s/last.txt", dir);
    const char *args[] = {"keys", "generate", "--group", "6100", "--count", "2", "--out", path, NULL};
    assert_int_equal(cli(args, 1, &out, &errs), 0);
    free(out);
    free(errs);
    char *keys = slurp(path);
    assert_non_null(keys);
    pk_fields f;
    assert_int_equal(pk_decode(keys + PK_TEXT_LEN + 1, PK_TEXT_LEN, &f, NULL), PK_OK);
    assert_int_equal(f.serial, PK_SERIAL_MAX);
    assert_true(genuine(keys + PK_TEXT_LEN + 1, 6100));
    free(keys);
    const char *args2[] = {"keys", "generate", "--group", "6100", "--count", "1", NULL};
    assert_int_equal(cli(args2, 1, &out, &errs), 1);
    assert_non_null(strstr(errs, "serials end at 1073741823"));
    assert_string_equal(out, "");
    free(out);
    free(errs);
    assert_int_equal(serial_reserve(ca(), 6100, 1, &first, err, sizeof err), -1);
}

/* ---- generation and verification through the CLI ---- */

static void test_generate_and_verify(void **state) {
    (void)state;
    char *out, *errs, path[400];
    create_group(7000, "Gen");
    snprintf(path, sizeof path, "%s/keys.txt", dir);
    const char *gen[] = {"keys", "generate", "--group", "7000", "--count", "1000", "--out", path, NULL};
    assert_int_equal(cli(gen, 1, &out, &errs), 0);
    assert_non_null(strstr(errs, "generated 1000 keys of group 7000, serials 0..999"));
    free(out);
    free(errs);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 1000 * (PK_TEXT_LEN + 1));
    char *keys = slurp(path);
    for (int i = 0; i < 1000; i++) {
        char *k = keys + i * (PK_TEXT_LEN + 1);
        pk_fields f;
        assert_int_equal(k[PK_TEXT_LEN], '\n');
        assert_int_equal(pk_decode(k, PK_TEXT_LEN, &f, NULL), PK_OK);
        assert_int_equal(f.group, 7000);
        assert_int_equal(f.serial, (uint32_t)i);
        if (i % 97 == 0) assert_true(genuine(k, 7000));
    }
    char key0[PK_TEXT_LEN + 1];
    memcpy(key0, keys, PK_TEXT_LEN);
    key0[PK_TEXT_LEN] = '\0';
    free(keys);

    /* An existing output file is never overwritten. */
    assert_int_equal(cli(gen, 1, &out, &errs), 1);
    assert_non_null(strstr(errs, "exists"));
    free(out);
    free(errs);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 1000 * (PK_TEXT_LEN + 1));

    /* CSV to stdout: header, then serial,key with the serial the key carries. */
    const char *gen_csv[] = {"keys", "generate", "--group", "7000", "--count", "5", "--csv", NULL};
    assert_int_equal(cli(gen_csv, 1, &out, &errs), 0);
    assert_int_equal(strncmp(out, "serial,key\n", 11), 0);
    char *line = out + 11;
    for (uint32_t s = 1000; s < 1005; s++) {
        unsigned serial;
        char key[64];
        assert_int_equal(sscanf(line, "%u,%29s", &serial, key), 2);
        assert_int_equal(serial, s);
        pk_fields f;
        assert_int_equal(pk_decode(key, strlen(key), &f, NULL), PK_OK);
        assert_int_equal(f.serial, s);
        line = strchr(line, '\n') + 1;
    }
    free(out);
    free(errs);

    /* verify through the CLI: genuine, then a forged first value. */
    const char *ver[] = {"key", "verify", key0, "--json", NULL};
    assert_int_equal(cli(ver, 1, &out, &errs), 0);
    json_t *v = parse_json(out);
    assert_keys(v, "group,serial,upgrade,first_ok,second_ok,upgrade_allowed,genuine");
    assert_int_equal(jint(v, "group"), 7000);
    assert_int_equal(jint(v, "serial"), 0);
    assert_false(jbool(v, "upgrade"));
    assert_true(jbool(v, "first_ok"));
    assert_true(jbool(v, "second_ok"));
    assert_true(jbool(v, "upgrade_allowed"));
    assert_true(jbool(v, "genuine"));
    json_decref(v);
    free(out);
    free(errs);
    pk_fields f;
    char forged[PK_TEXT_LEN + 1];
    assert_int_equal(pk_decode(key0, PK_TEXT_LEN, &f, NULL), PK_OK);
    f.security_first ^= 1;
    assert_int_equal(pk_encode(&f, forged), 0);
    assert_false(genuine(forged, 7000));
    const char *ver2[] = {"key", "verify", forged, NULL};
    assert_int_equal(cli(ver2, 1, &out, &errs), 1);
    assert_non_null(strstr(out, "first security value:  WRONG"));
    assert_non_null(strstr(out, "second security value: ok"));
    assert_non_null(strstr(out, "NOT GENUINE"));
    free(out);
    free(errs);
    f.security_first ^= 1;
    f.security_second ^= 4;
    assert_int_equal(pk_encode(&f, forged), 0);
    assert_int_equal(cli(ver2, 1, &out, &errs), 1);
    assert_non_null(strstr(out, "second security value: WRONG"));
    free(out);
    free(errs);

    /* verify needs both stores and both KEKs. */
    const char *ver3[] = {"key", "verify", key0, "--activation-redis", url_a, "--activation-kek", kek_a_path, NULL};
    assert_int_equal(cli(ver3, 0, &out, &errs), 2);
    assert_non_null(strstr(errs, "--audit-kek is required"));
    free(out);
    free(errs);
}

typedef struct gen_run {
    char path[400];
    int rc;
} gen_run;

static void *run_generator(void *arg) {
    gen_run *g = arg;
    const char *args[] = {"keys", "generate", "--group", "8000", "--count", "20000", "--out", g->path, NULL};
    char *out, *errs;
    g->rc = cli(args, 1, &out, &errs);
    if (g->rc) fprintf(stderr, "generator: %s\n", errs);
    free(out);
    free(errs);
    return NULL;
}

static void test_concurrent_generators_disjoint(void **state) {
    (void)state;
    create_group(8000, "Concurrent");
    static gen_run g[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        snprintf(g[i].path, sizeof g[i].path, "%s/conc%d.txt", dir, i);
        assert_int_equal(pthread_create(&t[i], NULL, run_generator, &g[i]), 0);
    }
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    static uint8_t seen[40000];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(g[i].rc, 0);
        char *keys = slurp(g[i].path);
        assert_non_null(keys);
        assert_int_equal(strlen(keys), 20000 * (PK_TEXT_LEN + 1));
        for (int k = 0; k < 20000; k++) {
            pk_fields f;
            assert_int_equal(pk_decode(keys + k * (PK_TEXT_LEN + 1), PK_TEXT_LEN, &f, NULL), PK_OK);
            assert_true(f.serial < 40000);
            assert_int_equal(seen[f.serial], 0);   /* no serial issued twice */
            seen[f.serial] = 1;
        }
        free(keys);
    }
    for (int s = 0; s < 40000; s++) assert_int_equal(seen[s], 1);
}

/* Size of the first "interrupt.txt.tmp.*" file in dir, or -1 if none. */
static long long tmp_file_size(void) {
    DIR *d = opendir(dir);
    struct dirent *e;
    long long size = -1;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "interrupt.txt.tmp.", 18) != 0) continue;
        char p[600];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) == 0) size = st.st_size;
    }
    if (d) closedir(d);
    return size;
}

static void test_interrupted_generation_leaves_nothing(void **state) {
    (void)state;
    create_group(8100, "Interrupted");
    char path[400], log[400];
    snprintf(path, sizeof path, "%s/interrupt.txt", dir);
    snprintf(log, sizeof log, "%s/interrupt.log", dir);
    char bin[4096];
    snprintf(bin, sizeof bin, "%s", fixture_bin("keystore/keystore"));
    char *argv[] = {bin, "keys", "generate", "--group", "8100", "--count", "200000000", "--out", path,
                    "--activation-redis", url_a, "--audit-redis", url_b, "--activation-kek", kek_a_path,
                    "--audit-kek", kek_b_path, NULL};
    pid_t pid = fixture_spawn(argv, log, 0, 0);
    assert_true(pid > 0);
    int waited = 0;
    while (tmp_file_size() <= 0 && waited++ < 3000) usleep(10000);   /* writing has begun */
    assert_true(tmp_file_size() > 0);
    assert_int_equal(fixture_stop(pid, SIGTERM, 10000), 128 + SIGTERM);
    assert_int_equal(tmp_file_size(), -1);
    struct stat st;
    assert_int_equal(stat(path, &st), -1);
}

/* ---- decode (offline) ---- */

static void test_decode_cli(void **state) {
    (void)state;
    char *out, *errs;
    const char *a1[] = {"key", "decode", "W269N-WFGWX-YVC9B-4J6C9-T83GX", "--json", NULL};
    assert_int_equal(cli(a1, 0, &out, &errs), 0);
    json_t *j = parse_json(out);
    assert_keys(j, "key,group,serial,security_first,security_second,checksum,checksum_ok,upgrade");
    assert_string_equal(jstr(j, "key"), "W269N-WFGWX-YVC9B-4J6C9-T83GX");
    assert_int_equal(jint(j, "group"), 3311);
    assert_int_equal(jint(j, "serial"), 1);
    assert_true(jbool(j, "checksum_ok"));
    assert_false(jbool(j, "upgrade"));
    pk_fields f;
    assert_int_equal(pk_decode("W269N-WFGWX-YVC9B-4J6C9-T83GX", PK_TEXT_LEN, &f, NULL), PK_OK);
    assert_int_equal(jint(j, "security_first"), (long long)f.security_first);
    assert_int_equal(jint(j, "security_second"), f.security_second);
    assert_int_equal(jint(j, "checksum"), f.checksum);
    json_decref(j);
    assert_string_equal(errs, "");
    free(out);
    free(errs);

    const char *a2[] = {"key", "decode", " qpm6n7j2wjp88hhp3yrhyy74h ", NULL};   /* lower case, no hyphens */
    assert_int_equal(cli(a2, 0, &out, &errs), 0);
    assert_non_null(strstr(out, "QPM6N-7J2WJ-P88HH-P3YRH-YY74H"));
    assert_non_null(strstr(out, "group:           4365"));
    assert_non_null(strstr(out, "checksum:        583 (ok)"));
    free(out);
    free(errs);

    const char *a3[] = {"key", "decode", "K8KNG-MGG4H-KX82M-M8QYW-DGRFH", "--json", NULL};
    assert_int_equal(cli(a3, 0, &out, &errs), 0);
    j = parse_json(out);
    assert_int_equal(jint(j, "group"), 4365);
    assert_int_equal(jint(j, "serial"), 11);
    assert_int_equal(jint(j, "checksum"), 438);
    json_decref(j);
    free(out);
    free(errs);

    /* A mistyped character: fields shown, checksum_ok false, exit 1, reason on stderr. */
    const char *a4[] = {"key", "decode", "W269N-WFGWX-YVC9B-4J6C9-T83GY", "--json", NULL};
    assert_int_equal(cli(a4, 0, &out, &errs), 1);
    j = parse_json(out);
    assert_false(jbool(j, "checksum_ok"));
    json_decref(j);
    assert_non_null(strstr(errs, "checksum"));
    free(out);
    free(errs);

    /* Malformed keys: exit 1, nothing on stdout, a reason on stderr. */
    const char *bad[][2] = {{"BCDFG-HJKMP-QRTVW-XY234-6789B", "legacy"}, {"W269N-WFGWX", "25"},
                            {"W269N-WFGWX-YVC9B-4J6C9-T83GO", "'O'"}, {"NN69B-WFGWX-YVC9B-4J6C9-T83GX", "N"}};
    for (int i = 0; i < 4; i++) {
        const char *a[] = {"key", "decode", bad[i][0], "--json", NULL};
        assert_int_equal(cli(a, 0, &out, &errs), 1);
        assert_string_equal(out, "");
        if (!strstr(errs, bad[i][1])) fprintf(stderr, "%s -> %s", bad[i][0], errs);
        assert_non_null(strstr(errs, bad[i][1]));
        free(out);
        free(errs);
    }
    const char *a5[] = {"key", "decode", NULL};
    assert_int_equal(cli(a5, 0, &out, &errs), 2);
    free(out);
    free(errs);
}

static void test_help_everywhere(void **state) {
    (void)state;
    const char *cmds[][4] = {{"--help", NULL, NULL}, {"group", "--help", NULL}, {"group", "create", "--help"},
                             {"group", "show", "--help"}, {"group", "list", "--help"}, {"keys", "generate", "--help"},
                             {"key", "verify", "--help"}, {"key", "decode", "--help"}, {"kek", "create", "--help"}};
    for (int i = 0; i < 9; i++) {
        char *out, *errs;
        assert_int_equal(cli(cmds[i], 0, &out, &errs), 0);
        assert_non_null(strstr(out, "Usage: keystore"));
        free(out);
        free(errs);
    }
    char *out, *errs;
    const char *bad[] = {"frobnicate", NULL};
    assert_int_equal(cli(bad, 0, &out, &errs), 2);
    assert_non_null(strstr(errs, "unknown command 'frobnicate'"));
    free(out);
    free(errs);
}

/* ---- group commands through the CLI ---- */

static void test_group_cli(void **state) {
    (void)state;
    char *out, *errs;
    const char *create[] = {"group",
                            "create",
                            "--id",
                            "9100",
                            "--product",
                            "Server",
                            "--edition",
                            "Datacenter",
                            "--channel",
                            "volume",
                            "--lease-days",
                            "30",
                            "--audit-rate",
                            "12.5",
                            "--features",
                            "a",
                            "--features",
                            "b",
                            "--audit-mode",
                            "online",
                            "--audit-unreachable",
                            "offline",
                            "--alg-first",
                            "aes256-cmac",
                            "--upgrade-allowed",
                            "--max-machines",
                            "0",
                            "--machine-match",
                            "3",
                            "--grace",
                            "600",
                            "--max-deactivations",
                            "5",
                            NULL};
    assert_int_equal(cli(create, 1, &out, &errs), 0);
    assert_non_null(strstr(out, "created group 9100"));
    free(out);
    free(errs);
    assert_int_equal(cli(create, 1, &out, &errs), 1);
    assert_non_null(strstr(errs, "already exists"));
    free(out);
    free(errs);

    const char *bad_match[] = {"group", "create", "--id", "9101", "--product", "P", "--machine-match", "17", NULL};
    assert_int_equal(cli(bad_match, 1, &out, &errs), 2);
    assert_non_null(strstr(errs, "--machine-match"));
    free(out);
    free(errs);

    const char *show[] = {"group", "show", "9100", "--json", NULL};
    assert_int_equal(cli(show, 1, &out, &errs), 0);
    json_t *g = parse_json(out);
    assert_keys(g,
                "id,product,edition,channel,upgrade_allowed,alg_first,created_at,version,max_machines,"
                "lease_seconds,renew_seconds,audit_rate_ppm,audit_mode,audit_unreachable,audit_first_activation,"
                "features,serials_issued,audit_outbox_full,machine_match,grace_seconds,max_deactivations,"
                "max_transfers,churn_period_seconds,alg_second");
    assert_int_equal(jint(g, "id"), 9100);
    assert_string_equal(jstr(g, "product"), "Server");
    assert_string_equal(jstr(g, "edition"), "Datacenter");
    assert_string_equal(jstr(g, "channel"), "volume");
    assert_true(jbool(g, "upgrade_allowed"));
    assert_string_equal(jstr(g, "alg_first"), "aes256-cmac");
    assert_int_equal(strlen(jstr(g, "created_at")), 20); /* 2024-01-02T03:04:05Z */
    assert_int_equal(jint(g, "max_machines"), 0);
    assert_int_equal(jint(g, "lease_seconds"), 2592000);
    assert_int_equal(jint(g, "renew_seconds"), 604800);
    assert_int_equal(jint(g, "audit_rate_ppm"), 125000);
    assert_string_equal(jstr(g, "audit_mode"), "online");
    assert_string_equal(jstr(g, "audit_unreachable"), "offline");
    assert_string_equal(jstr(g, "audit_outbox_full"), "fail-closed");
    assert_false(jbool(g, "audit_first_activation"));
    assert_string_equal(jstr(g, "features"), "a,b");
    assert_int_equal(jint(g, "serials_issued"), 0);
    assert_string_equal(jstr(g, "alg_second"), "hmac-sha256");
    assert_int_equal(jint(g, "machine_match"), 3);
    assert_int_equal(jint(g, "grace_seconds"), 600);
    assert_int_equal(jint(g, "max_deactivations"), 5);
    assert_int_equal(jint(g, "max_transfers"), 3); /* the defaults */
    assert_int_equal(jint(g, "churn_period_seconds"), 2592000);
    json_decref(g);
    assert_null(strstr(out, "secret"));
    free(out);
    free(errs);

    /* Without the audit store the record says nothing about it; names that need escaping survive. */
    const char *odd = "Say \"hi\" \\ / \xc3\xa9 \xe2\x82\xac";
    const char *create2[] = {"group", "create", "--id", "9102", "--product", odd, "--edition", "</script>", NULL};
    assert_int_equal(cli(create2, 1, &out, &errs), 0);
    free(out);
    free(errs);
    const char *show2[] = {"group", "show", "9102", "--json", "--activation-redis", url_a, NULL};
    assert_int_equal(cli(show2, 0, &out, &errs), 0);
    g = parse_json(out);
    assert_string_equal(jstr(g, "product"), odd);
    assert_string_equal(jstr(g, "edition"), "</script>");
    assert_null(json_object_get(g, "alg_second"));
    assert_null(json_object_get(g, "audit_record"));
    json_decref(g);
    free(out);
    free(errs);
    const char *latin1[] = {"group", "create", "--id", "9103", "--product", "Caf\xe9", NULL};
    assert_int_equal(cli(latin1, 1, &out, &errs), 2);
    assert_non_null(strstr(errs, "--product is not valid UTF-8"));
    free(out);
    free(errs);
    const char *tab[] = {"group", "create", "--id", "9103", "--product", "Tab\there", NULL};
    assert_int_equal(cli(tab, 1, &out, &errs), 2);
    assert_non_null(strstr(errs, "control characters"));
    free(out);
    free(errs);

    const char *listj[] = {"group", "list", "--json", NULL};
    assert_int_equal(cli(listj, 1, &out, &errs), 0);
    json_t *arr = parse_json(out);
    assert_true(json_is_array(arr));
    size_t i, seen = 0;
    json_t *e;
    json_array_foreach(arr, i, e) {
        assert_keys(e, "id,product,edition,channel,serials_issued");
        if (jint(e, "id") == 9102) seen++, assert_string_equal(jstr(e, "product"), odd);
        if (jint(e, "id") != 9100) continue;
        seen++;
        assert_string_equal(jstr(e, "product"), "Server");
        assert_string_equal(jstr(e, "edition"), "Datacenter");
        assert_string_equal(jstr(e, "channel"), "volume");
        assert_int_equal(jint(e, "serials_issued"), 0);
    }
    assert_int_equal(seen, 2);
    json_decref(arr);
    free(out);
    free(errs);

    const char *list[] = {"group", "list", NULL};
    assert_int_equal(cli(list, 1, &out, &errs), 0);
    assert_non_null(strstr(out, "9100"));
    assert_non_null(strstr(out, "Server"));
    free(out);
    free(errs);

    const char *bad[] = {"group", "create", "--id", "9101", "--product", "X", "--channel", "shop", NULL};
    assert_int_equal(cli(bad, 1, &out, &errs), 2);
    assert_non_null(strstr(errs, "--channel"));
    free(out);
    free(errs);
    const char *bad2[] = {"group", "create", "--id", "9101", "--product", "X", "--audit-rate", "150", NULL};
    assert_int_equal(cli(bad2, 1, &out, &errs), 2);
    assert_non_null(strstr(errs, "--audit-rate"));
    free(out);
    free(errs);
    const char *missing[] = {"group", "show", "424242", NULL};
    assert_int_equal(cli(missing, 1, &out, &errs), 1);
    assert_non_null(strstr(errs, "does not exist"));
    free(out);
    free(errs);
}

static void test_kek_cli(void **state) {
    (void)state;
    char *out, *errs, path[400];
    snprintf(path, sizeof path, "%s/new.kek", dir);
    const char *a[] = {"kek", "create", path, NULL};
    assert_int_equal(cli(a, 0, &out, &errs), 0);
    free(out);
    free(errs);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    uint8_t kek[KEK_LEN];
    char err[256];
    assert_int_equal(kek_load_file(path, kek, err, sizeof err), 0);
    assert_int_not_equal(cli(a, 0, &out, &errs), 0);   /* never overwrites */
    free(out);
    free(errs);
}

/* ---- exit codes: 0 success, 1 the operation failed or said no, 2 usage error ---- */

/* Runs the CLI and asserts its exit code; shows stderr when it differs. */
static void expect_exit(int want, const char *const *args, int with_stores) {
    char *out, *errs;
    int rc = cli(args, with_stores, &out, &errs);
    if (rc != want) {
        fprintf(stderr, "exit %d, want %d for:", rc, want);
        for (const char *const *a = args; *a; a++) fprintf(stderr, " %s", *a);
        fprintf(stderr, "\nstderr: %s", errs ? errs : "(none)");
    }
    assert_int_equal(rc, want);
    if (want == 2) assert_non_null(strstr(errs, "error")); /* a usage error always says what was wrong */
    free(out);
    free(errs);
}

static void test_exit_codes_kek_create(void **state) {
    (void)state;
    char path[400], other[400];
    snprintf(path, sizeof path, "%s/exit.kek", dir);
    snprintf(other, sizeof other, "%s/exit2.kek", dir);
    expect_exit(0, (const char *[]){"kek", "create", path, NULL}, 0);
    expect_exit(1, (const char *[]){"kek", "create", path, NULL}, 0); /* exists: never overwritten */
    expect_exit(2, (const char *[]){"kek", "create", other, "extra", NULL}, 0);
    expect_exit(2, (const char *[]){"kek", "create", NULL}, 0);
    expect_exit(2, (const char *[]){"kek", "create", other, "--force", NULL}, 0);
    expect_exit(2, (const char *[]){"kek", "create", other, "--audit-kek", NULL}, 0); /* value missing */
    struct stat st;
    assert_int_not_equal(stat(other, &st), 0); /* no usage error wrote anything */
}

static void test_exit_codes_group_create(void **state) {
    (void)state;
    expect_exit(0, (const char *[]){"group", "create", "--id", "9500", "--product", "Exit", NULL}, 1);
    expect_exit(1, (const char *[]){"group", "create", "--id", "9500", "--product", "Exit", NULL}, 1); /* exists */
    expect_exit(2, (const char *[]){"group", "create", "--id", "9501", "--product", "Exit", "extra", NULL}, 1);
    expect_exit(2, (const char *[]){"group", "create", "--product", "Exit", NULL}, 1);
    expect_exit(2, (const char *[]){"group", "create", "--id", "9501", NULL}, 1);
    expect_exit(2, (const char *[]){"group", "create", "--id", "95x1", "--product", "Exit", NULL}, 1);
    expect_exit(2, (const char *[]){"group", "create", "--id", "9501", "--product", "Exit", "--channel", "shop", NULL},
                1);
    expect_exit(
        2, (const char *[]){"group", "create", "--id", "9501", "--product", "Exit", "--max-machines", "-1", NULL}, 1);
    expect_exit(2,
                (const char *[]){"group", "create", "--id", "9501", "--product", "Exit", "--lease-days", "1",
                                 "--lease-seconds", "1", NULL},
                1);
    expect_exit(2, (const char *[]){"group", "create", "--id", "9501", "--product", "Exit", "--alg-first", "md5", NULL},
                1);
    expect_exit(2,
                (const char *[]){"group", "create", "--id", "9501", "--product", "Exit", "--lease-seconds", "60",
                                 "--renew-seconds", "61", NULL},
                1);
    expect_exit(2, (const char *[]){"group", "create", "--id", "9501", "--product", "Exit", "--features", "a b", NULL},
                1);
    expect_exit(
        2, (const char *[]){"group", "create", "--id", "9501", "--product", "Exit", "--audit-rate", "lots", NULL}, 1);
    /* Store options are required options too; a malformed URL is a malformed value. */
    expect_exit(2,
                (const char *[]){"group", "create", "--id", "9501", "--product", "Exit", "--activation-redis", url_a,
                                 "--audit-redis", url_b, "--activation-kek", kek_a_path, NULL},
                0);
    expect_exit(2,
                (const char *[]){"group", "create", "--id", "9501", "--product", "Exit", "--activation-redis",
                                 "http://127.0.0.1:1", "--audit-redis", url_b, "--activation-kek", kek_a_path,
                                 "--audit-kek", kek_b_path, NULL},
                0);
    /* A store that does not answer is a failed operation, not a usage error. */
    expect_exit(1,
                (const char *[]){"group", "create", "--id", "9501", "--product", "Exit", "--activation-redis",
                                 "redis://keystore:x@127.0.0.1:1", "--audit-redis", url_b, "--activation-kek",
                                 kek_a_path, "--audit-kek", kek_b_path, NULL},
                0);
    char *out, *errs;
    assert_int_equal(cli((const char *[]){"group", "show", "9501", NULL}, 1, &out, &errs), 1); /* none made */
    free(out);
    free(errs);
}

static void test_exit_codes_group_show(void **state) {
    (void)state;
    create_group(9510, "Shown");
    expect_exit(0, (const char *[]){"group", "show", "9510", NULL}, 1);
    expect_exit(0, (const char *[]){"group", "show", "--id", "9510", "--json", NULL}, 1);
    expect_exit(1, (const char *[]){"group", "show", "9519", NULL}, 1); /* does not exist */
    expect_exit(2, (const char *[]){"group", "show", "9510", "extra", NULL}, 1);
    expect_exit(2, (const char *[]){"group", "show", "--id", "9510", "9510", NULL}, 1);
    expect_exit(2, (const char *[]){"group", "show", NULL}, 1);
    expect_exit(2, (const char *[]){"group", "show", "9510", NULL}, 0); /* no --activation-redis */
    expect_exit(2, (const char *[]){"group", "show", "ninety", NULL}, 1);
    expect_exit(2, (const char *[]){"group", "show", "99999999", NULL}, 1);
    expect_exit(2, (const char *[]){"group", "show", "9510", "--json=maybe", NULL}, 1);
}

static void test_exit_codes_group_list(void **state) {
    (void)state;
    expect_exit(0, (const char *[]){"group", "list", NULL}, 1);
    expect_exit(0, (const char *[]){"group", "list", "--json", NULL}, 1);
    expect_exit(2, (const char *[]){"group", "list", "extra", NULL}, 1);
    expect_exit(2, (const char *[]){"group", "list", NULL}, 0); /* no --activation-redis */
    expect_exit(2, (const char *[]){"group", "list", "--json=maybe", NULL}, 1);
    expect_exit(2, (const char *[]){"group", "list", "--activation-redis", "127.0.0.1:6379", NULL}, 0);
    expect_exit(1, (const char *[]){"group", "list", "--activation-redis", "redis://keystore:x@127.0.0.1:1", NULL}, 0);
}

static void test_exit_codes_keys_generate(void **state) {
    (void)state;
    create_group(9520, "Generated");
    expect_exit(0, (const char *[]){"keys", "generate", "--group", "9520", "--count", "3", NULL}, 1);
    expect_exit(1, (const char *[]){"keys", "generate", "--group", "9529", "--count", "3", NULL}, 1); /* no group */
    expect_exit(1, (const char *[]){"keys", "generate", "--group", "9520", "--count", "3", "--upgrade", NULL}, 1);
    expect_exit(2, (const char *[]){"keys", "generate", "--group", "9520", "--count", "3", "extra", NULL}, 1);
    expect_exit(2, (const char *[]){"keys", "generate", "--count", "3", NULL}, 1);
    expect_exit(2, (const char *[]){"keys", "generate", "--group", "9520", NULL}, 1);
    expect_exit(2, (const char *[]){"keys", "generate", "--group", "9520", "--count", "0", NULL}, 1);
    expect_exit(2, (const char *[]){"keys", "generate", "--group", "9520", "--count", "three", NULL}, 1);
    expect_exit(2, (const char *[]){"keys", "generate", "--group", "-1", "--count", "3", NULL}, 1);
    expect_exit(2, (const char *[]){"keys", "generate", "--group", "9520", "--count", "3", "--threads", "0", NULL}, 1);
    expect_exit(2,
                (const char *[]){"keys", "generate", "--group", "9520", "--count", "3", "--activation-redis", url_a,
                                 "--audit-redis", url_b, "--audit-kek", kek_b_path, NULL},
                0);
    /* Only the successful run reserved serials: every usage error stopped before the store. */
    char *out, *errs;
    assert_int_equal(cli((const char *[]){"group", "show", "9520", "--json", NULL}, 1, &out, &errs), 0);
    assert_non_null(strstr(out, "\"serials_issued\":3"));
    free(out);
    free(errs);
}

/* The first key of a fresh group, generated through the CLI. */
static void first_key(uint32_t group, char key[PK_TEXT_LEN + 1]) {
    char *out, *errs, id[16];
    snprintf(id, sizeof id, "%u", group);
    create_group(group, "Verified");
    assert_int_equal(cli((const char *[]){"keys", "generate", "--group", id, "--count", "1", NULL}, 1, &out, &errs), 0);
    assert_true(strlen(out) >= PK_TEXT_LEN);
    memcpy(key, out, PK_TEXT_LEN);
    key[PK_TEXT_LEN] = '\0';
    free(out);
    free(errs);
}

static void test_exit_codes_key_verify(void **state) {
    (void)state;
    char key[PK_TEXT_LEN + 1];
    first_key(9530, key);
    expect_exit(0, (const char *[]){"key", "verify", key, NULL}, 1);
    expect_exit(1, (const char *[]){"key", "verify", "W269N-WFGWX-YVC9B-4J6C9-T83GY", NULL}, 1); /* bad checksum */
    expect_exit(2, (const char *[]){"key", "verify", key, "extra", NULL}, 1);
    expect_exit(2, (const char *[]){"key", "verify", NULL}, 1);
    expect_exit(2,
                (const char *[]){"key", "verify", key, "--activation-redis", url_a, "--audit-redis", url_b,
                                 "--activation-kek", kek_a_path, NULL},
                0);
    expect_exit(2, (const char *[]){"key", "verify", key, "--json=maybe", NULL}, 1);
}

static void test_exit_codes_key_decode(void **state) {
    (void)state;
    expect_exit(0, (const char *[]){"key", "decode", "W269N-WFGWX-YVC9B-4J6C9-T83GX", NULL}, 0);
    expect_exit(1, (const char *[]){"key", "decode", "W269N-WFGWX-YVC9B-4J6C9-T83GY", NULL}, 0);
    expect_exit(1, (const char *[]){"key", "decode", "W269N-WFGWX", NULL}, 0);
    expect_exit(2, (const char *[]){"key", "decode", "W269N-WFGWX-YVC9B-4J6C9-T83GX", "extra", NULL}, 0);
    expect_exit(2, (const char *[]){"key", "decode", NULL}, 0);
    expect_exit(2, (const char *[]){"key", "decode", "W269N-WFGWX-YVC9B-4J6C9-T83GX", "--json=maybe", NULL}, 0);
    expect_exit(2, (const char *[]){"key", "decode", "W269N-WFGWX-YVC9B-4J6C9-T83GX", "--csv", NULL}, 0);
}

static void test_exit_codes_dispatch(void **state) {
    (void)state;
    expect_exit(2, (const char *[]){NULL}, 0);
    expect_exit(2, (const char *[]){"frobnicate", NULL}, 0);
    expect_exit(2, (const char *[]){"group", NULL}, 0);
    expect_exit(2, (const char *[]){"group", "delete", NULL}, 0);
}

/* ---- durability ---- */

/* Waits until `s` answers PING again after its Redis came back. */
static void wait_healed(rstore *s) {
    redisReply *r = NULL;
    for (int i = 0; i < 500 && !(r = rstore_command(s, "PING")); i++) usleep(10000);
    assert_non_null(r);
    freeReplyObject(r);
}

static void test_records_survive_restart(void **state) {
    (void)state;
    char err[512];
    uint32_t first;
    create_group(9300, "Durable");
    assert_int_equal(serial_reserve(ca(), 9300, 10, &first, err, sizeof err), 0);
    assert_int_equal(redis_fixture_pause(&ra), 0);
    assert_int_equal(redis_fixture_pause(&rb), 0);
    assert_int_equal(redis_fixture_resume(&ra), 0);
    assert_int_equal(redis_fixture_resume(&rb), 0);
    wait_healed(sa);
    wait_healed(sb);
    /* Script effects are logged as MULTI/EXEC; they must replay from the AOF. */
    group_record rec;
    mac_key *k1 = NULL, *k2 = NULL;
    int alg;
    assert_int_equal(group_load(ca(), kek_a, 9300, &rec, &k1, err, sizeof err), 0);
    assert_int_equal(group_load_audit(cb(), kek_b, 9300, &alg, &k2, err, sizeof err), 0);
    mac_key_free(k1);
    mac_key_free(k2);
    uint32_t *ids;
    size_t n;
    bool listed = false;
    assert_int_equal(group_list(ca(), &ids, &n, err, sizeof err), 0);
    for (size_t i = 0; i < n; i++) listed |= ids[i] == 9300;
    free(ids);
    assert_true(listed);
    assert_int_equal(serial_reserve(ca(), 9300, 1, &first, err, sizeof err), 0);
    assert_int_equal(first, 10);

    /* The `default` user stays unusable: no command without AUTH. */
    char url[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ra.port);
    rstore_config cfg = {.url = url, .connect_timeout_ms = 1000, .command_timeout_ms = 1000};
    rstore *anon = rstore_new(&cfg, false, err, sizeof err);
    assert_non_null(anon);
    redisReply *r = rstore_command(anon, "GET " PA_RKEY_SERIAL_FMT, 9300);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "NOAUTH"));
    freeReplyObject(r);
    r = rstore_command(anon, "AUTH default %s", "");
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    rstore_free(anon);
}

/* ---- the ACL wall ---- */

static void test_activation_user_cannot_read_audit_data(void **state) {
    (void)state;
    create_group(9200, "Walled");
    char url[256], err[256];
    /* The activation user does not exist on Redis B at all. */
    redis_fixture_url(&rb, "activation", url, sizeof url);
    rstore_config cfg = {.url = url, .connect_timeout_ms = 1000, .command_timeout_ms = 1000};
    assert_null(rstore_new(&cfg, false, err, sizeof err));
    assert_true(strstr(err, "WRONGPASS") || strstr(err, "NOPERM"));

    /* On Redis A it reads group records but no audit key, and has no admin commands. */
    redis_fixture_url(&ra, "activation", url, sizeof url);
    cfg.url = url;
    rstore *act = rstore_new(&cfg, false, err, sizeof err);
    assert_non_null(act);
    redisReply *r = rstore_command(act, "HGET " PA_RKEY_GROUP_FMT " product", 9200);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "Walled");
    freeReplyObject(r);
    /* The key names are the programs' own (redis_keys.h); a command names group 9200 if any. */
    const char *denied[] = {"HGETALL " PA_RKEY_AUDIT_FMT,
                            "GET " PA_RKEY_AUDIT_FMT,
                            "KEYS *",
                            "FLUSHALL",
                            "CONFIG GET *",
                            "DEBUG SLEEP 0",
                            "SCRIPT FLUSH",
                            "SADD " PA_RKEY_GROUPS " 1",
                            "ACL LIST"};
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
        r = rstore_command(act, denied[i], 9200);
        assert_non_null(r);
        if (r->type != REDIS_REPLY_ERROR) fprintf(stderr, "allowed: %s\n", denied[i]);
        assert_int_equal(r->type, REDIS_REPLY_ERROR);
        freeReplyObject(r);
    }
    r = rstore_command(act, "EVAL %s 1 " PA_RKEY_AUDIT_FMT, "return redis.call('HGET', KEYS[1], 'secret')", 9200);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    /* What it needs works: outbox stream, rate limits, revocations. */
    char incr_address[16 + PA_RKEY_MAX] = "INCR ";
    pa_rkey_address_bucket(incr_address + 5, sizeof incr_address - 5, "192.0.2.1");
    const char *allowed[] = {"XADD " PA_RKEY_OUTBOX " * group 9200", incr_address,
                             "SADD " PA_RKEY_REVOKED_FMT " 1",       "SET " PA_RKEY_REVOCATIONS_LAST_SEQ " 1",
                             "SISMEMBER " PA_RKEY_GROUPS " 9200",    "INCR " PA_RKEY_GROUP_BUCKET_FMT,
                             "HSET " PA_RKEY_RECORD_FMT " n 1"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        r = rstore_command(act, allowed[i], 9200, 1); /* group 9200, serial 1 where named */
        assert_non_null(r);
        if (r->type == REDIS_REPLY_ERROR) fprintf(stderr, "denied: %s: %s\n", allowed[i], r->str);
        assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
        freeReplyObject(r);
    }
    rstore_free(act);

    /* The audit user on B reads second secrets but cannot rewrite them. */
    redis_fixture_url(&rb, "audit", url, sizeof url);
    rstore *aud = rstore_new(&cfg, false, err, sizeof err);
    assert_non_null(aud);
    r = rstore_command(aud, "HGET " PA_RKEY_AUDIT_FMT " alg", 9200);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    r = rstore_command(aud, "HSET " PA_RKEY_AUDIT_FMT " secret x", 9200);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    rstore_free(aud);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_roundtrip),
        cmocka_unit_test(test_duplicate_and_invalid_refused),
        cmocka_unit_test(test_wrong_kek_refused),
        cmocka_unit_test(test_serial_batches_disjoint),
        cmocka_unit_test(test_serial_limit),
        cmocka_unit_test(test_generate_and_verify),
        cmocka_unit_test(test_concurrent_generators_disjoint),
        cmocka_unit_test(test_interrupted_generation_leaves_nothing),
        cmocka_unit_test(test_decode_cli),
        cmocka_unit_test(test_help_everywhere),
        cmocka_unit_test(test_group_cli),
        cmocka_unit_test(test_kek_cli),
        cmocka_unit_test(test_exit_codes_kek_create),
        cmocka_unit_test(test_exit_codes_group_create),
        cmocka_unit_test(test_exit_codes_group_show),
        cmocka_unit_test(test_exit_codes_group_list),
        cmocka_unit_test(test_exit_codes_keys_generate),
        cmocka_unit_test(test_exit_codes_key_verify),
        cmocka_unit_test(test_exit_codes_key_decode),
        cmocka_unit_test(test_exit_codes_dispatch),
        cmocka_unit_test(test_activation_user_cannot_read_audit_data),
        cmocka_unit_test(test_records_survive_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
