/* test_activation_orders.c -- importing volume orders (activation.orders):
 * every refusal of docs/volume.md's import table with its reason word, the
 * same file twice, a higher revision that keeps the machine table, list,
 * show, retire, the CLI's exit codes and help, the ACL (the server's own
 * user cannot import), and the per-worker order cache reading what import
 * wrote, as the `activation` user.
 *
 * Order files are made with the real `keystore order create` and imported
 * with the real `activation-server order import` against a private Redis A. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "act_env.h"
#include "order_armour.h"
#include "order_cache.h"
#include "order_env.h"
#include "redis_keys.h"

static act_env env;
static order_env oe;
static char keys_file[300], other_server_pub[300];

#define SERIAL "12345678"
#define KEY_COUNT 5

static int setup(void **state) {
    (void)state;
    if (env_start_stores(&env) != 0 || order_env_init(&oe, &env) != 0) return -1;
    snprintf(keys_file, sizeof keys_file, "%s/volume-keys.txt", env.dir);
    FILE *f = fopen(keys_file, "w");
    if (!f) return -1;
    fprintf(f, "# volume keys of group 8\n\n");
    for (unsigned i = 0; i < KEY_COUNT; i++) {
        char key[PK_TEXT_LEN + 1];
        env_forge_key(8, 1000 + i, key);
        fprintf(f, "%s\r\n", key);
    }
    fclose(f);
    snprintf(other_server_pub, sizeof other_server_pub, "%s", oe.foreign_pub); /* any other Ed25519 key */
    return 0;
}

static int teardown(void **state) {
    (void)state;
    env_stop(&env);
    return 0;
}

/* A vendor-hosted order of group `group` (and serial, revision, seats). */
static void make_order(const char *name, const char *serial, const char *revision, const char *group, const char *seats,
                       char *path, size_t n) {
    const char *args[] = {
        "--serial",   serial,       "--revision", revision,    "--customer",   "Example Corp", "--group",
        group,        "--product",  "Office",     "--edition", "Pro",          "--features",   "editor,spreadsheet",
        "--mode",     "concurrent", "--seats",    seats,       "--valid-from", "2026-01-01",   "--valid-until",
        "2099-12-31", NULL};
    assert_int_equal(order_env_create(&oe, NULL, name, args, path, n), 0);
}

/* Runs import; asserts the exit status and that stderr names `reason` (NULL: stdout holds `says`). */
static void expect_import(const char *path, const char *const *extra, int status, const char *reason) {
    char *out = NULL, *err = NULL;
    int st = order_env_import(&oe, path, extra, &out, &err);
    if (st != status || (reason && (!err || !strstr(err, reason))))
        fprintf(stderr, "import %s: status %d, out '%s', err '%s'\n", path, st, out ? out : "", err ? err : "");
    assert_int_equal(st, status);
    if (reason) assert_non_null(strstr(err, reason));
    free(out);
    free(err);
}

static char *hget(const char *key, const char *field) {
    redisReply *r = redisCommand(env.ks_a, "HGET %s %s", key, field);
    assert_non_null(r);
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return v;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Rewrites an order file after `edit` changed its decoded parts, re-decoding
 * so the headers match the body (what someone editing the bytes would do). */
static void rewrite(const char *from, const char *to, void (*edit)(order_file *f)) {
    char *text = read_text(from), err[256];
    order_file f, g;
    assert_int_equal(order_armour_read(&f, text, strlen(text), err, sizeof err), ORDER_OK);
    edit(&f);
    assert_int_equal(order_file_from_parts(&g, f.order, f.order_len, f.signature, sizeof f.signature, f.key_id, f.keys,
                                           f.keys_len, err, sizeof err),
                     ORDER_OK);
    char *out = order_armour_write(&g);
    write_text(to, out);
    free(out);
    free(text);
    order_file_clear(&f);
    order_file_clear(&g);
}

static void edit_customer(order_file *f) {
    char *p = memmem(f->order, f->order_len, "Example Corp", 12);
    assert_non_null(p);
    p[6] = 'f'; /* "Examplf Corp": still a valid order, no longer the signed one */
}

static void edit_keys(order_file *f) {
    assert_non_null(f->keys);
    f->keys[f->keys_len - 1] ^= 0x01;
}

static void test_refusals(void **state) {
    (void)state;
    char good[300], path[300], foreign[300], expired[300], onprem[300], onprem_other[300];
    make_order("good.license", SERIAL, "1", "7", "50", good, sizeof good);

    /* malformed: not an order at all, and headers edited */
    snprintf(path, sizeof path, "%s/junk.license", env.dir);
    write_text(path, "Dear vendor,\nthis is not an order.\n");
    expect_import(path, NULL, 1, "malformed");
    char *text = read_text(good), *at = strstr(text, "Seats: 50");
    assert_non_null(at);
    at[7] = '9';
    snprintf(path, sizeof path, "%s/edited.license", env.dir);
    write_text(path, text);
    free(text);
    expect_import(path, NULL, 1, "malformed");

    /* foreign vendor: another vendor's key, or no key given at all */
    const char *args[] = {"--serial",     "33333333",   "--customer", "Other",     "--group", "70",
                          "--product",    "X",          "--mode",     "permanent", "--seats", "5",
                          "--valid-from", "2026-01-01", NULL};
    assert_int_equal(order_env_create(&oe, oe.foreign_key, "foreign.license", args, foreign, sizeof foreign), 0);
    expect_import(foreign, NULL, 1, "foreign vendor");
    char *out = NULL, *err = NULL;
    const char *nokey[] = {"import", good, NULL};
    assert_int_equal(order_env_cli(&oe, NULL, nokey, &out, &err), 1);
    assert_non_null(strstr(err, "foreign vendor"));
    free(out), free(err);

    /* tampered: a changed byte under a good key id; keys that do not match keys_digest */
    snprintf(path, sizeof path, "%s/tampered.license", env.dir);
    rewrite(good, path, edit_customer);
    expect_import(path, NULL, 1, "tampered");

    /* expired */
    const char *old[] = {"--serial",     "44444444",   "--customer",    "Old",        "--group", "71",
                         "--product",    "X",          "--mode",        "permanent",  "--seats", "5",
                         "--valid-from", "2020-01-01", "--valid-until", "2021-01-01", NULL};
    assert_int_equal(order_env_create(&oe, NULL, "expired.license", old, expired, sizeof expired), 0);
    expect_import(expired, NULL, 1, "expired");

    /* wrong server, both directions, and a key delegated to another server */
    const char *op[] = {
        "--serial",    "55555555",  "--customer", "OnPrem", "--group",      "8",          "--product",  "X",
        "--mode",      "permanent", "--seats",    "5",      "--valid-from", "2026-01-01", "--delegate", env.public_key,
        "--keys-file", keys_file,   NULL};
    assert_int_equal(order_env_create(&oe, NULL, "onprem.license", op, onprem, sizeof onprem), 0);
    expect_import(onprem, NULL, 1, "wrong server");
    const char *on_prem_flags[] = {"--on-premises", "--signing-key", env.signing_key, NULL};
    expect_import(good, on_prem_flags, 1, "wrong server");
    const char *op2[] = {"--serial",     "55555556",   "--customer", "OnPrem",
                         "--group",      "8",          "--product",  "X",
                         "--mode",       "permanent",  "--seats",    "5",
                         "--valid-from", "2026-01-01", "--delegate", other_server_pub,
                         "--keys-file",  keys_file,    NULL};
    assert_int_equal(order_env_create(&oe, NULL, "onprem-other.license", op2, onprem_other, sizeof onprem_other), 0);
    expect_import(onprem_other, on_prem_flags, 1, "wrong server");
    snprintf(path, sizeof path, "%s/onprem-keys.license", env.dir);
    rewrite(onprem, path, edit_keys);
    expect_import(path, on_prem_flags, 1, "tampered");

    /* nothing of all that reached the store */
    redisReply *r = redisCommand(env.ks_a, "SCARD %s", PA_RKEY_ORDERS);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);

    /* older revision and conflict need something imported first */
    char r2[300], other[300];
    make_order("r2.license", SERIAL, "2", "7", "50", r2, sizeof r2);
    expect_import(r2, NULL, 0, NULL);
    expect_import(good, NULL, 1, "older revision");
    make_order("other.license", "22222222", "1", "9,7", "10", other, sizeof other);
    expect_import(other, NULL, 1, "conflict");
    r = redisCommand(env.ks_a, "EXISTS {o:22222222}:order");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    /* an on-premises order on an on-premises server is accepted (its keys stored) */
    expect_import(onprem, on_prem_flags, 0, NULL);
    r = redisCommand(env.ks_a, "SCARD {o:55555555}:keys");
    assert_int_equal(r->integer, KEY_COUNT);
    freeReplyObject(r);
}

static void test_same_twice_and_revision(void **state) {
    (void)state;
    char r1[300], r2[300], r3[300], key[PA_RKEY_MAX], mkey[PA_RKEY_MAX];
    make_order("b1.license", "66666666", "1", "20", "10", r1, sizeof r1);
    make_order("b2.license", "66666666", "2", "20", "25", r2, sizeof r2);
    make_order("b3.license", "66666666", "2", "20", "30", r3, sizeof r3); /* same revision, other content */
    pa_rkey_order(key, sizeof key, "66666666");
    pa_rkey_order_machines(mkey, sizeof mkey, "66666666");
    char *out = NULL, *err = NULL;
    assert_int_equal(order_env_import(&oe, r1, NULL, &out, &err), 0);
    assert_non_null(strstr(out, "imported order 66666666 revision 1"));
    free(out), free(err);
    char *v1 = hget(key, "version");
    assert_int_equal(order_env_import(&oe, r1, NULL, &out, &err), 0);
    assert_non_null(strstr(out, "already imported"));
    free(out), free(err);
    char *v1b = hget(key, "version");
    assert_string_equal(v1, v1b); /* a no-op: not even the version moved */

    /* a machine planted in the table survives the new revision */
    uint8_t digest[16] = {1, 2, 3}, record[28] = {1};
    redisReply *r = redisCommand(env.ks_a, "HSET %s %b %b", mkey, digest, sizeof digest, record, sizeof record);
    freeReplyObject(r);
    r = redisCommand(env.ks_a, "HSET {o:66666666}:n seats 1");
    freeReplyObject(r);
    assert_int_equal(order_env_import(&oe, r2, NULL, &out, &err), 0);
    assert_non_null(strstr(out, "replaces revision 1"));
    free(out), free(err);
    char *v2 = hget(key, "version"), *seats = hget(key, "seats"), *rev = hget(key, "revision");
    assert_int_equal(strtoll(v2, NULL, 10), strtoll(v1, NULL, 10) + 1);
    assert_string_equal(seats, "25");
    assert_string_equal(rev, "2");
    r = redisCommand(env.ks_a, "HGET %s %b", mkey, digest, sizeof digest);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_memory_equal(r->str, record, sizeof record);
    freeReplyObject(r);
    char *held = hget("{o:66666666}:n", "seats");
    assert_string_equal(held, "1");
    expect_import(r3, NULL, 1, "older revision");
    free(v1), free(v1b), free(v2), free(seats), free(rev), free(held);
}

static void test_list_show_retire(void **state) {
    (void)state;
    char path[300], *out = NULL, *err = NULL;
    make_order("c1.license", "77777777", "1", "30", "40", path, sizeof path);
    expect_import(path, NULL, 0, NULL);
    const char *list[] = {"list", "--json", NULL};
    assert_int_equal(order_env_cli(&oe, NULL, list, &out, &err), 0);
    assert_non_null(strstr(out, "\"service_serial\":\"77777777\""));
    assert_non_null(strstr(out, "\"service_serial\":\"12345678\""));
    free(out), free(err);
    const char *show[] = {"show", "77777777", "--json", NULL};
    assert_int_equal(order_env_cli(&oe, NULL, show, &out, &err), 0);
    assert_non_null(strstr(out, "\"seats\":40"));
    assert_non_null(strstr(out, "\"retired\":false"));
    assert_non_null(strstr(out, "\"features\":[\"editor\",\"spreadsheet\"]"));
    free(out), free(err);
    const char *show_text[] = {"show", "77777777", NULL};
    assert_int_equal(order_env_cli(&oe, "activation", show_text, &out, &err), 0); /* reading is the server's right */
    assert_non_null(strstr(out, "order 77777777 revision 1"));
    free(out), free(err);
    const char *retire[] = {"retire", "77777777", NULL};
    assert_int_equal(order_env_cli(&oe, "activation", retire, &out, &err), 1); /* writing is not */
    free(out), free(err);
    assert_int_equal(order_env_cli(&oe, NULL, retire, &out, &err), 0);
    assert_non_null(strstr(out, "retired order 77777777"));
    free(out), free(err);
    assert_int_equal(order_env_cli(&oe, NULL, retire, &out, &err), 0);
    assert_non_null(strstr(out, "already retired"));
    free(out), free(err);
    assert_int_equal(order_env_cli(&oe, NULL, show, &out, &err), 0);
    assert_non_null(strstr(out, "\"retired\":true"));
    free(out), free(err);
    const char *missing[] = {"show", "99999999", NULL}, *retire_missing[] = {"retire", "99999999", NULL};
    assert_int_equal(order_env_cli(&oe, NULL, missing, &out, &err), 1);
    free(out), free(err);
    assert_int_equal(order_env_cli(&oe, NULL, retire_missing, &out, &err), 1);
    free(out), free(err);
}

static void test_exit_codes(void **state) {
    (void)state;
    char *out = NULL, *err = NULL, path[300];
    const char *help[] = {"--help", NULL}, *import_help[] = {"import", "--help", NULL};
    assert_int_equal(order_env_cli(&oe, NULL, help, &out, &err), 0);
    assert_non_null(strstr(out, "import"));
    assert_non_null(strstr(out, "retire"));
    free(out), free(err);
    assert_int_equal(order_env_cli(&oe, NULL, import_help, &out, &err), 0);
    assert_non_null(strstr(out, "--order-public-key"));
    assert_non_null(strstr(out, "--on-premises"));
    assert_null(strstr(out, "--audit-target")); /* the daemon's other options are accepted, not shown */
    free(out), free(err);
    const char *bad[][4] = {{"bogus", NULL},         {"import", NULL},
                            {"show", "123", NULL},   {"show", "1234567x", NULL},
                            {"list", "extra", NULL}, {"list", "--no-such-option", NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(order_env_cli(&oe, NULL, bad[i], &out, &err), 2);
        free(out), free(err);
    }
    /* the daemon's options are accepted (one config file serves both) */
    const char *daemon_opts[] = {"list", "--workers", "3", "--listen", "127.0.0.1:1", NULL};
    assert_int_equal(order_env_cli(&oe, NULL, daemon_opts, &out, &err), 0);
    free(out), free(err);
    /* the server's own user may not import: the store says so, exit 1 */
    make_order("d1.license", "88888888", "1", "40", "5", path, sizeof path);
    const char *imp[] = {"import", path, "--order-public-key", oe.vendor_pub, NULL};
    assert_int_equal(order_env_cli(&oe, "activation", imp, &out, &err), 1);
    assert_non_null(strstr(err, "keystore user"));
    free(out), free(err);
    /* the daemon: an on-premises server holds no KEK */
    const char *daemon[] = {fixture_bin("activation-server/activation-server"),
                            "--on-premises",
                            "--kek",
                            env.kek_a,
                            "--signing-key",
                            env.signing_key,
                            "--insecure-plaintext",
                            "--metrics-listen",
                            "off",
                            NULL};
    assert_int_equal(fixture_run((char *const *)daemon, &out, &err), 2);
    assert_non_null(strstr(err, "--kek"));
    free(out), free(err);
    /* keystore order show / create errors */
    const char *show[] = {
        fixture_bin("keystore/keystore"), "order", "show", path, "--order-public-key", oe.foreign_pub, NULL};
    assert_int_equal(fixture_run((char *const *)show, &out, &err), 1);
    assert_non_null(strstr(err, "foreign vendor"));
    free(out), free(err);
    const char *create[] = {fixture_bin("keystore/keystore"),
                            "order",
                            "create",
                            "--order-key",
                            oe.vendor_key,
                            "--serial",
                            "1234",
                            "--customer",
                            "C",
                            "--group",
                            "1",
                            "--product",
                            "P",
                            "--mode",
                            "permanent",
                            "--seats",
                            "1",
                            "--valid-from",
                            "2026-01-01",
                            NULL};
    assert_int_equal(fixture_run((char *const *)create, &out, &err), 2);
    assert_non_null(strstr(err, "service_serial"));
    free(out), free(err);
}

/* What the server's workers see: the cache, as the `activation` user. */
static void test_cache(void **state) {
    (void)state;
    char url[256], err[256];
    redis_fixture_url(&env.a, "activation", url, sizeof url);
    rstore_config rc = {.url = url, .connect_timeout_ms = 1000, .command_timeout_ms = 1000};
    rstore *r = rstore_new(&rc, false, err, sizeof err);
    assert_non_null(r);
    order_cache *c = order_cache_new(r, 100);
    const order_record *o = NULL;
    assert_int_equal(order_cache_for_group(c, 7, &o), ORDER_FOUND);
    assert_string_equal(o->serial, SERIAL);
    assert_int_equal(o->revision, 2);
    assert_string_equal(o->product, "Office");
    assert_int_equal(o->n_features, 2);
    assert_int_equal(o->mode, SEAT_MODE_CONCURRENT);
    assert_int_equal(o->heartbeat_seconds, ORDER_DEFAULT_HEARTBEAT_SECONDS);
    assert_int_equal(order_cache_for_group(c, 6, &o), ORDER_NONE);
    assert_int_equal(order_cache_get(c, "77777777", &o), ORDER_FOUND);
    assert_true(o->retired);
    assert_int_equal(order_cache_get(c, "00000001", &o), ORDER_NONE);
    /* the on-premises order: its keys by salted hash */
    assert_int_equal(order_cache_get(c, "55555555", &o), ORDER_FOUND);
    assert_true(o->on_premises);
    assert_int_equal(o->n_key_hashes, KEY_COUNT);
    char key[PK_TEXT_LEN + 1];
    env_forge_key(8, 1002, key);
    assert_true(order_key_accepted(o, key));
    env_forge_key(8, 2002, key);
    assert_false(order_key_accepted(o, key));
    /* a retire seen through the version volume.lua would report */
    char path[300];
    make_order("e1.license", "90000001", "1", "50", "5", path, sizeof path);
    expect_import(path, NULL, 0, NULL);
    assert_int_equal(order_cache_refresh(c), 0);
    assert_int_equal(order_cache_get(c, "90000001", &o), ORDER_FOUND);
    uint64_t v = o->version;
    const char *retire[] = {"retire", "90000001", NULL};
    assert_int_equal(order_env_cli(&oe, NULL, retire, NULL, NULL), 0);
    assert_int_equal(order_cache_check_version(c, "90000001", v + 1, &o), ORDER_FOUND);
    assert_true(o->retired);
    assert_int_equal(o->version, v + 1);
    /* a damaged order keeps its groups: UNAVAILABLE, never mistaken for retail */
    redisReply *rep = redisCommand(env.ks_a, "HSET {o:90000001}:order signed garbage version 99");
    freeReplyObject(rep);
    assert_int_equal(order_cache_check_version(c, "90000001", 99, &o), ORDER_UNAVAILABLE);
    assert_int_equal(order_cache_for_group(c, 50, &o), ORDER_UNAVAILABLE);
    order_cache_free(c);
    rstore_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_same_twice_and_revision),
        cmocka_unit_test(test_list_show_retire),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
