/* test_activation_usage.c -- the usage return (activation.usage): an
 * on-premises server's signed report of an order, exported to a file and
 * imported by the vendor's keystore, uploaded by the server itself to the
 * vendor's activation server (two activation-server processes, each with
 * its own Redis A), and the refusals: a changed report or order, a report
 * signed by a key the order does not delegate, a vendor-hosted order.
 * The upload is also started while the vendor is down and must succeed
 * soon after it comes up.
 *
 * The machine table is planted in the on-premises Redis A in the 28-byte
 * record layout of docs/volume.md, as volume.lua would leave it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "act_env.h"
#include "clock.h"
#include "order_env.h"
#include "redis_keys.h"
#include "rpc_methods.h"
#include "usage_file.h"

#define SERIAL "12345678"

static act_env op;     /* the customer's on-premises server and its stores */
static act_env vendor; /* the vendor's activation server and its stores */
static order_env oe;   /* vendor keys, order files (in op.dir) */
static char export_path[300], ca[340], cert[340], cert_key[340];
static pid_t onprem = -1;
static int onprem_port;

static void plant_machine(unsigned n, uint8_t flags, uint32_t first, uint32_t last) {
    uint8_t digest[16], rec[28] = {flags};
    for (int i = 0; i < 16; i++) digest[i] = (uint8_t)(n * 17 + (unsigned)i);
    for (int i = 0; i < 4; i++) rec[1 + i] = (uint8_t)(first >> (8 * i)), rec[5 + i] = (uint8_t)(last >> (8 * i));
    redisReply *r = redisCommand(op.ks_a, "HSET {o:" SERIAL "}:m %b %b", digest, sizeof digest, rec, sizeof rec);
    assert_non_null(r);
    freeReplyObject(r);
    if (n == 1) {
        r = redisCommand(op.ks_a, "HSET {o:" SERIAL "}:facts %b %s", digest, sizeof digest, "{\"hostname\":\"pc-1\"}");
        freeReplyObject(r);
    }
}

static int setup(void **state) {
    (void)state;
    if (env_start_stores(&op) != 0 || env_start_stores(&vendor) != 0 || env_make_certs(&vendor) != 0 ||
        order_env_init(&oe, &op) != 0)
        return -1;
    snprintf(ca, sizeof ca, "%s/ca.pem", vendor.certs);
    snprintf(cert, sizeof cert, "%s/audit-server.pem", vendor.certs);
    snprintf(cert_key, sizeof cert_key, "%s/audit-server.key", vendor.certs);
    char keys[300], path[300];
    snprintf(keys, sizeof keys, "%s/keys.txt", op.dir);
    FILE *f = fopen(keys, "w");
    if (!f) return -1;
    for (unsigned i = 0; i < 3; i++) {
        char key[PK_TEXT_LEN + 1];
        env_forge_key(8, 500 + i, key);
        fprintf(f, "%s\n", key);
    }
    fclose(f);
    const char *args[] = {"--serial",     SERIAL,       "--customer", "Example Corp", "--group",    "8",
                          "--product",    "Office",     "--mode",     "permanent",    "--seats",    "10",
                          "--valid-from", "2026-01-01", "--collect",  "hostname",     "--delegate", op.public_key,
                          "--keys-file",  keys,         NULL};
    const char *flags[] = {"--on-premises", "--signing-key", op.signing_key, NULL};
    if (order_env_create(&oe, NULL, "onprem.license", args, path, sizeof path) != 0 ||
        order_env_import(&oe, path, flags, NULL, NULL) != 0)
        return -1;
    plant_machine(1, 1, 1790000000, 1790003600);
    plant_machine(2, 1, 1790000100, 1790000200);
    plant_machine(3, 2, 1790000300, 1790000300);
    redisReply *r = redisCommand(op.ks_a, "HSET {o:" SERIAL "}:n seats 2 machines 3 over_term 0");
    freeReplyObject(r);
    snprintf(export_path, sizeof export_path, "%s/usage.json", op.dir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (onprem > 0) fixture_stop(onprem, SIGTERM, 20000);
    env_stop(&vendor);
    env_stop(&op);
    return 0;
}

static int run_keystore_import(const char *file, char **out, char **err) {
    char url[256];
    redis_fixture_url(&vendor.a, "keystore", url, sizeof url);
    const char *argv[] = {fixture_bin("keystore/keystore"),
                          "usage",
                          "import",
                          file,
                          "--order-public-key",
                          oe.vendor_pub,
                          "--activation-redis",
                          url,
                          NULL};
    return fixture_run((char *const *)argv, out, err);
}

static void export_report(void) {
    char *out = NULL, *err = NULL;
    const char *args[] = {"usage-export", SERIAL, "--out", export_path, "--signing-key", op.signing_key, NULL};
    int st = order_env_cli(&oe, "activation", args, &out, &err); /* reading is enough: the server's own user */
    if (st != 0) fprintf(stderr, "usage-export: %s", err ? err : "?");
    assert_int_equal(st, 0);
    free(out), free(err);
}

static char *vendor_usage(const char *field) {
    redisReply *r = redisCommand(vendor.ks_a, "HGET {o:" SERIAL "}:usage %s", field);
    assert_non_null(r);
    char *v = r->type == REDIS_REPLY_STRING ? strndup(r->str, r->len) : NULL;
    freeReplyObject(r);
    return v;
}

static void test_export_and_import(void **state) {
    (void)state;
    export_report();
    char *out = NULL, *err = NULL;
    int st = run_keystore_import(export_path, &out, &err);
    if (st != 0) fprintf(stderr, "usage import: %s", err ? err : "?");
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "stored the usage report of order " SERIAL));
    free(out), free(err);
    char *report = vendor_usage("report"), *seats = vendor_usage("seats_held");
    assert_non_null(report);
    assert_non_null(strstr(report, "\"machines\":3"));
    assert_non_null(strstr(report, "\"pc-1\"")); /* the collected facts travel */
    assert_non_null(strstr(report, "\"pending\""));
    assert_string_equal(seats, "2");
    free(report), free(seats);
    /* the same file again: acknowledged, not newer, kept */
    assert_int_equal(run_keystore_import(export_path, &out, &err), 0);
    assert_non_null(strstr(out, "already stored"));
    free(out), free(err);
}

static Volume__V1__UsageReport *read_export(void) {
    FILE *f = fopen(export_path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char err[256];
    Volume__V1__UsageReport *u = usage_file_read(buf, n, err, sizeof err);
    assert_non_null(u);
    return u;
}

static void write_report(const char *path, const Volume__V1__UsageReport *u) {
    char *text = usage_file_write(u);
    assert_non_null(text);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(text);
}

static void expect_refused(const char *path, const char *reason) {
    char *out = NULL, *err = NULL;
    int st = run_keystore_import(path, &out, &err);
    if (st != 1 || !strstr(err, reason)) fprintf(stderr, "import %s: %d %s", path, st, err ? err : "");
    assert_int_equal(st, 1);
    assert_non_null(strstr(err, reason));
    free(out), free(err);
}

/* Replaces `from` by `to` (same length) in the report JSON. */
static void edit_report(Volume__V1__UsageReport *u, const char *from, const char *to) {
    char *at = memmem(u->report.data, u->report.len, from, strlen(from));
    assert_non_null(at);
    memcpy(at, to, strlen(to));
}

static EVP_PKEY *load_private(const char *path) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(k);
    return k;
}

static void test_refusals(void **state) {
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/bad-usage.json", op.dir);
    /* one changed byte of the report */
    Volume__V1__UsageReport *u = read_export();
    edit_report(u, "\"seats_held\":2", "\"seats_held\":1");
    write_report(path, u);
    expect_refused(path, "tampered");
    volume__v1__usage_report__free_unpacked(u, NULL);
    /* one changed byte of the order */
    u = read_export();
    char *c = memmem(u->order.data, u->order.len, "Example Corp", 12);
    assert_non_null(c);
    c[0] = 'e';
    write_report(path, u);
    expect_refused(path, "tampered");
    volume__v1__usage_report__free_unpacked(u, NULL);
    /* signed by a key the order does not delegate: as the delegated key, or under its own name */
    EVP_PKEY *other = load_private(oe.foreign_key);
    char other_id[SIGNING_KEY_ID_LEN + 1];
    assert_int_equal(signing_key_id(other, other_id), 0);
    u = read_export();
    assert_int_equal(tagged_sign(other, TAG_USAGE, u->report.data, u->report.len, u->signature.data), 0);
    write_report(path, u);
    expect_refused(path, "tampered");
    char *id = strstr((char *)u->report.data, "\"server_key_id\":\"");
    assert_non_null(id);
    memcpy(id + 17, other_id, SIGNING_KEY_ID_LEN);
    assert_int_equal(tagged_sign(other, TAG_USAGE, u->report.data, u->report.len, u->signature.data), 0);
    write_report(path, u);
    expect_refused(path, "wrong server");
    volume__v1__usage_report__free_unpacked(u, NULL);
    EVP_PKEY_free(other);
    /* an order from another vendor */
    char other_pub[300];
    snprintf(other_pub, sizeof other_pub, "%s", oe.foreign_pub);
    char url[256], *out = NULL, *err = NULL;
    redis_fixture_url(&vendor.a, "keystore", url, sizeof url);
    const char *argv[] = {fixture_bin("keystore/keystore"),
                          "usage",
                          "import",
                          export_path,
                          "--order-public-key",
                          other_pub,
                          "--activation-redis",
                          url,
                          NULL};
    assert_int_equal(fixture_run((char *const *)argv, &out, &err), 1);
    assert_non_null(strstr(err, "foreign vendor"));
    free(out), free(err);
    /* not a usage file; no key given */
    snprintf(path, sizeof path, "%s/not-usage.json", op.dir);
    FILE *f = fopen(path, "w");
    fputs("{\"hello\": 1}", f);
    fclose(f);
    expect_refused(path, "malformed");
    const char *nokey[] = {fixture_bin("keystore/keystore"), "usage", "import", export_path, NULL};
    assert_int_equal(fixture_run((char *const *)nokey, &out, &err), 2);
    free(out), free(err);
    /* the vendor's store still holds the good report only */
    char *seats = vendor_usage("seats_held");
    assert_string_equal(seats, "2");
    free(seats);
}

/* The vendor's server on `port` (0: a free one), TLS with the test CA's server certificate. */
static void start_vendor(int port) {
    if (port == 0) {
        const char *flags[] = {"--order-public-key", oe.vendor_pub, "--tls-cert", cert, "--tls-key", cert_key, NULL};
        assert_int_equal(env_start_server(&vendor, flags), 0);
        return;
    }
    char url[256], listen[64];
    redis_fixture_url(&vendor.a, "activation", url, sizeof url);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    const char *argv[] = {fixture_bin("activation-server/activation-server"),
                          "--listen",
                          listen,
                          "--redis-url",
                          url,
                          "--kek",
                          vendor.kek_a,
                          "--signing-key",
                          vendor.signing_key,
                          "--metrics-listen",
                          "off",
                          "--workers",
                          "2",
                          "--order-public-key",
                          oe.vendor_pub,
                          "--tls-cert",
                          cert,
                          "--tls-key",
                          cert_key,
                          NULL};
    vendor.server = fixture_spawn((char *const *)argv, vendor.log_path, port, 15000);
    vendor.port = port;
    assert_true(vendor.server > 0);
}

static void start_onprem(int vendor_port) {
    char url[256], listen[64], target[64], log[320];
    onprem_port = fixture_free_port();
    redis_fixture_url(&op.a, "activation", url, sizeof url);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", onprem_port);
    snprintf(target, sizeof target, "127.0.0.1:%d", vendor_port);
    snprintf(log, sizeof log, "%s/onprem.log", op.dir);
    const char *argv[] = {fixture_bin("activation-server/activation-server"),
                          "--listen",
                          listen,
                          "--redis-url",
                          url,
                          "--on-premises",
                          "--signing-key",
                          op.signing_key,
                          "--order-public-key",
                          oe.vendor_pub,
                          "--insecure-plaintext",
                          "--metrics-listen",
                          "off",
                          "--workers",
                          "2",
                          "--log-level",
                          "debug",
                          "--usage-upload-to",
                          target,
                          "--usage-upload-ca",
                          ca,
                          "--usage-upload-interval-s",
                          "3600",
                          NULL};
    onprem = fixture_spawn((char *const *)argv, log, onprem_port, 15000);
    assert_true(onprem > 0);
}

static void stop_onprem(void) {
    assert_int_equal(fixture_stop(onprem, SIGTERM, 20000), 0);
    onprem = -1;
}

/* Waits up to `ms` for the vendor to hold a report made after `after`. */
static bool vendor_has_report_after(long long after, int ms) {
    int64_t until = pa_mono_ms() + ms;
    do {
        char *at = vendor_usage("generated_at");
        long long t = at ? atoll(at) : 0;
        free(at);
        if (t > after) return true;
        usleep(100 * 1000);
    } while (pa_mono_ms() < until);
    return false;
}

static long long onprem_uploaded_at(void) {
    redisReply *r = redisCommand(op.ks_a, "HGET {o:" SERIAL "}:usage uploaded_at");
    long long v = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    if (r) freeReplyObject(r);
    return v;
}

/* The on-premises server stamps uploaded_at after the vendor's answer arrives, so a test that has
 * seen the report at the vendor still waits for the stamp. */
static bool onprem_uploaded_within(int ms) {
    int64_t until = pa_mono_ms() + ms;
    while (onprem_uploaded_at() == 0 && pa_mono_ms() < until) usleep(100 * 1000);
    return onprem_uploaded_at() > 0;
}

static void test_upload(void **state) {
    (void)state;
    char *at = vendor_usage("generated_at");
    long long before = at ? atoll(at) : 0;
    free(at);
    sleep(1); /* reports are stamped in seconds: the upload's must be newer than the import's */
    start_vendor(0);
    start_onprem(vendor.port);
    assert_true(vendor_has_report_after(before, 15000));
    assert_true(onprem_uploaded_within(5000));
    char *received = vendor_usage("received_at");
    assert_non_null(received);
    free(received);
    /* the vendor's handler refuses a changed report over gRPC too, and an on-premises server takes none */
    rpc_client_tls tls = {.ca_pem = NULL};
    char err[256];
    char *ca_pem = rpc_read_pem(ca, err, sizeof err);
    tls.ca_pem = ca_pem;
    rpc_channel *ch = rpc_channel_new(vendor.target, &tls);
    Volume__V1__UsageReport *u = read_export();
    edit_report(u, "\"machines\":3", "\"machines\":4");
    rpc_result res;
    assert_int_equal(rpc_call_message(ch, rpc_channel_method(ch, PA_RPC_USAGE_REPORT), &u->base, 5000, &res),
                     GRPC_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(res.message, "tampered"));
    rpc_result_clear(&res);
    rpc_channel_free(ch);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", onprem_port);
    ch = rpc_channel_new(target, NULL);
    assert_int_equal(rpc_call_message(ch, rpc_channel_method(ch, PA_RPC_USAGE_REPORT), &u->base, 5000, &res),
                     GRPC_STATUS_FAILED_PRECONDITION);
    rpc_result_clear(&res);
    rpc_channel_free(ch);
    volume__v1__usage_report__free_unpacked(u, NULL);
    free(ca_pem);
    stop_onprem();
    assert_int_equal(env_stop_server(&vendor), 0);
}

static void test_upload_while_vendor_down(void **state) {
    (void)state;
    int port = fixture_free_port();
    redisReply *r = redisCommand(vendor.ks_a, "DEL {o:" SERIAL "}:usage");
    freeReplyObject(r);
    r = redisCommand(op.ks_a, "DEL {o:" SERIAL "}:usage");
    freeReplyObject(r);
    start_onprem(port); /* nothing listens there yet */
    sleep(2);
    assert_int_equal(onprem_uploaded_at(), 0);
    int64_t up = pa_mono_ms();
    start_vendor(port);
    assert_true(vendor_has_report_after(0, 20000)); /* backoff at most 8 s by then, plus a call */
    fprintf(stderr, "upload arrived %lld ms after the vendor came up\n", (long long)(pa_mono_ms() - up));
    assert_true(onprem_uploaded_within(5000));
    stop_onprem();
    assert_int_equal(env_stop_server(&vendor), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_and_import),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_upload),
        cmocka_unit_test(test_upload_while_vendor_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
