/* test_config.c -- config.h: layers (file < env < flags), flag syntax,
 * booleans, lists, positional arguments, --help, and the error messages
 * that must name what was wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static const config_option opts[] = {
    {"listen", "ADDR", "address to serve on", "[::]:50051"},
    {"redis-url", "URL", "activation store", "redis://127.0.0.1:6379"},
    {"workers", "N", "worker threads", "4"},
    {"verbose", NULL, "log more", NULL},
    {"peer", "ADDR", "a peer (repeatable)", NULL},
    {"secret-thing", "X", NULL, NULL},   /* hidden from --help */
};
#define NOPTS (sizeof opts / sizeof opts[0])
#define PREFIX "PA_TESTCFG"

/* Captures what fd 1 or 2 receives during one config_load call. */
typedef struct capture {
    int fd, saved;
    char path[64];
} capture;

static void cap_begin(capture *c, int fd) {
    fflush(NULL);
    c->fd = fd;
    snprintf(c->path, sizeof c->path, "/tmp/pa-cfgtest-XXXXXX");
    int t = mkstemp(c->path);
    assert_true(t >= 0);
    c->saved = dup(fd);
    dup2(t, fd);
    close(t);
}

static char *cap_end(capture *c) {
    fflush(NULL);
    dup2(c->saved, c->fd);
    close(c->saved);
    FILE *f = fopen(c->path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    unlink(c->path);
    return buf;
}

static config *load(int argc, char **argv, int *code) {
    return config_load("testprog [OPTIONS]", opts, NOPTS, PREFIX, argc, argv, code);
}

/* Loads with stderr captured; returns the config and *msg the stderr text. */
static config *load_err(int argc, char **argv, int *code, char **msg) {
    capture cap;
    cap_begin(&cap, 2);
    config *c = load(argc, argv, code);
    *msg = cap_end(&cap);
    return c;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int clear_env(void **state) {
    (void)state;
    const char *names[] = {"LISTEN", "REDIS_URL", "WORKERS", "VERBOSE", "PEER", "CONFIG", "SECRET_THING"};
    char buf[64];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(buf, sizeof buf, PREFIX "_%s", names[i]);
        unsetenv(buf);
    }
    return 0;
}

static void test_defaults(void **state) {
    (void)state;
    char *argv[] = {"prog", NULL};
    int code = -1;
    config *c = load(1, argv, &code);
    assert_non_null(c);
    assert_int_equal(code, 0);
    assert_string_equal(config_get(c, "listen"), "[::]:50051");
    assert_null(config_get(c, "peer"));
    assert_false(config_get_bool(c, "verbose"));
    bool ok = true;
    assert_int_equal(config_get_int(c, "workers", 1, 64, &ok), 4);
    assert_true(ok);
    assert_null(config_get(c, "no-such-option"));
    config_free(c);
}

static void test_layers_flags_win(void **state) {
    (void)state;
    char path[] = "/tmp/pa-cfgtest-fileXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "# a comment\n\n  listen = 1.2.3.4:1   \nworkers=8\nredis_url = \"redis://file:1\"\n"
                     "verbose = yes\n");
    setenv(PREFIX "_WORKERS", "16", 1);
    setenv(PREFIX "_REDIS_URL", "redis://env:2", 1);
    char *argv[] = {"prog", "--config", path, "--redis-url=redis://flag:3", NULL};
    int code;
    config *c = load(4, argv, &code);
    assert_non_null(c);
    assert_string_equal(config_get(c, "listen"), "1.2.3.4:1");          /* file over default */
    assert_string_equal(config_get(c, "workers"), "16");                 /* env over file */
    assert_string_equal(config_get(c, "redis-url"), "redis://flag:3");   /* flag over env */
    assert_true(config_get_bool(c, "verbose"));
    config_free(c);

    /* The config file may also be named by the environment. */
    setenv(PREFIX "_CONFIG", path, 1);
    char *argv2[] = {"prog", NULL};
    c = load(1, argv2, &code);
    assert_non_null(c);
    assert_string_equal(config_get(c, "listen"), "1.2.3.4:1");
    config_free(c);
    unlink(path);
}

static void test_flag_syntax_and_booleans(void **state) {
    (void)state;
    char *argv[] = {"prog", "--listen", "a:1", "--verbose", "pos1", "--workers=7", "pos2", "--", "--not-a-flag", NULL};
    int code;
    config *c = load(9, argv, &code);
    assert_non_null(c);
    assert_string_equal(config_get(c, "listen"), "a:1");
    assert_true(config_get_bool(c, "verbose"));
    bool ok = true;
    assert_int_equal(config_get_int(c, "workers", 1, 64, &ok), 7);
    char *const *args;
    assert_int_equal(config_args(c, &args), 3);
    assert_string_equal(args[0], "pos1");
    assert_string_equal(args[1], "pos2");
    assert_string_equal(args[2], "--not-a-flag");
    config_free(c);

    /* --no-NAME clears a switch an environment variable set. */
    setenv(PREFIX "_VERBOSE", "on", 1);
    char *argv2[] = {"prog", "--no-verbose", NULL};
    c = load(2, argv2, &code);
    assert_non_null(c);
    assert_false(config_get_bool(c, "verbose"));
    config_free(c);
    char *argv3[] = {"prog", "--verbose=false", NULL};
    c = load(2, argv3, &code);
    assert_non_null(c);
    assert_false(config_get_bool(c, "verbose"));
    config_free(c);
}

static void test_lists(void **state) {
    (void)state;
    const char *const *v;
    int code;
    setenv(PREFIX "_PEER", " a:1 , b:2,,c:3 ", 1);
    char *argv[] = {"prog", NULL};
    config *c = load(1, argv, &code);
    assert_non_null(c);
    assert_int_equal(config_get_list(c, "peer", &v), 3);
    assert_string_equal(v[0], "a:1");
    assert_string_equal(v[1], "b:2");
    assert_string_equal(v[2], "c:3");
    config_free(c);

    char *argv2[] = {"prog", "--peer", "x:1", "--peer=y:2", NULL};
    c = load(4, argv2, &code);
    assert_non_null(c);
    assert_int_equal(config_get_list(c, "peer", &v), 2);   /* flags replace the env list */
    assert_string_equal(v[0], "x:1");
    assert_string_equal(v[1], "y:2");
    assert_string_equal(config_get(c, "peer"), "y:2");
    config_free(c);
}

static void test_errors_name_the_problem(void **state) {
    (void)state;
    int code = 0;
    char *msg;
    char *a1[] = {"prog", "--lisen", "x", NULL};
    assert_null(load_err(3, a1, &code, &msg));
    assert_int_equal(code, 2);
    assert_non_null(strstr(msg, "unknown option --lisen"));
    free(msg);

    char *a2[] = {"prog", "--listen", NULL};
    assert_null(load_err(2, a2, &code, &msg));
    assert_non_null(strstr(msg, "--listen needs a value (ADDR)"));
    free(msg);

    char *a3[] = {"prog", "--listen", "--verbose", NULL};
    assert_null(load_err(3, a3, &code, &msg));
    assert_non_null(strstr(msg, "--listen needs a value"));
    free(msg);

    char *a4[] = {"prog", "-x", NULL};
    assert_null(load_err(2, a4, &code, &msg));
    assert_non_null(strstr(msg, "unknown option -x"));
    free(msg);

    setenv(PREFIX "_VERBOSE", "maybe", 1);
    char *a5[] = {"prog", NULL};
    assert_null(load_err(1, a5, &code, &msg));
    assert_non_null(strstr(msg, "PA_TESTCFG_VERBOSE"));
    assert_non_null(strstr(msg, "maybe"));
    free(msg);
    unsetenv(PREFIX "_VERBOSE");

    char path[] = "/tmp/pa-cfgtest-badXXXXXX";
    int fd = mkstemp(path);
    close(fd);
    write_file(path, "listen = a\n# fine\nbogus = 1\n");
    char *a6[] = {"prog", "--config", path, NULL};
    assert_null(load_err(3, a6, &code, &msg));
    char want[128];
    snprintf(want, sizeof want, "%s:3: unknown option 'bogus'", path);
    assert_non_null(strstr(msg, want));
    free(msg);
    write_file(path, "listen a\n");
    assert_null(load_err(3, a6, &code, &msg));
    snprintf(want, sizeof want, "%s:1: expected 'name = value'", path);
    assert_non_null(strstr(msg, want));
    free(msg);
    unlink(path);
    char *a7[] = {"prog", "--config", "/nonexistent/pa.conf", NULL};
    assert_null(load_err(3, a7, &code, &msg));
    assert_non_null(strstr(msg, "/nonexistent/pa.conf"));
    free(msg);
}

static void test_int_and_double_ranges(void **state) {
    (void)state;
    int code;
    char *argv[] = {"prog", "--workers", "99", "--listen", "12x", NULL};
    config *c = load(5, argv, &code);
    assert_non_null(c);
    capture cap;
    bool ok = true;
    cap_begin(&cap, 2);
    long long w = config_get_int(c, "workers", 1, 64, &ok);
    char *msg = cap_end(&cap);
    assert_int_equal(w, -1);
    assert_false(ok);
    assert_non_null(strstr(msg, "--workers"));
    assert_non_null(strstr(msg, "out of range"));
    free(msg);
    ok = true;
    cap_begin(&cap, 2);
    config_get_int(c, "listen", 0, 100, &ok);
    msg = cap_end(&cap);
    assert_false(ok);
    assert_non_null(strstr(msg, "'12x' is not an integer"));
    free(msg);
    ok = true;
    assert_true(config_get_double(c, "workers", 0, 100, &ok) == 99.0);
    assert_true(ok);
    config_free(c);
}

static void test_help(void **state) {
    (void)state;
    int code = -1;
    char *argv[] = {"prog", "--workers", "3", "--help", NULL};
    capture cap;
    cap_begin(&cap, 1);
    config *c = load(4, argv, &code);
    char *out = cap_end(&cap);
    assert_null(c);
    assert_int_equal(code, 0);
    assert_non_null(strstr(out, "Usage: testprog [OPTIONS]"));
    assert_non_null(strstr(out, "--redis-url URL"));
    assert_non_null(strstr(out, "default: redis://127.0.0.1:6379"));
    assert_non_null(strstr(out, "PA_TESTCFG_REDIS_URL"));
    assert_non_null(strstr(out, "--verbose"));
    assert_non_null(strstr(out, "--config FILE"));
    assert_null(strstr(out, "secret-thing"));
    free(out);
}

static void test_hidden_option_accepted(void **state) {
    (void)state;
    int code;
    char *argv[] = {"prog", "--secret-thing", "v", NULL};
    config *c = load(3, argv, &code);
    assert_non_null(c);
    assert_string_equal(config_get(c, "secret-thing"), "v");
    config_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_layers_flags_win, clear_env),
        cmocka_unit_test_setup(test_flag_syntax_and_booleans, clear_env),
        cmocka_unit_test_setup(test_lists, clear_env),
        cmocka_unit_test_setup(test_errors_name_the_problem, clear_env),
        cmocka_unit_test_setup(test_int_and_double_ranges, clear_env),
        cmocka_unit_test_setup(test_help, clear_env),
        cmocka_unit_test_setup(test_hidden_option_accepted, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
