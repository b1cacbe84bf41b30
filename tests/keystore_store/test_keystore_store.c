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
    rstore_config cfg = {url, NULL, 1000, 10000};
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
    assert_non_null(strstr(out, "\"first_ok\":true,\"second_ok\":true"));
    assert_non_null(strstr(out, "\"genuine\":true"));
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
    assert_int_equal(cli(ver3, 0, &out, &errs), 1);
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
    assert_non_null(strstr(out, "\"group\":3311,\"serial\":1,"));
    assert_non_null(strstr(out, "\"checksum_ok\":true"));
    assert_non_null(strstr(out, "\"upgrade\":false"));
    assert_non_null(strstr(out, "\"security_first\":"));
    assert_non_null(strstr(out, "\"security_second\":"));
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
    assert_non_null(strstr(out, "\"group\":4365,\"serial\":11,"));
    assert_non_null(strstr(out, "\"checksum\":438,"));
    free(out);
    free(errs);

    /* A mistyped character: fields shown, checksum_ok false, exit 1, reason on stderr. */
    const char *a4[] = {"key", "decode", "W269N-WFGWX-YVC9B-4J6C9-T83GY", "--json", NULL};
    assert_int_equal(cli(a4, 0, &out, &errs), 1);
    assert_non_null(strstr(out, "\"checksum_ok\":false"));
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
    const char *create[] = {"group", "create", "--id", "9100", "--product", "Server", "--edition", "Datacenter",
                            "--channel", "volume", "--lease-days", "30", "--audit-rate", "12.5", "--features", "a",
                            "--features", "b", "--audit-mode", "online", "--audit-unreachable", "offline",
                            "--alg-first", "aes256-cmac", "--upgrade-allowed", "--max-machines", "0", NULL};
    assert_int_equal(cli(create, 1, &out, &errs), 0);
    assert_non_null(strstr(out, "created group 9100"));
    free(out);
    free(errs);
    assert_int_equal(cli(create, 1, &out, &errs), 1);
    assert_non_null(strstr(errs, "already exists"));
    free(out);
    free(errs);

    const char *show[] = {"group", "show", "9100", "--json", NULL};
    assert_int_equal(cli(show, 1, &out, &errs), 0);
    const char *want[] = {"\"id\":9100", "\"product\":\"Server\"", "\"edition\":\"Datacenter\"", "\"channel\":\"volume\"",
                          "\"upgrade_allowed\":true", "\"alg_first\":\"aes256-cmac\"", "\"max_machines\":0",
                          "\"lease_seconds\":2592000", "\"renew_seconds\":604800", "\"audit_rate_ppm\":125000",
                          "\"audit_mode\":\"online\"", "\"audit_unreachable\":\"offline\"", "\"features\":\"a,b\"",
                          "\"serials_issued\":0", "\"alg_second\":\"hmac-sha256\""};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (!strstr(out, want[i])) fprintf(stderr, "missing %s in %s", want[i], out);
        assert_non_null(strstr(out, want[i]));
    }
    assert_null(strstr(out, "secret"));
    free(out);
    free(errs);

    const char *list[] = {"group", "list", NULL};
    assert_int_equal(cli(list, 1, &out, &errs), 0);
    assert_non_null(strstr(out, "9100"));
    assert_non_null(strstr(out, "Server"));
    free(out);
    free(errs);

    const char *bad[] = {"group", "create", "--id", "9101", "--product", "X", "--channel", "shop", NULL};
    assert_int_equal(cli(bad, 1, &out, &errs), 1);
    assert_non_null(strstr(errs, "--channel"));
    free(out);
    free(errs);
    const char *bad2[] = {"group", "create", "--id", "9101", "--product", "X", "--audit-rate", "150", NULL};
    assert_int_equal(cli(bad2, 1, &out, &errs), 1);
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
    rstore_config cfg = {url, NULL, 1000, 1000};
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
    rstore_config cfg = {url, NULL, 1000, 1000};
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
    const char *denied[] = {"HGETALL " PA_RKEY_AUDIT_FMT, "GET " PA_RKEY_AUDIT_FMT, "KEYS *", "FLUSHALL", "CONFIG GET *",
                            "DEBUG SLEEP 0", "SCRIPT FLUSH", "SADD " PA_RKEY_GROUPS " 1", "ACL LIST"};
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
                             "SADD " PA_RKEY_REVOKED_FMT " 1", "SET " PA_RKEY_REVOCATIONS_LAST_SEQ " 1",
                             "SISMEMBER " PA_RKEY_GROUPS " 9200", "INCR " PA_RKEY_GROUP_BUCKET_FMT,
                             "HSET " PA_RKEY_RECORD_FMT " n 1"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        r = rstore_command(act, allowed[i], 9200, 1);   /* group 9200, serial 1 where named */
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
        cmocka_unit_test(test_activation_user_cannot_read_audit_data),
        cmocka_unit_test(test_records_survive_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
