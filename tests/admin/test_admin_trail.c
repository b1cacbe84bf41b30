/* test_admin_trail.c -- the admin trail: what a change records (user,
 * action, target, address, result, time), the CLI's changes too; GET
 * /api/v1/trail's filters, cursor paging newest first without gaps or
 * repeats, the bounded scan of a filter that matches little; and the row
 * reader exports use (trail_rows). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_app.h"
#include "admin_env.h"
#include "trail.h"

#define PW "correct horse battery"

static admin_env env;

static int setup(void **state) {
    if (admin_env_start(&env, NULL) != 0) return -1;
    if (admin_env_add_user(&env, "root", "admin", PW) != 0) return -1;
    return admin_login(&env, "root", PW) == 200 ? 0 : -1;
}

static json_t *get(const char *path, int want) {
    int st;
    json_t *j = admin_call(&env, "GET", path, NULL, &st);
    if (st != want) fail_msg("GET %s: %d, wanted %d: %s", path, st, want, env.body);
    return j;
}

static const char *str(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static void test_records_a_change(void **state) {
    int st;
    long long before = (long long)time(NULL);
    json_decref(admin_call(&env, "POST", "/api/v1/users",
                           "{\"name\":\"trailed\",\"role\":\"viewer\",\"password\":\"" PW "\"}", &st));
    assert_int_equal(st, 201);
    json_t *j = get("/api/v1/trail?limit=1", 200);
    json_t *e = json_array_get(json_object_get(j, "items"), 0);
    assert_non_null(e);
    assert_string_equal(str(e, "user"), "root");
    assert_string_equal(str(e, "action"), "user.add");
    assert_string_equal(str(e, "target"), "trailed");
    assert_string_equal(str(e, "addr"), "127.0.0.1");
    assert_string_equal(str(e, "result"), "ok");
    long long t = json_integer_value(json_object_get(e, "t"));
    assert_true(t >= before && t <= (long long)time(NULL));
    assert_non_null(json_object_get(j, "next_cursor"));
    json_decref(j);
    /* The CLI's changes and the logins are there too. */
    j = get("/api/v1/trail?user=(cli)&action=user.add", 200);
    assert_true(json_array_size(json_object_get(j, "items")) >= 1);
    assert_string_equal(str(json_array_get(json_object_get(j, "items"), 0), "target"), "root");
    assert_string_equal(str(json_array_get(json_object_get(j, "items"), 0), "addr"), "local");
    json_decref(j);
    j = get("/api/v1/trail?action=session.login&user=root", 200);
    assert_true(json_array_size(json_object_get(j, "items")) >= 1);
    json_decref(j);
}

/* Appends n entries for user uA / uB alternately, actions x.one / x.two. */
static void add_entries(int n) {
    redisContext *r = admin_env_redis(&env);
    assert_non_null(r);
    for (int i = 0; i < n; i++)
        redisAppendCommand(r, "XADD admin:trail * user %s action %s target t%d addr 10.0.0.1 result ok t %lld",
                           i % 2 ? "uB" : "uA", i % 3 ? "x.one" : "x.two", i, (long long)time(NULL));
    for (int i = 0; i < n; i++) {
        redisReply *rep = NULL;
        assert_int_equal(redisGetReply(r, (void **)&rep), REDIS_OK);
        assert_int_equal(rep->type, REDIS_REPLY_STRING);
        freeReplyObject(rep);
    }
    redisFree(r);
}

/* Follows the cursor from `first` to the end; returns the items seen and
 * checks newest first, no repeats. */
static size_t walk(const char *first, size_t *pages) {
    char path[512];
    snprintf(path, sizeof path, "%s", first);
    size_t seen = 0;
    char last[64] = "";
    *pages = 0;
    for (;;) {
        json_t *j = get(path, 200);
        (*pages)++;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(j, "items"), i, e) {
            const char *id = str(e, "id");
            unsigned long long ms, seq, lms, lseq;
            if (last[0]) {
                assert_int_equal(sscanf(id, "%llu-%llu", &ms, &seq), 2);
                assert_int_equal(sscanf(last, "%llu-%llu", &lms, &lseq), 2);
                assert_true(ms < lms || (ms == lms && seq < lseq));
            }
            snprintf(last, sizeof last, "%s", id);
            seen++;
        }
        const char *next = str(j, "next_cursor");
        if (!next) {
            json_decref(j);
            return seen;
        }
        snprintf(path, sizeof path, "%s&cursor=%s", first, next);
        json_decref(j);
        assert_true(*pages < 1000);
    }
}

static long long stream_len(void) {
    redisContext *r = admin_env_redis(&env);
    redisReply *rep = redisCommand(r, "XLEN admin:trail");
    long long n = rep->integer;
    freeReplyObject(rep);
    redisFree(r);
    return n;
}

static void test_pages_and_filters(void **state) {
    add_entries(120);
    size_t pages;
    long long total = stream_len();
    assert_int_equal(walk("/api/v1/trail?limit=50", &pages), (size_t)total);
    assert_int_equal(pages, (size_t)(total + 49) / 50);
    assert_int_equal(walk("/api/v1/trail?limit=7&user=uA", &pages), 60);
    assert_int_equal(walk("/api/v1/trail?limit=500&user=uB&action=x.two", &pages), 20);
    assert_int_equal(walk("/api/v1/trail?limit=500&action=x.*", &pages), 120);
    /* Time range: all of it now, none of it long ago. */
    char path[128];
    snprintf(path, sizeof path, "/api/v1/trail?limit=500&user=uA&from=%lld", (long long)time(NULL) - 60);
    assert_int_equal(walk(path, &pages), 60);
    assert_int_equal(walk("/api/v1/trail?user=uA&to=1000000", &pages), 0);
    /* Items carry every field. */
    json_t *j = get("/api/v1/trail?limit=1&user=uA", 200);
    json_t *e = json_array_get(json_object_get(j, "items"), 0);
    assert_string_equal(str(e, "addr"), "10.0.0.1");
    assert_string_equal(str(e, "result"), "ok");
    json_decref(j);
}

static void test_bad_queries(void **state) {
    json_decref(get("/api/v1/trail?limit=0", 400));
    json_decref(get("/api/v1/trail?limit=501", 400));
    json_decref(get("/api/v1/trail?limit=ten", 400));
    json_decref(get("/api/v1/trail?cursor=!!!", 400));
    json_decref(get("/api/v1/trail?cursor=bm90LWFuLWlk", 400)); /* "not-an-id" */
    json_t *j = get("/api/v1/trail?usr=root", 400);
    assert_non_null(strstr(str(json_object_get(j, "error"), "message"), "\"usr\""));
    json_decref(j);
}

static void test_bounded_scan(void **state) {
    add_entries(6000);
    /* Nothing matches: the first page stops early with a cursor to go on. */
    json_t *j = get("/api/v1/trail?user=nobody", 200);
    assert_int_equal(json_array_size(json_object_get(j, "items")), 0);
    assert_non_null(str(j, "next_cursor"));
    json_decref(j);
    size_t pages;
    assert_int_equal(walk("/api/v1/trail?user=nobody", &pages), 0);
    assert_true(pages >= 2);
}

static void test_rows_reader(void **state) {
    admin_app app = {.store = {.url = env.redis_url, .password_file = env.redis_pw}};
    char err[256];
    rstore *r = admin_store_open(&app, false, err, sizeof err);
    assert_non_null(r);
    trail_filter f = {.user = "uB", .action = "x.two"};
    trail_rows *it = trail_rows_open(r, &f);
    assert_non_null(it);
    const char *row[TRAIL_N_COLS];
    int n = 0, rc;
    while ((rc = trail_rows_next(it, row)) == 1) {
        assert_string_equal(row[TRAIL_COL_USER], "uB");
        assert_string_equal(row[TRAIL_COL_ACTION], "x.two");
        assert_string_equal(row[TRAIL_COL_ADDR], "10.0.0.1");
        assert_true(atoll(row[TRAIL_COL_T]) > 1700000000);
        n++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, 20 + 1000); /* 120 entries, then 6000 */
    assert_false(trail_rows_more(it));
    trail_rows_close(it);
    assert_string_equal(trail_columns[TRAIL_COL_RESULT], "result");
    rstore_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_a_change), cmocka_unit_test(test_pages_and_filters),
        cmocka_unit_test(test_bad_queries),      cmocka_unit_test(test_bounded_scan),
        cmocka_unit_test(test_rows_reader),
    };
    int failed = cmocka_run_group_tests(tests, setup, NULL);
    /* The server must exit 0 too: a sanitizer's report fails the test. */
    return admin_env_stop(&env) == 0 ? failed : 1;
}
