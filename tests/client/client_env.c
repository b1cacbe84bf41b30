/* client_env.c -- see client_env.h. */
#include "client_env.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "client_testutil.h"

static int run_quiet(const char *const *argv) {
    char *out = NULL, *err = NULL;
    int rc = fixture_run((char *const *)argv, &out, &err);
    if (rc != 0) fprintf(stderr, "client_env: %s failed (%d): %s%s\n", argv[0], rc, out ? out : "", err ? err : "");
    free(out);
    free(err);
    return rc;
}

static int make_files(client_env *e) {
    char keystore[512];
    snprintf(keystore, sizeof keystore, "%s", fixture_bin("keystore/keystore"));
    snprintf(e->kek_a, sizeof e->kek_a, "%s/activation.kek", e->dir);
    snprintf(e->kek_b, sizeof e->kek_b, "%s/audit.kek", e->dir);
    snprintf(e->signing_key, sizeof e->signing_key, "%s/signing.pem", e->dir);
    snprintf(e->public_key, sizeof e->public_key, "%s/signing.pub.pem", e->dir);
    const char *kek1[] = {keystore, "kek", "create", e->kek_a, NULL};
    const char *kek2[] = {keystore, "kek", "create", e->kek_b, NULL};
    const char *gen[] = {"/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out", e->signing_key, NULL};
    const char *pub[] = {"/usr/bin/openssl", "pkey", "-in", e->signing_key, "-pubout", "-out", e->public_key, NULL};
    return run_quiet(kek1) || run_quiet(kek2) || run_quiet(gen) || run_quiet(pub) ? -1 : 0;
}

int env_start(client_env *e) {
    memset(e, 0, sizeof *e);
    for (int i = 0; i < ENV_SERVERS; i++) e->server[i] = -1;
    if (fixture_tmpdir(e->dir, sizeof e->dir, "client") != 0) return -1;
    if (redis_fixture_start(&e->a, FIXTURE_STORE_ACTIVATION) != 0 ||
        redis_fixture_start(&e->b, FIXTURE_STORE_AUDIT) != 0)
        return -1;
    redis_fixture_url(&e->a, "keystore", e->url_a, sizeof e->url_a);
    redis_fixture_url(&e->b, "keystore", e->url_b, sizeof e->url_b);
    return make_files(e);
}

int env_start_server(client_env *e, int i, const char *const *extra) {
    e->port[i] = fixture_free_port();
    return env_restart_server(e, i, extra);
}

int env_restart_server(client_env *e, int i, const char *const *extra) {
    char url[256], listen[64], log[300];
    redis_fixture_url(&e->a, "activation", url, sizeof url);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", e->port[i]);
    snprintf(e->target[i], sizeof e->target[i], "127.0.0.1:%d", e->port[i]);
    snprintf(log, sizeof log, "%s/server%d.log", e->dir, i);
    const char *argv[40] = {fixture_bin("activation-server/activation-server"),
                            "--listen",
                            listen,
                            "--redis-url",
                            url,
                            "--signing-key",
                            e->signing_key,
                            "--metrics-listen",
                            "off",
                            "--workers",
                            "1",
                            "--rate-address-per-s",
                            "0",
                            "--log-level",
                            "warn"};
    int n = 15;
    bool tls = false, on_premises = false;
    for (int k = 0; extra && extra[k]; k++) on_premises |= strcmp(extra[k], "--on-premises") == 0;
    if (!on_premises) { /* an on-premises server holds no group secret */
        argv[n++] = "--kek";
        argv[n++] = e->kek_a;
    }
    for (int k = 0; extra && extra[k] && n < 39; k++) {
        tls |= strcmp(extra[k], "--tls-cert") == 0;
        argv[n++] = extra[k];
    }
    if (!tls && n < 39) argv[n++] = "--insecure-plaintext"; /* plain text unless a test brings a certificate */
    argv[n] = NULL;
    e->server[i] = fixture_spawn((char *const *)argv, log, e->port[i], 15000);
    return e->server[i] > 0 ? 0 : -1;
}

void env_stop_server(client_env *e, int i) {
    if (e->server[i] > 0) fixture_stop(e->server[i], SIGTERM, 10000);
    e->server[i] = -1;
}

void env_stop(client_env *e) {
    for (int i = 0; i < ENV_SERVERS; i++) env_stop_server(e, i);
    if (e->a.pid > 0) redis_fixture_stop(&e->a);
    if (e->b.pid > 0) redis_fixture_stop(&e->b);
    if (getenv("PA_KEEP_TEST_DIR")) fprintf(stderr, "client_env: kept %s\n", e->dir);
    else if (e->dir[0]) fixture_rmtree(e->dir);
}

/* argv for a keystore command with the store options appended. */
static int keystore(client_env *e, const char *const *cmd, const char *const *extra, char **out) {
    const char *argv[64];
    int n = 0;
    char bin[512];
    snprintf(bin, sizeof bin, "%s", fixture_bin("keystore/keystore"));
    argv[n++] = bin;
    for (int i = 0; cmd[i]; i++) argv[n++] = cmd[i];
    for (int i = 0; extra && extra[i] && n < 50; i++) argv[n++] = extra[i];
    const char *store[] = {"--activation-redis", e->url_a, "--audit-redis", e->url_b,
                           "--activation-kek", e->kek_a, "--audit-kek", e->kek_b};
    for (size_t i = 0; i < 8; i++) argv[n++] = store[i];
    argv[n] = NULL;
    char *err = NULL;
    int rc = fixture_run((char *const *)argv, out, &err);
    if (rc != 0) fprintf(stderr, "client_env: keystore %s %s: %s\n", cmd[0], cmd[1], err ? err : "");
    free(err);
    return rc;
}

int env_group(client_env *e, unsigned id, const char *const *extra) {
    char ids[16];
    snprintf(ids, sizeof ids, "%u", id);
    const char *cmd[] = {"group", "create", "--id", ids, "--product", "Demo Office", "--edition", "Professional",
                         "--features", "editor,spreadsheet", "--audit-rate", "0", NULL};
    char *out = NULL;
    int rc = keystore(e, cmd, extra, &out);
    free(out);
    return rc == 0 ? 0 : -1;
}

int env_keys(client_env *e, unsigned id, int n, char keys[][KEY_TEXT]) {
    char ids[16], count[16];
    snprintf(ids, sizeof ids, "%u", id);
    snprintf(count, sizeof count, "%d", n);
    const char *cmd[] = {"keys", "generate", "--group", ids, "--count", count, NULL};
    char *out = NULL;
    if (keystore(e, cmd, NULL, &out) != 0) return free(out), -1;
    int got = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line && got < n; line = strtok_r(NULL, "\n", &save))
        if (strlen(line) == 29) snprintf(keys[got++], KEY_TEXT, "%s", line);
    free(out);
    return got == n ? 0 : -1;
}

void env_machine(client_env *e, const char *name, char root[300], char state[300]) {
    snprintf(root, 300, "%s/machines/%s", e->dir, name);
    snprintf(state, 300, "%s/state/%s", e->dir, name);
    unsigned h = 2166136261u;
    for (const char *s = name; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    char uuid[64];
    snprintf(uuid, sizeof uuid, "4c4c4544-%04x-4a10-8051-%012x", h & 0xffff, h);
    fixture_rmtree(root);
    tu_fake_machine(root, uuid, NULL, NULL, NULL);
}

int env_activate_cli(client_env *e, const char *root, const char *state, const char *const *args, char **out) {
    const char *argv[48];
    int n = 0;
    char bin[512];
    snprintf(bin, sizeof bin, "%s", fixture_bin("client/activate"));
    argv[n++] = bin;
    bool tls = false, insecure = false, text = false;
    for (int i = 0; args[i] && n < 36; i++) {
        tls |= strcmp(args[i], "--tls-ca") == 0;
        text |= strcmp(args[i], "--no-json") == 0;
        insecure |= strcmp(args[i], "--insecure") == 0 || strcmp(args[i], "--no-insecure") == 0;
        argv[n++] = args[i];
    }
    const char *common[] = {"--json", "--public-key", e->public_key, "--facts-root", root, "--state-dir", state,
                            "--timeout-ms", "5000"};
    for (size_t i = text ? 1 : 0; i < sizeof common / sizeof common[0]; i++) argv[n++] = common[i];
    if (!tls && !insecure) argv[n++] = "--insecure"; /* the env's servers talk plain text */
    argv[n] = NULL;
    char *o = NULL, *err = NULL;
    int rc = fixture_run((char *const *)argv, &o, &err);
    fprintf(stderr, "$ activate");
    for (int i = 1; i < n && argv[i] != common[0] && argv[i] != common[1]; i++) fprintf(stderr, " %s", argv[i]);
    fprintf(stderr, "  -> %d\n%s%s", rc, o ? o : "", err ? err : "");
    free(err);
    if (out) *out = o;
    else free(o);
    return rc;
}

const char *env_source_dir(void) {
    const char *d = getenv("PA_SOURCE_DIR");
    return d && *d ? d : CLIENT_ENV_SOURCE_DIR;
}

const char *env_build_dir(void) {
    const char *d = getenv("PA_BUILD_DIR");
    return d && *d ? d : CLIENT_ENV_BUILD_DIR;
}

long long json_int(const char *json, const char *name) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", name);
    const char *p = json ? strstr(json, pat) : NULL;
    if (!p) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(p + strlen(pat), &end, 10);
    return end == p + strlen(pat) || errno || !strchr(",} \t\r\n", *end) ? -1 : v; /* a number, not a prefix */
}

void json_str(const char *json, const char *name, char *buf, size_t n) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":\"", name);
    const char *p = json ? strstr(json, pat) : NULL;
    buf[0] = '\0';
    if (!p) return;
    p += strlen(pat);
    size_t len = strcspn(p, "\"");
    snprintf(buf, n, "%.*s", (int)(len < n ? len : n - 1), p);
}

bool env_find_program(const char *name, char *out, size_t n) {
    const char *path = getenv("PATH");
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path ? path : "/usr/bin:/bin");
    char *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        snprintf(out, n, "%s/%s", dir, name);
        if (access(out, X_OK) == 0) return true;
    }
    return false;
}

int env_npm_ci(const char *npm, const char *node_dir) {
    char modules[600], lock[600];
    snprintf(modules, sizeof modules, "%s/node_modules/@grpc/grpc-js/package.json", node_dir);
    snprintf(lock, sizeof lock, "%s/.npm-ci.lock", node_dir);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600); /* tests run in parallel share the tree */
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        fprintf(stderr, "cannot lock %s\n", lock);
        if (fd >= 0) close(fd);
        return -1;
    }
    int rc = 0;
    if (access(modules, R_OK) != 0) {
        const char *argv[] = {npm, "ci", "--prefix", node_dir, "--no-audit", "--no-fund", "--ignore-scripts", NULL};
        char *out = NULL, *err = NULL;
        rc = fixture_run((char *const *)argv, &out, &err);
        if (rc != 0) fprintf(stderr, "npm ci failed (%d):\n%s%s\n", rc, out ? out : "", err ? err : "");
        free(out);
        free(err);
    }
    close(fd);
    return rc;
}
