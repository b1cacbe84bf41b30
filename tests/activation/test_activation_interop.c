/* test_activation_interop.c -- clients that are not the server's own code:
 * Debian's python3-grpcio with messages generated from protos/ at test time
 * (interop_activate.py), and our pa-activate-once CLI as the README shows
 * it, both verifying the signed license; then the server's optional TLS
 * for installers, again through pa-activate-once. */
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
    char *argv[] = {"/usr/bin/python3", script, "--server", env.target, "--key", key,
                    "--protos", protos, "--public-key", env.public_key, "--group", "4365",
                    "--serial", "7", "--revoked-key", revoked, NULL};
    char *out = NULL, *err = NULL;
    int st = fixture_run(argv, &out, &err);
    if (st != 0) fprintf(stderr, "interop_activate.py exited %d\n%s\n%s\n", st, out, err);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "interop ok"));
    free(out);
    free(err);
}

static void test_pa_activate_once(void **state) {
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G, 8, false, 0, key), 0);
    const char *cli = fixture_bin("activation-server/pa-activate-once");
    char bin[512];
    snprintf(bin, sizeof bin, "%s", cli);
    char machine[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    char *argv[] = {bin, "--server", env.target, "--public-key", env.public_key,
                    "--machine-id", machine, key, NULL};
    char *out = NULL, *err = NULL;
    int st = fixture_run(argv, &out, &err);
    if (st != 0) fprintf(stderr, "pa-activate-once exited %d\n%s\n%s\n", st, out, err);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "signature         verified"));
    assert_non_null(strstr(out, "product           Demo Office"));
    assert_non_null(strstr(out, "key               group 4365, serial 8"));
    assert_non_null(strstr(out, "machine_id        " "00112233445566778899aabbccddeeff"));
    assert_non_null(strstr(out, "expires_at        never"));
    free(out);
    free(err);

    /* A typo (the letter O for a zero: never in a key) is reported with the
     * server's reason and exit code 1. */
    char typo[PK_TEXT_LEN + 1];
    memcpy(typo, key, sizeof typo);
    typo[1] = 'O';
    char *argv2[] = {bin, "--server", env.target, "--machine-id", machine, typo, NULL};
    st = fixture_run(argv2, &out, &err);
    assert_int_equal(st, 1);
    assert_non_null(strstr(err, "INVALID_ARGUMENT"));
    free(out);
    free(err);

    /* The wrong vendor key: the license is not trusted. */
    char other[600], *gen[] = {"/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out",
                               other, NULL};
    snprintf(other, sizeof other, "%s/other.pem", env.dir);
    assert_int_equal(fixture_run(gen, NULL, NULL), 0);
    char other_pub[600], *pub[] = {"/usr/bin/openssl", "pkey", "-in", other, "-pubout", "-out",
                                   other_pub, NULL};
    snprintf(other_pub, sizeof other_pub, "%s/other.pub.pem", env.dir);
    assert_int_equal(fixture_run(pub, NULL, NULL), 0);
    char *argv3[] = {bin, "--server", env.target, "--public-key", other_pub, "--machine-id",
                     machine, key, NULL};
    st = fixture_run(argv3, &out, &err);
    assert_int_equal(st, 1);
    assert_non_null(strstr(err, "does not verify"));
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

    char k[PK_TEXT_LEN + 1], bin[512];
    assert_int_equal(env_make_key(&env, G, 9, false, 0, k), 0);
    snprintf(bin, sizeof bin, "%s", fixture_bin("activation-server/pa-activate-once"));
    char machine[] = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
    char *argv[] = {bin, "--server", env.target, "--tls-ca", cert, "--public-key", env.public_key,
                    "--machine-id", machine, k, NULL};
    char *out = NULL, *err = NULL;
    int st = fixture_run(argv, &out, &err);
    if (st != 0) fprintf(stderr, "pa-activate-once over TLS exited %d\n%s\n%s\n", st, out, err);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "signature         verified"));
    free(out);
    free(err);
    /* A plaintext client gets nowhere. */
    char *plain[] = {bin, "--server", env.target, "--timeout-ms", "2000", "--machine-id", machine, k,
                     NULL};
    st = fixture_run(plain, &out, &err);
    assert_int_equal(st, 1);
    assert_non_null(strstr(err, "UNAVAILABLE"));
    free(out);
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_grpcio_client),
        cmocka_unit_test(test_pa_activate_once),
        cmocka_unit_test(test_tls_for_installers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
