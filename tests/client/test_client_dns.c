/* test_client_dns.c -- server discovery through DNS SRV against a real DNS
 * server (dnsmasq on a loopback port) and real activation servers:
 *   _activation._tcp.example.test  prio 0  weight 10  -> a dead port
 *                                  prio 10 weight 80  -> server 0 (act-a)
 *                                  prio 10 weight 20  -> server 1 (act-b)
 * The client must try the dead one first (lowest priority value), fail over,
 * and spread its first live choice 80/20; the last good server is kept.
 * More domains for what DNS must not be trusted with:
 *   slow.test     three targets that accept TCP and never answer, then
 *                 server 0: passed within the connect timeouts, not three
 *                 call timeouts;
 *   good.test     act.good.test, server 2 over TLS with a certificate for
 *                 that name: accepted;
 *   wrong.test    act.wrong.test, the same server 2: its certificate does
 *                 not name the target, refused;
 *   outside.test  act.good.test again: a target outside the SRV domain is
 *                 not used, certificate or not;
 *   many.test     40 records: at most SRV_MAX_RECORDS are used. */
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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "activate.h"
#include "clock.h"
#include "client_env.h"
#include "discovery.h"

#define DOMAIN "example.test"
#define DNSMASQ "/usr/sbin/dnsmasq"

static client_env env;
static pid_t dnsmasq = -1;
static int dns_port, dead_port, silent_port, silent_fd = -1;
static char ca[400];
static char dns_server[64], name_a[64], name_b[64], name_dead[64];
static char key[KEY_TEXT], picker_key[KEY_TEXT];  /* one machine each: max-machines 1 */
static char slow_key[KEY_TEXT], tls_key[KEY_TEXT];

/* A TCP port that completes handshakes (the kernel does) and never says a
 * word: a server that hangs, the worst kind of dead record. */
static int start_silent_port(void) {
    silent_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (silent_fd < 0 || bind(silent_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(silent_fd, 64) != 0) return -1;
    socklen_t len = sizeof a;
    if (getsockname(silent_fd, (struct sockaddr *)&a, &len) != 0) return -1;
    silent_port = ntohs(a.sin_port);
    return 0;
}

enum { MANY = 40 };

static int start_dnsmasq(void) {
    enum { FIXED = 15, RECORDS = 3 + 4 + 3 + MANY, HOSTS = 3 + 4 + 2 };
    static char srv[RECORDS][160], hosts[HOSTS][100];
    char port[32], pid_file[300], log[300];
    dns_port = fixture_free_port();
    snprintf(port, sizeof port, "--port=%d", dns_port);
    snprintf(dns_server, sizeof dns_server, "127.0.0.1:%d", dns_port);
    snprintf(pid_file, sizeof pid_file, "--pid-file=%s/dnsmasq.pid", env.dir);
    snprintf(log, sizeof log, "%s/dnsmasq.log", env.dir);
    int r = 0, h = 0;
    snprintf(srv[r++], sizeof srv[0], "--srv-host=_activation._tcp." DOMAIN ",act-dead." DOMAIN ",%d,0,10", dead_port);
    snprintf(srv[r++], sizeof srv[0], "--srv-host=_activation._tcp." DOMAIN ",act-a." DOMAIN ",%d,10,80", env.port[0]);
    snprintf(srv[r++], sizeof srv[0], "--srv-host=_activation._tcp." DOMAIN ",act-b." DOMAIN ",%d,10,20", env.port[1]);
    for (int i = 1; i <= 3; i++)
        snprintf(srv[r++], sizeof srv[0], "--srv-host=_activation._tcp.slow.test,hang%d.slow.test,%d,0,10", i,
                 silent_port);
    snprintf(srv[r++], sizeof srv[0], "--srv-host=_activation._tcp.slow.test,act.slow.test,%d,10,10", env.port[0]);
    snprintf(srv[r++], sizeof srv[0], "--srv-host=_activation._tcp.good.test,act.good.test,%d,0,10", env.port[2]);
    snprintf(srv[r++], sizeof srv[0], "--srv-host=_activation._tcp.wrong.test,act.wrong.test,%d,0,10", env.port[2]);
    snprintf(srv[r++], sizeof srv[0], "--srv-host=_activation._tcp.outside.test,act.good.test,%d,0,10", env.port[2]);
    for (int i = 0; i < MANY; i++)
        snprintf(srv[r++], sizeof srv[0], "--srv-host=_activation._tcp.many.test,m%d.many.test,%d,0,10", i, 1000 + i);
    const char *names[] = {"act-dead." DOMAIN, "act-a." DOMAIN, "act-b." DOMAIN, "hang1.slow.test", "hang2.slow.test",
                           "hang3.slow.test",  "act.slow.test", "act.good.test", "act.wrong.test"};
    for (int i = 0; i < HOSTS; i++) snprintf(hosts[h++], sizeof hosts[0], "--host-record=%s,127.0.0.1", names[i]);
    snprintf(name_dead, sizeof name_dead, "act-dead." DOMAIN ":%d", dead_port);
    snprintf(name_a, sizeof name_a, "act-a." DOMAIN ":%d", env.port[0]);
    snprintf(name_b, sizeof name_b, "act-b." DOMAIN ":%d", env.port[1]);
    const char *fixed[] = {DNSMASQ,
                           "--no-daemon",
                           port,
                           "--listen-address=127.0.0.1",
                           "--bind-interfaces",
                           "--no-resolv",
                           "--no-hosts",
                           "--conf-file=/dev/null",
                           pid_file,
                           "--log-queries",
                           "--log-facility=-",
                           (char *)NULL};
    const char *argv[FIXED + RECORDS + HOSTS + 1];
    int n = 0;
    for (; fixed[n]; n++) argv[n] = fixed[n];
    for (int i = 0; i < r; i++) argv[n++] = srv[i];
    for (int i = 0; i < h; i++) argv[n++] = hosts[i];
    argv[n] = NULL;
    dnsmasq = fixture_spawn((char *const *)argv, log, dns_port, 10000);
    return dnsmasq > 0 ? 0 : -1;
}

/* Server 2 serves TLS with a certificate (scripts/make-certs.sh) that names
 * act.good.test besides localhost and the loopback addresses. */
static int start_tls_server(void) {
    char certs[300], script[600], cert[400], cert_key[400];
    snprintf(certs, sizeof certs, "%s/certs", env.dir);
    snprintf(script, sizeof script, "%s/scripts/make-certs.sh", env_source_dir());
    const char *mk[] = {"/bin/bash", script, "--server-name", "act.good.test", certs, NULL};
    if (fixture_run((char *const *)mk, NULL, NULL) != 0) return -1;
    snprintf(cert, sizeof cert, "%s/audit-server.pem", certs);
    snprintf(cert_key, sizeof cert_key, "%s/audit-server.key", certs);
    snprintf(ca, sizeof ca, "%s/ca.pem", certs);
    const char *tls[] = {"--tls-cert", cert, "--tls-key", cert_key, NULL};
    return env_start_server(&env, 2, tls);
}

static int setup(void **state) {
    if (access(DNSMASQ, X_OK) != 0) {
        fprintf(stderr, "client_dns: %s is missing (Debian package dnsmasq-base)\n", DNSMASQ);
        return -1;
    }
    const char *g[] = {"--max-machines", "1", NULL};
    char keys[4][KEY_TEXT];
    if (env_start(&env) != 0 || env_start_server(&env, 0, NULL) != 0 || env_start_server(&env, 1, NULL) != 0 ||
        start_tls_server() != 0 || start_silent_port() != 0 || env_group(&env, 201, g) != 0 ||
        env_keys(&env, 201, 4, keys) != 0) {
        env_stop(&env);  /* cmocka skips the teardown when setup fails */
        return -1;
    }
    snprintf(key, sizeof key, "%s", keys[0]);
    snprintf(picker_key, sizeof picker_key, "%s", keys[1]);
    snprintf(slow_key, sizeof slow_key, "%s", keys[2]);
    snprintf(tls_key, sizeof tls_key, "%s", keys[3]);
    do dead_port = fixture_free_port(); while (dead_port == env.port[0] || dead_port == env.port[1]);
    if (start_dnsmasq() == 0) return 0;
    env_stop(&env);
    return -1;
}

static int teardown(void **state) {
    if (dnsmasq > 0) fixture_stop(dnsmasq, SIGTERM, 5000);
    if (silent_fd >= 0) close(silent_fd);
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
    /* One answer with more records than the client will ever try. */
    assert_int_equal(srv_lookup("many.test", dns_server, 3000, &r, &n, err, sizeof err), 0);
    printf("  many.test: %d records served, %zu used\n", MANY, n);
    assert_int_equal(n, SRV_MAX_RECORDS);
    free(r);
}

/* Three targets that hang: each costs a connect timeout, not a call timeout. */
static void hanging_records_cost_a_connect_timeout_each(void **state) {
    char root[300], st[300], *out, server[96];
    env_machine(&env, "slow", root, st);
    const char *args[] = {slow_key,   "--srv-domain",         "slow.test", "--dns-server",
                          dns_server, "--connect-timeout-ms", "500",       NULL};
    double t0 = (double)pa_mono_ms();
    assert_int_equal(env_activate_cli(&env, root, st, args, &out), 0);
    double took = ((double)pa_mono_ms() - t0) / 1000;
    json_str(out, "server", server, sizeof server);
    printf("  3 hanging records, then %s: answered in %.1f s (call timeout 5 s, connect timeout 0.5 s)\n", server,
           took);
    assert_true(strncmp(server, "act.slow.test:", 14) == 0);
    assert_true(took < 10); /* three call timeouts would be 15 s */
    free(out);
}

/* TLS with SRV: the certificate must name the target, and the target must
 * lie inside the SRV domain. */
static void srv_with_tls_checks_the_name(void **state) {
    char root[300], st[300], *out, server[96], msg[512];
    env_machine(&env, "tls-srv", root, st);
    const char *good[] = {tls_key, "--srv-domain", "good.test", "--dns-server", dns_server, "--tls-ca", ca, NULL};
    assert_int_equal(env_activate_cli(&env, root, st, good, &out), 0);
    json_str(out, "server", server, sizeof server);
    assert_non_null(strstr(server, "act.good.test:"));
    free(out);
    /* The same server under another name: its certificate does not name it. */
    const char *wrong[] = {"renew", "--srv-domain", "wrong.test", "--dns-server", dns_server, "--tls-ca", ca, NULL};
    assert_int_equal(env_activate_cli(&env, root, st, wrong, &out), 12);
    json_str(out, "message", msg, sizeof msg);
    printf("  wrong.test: %s\n", msg);
    assert_non_null(strstr(out, "act.wrong.test"));
    free(out);
    /* A target outside the domain is never dialled, whatever it would show. */
    const char *outside[] = {"renew", "--srv-domain", "outside.test", "--dns-server", dns_server, "--tls-ca", ca, NULL};
    assert_int_equal(env_activate_cli(&env, root, st, outside, &out), 12);
    assert_non_null(strstr(out, "act.good.test is outside outside.test"));
    free(out);
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
        o.insecure = true; /* the env's servers 0 and 1 talk plain text */
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
        cmocka_unit_test(hanging_records_cost_a_connect_timeout_each),
        cmocka_unit_test(srv_with_tls_checks_the_name),
        cmocka_unit_test(weights_are_respected_over_many_picks),
        cmocka_unit_test(the_last_good_server_is_tried_first),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
