/* test_activation_interop.c -- clients that are not the server's own code:
 * Debian's python3-grpcio with messages generated from protos/ at test time
 * (interop_activate.py), and the installer CLI (client/activate), both
 * verifying the signed license; then the server's optional TLS for
 * installers, again through the installer CLI. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_env.h"

enum { G = 4365 };

static act_env env;

static void tune(group_record *r) { r->policy.max_machines = 5; }

static int setup(void **state) {
    if (env_start_stores(&env) != 0 || env_create_group(&env, G, tune) != 0) return -1;
    return env_start_server(&env, NULL);
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
    char *argv[] = {"/usr/bin/python3", script, "--server",      env.target,     "--key",   key,
                    "--protos",         protos, "--public-key",  env.public_key, "--group", "4365",
                    "--serial",         "7",    "--revoked-key", revoked,        NULL};
    char *out = NULL, *err = NULL;
    int st = fixture_run(argv, &out, &err);
    if (st != 0) fprintf(stderr, "interop_activate.py exited %d\n%s\n%s\n", st, out, err);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "interop ok"));
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
    const char *ok[] = {"--server", env.target, "--public-key", env.public_key, key, NULL};
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
    const char *mistyped[] = {"--server", env.target, "--public-key", env.public_key, typo, NULL};
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
    const char *foreign[] = {"--server", env.target, "--public-key", other_pub, key, NULL};
    assert_int_equal(activate_cli("foreign", foreign, &out, &err), 13);
    free(out);
    free(err);
}

/* Runs last: replaces the plaintext server with a TLS one. */
static void test_tls_for_installers(void **state) {
    char cert[600], key[600], san[] = "subjectAltName=IP:127.0.0.1,DNS:localhost";
    snprintf(cert, sizeof cert, "%s/server.crt", env.dir);
    snprintf(key, sizeof key, "%s/server.key", env.dir);
    char *req[] = {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                   "-subj", "/CN=localhost", "-addext", san, NULL};
    assert_int_equal(fixture_run(req, NULL, NULL), 0);
    assert_int_equal(env_stop_server(&env), 0);
    const char *tls[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    assert_int_equal(env_start_server(&env, tls), 0);

    char k[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G, 9, false, 0, k), 0);
    const char *secure[] = {"--server", env.target, "--tls-ca", cert, "--public-key", env.public_key, k, NULL};
    char *out = NULL, *err = NULL;
    int st = activate_cli("tls", secure, &out, &err);
    if (st != 0) fprintf(stderr, "activate over TLS exited %d\n%s\n%s\n", st, out, err);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "This machine is activated"));
    free(out);
    free(err);
    /* A plaintext client gets nowhere: no server answered. */
    const char *plain[] = {"--server", env.target, "--public-key", env.public_key, k, NULL};
    assert_int_equal(activate_cli("plain", plain, &out, &err), 12);
    free(out);
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_grpcio_client),
        cmocka_unit_test(test_installer_cli),
        cmocka_unit_test(test_tls_for_installers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
