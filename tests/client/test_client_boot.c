/* test_client_boot.c -- activation at boot (docs/machines.md, "Activation
 * at boot"), the way activate-boot.service runs it:
 * `activate --non-interactive --wait-online SECONDS maintain --key-file F`.
 * No server for 3 s, then one: activated within the wait. No server ever:
 * exit 12 once the wait is over, nothing stored. Nothing due (activated,
 * permanent license): no wait at all, even with no server. On a terminal,
 * --non-interactive never prompts (a control run without it does), and it
 * never reads a key from stdin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client_env.h"
#include "clock.h"

#define EXIT_USAGE 2
#define EXIT_IO 15
#define EXIT_UNAVAILABLE 12

static client_env env;
static char keys[2][KEY_TEXT];
static char key_file[2][400];

static int setup(void **state) {
    if (env_start(&env) != 0 || env_start_server(&env, 0, NULL) != 0 || env_group(&env, 801, NULL) != 0 ||
        env_keys(&env, 801, 2, keys) != 0) {
        env_stop(&env);
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        snprintf(key_file[i], sizeof key_file[i], "%s/boot%d.key", env.dir, i);
        FILE *fp = fopen(key_file[i], "w");
        if (!fp) return -1;
        fprintf(fp, "%s\n", keys[i]);
        fclose(fp);
    }
    return 0;
}

static int teardown(void **state) {
    env_stop(&env);
    return 0;
}

static int run_on(const char *machine, char **out, const char **args) {
    char root[300], state[300];
    env_machine(&env, machine, root, state);
    return env_activate_cli(&env, root, state, args, out);
}

/* The boot step on `machine` with key `k`, waiting up to `wait` seconds. */
static int boot_step(const char *machine, int k, const char *wait) {
    const char *args[] = {"--non-interactive", "--wait-online", wait,          "maintain", "--key-file",
                          key_file[k],         "--server",      env.target[0], NULL};
    return run_on(machine, NULL, args);
}

/* The boot step in a thread, so the test's own thread can bring the server
 * up meanwhile (and stay the parent of the servers it starts: a child of a
 * thread that ends is killed with it). */
typedef struct boot_run {
    int rc;      /* the step's exit code */
    double took; /* seconds it ran */
} boot_run;

static void *boot_in_thread(void *arg) {
    boot_run *r = arg;
    double t0 = pa_mono_s();
    r->rc = boot_step("b1", 0, "30");
    r->took = pa_mono_s() - t0;
    return NULL;
}

static void server_coming_up_late_is_waited_for(void **state) {
    env_stop_server(&env, 0);
    pthread_t t;
    boot_run r = {-1, 0};
    assert_int_equal(pthread_create(&t, NULL, boot_in_thread, &r), 0);
    sleep(3);
    int started = env_restart_server(&env, 0, NULL);
    pthread_join(t, NULL);
    assert_int_equal(started, 0);
    assert_int_equal(r.rc, 0);
    assert_true(r.took >= 2.5); /* it did wait for the server */
    assert_int_equal(run_on("b1", NULL, (const char *[]){"status", NULL}), 0);
}

static void no_server_ever_is_exit_12_after_the_wait(void **state) {
    env_stop_server(&env, 0);
    char *out;
    double t0 = pa_mono_s();
    const char *args[] = {"--non-interactive", "--wait-online", "3",           "maintain", "--key-file",
                          key_file[1],         "--server",      env.target[0], NULL};
    int rc = run_on("b2", &out, args);
    double took = pa_mono_s() - t0;
    assert_int_equal(rc, EXIT_UNAVAILABLE);
    assert_non_null(strstr(out, "within 3 s"));
    free(out);
    assert_true(took >= 2.5);
    assert_int_equal(run_on("b2", NULL, (const char *[]){"status", NULL}), 4); /* the command did not run */
    /* Already activated with a permanent license: nothing is due, no wait. */
    t0 = pa_mono_s();
    assert_int_equal(boot_step("b1", 0, "30"), 0);
    assert_true(pa_mono_s() - t0 < 25);
    assert_int_equal(env_restart_server(&env, 0, NULL), 0);
}

/* Runs `activate` on a pseudo-terminal (script(1)); returns its exit code
 * and what it printed. */
static int on_a_terminal(bool non_interactive, char **out) {
    char root[300], state[300], cmd[2048], log[400];
    env_machine(&env, "tty", root, state);
    snprintf(log, sizeof log, "%s/tty.out", env.dir);
    snprintf(cmd, sizeof cmd,
             "timeout 20 script -qec '%s %s--state-dir %s --facts-root %s --public-key %s --insecure --server %s' "
             "/dev/null </dev/null >%s 2>&1",
             fixture_bin("client/activate"), non_interactive ? "--non-interactive " : "", state, root, env.public_key,
             env.target[0], log);
    int st = system(cmd);
    FILE *fp = fopen(log, "r");
    assert_non_null(fp);
    *out = calloc(1, 4096);
    size_t n = fread(*out, 1, 4095, fp);
    (*out)[n] = '\0';
    fclose(fp);
    fprintf(stderr, "$ %s\n%s\n", cmd, *out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void non_interactive_never_prompts(void **state) {
    char *out;
    assert_int_equal(on_a_terminal(false, &out), 3); /* the control: it asks, and gets no key */
    assert_non_null(strstr(out, "Product key:"));
    free(out);
    assert_int_equal(on_a_terminal(true, &out), EXIT_USAGE);
    assert_null(strstr(out, "Product key:"));
    assert_non_null(strstr(out, "--non-interactive does not ask"));
    free(out);
    /* Nor is a key read from stdin. */
    const char *args[] = {"--non-interactive", "-", "--server", env.target[0], NULL};
    assert_int_equal(run_on("tty", &out, args), EXIT_IO);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(server_coming_up_late_is_waited_for),
        cmocka_unit_test(no_server_ever_is_exit_12_after_the_wait),
        cmocka_unit_test(non_interactive_never_prompts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
