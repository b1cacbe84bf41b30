/* clock.c -- see clock.h. */
#include "clock.h"

#include <time.h>

static struct timespec mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for CLOCK_MONOTONIC on Linux */
    return ts;
}

int64_t pa_mono_ms(void) {
    struct timespec ts = mono();
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t pa_mono_ns(void) {
    struct timespec ts = mono();
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double pa_mono_s(void) {
    struct timespec ts = mono();
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
