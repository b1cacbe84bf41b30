/* test_admin_openapi.c -- the OpenAPI document against the route table:
 * every route has its operation (method, summary, x-role, path
 * parameters), and the document has the OpenAPI 3.0 shape and survives a
 * round trip through JSON text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "openapi.h"
#include "user_store.h"

static json_t *document(void) {
    json_t *doc = openapi_document(admin_routes, admin_n_routes);
    assert_non_null(doc);
    char *text = json_dumps(doc, 0);
    json_decref(doc);
    assert_non_null(text);
    json_error_t err;
    json_t *back = json_loads(text, 0, &err);
    free(text);
    assert_non_null(back);
    return back;
}

static void test_shape(void **state) {
    json_t *doc = document();
    const char *v = json_string_value(json_object_get(doc, "openapi"));
    assert_non_null(v);
    assert_memory_equal(v, "3.0", 3);
    json_t *info = json_object_get(doc, "info");
    assert_true(json_is_string(json_object_get(info, "title")));
    assert_true(json_is_string(json_object_get(info, "version")));
    json_t *paths = json_object_get(doc, "paths");
    assert_true(json_is_object(paths));
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item) {
        assert_int_equal(path[0], '/');
        const char *m;
        json_t *op;
        json_object_foreach(item, m, op) {
            assert_true(strcmp(m, "get") == 0 || strcmp(m, "post") == 0 || strcmp(m, "put") == 0 ||
                        strcmp(m, "patch") == 0 || strcmp(m, "delete") == 0);
            assert_true(json_is_object(json_object_get(op, "responses")));
        }
    }
    assert_true(json_is_object(json_object_get(json_object_get(doc, "components"), "schemas")));
    json_decref(doc);
}

static void test_every_route(void **state) {
    json_t *doc = document();
    json_t *paths = json_object_get(doc, "paths");
    size_t ops = 0;
    for (size_t i = 0; i < admin_n_routes; i++) {
        const http_route *rt = &admin_routes[i];
        char method[8] = "";
        for (size_t j = 0; rt->method[j] && j < 7; j++) method[j] = (char)tolower((unsigned char)rt->method[j]);
        json_t *op = json_object_get(json_object_get(paths, rt->pattern), method);
        if (!op) fail_msg("no operation for %s %s", rt->method, rt->pattern);
        assert_non_null(rt->summary);
        assert_string_equal(json_string_value(json_object_get(op, "summary")), rt->summary);
        assert_string_equal(json_string_value(json_object_get(op, "x-role")), user_role_name(rt->least));
        /* Each {param} of the pattern is a required path parameter. */
        size_t want = 0;
        for (const char *p = strchr(rt->pattern, '{'); p; p = strchr(p + 1, '{')) want++;
        json_t *params = json_object_get(op, "parameters");
        assert_int_equal(json_array_size(params), want);
        size_t k;
        json_t *prm;
        json_array_foreach(params, k, prm) {
            char brace[64];
            snprintf(brace, sizeof brace, "{%s}", json_string_value(json_object_get(prm, "name")));
            assert_non_null(strstr(rt->pattern, brace));
            assert_string_equal(json_string_value(json_object_get(prm, "in")), "path");
            assert_true(json_is_true(json_object_get(prm, "required")));
        }
        ops++;
    }
    /* No operation without a route. */
    size_t in_doc = 0;
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item) in_doc += json_object_size(item);
    assert_int_equal(in_doc, ops);
    json_decref(doc);
}

/* Two routes with the same method and pattern would shadow each other. */
static void test_no_duplicates(void **state) {
    for (size_t i = 0; i < admin_n_routes; i++)
        for (size_t j = i + 1; j < admin_n_routes; j++)
            if (strcmp(admin_routes[i].method, admin_routes[j].method) == 0 &&
                strcmp(admin_routes[i].pattern, admin_routes[j].pattern) == 0)
                fail_msg("%s %s twice", admin_routes[i].method, admin_routes[i].pattern);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape),
        cmocka_unit_test(test_every_route),
        cmocka_unit_test(test_no_duplicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
