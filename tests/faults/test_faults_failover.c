/* test_faults_failover.c -- SIGTERM of one of two activation servers
 * under load, behind installers that fail over (the fault matrix,
 * docs/testing.md).
 *
 * Installer threads use the client library (client/activate.h) with the
 * server list "first, second", each thread its own fake machine and state
 * directory, activating a fresh key per call. The first server takes the
 * load until it gets SIGTERM: it drains (every call it accepted completes)
 * and exits 0, and the installers go on with the second. Asserted: no
 * installer call fails, and the first server's grants (its log) equal the
 * OK answers the installers received from it -- no call it accepted was
 * lost to the drain. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act_env.h"
#include "fault_installer.h"

enum { GROUP = 402, THREADS = 4, PER_THREAD = 400 };
_Static_assert(FAULT_KEY_SIZE == PK_TEXT_LEN + 1, "keys as the client library takes them");

static act_env env;

static void tune(group_record *r) { r->policy.max_machines = 10; }

static const char *const generous[] = {"--rate-address-per-s", "0", "--rate-group-per-s", "0", NULL};

static char *read_file(const char *path) {
    char *argv[] = {"/bin/cat", (char *)path, NULL}, *out = NULL;
    return fixture_run(argv, &out, NULL) == 0 ? out : (free(out), NULL);
}

/* activate.granted events in a server log (one server per log). */
static unsigned grants_in(const char *log) {
    unsigned n = 0;
    for (const char *p = log; (p = strstr(p, "\"event\":\"activate.granted\"")); p++) n++;
    return n;
}

static void test_sigterm_one_of_two(void **state) {
    (void)state;
    assert_int_equal(env_start_stores(&env), 0);
    assert_int_equal(env_create_group(&env, GROUP, tune), 0);
    /* The first server, then the second with its own log. */
    assert_int_equal(env_start_server(&env, generous), 0);
    pid_t first = env.server;
    char first_target[64], first_log[300];
    snprintf(first_target, sizeof first_target, "%s", env.target);
    snprintf(first_log, sizeof first_log, "%s", env.log_path);
    rpc_channel_free(env.ch);
    env.ch = NULL;
    snprintf(env.log_path, sizeof env.log_path, "%s/second.log", env.dir);
    assert_int_equal(env_start_server(&env, generous), 0);
    const char *servers[] = {first_target, env.target};
    char *pem = read_file(env.public_key);
    assert_non_null(pem);

    static fault_installer in[THREADS];
    static char keys[THREADS][PER_THREAD][FAULT_KEY_SIZE];
    volatile int stop = 0;
    for (unsigned i = 0; i < THREADS; i++) {
        in[i] = (fault_installer){.servers = servers,
                                  .n_servers = 2,
                                  .pem = pem,
                                  .keys = (const char(*)[FAULT_KEY_SIZE])keys[i],
                                  .n_keys = PER_THREAD,
                                  .stop = &stop};
        for (unsigned k = 0; k < PER_THREAD; k++)
            assert_int_equal(env_make_key(&env, GROUP, i * PER_THREAD + k + 1, false, 0, keys[i][k]), 0);
        char name[32];
        snprintf(name, sizeof name, "installer-%u", i);
        fault_installer_machine(&in[i], env.dir, name, i);
    }
    for (unsigned i = 0; i < THREADS; i++) assert_int_equal(fault_installer_start(&in[i]), 0);
    usleep(1000 * 1000);
    int status = fixture_stop(first, SIGTERM, 20000);
    usleep(1000 * 1000);
    stop = 1;
    unsigned ok_first = 0, ok_second = 0, failed = 0;
    for (unsigned i = 0; i < THREADS; i++) {
        fault_installer_join(&in[i]);
        ok_first += in[i].ok_first;
        ok_second += in[i].ok_other;
        failed += in[i].failed;
        if (in[i].failed) fprintf(stderr, "installer %u: %u failed, first: %s\n", i, in[i].failed, in[i].failure);
    }
    char *log = read_file(first_log);
    assert_non_null(log);
    unsigned granted = grants_in(log);
    printf(
        "  SIGTERM of the first of two servers: %u OK from the first (%u grants in its log), "
        "%u OK from the second, %u failed; first server exit status %d\n",
        ok_first, granted, ok_second, failed, status);
    assert_int_equal(status, 0);
    assert_int_equal(failed, 0);
    assert_true(ok_first > 20);
    assert_true(ok_second > 20);
    assert_int_equal(granted, ok_first);
    assert_non_null(strstr(log, "\"event\":\"server.stopped\",\"cancelled_calls\":0"));
    free(log);
    free(pem);
    env_stop(&env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_one_of_two),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
