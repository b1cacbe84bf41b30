/* test_audit_revoke.c -- audit.v1.Audit/Revoke: the admin server's
 * revocations into the one revocation log (audit-server --allow-revoke-client).
 *
 * Through the admin server's own client (admin-server/audit_revoke.h): a
 * certificate the audit server lists for revocations revokes, again is a
 * no-op with the same sequence, and the entry is in ListRevocations; the
 * activation servers' certificate (allowed to call the rest) is refused, as
 * is every caller when the option is absent; bad requests name the field.
 * End to end, a running activation-server pulls the revocation and the
 * next Activate of that key is refused KEY_REVOKED. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "activation/v1/activation.pb-c.h"
#include "audit_certs.h"
#include "audit_env.h"
#include "audit_revoke.h"
#include "clock.h"
#include "log.h"
#include "rpc_client.h"
#include "rpc_methods.h"

enum { G = 6501 };

static audit_env E;
static char extra[400], signing_key[400];
static pid_t act = -1;
static int act_port;
static rpc_channel *act_ch;

static void tune(group_record *r) {
    r->policy.max_machines = 100;
    r->policy.audit_rate_ppm = 0;
}

static int start_activation(void) {
    char url[256], listen[64], metrics[64], ca[400], cert[400], key[400], target[64], log_path[400];
    act_port = fixture_free_port();
    int mport;
    do mport = fixture_free_port();
    while (mport == act_port);
    redis_fixture_url(&E.a, "activation", url, sizeof url);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", act_port);
    snprintf(metrics, sizeof metrics, "127.0.0.1:%d", mport);
    snprintf(target, sizeof target, "127.0.0.1:%d", act_port);
    snprintf(ca, sizeof ca, "%s/ca.pem", E.certs);
    snprintf(cert, sizeof cert, "%s/activation-client.pem", E.certs);
    snprintf(key, sizeof key, "%s/activation-client.key", E.certs);
    snprintf(log_path, sizeof log_path, "%s/activation.log", E.dir);
    char *argv[] = {(char *)fixture_bin("activation-server/activation-server"),
                    "--listen",
                    listen,
                    "--redis-url",
                    url,
                    "--kek",
                    E.kek_a,
                    "--signing-key",
                    signing_key,
                    "--metrics-listen",
                    metrics,
                    "--workers",
                    "2",
                    "--audit-target",
                    E.target,
                    "--audit-ca",
                    ca,
                    "--audit-cert",
                    cert,
                    "--audit-key",
                    key,
                    NULL};
    setenv("PA_ACTIVATION_INSECURE_PLAINTEXT", "1", 1);
    if ((act = fixture_spawn(argv, log_path, act_port, 15000)) < 0) return -1;
    return (act_ch = rpc_channel_new(target, NULL)) ? 0 : -1;
}

static int setup(void **state) {
    log_set_level(LOG_LEVEL_WARN);
    if (env_start(&E) != 0 || env_create_group_with(&E, G, tune) != 0) goto fail;
    snprintf(extra, sizeof extra, "%s/extra", E.dir);
    snprintf(signing_key, sizeof signing_key, "%s/license-signing.pem", E.dir);
    char *gen[] = {"/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out", signing_key, NULL};
    if (mkdir(extra, 0700) != 0 || certs_make(E.certs, extra, "admin-client", "admin-server", NULL, false, 9101) != 0 ||
        fixture_run(gen, NULL, NULL) != 0)
        goto fail;
    const char *opts[] = {"--allow-client",
                          "activation-server",
                          "--allow-client",
                          "admin-server",
                          "--allow-revoke-client",
                          "admin-server",
                          NULL};
    if (env_start_server_with(&E, opts) != 0 || start_activation() != 0) goto fail;
    return 0;
fail:
    env_stop(&E);
    return -1;
}

static int teardown(void **state) {
    rpc_channel_free(act_ch);
    int st = act > 0 ? fixture_stop(act, SIGTERM, 30000) : 0;
    env_stop(&E);
    return st == 0 ? 0 : -1;
}

/* The admin server's link with the certificate DIR/NAME.{pem,key}. */
static audit_revoker *revoker(const char *dir, const char *name) {
    char ca[400], cert[400], key[400], err[256];
    snprintf(ca, sizeof ca, "%s/ca.pem", E.certs);
    snprintf(cert, sizeof cert, "%s/%s.pem", dir, name);
    snprintf(key, sizeof key, "%s/%s.key", dir, name);
    audit_revoker *a = audit_revoker_new(E.target, ca, cert, key, err, sizeof err);
    if (!a) fprintf(stderr, "revoker: %s\n", err);
    assert_non_null(a);
    return a;
}

/* Revoke through the RPC: allowed, idempotent, listed; others refused. */
static void test_revoke(void **state) {
    audit_revoker *admin = revoker(extra, "admin-client");
    uint64_t seq = 0, again = 0;
    bool newly = false, denied = true;
    char err[256];
    assert_int_equal(
        audit_revoker_revoke(admin, G, 5, "reported stolen", "alice", &seq, &newly, &denied, err, sizeof err), 0);
    assert_true(newly);
    assert_false(denied);
    assert_true(seq >= 1);
    assert_int_equal(audit_revoker_revoke(admin, G, 5, "again", "alice", &again, &newly, &denied, err, sizeof err), 0);
    assert_false(newly);
    assert_int_equal(again, seq);
    audit_log_entry page[8];
    size_t n = 0;
    uint64_t last = 0;
    assert_int_equal(audit_revoker_list(admin, 0, 8, page, &n, &last, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(page[0].group, G);
    assert_int_equal(page[0].serial, 5);
    assert_string_equal(page[0].reason, "reported stolen");
    assert_int_equal(last, seq);

    /* Bad requests name the field and are not a refusal of the caller. */
    assert_int_equal(audit_revoker_revoke(admin, G, 6, "", "alice", &seq, &newly, &denied, err, sizeof err), 1);
    assert_false(denied);
    assert_non_null(strstr(err, "reason"));
    assert_int_equal(audit_revoker_revoke(admin, 1u << 20, 6, "x", "alice", &seq, &newly, &denied, err, sizeof err), 1);
    assert_non_null(strstr(err, "group"));
    assert_int_equal(audit_revoker_revoke(admin, G, 6, "bad\ttab", "alice", &seq, &newly, &denied, err, sizeof err), 1);
    audit_revoker_free(admin);

    /* The activation servers' certificate may list, never revoke. */
    audit_revoker *act_cert = revoker(E.certs, "activation-client");
    assert_int_equal(audit_revoker_revoke(act_cert, G, 7, "no", "mallory", &seq, &newly, &denied, err, sizeof err), 1);
    assert_true(denied);
    assert_int_equal(audit_revoker_list(act_cert, 0, 8, page, &n, &last, err, sizeof err), 0);
    assert_int_equal(n, 1);
    audit_revoker_free(act_cert);
}

static grpc_status_code activate(const char *key, unsigned m, char reason[32]) {
    uint8_t id[32], buf[512];
    memset(id, 0x5a, sizeof id);
    memcpy(id, &m, sizeof m);
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = (char *)key;
    rq.machine_id = (ProtobufCBinaryData){.len = sizeof id, .data = id};
    rq.hostname = "revoke-host";
    size_t len = activation__v1__activate_request__pack(&rq, buf);
    rpc_result res;
    grpc_status_code st = rpc_call(act_ch, rpc_channel_method(act_ch, PA_RPC_ACTIVATE), buf, len, 5000, &res);
    snprintf(reason, 32, "%s", res.reason);
    rpc_result_clear(&res);
    return st;
}

/* A revocation through Revoke reaches the activation server. */
static void test_reaches_activation(void **state) {
    char key[PK_TEXT_LEN + 1], reason[32], err[256];
    assert_int_equal(env_make_key(&E, G, 9, true, NULL, key), 0);
    assert_int_equal(activate(key, 1, reason), GRPC_STATUS_OK);
    audit_revoker *admin = revoker(extra, "admin-client");
    uint64_t seq;
    bool newly, denied;
    assert_int_equal(audit_revoker_revoke(admin, G, 9, "chargeback", "bob", &seq, &newly, &denied, err, sizeof err), 0);
    audit_revoker_free(admin);
    int64_t until = pa_mono_ms() + 15000;
    grpc_status_code st;
    unsigned m = 2;
    while ((st = activate(key, m++, reason)) == GRPC_STATUS_OK && pa_mono_ms() < until) usleep(200 * 1000);
    assert_int_not_equal(st, GRPC_STATUS_OK);
    assert_string_equal(reason, "KEY_REVOKED");
}

/* Without --allow-revoke-client nobody may revoke. */
static void test_not_enabled(void **state) {
    assert_int_equal(env_stop_server(&E, SIGTERM), 0);
    const char *opts[] = {"--allow-client", "admin-server", NULL};
    assert_int_equal(env_start_server_with(&E, opts), 0);
    audit_revoker *admin = revoker(extra, "admin-client");
    uint64_t seq;
    bool newly, denied = false;
    char err[256];
    assert_int_equal(audit_revoker_revoke(admin, G, 11, "x", "alice", &seq, &newly, &denied, err, sizeof err), 1);
    assert_true(denied);
    assert_non_null(strstr(err, "not enabled"));
    audit_revoker_free(admin);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_revoke),
        cmocka_unit_test(test_reaches_activation),
        cmocka_unit_test(test_not_enabled),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
