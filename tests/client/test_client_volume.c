/* test_client_volume.c -- volume orders end to end with the real programs:
 * orders made with `keystore order create --delegate`, imported with
 * `activation-server order import`, served by an on-premises
 * `activation-server --on-premises` over TLS, and the installers: the
 * `activate` CLI (C), tests/activation/interop_activate.py (Python) and
 * tests/client/node/activate.js (Node.js).
 *
 *   - all three accept the chain vendor order key -> order -> the server's
 *     delegated key -> license;
 *   - a rogue server (another signing key on the same store, so it serves
 *     an order that delegates someone else) is refused by all three;
 *   - below the KMS threshold a machine's daemon is pending (and says the
 *     count and threshold); once another machine makes the count, the
 *     daemon is granted at its check-in;
 *   - a concurrent order's one seat is held by the daemon's heartbeats and
 *     freed once they stop; a second machine's daemon, refused meanwhile,
 *     comes back at the server's retry-after and takes it;
 *   - a deactivation under approval waits (exit 20), the operator approves,
 *     the next renewal removes the license (exit 21);
 *   - a forced deactivation removes the license and `maintain` does not
 *     activate again, even with the product key at hand;
 *   - `activate status` shows order, mode, count and threshold, seats and
 *     the machine digest.
 * Times are seconds (heartbeat 2 s, pending retry 2 s). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client_env.h"
#include "client_testutil.h"

enum { G_CHAIN = 501, G_THRESHOLD = 502, G_CONCURRENT = 503, G_APPROVAL = 504 };
#define S_CHAIN "50000001"
#define S_THRESHOLD "50000002"
#define S_CONCURRENT "50000003"
#define S_APPROVAL "50000004"
#define KEYS 4

static client_env env;
static char order_key[300], order_pub[300];   /* the vendor's order key pair */
static char license_pub[300];                 /* the vendor's license key (the env's), alone */
static char bundle[300];                      /* both: what the C client trusts */
static char server_a[300], server_a_pub[300]; /* the on-premises server's key, which the orders delegate */
static char server_b[300];                    /* a rogue's key */
static char certs[300], ca[400], cert[400], cert_key[400];
static char keys[4][KEYS][KEY_TEXT]; /* per order */

/* ---- setup --------------------------------------------------------------------- */

static int run(const char *const *argv, char **out) {
    char *o = NULL, *err = NULL;
    int rc = fixture_run((char *const *)argv, &o, &err);
    if (rc != 0) fprintf(stderr, "%s exited %d:\n%s%s\n", argv[0], rc, o ? o : "", err ? err : "");
    if (out) *out = o;
    else free(o);
    free(err);
    return rc;
}

static int key_pair(const char *name, char *key, char *pub) {
    snprintf(key, 300, "%s/%s.pem", env.dir, name);
    snprintf(pub, 300, "%s/%s.pub.pem", env.dir, name);
    const char *gen[] = {"/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out", key, NULL};
    const char *out[] = {"/usr/bin/openssl", "pkey", "-in", key, "-pubout", "-out", pub, NULL};
    return run(gen, NULL) || run(out, NULL) ? -1 : 0;
}

static int cat(const char *a, const char *b, const char *out) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cat '%s' '%s' > '%s'", a, b, out);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    return run(argv, NULL);
}

/* A group of volume keys, its keys in a keys file, and an on-premises
 * order for them (`terms`: more `keystore order create` flags). */
static int make_order(int idx, unsigned group, const char *serial, const char *mode, const char *seats,
                      const char *const *terms) {
    const char *vol[] = {"--channel", "volume", NULL};
    if (env_group(&env, group, vol) != 0 || env_keys(&env, group, KEYS, keys[idx]) != 0) return -1;
    char keys_file[400], text[KEYS * 32] = "", path[400], from[32], until[32], gid[16];
    snprintf(keys_file, sizeof keys_file, "%s/keys-%s.txt", env.dir, serial);
    for (int i = 0; i < KEYS; i++) snprintf(text + strlen(text), sizeof text - strlen(text), "%s\n", keys[idx][i]);
    tu_write(env.dir, strrchr(keys_file, '/') + 1, text);
    snprintf(path, sizeof path, "%s/%s.license", env.dir, serial);
    snprintf(from, sizeof from, "%lld", (long long)time(NULL) - 86400);
    snprintf(until, sizeof until, "%lld", (long long)time(NULL) + 30 * 86400);
    snprintf(gid, sizeof gid, "%u", group);
    const char *argv[64] = {fixture_bin("keystore/keystore"),
                            "order",
                            "create",
                            "--order-key",
                            order_key,
                            "--serial",
                            serial,
                            "--customer",
                            "Example Corp",
                            "--group",
                            gid,
                            "--product",
                            "Demo Office",
                            "--edition",
                            "Professional",
                            "--features",
                            "editor,spreadsheet",
                            "--mode",
                            mode,
                            "--seats",
                            seats,
                            "--valid-from",
                            from,
                            "--valid-until",
                            until,
                            "--delegate",
                            server_a_pub,
                            "--keys-file",
                            keys_file,
                            "--out",
                            path};
    int n = 31;
    for (int i = 0; terms && terms[i]; i++) argv[n++] = terms[i];
    argv[n] = NULL;
    if (run(argv, NULL) != 0) return -1;
    const char *imp[] = {fixture_bin("activation-server/activation-server"),
                         "order",
                         "import",
                         path,
                         "--order-public-key",
                         order_pub,
                         "--on-premises",
                         "--signing-key",
                         server_a,
                         "--redis-url",
                         env.url_a,
                         NULL};
    return run(imp, NULL);
}

/* Server `i`, on-premises over TLS, signing with `key`. */
static int start_on_premises(int i, const char *key) {
    snprintf(env.signing_key, sizeof env.signing_key, "%s", key);
    const char *flags[] = {"--on-premises", "--order-public-key", order_pub, "--tls-cert", cert, "--tls-key",
                           cert_key,        "--group-refresh-ms", "200",     NULL};
    return env_start_server(&env, i, flags);
}

static int setup(void **state) {
    if (env_start(&env) != 0) return -1;
    snprintf(license_pub, sizeof license_pub, "%s", env.public_key);
    snprintf(bundle, sizeof bundle, "%s/bundle.pem", env.dir);
    snprintf(certs, sizeof certs, "%s/certs", env.dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", certs);
    snprintf(cert, sizeof cert, "%s/audit-server.pem", certs);
    snprintf(cert_key, sizeof cert_key, "%s/audit-server.key", certs);
    char unused[300];
    if (key_pair("order", order_key, order_pub) != 0 || key_pair("server-a", server_a, server_a_pub) != 0 ||
        key_pair("server-b", server_b, unused) != 0 || cat(license_pub, order_pub, bundle) != 0 ||
        fixture_make_certs(certs) != 0)
        return -1;
    snprintf(env.public_key, sizeof env.public_key, "%s", bundle); /* what env_activate_cli passes */
    const char *threshold[] = {"--threshold", "2", "--pending-retry-s", "2", NULL};
    const char *concurrent[] = {"--heartbeat-s", "2", "--missed-heartbeats", "2", NULL};
    const char *approval[] = {"--deactivation-approval", "on", "--renew-s", "2", NULL};
    if (make_order(0, G_CHAIN, S_CHAIN, "permanent", "10", NULL) != 0 ||
        make_order(1, G_THRESHOLD, S_THRESHOLD, "permanent", "10", threshold) != 0 ||
        make_order(2, G_CONCURRENT, S_CONCURRENT, "concurrent", "1", concurrent) != 0 ||
        make_order(3, G_APPROVAL, S_APPROVAL, "permanent", "10", approval) != 0 ||
        start_on_premises(0, server_a) != 0) {
        env_stop(&env);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    env_stop(&env);
    return 0;
}

/* ---- the installers ---------------------------------------------------------------- */

/* `activate ARGS --server S --tls-ca CA` as machine `name`; *out its JSON (may be NULL). */
static int activate(const char *name, int server, const char *const *args, char **out) {
    char root[300], state[300];
    snprintf(root, sizeof root, "%s/machines/%s", env.dir, name);
    snprintf(state, sizeof state, "%s/state/%s", env.dir, name);
    if (access(root, F_OK) != 0) env_machine(&env, name, root, state);
    const char *argv[32];
    size_t n = 0;
    for (; args[n] && n < 26; n++) argv[n] = args[n];
    argv[n++] = "--server";
    argv[n++] = env.target[server];
    argv[n++] = "--tls-ca";
    argv[n++] = ca;
    argv[n] = NULL;
    return env_activate_cli(&env, root, state, argv, out);
}

/* The machine's digest, from `activate status --json`. */
static void digest_of(const char *name, char out[64]) {
    char *json = NULL;
    const char *st[] = {"status", NULL};
    activate(name, 0, st, &json);
    json_str(json, "machine_digest", out, 64);
    free(json);
    assert_int_equal(strlen(out), 32);
}

static int python(const char *key, int server, char **out) {
    char script[600], protos[600];
    snprintf(script, sizeof script, "%s/tests/activation/interop_activate.py", env_source_dir());
    snprintf(protos, sizeof protos, "%s/protos", env_source_dir());
    const char *argv[] = {"/usr/bin/python3",
                          script,
                          "--server",
                          env.target[server],
                          "--ca",
                          ca,
                          "--key",
                          key,
                          "--protos",
                          protos,
                          "--public-key",
                          license_pub,
                          "--group",
                          "501",
                          "--serial",
                          "1",
                          "--volume",
                          "--order-public-key",
                          order_pub,
                          NULL};
    char *o = NULL, *err = NULL;
    int rc = fixture_run((char *const *)argv, &o, &err);
    size_t len = strlen(o ? o : "") + strlen(err ? err : "") + 1;
    *out = malloc(len);
    snprintf(*out, len, "%s%s", o ? o : "", err ? err : "");
    fprintf(stderr, "python interop_activate.py --volume -> %d\n%s", rc, *out);
    free(o);
    free(err);
    return rc;
}

/* -1 when node is not installed. */
static int node(const char *key, int server, char **out) {
    static char node_bin[512], npm[512], node_dir[512];
    *out = NULL;
    if (!env_find_program("node", node_bin, sizeof node_bin) || !env_find_program("npm", npm, sizeof npm)) {
        fprintf(stderr, "SKIPPED (the Node.js part): node and npm are not installed (Debian package nodejs)\n");
        return -1;
    }
    snprintf(node_dir, sizeof node_dir, "%s/tests/client/node", env_build_dir());
    if (env_npm_ci(npm, node_dir) != 0) fail_msg("npm ci failed");
    char script[600], protos[600];
    snprintf(script, sizeof script, "%s/activate.js", node_dir);
    snprintf(protos, sizeof protos, "%s/protos", env_source_dir());
    const char *argv[] = {
        node_bin,       script,      "--target",           env.target[server], "--ca",  ca,  "--proto-dir", protos,
        "--public-key", license_pub, "--order-public-key", order_pub,          "--key", key, NULL};
    char *err = NULL;
    int rc = fixture_run((char *const *)argv, out, &err);
    fprintf(stderr, "node activate.js -> %d\n%s%s", rc, *out ? *out : "", err ? err : "");
    free(err);
    return rc;
}

/* ---- tests -------------------------------------------------------------------------- */

static void chain_is_accepted_by_all_three_clients(void **state) {
    char *out = NULL;
    const char *act[] = {keys[0][0], NULL};
    assert_int_equal(activate("chain", 0, act, &out), 0);
    assert_non_null(strstr(out, "\"channel\":\"volume\""));
    assert_non_null(strstr(out, "\"order_serial\":\"" S_CHAIN "\""));
    free(out);
    const char *st[] = {"status", NULL};
    assert_int_equal(activate("chain", 0, st, &out), 0);
    assert_non_null(
        strstr(out, "\"volume\":{\"order_serial\":\"" S_CHAIN "\",\"order_revision\":1,\"mode\":\"permanent\""));
    assert_non_null(strstr(out, "\"seats\":10,\"seats_used\":1,\"deactivation_requested\":false}"));
    char digest[64];
    json_str(out, "machine_digest", digest, sizeof digest);
    assert_int_equal(strlen(digest), 32);
    free(out);
    assert_int_equal(python(keys[0][1], 0, &out), 0);
    assert_non_null(strstr(out, "interop ok order=" S_CHAIN " revision=1 mode=permanent"));
    free(out);
    if (node(keys[0][2], 0, &out) == -1) return;
    assert_non_null(strstr(out, "\"result\":\"ok\""));
    assert_non_null(strstr(out, "\"order_chain\":true"));
    free(out);
}

/* The same store and order, served with a key the order does not delegate. */
static void rogue_server_is_refused_by_all_three_clients(void **state) {
    assert_int_equal(start_on_premises(1, server_b), 0);
    char *out = NULL;
    const char *act[] = {keys[0][3], NULL};
    assert_int_equal(activate("rogue", 1, act, &out), 13);
    assert_non_null(strstr(out, "not signed by the order's delegated server key"));
    free(out);
    assert_int_equal(python(keys[0][3], 1, &out), 1);
    assert_non_null(strstr(out, "not signed by the order's delegated server key"));
    free(out);
    int rc = node(keys[0][3], 1, &out);
    if (rc != -1) {
        assert_int_equal(rc, 1);
        assert_non_null(strstr(out, "not signed by the order's delegated server key"));
        free(out);
    }
    env_stop_server(&env, 1);
    snprintf(env.signing_key, sizeof env.signing_key, "%s", server_a);
}

/* Reads the state until `activate status` exits `want` (up to `ms`). */
static bool status_becomes(const char *name, int want, int ms) {
    const char *st[] = {"status", NULL};
    for (int waited = 0; waited <= ms; waited += 250) {
        if (activate(name, 0, st, NULL) == want) return true;
        usleep(250 * 1000);
    }
    return false;
}

/* Waits until the file holds `needle` (up to `ms`). */
static bool log_shows(const char *path, const char *needle, int ms) {
    for (int waited = 0; waited <= ms; waited += 100) {
        FILE *f = fopen(path, "r");
        char buf[65536];
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        buf[n] = '\0';
        if (strstr(buf, needle)) return true;
        usleep(100 * 1000);
    }
    return false;
}

static void daemon_log(const char *name, char *path, size_t n) { snprintf(path, n, "%s/daemon-%s.log", env.dir, name); }

static pid_t daemon_of(const char *name, const char *key) {
    char root[300], state[300], log[400];
    env_machine(&env, name, root, state);
    daemon_log(name, log, sizeof log);
    tu_write(state, "product-key", key);
    const char *argv[] = {fixture_bin("client/activate"),
                          "--daemon",
                          "--state-dir",
                          state,
                          "--facts-root",
                          root,
                          "--public-key",
                          bundle,
                          "--server",
                          env.target[0],
                          "--tls-ca",
                          ca,
                          "--log-level",
                          "debug",
                          NULL};
    return fixture_spawn((char *const *)argv, log, 0, 0);
}

static void pending_below_threshold_then_granted(void **state) {
    char *out = NULL, log[400];
    pid_t d = daemon_of("pending-1", keys[1][0]);
    assert_true(d > 0);
    /* The daemon asks, alone: pending (count 1 of 2), nothing stored. */
    daemon_log("pending-1", log, sizeof log);
    assert_true(log_shows(log, "\"event\":\"daemon.pending\"", 10000));
    assert_true(log_shows(log, "once 2 machines have asked, and 1 has so far", 0));
    const char *st[] = {"status", NULL};
    assert_int_equal(activate("pending-1", 0, st, NULL), 4);
    /* The CLI on that machine says the same, with exit 20. */
    const char *again[] = {keys[1][0], NULL};
    assert_int_equal(activate("pending-1", 0, again, &out), 20);
    assert_non_null(strstr(out, "\"result\":\"pending\""));
    assert_non_null(strstr(out, "\"activation_count\":1,\"threshold\":2"));
    free(out);
    /* A second machine makes the count 2 and is granted at once. */
    const char *act[] = {keys[1][1], NULL};
    assert_int_equal(activate("pending-2", 0, act, &out), 0);
    free(out);
    /* The first one's daemon is granted at its check-in (2 s). */
    assert_true(status_becomes("pending-1", 0, 10000));
    fixture_stop(d, SIGTERM, 5000);
}

static void heartbeats_keep_a_concurrent_seat(void **state) {
    pid_t d = daemon_of("beating", keys[2][0]);
    assert_true(d > 0);
    assert_true(status_becomes("beating", 0, 10000));
    /* Longer than the lease (2 missed beats of 2 s): the seat stays held. */
    const char *other[] = {keys[2][1], NULL};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(activate("waiting", 0, other, NULL), 9); /* no seat left */
        usleep(1500 * 1000);
    }
    /* The waiting machine's daemon is refused too; the server's retry-after
     * (when the seat's lease ends) brings it back within seconds, not the
     * two-hour retry. */
    pid_t w = daemon_of("waiting", keys[2][1]);
    assert_true(w > 0);
    usleep(1500 * 1000);
    fixture_stop(d, SIGTERM, 5000);
    /* No more heartbeats: the seat frees within the lease and a bucket, and
     * the waiting daemon takes it by itself. */
    bool took = status_becomes("waiting", 0, 20000);
    fixture_stop(w, SIGTERM, 5000);
    if (!took) {
        char log[400], cmd[460];
        daemon_log("waiting", log, sizeof log);
        snprintf(cmd, sizeof cmd, "tail -20 %s", log);
        if (system(cmd) != 0) printf("  (no daemon log)\n");
    }
    assert_true(took);
}

static void deactivation_awaits_approval_then_approved(void **state) {
    const char *act[] = {keys[3][0], NULL};
    assert_int_equal(activate("leaving", 0, act, NULL), 0);
    const char *deact[] = {"deactivate", NULL};
    char *out = NULL;
    assert_int_equal(activate("leaving", 0, deact, &out), 20);
    assert_non_null(strstr(out, "waits for the approval"));
    free(out);
    const char *st[] = {"status", NULL};
    assert_int_equal(activate("leaving", 0, st, &out), 0);
    assert_non_null(strstr(out, "\"deactivation_requested\":true"));
    free(out);
    char digest[64];
    digest_of("leaving", digest);
    const char *approve[] = {fixture_bin("activation-server/activation-server"),
                             "order",
                             "approve",
                             S_APPROVAL,
                             digest,
                             "--redis-url",
                             env.url_a,
                             NULL};
    assert_int_equal(run(approve, NULL), 0);
    const char *renew[] = {"renew", NULL};
    assert_int_equal(activate("leaving", 0, renew, &out), 21);
    assert_non_null(strstr(out, "approved this machine's deactivation request"));
    free(out);
    const char *s2[] = {"status", NULL};
    assert_int_equal(activate("leaving", 0, s2, NULL), 4);
}

static void forced_deactivation_is_not_reactivated(void **state) {
    char state_dir[300];
    const char *act[] = {keys[3][1], NULL};
    assert_int_equal(activate("dead", 0, act, NULL), 0);
    snprintf(state_dir, sizeof state_dir, "%s/state/dead", env.dir);
    tu_write(state_dir, "product-key", keys[3][1]);
    char digest[64];
    digest_of("dead", digest);
    const char *force[] = {fixture_bin("activation-server/activation-server"),
                           "order",
                           "deactivate",
                           S_APPROVAL,
                           digest,
                           "--redis-url",
                           env.url_a,
                           NULL};
    assert_int_equal(run(force, NULL), 0);
    sleep(2); /* the license's renew_after (renew 2 s) */
    char *out = NULL;
    const char *maintain[] = {"maintain", NULL};
    assert_int_equal(activate("dead", 0, maintain, &out), 21);
    assert_non_null(strstr(out, "deactivated this machine"));
    free(out);
    /* Again, the product key at hand: still not activated. */
    assert_int_equal(activate("dead", 0, maintain, &out), 21);
    free(out);
    const char *st[] = {"status", NULL};
    assert_int_equal(activate("dead", 0, st, NULL), 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chain_is_accepted_by_all_three_clients),
        cmocka_unit_test(rogue_server_is_refused_by_all_three_clients),
        cmocka_unit_test(pending_below_threshold_then_granted),
        cmocka_unit_test(heartbeats_keep_a_concurrent_seat),
        cmocka_unit_test(deactivation_awaits_approval_then_approved),
        cmocka_unit_test(forced_deactivation_is_not_reactivated),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
