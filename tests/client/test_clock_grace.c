/* test_clock_grace.c -- how the client judges a license in time, without a
 * server: the grace period after expires_at (PA_OK with the features and
 * the seconds left, then PA_ERR_EXPIRED), a clock turned back (PA_ERR_CLOCK,
 * and the license judged at the latest time seen, so going back never buys
 * license or grace), a license issued in the future, the `clock` state file,
 * and the same rules for an offline license file. The clock is turned with
 * pa_options.clock_offset_s, which exists for exactly this. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "activate.h"
#include "client_testutil.h"
#include "fixture.h"
#include "state.h"

typedef struct env {
    char dir[256];    /* everything lives here */
    char root[300];   /* this machine's facts */
    char state[300];  /* its state directory */
    EVP_PKEY *vendor; /* signs licenses */
    char *vendor_pub; /* PEM the client trusts */
    uint8_t machine_id[32];
} env;

/* A client whose clock is `offset` seconds off the system's. */
static pa_client *client_at(env *e, int64_t offset, int64_t skew) {
    pa_options o;
    pa_options_init(&o);
    o.state_dir = e->state;
    o.facts_root = e->root;
    o.public_key_pem = e->vendor_pub;
    o.vendor_salt = "test-salt";
    o.clock_offset_s = offset;
    if (skew) o.max_clock_skew_s = skew;
    char err[256];
    pa_client *c = pa_client_new(&o, err, sizeof err);
    if (!c) fprintf(stderr, "pa_client_new: %s\n", err);
    assert_non_null(c);
    return c;
}

static int setup(void **state) {
    env *e = calloc(1, sizeof *e);
    if (!e || fixture_tmpdir(e->dir, sizeof e->dir, "client-clock") != 0) return -1;
    snprintf(e->root, sizeof e->root, "%s/machine", e->dir);
    snprintf(e->state, sizeof e->state, "%s/state", e->dir);
    tu_fake_machine(e->root, "4c4c4544-0035-4a10-8051-b3c04f4a4e33", "CN1235", NULL, NULL);
    e->vendor = tu_vendor_key(&e->vendor_pub);
    tu_machine_id(e->root, "test-salt", e->machine_id);
    *state = e;
    return 0;
}

static int teardown(void **state) {
    env *e = *state;
    EVP_PKEY_free(e->vendor);
    free(e->vendor_pub);
    fixture_rmtree(e->dir);
    free(e);
    return 0;
}

static int fresh_state(void **state) {
    env *e = *state;
    fixture_rmtree(e->state);
    return 0;
}

/* Stores a license issued at `issued` expiring at `exp` with `grace`
 * seconds of grace, as the stored license (no checks on the way). */
static void store(env *e, int64_t issued, int64_t exp, int64_t grace) {
    signed_license s;
    tu_sign_license_at(e->vendor, e->machine_id, issued, exp ? exp - 10 : 0, exp, grace, &s);
    char *text = license_file_format(&s), path[400], err[256];
    signed_license_clear(&s);
    assert_non_null(text);
    assert_int_equal(state_dir_ensure(e->state, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/license", e->state);
    assert_int_equal(state_write_atomic(path, text, strlen(text), 0600, err, sizeof err), 0);
    free(text);
}

static long long stored_clock(env *e) {
    char path[400], *text, err[256];
    size_t len;
    long long v = -1;
    snprintf(path, sizeof path, "%s/clock", e->state);
    if (state_read_file(path, &text, &len, err, sizeof err) != 0) return -1;
    if (sscanf(text, "seen: %lld", &v) != 1) v = -1;
    free(text);
    return v;
}

static void grace_keeps_the_license_then_ends(void **state) {
    env *e = *state;
    int64_t now = time(NULL);
    store(e, now - 100, now - 20, 60); /* expired 20 s ago, 60 s of grace */
    pa_client *c = client_at(e, 0, 0);
    assert_int_equal(pa_status(c), PA_OK);
    assert_true(pa_has_feature(c, "editor"));
    assert_in_range(pa_grace_left(c), 38, 40);
    assert_non_null(strstr(pa_error(c), "grace"));
    pa_client_free(c);
    /* 50 s later: still inside; 41 s later: over. */
    c = client_at(e, 30, 0);
    assert_int_equal(pa_status(c), PA_OK);
    assert_in_range(pa_grace_left(c), 8, 10);
    pa_client_free(c);
    c = client_at(e, 41, 0);
    assert_int_equal(pa_status(c), PA_ERR_EXPIRED);
    assert_int_equal(pa_grace_left(c), 0);
    assert_non_null(strstr(pa_error(c), "grace period has ended"));
    pa_client_free(c);
    /* Without grace, expired is expired. */
    store(e, now - 100, now - 20, 0);
    c = client_at(e, 41, 0);
    assert_int_equal(pa_status(c), PA_ERR_EXPIRED);
    pa_client_free(c);
}

static void clock_turned_back_is_caught_and_buys_nothing(void **state) {
    env *e = *state;
    int64_t now = time(NULL);
    store(e, now - 100, now + 3600, 600);
    pa_client *c = client_at(e, 2 * 3600, 0); /* two hours on: expired, and the client saw it */
    assert_int_equal(pa_status(c), PA_ERR_EXPIRED);
    pa_client_free(c);
    long long seen = stored_clock(e);
    assert_in_range(seen, now + 2 * 3600 - 5, now + 2 * 3600 + 5);
    /* Back to "now": the license would look valid, but the clock is behind
     * what was seen by more than the skew. */
    c = client_at(e, 0, 0);
    assert_int_equal(pa_status(c), PA_ERR_CLOCK);
    assert_non_null(strstr(pa_error(c), "turned back"));
    assert_string_equal(pa_err_name(PA_ERR_CLOCK), "clock");
    assert_int_equal(pa_grace_left(c), 0);
    assert_int_equal(pa_maintain(c, NULL), PA_ERR_CLOCK); /* and no renewal is tried */
    pa_client_free(c);
    /* Within the skew (here 3 h) it is judged at the time seen: expired still. */
    c = client_at(e, 0, 3 * 3600);
    assert_int_equal(pa_status(c), PA_ERR_EXPIRED);
    pa_client_free(c);
    /* The clock set right again: expired, as it is. */
    c = client_at(e, 2 * 3600 + 10, 0);
    assert_int_equal(pa_status(c), PA_ERR_EXPIRED);
    pa_client_free(c);
}

static void clock_back_within_skew_is_fine(void **state) {
    env *e = *state;
    int64_t now = time(NULL);
    store(e, now - 100, now + 3600, 0);
    pa_client *c = client_at(e, 0, 0);
    assert_int_equal(pa_status(c), PA_OK);
    pa_client_free(c);
    c = client_at(e, -200, 0); /* NTP stepping back a little */
    assert_int_equal(pa_status(c), PA_OK);
    pa_client_free(c);
}

static void license_from_the_future_is_refused(void **state) {
    env *e = *state;
    int64_t now = time(NULL);
    store(e, now + 3600, now + 7200, 0); /* issued an hour ahead of our clock */
    pa_client *c = client_at(e, 0, 0);
    assert_int_equal(pa_status(c), PA_ERR_CLOCK);
    assert_non_null(strstr(pa_error(c), "behind the time its license was issued"));
    pa_client_free(c);
    /* Our clock an hour on: fine. */
    c = client_at(e, 3600, 0);
    assert_int_equal(pa_status(c), PA_OK);
    pa_client_free(c);
}

static void deleting_the_clock_file_keeps_issued_at_as_floor(void **state) {
    env *e = *state;
    int64_t now = time(NULL);
    store(e, now, now + 3600, 0);
    char path[400], err[256];
    snprintf(path, sizeof path, "%s/clock", e->state);
    assert_int_equal(state_remove(path, err, sizeof err), 0);
    pa_client *c = client_at(e, -3000, 0); /* fifty minutes before the license was issued */
    assert_int_equal(pa_status(c), PA_ERR_CLOCK);
    pa_client_free(c);
}

static void offline_file_follows_the_same_rules(void **state) {
    env *e = *state;
    int64_t now = time(NULL);
    char path[400];
    snprintf(path, sizeof path, "%s/offline.lic", e->dir);
    signed_license s;
    /* Expired 30 s ago but inside its 120 s of grace: installed, in grace. */
    tu_sign_license_at(e->vendor, e->machine_id, now - 100, now - 60, now - 30, 120, &s);
    char *text = license_file_format(&s), err[256];
    signed_license_clear(&s);
    assert_int_equal(state_write_atomic(path, text, strlen(text), 0600, err, sizeof err), 0);
    free(text);
    pa_client *c = client_at(e, 0, 0);
    assert_int_equal(pa_install(c, path), PA_OK);
    assert_true(pa_grace_left(c) > 80);
    pa_client_free(c);
    /* Issued in our future: refused, nothing stored. */
    fixture_rmtree(e->state);
    tu_sign_license_at(e->vendor, e->machine_id, now + 3600, 0, 0, 0, &s);
    text = license_file_format(&s);
    signed_license_clear(&s);
    assert_int_equal(state_write_atomic(path, text, strlen(text), 0600, err, sizeof err), 0);
    free(text);
    c = client_at(e, 0, 0);
    assert_int_equal(pa_install(c, path), PA_ERR_CLOCK);
    assert_int_equal(pa_status(c), PA_ERR_NOT_ACTIVATED);
    pa_client_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(grace_keeps_the_license_then_ends, fresh_state),
        cmocka_unit_test_setup(clock_turned_back_is_caught_and_buys_nothing, fresh_state),
        cmocka_unit_test_setup(clock_back_within_skew_is_fine, fresh_state),
        cmocka_unit_test_setup(license_from_the_future_is_refused, fresh_state),
        cmocka_unit_test_setup(deleting_the_clock_file_keeps_issued_at_as_floor, fresh_state),
        cmocka_unit_test_setup(offline_file_follows_the_same_rules, fresh_state),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
