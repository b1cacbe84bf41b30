/* test_util.c -- the small shared helpers: hex codec (hex.h), monotonic
 * clock (clock.h), gRPC status names (grpc_status_name.h) and Redis key
 * names (redis_keys.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "clock.h"
#include "grpc_status_name.h"
#include "hex.h"
#include "redis_keys.h"

static void test_hex_round_trip(void **state) {
    const uint8_t in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char text[2 * sizeof in + 1];
    memset(text, 'x', sizeof text);
    pa_hex_encode(in, sizeof in, text);
    assert_string_equal(text, "00017f80abff"); /* lowercase, NUL-terminated */
    uint8_t out[sizeof in];
    assert_int_equal(pa_hex_decode(text, strlen(text), out, sizeof out), (long)sizeof in);
    assert_memory_equal(out, in, sizeof in);
    assert_int_equal(pa_hex_decode("ABff", 4, out, sizeof out), 2); /* either case */
    assert_int_equal(out[0], 0xab);
    assert_int_equal(out[1], 0xff);
    pa_hex_encode(in, 0, text);
    assert_string_equal(text, "");
    assert_int_equal(pa_hex_decode("", 0, out, 0), 0);
}

static void test_hex_rejects(void **state) {
    uint8_t out[4];
    assert_int_equal(pa_hex_decode("abc", 3, out, sizeof out), -1);         /* odd length */
    assert_int_equal(pa_hex_decode("0011223344", 10, out, sizeof out), -1); /* more than cap */
    assert_int_equal(pa_hex_decode("0g", 2, out, sizeof out), -1);
    assert_int_equal(pa_hex_decode(" 1", 2, out, sizeof out), -1); /* no sscanf leniency */
    assert_int_equal(pa_hex_decode("+1", 2, out, sizeof out), -1);
    assert_int_equal(pa_hex_digit('F'), 15);
    assert_int_equal(pa_hex_digit('/'), -1);
    assert_int_equal(pa_hex_digit(0xe9), -1);
}

static void test_clock_units_agree(void **state) {
    int64_t ms0 = pa_mono_ms();
    uint64_t ns0 = pa_mono_ns();
    double s0 = pa_mono_s();
    struct timespec pause = {0, 20 * 1000000L};
    nanosleep(&pause, NULL);
    int64_t dms = pa_mono_ms() - ms0;
    uint64_t dns = pa_mono_ns() - ns0;
    double ds = pa_mono_s() - s0;
    assert_true(dms >= 19 && dms < 2000);
    assert_true(dns >= 20000000u && dns < 2000000000u);
    assert_true(ds >= 0.02 && ds < 2.0);
    /* Same clock: the three readings of "now" are within a few ms. */
    assert_true(pa_mono_s() * 1e3 - (double)pa_mono_ms() < 5.0);
    assert_true((double)pa_mono_ns() / 1e6 - (double)pa_mono_ms() < 5.0);
}

static void test_status_names(void **state) {
    assert_string_equal(pa_grpc_status_name(GRPC_STATUS_OK), "OK");
    assert_string_equal(pa_grpc_status_name(GRPC_STATUS_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
    assert_string_equal(pa_grpc_status_name(GRPC_STATUS_FAILED_PRECONDITION), "FAILED_PRECONDITION");
    assert_string_equal(pa_grpc_status_name(GRPC_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED");
    assert_int_equal(GRPC_STATUS_UNAUTHENTICATED, PA_GRPC_STATUS_CODES - 1);
    assert_string_equal(pa_grpc_status_name((grpc_status_code)PA_GRPC_STATUS_CODES), "UNKNOWN");
    assert_string_equal(pa_grpc_status_name((grpc_status_code)-1), "UNKNOWN");
}

/* The names are a contract with the ACL files and stored data: pinned here. */
static void test_redis_key_names(void **state) {
    char k[PA_RKEY_MAX];
    assert_int_equal(pa_rkey_group(k, sizeof k, 4365), 14);
    assert_string_equal(k, "{g:4365}:group");
    pa_rkey_serial(k, sizeof k, 4365);
    assert_string_equal(k, "{g:4365}:serial");
    pa_rkey_revoked(k, sizeof k, 1048575);
    assert_string_equal(k, "{g:1048575}:revoked");
    pa_rkey_record(k, sizeof k, 1048575, 1073741823);
    assert_string_equal(k, "{g:1048575}:k:1073741823");
    pa_rkey_record_index(k, sizeof k, 1048575, 1073741823);
    assert_string_equal(k, "{g:1048575}:k:1073741823:places");
    pa_rkey_group_bucket(k, sizeof k, 7);
    assert_string_equal(k, "{g:7}:rl");
    pa_rkey_group_failure_bucket(k, sizeof k, 7);
    assert_string_equal(k, "{g:7}:rl:f");
    pa_rkey_address_bucket(k, sizeof k, "2001:db8::/64");
    assert_string_equal(k, "rl:a:2001:db8::/64");
    pa_rkey_audit(k, sizeof k, 7);
    assert_string_equal(k, "{g:7}:audit");
    pa_audit_revoked_member(k, sizeof k, 4101, 777);
    assert_string_equal(k, "4101:777");
    /* The longest possible address key still fits PA_RKEY_MAX. */
    assert_true(pa_rkey_address_bucket(k, sizeof k, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/64") > 0);
    char small[8];
    assert_int_equal(pa_rkey_group(small, sizeof small, 4365), -1); /* does not fit: -1 */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_round_trip),    cmocka_unit_test(test_hex_rejects),
        cmocka_unit_test(test_clock_units_agree), cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_redis_key_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
