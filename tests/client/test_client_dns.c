/* test_client_dns.c -- server discovery through DNS SRV against a real DNS
 * server (dnsmasq on a loopback port) and real activation servers:
 *   _activation._tcp.example.test  prio 0  weight 10  -> a dead port
 *                                  prio 10 weight 80  -> server 0 (act-a)
 *                                  prio 10 weight 20  -> server 1 (act-b)
 * The client must try the dead one first (lowest priority value), fail over,
 * and spread its first live choice 80/20; the last good server is kept. */
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

#include "activate.h"
#include "client_env.h"
#include "discovery.h"

#define DOMAIN "example.test"
#define DNSMASQ "/usr/sbin/dnsmasq"

static client_env env;
static pid_t dnsmasq = -1;
static int dns_port, dead_port;
static char dns_server[64], name_a[64], name_b[64], name_dead[64];
static char key[KEY_TEXT], picker_key[KEY_TEXT];  /* one machine each: max-machines 1 */

static int start_dnsmasq(void) {
    char port[32], pid_file[300], log[300], srv[3][160], hosts[3][100];
    dns_port = fixture_free_port();
    snprintf(port, sizeof port, "--port=%d", dns_port);
    snprintf(dns_server, sizeof dns_server, "127.0.0.1:%d", dns_port);
    snprintf(pid_file, sizeof pid_file, "--pid-file=%s/dnsmasq.pid", env.dir);
    snprintf(log, sizeof log, "%s/dnsmasq.log", env.dir);
    snprintf(srv[0], sizeof srv[0], "--srv-host=_activation._tcp." DOMAIN ",act-dead." DOMAIN ",%d,0,10", dead_port);
    snprintf(srv[1], sizeof srv[1], "--srv-host=_activation._tcp." DOMAIN ",act-a." DOMAIN ",%d,10,80", env.port[0]);
    snprintf(srv[2], sizeof srv[2], "--srv-host=_activation._tcp." DOMAIN ",act-b." DOMAIN ",%d,10,20", env.port[1]);
    const char *names[] = {"act-dead", "act-a", "act-b"};
    for (int i = 0; i < 3; i++) snprintf(hosts[i], sizeof hosts[i], "--host-record=%s." DOMAIN ",127.0.0.1", names[i]);
    snprintf(name_dead, sizeof name_dead, "act-dead." DOMAIN ":%d", dead_port);
    snprintf(name_a, sizeof name_a, "act-a." DOMAIN ":%d", env.port[0]);
    snprintf(name_b, sizeof name_b, "act-b." DOMAIN ":%d", env.port[1]);
    const char *argv[] = {DNSMASQ, "--no-daemon", port, "--listen-address=127.0.0.1", "--bind-interfaces",
                          "--no-resolv", "--no-hosts", "--conf-file=/dev/null", pid_file, "--log-queries",
                          "--log-facility=-", srv[0], srv[1], srv[2], hosts[0], hosts[1], hosts[2], NULL};
    dnsmasq = fixture_spawn((char *const *)argv, log, dns_port, 10000);
    return dnsmasq > 0 ? 0 : -1;
}

static int setup(void **state) {
    if (access(DNSMASQ, X_OK) != 0) {
        fprintf(stderr, "client_dns: %s is missing (Debian package dnsmasq-base)\n", DNSMASQ);
        return -1;
    }
    const char *g[] = {"--max-machines", "1", NULL};
    char keys[2][KEY_TEXT];
    if (env_start(&env) != 0 || env_start_server(&env, 0, NULL) != 0 || env_start_server(&env, 1, NULL) != 0 ||
        env_group(&env, 201, g) != 0 || env_keys(&env, 201, 2, keys) != 0) {
        env_stop(&env);  /* cmocka skips the teardown when setup fails */
        return -1;
    }
    snprintf(key, sizeof key, "%s", keys[0]);
    snprintf(picker_key, sizeof picker_key, "%s", keys[1]);
    do dead_port = fixture_free_port(); while (dead_port == env.port[0] || dead_port == env.port[1]);
    if (start_dnsmasq() == 0) return 0;
    env_stop(&env);
    return -1;
}

static int teardown(void **state) {
    if (dnsmasq > 0) fixture_stop(dnsmasq, SIGTERM, 5000);
    env_stop(&env);
    return 0;
}

static void srv_lookup_reads_the_records(void **state) {
    srv_record *r;
    size_t n;
    char err[256];
    assert_int_equal(srv_lookup(DOMAIN, dns_server, 3000, &r, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(r[i].host, "act-a." DOMAIN) == 0) {
            assert_int_equal(r[i].port, env.port[0]);
            assert_int_equal(r[i].priority, 10);
            assert_int_equal(r[i].weight, 80);
            seen |= 1;
        } else if (strcmp(r[i].host, "act-b." DOMAIN) == 0) {
            assert_int_equal(r[i].weight, 20);
            seen |= 2;
        } else {
            assert_string_equal(r[i].host, "act-dead." DOMAIN);
            assert_int_equal(r[i].priority, 0);
            seen |= 4;
        }
    }
    assert_int_equal(seen, 7);
    free(r);
    assert_int_equal(srv_lookup("nothing.test", dns_server, 3000, &r, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "_activation._tcp.nothing.test"));
    /* A DNS server that does not answer: bounded by the deadline. */
    char silent[64];
    snprintf(silent, sizeof silent, "127.0.0.1:%d", dead_port);
    time_t t0 = time(NULL);
    assert_int_equal(srv_lookup(DOMAIN, silent, 1500, &r, &n, err, sizeof err), -1);
    assert_true(time(NULL) - t0 <= 3);
}

static void cli_fails_over_from_the_dead_record(void **state) {
    char root[300], st[300], *out, server[96];
    env_machine(&env, "srv1", root, st);
    const char *args[] = {key, "--srv-domain", DOMAIN, "--dns-server", dns_server, NULL};
    assert_int_equal(env_activate_cli(&env, root, st, args, &out), 0);
    json_str(out, "server", server, sizeof server);
    assert_true(strcmp(server, name_a) == 0 || strcmp(server, name_b) == 0);
    free(out);
    /* With no DNS answer at all: exit 12, "no activation servers found". */
    const char *none[] = {"renew", "--srv-domain", "nothing.test", "--dns-server", dns_server, NULL};
    assert_int_equal(env_activate_cli(&env, root, st, none, &out), 12);
    assert_non_null(strstr(out, "no activation servers found"));
    free(out);
}

/* Re-activates the same machine `n` times with fresh handles (so each one
 * orders the SRV answers anew); counts which server answered. */
static void pick_servers(const char *state_dir, bool keep_last, int n, int *a, int *b) {
    char root[300], st[300], last[400];
    env_machine(&env, "picker", root, st);
    snprintf(last, sizeof last, "%s/last-server", state_dir);
    *a = *b = 0;
    for (int i = 0; i < n; i++) {
        if (!keep_last) unlink(last);
        pa_options o;
        pa_options_init(&o);
        o.state_dir = state_dir;
        o.facts_root = root;
        o.srv_domain = DOMAIN;
        o.dns_server = dns_server;
        char *pem = NULL, err[256];
        FILE *fp = fopen(env.public_key, "r");
        assert_non_null(fp);
        pem = calloc(1, 4096);
        assert_true(fread(pem, 1, 4095, fp) > 0);
        fclose(fp);
        o.public_key_pem = pem;
        pa_client *c = pa_client_new(&o, err, sizeof err);
        assert_non_null(c);
        pa_err e = pa_activate(c, picker_key);
        if (e != PA_OK) fprintf(stderr, "activate: %s\n", pa_error(c));
        assert_int_equal(e, PA_OK);
        *a += strcmp(pa_server(c), name_a) == 0;
        *b += strcmp(pa_server(c), name_b) == 0;
        assert_int_equal(pa_activation_count(c), 1);  /* the same machine: one place */
        pa_client_free(c);
        free(pem);
    }
}

static void weights_are_respected_over_many_picks(void **state) {
    char dir[400];
    snprintf(dir, sizeof dir, "%s/state/weights", env.dir);
    int a, b, n = 200;
    pick_servers(dir, false, n, &a, &b);
    printf("first live server over %d activations: act-a %d (weight 80), act-b %d (weight 20)\n", n, a, b);
    assert_int_equal(a + b, n);                 /* never the dead one, never a failure */
    assert_true(a > n * 68 / 100 && a < n * 92 / 100);
}

static void the_last_good_server_is_tried_first(void **state) {
    char dir[400], last[450];
    snprintf(dir, sizeof dir, "%s/state/sticky", env.dir);
    snprintf(last, sizeof last, "%s/last-server", dir);
    fixture_rmtree(dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && printf '%%s' '%s' > '%s'", dir, name_b, last);
    assert_int_equal(system(cmd), 0);
    int a, b;
    pick_servers(dir, true, 20, &a, &b);
    assert_int_equal(b, 20);  /* act-b (weight 20) answered every time: it was remembered */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(srv_lookup_reads_the_records),
        cmocka_unit_test(cli_fails_over_from_the_dead_record),
        cmocka_unit_test(weights_are_respected_over_many_picks),
        cmocka_unit_test(the_last_good_server_is_tried_first),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
