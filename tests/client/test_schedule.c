/* test_schedule.c -- when the client renews and retries: pure arithmetic,
 * no sleeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>

#include "schedule.h"

#define NOW INT64_C(1800000000)
#define DAY (24 * 3600)

static void first_run_without_license_activates_now(void **state) {
    schedule_state s = {0};
    assert_int_equal(schedule_next(&s, NOW, 12345), NOW);
}

static void permanent_license_needs_nothing(void **state) {
    schedule_state s = {.licensed = true, .renew_after = 0, .last_attempt = NOW - 10};
    assert_true(schedule_next(&s, NOW, 0) == SCHEDULE_NEVER);
}

static void renews_at_renew_after_with_forward_jitter(void **state) {
    schedule_state s = {.licensed = true, .renew_after = NOW + 7 * DAY};
    int64_t lo = INT64_MAX, hi = 0;
    for (uint32_t i = 0; i < 1000; i++) {
        int64_t t = schedule_next(&s, NOW, i * 4294967u);
        if (t < lo) lo = t;
        if (t > hi) hi = t;
    }
    assert_true(lo >= NOW + 7 * DAY);                           /* never before renew_after */
    assert_true(hi < NOW + 7 * DAY + SCHEDULE_RENEW_JITTER_S);   /* within the window */
    assert_true(hi - lo > SCHEDULE_RENEW_JITTER_S / 2);         /* and actually spread */
}

static void overdue_renewal_is_now(void **state) {
    schedule_state s = {.licensed = true, .renew_after = NOW - 3 * DAY};
    assert_int_equal(schedule_next(&s, NOW, UINT32_MAX), NOW);
}

static void retry_every_two_hours_with_jitter(void **state) {
    schedule_state s = {.licensed = false, .last_attempt = NOW, .last_failed = true};
    int64_t lo = schedule_next(&s, NOW, 0), hi = schedule_next(&s, NOW, UINT32_MAX);
    assert_int_equal(lo, NOW + SCHEDULE_RETRY_S - SCHEDULE_RETRY_JITTER_S);
    assert_true(hi <= NOW + SCHEDULE_RETRY_S + SCHEDULE_RETRY_JITTER_S);
    assert_true(hi >= NOW + SCHEDULE_RETRY_S + SCHEDULE_RETRY_JITTER_S - 1);
    /* Not activated, even without a recorded failure: the same 2-hour rhythm. */
    s.last_failed = false;
    assert_int_equal(schedule_next(&s, NOW, 0), lo);
}

static void failed_renewal_retries_in_two_hours(void **state) {
    schedule_state s = {.licensed = true, .renew_after = NOW - 60, .last_attempt = NOW, .last_failed = true};
    int64_t t = schedule_next(&s, NOW, 1u << 31);
    assert_true(t >= NOW + SCHEDULE_RETRY_S - SCHEDULE_RETRY_JITTER_S);
    assert_true(t <= NOW + SCHEDULE_RETRY_S + SCHEDULE_RETRY_JITTER_S);
}

static void retry_after_says_when(void **state) {
    schedule_state s = {.last_attempt = NOW, .last_failed = true, .retry_after_s = 5 * 3600};
    assert_int_equal(schedule_next(&s, NOW, 0), NOW + 5 * 3600); /* longer than our interval: a floor */
    /* Shorter (a full concurrent order: its first seat frees in 30 s): come
     * back then, spread over a tenth of the wait, never sooner. */
    s.retry_after_s = 30;
    assert_int_equal(schedule_next(&s, NOW, 0), NOW + 30);
    int64_t t = schedule_next(&s, NOW, UINT32_MAX);
    assert_true(t >= NOW + 30 && t <= NOW + 33);
    s.retry_after_s = 1;
    assert_int_equal(schedule_next(&s, NOW, UINT32_MAX), NOW + 1);
}

static void never_in_the_past(void **state) {
    schedule_state s = {.last_attempt = NOW - 10 * DAY, .last_failed = true};
    assert_int_equal(schedule_next(&s, NOW, 777), NOW);
}

static void renew_after_in_the_past_cannot_spin(void **state) {
    /* A successful renewal that came back with renew_after still behind us. */
    schedule_state s = {.licensed = true, .renew_after = NOW - 100, .last_attempt = NOW};
    assert_true(schedule_next(&s, NOW, 0) >= NOW + SCHEDULE_MIN_GAP_S);
}

/* A concurrent seat: a heartbeat every 60 s, the seat lapses after three
 * missed beats. Every heartbeat lands within the lease, and jitter still
 * spreads them. */
static void heartbeats_stay_inside_the_lease(void **state) {
    schedule_state s = {.licensed = true, .renew_after = NOW + 60, .expires_at = NOW + 180, .last_attempt = NOW};
    int64_t lo = INT64_MAX, hi = 0;
    for (uint32_t i = 0; i < 1000; i++) {
        int64_t t = schedule_next(&s, NOW, i * 4294967u);
        if (t < lo) lo = t;
        if (t > hi) hi = t;
    }
    assert_true(lo >= NOW + 60);
    assert_true(hi <= NOW + 60 + 30); /* a quarter of the 120 s left after renew_after */
    assert_true(hi > lo);
}

/* Seconds-long leases, as tests configure them: the one-minute gap and the
 * jitter shrink with the lease. */
static void short_test_leases_are_kept(void **state) {
    schedule_state s = {.licensed = true, .renew_after = NOW + 1, .expires_at = NOW + 3, .last_attempt = NOW};
    for (uint32_t r = 0; r < 8; r++) {
        int64_t t = schedule_next(&s, NOW, r * 0x20000000u);
        assert_true(t >= NOW + 1 && t < NOW + 3);
    }
}

/* A failed heartbeat is retried before the lease lapses, halfway each time,
 * not in two hours; a retry-after still holds. */
static void failed_short_renewal_retries_before_the_lease_lapses(void **state) {
    schedule_state s = {
        .licensed = true, .renew_after = NOW, .expires_at = NOW + 120, .last_attempt = NOW, .last_failed = true};
    assert_int_equal(schedule_next(&s, NOW, UINT32_MAX), NOW + 60);
    s.last_attempt = NOW + 60;
    assert_int_equal(schedule_next(&s, NOW + 60, 0), NOW + 90);
    s.retry_after_s = 50;
    assert_int_equal(schedule_next(&s, NOW + 60, 0), NOW + 110);
    /* A long lease keeps the two-hour rhythm. */
    schedule_state l = {
        .licensed = true, .renew_after = NOW, .expires_at = NOW + 30 * DAY, .last_attempt = NOW, .last_failed = true};
    assert_int_equal(schedule_next(&l, NOW, 0), NOW + SCHEDULE_RETRY_S - SCHEDULE_RETRY_JITTER_S);
}

/* Pending on a volume order: ask again when the server said, within a day. */
/* Past expires_at, inside a grace period of 7 minutes: a failed renewal is
 * retried halfway to the grace's end again and again, several times before
 * it runs out, never after it. */
static void failed_renewal_in_grace_retries_before_grace_ends(void **state) {
    int64_t exp = NOW - 60, end = exp + 420;
    schedule_state s = {.licensed = true,
                        .renew_after = exp - 300,
                        .expires_at = exp,
                        .grace_s = 420,
                        .last_attempt = NOW,
                        .last_failed = true};
    int tries = 0;
    while (s.last_attempt < end - 1 && tries < 50) {
        int64_t t = schedule_next(&s, s.last_attempt, 99);
        assert_true(t > s.last_attempt && t < end);
        s.last_attempt = t;
        tries++;
    }
    assert_true(tries >= 4);
    /* A long grace retries every 2 hours at most. */
    schedule_state w = {.licensed = true,
                        .renew_after = exp - 300,
                        .expires_at = exp,
                        .grace_s = 7 * DAY,
                        .last_attempt = NOW,
                        .last_failed = true};
    assert_true(schedule_next(&w, NOW, 0) <= NOW + SCHEDULE_RETRY_S);
}

static void pending_checks_in_when_told(void **state) {
    schedule_state s = {.last_attempt = NOW, .last_failed = true, .check_in_at = NOW + 7200};
    assert_int_equal(schedule_next(&s, NOW, UINT32_MAX), NOW + 7200);
    s.check_in_at = NOW + 5; /* shortened in tests */
    assert_int_equal(schedule_next(&s, NOW, 0), NOW + 5);
    assert_int_equal(schedule_next(&s, NOW + 9, 0), NOW + 9);
    s.check_in_at = NOW + 400 * DAY;
    assert_int_equal(schedule_next(&s, NOW, 0), NOW + SCHEDULE_CHECK_IN_MAX_S);
    s.check_in_at = NOW - 10; /* not after the attempt: the usual retry */
    assert_int_equal(schedule_next(&s, NOW, 0), NOW + SCHEDULE_RETRY_S - SCHEDULE_RETRY_JITTER_S);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_run_without_license_activates_now),
        cmocka_unit_test(permanent_license_needs_nothing),
        cmocka_unit_test(renews_at_renew_after_with_forward_jitter),
        cmocka_unit_test(overdue_renewal_is_now),
        cmocka_unit_test(retry_every_two_hours_with_jitter),
        cmocka_unit_test(failed_renewal_retries_in_two_hours),
        cmocka_unit_test(retry_after_says_when),
        cmocka_unit_test(never_in_the_past),
        cmocka_unit_test(renew_after_in_the_past_cannot_spin),
        cmocka_unit_test(heartbeats_stay_inside_the_lease),
        cmocka_unit_test(short_test_leases_are_kept),
        cmocka_unit_test(failed_short_renewal_retries_before_the_lease_lapses),
        cmocka_unit_test(failed_renewal_in_grace_retries_before_grace_ends),
        cmocka_unit_test(pending_checks_in_when_told),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
