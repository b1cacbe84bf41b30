/* test_admin_http.c -- the admin server's HTTP conventions (docs/admin.md,
 * "HTTP conventions"), end to end over HTTPS against the real binary:
 * routing (404, 405), JSON errors, unknown fields, the body limit, the
 * least role and the CSRF token (refusals trailed), security headers, the
 * console's static files and path traversal, and Redis going away. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin_env.h"

#define PW "correct horse battery"

static admin_env env;

static int setup(void **state) {
    if (admin_env_start(&env, NULL) != 0) return -1;
    if (admin_env_add_user(&env, "root", "admin", PW) != 0) return -1;
    if (admin_env_add_user(&env, "ops", "operator", PW) != 0) return -1;
    if (admin_env_add_user(&env, "eve", "viewer", PW) != 0) return -1;
    return 0;
}

/* The newest trail entry's field `name` (static buffer), "" if none. */
static const char *last_trail(const char *name) {
    static char out[256];
    out[0] = '\0';
    redisContext *r = admin_env_redis(&env);
    redisReply *rep = r ? redisCommand(r, "XREVRANGE admin:trail + - COUNT 1") : NULL;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1) {
        redisReply *f = rep->element[0]->element[1];
        for (size_t i = 0; i + 1 < f->elements; i += 2)
            if (strcmp(f->element[i]->str, name) == 0) snprintf(out, sizeof out, "%s", f->element[i + 1]->str);
    }
    if (rep) freeReplyObject(rep);
    if (r) redisFree(r);
    return out;
}

static void test_openapi_and_headers(void **state) {
    int st;
    json_t *j = admin_call(&env, "GET", "/api/v1/openapi.json", NULL, &st);
    assert_int_equal(st, 200);
    assert_string_equal(json_string_value(json_object_get(j, "openapi")), "3.0.3");
    json_decref(j);
    const char *csp = admin_header(&env, "Content-Security-Policy");
    assert_non_null(csp);
    assert_non_null(strstr(csp, "default-src 'self'"));
    assert_non_null(strstr(csp, "frame-ancestors 'none'"));
    assert_string_equal(admin_header(&env, "X-Content-Type-Options"), "nosniff");
    assert_string_equal(admin_header(&env, "Referrer-Policy"), "no-referrer");
    assert_non_null(admin_header(&env, "Strict-Transport-Security"));
    assert_non_null(strstr(admin_header(&env, "Content-Type"), "application/json"));
}

static void test_unknown_route_and_method(void **state) {
    int st;
    json_t *j = admin_call(&env, "GET", "/api/v1/no-such-thing", NULL, &st);
    assert_int_equal(st, 404);
    assert_string_equal(admin_error_code(j), "not_found");
    json_decref(j);
    j = admin_call(&env, "GET", "/api/v1/users/", NULL, &st);
    assert_int_equal(st, 404);
    json_decref(j);
    j = admin_call(&env, "PUT", "/api/v1/session", "{}", &st);
    assert_int_equal(st, 405);
    assert_string_equal(admin_error_code(j), "method_not_allowed");
    assert_non_null(strstr(admin_header(&env, "Allow"), "POST"));
    json_decref(j);
}

static void test_needs_login(void **state) {
    admin_forget_session(&env);
    int st;
    json_t *j = admin_call(&env, "GET", "/api/v1/trail", NULL, &st);
    assert_int_equal(st, 401);
    assert_string_equal(admin_error_code(j), "unauthenticated");
    json_decref(j);
}

static void test_least_role(void **state) {
    admin_forget_session(&env);
    assert_int_equal(admin_login(&env, "eve", PW), 200);
    int st;
    json_t *j = admin_call(&env, "GET", "/api/v1/trail?limit=1", NULL, &st);
    assert_int_equal(st, 200);
    json_decref(j);
    j = admin_call(&env, "GET", "/api/v1/users", NULL, &st);
    assert_int_equal(st, 403);
    assert_string_equal(admin_error_code(j), "forbidden");
    json_decref(j);
    assert_string_equal(last_trail("user"), "eve");
    assert_string_equal(last_trail("result"), "forbidden: needs role admin");

    /* An operator may not manage accounts either. */
    assert_int_equal(admin_login(&env, "ops", PW), 200);
    j = admin_call(&env, "POST", "/api/v1/users", "{\"name\":\"x1\",\"role\":\"viewer\",\"password\":\"" PW "\"}", &st);
    assert_int_equal(st, 403);
    json_decref(j);
    assert_string_equal(last_trail("user"), "ops");
    assert_string_equal(last_trail("action"), "POST /api/v1/users");
}

static void test_csrf(void **state) {
    assert_int_equal(admin_login(&env, "root", PW), 200);
    char good[64];
    snprintf(good, sizeof good, "%s", env.csrf);
    const char *body = "{\"name\":\"csrf-test\",\"role\":\"viewer\",\"password\":\"" PW "\"}";
    int st;
    env.csrf[0] = '\0';
    json_t *j = admin_call(&env, "POST", "/api/v1/users", body, &st);
    assert_int_equal(st, 403);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "CSRF"));
    json_decref(j);
    assert_string_equal(last_trail("result"), "forbidden: CSRF token missing or wrong");
    snprintf(env.csrf, sizeof env.csrf, "%s", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    j = admin_call(&env, "POST", "/api/v1/users", body, &st);
    assert_int_equal(st, 403);
    json_decref(j);
    assert_string_equal(last_trail("user"), "root");
    snprintf(env.csrf, sizeof env.csrf, "%s", good);
    j = admin_call(&env, "POST", "/api/v1/users", body, &st);
    assert_int_equal(st, 201);
    json_decref(j);
    assert_string_equal(last_trail("action"), "user.add");
    assert_string_equal(last_trail("result"), "ok");
}

static void test_bad_bodies(void **state) {
    assert_int_equal(admin_login(&env, "root", PW), 200);
    int st;
    json_t *j = admin_call(&env, "POST", "/api/v1/users", "{\"name\": ", &st);
    assert_int_equal(st, 400);
    assert_string_equal(admin_error_code(j), "bad_request");
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "malformed"));
    json_decref(j);
    j = admin_call(&env, "POST", "/api/v1/users", "{\"name\":\"a\",\"rolez\":\"viewer\"}", &st);
    assert_int_equal(st, 400);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "\"rolez\""));
    json_decref(j);
    j = admin_call(&env, "POST", "/api/v1/users", "[1]", &st);
    assert_int_equal(st, 400);
    json_decref(j);
    st = admin_request(&env, "POST", "/api/v1/users", "text/plain", "{}", 2);
    assert_int_equal(st, 415);
    j = admin_call(&env, "GET", "/api/v1/trail?limt=5", NULL, &st);
    assert_int_equal(st, 400);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "\"limt\""));
    json_decref(j);
}

/* Answers 413 and still serves afterwards. */
static void expect_413(const char *header, size_t n) {
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    env.extra_header = header;
    int st = admin_request(&env, "POST", "/api/v1/users", "application/json", big, n);
    env.extra_header = NULL;
    free(big);
    if (st != 413) fail_msg("%s: status %d", header ? header : "no header", st);
    json_t *j = json_loadb(env.body, env.body_len, 0, NULL);
    assert_string_equal(admin_error_code(j), "payload_too_large");
    json_decref(j);
    json_decref(admin_call(&env, "GET", "/api/v1/openapi.json", NULL, &st));
    assert_int_equal(st, 200);
}

static void test_huge_body(void **state) {
    /* Declared too large: never kept; a client that waits for 100
     * Continue (curl does for large bodies) gets the 413 before sending. */
    expect_413("Expect: 100-continue", 2u << 20);
    /* One that does not wait gets it after the body, read and dropped. */
    expect_413(NULL, 2u << 20);
    /* Far too large (over 8 x the limit): answered at once. */
    expect_413("Expect: 100-continue", 9u << 20);
    /* Chunked, so its size is known only as it comes: no longer kept once
     * over the limit, answered when it ends. */
    expect_413("Transfer-Encoding: chunked", 3u << 20);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_static_console(void **state) {
    char dir[400], p[500];
    snprintf(dir, sizeof dir, "%s/console", env.dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(p, sizeof p, "%s/index.html", dir);
    write_text(p, "<!doctype html><title>console</title>");
    snprintf(p, sizeof p, "%s/app.js", dir);
    write_text(p, "console.log(1);");
    snprintf(p, sizeof p, "%s/assets", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/assets/site.css", dir);
    write_text(p, "body{}");
    snprintf(p, sizeof p, "%s/secret.txt", env.dir);
    write_text(p, "outside the console");
    char link[500];
    snprintf(link, sizeof link, "%s/leak.txt", dir);
    assert_int_equal(symlink(p, link), 0);
    const char *flags[] = {"--console-dir", dir, NULL};
    assert_int_equal(admin_env_restart_server(&env, flags), 0);

    assert_int_equal(admin_request(&env, "GET", "/", NULL, NULL, 0), 200);
    assert_non_null(strstr(env.body, "<title>console</title>"));
    assert_non_null(strstr(admin_header(&env, "Content-Type"), "text/html"));
    assert_non_null(admin_header(&env, "Content-Security-Policy"));
    assert_int_equal(admin_request(&env, "GET", "/app.js", NULL, NULL, 0), 200);
    assert_non_null(strstr(admin_header(&env, "Content-Type"), "text/javascript"));
    assert_int_equal(admin_request(&env, "GET", "/assets/site.css", NULL, NULL, 0), 200);
    assert_non_null(strstr(admin_header(&env, "Content-Type"), "text/css"));
    /* A page of the app: index.html. A missing asset: 404. */
    assert_int_equal(admin_request(&env, "GET", "/orders/20261201", NULL, NULL, 0), 200);
    assert_non_null(strstr(env.body, "<title>console</title>"));
    assert_int_equal(admin_request(&env, "GET", "/missing.js", NULL, NULL, 0), 404);
    /* API paths never fall back to the console. */
    assert_int_equal(admin_request(&env, "GET", "/api/v1/nothing", NULL, NULL, 0), 404);
    /* Out of the directory: refused, never served. */
    assert_int_equal(admin_request(&env, "GET", "/../secret.txt", NULL, NULL, 0), 400);
    assert_null(strstr(env.body, "outside"));
    assert_int_equal(admin_request(&env, "GET", "/assets/%2e%2e/%2e%2e/secret.txt", NULL, NULL, 0), 400);
    assert_null(strstr(env.body, "outside"));
    assert_int_not_equal(admin_request(&env, "GET", "/leak.txt", NULL, NULL, 0), 200);
    assert_null(strstr(env.body, "outside"));
    assert_int_equal(admin_request(&env, "POST", "/index.html", "text/plain", "x", 1), 405);
}

static void test_metrics(void **state) {
    int mport = fixture_free_port();
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", mport);
    const char *flags[] = {"--metrics-listen", listen, NULL};
    assert_int_equal(admin_env_restart_server(&env, flags), 0);
    assert_int_equal(admin_request(&env, "GET", "/api/v1/openapi.json", NULL, NULL, 0), 200);
    assert_int_equal(admin_request(&env, "GET", "/api/v1/nope", NULL, NULL, 0), 404);
    char *text = fixture_http_get("127.0.0.1", mport, "/metrics");
    assert_non_null(text);
    assert_true(fixture_metric(text, "pa_admin_http_requests_total{status=\"200\"}", 0) >= 1);
    assert_true(fixture_metric(text, "pa_admin_http_requests_total{status=\"404\"}", 0) >= 1);
    free(text);
}

static void test_redis_down(void **state) {
    assert_int_equal(admin_login(&env, "eve", PW), 200);
    assert_int_equal(redis_fixture_pause(&env.redis), 0);
    int st;
    json_t *j = admin_call(&env, "GET", "/api/v1/trail", NULL, &st);
    assert_int_equal(st, 503);
    assert_string_equal(admin_error_code(j), "unavailable");
    json_decref(j);
    j = admin_call(&env, "POST", "/api/v1/session", "{\"user\":\"eve\",\"password\":\"" PW "\"}", &st);
    assert_int_equal(st, 503);
    json_decref(j);
    assert_int_equal(redis_fixture_resume(&env.redis), 0);
    for (int i = 0; i < 100 && st != 200; i++) {
        usleep(100 * 1000);
        json_decref(admin_call(&env, "GET", "/api/v1/trail", NULL, &st));
    }
    assert_int_equal(st, 200);
}

/* SIGTERM drains and exits 0, saying so in the log. */
static void test_sigterm(void **state) {
    assert_int_equal(admin_env_stop_server(&env), 0);
    FILE *f = fopen(env.log_path, "r");
    assert_non_null(f);
    char line[2048];
    bool draining = false, stopped = false;
    while (fgets(line, sizeof line, f)) {
        draining |= strstr(line, "\"event\":\"server.draining\"") != NULL;
        stopped |= strstr(line, "\"event\":\"server.stopped\"") != NULL;
    }
    fclose(f);
    assert_true(draining);
    assert_true(stopped);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openapi_and_headers),
        cmocka_unit_test(test_unknown_route_and_method),
        cmocka_unit_test(test_needs_login),
        cmocka_unit_test(test_least_role),
        cmocka_unit_test(test_csrf),
        cmocka_unit_test(test_bad_bodies),
        cmocka_unit_test(test_huge_body),
        cmocka_unit_test(test_static_console),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_redis_down),
        cmocka_unit_test(test_sigterm),
    };
    int failed = cmocka_run_group_tests(tests, setup, NULL);
    /* The server must exit 0 too: a sanitizer's report fails the test. */
    return admin_env_stop(&env) == 0 ? failed : 1;
}
