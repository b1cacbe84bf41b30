/* test_audit_clients.c -- who may call the audit server, for real: the
 * audit-server binary with an allow-list and a CRL, client certificates
 * from the same CA as the genuine one (made with audit_certs.c), calls over
 * mutual TLS.
 *
 * The attack these tests stand for: a client certificate the CA signed for
 * something else (or one that was stolen and then revoked) is used to
 * Verify keys with wrong second values, which would revoke genuine
 * customers' keys. It must be refused with PERMISSION_DENIED before any
 * work: nothing judged, nothing stored, nothing revoked. */
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_certs.h"
#include "audit_client.h"
#include "audit_env.h"
#include "log.h"
#include "redis_keys.h"

enum { G = 4201 };

static audit_env E;
static char extra[400]; /* the extra certificates */
static char crl[480], pin[64];

static int setup(void **state) {
    log_set_level(LOG_LEVEL_WARN);
    if (env_start(&E) != 0 || env_create_group(&E, G) != 0) goto fail;
    snprintf(extra, sizeof extra, "%s/extra", E.dir);
    if (mkdir(extra, 0700) != 0) goto fail;
    /* Same CA as the genuine client: */
    if (certs_make(E.certs, extra, "stranger", "billing-service", NULL, false, 9001) != 0 ||
        certs_make(E.certs, extra, "revoked", "activation-server", NULL, false, 9002) != 0 ||
        certs_make(E.certs, extra, "pinned", "unnamed-replica", NULL, false, 9003) != 0 ||
        certs_make(E.certs, extra, "by-uri", NULL, "URI:spiffe://pa.example/activation", false, 9004) != 0 ||
        certs_make(E.certs, extra, "by-dns", "other", "DNS:act-7.pa.example", false, 9005) != 0)
        goto fail;
    char revoked_pem[480], pinned_pem[480];
    snprintf(revoked_pem, sizeof revoked_pem, "%s/revoked.pem", extra);
    snprintf(pinned_pem, sizeof pinned_pem, "%s/pinned.pem", extra);
    snprintf(crl, sizeof crl, "%s/crl.pem", extra);
    const char *list[] = {revoked_pem};
    if (certs_make_crl(E.certs, crl, list, 1, 86400) != 0 || certs_spki_pin(pinned_pem, pin) != 0) goto fail;
    return 0;
fail:
    env_stop(&E);
    return -1;
}

static int teardown(void **state) {
    env_stop(&E);
    return 0;
}

static bool log_contains(const char *a, const char *b) {
    FILE *f = fopen(E.log_path, "r");
    if (!f) return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, a) && (!b || strstr(line, b));
    fclose(f);
    return found;
}

static double server_metric(const char *series) {
    char *body = fixture_http_get("127.0.0.1", E.metrics_port, "/metrics");
    double v = fixture_metric(body, series, 0);
    free(body);
    return v;
}

static audit_record forged_record(uint32_t serial) {
    audit_record r;
    pk_fields f;
    char text[PK_TEXT_LEN + 1];
    uint8_t machine[32] = {7};
    assert_int_equal(env_make_key(&E, G, serial, false, &f, text), 0);
    assert_int_equal(audit_record_init(&r, &f, machine, "192.0.2.9", "base-rate"), 0);
    return r;
}

/* ListRevocations works for `name`'s certificate; else *err says why. */
static bool can_list(const char *dir, const char *name, char err[300]) {
    audit_client *c = env_client_named(&E, dir, name);
    assert_non_null(c);
    audit_revocation_page page;
    err[0] = '\0';
    int rc = audit_client_list_revocations(c, 0, 0, &page, err, 300);
    if (rc == 0) audit_revocation_page_free(&page);
    audit_client_free(c);
    return rc == 0;
}

static bool revoked_at_audit(uint32_t serial) {
    return env_int(E.audit_b, "HEXISTS " PA_RKEY_AUDIT_REVOKED " " PA_AUDIT_REVOKED_MEMBER_FMT, G, serial) == 1;
}

static void test_allow_list_and_crl(void **state) {
    const char *opts[] = {"--allow-client",
                          "activation-server",
                          "--allow-client",
                          "spiffe://pa.example/activation",
                          "--allow-client",
                          "act-7.pa.example",
                          "--allow-client-spki",
                          pin,
                          "--tls-client-crl",
                          crl,
                          NULL};
    assert_int_equal(env_start_server_with(&E, opts), 0);
    char err[300];

    /* On the list: by CN, by SAN URI, by SAN DNS, by key pin. */
    assert_true(can_list(E.certs, "activation-client", err));
    assert_true(can_list(extra, "by-uri", err));
    assert_true(can_list(extra, "by-dns", err));
    assert_true(can_list(extra, "pinned", err));

    /* Same CA, not on the list: refused, every method. */
    assert_false(can_list(extra, "stranger", err));
    assert_non_null(strstr(err, "status 7")); /* PERMISSION_DENIED */
    assert_non_null(strstr(err, "not allowed"));
    /* Allowed by name but in the CRL: refused. */
    assert_false(can_list(extra, "revoked", err));
    assert_non_null(strstr(err, "status 7"));
    assert_non_null(strstr(err, "revoked"));

    /* The attack: Verify of a genuine customer's serial with a wrong second
     * value, and a Submit of the same. Nothing may come of either. */
    long trail = env_trail_count(&E, NULL, NULL);
    long long queued = env_int(E.audit_b, "XLEN " PA_RKEY_AUDIT_QUEUE);
    const char *thieves[] = {"stranger", "revoked"};
    for (size_t i = 0; i < 2; i++) {
        audit_client *c = env_client_named(&E, extra, thieves[i]);
        assert_non_null(c);
        audit_record r = forged_record(11 + (uint32_t)i);
        char detail[200] = "";
        assert_int_equal(audit_client_verify(c, &r, detail, sizeof detail), AUDIT_VERIFY_UNAVAILABLE);
        assert_non_null(strstr(detail, "status 7"));
        uint32_t accepted = 0, duplicates = 0;
        assert_int_equal(audit_client_submit(c, &r, 1, &accepted, &duplicates, err, sizeof err), -1);
        assert_non_null(strstr(err, "status 7"));
        audit_client_free(c);
        assert_false(revoked_at_audit(11 + (uint32_t)i));
    }
    assert_int_equal(env_trail_count(&E, NULL, NULL), trail);
    assert_int_equal(env_int(E.audit_b, "XLEN " PA_RKEY_AUDIT_QUEUE), queued);

    /* The genuine client's Verify of the same forged key does revoke it. */
    audit_client *good = env_client(&E, E.certs);
    audit_record r = forged_record(11);
    assert_int_equal(audit_client_verify(good, &r, NULL, 0), AUDIT_VERIFY_FORGED);
    assert_true(revoked_at_audit(11));
    audit_client_free(good);

    /* Logged with the names the certificate carries, and counted. */
    assert_true(log_contains("\"event\":\"audit.client.refused\"", "\"reason\":\"not_allowed\""));
    assert_true(log_contains("\"event\":\"audit.client.refused\"", "cn:billing-service"));
    assert_true(log_contains("\"event\":\"audit.client.refused\"", "\"reason\":\"revoked\""));
    assert_true(server_metric("pa_audit_clients_refused_total{reason=\"not_allowed\"}") >= 3);
    assert_true(server_metric("pa_audit_clients_refused_total{reason=\"revoked\"}") >= 3);
    assert_true(log_contains("\"event\":\"audit.clients\"", "\"crls\":1"));
    assert_false(log_contains("audit.clients.unrestricted", NULL));
    assert_int_equal(env_stop_server(&E, SIGTERM), 0);
}

/* Without an allow-list every certificate of the CA still works (as
 * before), and the server says so at start; a CRL alone still refuses. */
static void test_crl_without_allow_list(void **state) {
    assert_int_equal(truncate(E.log_path, 0), 0);
    const char *opts[] = {"--tls-client-crl", crl, NULL};
    assert_int_equal(env_start_server_with(&E, opts), 0);
    char err[300];
    assert_true(can_list(extra, "stranger", err));
    assert_false(can_list(extra, "revoked", err));
    assert_non_null(strstr(err, "revoked"));
    assert_true(log_contains("audit.clients.unrestricted", NULL));
    assert_int_equal(env_stop_server(&E, SIGTERM), 0);
}

/* Bad rules stop the server at start with status 2 and a message naming
 * the option; a stale CRL is used, with a warning. */
static void test_bad_rules_refused_at_start(void **state) {
    char other_crl[480], other_cert[480];
    snprintf(other_crl, sizeof other_crl, "%s/other-crl.pem", extra);
    snprintf(other_cert, sizeof other_cert, "%s/activation-client.pem", E.other);
    const char *list[] = {other_cert};
    assert_int_equal(certs_make_crl(E.other, other_crl, list, 1, 86400), 0);
    struct {
        const char *opt, *value, *says;
    } bad[] = {
        {"--allow-client-spki", "not-base64", "--allow-client-spki"},
        {"--allow-client-spki", "AAAA", "--allow-client-spki"},
        {"--tls-client-crl", other_crl, "not signed by a CA of --tls-client-ca"},
        {"--tls-client-crl", other_cert, "no PEM X509 CRL"},
        {"--allow-client", "", "--allow-client"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char url[256], cert[400], key[400], ca[400];
        redis_fixture_url(&E.b, "audit", url, sizeof url);
        snprintf(cert, sizeof cert, "%s/audit-server.pem", E.certs);
        snprintf(key, sizeof key, "%s/audit-server.key", E.certs);
        snprintf(ca, sizeof ca, "%s/ca.pem", E.certs);
        char *argv[] = {(char *)fixture_bin("audit-server/audit-server"),
                        "--listen",
                        "127.0.0.1:0",
                        "--redis-url",
                        url,
                        "--kek",
                        E.kek_b,
                        "--tls-cert",
                        cert,
                        "--tls-key",
                        key,
                        "--tls-client-ca",
                        ca,
                        "--metrics-listen",
                        "off",
                        (char *)bad[i].opt,
                        (char *)bad[i].value,
                        NULL};
        char *out = NULL, *errtext = NULL;
        int st = fixture_run(argv, &out, &errtext);
        if (st != 2 || !strstr(errtext, bad[i].says))
            fail_msg("%s '%s': status %d, stderr %s", bad[i].opt, bad[i].value, st, errtext);
        free(out), free(errtext);
    }

    char stale[480], revoked_pem[480];
    snprintf(stale, sizeof stale, "%s/stale-crl.pem", extra);
    snprintf(revoked_pem, sizeof revoked_pem, "%s/revoked.pem", extra);
    const char *rl[] = {revoked_pem};
    assert_int_equal(certs_make_crl(E.certs, stale, rl, 1, -60), 0);
    const char *opts[] = {"--allow-client", "activation-server", "--tls-client-crl", stale, NULL};
    assert_int_equal(env_start_server_with(&E, opts), 0);
    char err[300];
    assert_true(log_contains("audit.crl.stale", NULL));
    assert_false(can_list(extra, "revoked", err));
    assert_true(can_list(E.certs, "activation-client", err));
    assert_int_equal(env_stop_server(&E, SIGTERM), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allow_list_and_crl),
        cmocka_unit_test(test_crl_without_allow_list),
        cmocka_unit_test(test_bad_rules_refused_at_start),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
