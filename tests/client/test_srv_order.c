/* test_srv_order.c -- RFC 2782 ordering of SRV answers, and the endpoint
 * list built from it: only checked host names inside the SRV domain, only
 * ipv4:/ipv6:/dns: targets. Weights are checked statistically over many
 * picks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery.h"

static uint32_t xorshift(void *arg) {
    uint64_t *s = arg;
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 16);
}

static srv_record rec(const char *host, uint16_t prio, uint16_t weight) {
    srv_record r = {.port = 50051, .priority = prio, .weight = weight};
    snprintf(r.host, sizeof r.host, "%s", host);
    return r;
}

#define PICKS 20000

static void priority_first_then_weight(void **state) {
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int first[3] = {0};
    for (int i = 0; i < PICKS; i++) {
        srv_record r[5] = {rec("d", 20, 100), rec("a", 10, 60), rec("b", 10, 30), rec("c", 10, 10), rec("e", 5, 0)};
        srv_order(r, 5, xorshift, &seed);
        assert_string_equal(r[0].host, "e");  /* lowest priority value, however light */
        assert_string_equal(r[4].host, "d");  /* highest priority value, however heavy */
        for (int k = 1; k <= 3; k++) assert_int_equal(r[k].priority, 10);
        first[r[1].host[0] - 'a']++;
    }
    /* RFC 2782 draws from [0, sum]: shares 61/101, 30/101, 10/101. */
    double a = (double)first[0] / PICKS, b = (double)first[1] / PICKS, c = (double)first[2] / PICKS;
    printf("first pick among priority 10: a %.3f (60), b %.3f (30), c %.3f (10)\n", a, b, c);
    assert_true(a > 0.58 && a < 0.63);
    assert_true(b > 0.275 && b < 0.32);
    assert_true(c > 0.08 && c < 0.12);
}

static void zero_weight_keeps_a_small_chance(void **state) {
    uint64_t seed = 42;
    int zero_first = 0;
    for (int i = 0; i < PICKS; i++) {
        srv_record r[2] = {rec("heavy", 1, 10), rec("zero", 1, 0)};
        srv_order(r, 2, xorshift, &seed);
        zero_first += strcmp(r[0].host, "zero") == 0;
    }
    double share = (double)zero_first / PICKS;  /* 1/11 */
    assert_true(share > 0.07 && share < 0.11);
}

static void every_server_appears_once(void **state) {
    uint64_t seed = 7;
    srv_record r[4] = {rec("a", 1, 5), rec("b", 1, 5), rec("c", 2, 0), rec("d", 2, 0)};
    srv_order(r, 4, xorshift, &seed);
    int seen[4] = {0};
    for (int i = 0; i < 4; i++) seen[r[i].host[0] - 'a']++;
    for (int i = 0; i < 4; i++) assert_int_equal(seen[i], 1);
    srv_order(r, 0, xorshift, &seed);  /* empty and single lists are fine */
    srv_order(r, 1, xorshift, &seed);
}

static void endpoints_from_srv_name_the_dns_server(void **state) {
    srv_record r[2] = {rec("act1.example.test.", 1, 1), rec("act2.example.test", 1, 1)};
    endpoint *e;
    size_t n;
    char err[256];
    assert_int_equal(endpoints_from_srv(r, 2, "example.test", "127.0.0.1:5353", &e, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(e[0].name, "act1.example.test:50051");
    assert_string_equal(e[0].target, "dns://127.0.0.1:5353/act1.example.test:50051");
    free(e);
    assert_int_equal(endpoints_from_srv(r, 2, "example.test.", NULL, &e, &n, err, sizeof err), 0);
    assert_string_equal(e[1].target, "dns:///act2.example.test:50051");
    free(e);
}

/* What DNS says is not trusted: only host names inside the SRV domain
 * become targets, and never anything gRPC would read as another scheme. */
static void srv_targets_are_checked(void **state) {
    srv_record r[] = {rec("unix:/run/x", 1, 1),       rec("ipv4:10.0.0.1", 1, 1),     rec("10.0.0.1", 1, 1),
                      rec("act.evil.test", 1, 1),     rec("example.test.evil", 1, 1), rec("xexample.test", 1, 1),
                      rec("-bad.example.test", 1, 1), rec("a..example.test", 1, 1),   rec("act_1.example.test", 1, 1),
                      rec("ok.Example.TEST.", 1, 1),  rec("example.test", 1, 1)};
    size_t total = sizeof r / sizeof r[0];
    endpoint *e;
    size_t n;
    char err[256];
    assert_int_equal(endpoints_from_srv(r, total, "example.test", NULL, &e, &n, err, sizeof err), 0);
    assert_int_equal(n, 2); /* the last two: inside the domain, or the domain itself */
    assert_string_equal(e[0].target, "dns:///ok.Example.TEST:50051");
    assert_string_equal(e[1].target, "dns:///example.test:50051");
    free(e);
    /* None usable: the reason is named. */
    assert_int_equal(endpoints_from_srv(&r[3], 1, "example.test", NULL, &e, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "act.evil.test is outside example.test"));
    assert_int_equal(endpoints_from_srv(r, 1, "example.test", NULL, &e, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a host name"));
    assert_null(strstr(err, "unix:"));

    char long_label[80], long_name[300];
    memset(long_label, 'a', 64);
    long_label[64] = '\0';
    snprintf(long_name, sizeof long_name, "%s.example.test", long_label);
    assert_false(host_name_valid(long_name));
    long_label[63] = '\0';
    snprintf(long_name, sizeof long_name, "%s.example.test", long_label);
    assert_true(host_name_valid(long_name));
    char huge[300];
    for (int i = 0; i < 127; i++) memcpy(huge + 2 * i, "a.", 2);
    huge[254] = 'a'; /* 255 characters */
    huge[255] = '\0';
    assert_false(host_name_valid(huge));
    assert_false(host_name_valid(""));
    assert_false(host_name_valid("."));
    assert_false(host_name_valid("host-.example"));
    assert_false(host_name_valid("h\xc3\xa9.example"));
    assert_true(host_name_valid("localhost"));
    assert_true(host_name_valid("1password.example"));
    assert_true(host_in_domain("a.b.example.test", "example.test"));
    assert_false(host_in_domain("a.b.example.test", ""));
}

static void explicit_list_is_checked_and_last_good_goes_first(void **state) {
    const char *good[] = {"a.example:1", "[::1]:50051", "127.0.0.1:50051"};
    endpoint *e;
    size_t n;
    char err[256];
    assert_int_equal(endpoints_from_list(good, 3, &e, &n, err, sizeof err), 0);
    assert_string_equal(e[0].target, "dns:///a.example:1");
    assert_string_equal(e[1].target, "ipv6:[::1]:50051");
    assert_string_equal(e[2].target, "ipv4:127.0.0.1:50051");
    endpoints_prefer(e, n, "127.0.0.1:50051");
    assert_string_equal(e[0].name, "127.0.0.1:50051");
    assert_string_equal(e[1].name, "a.example:1");
    assert_string_equal(e[2].name, "[::1]:50051");
    endpoints_prefer(e, n, "not-there:1");
    assert_string_equal(e[0].name, "127.0.0.1:50051");
    free(e);
    const char *bad[][1] = {{"nohost"},     {"host:"},       {"host:0"},        {"host:70000"},    {":50051"},
                            {"host:12x"},   {"host:+5"},     {"unix:/run/x:1"}, {"unix:///x:443"}, {"ipv4:1.2.3.4:5"},
                            {"[nope]:443"}, {"999.1.1.1:1"}, {"a b:1"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(endpoints_from_list(bad[i], 1, &e, &n, err, sizeof err), -1);
        assert_non_null(strstr(err, bad[i][0]));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(priority_first_then_weight),
        cmocka_unit_test(zero_weight_keeps_a_small_chance),
        cmocka_unit_test(every_server_appears_once),
        cmocka_unit_test(endpoints_from_srv_name_the_dns_server),
        cmocka_unit_test(srv_targets_are_checked),
        cmocka_unit_test(explicit_list_is_checked_and_last_good_goes_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
