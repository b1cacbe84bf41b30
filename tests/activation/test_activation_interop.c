/* test_activation_interop.c -- clients that are not the server's own code:
 * Debian's python3-grpcio with messages generated from protos/ at test time
 * (interop_activate.py, which also sends its own component hashes and, in
 * a group with machine_match, sees a place follow its machine), and the
 * installer CLI (client/activate), both
 * verifying the signed license over TLS (certificates from
 * scripts/make-certs.sh); then that TLS is required on both ends: the
 * server will not start without a certificate unless told
 * --insecure-plaintext, and the CLI will not talk without its CA unless
 * told --insecure. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_env.h"

enum { G = 4365, G_MATCH = 4366 };

static act_env env;

static void tune(group_record *r) { r->policy.max_machines = 5; }
/* A place follows a machine that shares 3 of its 5 components. */
static void tune_match(group_record *r) {
    r->policy.max_machines = 5;
    r->policy.machine_match = 3;
}

static char ca[400], cert[400], cert_key[400];

static int setup(void **state) {
    if (env_start_stores(&env) != 0 || env_create_group(&env, G, tune) != 0 ||
        env_create_group(&env, G_MATCH, tune_match) != 0 || env_make_certs(&env) != 0)
        return -1;
    snprintf(ca, sizeof ca, "%s/ca.pem", env.certs);
    snprintf(cert, sizeof cert, "%s/audit-server.pem", env.certs); /* names 127.0.0.1, ::1, localhost */
    snprintf(cert_key, sizeof cert_key, "%s/audit-server.key", env.certs);
    const char *tls[] = {"--tls-cert", cert, "--tls-key", cert_key, NULL};
    return env_start_server(&env, tls);
}

static int teardown(void **state) {
    int st = env_stop_server(&env);
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

static const char *source(const char *rel) {
    static char path[512];
    const char *src = getenv("PA_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/%s", src ? src : ".", rel);
    return path;
}

static void test_python_grpcio_client(void **state) {
    char key[PK_TEXT_LEN + 1], revoked[PK_TEXT_LEN + 1], script[512], protos[512];
    assert_int_equal(env_make_key(&env, G, 7, false, 0, key), 0);
    assert_int_equal(env_make_key(&env, G, 70, false, 0, revoked), 0);
    redisReply *r = redisCommand(env.ks_a, "SADD {g:%u}:revoked 70", G);
    assert_non_null(r);
    freeReplyObject(r);
    snprintf(script, sizeof script, "%s", source("tests/activation/interop_activate.py"));
    snprintf(protos, sizeof protos, "%s", source("protos"));
    char *argv[] = {"/usr/bin/python3", script,  "--server",     env.target,     "--ca",    ca,     "--key",    key,
                    "--protos",         protos,  "--public-key", env.public_key, "--group", "4365", "--serial", "7",
                    "--revoked-key",    revoked, (char *)NULL};
    char *out = NULL, *err = NULL;
    int st = fixture_run(argv, &out, &err);
    if (st != 0) fprintf(stderr, "interop_activate.py exited %d\n%s\n%s\n", st, out, err);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "interop ok"));
    free(out);
    free(err);
}

/* The Python client's own component hashes, against a group with
 * machine_match 3: a new MAC (new machine_id) keeps the place and is
 * `rebound`; a machine sharing two components takes a new one. */
static void test_python_grpcio_client_rebinds(void **state) {
    char key[PK_TEXT_LEN + 1], script[512], protos[512];
    assert_int_equal(env_make_key(&env, G_MATCH, 1, false, 0, key), 0);
    snprintf(script, sizeof script, "%s", source("tests/activation/interop_activate.py"));
    snprintf(protos, sizeof protos, "%s", source("protos"));
    char *argv[] = {"/usr/bin/python3", script,      "--server",     env.target,     "--ca",    ca,     "--key",    key,
                    "--protos",         protos,      "--public-key", env.public_key, "--group", "4366", "--serial", "1",
                    "--rebind",         (char *)NULL};
    char *out = NULL, *err = NULL;
    int st = fixture_run(argv, &out, &err);
    if (st != 0) fprintf(stderr, "interop_activate.py --rebind exited %d\n%s\n%s\n", st, out, err);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "interop ok rebind count=2"));
    free(out);
    free(err);
}

/* Runs the installer CLI (client/activate) with a state directory of its
 * own under env.dir; returns its exit status. */
static int activate_cli(const char *state, const char *const *args, char **out, char **err) {
    static char bin[512], dir[600];
    snprintf(bin, sizeof bin, "%s", fixture_bin("client/activate"));
    snprintf(dir, sizeof dir, "%s/%s", env.dir, state);
    const char *argv[16] = {bin, "--state-dir", dir, "--timeout-ms", "3000"};
    size_t n = 5;
    while (*args && n < 15) argv[n++] = *args++;
    argv[n] = NULL;
    return fixture_run((char *const *)argv, out, err);
}

static void test_installer_cli(void **state) {
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G, 8, false, 0, key), 0);
    const char *ok[] = {"--server", env.target, "--tls-ca", ca, "--public-key", env.public_key, key, NULL};
    char *out = NULL, *err = NULL;
    int st = activate_cli("cli", ok, &out, &err);
    if (st != 0) fprintf(stderr, "activate exited %d\n%s\n%s\n", st, out, err);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "This machine is activated"));
    assert_non_null(strstr(out, "product      Demo Office"));
    assert_non_null(strstr(out, "key          group 4365, serial 8"));
    assert_non_null(strstr(out, "expires      never"));
    free(out);
    free(err);

    /* A typo (the letter O for a zero: never in a key) stops before the
     * network with the key-check exit code. */
    char typo[PK_TEXT_LEN + 1];
    memcpy(typo, key, sizeof typo);
    typo[1] = 'O';
    const char *mistyped[] = {"--server", env.target, "--tls-ca", ca, "--public-key", env.public_key, typo, NULL};
    assert_int_equal(activate_cli("typo", mistyped, &out, &err), 3);
    free(out);
    free(err);

    /* The wrong vendor key: the server's license is not trusted. */
    char other[600], *gen[] = {"/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out",
                               other, NULL};
    snprintf(other, sizeof other, "%s/other.pem", env.dir);
    assert_int_equal(fixture_run(gen, NULL, NULL), 0);
    char other_pub[600], *pub[] = {"/usr/bin/openssl", "pkey", "-in", other, "-pubout", "-out",
                                   other_pub, NULL};
    snprintf(other_pub, sizeof other_pub, "%s/other.pub.pem", env.dir);
    assert_int_equal(fixture_run(pub, NULL, NULL), 0);
    const char *foreign[] = {"--server", env.target, "--tls-ca", ca, "--public-key", other_pub, key, NULL};
    assert_int_equal(activate_cli("foreign", foreign, &out, &err), 13);
    free(out);
    free(err);
}

/* The server without a certificate: it refuses to start (exit 2) unless
 * told --insecure-plaintext, and the message says so. */
static void test_server_requires_tls(void **state) {
    char url[256], bin[512];
    redis_fixture_url(&env.a, "activation", url, sizeof url);
    snprintf(bin, sizeof bin, "%s", fixture_bin("activation-server/activation-server"));
    char *argv[] = {bin,       "--listen",      "127.0.0.1:0",   "--redis-url",      url,   "--kek",
                    env.kek_a, "--signing-key", env.signing_key, "--metrics-listen", "off", NULL};
    char *err = NULL;
    assert_int_equal(fixture_run(argv, NULL, &err), 2);
    assert_non_null(strstr(err, "--tls-cert and --tls-key are required"));
    assert_non_null(strstr(err, "--insecure-plaintext"));
    free(err);
    /* A certificate and the development flag together are a contradiction. */
    char *both[] = {bin,       "--listen",         "127.0.0.1:0",   "--redis-url",          url,  "--kek",
                    env.kek_a, "--signing-key",    env.signing_key, "--tls-cert",           cert, "--tls-key",
                    cert_key,  "--metrics-listen", "off",           "--insecure-plaintext", NULL};
    assert_int_equal(fixture_run(both, NULL, &err), 2);
    assert_non_null(strstr(err, "contradict"));
    free(err);
}

/* The installer CLI against the TLS server: plain text, another CA or
 * another name gets no answer; no TLS configuration at all is a
 * configuration error before any connection. */
static void test_client_requires_tls(void **state) {
    char k[PK_TEXT_LEN + 1], *out = NULL, *err = NULL;
    assert_int_equal(env_make_key(&env, G, 9, false, 0, k), 0);
    const char *none[] = {"--server", env.target, "--public-key", env.public_key, k, NULL};
    assert_int_equal(activate_cli("none", none, &out, &err), 14);
    assert_non_null(strstr(err, "--tls-ca"));
    assert_non_null(strstr(err, "--insecure"));
    free(out);
    free(err);
    const char *both[] = {"--server",     env.target,     "--tls-ca", ca,  "--insecure",
                          "--public-key", env.public_key, k,          NULL};
    assert_int_equal(activate_cli("both", both, &out, &err), 14);
    assert_non_null(strstr(err, "contradict"));
    free(out);
    free(err);
    const char *plain[] = {"--server", env.target, "--insecure", "--public-key", env.public_key, k, NULL};
    assert_int_equal(activate_cli("plain", plain, &out, &err), 12);
    free(out);
    free(err);
    const char *other_ca[] = {"--server",     env.target,     "--tls-ca", env.public_key,
                              "--public-key", env.public_key, k,          NULL};
    assert_int_equal(activate_cli("other-ca", other_ca, &out, &err), 12);
    free(out);
    free(err);
    const char *other_name[] = {"--server",         env.target,     "--tls-ca",     ca, "--tls-name",
                                "act.example.test", "--public-key", env.public_key, k,  NULL};
    assert_int_equal(activate_cli("other-name", other_name, &out, &err), 12);
    free(out);
    free(err);
    /* The same key over TLS: activated. */
    const char *secure[] = {"--server", env.target, "--tls-ca", ca, "--public-key", env.public_key, k, NULL};
    int st = activate_cli("tls", secure, &out, &err);
    if (st != 0) fprintf(stderr, "activate over TLS exited %d\n%s\n%s\n", st, out, err);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "This machine is activated"));
    free(out);
    free(err);
}

/* Runs last: the development server in plain text, which says so. */
static void test_insecure_plaintext_for_development(void **state) {
    assert_int_equal(env_stop_server(&env), 0);
    assert_int_equal(env_start_server(&env, NULL), 0); /* the env adds --insecure-plaintext */
    char k[PK_TEXT_LEN + 1], *out = NULL, *err = NULL;
    assert_int_equal(env_make_key(&env, G, 10, false, 0, k), 0);
    const char *plain[] = {"--server", env.target, "--insecure", "--public-key", env.public_key, k, NULL};
    assert_int_equal(activate_cli("dev", plain, &out, &err), 0);
    free(out);
    free(err);
    char *log = env_read_log(&env);
    assert_non_null(
        strstr(log, "\"level\":\"warn\",\"component\":\"activation-server\",\"event\":\"server.insecure_plaintext\""));
    free(log);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_grpcio_client), cmocka_unit_test(test_python_grpcio_client_rebinds),
        cmocka_unit_test(test_installer_cli),        cmocka_unit_test(test_server_requires_tls),
        cmocka_unit_test(test_client_requires_tls),  cmocka_unit_test(test_insecure_plaintext_for_development),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
