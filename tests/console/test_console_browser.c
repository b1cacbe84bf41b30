/* test_console_browser.c -- the web console in a real browser, against the
 * real servers: this program starts what an operator's console talks to,
 * then runs tests/console/scenario.mjs (Node, playwright-core, Debian's
 * chromium), which logs in, imports an order, watches the seats move as the
 * installer CLI activates machines, searches, exports, approves a
 * deactivation and checks that a viewer is refused by the server.
 *
 * Started here with the shared test environments (act_env, order_env):
 * Redis A and B, a volume group with a genuine key, the activation server
 * (TLS, the vendor's order key) holding one order already, the order file
 * the operator imports in the browser, and the admin server (HTTPS with the
 * test CA's certificate, the built console from console/dist) with three
 * accounts made by `admin-server user add`.
 *
 * The console must be built first (scripts/build-console.sh, which also
 * installs playwright-core); without console/dist the test fails saying so.
 * Screenshots go to console-screenshots/ beside this program. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "act_env.h"
#include "order_env.h"

static act_env env;
static order_env oe;

/* The volume groups: the imported order's and the standing order's. */
#define G_CONSOLE 4380
#define G_STANDING 4381
#define TEXT_(x) #x
#define TEXT(x) TEXT_(x)

#define ORDER_SERIAL "20261210"
#define ORDER_SEATS "5"
#define ORDER_WARNING "2"

static pid_t admin_pid = -1;    /* the admin server */
static int admin_port;          /* its HTTPS port */
static char admin_log[400];     /* its stderr */
static char admin_pw_file[400]; /* the admin Redis user's password */
static char redis_url[200];     /* Redis A as user admin, without the password */
static char order_file[400];    /* the order the operator imports in the browser */
static char vendor_keys[400];   /* license key + order key, what installers trust */
static char volume_key[PK_TEXT_LEN + 1], bad_key[PK_TEXT_LEN + 1];

static const char *const users[][3] = {
    {"operator", "operator", "op-password-0001"},
    {"viewer", "viewer", "viewer-password-0001"},
    {"admin", "admin", "admin-password-0001"},
};

static void tune_volume(group_record *r) { r->channel = GROUP_CHANNEL_VOLUME; }

static const char *source(const char *rel) {
    static char path[600];
    const char *src = getenv("PA_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/%s", src ? src : ".", rel);
    return path;
}

__attribute__((format(printf, 2, 3))) static int write_file(const char *path, const char *fmt, ...) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(f, fmt, ap);
    va_end(ap);
    return fclose(f) == 0 && n >= 0 ? 0 : -1;
}

/* Concatenates two PEM files into dst (the installer's key bundle). */
static int cat_files(const char *dst, const char *a, const char *b) {
    FILE *out = fopen(dst, "w");
    if (!out) return -1;
    int rc = 0;
    const char *srcs[] = {a, b};
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        FILE *in = fopen(srcs[i], "r");
        if (!in) {
            rc = -1;
            break;
        }
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            if (fwrite(buf, 1, n, out) != n) rc = -1;
        fclose(in);
    }
    return fclose(out) == 0 ? rc : -1;
}

/* The orders: one the activation server already holds (imported with the
 * CLI, as an operator would have before), and the file the browser imports. */
static int make_orders(void) {
    const char *standing[] = {
        "--serial",     "20261201",   "--customer",    "Standing Corp", "--group",    TEXT(G_STANDING), "--product",
        "Office",       "--edition",  "Enterprise",    "--mode",        "concurrent", "--seats",        "25",
        "--valid-from", "2020-01-01", "--valid-until", "2099-12-31",    NULL};
    char path[400];
    if (order_env_create(&oe, NULL, "standing.license", standing, path, sizeof path) != 0) return -1;
    char *out = NULL, *err = NULL;
    int st = order_env_import(&oe, path, NULL, &out, &err);
    if (st != 0) fprintf(stderr, "order import exited %d: %s%s\n", st, out ? out : "", err ? err : "");
    free(out);
    free(err);
    if (st != 0) return -1;
    const char *console[] = {"--serial",
                             ORDER_SERIAL,
                             "--customer",
                             "Console Corp",
                             "--group",
                             TEXT(G_CONSOLE),
                             "--product",
                             "Office",
                             "--edition",
                             "Enterprise",
                             "--mode",
                             "permanent",
                             "--seats",
                             ORDER_SEATS,
                             "--seat-warning",
                             ORDER_WARNING,
                             "--deactivation-approval",
                             "on",
                             "--collect",
                             "hostname,ip,mac,host_serial,os,arch",
                             "--valid-from",
                             "2020-01-01",
                             "--valid-until",
                             "2099-12-31",
                             NULL};
    return order_env_create(&oe, NULL, "console.license", console, order_file, sizeof order_file);
}

/* `admin-server ARGS... --redis-url ... --redis-password-file ...`; returns the exit status. */
static int admin_cli(const char *const *args) {
    const char *argv[24];
    size_t n = 0;
    static char bin[600];
    snprintf(bin, sizeof bin, "%s", fixture_bin("admin-server/admin-server"));
    argv[n++] = bin;
    while (*args && n < 18) argv[n++] = *args++;
    argv[n++] = "--redis-url";
    argv[n++] = redis_url;
    argv[n++] = "--redis-password-file";
    argv[n++] = admin_pw_file;
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    int st = fixture_run((char *const *)argv, &out, &err);
    if (st != 0) fprintf(stderr, "admin-server %s exited %d: %s%s\n", argv[1], st, out ? out : "", err ? err : "");
    free(out);
    free(err);
    return st;
}

static int start_admin(void) {
    snprintf(admin_pw_file, sizeof admin_pw_file, "%s/redis-admin.pw", env.dir);
    if (write_file(admin_pw_file, "%s\n", FIXTURE_PW_ADMIN) != 0) return -1;
    snprintf(redis_url, sizeof redis_url, "redis://admin@127.0.0.1:%d", env.a.port);
    for (size_t i = 0; i < sizeof users / sizeof *users; i++) {
        char pw[400];
        snprintf(pw, sizeof pw, "%s/account-%s.pw", env.dir, users[i][0]);
        if (write_file(pw, "%s\n", users[i][2]) != 0) return -1;
        const char *args[] = {"user", "add", users[i][0], "--role", users[i][1], "--password-file", pw, NULL};
        if (admin_cli(args) != 0) return -1;
    }
    char listen[64], cert[400], key[400], dist[600], bin[600];
    admin_port = fixture_free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", admin_port);
    snprintf(cert, sizeof cert, "%s/audit-server.pem", env.certs); /* names 127.0.0.1 */
    snprintf(key, sizeof key, "%s/audit-server.key", env.certs);
    snprintf(dist, sizeof dist, "%s", source("console/dist"));
    snprintf(bin, sizeof bin, "%s", fixture_bin("admin-server/admin-server"));
    snprintf(admin_log, sizeof admin_log, "%s/admin-server.log", env.dir);
    const char *argv[] = {bin,           "--listen",
                          listen,        "--tls-cert",
                          cert,          "--tls-key",
                          key,           "--redis-url",
                          redis_url,     "--redis-password-file",
                          admin_pw_file, "--console-dir",
                          dist,          "--argon2-memory-kib",
                          "1024",        "--login-tries",
                          "1000",        "--order-public-key",
                          oe.vendor_pub, NULL};
    admin_pid = fixture_spawn((char *const *)argv, admin_log, admin_port, 15000);
    return admin_pid > 0 ? 0 : -1;
}

static int setup(void **state) {
    (void)state;
    char index[700];
    snprintf(index, sizeof index, "%s/index.html", source("console/dist"));
    if (access(index, R_OK) != 0 || access(source("console/node_modules/playwright-core"), R_OK) != 0) {
        fprintf(stderr, "console.browser: %s or console/node_modules missing: run scripts/build-console.sh first\n",
                index);
        return -1;
    }
    if (env_start_stores(&env) != 0 || order_env_init(&oe, &env) != 0 || env_make_certs(&env) != 0) return -1;
    if (env_create_group(&env, G_CONSOLE, tune_volume) != 0 || env_create_group(&env, G_STANDING, tune_volume) != 0)
        return -1;
    if (env_make_key(&env, G_CONSOLE, 1, false, 0, volume_key) != 0 ||
        env_make_key(&env, G_CONSOLE, 2, false, 1, bad_key) != 0)
        return -1;
    snprintf(vendor_keys, sizeof vendor_keys, "%s/vendor-keys.pem", env.dir);
    if (cat_files(vendor_keys, env.public_key, oe.vendor_pub) != 0) return -1;
    char cert[400], key[400];
    snprintf(cert, sizeof cert, "%s/audit-server.pem", env.certs);
    snprintf(key, sizeof key, "%s/audit-server.key", env.certs);
    const char *flags[] = {
        "--order-public-key", oe.vendor_pub, "--tls-cert",        cert,  "--tls-key", key, "--order-sweep-ms", "200",
        "--group-refresh-ms", "300",         "--threat-flush-ms", "300", NULL};
    if (env_start_server(&env, flags) != 0 || make_orders() != 0) return -1;
    return start_admin();
}

static int teardown(void **state) {
    (void)state;
    int st = 0;
    if (admin_pid > 0 && fixture_stop(admin_pid, SIGTERM, 10000) != 0) st = -1;
    if (env.server >= 0 && env_stop_server(&env) != 0) st = -1;
    env_stop(&env);
    return st;
}

/* The end of a daemon's log, for a failing run (the directory goes at teardown). */
static void print_log_tail(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    char buf[4096];
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : 0;
    long from = n > (long)sizeof buf - 1 ? n - (long)(sizeof buf - 1) : 0;
    size_t got = fseek(f, from, SEEK_SET) == 0 ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[got] = '\0';
    fclose(f);
    fprintf(stderr, "--- the end of %s ---\n%s\n", path, buf);
}

static void set(const char *name, const char *value) { assert_int_equal(setenv(name, value, 1), 0); }

static void test_console_scenario(void **state) {
    (void)state;
    char url[64], work[400], shots[600], users_env[300], ca[400];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/", admin_port);
    snprintf(work, sizeof work, "%s/console", env.dir);
    assert_int_equal(mkdir(work, 0700), 0);
    snprintf(shots, sizeof shots, "%s/tests/console/console-screenshots", getenv("PA_BUILD_DIR"));
    snprintf(users_env, sizeof users_env, "%s:%s,%s:%s,%s:%s", users[0][0], users[0][2], users[1][0], users[1][2],
             users[2][0], users[2][2]);
    snprintf(ca, sizeof ca, "%s/ca.pem", env.certs);
    set("PA_CONSOLE_URL", url);
    set("PA_WORK_DIR", work);
    set("PA_SCREENSHOTS", shots);
    set("PA_ORDER_FILE", order_file);
    set("PA_ORDER_SERIAL", ORDER_SERIAL);
    set("PA_ORDER_SEATS", ORDER_SEATS);
    set("PA_ORDER_WARNING", ORDER_WARNING);
    set("PA_ACTIVATE", fixture_bin("client/activate"));
    set("PA_ACT_TARGET", env.target);
    set("PA_ACT_CA", ca);
    set("PA_VENDOR_KEYS", vendor_keys);
    set("PA_VOLUME_KEY", volume_key);
    set("PA_BAD_KEY", bad_key);
    set("PA_USERS", users_env);
    set("PA_GROUP", TEXT(G_CONSOLE));
    char script[600];
    snprintf(script, sizeof script, "%s", source("tests/console/scenario.mjs"));
    char *argv[] = {"/usr/bin/env", "node", script, NULL};
    char *out = NULL, *err = NULL;
    int st = fixture_run(argv, &out, &err);
    fprintf(stderr, "%s%s", out ? out : "", err ? err : "");
    if (st != 0) {
        fprintf(stderr, "scenario.mjs exited %d; screenshots in %s\n", st, shots);
        print_log_tail(admin_log);
    }
    assert_int_equal(st, 0);
    assert_non_null(out);
    assert_non_null(strstr(out, " passed, 0 failed"));
    free(out);
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_console_scenario)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
