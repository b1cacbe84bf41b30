/* test_redis_store.c -- redis_store.h against a real redis-server: URL
 * parsing, AUTH as an ACL user, errors that never show the password, fail
 * fast while Redis is down and heal when it returns, command timeouts,
 * pipelining, and transparent script reload after NOSCRIPT; sentinel URLs
 * (checked, and a store whose sentinels are away fails fast naming them;
 * tests/redis_ha follows a real failover). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fixture.h"
#include "redis_store.h"

static redis_fixture redis;

static int setup(void **state) {
    (void)state;
    return redis_fixture_start(&redis, FIXTURE_STORE_ACTIVATION);
}

static int teardown(void **state) {
    (void)state;
    redis_fixture_stop(&redis);
    return 0;
}

static rstore *open_as(const char *user, int cmd_timeout_ms) {
    char url[256], err[256];
    if (strcmp(user, "testadmin") == 0)
        snprintf(url, sizeof url, "redis://testadmin:testadmin-pw@127.0.0.1:%d", redis.port);
    else
        redis_fixture_url(&redis, user, url, sizeof url);
    rstore_config cfg = {.url = url, .connect_timeout_ms = 500, .command_timeout_ms = cmd_timeout_ms};
    rstore *s = rstore_new(&cfg, false, err, sizeof err);
    if (!s) fprintf(stderr, "rstore_new: %s\n", err);
    return s;
}

static void test_parse_url(void **state) {
    (void)state;
    char host[64], user[32], pw[32];
    int port, db;
    assert_int_equal(rstore_parse_url("redis://u%40x:p%3Aw@h.example:7000/3", host, sizeof host, &port, user,
                                      sizeof user, pw, sizeof pw, &db), 0);
    assert_string_equal(host, "h.example");
    assert_int_equal(port, 7000);
    assert_string_equal(user, "u@x");
    assert_string_equal(pw, "p:w");
    assert_int_equal(db, 3);
    assert_int_equal(rstore_parse_url("redis://:only@[::1]:6390", host, sizeof host, &port, user, sizeof user,
                                      pw, sizeof pw, &db), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 6390);
    assert_string_equal(user, "");
    assert_string_equal(pw, "only");
    assert_int_equal(rstore_parse_url("redis://", host, sizeof host, &port, user, sizeof user, pw, sizeof pw, &db), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 6379);
    assert_int_equal(rstore_parse_url("unix:///run/redis.sock", host, sizeof host, &port, user, sizeof user, pw,
                                      sizeof pw, &db), 0);
    assert_string_equal(host, "/run/redis.sock");
    assert_int_equal(port, 0);
    const char *bad[] = {"http://x", "redis://h:0", "redis://h:70000", "redis://h:12ab", "redis://h/x",
                         "redis://u:p%zz@h", "rediss://h", "unix:relative", "redis://[::1", NULL};
    for (int i = 0; bad[i]; i++) {
        int rc = rstore_parse_url(bad[i], host, sizeof host, &port, user, sizeof user, pw, sizeof pw, &db);
        if (rc != -1) fprintf(stderr, "accepted bad URL %s\n", bad[i]);
        assert_int_equal(rc, -1);
    }
}

static void test_sentinel_urls(void **state) {
    (void)state;
    char err[256];
    const char *good[] = {"redis-sentinel://activation:pw@10.0.0.1:26379,10.0.0.2,[::1]:26380/pa-a",
                          "redis-sentinel://s1/m/2", "redis://h:1", "unix:/run/r.sock", NULL};
    for (int i = 0; good[i]; i++) {
        bool ok = rstore_url_check(good[i], err, sizeof err);
        if (!ok) fprintf(stderr, "refused good URL %s: %s\n", good[i], err);
        assert_true(ok);
    }
    const char *bad[] = {"redis-sentinel://h1,h2",
                         "redis-sentinel://h1/",
                         "redis-sentinel:///m",
                         "redis-sentinel://h1,,h2/m",
                         "redis-sentinel://h1:0/m",
                         "redis-sentinel://h1/m/x",
                         "redis-sentinel://h1/m x",
                         "redis-sentinel://h1,/m",
                         "redis-sentinel://h,h,h,h,h,h,h,h,h,h,h,h,h,h,h,h,h/m",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        bool ok = rstore_url_check(bad[i], err, sizeof err);
        if (ok) fprintf(stderr, "accepted bad URL %s\n", bad[i]);
        assert_false(ok);
        assert_non_null(strstr(err, "redis-sentinel://"));
    }
    /* No sentinel listening: a lazy store fails fast and says so, without the password. */
    char url[256];
    int port = fixture_free_port();
    snprintf(url, sizeof url, "redis-sentinel://activation:hunter2@127.0.0.1:%d/pa-a", port);
    rstore_config cfg = {.url = url, .connect_timeout_ms = 200, .command_timeout_ms = 200};
    rstore *s = rstore_new(&cfg, true, err, sizeof err);
    assert_non_null(s);
    assert_null(rstore_command(s, "PING"));
    assert_non_null(strstr(rstore_error(s), "sentinel 127.0.0.1:"));
    assert_null(strstr(rstore_error(s), "hunter2"));
    rstore_free(s);
    assert_null(rstore_new(&cfg, false, err, sizeof err));
    assert_non_null(strstr(err, "sentinel"));
}

static void test_auth_and_errors(void **state) {
    (void)state;
    rstore *s = open_as("keystore", 1000);
    assert_non_null(s);
    redisReply *r = rstore_command(s, "SET %s %s", "{g:1}:t", "v");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    /* An ACL refusal is an error reply, not NULL. */
    r = rstore_command(s, "FLUSHALL");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "NOPERM"));
    freeReplyObject(r);
    rstore_free(s);

    char url[256], err[256];
    snprintf(url, sizeof url, "redis://keystore:hunter2-wrong@127.0.0.1:%d", redis.port);
    rstore_config cfg = {.url = url, .connect_timeout_ms = 500, .command_timeout_ms = 1000};
    assert_null(rstore_new(&cfg, false, err, sizeof err));
    assert_non_null(strstr(err, "AUTH as user 'keystore'"));
    assert_null(strstr(err, "hunter2"));

    /* A password file overrides the URL; a user without a password is refused. */
    char pwfile[] = "/tmp/pa-rstore-pwXXXXXX";
    int fd = mkstemp(pwfile);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, FIXTURE_PW_KEYSTORE "\n", strlen(FIXTURE_PW_KEYSTORE) + 1),
                     (ssize_t)strlen(FIXTURE_PW_KEYSTORE) + 1);
    close(fd);
    snprintf(url, sizeof url, "redis://keystore@127.0.0.1:%d", redis.port);
    cfg.password_file = pwfile;
    s = rstore_new(&cfg, false, err, sizeof err);
    assert_non_null(s);
    rstore_free(s);
    cfg.password_file = NULL;
    assert_null(rstore_new(&cfg, false, err, sizeof err));
    assert_non_null(strstr(err, "no password"));
    unlink(pwfile);

    cfg.url = "redis://x:y@127.0.0.1:notaport";
    assert_null(rstore_new(&cfg, false, err, sizeof err));
    assert_non_null(strstr(err, "invalid Redis URL"));
}

static void test_reconnect_after_outage(void **state) {
    (void)state;
    rstore *s = open_as("keystore", 1000);
    assert_non_null(s);
    redisReply *r = rstore_command(s, "SET %s %s", "{g:2}:kept", "across-restart");
    assert_non_null(r);
    freeReplyObject(r);

    assert_int_equal(redis_fixture_pause(&redis), 0);
    r = rstore_command(s, "PING");
    assert_null(r);   /* the broken connection is noticed */
    assert_false(rstore_connected(s));
    /* While backing off every call fails at once, without touching the network. */
    long long t0 = pa_mono_ms();
    for (int i = 0; i < 1000; i++) assert_null(rstore_command(s, "PING"));
    assert_true(pa_mono_ms() - t0 < 500);
    assert_non_null(strstr(rstore_error(s), "127.0.0.1"));

    assert_int_equal(redis_fixture_resume(&redis), 0);
    /* It heals by itself within the maximum backoff (2 s). */
    long long deadline = pa_mono_ms() + 5000;
    while (!(r = rstore_command(s, "GET %s", "{g:2}:kept")) && pa_mono_ms() < deadline) usleep(20000);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "across-restart");   /* AOF kept the data */
    freeReplyObject(r);
    assert_true(rstore_connected(s));
    rstore_free(s);
}

static void test_command_timeout(void **state) {
    (void)state;
    rstore *s = open_as("keystore", 200);
    assert_non_null(s);
    assert_int_equal(kill(redis.pid, SIGSTOP), 0);
    long long t0 = pa_mono_ms();
    redisReply *r = rstore_command(s, "PING");
    long long took = pa_mono_ms() - t0;
    assert_int_equal(kill(redis.pid, SIGCONT), 0);
    assert_null(r);
    assert_true(took >= 150 && took < 3000);
    long long deadline = pa_mono_ms() + 5000;
    while (!(r = rstore_command(s, "PING")) && pa_mono_ms() < deadline) usleep(20000);
    assert_non_null(r);
    freeReplyObject(r);
    rstore_free(s);
}

static void test_pipeline(void **state) {
    (void)state;
    rstore *s = open_as("keystore", 1000);
    assert_non_null(s);
    for (int i = 0; i < 10; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        const char *argv[] = {"RPUSH", "{g:3}:list", v};
        assert_int_equal(rstore_append_argv(s, 3, argv, NULL), 0);
    }
    for (int i = 0; i < 10; i++) {
        redisReply *r = rstore_get_reply(s);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        assert_int_equal(r->integer, i + 1);
        freeReplyObject(r);
    }
    /* Replies left unread are discarded before the next command. */
    const char *argv[] = {"LLEN", "{g:3}:list"};
    assert_int_equal(rstore_append_argv(s, 2, argv, NULL), 0);
    redisReply *r = rstore_command(s, "GET %s", "{g:3}:none");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    rstore_free(s);
}

/* A test-only admin user, added to this fixture's rendered ACL file (the
 * production users cannot run SCRIPT FLUSH, which is the point). */
static void add_admin_user(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/users.acl", redis.dir);
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fprintf(f, "user testadmin on >testadmin-pw ~* &* +@all\n");
    fclose(f);
    assert_int_equal(redis_fixture_pause(&redis), 0);
    assert_int_equal(redis_fixture_resume(&redis), 0);
}

static void test_noscript_reload(void **state) {
    (void)state;
    add_admin_user();
    rstore *s = open_as("keystore", 1000);
    rstore *admin = open_as("testadmin", 1000);
    assert_non_null(s);
    assert_non_null(admin);
    int idx = rstore_script_add(s, "return redis.call('INCRBY', KEYS[1], ARGV[1])");
    assert_true(idx >= 0);
    const char *argv[] = {"{g:4}:ctr", "5"};
    redisReply *r = rstore_eval(s, idx, 1, 1, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 5);
    freeReplyObject(r);

    r = rstore_command(admin, "SCRIPT FLUSH");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    r = rstore_command(admin, "SCRIPT EXISTS %s", "0000000000000000000000000000000000000000");
    freeReplyObject(r);

    r = rstore_eval(s, idx, 1, 1, argv, NULL);   /* NOSCRIPT inside, reloaded and retried */
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 10);
    freeReplyObject(r);

    /* A script registered before a lazy connect is loaded on connect. */
    char url[256], err[256];
    redis_fixture_url(&redis, "keystore", url, sizeof url);
    rstore_config cfg = {.url = url, .connect_timeout_ms = 500, .command_timeout_ms = 1000};
    rstore *lazy = rstore_new(&cfg, true, err, sizeof err);
    assert_non_null(lazy);
    assert_false(rstore_connected(lazy));
    int li = rstore_script_add(lazy, "return ARGV[1]");
    const char *a2[] = {"hello"};
    r = rstore_eval(lazy, li, 0, 1, a2, NULL);
    assert_non_null(r);
    assert_string_equal(r->str, "hello");
    freeReplyObject(r);
    assert_null(rstore_eval(lazy, 7, 0, 0, NULL, NULL));   /* no such script */
    rstore_free(lazy);
    rstore_free(admin);
    rstore_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_url),       cmocka_unit_test(test_sentinel_urls),
        cmocka_unit_test(test_auth_and_errors), cmocka_unit_test(test_reconnect_after_outage),
        cmocka_unit_test(test_command_timeout), cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_noscript_reload),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
