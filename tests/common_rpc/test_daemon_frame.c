/* test_daemon_frame.c -- the frame every daemon runs in (common/daemon.h)
 * and its background tasks (common/task.h): the same options (the transport
 * limits included), messages and exit codes in every daemon, and a stop that
 * cuts a sleep short. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fixture.h"
#include "task.h"

static const char *const DAEMONS[] = {"activation-server/activation-server", "audit-server/audit-server"};

static int run_daemon(const char *rel, const char *a1, const char *a2, char **out, char **err) {
    char bin[512];
    snprintf(bin, sizeof bin, "%s", fixture_bin(rel));
    char *argv[] = {bin, (char *)a1, (char *)a2, NULL};
    return fixture_run(argv, out, err);
}

static void test_every_daemon_has_the_frame_options(void **state) {
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        char *out, *err;
        assert_int_equal(run_daemon(DAEMONS[i], "--help", NULL, &out, &err), 0);
        const char *frame[] = {"--listen ADDR",
                               "--metrics-listen ADDR",
                               "--drain-ms MS",
                               "--log-level LEVEL",
                               "--max-connections-per-address N",
                               "--max-concurrent-streams N",
                               "--handshake-timeout-ms MS",
                               "--max-connection-idle-ms MS",
                               "--max-connection-age-ms MS",
                               "--max-connection-age-grace-ms MS",
                               "--min-ping-interval-ms MS",
                               "--max-ping-strikes N",
                               "--memory-limit-mb MB"};
        for (size_t k = 0; k < sizeof frame / sizeof *frame; k++) {
            if (!strstr(out, frame[k])) fprintf(stderr, "%s --help lacks %s\n", DAEMONS[i], frame[k]);
            assert_non_null(strstr(out, frame[k]));
        }
        assert_null(strstr(out, "--grace-ms"));
        free(out);
        free(err);
    }
}

static void test_every_daemon_refuses_alike(void **state) {
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        char *out, *err;
        assert_int_equal(run_daemon(DAEMONS[i], "--log-level", "loud", &out, &err), 2);
        assert_non_null(strstr(err, "error: bad --log-level (debug, info, warn or error)"));
        free(out);
        free(err);
        assert_int_equal(run_daemon(DAEMONS[i], "--drain-ms", "-5", &out, &err), 2);
        assert_non_null(strstr(err, "drain-ms"));
        free(out);
        free(err);
        assert_int_equal(run_daemon(DAEMONS[i], "--max-connections-per-address", "0", &out, &err), 2);
        assert_non_null(strstr(err, "max-connections-per-address"));
        free(out);
        free(err);
        assert_int_equal(run_daemon(DAEMONS[i], "stray", NULL, &out, &err), 2);
        assert_non_null(strstr(err, "error: unexpected argument 'stray'"));
        free(out);
        free(err);
        /* The secrets are required before anything starts. */
        assert_int_equal(run_daemon(DAEMONS[i], "--metrics-listen", "off", &out, &err), 2);
        assert_non_null(strstr(err, "error: --kek is required"));
        free(out);
        free(err);
    }
}

typedef struct sleeper {
    atomic_int rounds; /* loop iterations done */
    atomic_int woken;  /* task_sleep returned false */
} sleeper;

static void sleepy_loop(task *t, void *arg) {
    sleeper *s = arg;
    while (!task_stopping(t)) {
        atomic_fetch_add(&s->rounds, 1);
        if (!task_sleep(t, 60000)) atomic_store(&s->woken, 1);
    }
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_task_stop_wakes_a_sleep(void **state) {
    (void)state;
    sleeper s = {0};
    char err[128];
    task *t = task_start("sleepy", sleepy_loop, &s, err, sizeof err);
    assert_non_null(t);
    while (atomic_load(&s.rounds) == 0) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    double t0 = mono_s();
    task_stop(t); /* the loop sleeps 60 s: only the wake-up can end it early */
    assert_true(mono_s() - t0 < 30.0);
    assert_int_equal(atomic_load(&s.woken), 1);
    assert_int_equal(atomic_load(&s.rounds), 1);
}

static void count_loop(task *t, void *arg) {
    sleeper *s = arg;
    while (task_sleep(t, 1)) atomic_fetch_add(&s->rounds, 1);
}

static void test_task_sleep_times_out(void **state) {
    (void)state;
    sleeper s = {0};
    char err[128];
    task *t = task_start("counter", count_loop, &s, err, sizeof err);
    assert_non_null(t);
    while (atomic_load(&s.rounds) < 3) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    task_request_stop(t);
    task_request_stop(t); /* twice is fine */
    task_stop(t);
    task_stop(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_daemon_has_the_frame_options),
        cmocka_unit_test(test_every_daemon_refuses_alike),
        cmocka_unit_test(test_task_stop_wakes_a_sleep),
        cmocka_unit_test(test_task_sleep_times_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
