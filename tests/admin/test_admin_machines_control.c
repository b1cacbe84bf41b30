/* test_admin_machines.c -- the seat controls of the admin API
 * (admin-server/machines_control.h) with a real activation-server and real
 * Activate / Renew / Deactivate calls: the approvals queue shows a machine
 * that asked to be deactivated; deny is reported at its next Renew;
 * approve frees the seat and Renew answers DEACTIVATED; a forced
 * deactivation; designation lets a waiting device activate; every refusal
 * (no order, no machine, nothing asked, malformed names) is a clear 4xx.
 * A machine is also named by the machine directory's id, once the
 * directory has taken in the order's machine log. Last, on premises: an
 * order imported through the API (delegating the server's key) serves
 * activations, and a revocation through the API (no audit server: into
 * {g:ID}:revoked) makes the key's next Activate answer KEY_REVOKED. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_env.h"
#include "api_stub.h"
#include "machine_ingest.h"
#include "machine_ref.h"
#include "machine_rows.h"
#include "machines_control.h"
#include "order_env.h"
#include "order_keyring.h"
#include "orders_api.h"
#include "revocations.h"
#include "volume_calls.h"

static act_env env;
static order_env oe;
static rstore *admin;

enum { G_APPROVE = 7501, G_DESIG = 7502, G_DIR = 7503, G_ONPREM = 7504 };

static void tune_volume(group_record *r) { r->channel = GROUP_CHANNEL_VOLUME; }

static int setup(void **state) {
    char url[256], err[256];
    if (env_start_stores(&env) != 0 || order_env_init(&oe, &env) != 0) return -1;
    volume_calls_init(&env, &oe);
    if (env_create_group(&env, G_APPROVE, tune_volume) != 0 || env_create_group(&env, G_DESIG, tune_volume) != 0 ||
        env_create_group(&env, G_DIR, tune_volume) != 0)
        return -1;
    redis_fixture_url(&env.a, "admin", url, sizeof url);
    rstore_config rc = {.url = url, .connect_timeout_ms = 1000, .command_timeout_ms = 5000};
    if (!(admin = rstore_new(&rc, false, err, sizeof err))) return fprintf(stderr, "setup: %s\n", err), -1;
    const char *flags[] = {
        "--order-public-key", oe.vendor_pub, "--order-sweep-ms", "200", "--group-refresh-ms", "300", NULL};
    return env_start_server(&env, flags);
}

static int teardown(void **state) {
    int st = env.server >= 0 ? env_stop_server(&env) : 0;
    rstore_free(admin);
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

static api_result machine_call(http_handler h, const char *serial, const char *hex) {
    char id[64];
    snprintf(id, sizeof id, "%s-%s", serial, hex);
    return api_call(h, admin, "POST", (const char *[]){id, NULL}, NULL, NULL, 0);
}

static int status_of(http_handler h, const char *serial, const char *hex) {
    api_result a = machine_call(h, serial, hex);
    int st = a.status;
    assert_int_equal(a.answers, 1);
    assert_int_equal(a.trails, 1);
    api_result_clear(&a);
    return st;
}

static size_t approvals(const char *want_id) {
    api_result a = api_call(approvals_list, admin, "GET", NULL, NULL, NULL, 0);
    assert_int_equal(a.status, 200);
    json_t *items = json_object_get(a.body, "items");
    size_t n = json_array_size(items);
    if (want_id) {
        assert_true(n >= 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "id")), want_id);
    }
    api_result_clear(&a);
    return n;
}

/* Approve, deny and force through the API, seen by the machines' calls. */
static void test_decisions(void **state) {
    const char *o = "45000001";
    order(o, G_APPROVE, "permanent", "1", (const char *[]){"--deactivation-approval", "on", NULL});
    char key[PK_TEXT_LEN + 1], hex1[33], hex2[33], reason[64], id1[64];
    int deact;
    assert_int_equal(env_make_key(&env, G_APPROVE, 1, false, 0, key), 0);
    digest_hex(1, hex1);
    digest_hex(2, hex2);
    snprintf(id1, sizeof id1, "%s-%s", o, hex1);
    grant a = activate(key, 1);
    assert_non_null(a.lic);
    assert_int_equal(status_of(machines_approve, o, hex1), 409); /* nothing asked yet */
    assert_int_equal(approvals(NULL), 0);

    license_call d = by_license(PA_RPC_DEACTIVATE, a.license_id, 1, 1);
    assert_int_equal(d.status, GRPC_STATUS_OK);
    license_call_free(&d);
    assert_int_equal(approvals(id1), 1);
    api_result r = machine_call(machines_deny, o, hex1);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.body, "result")), "deny");
    assert_int_equal(json_integer_value(json_object_get(r.body, "seats_used")), 1);
    char trail[128];
    snprintf(trail, sizeof trail, "machine.deny %s ok", id1);
    assert_string_equal(r.trail, trail);
    api_result_clear(&r);
    assert_int_equal(approvals(NULL), 0);
    assert_int_equal(renew_status(a.license_id, 1, 1, NULL, &deact), GRPC_STATUS_OK);
    assert_int_equal(deact, ACTIVATION__V1__VOLUME_STATUS__DEACTIVATION__DEACTIVATION_DENIED);

    d = by_license(PA_RPC_DEACTIVATE, a.license_id, 1, 1);
    license_call_free(&d);
    /* The body form of the name, upper-case hex accepted. */
    char body[128], upper[33];
    for (int i = 0; i < 33; i++) upper[i] = (char)(hex1[i] >= 'a' && hex1[i] <= 'f' ? hex1[i] - 32 : hex1[i]);
    snprintf(body, sizeof body, "{\"order\": \"%s\", \"machine\": \"%s\"}", o, upper);
    r = api_call_json(machines_approve, admin, "POST", (const char *[]){"-", NULL}, NULL, body);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.body, "seats_used")), 0);
    assert_string_equal(json_string_value(json_object_get(r.body, "machine")), hex1);
    api_result_clear(&r);
    assert_int_equal(renew_status(a.license_id, 1, 1, reason, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(reason, "DEACTIVATED");

    grant b = activate(key, 2);
    assert_non_null(b.lic);
    assert_int_equal(status_of(machines_deactivate, o, hex2), 200);
    assert_int_equal(renew_status(b.license_id, 2, 2, reason, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(reason, "DEACTIVATED");

    /* Refusals. */
    assert_int_equal(status_of(machines_deactivate, o, "00112233445566778899aabbccddeeff"), 404);
    assert_int_equal(status_of(machines_deactivate, "45999999", hex2), 404);
    const char *bad[] = {"45000001", "45000001-xyz", "4500000-00112233445566778899aabbccddeeff", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r = api_call(machines_deactivate, admin, "POST", (const char *[]){bad[i], NULL}, NULL, NULL, 0);
        assert_int_equal(r.status, 400);
        assert_int_equal(r.trails, 1);
        api_result_clear(&r);
    }
    r = api_call_json(machines_approve, admin, "POST", (const char *[]){"-", NULL}, NULL, "{\"order\": \"45000001\"}");
    assert_int_equal(r.status, 400);
    api_result_clear(&r);
    grant_free(&a), grant_free(&b);
}

/* Designation through the API: a waiting device activates once designated. */
static void test_designation(void **state) {
    const char *o = "45000002";
    order(o, G_DESIG, "permanent", "10", (const char *[]){"--auto-activation", "off", NULL});
    char key[PK_TEXT_LEN + 1], hex[33], body[128];
    assert_int_equal(env_make_key(&env, G_DESIG, 1, false, 0, key), 0);
    grant p = activate(key, 1);
    assert_int_equal(p.resp->volume->pending, ACTIVATION__V1__VOLUME_STATUS__PENDING__PENDING_NOT_DESIGNATED);
    digest_hex(1, hex);
    snprintf(body, sizeof body, "{\"machine\": \"%s\"}", hex);
    api_result r = api_call_json(designated_add, admin, "POST", (const char *[]){o, NULL}, NULL, body);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.body, "changed")));
    api_result_clear(&r);
    grant g = activate(key, 1);
    assert_non_null(g.lic);

    machine_ask mac_ask = {.mac = "02:AA:BB:CC:DD:EE"};
    r = api_call_json(designated_add, admin, "POST", (const char *[]){o, NULL}, NULL,
                      "{\"mac\": \"02:aa:bb:cc:dd:ee\"}");
    assert_int_equal(r.status, 200);
    api_result_clear(&r);
    grant m = activate_on(env.ch, key, 3, 3, &mac_ask);
    assert_non_null(m.lic);
    r = api_call_json(designated_remove, admin, "DELETE", (const char *[]){o, NULL}, NULL,
                      "{\"mac\": \"02:AA:BB:CC:DD:EE\"}");
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.body, "changed")));
    api_result_clear(&r);
    r = api_call_json(designated_remove, admin, "DELETE", (const char *[]){o, NULL}, NULL,
                      "{\"mac\": \"02:AA:BB:CC:DD:EE\"}");
    assert_true(json_is_false(json_object_get(r.body, "changed")));
    api_result_clear(&r);
    grant other = activate_on(env.ch, key, 4, 4, &mac_ask);
    assert_int_equal(other.resp->volume->pending, ACTIVATION__V1__VOLUME_STATUS__PENDING__PENDING_NOT_DESIGNATED);

    const char *bad[] = {"{\"mac\": \"nonsense\"}",
                         "{\"machine\": \"abc\"}",
                         "{}",
                         "{\"mac\": \"02:aa:bb:cc:dd:ee\", \"serial\": \"S\"}",
                         "{\"colour\": 1}",
                         "{\"serial\": 5}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r = api_call_json(designated_add, admin, "POST", (const char *[]){o, NULL}, NULL, bad[i]);
        if (r.status != 400) fprintf(stderr, "%s: %d\n", bad[i], r.status);
        assert_int_equal(r.status, 400);
        assert_int_equal(r.trails, 1);
        api_result_clear(&r);
    }
    r = api_call_json(designated_add, admin, "POST", (const char *[]){"45999999", NULL}, NULL, body);
    assert_int_equal(r.status, 404);
    api_result_clear(&r);
    grant_free(&p), grant_free(&g), grant_free(&m), grant_free(&other);
}

/* The directory's id names the machine (its order from the directory, its
 * digest from the order's table). */
static void test_directory_id(void **state) {
    const char *o = "45000003";
    order(o, G_DIR, "permanent", "5", NULL);
    char key[PK_TEXT_LEN + 1], hex[33], reason[64];
    assert_int_equal(env_make_key(&env, G_DIR, 1, false, 0, key), 0);
    grant g = activate(key, 5);
    assert_non_null(g.lic);
    digest_hex(5, hex);
    machine_ingest *in = machine_ingest_new(admin, 5000);
    assert_non_null(in);
    assert_true(machine_ingest_drain(in, 1000) >= 1);
    machine_ingest_free(in);
    machine_filters f = {.order = o, .status = MACHINE_STATUS_ANY};
    char err[256], id[MACHINE_ID_TEXT_LEN + 1];
    machine_rows *rows = machine_rows_open(admin, &f, err, sizeof err);
    assert_non_null(rows);
    const machine_row *row;
    assert_int_equal(machine_rows_next(rows, &row), 1);
    snprintf(id, sizeof id, "%s", row->id);
    machine_rows_close(rows);

    machines_control_setup(NULL); /* not accepted without a directory */
    api_result r = api_call(machines_deactivate, admin, "POST", (const char *[]){id, NULL}, NULL, NULL, 0);
    assert_int_equal(r.status, 400);
    api_result_clear(&r);
    machines_control_setup(machine_ref_order);
    r = api_call(machines_deactivate, admin, "POST", (const char *[]){"AAAAAAAAAAAAAAAA", NULL}, NULL, NULL, 0);
    assert_int_equal(r.status, 404);
    api_result_clear(&r);
    r = api_call(machines_deactivate, admin, "POST", (const char *[]){id, NULL}, NULL, NULL, 0);
    if (r.status != 200) fprintf(stderr, "deactivate %s: %d %s\n", id, r.status, api_error(&r));
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.body, "machine")), hex);
    assert_string_equal(json_string_value(json_object_get(r.body, "order")), o);
    api_result_clear(&r);
    assert_int_equal(renew_status(g.license_id, 5, 5, reason, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(reason, "DEACTIVATED");
    machines_control_setup(NULL);
    grant_free(&g);
}

/* On premises: import through the API, revoke through the API, refused. */
static void test_on_premises_revocation(void **state) {
    char keys_file[300], good[PK_TEXT_LEN + 1], other[PK_TEXT_LEN + 1], g[16], path[300], err[256];
    env_forge_key(G_ONPREM, 5, good);
    env_forge_key(G_ONPREM, 6, other);
    snprintf(keys_file, sizeof keys_file, "%s/onprem-keys.txt", env.dir);
    FILE *f = fopen(keys_file, "w");
    assert_non_null(f);
    fprintf(f, "%s\n%s\n", good, other);
    fclose(f);
    snprintf(g, sizeof g, "%u", G_ONPREM);
    const char *args[] = {"--serial",     "45000004",   "--customer",
                          "On Site",      "--group",    g,
                          "--product",    "Office",     "--mode",
                          "permanent",    "--seats",    "3",
                          "--valid-from", "2020-01-01", "--valid-until",
                          "2099-12-31",   "--delegate", env.public_key,
                          "--keys-file",  keys_file,    NULL};
    assert_int_equal(order_env_create(&oe, NULL, "onprem.license", args, path, sizeof path), 0);
    FILE *in = fopen(path, "rb");
    assert_non_null(in);
    static char text[1 << 16];
    size_t len = fread(text, 1, sizeof text, in);
    fclose(in);

    order_keyring *ring = order_keyring_new();
    assert_non_null(ring);
    assert_int_equal(order_keyring_load(ring, oe.vendor_pub, err, sizeof err), 0);
    admin_orders_config cfg = {.order_keys = ring};
    orders_api_setup(&cfg); /* a vendor-hosted admin server: the wrong server for this order */
    api_result r = api_call(orders_import, admin, "POST", NULL, NULL, text, len);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(api_error(&r), "wrong server"));
    api_result_clear(&r);
    EVP_PKEY *pub = fixture_public_key_load(env.public_key);
    size_t raw = sizeof cfg.server_key;
    assert_true(pub && EVP_PKEY_get_raw_public_key(pub, cfg.server_key, &raw) == 1);
    EVP_PKEY_free(pub);
    cfg.on_premises = true;
    r = api_call(orders_import, admin, "POST", NULL, NULL, text, len);
    if (r.status != 201) fprintf(stderr, "import: %s\n", api_error(&r));
    assert_int_equal(r.status, 201);
    api_result_clear(&r);
    orders_api_setup(NULL);
    order_keyring_free(ring);

    const char *flags[] = {"--order-public-key", oe.vendor_pub, "--on-premises", "--order-sweep-ms", "200", NULL};
    assert_int_equal(env_restart_server(&env, flags), 0);
    grant a = activate(good, 1);
    assert_non_null(a.lic);
    revocations_setup(NULL);
    char body[128];
    snprintf(body, sizeof body, "{\"group\": %u, \"serial\": 5, \"reason\": \"left the company\"}", G_ONPREM);
    r = api_call_json(revocations_create, admin, "POST", NULL, NULL, body);
    assert_int_equal(r.status, 201);
    assert_string_equal(json_string_value(json_object_get(r.body, "via")), "local");
    api_result_clear(&r);
    grant b = activate(good, 2);
    assert_int_not_equal(b.status, GRPC_STATUS_OK);
    assert_string_equal(b.reason, "KEY_REVOKED");
    grant c = activate(other, 3);
    assert_non_null(c.lic);
    grant_free(&a), grant_free(&b), grant_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_designation),
        cmocka_unit_test(test_directory_id),
        cmocka_unit_test(test_on_premises_revocation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
