/* test_client_node.c -- a second, independent client: Node.js with
 * @grpc/grpc-js and @grpc/proto-loader from npm, built from protos/ alone,
 * activates, renews and deactivates against the real server and checks each
 * license's Ed25519 signature with node:crypto (tests/client/node/), over
 * TLS trusting the CA of scripts/make-certs.sh; it sends component hashes
 * of its own making, and in a group with machine_match sees its place
 * follow a machine whose MAC changed.
 *
 * The npm packages are installed at test time into the build tree with
 * `npm ci` from the committed package-lock.json. Without node the test is
 * skipped with a message; on this project's machines node is installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_env.h"
#include "keycodec.h"

static client_env env;
static char node[512], npm[512], node_dir[512];
static bool have_node;

static char ca[400];

/* Server 0 over TLS, with the server certificate scripts/make-certs.sh
 * makes (it names 127.0.0.1, the client's target). */
static int start_tls_server(void) {
    char certs[300], script[600], cert[400], key[400];
    snprintf(certs, sizeof certs, "%s/certs", env.dir);
    snprintf(script, sizeof script, "%s/scripts/make-certs.sh", env_source_dir());
    const char *mk[] = {"/bin/bash", script, certs, NULL};
    if (fixture_run((char *const *)mk, NULL, NULL) != 0) return -1;
    snprintf(cert, sizeof cert, "%s/audit-server.pem", certs);
    snprintf(key, sizeof key, "%s/audit-server.key", certs);
    snprintf(ca, sizeof ca, "%s/ca.pem", certs);
    const char *tls[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    return env_start_server(&env, 0, tls);
}

static int setup(void **state) {
    have_node = env_find_program("node", node, sizeof node);
    if (!have_node) return 0;
    if (!env_find_program("npm", npm, sizeof npm)) {
        fprintf(stderr, "client_node: node is installed but npm is not\n");
        return -1;
    }
    snprintf(node_dir, sizeof node_dir, "%s/tests/client/node", env_build_dir());
    const char *g[] = {"--lease-seconds", "3600", "--max-machines", "3", NULL};
    if (env_npm_ci(npm, node_dir) != 0) return -1;
    const char *match[] = {"--max-machines", "3", "--machine-match", "3", NULL};
    if (env_start(&env) == 0 && start_tls_server() == 0 && env_group(&env, 301, g) == 0 &&
        env_group(&env, 302, match) == 0)
        return 0;
    env_stop(&env);  /* cmocka skips the teardown when setup fails */
    return -1;
}

static int teardown(void **state) {
    if (have_node) env_stop(&env);
    return 0;
}

/* Runs activate.js; returns its exit code, *out its JSON line. */
static int run_node(const char *key, const char *extra, char **out) {
    char script[600], protos[600];
    snprintf(script, sizeof script, "%s/activate.js", node_dir);
    snprintf(protos, sizeof protos, "%s/protos", env_source_dir());
    const char *argv[] = {
        node,   script,         "--target",     env.target[0], "--ca", ca,    "--proto-dir",
        protos, "--public-key", env.public_key, "--key",       key,    extra, extra ? "--deactivate" : NULL,
        NULL};
    char *err = NULL;
    int rc = fixture_run((char *const *)argv, out, &err);
    fprintf(stderr, "node activate.js -> %d\n%s%s", rc, *out ? *out : "", err ? err : "");
    free(err);
    return rc;
}

static void node_client_activates_renews_and_deactivates(void **state) {
    if (!have_node) {
        fprintf(stderr, "SKIPPED: node is not installed (Debian package nodejs); the Node.js interop test needs it\n");
        skip();
    }
    char keys[1][KEY_TEXT], *out = NULL, product[64], license_id[64];
    assert_int_equal(env_keys(&env, 301, 1, keys), 0);
    assert_int_equal(run_node(keys[0], "--renew", &out), 0);
    assert_non_null(strstr(out, "\"result\":\"ok\""));
    assert_int_equal(json_int(out, "activation_count"), 1);
    json_str(out, "product", product, sizeof product);
    assert_string_equal(product, "Demo Office");
    assert_non_null(strstr(out, "\"features\":[\"editor\",\"spreadsheet\"]"));
    assert_non_null(strstr(out, "\"channel\":\"CHANNEL_RETAIL\""));
    assert_non_null(strstr(out, "\"renewed\":{"));
    /* Proof of possession, from the .proto's description alone. */
    assert_non_null(strstr(out, "\"copied_license_renew\":\"UNAUTHENTICATED/PROOF_WRONG_KEY\""));
    assert_non_null(strstr(out, "\"tampered_proof_renew\":\"UNAUTHENTICATED/PROOF_INVALID\""));
    assert_non_null(strstr(out, "\"old_proof_renew\":\"UNAUTHENTICATED/PROOF_STALE\""));
    json_str(out, "license_id", license_id, sizeof license_id);
    assert_int_equal(strlen(license_id), 32);
    assert_int_equal(strncmp(license_id, "0000012d", 8), 0);  /* group 301 */
    assert_int_equal(json_int(out, "after_deactivate_count"), 0);
    free(out);
}

static void node_client_sees_the_error_model(void **state) {
    if (!have_node) skip();
    char keys[1][KEY_TEXT], *out = NULL;
    assert_int_equal(env_keys(&env, 301, 1, keys), 0);
    pk_fields f;
    assert_int_equal(pk_decode(keys[0], strlen(keys[0]), &f, NULL), PK_OK);
    f.security_first ^= 0x10;
    char forged[PK_TEXT_LEN + 1];
    assert_int_equal(pk_encode(&f, forged), 0);
    assert_int_equal(run_node(forged, NULL, &out), 1);
    assert_non_null(strstr(out, "\"code\":\"PERMISSION_DENIED\""));
    free(out);
    /* A revoked key: FAILED_PRECONDITION, and the reason in the trailers. */
    redisContext *ks = redis_fixture_connect(&env.a, "keystore", FIXTURE_PW_KEYSTORE);
    assert_non_null(ks);
    redisReply *r = redisCommand(ks, "SADD {g:301}:revoked %u", f.serial);
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(ks);
    assert_int_equal(run_node(keys[0], NULL, &out), 1);
    assert_non_null(strstr(out, "\"code\":\"FAILED_PRECONDITION\""));
    assert_non_null(strstr(out, "\"reason\":\"KEY_REVOKED\""));
    free(out);
}

/* Its own component hashes, in a group with machine_match 3: a new MAC and
 * machine_id keep the place (rebound, one place); a machine sharing two of
 * five components takes a second one. */
static void node_client_place_follows_its_machine(void **state) {
    if (!have_node) skip();
    char keys[1][KEY_TEXT], *out = NULL;
    assert_int_equal(env_keys(&env, 302, 1, keys), 0);
    assert_int_equal(run_node(keys[0], "--rebind", &out), 0);
    assert_non_null(strstr(out, "\"first\":{\"count\":1,\"rebound\":false}"));
    assert_non_null(strstr(out, "\"moved\":{\"count\":1,\"rebound\":true}"));
    assert_non_null(strstr(out, "\"other\":{\"count\":2,\"rebound\":false}"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(node_client_activates_renews_and_deactivates),
        cmocka_unit_test(node_client_sees_the_error_model),
        cmocka_unit_test(node_client_place_follows_its_machine),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
