/* clock_guard.h -- (internal) the time the client trusts (docs/machines.md,
 * "Clock tampering"): its own clock, never earlier than the latest time it
 * has seen. */
#ifndef PA_CLOCK_GUARD_H
#define PA_CLOCK_GUARD_H

#include <stdint.h>

#include "activate.h"

#define CLOCK_SKEW_DEFAULT_S 300 /* pa_options.max_clock_skew_s when not set */

/* The machine's clock as the library reads it: time(NULL) plus the tests'
 * pa_options.clock_offset_s. */
int64_t clock_now(const pa_client *c);

/* Judges a stored license issued at `issued_at` (the server's clock): the
 * latest time seen (state file STATE_CLOCK) becomes the largest of itself,
 * our clock and `issued_at`, and *at the time to judge the license at (that
 * latest time). PA_ERR_CLOCK with a message when our clock is more than the
 * skew behind it, or the license was issued more than the skew ahead of our
 * clock; PA_OK otherwise. */
pa_err clock_judge(pa_client *c, int64_t issued_at, int64_t *at);

/* A license just received from a server, issued at `issued_at`: PA_ERR_CLOCK
 * when that differs from our clock by more than the skew; otherwise the
 * server vouches for the time, and the latest time seen is set to ours (a
 * clock once set too far ahead recovers with the next license). */
pa_err clock_fresh(pa_client *c, int64_t issued_at);

#endif
