/* test_client_mdns.c -- an installer finds an on-premises activation server
 * on the LAN by mDNS and activates against it, across two network
 * namespaces that test_client_mdns.sh builds (a veth pair, a D-Bus system
 * bus and an Avahi daemon in each; it passes their names in PA_MDNS_*).
 *
 * Machine A: Redis and an activation server (TLS, a certificate for
 * pa-mdns-a.local, the name A's Avahi announces its host by), started from
 * this process while it is in A's namespace, with --mdns-announce and a
 * --listen on A's LAN address. Machine B: the `activate` CLI, run while this
 * process is in B's namespace with B's bus, so it reaches A only through
 * the veth and learns of it only through mDNS. Checked:
 *   - `activate --mdns` activates, and the answer came from the announced
 *     host and port;
 *   - without --mdns (nothing else configured) it fails as a configuration
 *     error; with --mdns and B's Avahi away it fails as UNAVAILABLE saying so;
 *   - the certificate is checked against the announced host: --tls-name
 *     naming another host is refused, naming one the certificate carries
 *     (localhost) is accepted;
 *   - the announcement is what docs/machines.md says (avahi-browse in B):
 *     the name, the port, TXT v=1;
 *   - a second server announcing the same name takes Avahi's alternative
 *     ("NAME #2");
 *   - when A's Avahi restarts, the server logs server.mdns_failed, announces
 *     again by itself, and installers find it again;
 *   - an on-premises server names its order in TXT (order=SERIAL), and
 *     drops it once the order is retired, without a restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client_env.h"
#include "client_testutil.h"

#define SERVICE_NAME "PA test activation"
#define LAN_PORT "50443"
#define LAN_PORT_2 "50444" /* the second server's */
#define LAN_PORT_3 "50445" /* the on-premises server's */
#define ONPREM_NAME "PA test on-premises"
#define ONPREM_GROUP 302
#define SERIAL "61000001"

static client_env env;
static int ns_a = -1, ns_b = -1;
static const char *bus_a, *bus_b, *addr_a, *host_a;
static const char *script, *lan_dir, *lan_id; /* to restart A's Avahi (test_client_mdns.sh --restart-avahi) */
static char ca[400], keys[4][KEY_TEXT];

/* This thread (and the processes it starts) into the namespace of `fd`,
 * with that machine's system bus. */
static void enter(int fd, const char *bus) {
    assert_int_equal(setns(fd, CLONE_NEWNET), 0);
    assert_int_equal(setenv("DBUS_SYSTEM_BUS_ADDRESS", bus, 1), 0);
}

static int open_netns(const char *name) {
    char path[300];
    snprintf(path, sizeof path, "/run/netns/%s", name);
    return open(path, O_RDONLY | O_CLOEXEC);
}

static char cert[400], cert_key[400];

/* Server i of machine A, over TLS with a certificate for A's mDNS host name
 * (scripts/make-certs.sh adds localhost and the loopback addresses), also
 * listening on A's LAN address at `port`, announced as SERVICE_NAME. */
static int start_server_a(int i, const char *port) {
    char listen[64];
    snprintf(listen, sizeof listen, "%s:%s", addr_a, port);
    const char *extra[] = {"--tls-cert",      cert,         "--tls-key",   cert_key, "--listen", listen,
                           "--mdns-announce", SERVICE_NAME, "--log-level", "info",   NULL};
    return env_start_server(&env, i, extra);
}

static int make_certs(void) {
    char certs[300], mk_certs[600];
    snprintf(certs, sizeof certs, "%s/certs", env.dir);
    snprintf(mk_certs, sizeof mk_certs, "%s/scripts/make-certs.sh", env_source_dir());
    const char *mk[] = {"/bin/bash", mk_certs, "--server-name", host_a, certs, NULL};
    if (fixture_run((char *const *)mk, NULL, NULL) != 0) return -1;
    snprintf(cert, sizeof cert, "%s/audit-server.pem", certs);
    snprintf(cert_key, sizeof cert_key, "%s/audit-server.key", certs);
    snprintf(ca, sizeof ca, "%s/ca.pem", certs);
    return 0;
}

static int setup(void **state) {
    if (env_start(&env) != 0 || make_certs() != 0 || start_server_a(0, LAN_PORT) != 0 ||
        env_group(&env, 301, NULL) != 0 || env_keys(&env, 301, 4, keys) != 0) {
        env_stop(&env); /* cmocka skips the teardown when setup fails */
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    env_stop(&env);
    return 0;
}

/* Runs `activate` on machine B as machine `name`; back in A afterwards. */
static int activate_on_b(const char *name, const char *const *args, char **out) {
    char root[300], st[300];
    env_machine(&env, name, root, st);
    enter(ns_b, bus_b);
    int rc = env_activate_cli(&env, root, st, args, out);
    enter(ns_a, bus_a);
    return rc;
}

static void activates_through_mdns(void **state) {
    char *out = NULL, server[300];
    const char *args[] = {"--mdns", "--tls-ca", ca, keys[0], NULL};
    assert_int_equal(activate_on_b("b1", args, &out), 0);
    assert_non_null(out);
    json_str(out, "server", server, sizeof server);
    char want[300];
    snprintf(want, sizeof want, "%s:" LAN_PORT, host_a);
    assert_string_equal(server, want);
    free(out);
}

static void without_mdns_nothing_is_configured(void **state) {
    const char *args[] = {"--tls-ca", ca, keys[1], NULL};
    assert_int_equal(activate_on_b("b2", args, NULL), 14);
}

static void avahi_away_is_unavailable(void **state) {
    char root[300], st[300], *out = NULL, message[300];
    env_machine(&env, "b3", root, st);
    enter(ns_b, "unix:path=/nonexistent/pa-mdns-bus");
    const char *args[] = {"--mdns", "--tls-ca", ca, keys[1], NULL};
    int rc = env_activate_cli(&env, root, st, args, &out);
    enter(ns_a, bus_a);
    assert_int_equal(rc, 12);
    json_str(out, "message", message, sizeof message);
    assert_string_equal(message, "mDNS: the Avahi daemon is not running");
    free(out);
}

static void certificate_checked_against_the_announced_host(void **state) {
    const char *other[] = {"--mdns", "--tls-ca", ca, "--tls-name", "pa-mdns-b.local", keys[2], NULL};
    assert_int_equal(activate_on_b("b4", other, NULL), 12);
    /* --tls-name wins over the announced host: the certificate names localhost too. */
    const char *named[] = {"--mdns", "--tls-ca", ca, "--tls-name", "localhost", keys[2], NULL};
    assert_int_equal(activate_on_b("b4", named, NULL), 0);
}

/* What the Avahi of machine `fd` (bus `bus`) sees: one resolved line per
 * service (avahi-browse --parsable). malloc'd. */
static char *browse(int fd, const char *bus) {
    char timeout[300], avahi_browse[300];
    assert_true(env_find_program("timeout", timeout, sizeof timeout));
    assert_true(env_find_program("avahi-browse", avahi_browse, sizeof avahi_browse));
    enter(fd, bus);
    const char *argv[] = {timeout,       "10",         avahi_browse,          "--resolve",
                          "--terminate", "--parsable", "_pa-activation._tcp", NULL};
    char *out = NULL;
    int rc = fixture_run((char *const *)argv, &out, NULL);
    enter(ns_a, bus_a);
    assert_int_equal(rc, 0);
    assert_non_null(out);
    fprintf(stderr, "avahi-browse in %s:\n%s", fd == ns_a ? "A" : "B", out);
    return out;
}

/* The resolved line of the service `escaped_name` (avahi-browse's escapes) on `port`. */
static void resolved_line(char *buf, size_t n, const char *escaped_name, const char *port) {
    snprintf(buf, n, ";%s;_pa-activation._tcp;local;%s;%s;%s;\"v=1\"\n", escaped_name, host_a, addr_a, port);
}

/* Browses on machine `fd` until a line with `want` shows, up to 15 s. */
static bool browse_until(int fd, const char *bus, const char *want) {
    for (int i = 0; i < 15; i++) {
        char *out = browse(fd, bus);
        bool found = strstr(out, want) != NULL;
        free(out);
        if (found) return true;
        sleep(1);
    }
    return false;
}

static void announcement_as_documented(void **state) {
    char want[300];
    resolved_line(want, sizeof want, "PA\\032test\\032activation", LAN_PORT);
    char *out = browse(ns_b, bus_b);
    assert_non_null(strstr(out, want));
    free(out);
}

static void same_name_takes_the_alternative(void **state) {
    assert_int_equal(start_server_a(1, LAN_PORT_2), 0);
    char want[300];
    resolved_line(want, sizeof want, "PA\\032test\\032activation\\032\\0352", LAN_PORT_2);
    assert_true(browse_until(ns_b, bus_b, want));
    env_stop_server(&env, 1);
}

/* Server i's log (the env dir's serverI.log). malloc'd. */
static char *server_log(int i) {
    char path[400];
    snprintf(path, sizeof path, "%s/server%d.log", env.dir, i);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *text = calloc(1, 1 << 20);
    assert_non_null(text);
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static int count(const char *text, const char *what) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p++) n++;
    return n;
}

static void announced_again_after_avahi_restarts(void **state) {
    char *log = server_log(0);
    int announced = count(log, "\"event\":\"server.mdns_announced\"");
    free(log);
    assert_int_equal(announced, 1);
    const char *restart[] = {"/bin/bash", script, "--restart-avahi", lan_dir, lan_id, "a", NULL};
    assert_int_equal(fixture_run((char *const *)restart, NULL, NULL), 0);
    /* A's new daemon knows only what registered with it since. */
    char want[300];
    resolved_line(want, sizeof want, "PA\\032test\\032activation", LAN_PORT);
    assert_true(browse_until(ns_a, bus_a, want));
    log = server_log(0);
    assert_non_null(strstr(
        log, "\"event\":\"server.mdns_failed\",\"name\":\"" SERVICE_NAME "\",\"error\":\"lost the Avahi daemon"));
    assert_int_equal(count(log, "\"event\":\"server.mdns_announced\""), 2);
    free(log);
    const char *args[] = {"--mdns", "--tls-ca", ca, keys[3], NULL};
    assert_int_equal(activate_on_b("b5", args, NULL), 0);
}

/* ---- an on-premises server ---------------------------------------------- */

static int run(const char *const *argv) {
    char *out = NULL, *err = NULL;
    int rc = fixture_run((char *const *)argv, &out, &err);
    if (rc != 0) fprintf(stderr, "%s exited %d:\n%s%s\n", argv[0], rc, out ? out : "", err ? err : "");
    free(out);
    free(err);
    return rc;
}

static int key_pair(const char *name, char key[300], char pub[300]) {
    snprintf(key, 300, "%s/%s.pem", env.dir, name);
    snprintf(pub, 300, "%s/%s.pub.pem", env.dir, name);
    const char *gen[] = {"/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out", key, NULL};
    const char *out[] = {"/usr/bin/openssl", "pkey", "-in", key, "-pubout", "-out", pub, NULL};
    return run(gen) || run(out) ? -1 : 0;
}

/* Order SERIAL for a group of volume keys, delegating `server_pub`, made
 * and imported with the shipped tools (docs/volume.md). */
static int make_order(const char *order_key, const char *order_pub, const char *server_key, const char *server_pub) {
    const char *vol[] = {"--channel", "volume", NULL};
    char vkeys[2][KEY_TEXT], text[2 * 32], keys_file[400], path[400], from[32], until[32];
    if (env_group(&env, ONPREM_GROUP, vol) != 0 || env_keys(&env, ONPREM_GROUP, 2, vkeys) != 0) return -1;
    snprintf(text, sizeof text, "%s\n%s\n", vkeys[0], vkeys[1]);
    tu_write(env.dir, "volume-keys.txt", text);
    snprintf(keys_file, sizeof keys_file, "%s/volume-keys.txt", env.dir);
    snprintf(path, sizeof path, "%s/" SERIAL ".license", env.dir);
    snprintf(from, sizeof from, "%lld", (long long)time(NULL) - 86400);
    snprintf(until, sizeof until, "%lld", (long long)time(NULL) + 30 * 86400);
    const char *create[] = {fixture_bin("keystore/keystore"),
                            "order",
                            "create",
                            "--order-key",
                            order_key,
                            "--serial",
                            SERIAL,
                            "--customer",
                            "Example Corp",
                            "--group",
                            "302",
                            "--product",
                            "Demo Office",
                            "--edition",
                            "Professional",
                            "--mode",
                            "permanent",
                            "--seats",
                            "10",
                            "--valid-from",
                            from,
                            "--valid-until",
                            until,
                            "--delegate",
                            server_pub,
                            "--keys-file",
                            keys_file,
                            "--out",
                            path,
                            NULL};
    if (run(create) != 0) return -1;
    const char *import[] = {fixture_bin("activation-server/activation-server"),
                            "order",
                            "import",
                            path,
                            "--order-public-key",
                            order_pub,
                            "--on-premises",
                            "--signing-key",
                            server_key,
                            "--redis-url",
                            env.url_a,
                            NULL};
    return run(import);
}

static char order_pub[300], onprem_key[300];

static void on_premises_server_names_its_order(void **state) {
    char order_key[300], onprem_pub[300], listen[64];
    assert_int_equal(key_pair("order", order_key, order_pub), 0);
    assert_int_equal(key_pair("onprem", onprem_key, onprem_pub), 0);
    assert_int_equal(make_order(order_key, order_pub, onprem_key, onprem_pub), 0);
    char vendor_key[300];
    snprintf(vendor_key, sizeof vendor_key, "%s", env.signing_key);
    snprintf(env.signing_key, sizeof env.signing_key, "%s", onprem_key);
    snprintf(listen, sizeof listen, "%s:" LAN_PORT_3, addr_a);
    const char *extra[] = {"--on-premises",
                           "--order-public-key",
                           order_pub,
                           "--tls-cert",
                           cert,
                           "--tls-key",
                           cert_key,
                           "--listen",
                           listen,
                           "--mdns-announce",
                           ONPREM_NAME,
                           "--group-refresh-ms",
                           "200",
                           NULL};
    int rc = env_start_server(&env, 2, extra);
    snprintf(env.signing_key, sizeof env.signing_key, "%s", vendor_key);
    assert_int_equal(rc, 0);
    char want[300];
    snprintf(want, sizeof want,
             ";PA\\032test\\032on-premises;_pa-activation._tcp;local;%s;%s;" LAN_PORT_3 ";\"order=" SERIAL
             "\" \"v=1\"\n",
             host_a, addr_a);
    assert_true(browse_until(ns_b, bus_b, want));
    /* Retired, the order is no longer named (read again every 200 ms). */
    const char *retire[] = {
        fixture_bin("activation-server/activation-server"), "order", "retire", SERIAL, "--redis-url", env.url_a, NULL};
    assert_int_equal(run(retire), 0);
    snprintf(want, sizeof want, ";PA\\032test\\032on-premises;_pa-activation._tcp;local;%s;%s;" LAN_PORT_3 ";\"v=1\"\n",
             host_a, addr_a);
    assert_true(browse_until(ns_b, bus_b, want));
    env_stop_server(&env, 2);
}

int main(void) {
    const char *na = getenv("PA_MDNS_NETNS_A"), *nb = getenv("PA_MDNS_NETNS_B");
    bus_a = getenv("PA_MDNS_BUS_A");
    bus_b = getenv("PA_MDNS_BUS_B");
    addr_a = getenv("PA_MDNS_ADDR_A");
    host_a = getenv("PA_MDNS_HOST_A");
    script = getenv("PA_MDNS_SCRIPT");
    lan_dir = getenv("PA_MDNS_DIR");
    lan_id = getenv("PA_MDNS_ID");
    if (!na || !nb || !bus_a || !bus_b || !addr_a || !host_a || !script || !lan_dir || !lan_id) {
        fprintf(stderr, "client_mdns: run through tests/client/test_client_mdns.sh, which builds the LAN\n");
        return 77;
    }
    if ((ns_a = open_netns(na)) < 0 || (ns_b = open_netns(nb)) < 0) {
        fprintf(stderr, "client_mdns: cannot open the namespaces %s and %s\n", na, nb);
        return 1;
    }
    if (setns(ns_a, CLONE_NEWNET) != 0 || setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_a, 1) != 0) {
        perror("client_mdns: setns");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(activates_through_mdns),
        cmocka_unit_test(without_mdns_nothing_is_configured),
        cmocka_unit_test(avahi_away_is_unavailable),
        cmocka_unit_test(certificate_checked_against_the_announced_host),
        cmocka_unit_test(announcement_as_documented),
        cmocka_unit_test(same_name_takes_the_alternative),
        cmocka_unit_test(announced_again_after_avahi_restarts),
        cmocka_unit_test(on_premises_server_names_its_order),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    close(ns_a);
    close(ns_b);
    return rc;
}
