/* test_admin_users.c -- operator accounts: the `admin-server user`
 * commands (arguments, exit codes 0/1/2, passwords from a file or standard
 * input, the name and password rules) and the /api/v1/users routes, which
 * run the same code, so what one makes the other sees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_env.h"

#define PW "correct horse battery"

static admin_env env;

static int setup(void **state) {
    if (admin_env_start(&env, NULL) != 0) return -1;
    return admin_env_add_user(&env, "root", "admin", PW);
}

/* Runs `user ARGS` (NULL-terminated) with `input`; returns the exit code,
 * stdout into *out when out is not NULL. */
static int cli(const char *input, char **out, const char *a0, ...) {
    const char *args[16] = {a0};
    int n = 1;
    va_list ap;
    va_start(ap, a0);
    for (const char *s; n < 15 && (s = va_arg(ap, const char *));) args[n++] = s;
    va_end(ap);
    args[n] = NULL;
    return admin_env_user_cli(&env, args, input, out, NULL);
}

static void test_cli_usage(void **state) {
    char *out = NULL;
    assert_int_equal(cli(NULL, &out, "--help", NULL), 0);
    assert_non_null(strstr(out, "user add NAME"));
    free(out);
    assert_int_equal(cli(NULL, NULL, "frobnicate", NULL), 2);
    assert_int_equal(cli(NULL, NULL, "add", "--role", "viewer", NULL), 2);            /* no name */
    assert_int_equal(cli(PW "\n", NULL, "add", "nobody1", NULL), 2);                  /* no role */
    assert_int_equal(cli(PW "\n", NULL, "add", "nobody1", "--role", "god", NULL), 2); /* bad role */
    assert_int_equal(cli(PW "\n", NULL, "add", "Bad Name", "--role", "viewer", NULL), 2);
    assert_int_equal(cli(PW "\n", NULL, "add", "a23456789012345678901234567890123", "--role", "viewer", NULL), 2);
    assert_int_equal(cli("short\n", NULL, "add", "weak", "--role", "viewer", NULL), 2);
    assert_int_equal(cli("", NULL, "add", "empty", "--role", "viewer", NULL), 2);
    assert_int_equal(cli("aaaaaaaaaaaaaaaa\n", NULL, "add", "weak2", "--role", "viewer", NULL), 2);
    assert_int_equal(cli(NULL, NULL, "role", "root", NULL), 2);
    assert_int_equal(cli(NULL, NULL, "add", "x", "--role", "viewer", "--bogus", NULL), 2);
    /* Nothing of the refused ones exists. */
    assert_int_equal(admin_login(&env, "weak", "short"), 401);
}

static void test_cli_lifecycle(void **state) {
    assert_int_equal(cli(PW "\n", NULL, "add", "alice.b-1", "--role", "viewer", NULL), 0);
    assert_int_equal(cli(PW "\n", NULL, "add", "alice.b-1", "--role", "viewer", NULL), 1); /* taken */
    char *out = NULL;
    assert_int_equal(cli(NULL, &out, "list", NULL), 0);
    assert_non_null(strstr(out, "alice.b-1\tviewer\t"));
    assert_non_null(strstr(out, "root\tadmin\t"));
    free(out);
    assert_int_equal(admin_login(&env, "alice.b-1", PW), 200);
    assert_int_equal(cli(NULL, NULL, "role", "alice.b-1", "operator", NULL), 0);
    assert_int_equal(cli(NULL, NULL, "role", "ghost", "operator", NULL), 1);
    assert_int_equal(cli(NULL, NULL, "role", "alice.b-1", "superuser", NULL), 2);
    /* A new password from a file. */
    char pwfile[400];
    snprintf(pwfile, sizeof pwfile, "%s/newpw", env.dir);
    FILE *f = fopen(pwfile, "w");
    assert_non_null(f);
    fputs("the second long password\n", f);
    fclose(f);
    assert_int_equal(cli(NULL, NULL, "passwd", "alice.b-1", "--password-file", pwfile, NULL), 0);
    assert_int_equal(admin_login(&env, "alice.b-1", PW), 401);
    assert_int_equal(admin_login(&env, "alice.b-1", "the second long password"), 200);
    assert_int_equal(cli("short\n", NULL, "passwd", "alice.b-1", NULL), 2);
    assert_int_equal(cli(PW "\n", NULL, "passwd", "ghost", NULL), 1);
    assert_int_equal(cli(NULL, NULL, "remove", "alice.b-1", NULL), 0);
    assert_int_equal(cli(NULL, NULL, "remove", "alice.b-1", NULL), 1);
    assert_int_equal(admin_login(&env, "alice.b-1", "the second long password"), 401);
}

static void test_cli_store_down(void **state) {
    /* A store that does not answer: exit 1 with a reason. */
    char url[64];
    snprintf(url, sizeof url, "redis://admin@127.0.0.1:%d", fixture_free_port());
    char *argv[] = {(char *)fixture_bin("admin-server/admin-server"),
                    "user",
                    "list",
                    "--redis-url",
                    url,
                    "--redis-password-file",
                    env.redis_pw,
                    NULL};
    char *err = NULL;
    assert_int_equal(fixture_run(argv, NULL, &err), 1);
    assert_non_null(strstr(err, "Redis"));
    free(err);
}

static json_t *call(const char *method, const char *path, const char *body, int want) {
    int st;
    json_t *j = admin_call(&env, method, path, body, &st);
    if (st != want) fail_msg("%s %s: %d, wanted %d: %s", method, path, st, want, env.body);
    return j;
}

static void test_api(void **state) {
    assert_int_equal(admin_login(&env, "root", PW), 200);
    json_t *j = call("POST", "/api/v1/users", "{\"name\":\"bob\",\"role\":\"operator\",\"password\":\"" PW "\"}", 201);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "bob");
    assert_string_equal(json_string_value(json_object_get(j, "role")), "operator");
    assert_true(json_integer_value(json_object_get(j, "created_at")) > 0);
    assert_null(json_object_get(j, "hash"));
    json_decref(j);
    json_decref(call("POST", "/api/v1/users", "{\"name\":\"bob\",\"role\":\"viewer\",\"password\":\"" PW "\"}", 409));
    j = call("POST", "/api/v1/users", "{\"name\":\"carl\",\"role\":\"viewer\",\"password\":\"short\"}", 400);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "password"));
    json_decref(j);
    json_decref(call("POST", "/api/v1/users", "{\"name\":\"carl\",\"role\":\"viewer\"}", 400));
    json_decref(call("POST", "/api/v1/users", "{\"name\":7,\"role\":\"viewer\",\"password\":\"" PW "\"}", 400));

    /* The CLI sees what the API made. */
    char *out = NULL;
    assert_int_equal(cli(NULL, &out, "list", NULL), 0);
    assert_non_null(strstr(out, "bob\toperator\t"));
    free(out);

    j = call("GET", "/api/v1/users", NULL, 200);
    size_t i;
    json_t *u;
    bool seen = false;
    json_array_foreach(json_object_get(j, "items"), i, u) seen |=
        strcmp(json_string_value(json_object_get(u, "name")), "bob") == 0;
    assert_true(seen);
    json_decref(j);

    j = call("PATCH", "/api/v1/users/bob", "{\"role\":\"viewer\"}", 200);
    assert_string_equal(json_string_value(json_object_get(j, "role")), "viewer");
    json_decref(j);
    json_decref(call("PATCH", "/api/v1/users/bob", "{\"password\":\"bob's new password\"}", 200));
    json_decref(call("PATCH", "/api/v1/users/bob", "{}", 400));
    json_decref(call("PATCH", "/api/v1/users/bob", "{\"role\":\"emperor\"}", 400));
    /* Nothing half-done: a bad role leaves the password as it was. */
    json_decref(call("PATCH", "/api/v1/users/bob", "{\"role\":\"emperor\",\"password\":\"never set password\"}", 400));
    json_decref(call("PATCH", "/api/v1/users/ghost", "{\"role\":\"viewer\"}", 404));
    json_decref(call("PATCH", "/api/v1/users/root", "{\"role\":\"viewer\"}", 409)); /* not yourself */
    json_decref(call("DELETE", "/api/v1/users/root", NULL, 409));
    assert_int_equal(admin_login(&env, "bob", "never set password"), 401);
    assert_int_equal(admin_login(&env, "bob", "bob's new password"), 200);
    assert_int_equal(admin_login(&env, "root", PW), 200);
    json_decref(call("DELETE", "/api/v1/users/bob", NULL, 200));
    json_decref(call("DELETE", "/api/v1/users/bob", NULL, 404));
    json_decref(call("DELETE", "/api/v1/users/Not%20Valid", NULL, 400));
    assert_int_equal(admin_login(&env, "bob", "bob's new password"), 401);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_usage),
        cmocka_unit_test(test_cli_lifecycle),
        cmocka_unit_test(test_cli_store_down),
        cmocka_unit_test(test_api),
    };
    int failed = cmocka_run_group_tests(tests, setup, NULL);
    /* The server must exit 0 too: a sanitizer's report fails the test. */
    return admin_env_stop(&env) == 0 ? failed : 1;
}
