/* test_faults_redis.c -- Redis A failing under load (the fault matrix,
 * docs/testing.md):
 *
 *   - kill -9 of Redis A while clients activate fresh keys, then a restart
 *     from its AOF. With `appendfsync always` every activation a client saw
 *     acknowledged is in the store afterwards (asserted). With `everysec`
 *     (as deployed) the number lost is printed: a kill of the process
 *     leaves what Redis wrote in the kernel's page cache, so only a crash of
 *     the machine itself could lose the last second -- the test cannot cut
 *     the power, so it reports what a process kill loses (expected: none).
 *   - Redis A's disk full (its directory on a small tmpfs, filled up):
 *     Redis refuses writes (MISCONF) while its AOF cannot be written; the
 *     server answers UNAVAILABLE, never a grant it did not store; after
 *     space is freed writes resume, and after a restart from the AOF every
 *     OK answer's activation is there. Needs root (mount); skipped
 *     otherwise.
 *   - the same disk full with `appendfsync always` (a store that must not
 *     answer a write it has not got on disk): Redis 7.0 cannot take back a
 *     write it could not append, so it exits (status 1, "Can't recover from
 *     AOF write error when the AOF fsync policy is 'always'") instead of
 *     refusing writes. The test observes which of the two happened and
 *     prints it; either way the server answers only OK or UNAVAILABLE,
 *     and after space is freed and Redis restarted from its AOF every
 *     acknowledged activation is there and the server answers OK again
 *     without being restarted itself.
 *
 * Figures are printed, never asserted as timing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "act_env.h"
#include "clock.h"
#include "fault_load.h"

enum { GROUP = 401, PER_THREAD = 1500 };

static act_env env;
static bool can_mount; /* root in a private mount namespace: the disk-full test runs */

static void tune(group_record *r) { r->policy.max_machines = 10; }

static const char *const generous[] = {"--rate-address-per-s", "0", "--rate-group-per-s", "0", NULL};

static int setup(void **state) {
    (void)state;
    if (env_start_stores(&env) != 0 || env_create_group(&env, GROUP, tune) != 0) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    env_stop(&env);
    return 0;
}

/* CONFIG SET appendfsync through a connection allowed every command. */
static void set_fsync(const char *policy) {
    redisContext *c = env_measuring_connection(&env);
    assert_non_null(c);
    redisReply *r = redisCommand(c, "CONFIG SET appendfsync %s", policy);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
}

/* Waits until the server answers OK again for a key no one used (serial
 * past the load's keys); returns the seconds it took, or -1. */
static double wait_recovered(uint32_t serial) {
    char key[PK_TEXT_LEN + 1];
    if (env_make_key(&env, GROUP, serial, false, 0, key) != 0) return -1;
    uint8_t m[32];
    env_machine(m, serial);
    double t0 = pa_mono_s();
    while (pa_mono_s() - t0 < 20) {
        rpc_result res;
        grpc_status_code st = env_activate(&env, key, m, sizeof m, &res, NULL);
        rpc_result_clear(&res);
        if (st == GRPC_STATUS_OK) return pa_mono_s() - t0;
        usleep(50 * 1000);
    }
    return -1;
}

/* Load, kill -9 of Redis A after `before_ms`, restart from the AOF; prints
 * the figures; returns how many acknowledged activations are missing. */
static long kill_under_load(const char *policy) {
    set_fsync(policy);
    assert_int_equal(env_start_server(&env, generous), 0);
    fault_load l;
    assert_int_equal(fault_load_prepare(&l, &env, GROUP, PER_THREAD), 0);
    assert_int_equal(fault_load_start(&l), 0);
    usleep(1200 * 1000);
    assert_true(fixture_stop(env.a.pid, SIGKILL, 2000) == 128 + SIGKILL);
    env.a.pid = -1;
    usleep(300 * 1000); /* clients meet the dead store */
    assert_int_equal(redis_fixture_resume(&env.a), 0);
    assert_int_equal(env_keystore_reconnect(&env), 0);
    double back = wait_recovered(PER_THREAD * FAULT_LOAD_THREADS + 1);
    usleep(300 * 1000);
    fault_load_stop(&l);
    if (l.other) fprintf(stderr, "unexpected answers: %u, first %d: %s\n", l.other, l.other_status, l.other_msg);
    unsigned acked;
    long missing = fault_load_missing(&l, &acked);
    printf(
        "  appendfsync %s: %u acknowledged, %u UNAVAILABLE, %ld acknowledged but lost; "
        "the server answered OK %.2f s after Redis A was back\n",
        policy, acked, l.unavailable, missing, back);
    assert_true(back >= 0);
    assert_true(acked > 50);
    assert_int_equal(l.other, 0);
    assert_true(missing >= 0);
    fault_load_free(&l);
    assert_int_equal(env_stop_server(&env), 0);
    return missing;
}

static void test_kill9_appendfsync_always(void **state) {
    (void)state;
    assert_int_equal(kill_under_load("always"), 0);
}

static void test_kill9_appendfsync_everysec(void **state) {
    (void)state;
    long missing = kill_under_load("everysec");
    assert_true(missing <= PER_THREAD * FAULT_LOAD_THREADS); /* sanity only: this is the loss window */
}

/* ---- disk full ---- */

/* Moves Redis A (stopped) onto a tmpfs of `size` mounted over its own
 * directory, so its config and paths stay as they are. */
static void redis_onto_tmpfs(const char *size) {
    char saved[300], opts[64];
    assert_int_equal(redis_fixture_pause(&env.a), 0);
    snprintf(saved, sizeof saved, "%s/redisA-saved", env.dir);
    char *cp_out[] = {"/bin/cp", "-a", env.a.dir, saved, NULL};
    assert_int_equal(fixture_run(cp_out, NULL, NULL), 0);
    snprintf(opts, sizeof opts, "size=%s,mode=0700", size);
    assert_int_equal(mount("tmpfs", env.a.dir, "tmpfs", 0, opts), 0);
    char from[320];
    snprintf(from, sizeof from, "%s/.", saved);
    char *cp_in[] = {"/bin/cp", "-a", from, env.a.dir, NULL};
    assert_int_equal(fixture_run(cp_in, NULL, NULL), 0);
    fixture_rmtree(saved);
    assert_int_equal(redis_fixture_resume(&env.a), 0);
    assert_int_equal(env_keystore_reconnect(&env), 0);
}

/* Fills the file system of `path`'s directory; returns bytes written. */
static long long fill_up(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    static char block[65536];
    long long total = 0;
    for (;;) {
        ssize_t n = write(fd, block, sizeof block);
        if (n <= 0) break;
        total += n;
    }
    if (errno != ENOSPC) fprintf(stderr, "filler stopped: %s\n", strerror(errno));
    assert_int_equal(close(fd), 0);
    return total;
}

/* A disk-full run: Redis A on a full tmpfs under load. */
typedef struct disk_full {
    fault_load load;  /* the client threads and what they saw acknowledged */
    char filler[300]; /* the file that fills the tmpfs */
    long long filled; /* its size */
    double freed_at;  /* pa_mono_s() when the filler was removed */
} disk_full;

/* Redis A onto an 8 MB tmpfs (`policy` set after it restarted there), the
 * server and the load started, then the tmpfs filled up. */
static void disk_full_begin(disk_full *d, const char *policy) {
    redis_onto_tmpfs("8m");
    if (policy) set_fsync(policy);
    assert_int_equal(env_start_server(&env, generous), 0);
    assert_int_equal(fault_load_prepare(&d->load, &env, GROUP, PER_THREAD), 0);
    d->load.pause_ms = 2;
    assert_int_equal(fault_load_start(&d->load), 0);
    usleep(500 * 1000);
    snprintf(d->filler, sizeof d->filler, "%s/filler", env.a.dir);
    d->filled = fill_up(d->filler);
}

static void disk_full_free_space(disk_full *d) {
    assert_int_equal(unlink(d->filler), 0);
    d->freed_at = pa_mono_s();
}

/* Load stopped, Redis A restarted from its AOF; returns how many
 * acknowledged activations it lacks, and the acknowledged count. */
static long disk_full_finish(disk_full *d, unsigned *acked) {
    fault_load *l = &d->load;
    fault_load_stop(l);
    if (l->other) fprintf(stderr, "unexpected answers: %u, first %d: %s\n", l->other, l->other_status, l->other_msg);
    assert_int_equal(redis_fixture_pause(&env.a), 0);
    assert_int_equal(redis_fixture_resume(&env.a), 0);
    assert_int_equal(env_keystore_reconnect(&env), 0);
    return fault_load_missing(l, acked);
}

static void disk_full_end(disk_full *d) {
    fault_load_free(&d->load);
    assert_int_equal(env_stop_server(&env), 0);
    assert_int_equal(redis_fixture_pause(&env.a), 0);
    assert_int_equal(umount(env.a.dir), 0);
}

static void test_disk_full(void **state) {
    (void)state;
    if (!can_mount) skip();
    disk_full d;
    disk_full_begin(&d, NULL);
    usleep(1500 * 1000); /* writes refused meanwhile */
    double refused = env_metric(&env, "pa_redis_errors_total");
    disk_full_free_space(&d);
    double back = wait_recovered(PER_THREAD * FAULT_LOAD_THREADS + 1);
    usleep(300 * 1000);
    unsigned acked;
    long missing = disk_full_finish(&d, &acked);
    fault_load *l = &d.load;
    printf(
        "  disk full (%lld bytes of filler): %u acknowledged, %u UNAVAILABLE (\"%s\"), %ld acknowledged "
        "but lost after the restart; %g Redis errors counted by the server; OK again %.2f s after space "
        "was freed\n",
        d.filled, acked, l->unavailable, l->unavailable_msg, missing, refused, back);
    assert_int_equal(l->other, 0);
    assert_true(l->unavailable > 0); /* the full disk was noticed */
    assert_true(back >= 0);
    assert_int_equal(missing, 0);
    disk_full_end(&d);
}

/* Waits up to `ms` for Redis A to exit by itself; returns its exit status
 * (128 + signal when killed), or -1 while it still runs. */
static int redis_exit_within(int ms) {
    for (double t0 = pa_mono_s(); pa_mono_s() - t0 < ms / 1000.0; usleep(10 * 1000)) {
        int st;
        if (waitpid(env.a.pid, &st, WNOHANG) != env.a.pid) continue;
        env.a.pid = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    return -1;
}

static void test_disk_full_appendfsync_always(void **state) {
    (void)state;
    if (!can_mount) skip();
    disk_full d;
    disk_full_begin(&d, "always");
    double full_at = pa_mono_s();
    int status = redis_exit_within(3000); /* Redis 7.0: exits on the first failed append */
    double exited_after = pa_mono_s() - full_at;
    usleep(1000 * 1000); /* clients meet the dead (or refusing) store */
    disk_full_free_space(&d);
    if (status >= 0) {
        assert_int_equal(redis_fixture_resume(&env.a), 0); /* from the AOF, as a supervisor would */
        assert_int_equal(env_keystore_reconnect(&env), 0);
    }
    double restarted = pa_mono_s() - d.freed_at;
    double back = wait_recovered(PER_THREAD * FAULT_LOAD_THREADS + 1);
    usleep(300 * 1000);
    unsigned acked;
    long missing = disk_full_finish(&d, &acked);
    fault_load *l = &d.load;
    if (status >= 0)
        printf("  appendfsync always, disk full: Redis exited with status %d %.2f s after the disk filled\n", status,
               exited_after);
    else printf("  appendfsync always, disk full: Redis kept running and refused writes\n");
    printf(
        "  appendfsync always, disk full (%lld bytes of filler): %u acknowledged, %u refused (UNAVAILABLE, "
        "\"%s\"), %ld acknowledged but lost after the restart from the AOF; Redis back %.2f s and the server "
        "answering OK %.2f s after space was freed\n",
        d.filled, acked, l->unavailable, l->unavailable_msg, missing, restarted, back + restarted);
    assert_int_equal(l->other, 0);
    assert_true(l->unavailable > 0); /* the failed append was noticed: an exit or a refusal */
    assert_true(back >= 0);
    assert_int_equal(missing, 0);
    disk_full_end(&d);
}

int main(void) {
    /* A private mount namespace: the tmpfs vanishes with this process even
     * if it dies before unmounting. */
    can_mount = geteuid() == 0 && unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
    if (!can_mount) printf("  disk-full test skipped: needs root to mount a tmpfs\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill9_appendfsync_always, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_appendfsync_everysec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_appendfsync_always, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
