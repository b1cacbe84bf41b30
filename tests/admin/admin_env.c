/* admin_env.c -- the admin server's test environment (admin_env.h).
 *
 * The server is the real binary on a free loopback port, started by
 * fixture_spawn (which waits for its port); accounts go through the real
 * `user` command. Standard input for that command comes from a file the
 * shell redirects, so fixture_run can run it unchanged. The client keeps
 * the session cookie itself (keep_cookie) rather than in libcurl's cookie
 * engine, which does not survive curl_easy_reset. */
#include "admin_env.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_FLAGS 64

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int rc = fputs(text, f) < 0 ? -1 : 0;
    return fclose(f) != 0 ? -1 : rc;
}

int admin_env_start(admin_env *e, const char *const *server_flags) { return admin_env_start_on(e, NULL, server_flags); }

int admin_env_start_on(admin_env *e, const char *redis_url, const char *const *server_flags) {
    memset(e, 0, sizeof *e);
    e->server = -1;
    e->redis.pid = -1;
    if (fixture_tmpdir(e->dir, sizeof e->dir, "admin") != 0) return -1;
    snprintf(e->certs, sizeof e->certs, "%s/certs", e->dir);
    snprintf(e->redis_pw, sizeof e->redis_pw, "%s/redis-admin.pw", e->dir);
    snprintf(e->log_path, sizeof e->log_path, "%s/admin-server.log", e->dir);
    if (redis_url) snprintf(e->redis_url, sizeof e->redis_url, "%s", redis_url);
    else if (redis_fixture_start(&e->redis, FIXTURE_STORE_ACTIVATION) != 0) return -1;
    else snprintf(e->redis_url, sizeof e->redis_url, "redis://admin@127.0.0.1:%d", e->redis.port);
    if (write_file(e->redis_pw, FIXTURE_PW_ADMIN "\n") != 0 || fixture_make_certs(e->certs) != 0) return -1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(e->curl = curl_easy_init())) return -1;
    e->port = fixture_free_port();
    return admin_env_restart_server(e, server_flags);
}

static bool has_flag(const char *const *flags, const char *name) {
    for (; flags && *flags; flags++)
        if (strcmp(*flags, name) == 0) return true;
    return false;
}

/* Stops the server if it runs; -1 when it did not exit 0. */
static int stop_checked(admin_env *e) {
    if (e->server <= 0) return 0;
    int rc = admin_env_stop_server(e);
    if (rc != 0) fprintf(stderr, "admin_env: admin-server exited %d; its log is %s\n", rc, e->log_path);
    return rc == 0 ? 0 : -1;
}

int admin_env_restart_server(admin_env *e, const char *const *server_flags) {
    if (stop_checked(e) != 0) return -1;
    char listen[64], cert[360], key[360];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", e->port);
    snprintf(cert, sizeof cert, "%s/audit-server.pem", e->certs);
    snprintf(key, sizeof key, "%s/audit-server.key", e->certs);
    const char *argv[MAX_FLAGS] = {fixture_bin("admin-server/admin-server"),
                                   "--listen",
                                   listen,
                                   "--redis-url",
                                   e->redis_url,
                                   "--redis-password-file",
                                   e->redis_pw,
                                   "--metrics-listen",
                                   "off",
                                   "--argon2-memory-kib",
                                   "1024",
                                   "--login-tries",
                                   "1000",
                                   "--drain-ms",
                                   "2000"};
    int n = 15;
    e->insecure = has_flag(server_flags, "--insecure-http");
    if (!e->insecure) {
        const char *tls[] = {"--tls-cert", cert, "--tls-key", key};
        for (int i = 0; i < 4; i++) argv[n++] = tls[i];
    }
    for (; server_flags && *server_flags && n < MAX_FLAGS - 1; server_flags++) argv[n++] = *server_flags;
    argv[n] = NULL;
    e->server = fixture_spawn((char *const *)argv, e->log_path, e->port, 15000);
    if (e->server < 0) fprintf(stderr, "admin_env: admin-server did not start; its log is %s\n", e->log_path);
    return e->server < 0 ? -1 : 0;
}

/* Copies the end of the server's log to stderr (after a bad exit). */
static void show_log_tail(const admin_env *e) {
    FILE *f = fopen(e->log_path, "r");
    if (!f) return;
    char tail[4096];
    if (fseek(f, -(long)sizeof tail + 1, SEEK_END) != 0) rewind(f);
    size_t n = fread(tail, 1, sizeof tail - 1, f);
    tail[n] = '\0';
    fclose(f);
    fprintf(stderr, "admin_env: the end of %s:\n%s\n", e->log_path, tail);
}

int admin_env_stop_server(admin_env *e) {
    if (e->server <= 0) return -1;
    int rc = fixture_stop(e->server, SIGTERM, 10000);
    e->server = -1;
    if (rc != 0) show_log_tail(e);
    return rc;
}

int admin_env_stop(admin_env *e) {
    int rc = stop_checked(e);
    if (e->curl) curl_easy_cleanup(e->curl);
    e->curl = NULL;
    free(e->body);
    free(e->headers);
    e->body = e->headers = NULL;
    if (e->redis.pid > 0) redis_fixture_stop(&e->redis);
    if (e->dir[0] && rc == 0) fixture_rmtree(e->dir);
    curl_global_cleanup();
    return rc;
}

int admin_env_user_cli(admin_env *e, const char *const *args, const char *input, char **out, char **err) {
    char in_path[320];
    snprintf(in_path, sizeof in_path, "%s/cli-stdin", e->dir);
    if (write_file(in_path, input ? input : "") != 0) return -1;
    /* sh -c 'exec "$0" "$@" < FILE' BIN user ARGS... --redis-url ... */
    char script[400];
    snprintf(script, sizeof script, "exec \"$0\" \"$@\" < '%s'", in_path);
    const char *argv[MAX_FLAGS] = {"/bin/sh", "-c", script, fixture_bin("admin-server/admin-server"), "user"};
    int n = 5;
    for (; args && *args && n < MAX_FLAGS - 8; args++) argv[n++] = *args;
    const char *store[] = {"--redis-url", e->redis_url,          "--redis-password-file",
                           e->redis_pw,   "--argon2-memory-kib", "1024"};
    for (int i = 0; i < 6; i++) argv[n++] = store[i];
    argv[n] = NULL;
    char *o = NULL, *er = NULL;
    int rc = fixture_run((char *const *)argv, &o, &er);
    if (out) *out = o;
    else free(o);
    if (err) *err = er;
    else free(er);
    return rc;
}

int admin_env_add_user(admin_env *e, const char *name, const char *role, const char *password) {
    const char *args[] = {"add", name, "--role", role, NULL};
    char line[1100];
    snprintf(line, sizeof line, "%s\n", password);
    char *err = NULL;
    int rc = admin_env_user_cli(e, args, line, NULL, &err);
    if (rc != 0) fprintf(stderr, "admin_env: user add %s: exit %d: %s", name, rc, err ? err : "");
    free(err);
    return rc;
}

/* ---- the client ------------------------------------------------------------ */

typedef struct buf {
    char **data; /* where the bytes go */
    size_t *len; /* how many so far */
} buf;

static size_t take(char *p, size_t size, size_t n, void *cls) {
    buf *b = cls;
    size_t add = size * n;
    char *grown = realloc(*b->data, *b->len + add + 1);
    if (!grown) return 0;
    memcpy(grown + *b->len, p, add);
    *b->len += add;
    grown[*b->len] = '\0';
    *b->data = grown;
    return add;
}

/* Keeps the pa_session cookie a reply sets, as a browser would (Max-Age=0
 * or an empty value drops it). */
static void keep_cookie(admin_env *e) {
    const char *c = admin_header(e, "Set-Cookie");
    if (!c || strncmp(c, "pa_session=", 11) != 0) return;
    size_t n = strcspn(c + 11, ";");
    if (n == 0 || n >= sizeof e->cookie || strstr(c, "Max-Age=0")) {
        e->cookie[0] = '\0';
        return;
    }
    memcpy(e->cookie, c + 11, n);
    e->cookie[n] = '\0';
}

static bool is_change(const char *method) { return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0; }

int admin_request(admin_env *e, const char *method, const char *path, const char *content_type, const void *body,
                  size_t len) {
    free(e->body), free(e->headers);
    e->body = calloc(1, 1), e->headers = calloc(1, 1);
    e->body_len = e->headers_len = 0;
    e->status = 0;
    char url[2048], ca[360], hdr[128];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", e->insecure ? "http" : "https", e->port, path);
    snprintf(ca, sizeof ca, "%s/ca.pem", e->certs);
    CURL *c = e->curl;
    curl_easy_reset(c);
    buf b = {&e->body, &e->body_len}, h = {&e->headers, &e->headers_len};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    /* Always named, so a connection from another source is never reused. */
    curl_easy_setopt(c, CURLOPT_INTERFACE, e->source_addr[0] ? e->source_addr : "127.0.0.1");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, take);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, take);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    /* No 100-continue wait unless the test asks for it. */
    bool expect = e->extra_header && strncasecmp(e->extra_header, "Expect:", 7) == 0;
    struct curl_slist *list = expect ? NULL : curl_slist_append(NULL, "Expect:");
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        snprintf(hdr, sizeof hdr, "Content-Type: %s", content_type ? content_type : "application/octet-stream");
        list = curl_slist_append(list, hdr);
    }
    if (is_change(method) && e->csrf[0]) {
        snprintf(hdr, sizeof hdr, "X-CSRF-Token: %s", e->csrf);
        list = curl_slist_append(list, hdr);
    }
    if (e->cookie[0]) {
        char cookie[sizeof e->cookie + 32];
        snprintf(cookie, sizeof cookie, "Cookie: pa_session=%s", e->cookie);
        list = curl_slist_append(list, cookie);
    }
    if (e->extra_header) list = curl_slist_append(list, e->extra_header);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &e->status);
    else fprintf(stderr, "admin_env: %s %s: %s\n", method, path, curl_easy_strerror(rc));
    curl_slist_free_all(list);
    keep_cookie(e);
    return (int)e->status;
}

json_t *admin_call(admin_env *e, const char *method, const char *path, const char *body, int *status) {
    int st = admin_request(e, method, path, "application/json", body, body ? strlen(body) : 0);
    if (status) *status = st;
    if (!e->body_len) return NULL;
    return json_loadb(e->body, e->body_len, 0, NULL);
}

int admin_login(admin_env *e, const char *user, const char *password) {
    json_t *req = json_pack("{s:s,s:s}", "user", user, "password", password);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    int status;
    json_t *r = admin_call(e, "POST", "/api/v1/session", text, &status);
    free(text);
    const char *csrf = json_string_value(json_object_get(r, "csrf_token"));
    if (status == 200 && csrf) snprintf(e->csrf, sizeof e->csrf, "%s", csrf);
    json_decref(r);
    return status;
}

void admin_forget_session(admin_env *e) {
    e->cookie[0] = '\0';
    e->csrf[0] = '\0';
}

const char *admin_header(admin_env *e, const char *name) {
    size_t n = strlen(name);
    const char *found = NULL;
    for (const char *line = e->headers; line && *line;) {
        const char *end = strchr(line, '\n');
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') found = line + n + 1;
        if (!end) break;
        line = end + 1;
    }
    if (!found) return NULL;
    while (*found == ' ') found++;
    size_t len = strcspn(found, "\r\n");
    if (len >= sizeof e->header_value) len = sizeof e->header_value - 1;
    memcpy(e->header_value, found, len);
    e->header_value[len] = '\0';
    return e->header_value;
}

redisContext *admin_env_redis(admin_env *e) { return redis_fixture_connect(&e->redis, "admin", FIXTURE_PW_ADMIN); }

const char *admin_error_code(const json_t *reply) {
    const char *c = json_string_value(json_object_get(json_object_get(reply, "error"), "code"));
    return c ? c : "";
}
