/* test_threat_sampler.c -- sliding windows and sampling decisions, with the
 * clock stepped by the test so every window edge is exact. */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_sampler.h"
#include "metrics.h"
#include "threat_signal.h"

static _Atomic int64_t fake_ms = 1000000;
static int64_t fake_clock(void) { return atomic_load(&fake_ms); }
static void advance(int64_t ms) { atomic_fetch_add(&fake_ms, ms); }

static threat_signal *new_signal(void) {
    threat_config cfg = {.window_s = 10, .group_min_requests = 20, .group_failure_ratio = 0.5,
                         .address_max_requests = 100, .clock_ms = fake_clock};
    threat_signal *t = threat_signal_new(&cfg);
    assert_non_null(t);
    return t;
}

static double metric_in(const char *series) {
    char *text = metrics_render();
    assert_non_null(text);
    double v = -1;
    size_t n = strlen(series);
    for (char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ') v = atof(p + n + 1);
    free(text);
    return v;
}

static void test_group_window_slides(void **state) {
    threat_signal *t = new_signal();
    uint32_t req, fail;
    for (int i = 0; i < 10; i++) threat_record_group(t, 7, false);
    advance(3000);
    for (int i = 0; i < 15; i++) threat_record_group(t, 7, true);
    threat_group_counts(t, 7, &req, &fail);
    assert_int_equal(req, 25);
    assert_int_equal(fail, 15);
    assert_true(threat_group_alert(t, 7));
    assert_false(threat_group_alert(t, 8));
    /* 7.5 s later the first ten have left the window, the failures have not. */
    advance(7500);
    threat_group_counts(t, 7, &req, &fail);
    assert_int_equal(req, 15);
    assert_int_equal(fail, 15);
    assert_false(threat_group_alert(t, 7));   /* under the minimum request count */
    advance(3000);
    threat_group_counts(t, 7, &req, &fail);
    assert_int_equal(req, 0);
    /* A bucket reused after a full turn of the ring starts from zero. */
    advance(16000);
    threat_record_group(t, 7, true);
    threat_group_counts(t, 7, &req, &fail);
    assert_int_equal(req, 1);
    assert_int_equal(fail, 1);
    threat_signal_free(t);
}

static void test_address_rate(void **state) {
    threat_signal *t = new_signal();
    for (int i = 0; i < 101; i++) threat_record_address(t, "198.51.100.9");
    for (int i = 0; i < 50; i++) threat_record_address(t, "198.51.100.10");
    assert_true(threat_address_requests(t, "198.51.100.9") >= 101);
    assert_true(threat_address_alert(t, "198.51.100.9"));
    assert_false(threat_address_alert(t, "198.51.100.10"));
    assert_false(threat_address_alert(t, "2001:db8::1"));
    advance(11000);
    assert_int_equal(threat_address_requests(t, "198.51.100.9"), 0);
    threat_signal_free(t);
}

typedef struct hammer {
    threat_signal *t;
    int n;
} hammer;

static void *hammer_run(void *arg) {
    hammer *h = arg;
    for (int i = 0; i < h->n; i++) {
        threat_record_group(h->t, 99, i % 3 == 0);
        threat_record_address(h->t, "203.0.113.5");
    }
    return NULL;
}

/* Counting is exact under contention: bucket and count move in one CAS. */
static void test_concurrent_counts_exact(void **state) {
    threat_signal *t = new_signal();
    enum { THREADS = 4, EACH = 50000 };
    pthread_t tid[THREADS];
    hammer h = {t, EACH};
    for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&tid[i], NULL, hammer_run, &h), 0);
    for (int i = 0; i < THREADS; i++) pthread_join(tid[i], NULL);
    uint32_t req, fail;
    threat_group_counts(t, 99, &req, &fail);
    assert_int_equal(req, THREADS * EACH);
    assert_int_equal(fail, THREADS * ((EACH + 2) / 3));
    assert_true(threat_address_requests(t, "203.0.113.5") >= THREADS * EACH);
    threat_signal_free(t);
}

static group_policy policy(uint32_t ppm, bool first) {
    group_policy p = {0};
    p.audit_rate_ppm = ppm;
    p.audit_first_activation = first;
    return p;
}

static void test_base_rate_and_first_activation(void **state) {
    threat_signal *t = new_signal();
    audit_sampler *s = audit_sampler_new(NULL, t);
    assert_non_null(s);
    group_policy none = policy(0, false), all = policy(AUDIT_RATE_ALL, false), first = policy(0, true);
    audit_decision d = audit_sampler_decide(s, 11, &none, "192.0.2.1");
    assert_int_equal(d.mode, AUDIT_SAMPLE_NONE);
    assert_int_equal(d.reason, AUDIT_REASON_NONE);
    d = audit_sampler_decide(s, 11, &all, "192.0.2.1");
    assert_int_equal(d.mode, AUDIT_SAMPLE_ALWAYS);
    assert_string_equal(audit_reason_name(d.reason), "base-rate");
    d = audit_sampler_decide(s, 11, &first, "192.0.2.1");
    assert_int_equal(d.mode, AUDIT_SAMPLE_IF_FIRST);
    assert_string_equal(audit_reason_name(d.reason), "first-activation");
    /* 5 % sampling draws close to 5 %. */
    group_policy five = policy(50000, false);
    int hits = 0;
    for (int i = 0; i < 100000; i++) hits += audit_sampler_decide(s, 12, &five, "192.0.2.2").mode == AUDIT_SAMPLE_ALWAYS;
    print_message("  5%% base rate sampled %d of 100000\n", hits);
    assert_in_range(hits, 4400, 5600);
    assert_true(metric_in("pa_audit_decisions_total{mode=\"audit-if-first\",reason=\"first-activation\"}") >= 1);
    audit_sampler_free(s);
    threat_signal_free(t);
}

/* A burst of wrong keys for a group raises its rate to 100 %, visibly. */
static void test_group_threat_raises_rate(void **state) {
    threat_signal *t = new_signal();
    audit_sampler *s = audit_sampler_new(NULL, t);
    group_policy base = policy(0, false);
    assert_int_equal(audit_sampler_decide(s, 4365, &base, "192.0.2.3").mode, AUDIT_SAMPLE_NONE);
    for (int i = 0; i < 30; i++) threat_record_group(t, 4365, true);
    double before = metric_in("pa_audit_decisions_total{mode=\"audit\",reason=\"threat-group\"}");
    for (int i = 0; i < 50; i++) {
        audit_decision d = audit_sampler_decide(s, 4365, &base, "192.0.2.3");
        assert_int_equal(d.mode, AUDIT_SAMPLE_ALWAYS);
        assert_int_equal(d.reason, AUDIT_REASON_THREAT_GROUP);
        assert_int_equal(d.rate_ppm, AUDIT_RATE_ALL);
    }
    assert_true(metric_in("pa_audit_decisions_total{mode=\"audit\",reason=\"threat-group\"}") >= before + 50);
    assert_int_equal((long)metric_in("pa_audit_group_sample_rate_ppm{group=\"4365\"}"), AUDIT_RATE_ALL);
    assert_true(metric_in("pa_audit_threat_alerts_total{kind=\"group\"}") >= 50);
    /* Other groups are unaffected. */
    assert_int_equal(audit_sampler_decide(s, 4366, &base, "192.0.2.3").mode, AUDIT_SAMPLE_NONE);
    /* The window passes: back to the base rate, and the gauge says so. */
    advance(11000);
    assert_int_equal(audit_sampler_decide(s, 4365, &base, "192.0.2.3").mode, AUDIT_SAMPLE_NONE);
    assert_int_equal((long)metric_in("pa_audit_group_sample_rate_ppm{group=\"4365\"}"), 0);
    audit_sampler_free(s);
    threat_signal_free(t);
}

static void test_address_threat_raises_rate(void **state) {
    threat_signal *t = new_signal();
    audit_sampler_config cfg = {.threat_address_rate_ppm = 500000};
    audit_sampler *s = audit_sampler_new(&cfg, t);
    group_policy base = policy(0, false);
    for (int i = 0; i < 150; i++) threat_record_address(t, "198.51.100.77");
    int hits = 0;
    for (int i = 0; i < 2000; i++) {
        audit_decision d = audit_sampler_decide(s, 20, &base, "198.51.100.77");
        assert_int_equal(d.rate_ppm, 500000);
        if (d.mode == AUDIT_SAMPLE_ALWAYS) {
            assert_int_equal(d.reason, AUDIT_REASON_THREAT_ADDRESS);
            hits++;
        }
    }
    assert_in_range(hits, 800, 1200);
    assert_int_equal(audit_sampler_decide(s, 20, &base, "198.51.100.78").mode, AUDIT_SAMPLE_NONE);
    audit_sampler_free(s);
    threat_signal_free(t);
}

/* The number of per-group series is capped. */
static void test_group_series_capped(void **state) {
    threat_signal *t = new_signal();
    audit_sampler_config cfg = {.max_group_series = 4};
    audit_sampler *s = audit_sampler_new(&cfg, t);
    group_policy base = policy(0, false);
    for (uint32_t g = 500; g < 510; g++) {
        for (int i = 0; i < 25; i++) threat_record_group(t, g, true);
        assert_int_equal(audit_sampler_decide(s, g, &base, NULL).reason, AUDIT_REASON_THREAT_GROUP);
    }
    int series = 0;
    char name[80];
    for (uint32_t g = 500; g < 510; g++) {
        snprintf(name, sizeof name, "pa_audit_group_sample_rate_ppm{group=\"%u\"}", g);
        series += metric_in(name) >= 0;
    }
    assert_int_equal(series, 4);
    audit_sampler_free(s);
    threat_signal_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_window_slides),
        cmocka_unit_test(test_address_rate),
        cmocka_unit_test(test_concurrent_counts_exact),
        cmocka_unit_test(test_base_rate_and_first_activation),
        cmocka_unit_test(test_group_threat_raises_rate),
        cmocka_unit_test(test_address_threat_raises_rate),
        cmocka_unit_test(test_group_series_capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
