/* test_admin_routes.c -- route matching (route_match.h) on a table of its
 * own: literal and {param} segments, the fewest params winning whatever
 * the order, 405's method list, and paths that must not match (trailing
 * slash, empty or extra segments). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "route_match.h"

static void h(const http_request *rq) {}

/* The param route first: the literal one must still win. */
static const http_route T[] = {
    {"GET", "/api/v1/machines/{id}", ROLE_VIEWER, h, "one machine"},
    {"GET", "/api/v1/machines/export", ROLE_VIEWER, h, "export"},
    {"POST", "/api/v1/machines/{id}/approve", ROLE_OPERATOR, h, "approve"},
    {"GET", "/api/v1/orders/{serial}/designated/{kind}", ROLE_VIEWER, h, "two params"},
    {"DELETE", "/api/v1/orders/{serial}/designated/{kind}", ROLE_OPERATOR, h, "two params"},
    {"GET", "/api/v1/session", ROLE_NONE, h, "who"},
    {"POST", "/api/v1/session", ROLE_NONE, h, "log in"},
};
#define N (sizeof T / sizeof *T)

static const http_route *find(const char *method, const char *path, const char *params[4], char *allow) {
    static char values[256];
    return route_find(T, N, method, path, values, params, allow, 64);
}

static void test_literal_beats_param(void **state) {
    const char *p[4] = {0};
    char allow[64];
    const http_route *r = find("GET", "/api/v1/machines/export", p, allow);
    assert_ptr_equal(r, &T[1]);
    assert_null(p[0]);
    r = find("GET", "/api/v1/machines/AbC-_9", p, allow);
    assert_ptr_equal(r, &T[0]);
    assert_string_equal(p[0], "AbC-_9");
}

static void test_params(void **state) {
    const char *p[4] = {0};
    char allow[64];
    const http_route *r = find("DELETE", "/api/v1/orders/20261201/designated/mac", p, allow);
    assert_ptr_equal(r, &T[4]);
    assert_string_equal(p[0], "20261201");
    assert_string_equal(p[1], "mac");
    r = find("POST", "/api/v1/machines/m1/approve", p, allow);
    assert_ptr_equal(r, &T[2]);
    assert_string_equal(p[0], "m1");
}

static void test_no_match(void **state) {
    const char *p[4] = {0};
    char allow[64];
    const char *paths[] = {"/api/v1/machines/", "/api/v1/machines",       "/api/v1/machines//approve",
                           "/api/v1/session/",  "/api/v1/session/x",      "/api/v1/orders/1/designated",
                           "api/v1/session",    "/api/v1/machines/a/b/c", ""};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        assert_null(find("GET", paths[i], p, allow));
        assert_string_equal(allow, "");
    }
}

static void test_allow(void **state) {
    const char *p[4] = {0};
    char allow[64];
    assert_null(find("PUT", "/api/v1/session", p, allow));
    assert_string_equal(allow, "GET, POST");
    assert_null(find("GET", "/api/v1/machines/m1/approve", p, allow));
    assert_string_equal(allow, "POST");
    assert_null(find("PATCH", "/api/v1/orders/1/designated/s", p, allow));
    assert_string_equal(allow, "GET, DELETE");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_beats_param),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_no_match),
        cmocka_unit_test(test_allow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
