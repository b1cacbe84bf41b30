/* test_log.c -- log.h: exact line shape, JSON escaping (including bad
 * UTF-8), level filtering, and that lines written by many threads at once
 * arrive whole (one write(2) per line). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

typedef struct capture {
    int saved;
    char path[64];
} capture;

static void cap_begin(capture *c) {
    snprintf(c->path, sizeof c->path, "/tmp/pa-logtest-XXXXXX");
    int t = mkstemp(c->path);
    assert_true(t >= 0);
    c->saved = dup(2);
    dup2(t, 2);
    close(t);
}

static char *cap_end(capture *c, size_t *len) {
    dup2(c->saved, 2);
    close(c->saved);
    FILE *f = fopen(c->path, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    unlink(c->path);
    if (len) *len = (size_t)n;
    return buf;
}

static int reset(void **state) {
    (void)state;
    log_set_level(LOG_LEVEL_INFO);
    log_set_component("");
    return 0;
}

static void test_line_shape(void **state) {
    (void)state;
    capture cap;
    cap_begin(&cap);
    log_info("activate.granted", LOG_U("group", 4365), LOG_U("serial", 11), LOG_S("peer", "ipv4:127.0.0.1:51000"),
             LOG_I("delta", -3), LOG_F("ms", 1.5), LOG_B("online", 1), LOG_END);
    char *out = cap_end(&cap, NULL);
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^\\{\"ts\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z\","
                             "\"level\":\"info\",\"event\":\"activate.granted\",\"group\":4365,\"serial\":11,"
                             "\"peer\":\"ipv4:127.0.0.1:51000\",\"delta\":-3,\"ms\":1.5,\"online\":true\\}\n$",
                             REG_EXTENDED),
                     0);
    int m = regexec(&re, out, 0, NULL, 0);
    if (m != 0) fprintf(stdout, "got: %s", out);
    assert_int_equal(m, 0);
    regfree(&re);
    free(out);
}

static void test_escaping(void **state) {
    (void)state;
    capture cap;
    log_set_component("unit \"test\"");
    cap_begin(&cap);
    log_warn("esc", LOG_S("s", "q\" b\\ n\n t\t c\x01 ok-\xc3\xa9 bad-\xff\xfe end"), LOG_S("null", NULL),
             LOG_F("nan", 0.0 / 0.0), LOG_END);
    char *out = cap_end(&cap, NULL);
    assert_non_null(strstr(out, "\"level\":\"warn\",\"component\":\"unit \\\"test\\\"\",\"event\":\"esc\""));
    assert_non_null(strstr(out, "\"s\":\"q\\\" b\\\\ n\\n t\\t c\\u0001 ok-\xc3\xa9 bad-\\ufffd\\ufffd end\""));
    assert_non_null(strstr(out, "\"null\":\"\""));
    assert_non_null(strstr(out, "\"nan\":null}"));
    /* Exactly one line. */
    assert_non_null(strchr(out, '\n'));
    assert_int_equal(strchr(out, '\n')[1], '\0');
    free(out);
}

static void test_levels(void **state) {
    (void)state;
    assert_int_equal(log_level_parse("debug"), LOG_LEVEL_DEBUG);
    assert_int_equal(log_level_parse("error"), LOG_LEVEL_ERROR);
    assert_int_equal(log_level_parse("loud"), -1);
    capture cap;
    cap_begin(&cap);
    log_debug("hidden", LOG_END);
    log_set_level(LOG_LEVEL_WARN);
    log_info("hidden2", LOG_END);
    log_error("shown", LOG_END);
    log_set_level(LOG_LEVEL_DEBUG);
    log_debug("shown2", LOG_END);
    char *out = cap_end(&cap, NULL);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "\"level\":\"error\",\"event\":\"shown\""));
    assert_non_null(strstr(out, "\"level\":\"debug\",\"event\":\"shown2\""));
    free(out);
}

static void test_long_line(void **state) {
    (void)state;
    size_t n = 100000;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    capture cap;
    cap_begin(&cap);
    log_info("big", LOG_S("v", big), LOG_END);
    size_t len;
    char *out = cap_end(&cap, &len);
    assert_true(len > n);
    assert_non_null(strstr(out, "xxx\"}\n"));
    free(big);
    free(out);
}

#define THREADS 4
#define LINES 2000

static void *writer(void *arg) {
    long id = (long)arg;
    char pad[300];
    memset(pad, 'a' + (int)id, sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < LINES; i++) log_info("t", LOG_I("thread", id), LOG_I("i", i), LOG_S("pad", pad), LOG_END);
    return NULL;
}

static void test_threads_never_interleave(void **state) {
    (void)state;
    capture cap;
    cap_begin(&cap);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, writer, (void *)i), 0);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    char *out = cap_end(&cap, NULL);
    int lines = 0, counts[THREADS] = {0};
    for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        lines++;
        long id = -1;
        char *p = strstr(l, "\"thread\":");
        assert_non_null(p);
        char *end;
        id = strtol(p + 9, &end, 10);
        assert_true(end != p + 9 && (*end == ',' || *end == '}')); /* a whole number, not a prefix */
        assert_true(id >= 0 && id < THREADS);
        counts[id]++;
        char want[320];
        memset(want, 'a' + (int)id, 299);
        want[299] = '\0';
        assert_non_null(strstr(l, want));
        assert_int_equal(l[0], '{');
        assert_int_equal(l[strlen(l) - 1], '}');
    }
    assert_int_equal(lines, THREADS * LINES);
    for (int i = 0; i < THREADS; i++) assert_int_equal(counts[i], LINES);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_line_shape, reset),
        cmocka_unit_test_setup(test_escaping, reset),
        cmocka_unit_test_setup(test_levels, reset),
        cmocka_unit_test_setup(test_long_line, reset),
        cmocka_unit_test_setup(test_threads_never_interleave, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
