/* test_client_kill.c -- the client killed at every step of writing its
 * state (docs/machines.md, "State on disk"). kill_shim.so, preloaded into
 * `activate`, raises SIGKILL at the Nth write, fsync, close, rename, link or
 * unlink in the state directory; N runs over every step of an activation
 * (from an empty state directory) and of a renewal (of an activated one).
 * After each kill the state holds the old license or the new one -- `activate
 * status` answers 0 or, before the first license, 4, never 5 (damaged) --
 * and the next run without the shim works: activating again costs no
 * second place, renewing renews. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client_env.h"

#define KILLED 137 /* 128 + SIGKILL */

static client_env env;
static char key[KEY_TEXT];

static int setup(void **state) {
    const char *g[] = {"--max-machines", "1", "--lease-seconds", "3600", "--renew-seconds", "1", NULL};
    if (env_start(&env) == 0 && env_start_server(&env, 0, NULL) == 0 && env_group(&env, 601, g) == 0 &&
        env_keys(&env, 601, 1, &key) == 0)
        return 0;
    env_stop(&env);
    return -1;
}

static int teardown(void **state) {
    env_stop(&env);
    return 0;
}

static void set_env(const char *name, const char *value) { assert_int_equal(setenv(name, value, 1), 0); }

/* `activate ARGS --server S` on machine "k"; with `at` >= 0 under the shim
 * (0: count only), each step logged to `log` when given. */
static int run(long at, const char *log, const char *const *args, char **out) {
    char root[300], state[300], n[24];
    env_machine(&env, "k", root, state);
    if (at >= 0) {
        snprintf(n, sizeof n, "%ld", at);
        set_env("LD_PRELOAD", fixture_bin("tests/client/kill_shim.so"));
        set_env("PA_KILL_DIR", state);
        set_env("PA_KILL_AT", n);
        set_env("ASAN_OPTIONS", "verify_asan_link_order=0"); /* the shim comes first in a sanitized build */
        if (log) set_env("PA_KILL_LOG", log);
    }
    const char *argv[16];
    size_t k = 0;
    for (; args[k]; k++) argv[k] = args[k];
    argv[k++] = "--server";
    argv[k++] = env.target[0];
    argv[k] = NULL;
    int rc = env_activate_cli(&env, root, state, argv, out);
    unsetenv("LD_PRELOAD");
    unsetenv("PA_KILL_DIR");
    unsetenv("PA_KILL_AT");
    unsetenv("PA_KILL_LOG");
    unsetenv("ASAN_OPTIONS");
    return rc;
}

/* Replaces directory `to` by a copy of `from` (NULL: an empty one). */
static void replace_dir(const char *to, const char *from) {
    char cmd[1400];
    if (from) snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
    else snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", to, to);
    assert_int_equal(system(cmd), 0);
}

/* The state directory of machine "k" replaced by a copy of `from` (NULL:
 * emptied). */
static void restore(const char *from) {
    char state[400];
    snprintf(state, sizeof state, "%s/state/k", env.dir);
    replace_dir(state, from);
}

/* Steps of one run, counted from the shim's log. */
static long count_steps(const char *const *args) {
    char log[400], line[1200];
    snprintf(log, sizeof log, "%s/kill-steps.log", env.dir);
    remove(log);
    assert_int_equal(run(0, log, args, NULL), 0);
    FILE *fp = fopen(log, "r");
    assert_non_null(fp);
    long n = 0;
    while (fgets(line, sizeof line, fp)) {
        fprintf(stderr, "  step %s", line);
        n++;
    }
    fclose(fp);
    return n;
}

static void status_is_whole(const int allowed_not_activated, long long *expires) {
    char *out;
    int rc = run(-1, NULL, (const char *[]){"status", NULL}, &out);
    if (rc == 4 && allowed_not_activated) {
        free(out);
        return;
    }
    assert_int_equal(rc, 0); /* never 5: a half-written file */
    if (expires) *expires = json_int(out, "expires_at");
    free(out);
}

static void killed_activation_leaves_no_or_the_new_license(void **state) {
    const char *activate[] = {key, NULL};
    restore(NULL);
    long total = count_steps(activate);
    assert_true(total >= 10); /* place key, last server, clock, license: each written in steps */
    for (long at = 1; at <= total; at++) {
        restore(NULL);
        assert_int_equal(run(at, NULL, activate, NULL), KILLED);
        status_is_whole(1, NULL);
        char *out;
        assert_int_equal(run(-1, NULL, activate, &out), 0);
        assert_int_equal(json_int(out, "activation_count"), 1); /* the same place again */
        free(out);
    }
    restore(NULL);
    assert_int_equal(run(total + 1, NULL, activate, NULL), 0); /* past the last step: not killed */
}

static void killed_renewal_leaves_the_old_or_the_new_license(void **state) {
    const char *activate[] = {key, NULL}, *renew[] = {"renew", NULL};
    char tpl[400];
    restore(NULL);
    assert_int_equal(run(-1, NULL, activate, NULL), 0);
    long long old_exp = 0, exp = 0;
    status_is_whole(0, &old_exp);
    char state_k[400];
    snprintf(tpl, sizeof tpl, "%s/kill-template", env.dir);
    snprintf(state_k, sizeof state_k, "%s/state/k", env.dir);
    replace_dir(tpl, state_k);
    long total = count_steps(renew);
    assert_true(total >= 4);
    for (long at = 1; at <= total; at++) {
        restore(tpl);
        assert_int_equal(run(at, NULL, renew, NULL), KILLED);
        status_is_whole(0, &exp);
        assert_true(exp >= old_exp); /* the old license, or the renewed one */
        assert_int_equal(run(-1, NULL, renew, NULL), 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(killed_activation_leaves_no_or_the_new_license),
        cmocka_unit_test(killed_renewal_leaves_the_old_or_the_new_license),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
