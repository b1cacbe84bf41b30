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

static void retry_after_is_a_floor(void **state) {
    schedule_state s = {.last_attempt = NOW, .last_failed = true, .retry_after_s = 5 * 3600};
    assert_int_equal(schedule_next(&s, NOW, 0), NOW + 5 * 3600);
    s.retry_after_s = 30;  /* shorter than our interval: our interval stands */
    assert_int_equal(schedule_next(&s, NOW, 0), NOW + SCHEDULE_RETRY_S - SCHEDULE_RETRY_JITTER_S);
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_run_without_license_activates_now),
        cmocka_unit_test(permanent_license_needs_nothing),
        cmocka_unit_test(renews_at_renew_after_with_forward_jitter),
        cmocka_unit_test(overdue_renewal_is_now),
        cmocka_unit_test(retry_every_two_hours_with_jitter),
        cmocka_unit_test(failed_renewal_retries_in_two_hours),
        cmocka_unit_test(retry_after_is_a_floor),
        cmocka_unit_test(never_in_the_past),
        cmocka_unit_test(renew_after_in_the_past_cannot_spin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
