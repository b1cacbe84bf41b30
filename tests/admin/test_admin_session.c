/* test_admin_session.c -- logins and sessions (docs/admin.md, "Accounts,
 * sessions, roles") against the real binary: the login answer and the
 * cookie's attributes, wrong and unknown accounts answered alike, logout,
 * idle expiry pushed forward by use, sessions that follow their account
 * (role change, removal, new password), and the login rate limits per
 * account and per client address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin_env.h"

#define PW "correct horse battery"

static admin_env env;

static int setup(void **state) {
    if (admin_env_start(&env, NULL) != 0) return -1;
    if (admin_env_add_user(&env, "root", "admin", PW) != 0) return -1;
    if (admin_env_add_user(&env, "ops", "operator", PW) != 0) return -1;
    return 0;
}

/* How many admin:session:* keys there are, and whether any holds `text`. */
static long sessions_in_store(const char *text, bool *found) {
    redisContext *r = admin_env_redis(&env);
    assert_non_null(r);
    long n = 0;
    *found = false;
    char cursor[32] = "0";
    do {
        redisReply *rep = redisCommand(r, "SCAN %s MATCH admin:session:* COUNT 1000", cursor);
        assert_non_null(rep);
        snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
        for (size_t i = 0; i < rep->element[1]->elements; i++) {
            const char *k = rep->element[1]->element[i]->str;
            n++;
            if (text && strstr(k, text)) *found = true;
            redisReply *v = redisCommand(r, "GET %s", k);
            if (text && v && v->type == REDIS_REPLY_STRING && strstr(v->str, text)) *found = true;
            if (v) freeReplyObject(v);
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    redisFree(r);
    return n;
}

static void test_login_ok(void **state) {
    admin_forget_session(&env);
    int st;
    json_t *j = admin_call(&env, "POST", "/api/v1/session", "{\"user\":\"root\",\"password\":\"" PW "\"}", &st);
    assert_int_equal(st, 200);
    assert_string_equal(json_string_value(json_object_get(j, "user")), "root");
    assert_string_equal(json_string_value(json_object_get(j, "role")), "admin");
    char csrf[64];
    snprintf(csrf, sizeof csrf, "%s", json_string_value(json_object_get(j, "csrf_token")));
    assert_true(strlen(csrf) >= 32);
    long long exp = json_integer_value(json_object_get(j, "expires_at"));
    assert_true(exp > (long long)time(NULL) + 1700 && exp <= (long long)time(NULL) + 1801);
    json_decref(j);
    const char *c = admin_header(&env, "Set-Cookie");
    assert_non_null(c);
    assert_memory_equal(c, "pa_session=", 11);
    char cookie[64];
    snprintf(cookie, sizeof cookie, "%.*s", (int)strcspn(c + 11, ";"), c + 11);
    assert_int_equal(strlen(cookie), 43); /* 32 bytes, base64url */
    assert_non_null(strstr(c, "HttpOnly"));
    assert_non_null(strstr(c, "Secure"));
    assert_non_null(strstr(c, "SameSite=Strict"));
    assert_non_null(strstr(c, "Path=/"));
    assert_non_null(strstr(c, "Max-Age=1800"));
    /* Redis has the session, but not the cookie. */
    bool found;
    assert_true(sessions_in_store(cookie, &found) >= 1);
    assert_false(found);
    j = admin_call(&env, "GET", "/api/v1/session", NULL, &st);
    assert_int_equal(st, 200);
    assert_string_equal(json_string_value(json_object_get(j, "user")), "root");
    assert_string_equal(json_string_value(json_object_get(j, "csrf_token")), csrf);
    json_decref(j);
}

static void test_login_refused_alike(void **state) {
    admin_forget_session(&env);
    int st1, st2;
    json_t *a =
        admin_call(&env, "POST", "/api/v1/session", "{\"user\":\"root\",\"password\":\"wrong password!\"}", &st1);
    json_t *b =
        admin_call(&env, "POST", "/api/v1/session", "{\"user\":\"nobody\",\"password\":\"wrong password!\"}", &st2);
    assert_int_equal(st1, 401);
    assert_int_equal(st2, 401);
    assert_true(json_equal(a, b));
    assert_string_equal(admin_error_code(a), "unauthenticated");
    assert_null(admin_header(&env, "Set-Cookie"));
    json_decref(a);
    json_decref(b);
    json_t *j = admin_call(&env, "GET", "/api/v1/session", NULL, &st1);
    assert_int_equal(st1, 401);
    json_decref(j);
    /* A body without the password. */
    j = admin_call(&env, "POST", "/api/v1/session", "{\"user\":\"root\"}", &st1);
    assert_int_equal(st1, 400);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "password"));
    json_decref(j);
}

static void test_logout(void **state) {
    assert_int_equal(admin_login(&env, "ops", PW), 200);
    int st;
    json_decref(admin_call(&env, "DELETE", "/api/v1/session", NULL, &st));
    assert_int_equal(st, 200);
    assert_non_null(strstr(admin_header(&env, "Set-Cookie"), "Max-Age=0"));
    json_decref(admin_call(&env, "GET", "/api/v1/session", NULL, &st));
    assert_int_equal(st, 401);
}

static int session_status(void) {
    int st;
    json_decref(admin_call(&env, "GET", "/api/v1/session", NULL, &st));
    return st;
}

static void cli(const char *a, const char *b, const char *c, const char *input, int want) {
    const char *args[] = {a, b, c, NULL};
    assert_int_equal(admin_env_user_cli(&env, args, input, NULL, NULL), want);
}

static void test_session_follows_account(void **state) {
    assert_int_equal(admin_env_add_user(&env, "temp", "viewer", PW), 0);
    assert_int_equal(admin_login(&env, "temp", PW), 200);
    int st;
    json_decref(admin_call(&env, "GET", "/api/v1/users", NULL, &st));
    assert_int_equal(st, 403);
    cli("role", "temp", "admin", NULL, 0);
    json_decref(admin_call(&env, "GET", "/api/v1/users", NULL, &st));
    assert_int_equal(st, 200);
    json_t *j = admin_call(&env, "GET", "/api/v1/session", NULL, &st);
    assert_string_equal(json_string_value(json_object_get(j, "role")), "admin");
    json_decref(j);
    /* A new password ends the sessions of the account. */
    cli("passwd", "temp", NULL, "another long password\n", 0);
    assert_int_equal(session_status(), 401);
    assert_int_equal(admin_login(&env, "temp", "another long password"), 200);
    assert_int_equal(session_status(), 200);
    /* So does removing it. */
    cli("remove", "temp", NULL, NULL, 0);
    assert_int_equal(session_status(), 401);
}

static void test_idle_expiry(void **state) {
    const char *flags[] = {"--session-ttl-s", "2", NULL};
    assert_int_equal(admin_env_restart_server(&env, flags), 0);
    assert_int_equal(admin_login(&env, "ops", PW), 200);
    assert_non_null(strstr(admin_header(&env, "Set-Cookie"), "Max-Age=2"));
    /* Use pushes the expiry forward: 3 s in all, never 2 s idle. */
    for (int i = 0; i < 3; i++) {
        usleep(1000 * 1000);
        assert_int_equal(session_status(), 200);
    }
    usleep(3000 * 1000);
    assert_int_equal(session_status(), 401);
}

/* Plain HTTP (behind a TLS proxy): the same session, a cookie without Secure. */
static void test_insecure_http_cookie(void **state) {
    const char *flags[] = {"--insecure-http", NULL};
    assert_int_equal(admin_env_restart_server(&env, flags), 0);
    assert_int_equal(admin_login(&env, "ops", PW), 200);
    const char *c = admin_header(&env, "Set-Cookie");
    assert_non_null(c);
    assert_null(strstr(c, "Secure"));
    assert_non_null(strstr(c, "HttpOnly"));
    assert_non_null(strstr(c, "SameSite=Strict"));
    assert_null(admin_header(&env, "Strict-Transport-Security"));
    assert_int_equal(session_status(), 200);
}

static int login_from(const char *addr, const char *user, const char *password) {
    snprintf(env.source_addr, sizeof env.source_addr, "%s", addr);
    int st = admin_login(&env, user, password);
    env.source_addr[0] = '\0';
    return st;
}

static void test_rate_limits(void **state) {
    const char *flags[] = {"--login-tries", "3", "--login-refill-s", "60", NULL};
    assert_int_equal(admin_env_restart_server(&env, flags), 0);
    admin_forget_session(&env);
    for (int i = 0; i < 3; i++) assert_int_equal(login_from("127.0.0.1", "root", "not the password"), 401);
    /* Both buckets of this try are empty: the right password waits too. */
    assert_int_equal(login_from("127.0.0.1", "root", PW), 429);
    const char *ra = admin_header(&env, "Retry-After");
    assert_non_null(ra);
    assert_true(atoi(ra) >= 1 && atoi(ra) <= 60);
    json_t *j = json_loadb(env.body, env.body_len, 0, NULL);
    assert_string_equal(admin_error_code(j), "rate_limited");
    json_decref(j);
    /* The account's bucket holds from another address... */
    assert_int_equal(login_from("127.0.0.2", "root", PW), 429);
    /* ...which may log in to another account. */
    assert_int_equal(login_from("127.0.0.2", "ops", PW), 200);
    /* The first address's bucket holds for every account. */
    assert_int_equal(login_from("127.0.0.1", "ops", PW), 429);
    assert_int_equal(login_from("127.0.0.1", "nobody", PW), 429);
    /* Successful logins give their try back. */
    for (int i = 0; i < 6; i++) assert_int_equal(login_from("127.0.0.3", "ops", PW), 200);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_ok),    cmocka_unit_test(test_login_refused_alike),
        cmocka_unit_test(test_logout),      cmocka_unit_test(test_session_follows_account),
        cmocka_unit_test(test_idle_expiry), cmocka_unit_test(test_insecure_http_cookie),
        cmocka_unit_test(test_rate_limits),
    };
    int failed = cmocka_run_group_tests(tests, setup, NULL);
    /* The server must exit 0 too: a sanitizer's report fails the test. */
    return admin_env_stop(&env) == 0 ? failed : 1;
}
