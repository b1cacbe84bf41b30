/* test_srv_order.c -- RFC 2782 ordering of SRV answers, and the endpoint
 * list built from it. Weights are checked statistically over many picks. */
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
    assert_int_equal(endpoints_from_srv(r, 2, "127.0.0.1:5353", &e, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(e[0].name, "act1.example.test:50051");
    assert_string_equal(e[0].target, "dns://127.0.0.1:5353/act1.example.test:50051");
    free(e);
    assert_int_equal(endpoints_from_srv(r, 2, NULL, &e, &n), 0);
    assert_string_equal(e[1].target, "act2.example.test:50051");
    free(e);
}

static void explicit_list_is_checked_and_last_good_goes_first(void **state) {
    const char *good[] = {"a.example:1", "[::1]:50051", "127.0.0.1:50051"};
    endpoint *e;
    size_t n;
    char err[256];
    assert_int_equal(endpoints_from_list(good, 3, &e, &n, err, sizeof err), 0);
    endpoints_prefer(e, n, "127.0.0.1:50051");
    assert_string_equal(e[0].name, "127.0.0.1:50051");
    assert_string_equal(e[1].name, "a.example:1");
    assert_string_equal(e[2].name, "[::1]:50051");
    endpoints_prefer(e, n, "not-there:1");
    assert_string_equal(e[0].name, "127.0.0.1:50051");
    free(e);
    const char *bad[][1] = {{"nohost"}, {"host:"}, {"host:0"}, {"host:70000"}, {":50051"}, {"host:12x"}};
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
        cmocka_unit_test(explicit_list_is_checked_and_last_good_goes_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
