/* clock_guard.c -- telling a clock turned back from one that is right.
 *
 * A leased license and its grace period end at fixed times, so turning the
 * machine's clock back would keep them alive for ever. The client therefore
 * keeps the latest time it has seen in the state directory (file `clock`,
 * "seen: UNIX\n", written atomically): the largest of its own clock at every
 * load and of every license's issued_at, which is the server's clock. A
 * clock more than the allowed skew behind that time has been turned back
 * (or is broken); either way the license is judged at the time last seen,
 * so going back in time never buys a second of license or grace, and
 * renewals wait until the clock is right (the server would refuse the
 * proofs of a clock that far off anyway).
 *
 * The stored time is only a floor, never a licence to run: deleting the
 * file loses at most the time since the stored license was issued, because
 * issued_at is a floor too. It is written only when it moves by more than
 * CLOCK_WRITE_STEP_S, so a status call a second does not write a file a
 * second; the floor lags by at most that, well inside the skew.
 *
 * A license that arrives from a server is compared with our clock both
 * ways: a server whose clock is off by more than the skew (or a clock of
 * ours that is) would hand us times we cannot judge, so it is refused. A
 * license that passes resets the stored time to our clock: the server has
 * just vouched for it, which is how a clock once set years ahead recovers. */
#include "clock_guard.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_internal.h"
#include "state.h"

#define CLOCK_WRITE_STEP_S 60 /* the stored floor may lag our clock by this much */

int64_t clock_now(const pa_client *c) { return (int64_t)time(NULL) + c->clock_offset_s; }

/* The stored latest time, 0 when there is none or it is unreadable (the
 * license's issued_at still bounds it from below). */
static int64_t read_seen(const pa_client *c) {
    char path[PATH_MAX], *text, err[64];
    size_t len;
    if (state_path(path, sizeof path, c->state_dir, STATE_CLOCK) != 0) return 0;
    if (state_read_file(path, &text, &len, err, sizeof err) != 0) return 0;
    long long v = 0;
    if (sscanf(text, "seen: %lld", &v) != 1 || v < 0) v = 0;
    free(text);
    return (int64_t)v;
}

/* Best effort: a read-only state directory must not fail a status call. */
static void write_seen(const pa_client *c, int64_t t) {
    char path[PATH_MAX], text[48], err[256];
    if (state_path(path, sizeof path, c->state_dir, STATE_CLOCK) != 0) return;
    int n = snprintf(text, sizeof text, "seen: %" PRId64 "\n", t);
    if (state_dir_ensure(c->state_dir, err, sizeof err) == 0)
        (void)state_write_atomic(path, text, (size_t)n, 0600, err, sizeof err);
}

static void when(int64_t t, char buf[32]) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm)) snprintf(buf, 32, "%" PRId64, t);
}

pa_err clock_judge(pa_client *c, int64_t issued_at, int64_t *at) {
    int64_t now = clock_now(c), stored = read_seen(c), seen = stored;
    if (issued_at > seen) seen = issued_at;
    if (now > seen) seen = now;
    if (seen > stored + CLOCK_WRITE_STEP_S || (stored == 0 && seen > 0)) write_seen(c, seen);
    *at = seen;
    char t_now[32], t_seen[32];
    when(now, t_now);
    if (issued_at > now + c->max_clock_skew_s) {
        when(issued_at, t_seen);
        return client_fail(c, PA_ERR_CLOCK,
                           "this machine's clock (%s) is behind the time its license was issued (%s) by more than "
                           "%" PRId64 " s: set the clock right; until then the license is judged as of %s",
                           t_now, t_seen, c->max_clock_skew_s, t_seen);
    }
    if (stored > now + c->max_clock_skew_s) {
        when(stored, t_seen);
        return client_fail(c, PA_ERR_CLOCK,
                           "this machine's clock (%s) is behind a time it has already seen (%s) by more than "
                           "%" PRId64
                           " s: it was turned back or is broken; set the clock right; until then the license is "
                           "judged as of %s",
                           t_now, t_seen, c->max_clock_skew_s, t_seen);
    }
    return PA_OK;
}

pa_err clock_fresh(pa_client *c, int64_t issued_at) {
    int64_t now = clock_now(c), off = issued_at - now;
    if (off > c->max_clock_skew_s || -off > c->max_clock_skew_s) {
        char t_now[32], t_issued[32];
        when(now, t_now);
        when(issued_at, t_issued);
        return client_fail(c, PA_ERR_CLOCK,
                           "the server's clock (%s, when it issued the license) and this machine's (%s) differ by "
                           "%" PRId64 " s, more than the %" PRId64
                           " s allowed: set this machine's clock right (or "
                           "ask the server's operator to); the license was not taken",
                           t_issued, t_now, off < 0 ? -off : off, c->max_clock_skew_s);
    }
    write_seen(c, now > issued_at ? now : issued_at);
    return PA_OK;
}
