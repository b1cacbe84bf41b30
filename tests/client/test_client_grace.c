/* test_client_grace.c -- offline life against a real activation server
 * (docs/machines.md, "Grace period", "Clock tampering"): a lease of 3 s with
 * 4 s of grace. Past expires_at the copy keeps its license (status 0 with
 * the grace left) and the server still renews it; with the server down it
 * keeps working through the grace and is expired after it, and the server,
 * back, says the lease lapsed. A full key does not reclaim a place in its
 * grace, nor does retention forget it. A machine whose clock is turned back (the
 * CLI's --clock-offset, for tests) is told so (exit 23) and renews nothing;
 * a license whose issue time is far from our clock -- a server in our
 * future or past -- is refused and nothing is stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client_env.h"

#define EXIT_EXPIRED 6
#define EXIT_UNAVAILABLE 12
#define EXIT_LEASE_EXPIRED 17
#define EXIT_CLOCK 23

static client_env env;

static int setup(void **state) {
    if (env_start(&env) == 0 && env_start_server(&env, 0, NULL) == 0) return 0;
    env_stop(&env);
    return -1;
}

static int teardown(void **state) {
    env_stop(&env);
    return 0;
}

#define RUN(m, out, ...) run_on(m, out, (const char *[]){__VA_ARGS__, "--server", env.target[0], NULL})
#define RUN_LOCAL(m, out, ...) run_on(m, out, (const char *[]){__VA_ARGS__, NULL})

static int run_on(const char *machine, char **out, const char **args) {
    char root[300], state[300];
    env_machine(&env, machine, root, state);
    return env_activate_cli(&env, root, state, args, out);
}

/* Sleeps until the wall clock has passed `t` (unix seconds) by a little. */
static void sleep_past(long long t) {
    while ((long long)time(NULL) <= t) usleep(100 * 1000);
    usleep(300 * 1000);
}

static void grace_keeps_the_copy_and_the_server_renews_within_it(void **state) {
    const char *g[] = {"--lease-seconds", "3", "--renew-seconds", "1", "--grace", "4", NULL};
    assert_int_equal(env_group(&env, 701, g), 0);
    char keys[1][KEY_TEXT], *out;
    assert_int_equal(env_keys(&env, 701, 1, keys), 0);
    assert_int_equal(RUN("g1", &out, keys[0]), 0);
    long long exp = json_int(out, "expires_at");
    assert_int_equal(json_int(out, "grace_left"), 0);
    free(out);

    /* Past the lease, inside the grace: still licensed, and renewable. */
    sleep_past(exp);
    assert_int_equal(RUN_LOCAL("g1", &out, "status"), 0);
    assert_true(json_int(out, "grace_left") > 0 && json_int(out, "grace_left") <= 4);
    assert_non_null(strstr(out, "grace period"));
    free(out);
    assert_int_equal(RUN("g1", &out, "renew"), 0);
    long long exp2 = json_int(out, "expires_at");
    assert_true(exp2 > exp);
    assert_int_equal(json_int(out, "grace_left"), 0);
    free(out);

    /* The server goes away: the grace carries the copy, then it expires. */
    env_stop_server(&env, 0);
    sleep_past(exp2);
    assert_int_equal(RUN_LOCAL("g1", &out, "status"), 0);
    long long left = json_int(out, "grace_left");
    assert_true(left > 0 && left <= 4);
    free(out);
    assert_int_equal(RUN("g1", NULL, "maintain"), EXIT_UNAVAILABLE); /* tries, and keeps the license */
    assert_int_equal(RUN_LOCAL("g1", NULL, "status"), 0);
    sleep_past(exp2 + 4);
    assert_int_equal(RUN_LOCAL("g1", &out, "status"), EXIT_EXPIRED);
    assert_non_null(strstr(out, "grace period has ended"));
    free(out);

    /* Back, the server holds the place no longer: the lease lapsed. */
    assert_int_equal(env_restart_server(&env, 0, NULL), 0);
    assert_int_equal(RUN("g1", &out, "renew"), EXIT_LEASE_EXPIRED);
    free(out);
    /* With the key, maintain takes the place again. */
    char key_file[400];
    snprintf(key_file, sizeof key_file, "%s/g1.key", env.dir);
    FILE *fp = fopen(key_file, "w");
    assert_non_null(fp);
    fprintf(fp, "%s\n", keys[0]);
    fclose(fp);
    assert_int_equal(RUN("g1", NULL, "maintain", "--key-file", key_file), 0);
    assert_int_equal(RUN_LOCAL("g1", NULL, "status"), 0);
}

static void without_grace_the_server_refuses_a_lapsed_lease(void **state) {
    const char *g[] = {"--lease-seconds", "2", "--renew-seconds", "1", NULL};
    assert_int_equal(env_group(&env, 702, g), 0);
    char keys[1][KEY_TEXT], *out;
    assert_int_equal(env_keys(&env, 702, 1, keys), 0);
    assert_int_equal(RUN("n1", &out, keys[0]), 0);
    long long exp = json_int(out, "expires_at");
    free(out);
    sleep_past(exp);
    assert_int_equal(RUN_LOCAL("n1", NULL, "status"), EXIT_EXPIRED);
    assert_int_equal(RUN("n1", NULL, "renew"), EXIT_LEASE_EXPIRED);
}

/* A full key does not hand a place in its grace period to another machine;
 * once the grace is over, it does. */
static void place_in_grace_is_not_reclaimed(void **state) {
    const char *g[] = {"--max-machines", "1", "--lease-seconds", "2", "--renew-seconds", "1", "--grace", "3", NULL};
    assert_int_equal(env_group(&env, 705, g), 0);
    char keys[1][KEY_TEXT], *out;
    assert_int_equal(env_keys(&env, 705, 1, keys), 0);
    assert_int_equal(RUN("r1", &out, keys[0]), 0);
    long long exp = json_int(out, "expires_at");
    free(out);
    sleep_past(exp);
    assert_int_equal(RUN("r2", NULL, keys[0]), 9); /* r1's place is in its grace: no place */
    sleep_past(exp + 3);
    assert_int_equal(RUN("r2", NULL, keys[0]), 0);  /* lapsed for good: reclaimed */
    assert_int_equal(RUN("r1", NULL, "renew"), 11); /* its place is gone: not found */
}

/* A server that forgets places 1 s after they lapse (--place-retention-s 1)
 * still holds one through its 3 s of grace: Redis does not expire the
 * record early, and Renew inside the grace succeeds. */
static void retention_waits_for_the_grace(void **state) {
    const char *flags[] = {"--place-retention-s", "1", NULL};
    assert_int_equal(env_start_server(&env, 1, flags), 0);
    const char *g[] = {"--lease-seconds", "2", "--renew-seconds", "1", "--grace", "3", NULL};
    assert_int_equal(env_group(&env, 706, g), 0);
    char keys[1][KEY_TEXT], *out;
    assert_int_equal(env_keys(&env, 706, 1, keys), 0);
    const char *activate[] = {keys[0], "--server", env.target[1], NULL};
    assert_int_equal(run_on("t1", &out, activate), 0);
    long long exp = json_int(out, "expires_at");
    free(out);
    sleep_past(exp + 1); /* past the lease and the retention, inside the grace */
    const char *renew[] = {"renew", "--server", env.target[1], NULL};
    assert_int_equal(run_on("t1", &out, renew), 0);
    free(out);
    env_stop_server(&env, 1);
}

static void clock_turned_back_is_refused_and_renews_nothing(void **state) {
    const char *g[] = {"--lease-seconds", "3600", "--renew-seconds", "1", NULL};
    assert_int_equal(env_group(&env, 703, g), 0);
    char keys[1][KEY_TEXT], *out;
    assert_int_equal(env_keys(&env, 703, 1, keys), 0);
    assert_int_equal(RUN("c1", &out, keys[0]), 0);
    long long exp = json_int(out, "expires_at");
    free(out);
    assert_int_equal(RUN_LOCAL("c1", &out, "status", "--clock-offset", "-1000"), EXIT_CLOCK);
    assert_non_null(strstr(out, "\"result\":\"clock\""));
    assert_non_null(strstr(out, "set the clock right")); /* behind the license's issue time, and what was seen */
    free(out);
    assert_int_equal(RUN("c1", NULL, "renew", "--clock-offset", "-1000"), EXIT_CLOCK);
    assert_int_equal(RUN("c1", NULL, "maintain", "--clock-offset", "-1000"), EXIT_CLOCK);
    assert_int_equal(RUN_LOCAL("c1", &out, "status"), 0);
    assert_int_equal(json_int(out, "expires_at"), exp); /* nothing was renewed */
    free(out);
    /* A wider allowance accepts the same clock. */
    assert_int_equal(RUN_LOCAL("c1", NULL, "status", "--clock-offset", "-1000", "--max-clock-skew", "2000"), 0);
}

static void license_far_from_our_clock_is_refused(void **state) {
    const char *g[] = {"--max-machines", "3", NULL};
    assert_int_equal(env_group(&env, 704, g), 0);
    char keys[1][KEY_TEXT], *out;
    assert_int_equal(env_keys(&env, 704, 1, keys), 0);
    /* Our clock 1000 s behind: the server's license is issued in our future. */
    assert_int_equal(RUN("f1", &out, keys[0], "--clock-offset", "-1000"), EXIT_CLOCK);
    assert_non_null(strstr(out, "differ by"));
    free(out);
    assert_int_equal(RUN_LOCAL("f1", NULL, "status", "--clock-offset", "-1000"), 4); /* nothing stored */
    /* ... or in our past. */
    assert_int_equal(RUN("f2", NULL, keys[0], "--clock-offset", "1000"), EXIT_CLOCK);
    assert_int_equal(RUN_LOCAL("f2", NULL, "status", "--clock-offset", "1000"), 4);
    /* The clock right: activated. */
    assert_int_equal(RUN("f1", NULL, keys[0]), 0);
    assert_int_equal(RUN_LOCAL("f1", NULL, "status"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clock_turned_back_is_refused_and_renews_nothing),
        cmocka_unit_test(license_far_from_our_clock_is_refused),
        cmocka_unit_test(without_grace_the_server_refuses_a_lapsed_lease),
        cmocka_unit_test(place_in_grace_is_not_reclaimed),
        cmocka_unit_test(retention_waits_for_the_grace),
        cmocka_unit_test(grace_keeps_the_copy_and_the_server_renews_within_it),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
