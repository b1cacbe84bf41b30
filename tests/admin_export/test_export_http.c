/* test_export_http.c -- the export routes through the real admin-server
 * (tests/admin/admin_env.h): machines written to the machine logs as the
 * activation servers write them and taken into the directory by the
 * server's ingest,
 * then GET /api/v1/machines/export in each format with a search filter
 * (the right rows, the header, the formula guard, the download's type and
 * name, an XLSX read back with openpyxl); the admin trail's export; and the
 * refusals (a missing or unknown format, paging, an unknown filter). */
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
#include "redis_keys.h"

enum { GROUP = 4343, WS = 25 };

static admin_env env;
static long now_s;

static void cmd_ok(redisContext *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR) fail_msg("%s", r->str);
    freeReplyObject(r);
}

/* Retail machine i's activation, as policy.lua logs it. */
static void log_machine(redisContext *w, int i, const char *host) {
    char mdig[16] = {0}, ip[32], mac[32], hs[16];
    snprintf(mdig, sizeof mdig, "x%07d", i);
    snprintf(ip, sizeof ip, "10.0.0.%d", i);
    snprintf(mac, sizeof mac, "02:00:00:00:00:%02x", i);
    snprintf(hs, sizeof hs, "PF%04d", i);
    cmd_ok(w, "XADD " PA_RKEY_GROUP_MLOG_FMT " * op a m %b g %u s %u t %ld ip %s h %s mac %s hs %s os linux e %ld",
           GROUP, mdig, (size_t)16, GROUP, i, now_s - 1000 + i, ip, host, mac, hs, now_s + 86400);
}

/* How many machines the search finds. */
static int machines_found(void) {
    int status;
    json_t *j = admin_call(&env, "GET", "/api/v1/machines?limit=500", NULL, &status);
    int n = status == 200 ? (int)json_array_size(json_object_get(j, "items")) : -1;
    json_decref(j);
    return n;
}

/* Machines 1..WS named ws-001..., two others, taken in by the server's ingest. */
static void plant_machines(void) {
    redisContext *w = redis_fixture_connect(&env.redis, "keystore", FIXTURE_PW_KEYSTORE);
    assert_non_null(w);
    cmd_ok(w, "SADD " PA_RKEY_GROUPS " %u", GROUP);
    char host[32];
    for (int i = 1; i <= WS; i++) {
        snprintf(host, sizeof host, "ws-%03d", i);
        log_machine(w, i, host);
    }
    log_machine(w, 40, "db-01");
    log_machine(w, 41, "=HYPERLINK(\"x\")");
    redisFree(w);
    /* the server's own ingest takes them in (a step a second when idle) */
    for (int i = 0; i < 150 && machines_found() < WS + 2; i++) usleep(100000);
    assert_int_equal(machines_found(), WS + 2);
}

/* Three changes of user alice in the trail, one of bob. */
static void plant_trail(void) {
    redisContext *a = admin_env_redis(&env);
    assert_non_null(a);
    for (int i = 0; i < 3; i++)
        cmd_ok(a,
               "XADD " PA_RKEY_ADMIN_TRAIL
               " * user alice action order.retire target 2026120%d addr 10.1.1.1 result ok t %ld",
               i, now_s - 100 + i);
    cmd_ok(a, "XADD " PA_RKEY_ADMIN_TRAIL " * user bob action order.import target x addr 10.1.1.2 result ok t %ld",
           now_s);
    redisFree(a);
}

static int setup(void **state) {
    now_s = (long)time(NULL);
    if (admin_env_start(&env, NULL) != 0) return -1;
    if (admin_env_add_user(&env, "view", "viewer", "a long viewer password") != 0) return -1;
    if (admin_login(&env, "view", "a long viewer password") != 200) return -1;
    plant_machines();
    plant_trail();
    return 0;
}

static int teardown(void **state) {
    admin_env_stop(&env);
    return 0;
}

static void iso(long t, char *buf, size_t n) {
    time_t tt = (time_t)t;
    struct tm tm;
    assert_non_null(gmtime_r(&tt, &tm));
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The download's name for `what` today. */
static void expect_download(const char *what, const char *ext, const char *type) {
    char day[16], want[96];
    time_t t = time(NULL);
    struct tm tm;
    assert_non_null(gmtime_r(&t, &tm));
    strftime(day, sizeof day, "%Y%m%d", &tm);
    snprintf(want, sizeof want, "attachment; filename=\"%s-%s.%s\"", what, day, ext);
    assert_non_null(admin_header(&env, "Content-Disposition"));
    assert_string_equal(admin_header(&env, "Content-Disposition"), want);
    assert_string_equal(admin_header(&env, "Content-Type"), type);
}

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; (s = strstr(s, "\r\n")); s += 2) n++;
    return n;
}

static void test_machines_csv(void **state) {
    assert_int_equal(admin_request(&env, "GET", "/api/v1/machines/export?format=csv&hostname=ws-*", NULL, NULL, 0),
                     200);
    expect_download("machines", "csv", "text/csv; charset=utf-8");
    assert_int_equal(count_lines(env.body), 1 + WS);
    const char *header =
        "id,group,serial,order,hostname,ip,macs,host_serial,os,status,first_seen,last_seen,expires_at\r\n";
    assert_memory_equal(env.body, header, strlen(header));
    char t[32], e[32], want[256];
    iso(now_s - 1000 + 7, t, sizeof t);
    iso(now_s + 86400, e, sizeof e);
    snprintf(want, sizeof want, ",%d,7,,ws-007,10.0.0.7,02:00:00:00:00:07,PF0007,linux,active,%s,%s,%s\r\n", GROUP, t,
             t, e);
    assert_non_null(strstr(env.body, want));
    assert_null(strstr(env.body, "db-01"));

    /* all machines: the formula guard on the hostname a machine chose */
    assert_int_equal(admin_request(&env, "GET", "/api/v1/machines/export?format=csv", NULL, NULL, 0), 200);
    assert_int_equal(count_lines(env.body), 1 + WS + 2);
    assert_non_null(strstr(env.body, ",\"'=HYPERLINK(\"\"x\"\")\","));
}

static void test_machines_json(void **state) {
    assert_int_equal(
        admin_request(&env, "GET", "/api/v1/machines/export?format=json&serial=12&group=4343", NULL, NULL, 0), 200);
    expect_download("machines", "json", "application/json");
    json_error_t je;
    json_t *a = json_loads(env.body, 0, &je);
    assert_non_null(a);
    assert_int_equal(json_array_size(a), 1);
    json_t *m = json_array_get(a, 0);
    assert_string_equal(json_string_value(json_object_get(m, "hostname")), "ws-012");
    assert_int_equal(json_integer_value(json_object_get(m, "group")), GROUP);
    assert_int_equal(json_integer_value(json_object_get(m, "serial")), 12);
    assert_int_equal(json_integer_value(json_object_get(m, "last_seen")), now_s - 1000 + 12);
    assert_int_equal(json_array_size(json_object_get(m, "macs")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(m, "macs"), 0)), "02:00:00:00:00:0c");
    assert_true(json_is_null(json_object_get(m, "order")) ||
                !strcmp(json_string_value(json_object_get(m, "order")), ""));
    json_decref(a);

    assert_int_equal(admin_request(&env, "GET", "/api/v1/machines/export?format=json", NULL, NULL, 0), 200);
    a = json_loads(env.body, 0, &je);
    assert_non_null(a);
    assert_int_equal(json_array_size(a), WS + 2);
    json_decref(a);
}

static void test_machines_xlsx(void **state) {
    assert_int_equal(admin_request(&env, "GET", "/api/v1/machines/export?format=xlsx&hostname=ws-01*", NULL, NULL, 0),
                     200);
    expect_download("machines", "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    char path[400];
    snprintf(path, sizeof path, "%s/machines.xlsx", env.dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(env.body, 1, env.body_len, f), env.body_len);
    assert_int_equal(fclose(f), 0);
    static const char script[] =
        "import json, sys, openpyxl\n"
        "ws = openpyxl.load_workbook(sys.argv[1]).worksheets[0]\n"
        "rows = list(ws.iter_rows(values_only=True))\n"
        "print(json.dumps({'header': rows[0], 'hosts': sorted(r[4] for r in rows[1:]),\n"
        "                  'seen': [r[11].isoformat() for r in rows[1:] if r[4] == 'ws-013']}))\n";
    char *argv[] = {"/usr/bin/python3", "-c", (char *)script, path, NULL};
    char *out = NULL, *err = NULL;
    int rc = fixture_run(argv, &out, &err);
    if (rc != 0) fprintf(stderr, "openpyxl: %s\n", err ? err : "");
    assert_int_equal(rc, 0);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    assert_non_null(j);
    free(out);
    free(err);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "header"), 12)), "expires_at");
    json_t *hosts = json_object_get(j, "hosts");
    assert_int_equal(json_array_size(hosts), 10); /* ws-010 .. ws-019 */
    assert_string_equal(json_string_value(json_array_get(hosts, 0)), "ws-010");
    assert_string_equal(json_string_value(json_array_get(hosts, 9)), "ws-019");
    char t[32];
    iso(now_s - 1000 + 13, t, sizeof t);
    t[strlen(t) - 1] = '\0'; /* openpyxl's dates have no zone */
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "seen"), 0)), t);
    json_decref(j);
}

static void test_trail_export(void **state) {
    assert_int_equal(admin_request(&env, "GET", "/api/v1/trail/export?format=csv&user=alice", NULL, NULL, 0), 200);
    expect_download("trail", "csv", "text/csv; charset=utf-8");
    assert_int_equal(count_lines(env.body), 1 + 3);
    char t[32], want[160];
    iso(now_s - 98, t, sizeof t);
    snprintf(want, sizeof want, "t,user,action,target,addr,result\r\n%s,alice,order.retire,20261202,10.1.1.1,ok\r\n",
             t);
    assert_memory_equal(env.body, want, strlen(want)); /* newest first */

    assert_int_equal(admin_request(&env, "GET", "/api/v1/trail/export?format=json&action=order.*", NULL, NULL, 0), 200);
    json_error_t je;
    json_t *a = json_loads(env.body, 0, &je);
    assert_non_null(a);
    assert_int_equal(json_array_size(a), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "user")), "bob");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "t")), now_s);
    json_decref(a);
}

static void expect_refusal(const char *path, const char *names) {
    int status;
    json_t *j = admin_call(&env, "GET", path, NULL, &status);
    assert_int_equal(status, 400);
    assert_non_null(j);
    assert_string_equal(admin_error_code(j), "bad_request");
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    assert_non_null(msg);
    if (!strstr(msg, names)) fail_msg("%s: \"%s\" does not name %s", path, msg, names);
    json_decref(j);
}

static void test_refusals(void **state) {
    expect_refusal("/api/v1/machines/export?format=xml", "xml");
    expect_refusal("/api/v1/machines/export", "format");
    expect_refusal("/api/v1/machines/export?format=csv&limit=5", "limit");
    expect_refusal("/api/v1/machines/export?format=csv&hostnme=x", "hostnme");
    expect_refusal("/api/v1/machines/export?format=csv&status=sleeping", "status");
    expect_refusal("/api/v1/trail/export?format=pdf", "pdf");
    expect_refusal("/api/v1/trail/export?format=csv&cursor=x", "cursor");
    admin_forget_session(&env);
    int status;
    json_t *j = admin_call(&env, "GET", "/api/v1/machines/export?format=csv", NULL, &status);
    assert_int_equal(status, 401);
    json_decref(j);
    assert_int_equal(admin_login(&env, "view", "a long viewer password"), 200);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_machines_csv), cmocka_unit_test(test_machines_json), cmocka_unit_test(test_machines_xlsx),
        cmocka_unit_test(test_trail_export), cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
