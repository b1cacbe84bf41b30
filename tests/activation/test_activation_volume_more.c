/* test_activation_volume_more.c -- more volume keys end to end
 * (activation.volume_more), with the real activation-server over gRPC and
 * a private Redis A, as activation.volume does:
 *
 * - unlimited orders at their end date: `stop` grants without counting
 *   seats and caps licenses at valid_until, then refuses ORDER_ENDED;
 *   `continue-counted` keeps granting after the end, counts each machine
 *   once in over_term (`order show`, `order machines`) and caps nothing;
 * - a vendor-hosted volume key is checked as a retail key is: a wrong first
 *   security value is PERMISSION_DENIED and takes no seat, a revoked key
 *   ({g:ID}:revoked, as the revocation puller writes it) is KEY_REVOKED at
 *   Activate and Renew, and a group auditing every activation puts an
 *   audit:outbox record for a volume grant (auditing on, against an audit
 *   server that is not there, so the record stays where the test reads it);
 * - the usage return of real activations: an on-premises server's machine
 *   table after grants, a forced deactivation, a deactivation awaiting
 *   approval and an undesignated machine, exported, imported by the
 *   vendor's keystore, and the report compared with `order machines` and
 *   `order show`.
 * Times are a few seconds (order dates in unix seconds, --order-sweep-ms). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "act_env.h"
#include "order_env.h"
#include "redis_keys.h"
#include "usage_file.h"
#include "volume_calls.h"

static act_env env;
static order_env oe;

enum { G_STOP = 721, G_CONTINUE = 722, G_VKEY = 723, G_VAUDIT = 724, G_USAGE = 725, G_USAGE_UNLIMITED = 726 };

/* No sampling (the default samples 5 %): the outbox then holds only what the
 * audited group's grants put there, whatever the random draws. */
static void tune_volume(group_record *r) {
    r->channel = GROUP_CHANNEL_VOLUME;
    r->policy.audit_rate_ppm = 0;
}
static void tune_volume_audited(group_record *r) {
    r->channel = GROUP_CHANNEL_VOLUME;
    r->policy.audit_rate_ppm = 1000000; /* keystore group create --audit-rate 100 */
}

static int setup(void **state) {
    (void)state;
    if (env_start_stores(&env) != 0 || order_env_init(&oe, &env) != 0 || env_make_certs(&env) != 0) return -1;
    volume_calls_init(&env, &oe);
    const unsigned groups[] = {G_STOP, G_CONTINUE, G_VKEY};
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++)
        if (env_create_group(&env, groups[i], tune_volume) != 0) return -1;
    if (env_create_group(&env, G_VAUDIT, tune_volume_audited) != 0) return -1;
    /* Sampling needs auditing on; nothing listens at the target, so the
     * outbox keeps what the grants put there. */
    char audit_target[64];
    snprintf(audit_target, sizeof audit_target, "127.0.0.1:%d", fixture_free_port());
    const char *const *audit = env_audit_flags(&env, audit_target);
    const char *flags[32] = {"--order-public-key", oe.vendor_pub, "--order-sweep-ms", "200",
                             "--group-refresh-ms", "300",         "--audit-flush-ms", "0"};
    size_t n = 8;
    for (size_t i = 0; audit[i] && n < 31; i++) flags[n++] = audit[i];
    flags[n] = NULL;
    return env_start_server(&env, flags);
}

static int teardown(void **state) {
    (void)state;
    int st = env.server >= 0 ? env_stop_server(&env) : 0;
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

/* `activation-server order ARGS...` printing JSON, decoded. */
static json_t *order_json_of(const char *const *args) {
    char *out = NULL;
    assert_int_equal(order_cmd(args, &out), 0);
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    if (!j) fprintf(stderr, "not JSON (%s): %s\n", jerr.text, out);
    free(out);
    assert_non_null(j);
    return j;
}

/* A counter of `order show SERIAL --json` (0 when absent). */
static long long order_counter(const char *serial, const char *name) {
    json_t *j = order_json_of((const char *[]){"show", serial, "--json", NULL});
    json_t *counters = json_object_get(j, "counters");
    assert_true(json_is_object(counters));
    long long v = json_integer_value(json_object_get(counters, name));
    json_decref(j);
    return v;
}

/* The entry of `order machines SERIAL --json` for machine digest `hex`, or NULL (caller decrefs `all`). */
static json_t *machine_entry(json_t *all, const char *hex) {
    size_t i;
    json_t *m;
    json_array_foreach(all, i, m) if (strcmp(json_string_value(json_object_get(m, "machine")), hex) == 0) return m;
    return NULL;
}

static bool has_flag(const json_t *m, const char *flag) {
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(m, "flags"), i, f) if (strcmp(json_string_value(f), flag) == 0) return true;
    return false;
}

/* Waits until the clock has passed `end` (unix seconds). */
static void wait_past(long long end) {
    while ((long long)time(NULL) <= end) usleep(200 * 1000);
}

/* Unlimited, `--after-end stop` and `continue-counted`, both ending a few
 * seconds from now: before the end both grant without a seat count, stop
 * caps the license at the end and continue-counted does not; after the
 * end stop refuses Activate and Renew, continue-counted grants and counts
 * each machine once in over_term. */
static void test_unlimited_at_the_end(void **state) {
    (void)state;
    char until[32], skey[PK_TEXT_LEN + 1], ckey[PK_TEXT_LEN + 1], reason[64], hex1[33], hex2[33];
    long long end = (long long)time(NULL) + 8; /* room for making and importing both orders first */
    snprintf(until, sizeof until, "%lld", end);
    order("30000021", G_STOP, "unlimited", "0",
          (const char *[]){"--valid-until", until, "--after-end", "stop", "--license-s", "600", NULL});
    order("30000022", G_CONTINUE, "unlimited", "0",
          (const char *[]){"--valid-until", until, "--after-end", "continue-counted", "--license-s", "600", NULL});
    assert_int_equal(env_make_key(&env, G_STOP, 1, false, 0, skey), 0);
    assert_int_equal(env_make_key(&env, G_CONTINUE, 1, false, 0, ckey), 0);

    grant s1 = activate(skey, 1), s2 = activate(skey, 2), c1 = activate(ckey, 1);
    assert_true((long long)time(NULL) < end); /* else the machine was too slow for this test's dates */
    assert_int_equal(s1.status, GRPC_STATUS_OK);
    assert_non_null(s1.lic);
    assert_non_null(s2.lic);
    assert_string_equal(s1.lic->seat_mode, "unlimited");
    assert_int_equal(s1.resp->volume->seats_used, 0); /* not counted */
    assert_int_equal(s2.resp->volume->seats_used, 0);
    assert_int_equal(s2.resp->volume->activation_count, 2);
    assert_true(s1.lic->expires_at <= end); /* stop: never past the order's end */
    assert_true(s1.lic->renew_after <= end);
    assert_non_null(c1.lic);
    assert_int_equal(c1.resp->volume->seats_used, 0);
    assert_int_equal(c1.lic->expires_at, c1.lic->issued_at + 600); /* continue-counted: not capped */
    assert_true(c1.lic->expires_at > end);
    assert_int_equal(order_counter("30000022", "over_term"), 0);

    wait_past(end);
    grant s3 = activate(skey, 3);
    assert_int_equal(s3.status, GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(s3.reason, "ORDER_ENDED");
    assert_int_equal(renew_status(s1.license_id, 1, 1, reason, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(reason, "ORDER_ENDED");

    grant c2 = activate(ckey, 2);
    assert_int_equal(c2.status, GRPC_STATUS_OK);
    assert_non_null(c2.lic);
    assert_int_equal(c2.lic->expires_at, c2.lic->issued_at + 600);
    assert_int_equal(c2.resp->volume->seats_used, 0);
    assert_int_equal(order_counter("30000022", "over_term"), 1);
    digest_hex(1, hex1);
    digest_hex(2, hex2);
    json_t *all = order_json_of((const char *[]){"machines", "30000022", "--json", NULL});
    assert_true(has_flag(machine_entry(all, hex2), "over-term"));
    assert_false(has_flag(machine_entry(all, hex1), "over-term")); /* granted before the end */
    assert_string_equal(json_string_value(json_object_get(machine_entry(all, hex2), "status")), "active");
    json_decref(all);

    /* A renewal after the end marks the machine too; each machine counts once. */
    license_call rn = by_license(PA_RPC_RENEW, c1.license_id, 1, 1);
    assert_int_equal(rn.status, GRPC_STATUS_OK);
    assert_true(rn.renew->expires_at > end);
    license_call_free(&rn);
    grant again = activate(ckey, 2);
    assert_non_null(again.lic);
    assert_string_equal(again.license_id, c2.license_id);
    assert_int_equal(order_counter("30000022", "over_term"), 2);
    all = order_json_of((const char *[]){"machines", "30000022", "--json", NULL});
    assert_true(has_flag(machine_entry(all, hex1), "over-term"));
    json_decref(all);
    grant_free(&s1), grant_free(&s2), grant_free(&s3), grant_free(&c1), grant_free(&c2), grant_free(&again);
}

/* How many audit:outbox records name (group, serial); read as the server's user, whose the outbox is. */
static size_t outbox_records(unsigned group, unsigned serial) {
    redisContext *c = redis_fixture_connect(&env.a, "activation", FIXTURE_PW_ACTIVATION);
    assert_non_null(c);
    redisReply *r = redisCommand(c, "XRANGE %s - +", PA_RKEY_OUTBOX);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    char g[16], s[16];
    snprintf(g, sizeof g, "%u", group);
    snprintf(s, sizeof s, "%u", serial);
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *kv = r->element[i]->element[1];
        bool group_ok = false, serial_ok = false;
        for (size_t k = 0; k + 1 < kv->elements; k += 2) {
            group_ok |= strcmp(kv->element[k]->str, "group") == 0 && strcmp(kv->element[k + 1]->str, g) == 0;
            serial_ok |= strcmp(kv->element[k]->str, "serial") == 0 && strcmp(kv->element[k + 1]->str, s) == 0;
        }
        n += group_ok && serial_ok;
    }
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* A vendor-hosted volume key meets the retail checks: the first security
 * value (a wrong one reads as not genuine and takes no seat, leaves no
 * machine), revocation at Activate and Renew, and audit sampling. */
static void test_vendor_key_checks(void **state) {
    (void)state;
    const char *o = "30000023";
    order(o, G_VKEY, "permanent", "5", NULL);
    char good[PK_TEXT_LEN + 1], bad[PK_TEXT_LEN + 1], doomed[PK_TEXT_LEN + 1], reason[64], hex[33];
    assert_int_equal(env_make_key(&env, G_VKEY, 1, false, 0, good), 0);
    assert_int_equal(env_make_key(&env, G_VKEY, 2, false, 1, bad), 0); /* checksum good, first value wrong */
    assert_int_equal(env_make_key(&env, G_VKEY, 3, false, 0, doomed), 0);
    grant g = activate(good, 1);
    assert_non_null(g.lic);
    assert_int_equal(g.resp->volume->seats_used, 1);
    grant b = activate(bad, 2);
    assert_int_equal(b.status, GRPC_STATUS_PERMISSION_DENIED);
    assert_int_equal(order_counter(o, "seats"), 1);
    digest_hex(2, hex);
    json_t *all = order_json_of((const char *[]){"machines", o, "--json", NULL});
    assert_null(machine_entry(all, hex));
    assert_int_equal(json_array_size(all), 1);
    json_decref(all);

    /* Revoked after its grant, as the revocation puller records it. */
    grant d = activate(doomed, 3);
    assert_non_null(d.lic);
    char revoked[64];
    snprintf(revoked, sizeof revoked, PA_RKEY_REVOKED_FMT, (unsigned)G_VKEY);
    redisReply *r = redisCommand(env.ks_a, "SADD %s 3", revoked);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    grant again = activate(doomed, 4);
    assert_int_equal(again.status, GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(again.reason, "KEY_REVOKED");
    assert_int_equal(renew_status(d.license_id, 3, 3, reason, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(reason, "KEY_REVOKED");
    assert_int_equal(renew_status(g.license_id, 1, 1, NULL, NULL), GRPC_STATUS_OK); /* other keys go on */
    assert_int_equal(order_counter(o, "seats"), 2);                                 /* nothing new was taken */

    /* A group auditing every activation: each volume grant leaves an outbox record. */
    order("30000024", G_VAUDIT, "concurrent", "5", NULL);
    char akey[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_VAUDIT, 9, false, 0, akey), 0);
    assert_int_equal(outbox_records(G_VAUDIT, 9), 0);
    grant a1 = activate(akey, 11), a2 = activate(akey, 12);
    assert_non_null(a1.lic);
    assert_non_null(a2.lic);
    assert_int_equal(outbox_records(G_VAUDIT, 9), 2);
    assert_int_equal(outbox_records(G_VKEY, 1), 0); /* its group samples nothing */
    grant_free(&g), grant_free(&b), grant_free(&d), grant_free(&again), grant_free(&a1), grant_free(&a2);
}

/* The report's status word (docs/volume.md, "Usage return") for a machine
 * as `order machines` describes it. */
static const char *report_status(const json_t *m) {
    const char *s = json_string_value(json_object_get(m, "status"));
    if (strcmp(s, "lapsed") == 0) return "no-seat";
    if (strcmp(s, "active") != 0) return s; /* deactivated, pending */
    if (has_flag(m, "deactivation-requested")) return "deactivation-requested";
    return has_flag(m, "out-of-window") ? "seat-out-of-window" : "seat";
}

static json_t *exported_report(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char err[256];
    Volume__V1__UsageReport *u = usage_file_read(buf, n, err, sizeof err);
    if (!u) fprintf(stderr, "usage file: %s\n", err);
    assert_non_null(u);
    json_t *j = json_loadb((const char *)u->report.data, u->report.len, 0, NULL);
    volume__v1__usage_report__free_unpacked(u, NULL);
    assert_non_null(j);
    return j;
}

/* An on-premises order of `group` delegating this server's key, accepting
 * the forged key `key` (filled in), with approval of deactivations and
 * the hostname collected, and `extra` terms; imported. */
static void onprem_order(const char *serial, unsigned group, const char *mode, const char *const *extra,
                         char key[PK_TEXT_LEN + 1]) {
    char keys_file[300], name[64], g[16], path[300];
    env_forge_key(group, 5, key);
    snprintf(keys_file, sizeof keys_file, "%s/%s-keys.txt", env.dir, serial);
    FILE *f = fopen(keys_file, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", key);
    fclose(f);
    snprintf(g, sizeof g, "%u", group);
    snprintf(name, sizeof name, "%s.license", serial);
    const char *args[48] = {"--serial",
                            serial,
                            "--customer",
                            "Example Corp",
                            "--group",
                            g,
                            "--product",
                            "Office",
                            "--mode",
                            mode,
                            "--seats",
                            strcmp(mode, "unlimited") ? "10" : "0",
                            "--valid-from",
                            "2020-01-01",
                            "--valid-until",
                            "2099-12-31",
                            "--delegate",
                            env.public_key,
                            "--keys-file",
                            keys_file,
                            "--collect",
                            "hostname",
                            "--deactivation-approval",
                            "on"};
    int n = 24;
    for (int i = 0; extra && extra[i] && n < 47; i++) args[n++] = extra[i];
    args[n] = NULL;
    assert_int_equal(order_env_create(&oe, NULL, name, args, path, sizeof path), 0);
    char *out = NULL, *err = NULL;
    int st = order_env_import(&oe, path, (const char *[]){"--on-premises", "--signing-key", env.signing_key, NULL},
                              &out, &err);
    if (st) fprintf(stderr, "import: %s\n", err ? err : "");
    assert_int_equal(st, 0);
    free(out), free(err);
}

/* Machine n asks to be deactivated; the order's approval keeps it waiting. */
static void ask_deactivation(const grant *g, unsigned n) {
    license_call d = by_license(PA_RPC_DEACTIVATE, g->license_id, n, n);
    assert_int_equal(d.status, GRPC_STATUS_OK);
    assert_int_equal(d.deact->volume->deactivation,
                     ACTIVATION__V1__VOLUME_STATUS__DEACTIVATION__DEACTIVATION_AWAITING_APPROVAL);
    license_call_free(&d);
}

/* `order usage-export SERIAL`, decoded, checked against `order show` and
 * `order machines`: the same counters, exactly the same machines, each
 * with the status word its record's state has. `expect` lists machines
 * 1..n's status words. Returns the export's path in `path`. */
static void check_usage_export(const char *serial, const char *const *expect, size_t n, char path[300]) {
    json_t *machines = order_json_of((const char *[]){"machines", serial, "--json", NULL});
    long long seats = order_counter(serial, "seats"), counted = order_counter(serial, "machines");
    snprintf(path, 300, "%s/usage-%s.json", env.dir, serial);
    assert_int_equal(
        order_cmd((const char *[]){"usage-export", serial, "--out", path, "--signing-key", env.signing_key, NULL},
                  NULL),
        0);
    json_t *rep = exported_report(path);
    assert_string_equal(json_string_value(json_object_get(rep, "service_serial")), serial);
    assert_int_equal(json_integer_value(json_object_get(rep, "seats_held")), seats);
    assert_int_equal(json_integer_value(json_object_get(rep, "machines")), counted);
    assert_int_equal(json_integer_value(json_object_get(rep, "over_term")), 0);
    json_t *list = json_object_get(rep, "machine_list"), *e;
    assert_int_equal(json_array_size(list), n);
    assert_int_equal(json_array_size(machines), n);
    size_t i;
    json_array_foreach(list, i, e) {
        const char *digest = json_string_value(json_array_get(e, 0));
        json_t *mine = machine_entry(machines, digest);
        if (!mine) fail_msg("the report lists machine %s, the machine table does not", digest);
        assert_string_equal(json_string_value(json_array_get(e, 3)), report_status(mine));
        assert_true(json_integer_value(json_array_get(e, 1)) <= json_integer_value(json_array_get(e, 2)));
    }
    for (unsigned k = 1; k <= n; k++) {
        char hex[33];
        digest_hex(k, hex);
        json_t *mine = machine_entry(machines, hex);
        assert_non_null(mine);
        assert_string_equal(report_status(mine), expect[k - 1]);
        json_t *facts = json_object_get(json_object_get(rep, "facts"), hex);
        assert_string_equal(json_string_value(json_object_get(facts, "hostname")),
                            json_string_value(json_object_get(json_object_get(mine, "facts"), "hostname")));
    }
    json_decref(rep);
    json_decref(machines);
}

/* `keystore usage import FILE` on the vendor's Redis A verifies and stores
 * the report: its counters are the ones `order show` has. */
static void vendor_import(act_env *vendor, const char *serial, const char *path) {
    char url[256], *out = NULL, *err = NULL;
    redis_fixture_url(&vendor->a, "keystore", url, sizeof url);
    const char *argv[] = {fixture_bin("keystore/keystore"),
                          "usage",
                          "import",
                          path,
                          "--order-public-key",
                          oe.vendor_pub,
                          "--activation-redis",
                          url,
                          NULL};
    int st = fixture_run((char *const *)argv, &out, &err);
    if (st != 0) fprintf(stderr, "usage import: %s", err ? err : "?");
    assert_int_equal(st, 0);
    free(out), free(err);
    redisReply *r = redisCommand(vendor->ks_a, "HMGET {o:%s}:usage seats_held machines", serial);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[0]->type, REDIS_REPLY_STRING);
    assert_int_equal(atoll(r->element[0]->str), order_counter(serial, "seats"));
    assert_int_equal(atoll(r->element[1]->str), order_counter(serial, "machines"));
    freeReplyObject(r);
}

/* On-premises, two orders. Permanent, auto-activation off: machines 1-4
 * designated and granted, 2 then force-deactivated, 3 asking to be
 * deactivated, 5 waiting to be designated. Unlimited: machines 1 and 2
 * granted, 2 asking to be deactivated. Each exported report lists exactly
 * the order's machines with the states `order machines` shows and the
 * counters `order show` shows; the vendor's keystore verifies and stores
 * both. */
static void test_usage_of_real_activations(void **state) {
    (void)state;
    const char *o = "30000025", *u = "30000026";
    char key[PK_TEXT_LEN + 1], ukey[PK_TEXT_LEN + 1], hex[33], path[300];
    onprem_order(o, G_USAGE, "permanent", (const char *[]){"--auto-activation", "off", NULL}, key);
    onprem_order(u, G_USAGE_UNLIMITED, "unlimited", NULL, ukey);
    const char *flags[] = {"--order-public-key", oe.vendor_pub, "--on-premises", "--order-sweep-ms", "200", NULL};
    assert_int_equal(env_restart_server(&env, flags), 0);

    grant m[6] = {{0}}, um[3] = {{0}};
    for (unsigned i = 1; i <= 5; i++) {
        digest_hex(i, hex);
        if (i <= 4) assert_int_equal(order_cmd((const char *[]){"designate", o, "--machine-id", hex, NULL}, NULL), 0);
        m[i] = activate(key, i);
        assert_int_equal(m[i].status, GRPC_STATUS_OK);
        if (i <= 4) assert_non_null(m[i].lic);
    }
    assert_int_equal(m[5].resp->volume->pending, ACTIVATION__V1__VOLUME_STATUS__PENDING__PENDING_NOT_DESIGNATED);
    digest_hex(2, hex);
    assert_int_equal(order_cmd((const char *[]){"deactivate", o, hex, NULL}, NULL), 0);
    ask_deactivation(&m[3], 3);
    assert_int_equal(order_counter(o, "seats"), 3);    /* 1, 3 (held while it waits), 4 */
    assert_int_equal(order_counter(o, "machines"), 4); /* all in the window but the deactivated one */
    check_usage_export(o, (const char *[]){"seat", "deactivated", "deactivation-requested", "seat", "pending"}, 5,
                       path);
    act_env vendor;
    assert_int_equal(env_start_stores(&vendor), 0);
    vendor.server = -1;
    vendor_import(&vendor, o, path);

    for (unsigned i = 1; i <= 2; i++) {
        um[i] = activate(ukey, i);
        assert_non_null(um[i].lic);
    }
    ask_deactivation(&um[2], 2);
    assert_int_equal(order_counter(u, "machines"), 2);
    check_usage_export(u, (const char *[]){"seat", "deactivation-requested"}, 2, path);
    vendor_import(&vendor, u, path);
    env_stop(&vendor);
    for (unsigned k = 1; k <= 5; k++) grant_free(&m[k]);
    grant_free(&um[1]), grant_free(&um[2]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unlimited_at_the_end), cmocka_unit_test(test_vendor_key_checks),
        cmocka_unit_test(test_usage_of_real_activations), /* last: it restarts the server on-premises */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
