/* clock.h -- CLOCK_MONOTONIC in the units the code measures with.
 *
 * Deadlines, back-off, cache ages, stage timings and benchmark spans all
 * want a clock that never jumps when the wall clock is set, so every one of
 * them reads these. Wall-clock time (license times, Redis records, log
 * timestamps) is time(NULL), Redis's TIME or log.c's own. */
#ifndef PA_COMMON_CLOCK_H
#define PA_COMMON_CLOCK_H

#include <stdint.h>

int64_t pa_mono_ms(void);  /* milliseconds */
uint64_t pa_mono_ns(void); /* nanoseconds */
double pa_mono_s(void);    /* seconds, with the clock's full resolution */

#endif
