/* test_mac_registry.c -- MAC algorithms against published vectors, and the
 * properties security values must have.
 *
 * HMAC-SHA256: RFC 4231 test cases 1-7 (case 5 is a truncated output).
 * AES-256-CMAC: NIST SP 800-38B Appendix D.3, examples 9-12 (AES-256; RFC
 * 4493 publishes the AES-128 examples of the same document, and our
 * algorithm is AES-256 only).
 * Security values: the identity bytes are exactly as documented, values stay
 * in 40 / 13 bits and use all of them, are the leading bits of the MAC,
 * are deterministic, and change with the secret, role, serial and upgrade. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "hex.h"
#include "mac_registry.h"

static size_t unhex(const char *hex, uint8_t *out, size_t cap) {
    long n = pa_hex_decode(hex, strlen(hex), out, cap);
    assert_true(n >= 0);
    return (size_t)n;
}

static void fill(uint8_t *p, uint8_t v, size_t n) {
    memset(p, v, n);
}

static void assert_mac(int alg, const uint8_t *key, size_t key_len, const uint8_t *msg, size_t msg_len,
                       const char *expected_hex) {
    uint8_t want[32], got[32];
    size_t want_len = unhex(expected_hex, want, sizeof want);
    mac_key *k = mac_key_new(alg, key, key_len);
    assert_non_null(k);
    int n = mac_compute(k, msg, msg_len, got);
    assert_true(n >= (int)want_len);
    assert_memory_equal(got, want, want_len);
    /* The key is reusable: a second computation gives the same result. */
    assert_int_equal(mac_compute(k, msg, msg_len, got), n);
    assert_memory_equal(got, want, want_len);
    mac_key_free(k);
}

/* ---- RFC 4231 --------------------------------------------------------- */

static void test_rfc4231_case1(void **state) {
    uint8_t key[20];
    fill(key, 0x0b, sizeof key);
    assert_mac(MAC_ALG_HMAC_SHA256, key, sizeof key, (const uint8_t *)"Hi There", 8,
               "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

static void test_rfc4231_case2(void **state) {
    const char *data = "what do ya want for nothing?";
    assert_mac(MAC_ALG_HMAC_SHA256, (const uint8_t *)"Jefe", 4, (const uint8_t *)data, strlen(data),
               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_rfc4231_case3(void **state) {
    uint8_t key[20], data[50];
    fill(key, 0xaa, sizeof key);
    fill(data, 0xdd, sizeof data);
    assert_mac(MAC_ALG_HMAC_SHA256, key, sizeof key, data, sizeof data,
               "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}

static void test_rfc4231_case4(void **state) {
    uint8_t key[25], data[50];
    for (size_t i = 0; i < sizeof key; i++) key[i] = (uint8_t)(i + 1);
    fill(data, 0xcd, sizeof data);
    assert_mac(MAC_ALG_HMAC_SHA256, key, sizeof key, data, sizeof data,
               "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

static void test_rfc4231_case5_truncated(void **state) {
    uint8_t key[20];
    fill(key, 0x0c, sizeof key);
    assert_mac(MAC_ALG_HMAC_SHA256, key, sizeof key, (const uint8_t *)"Test With Truncation", 20,
               "a3b6167473100ee06e0c796c2955552b");
}

static void test_rfc4231_case6(void **state) {
    uint8_t key[131];
    const char *data = "Test Using Larger Than Block-Size Key - Hash Key First";
    fill(key, 0xaa, sizeof key);
    assert_mac(MAC_ALG_HMAC_SHA256, key, sizeof key, (const uint8_t *)data, strlen(data),
               "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_rfc4231_case7(void **state) {
    uint8_t key[131];
    const char *data = "This is a test using a larger than block-size key and a larger than block-size data. "
                       "The key needs to be hashed before being used by the HMAC algorithm.";
    fill(key, 0xaa, sizeof key);
    assert_mac(MAC_ALG_HMAC_SHA256, key, sizeof key, (const uint8_t *)data, strlen(data),
               "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

/* ---- NIST SP 800-38B, CMAC-AES256 ------------------------------------- */

#define NIST_AES256_KEY "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"
#define NIST_MESSAGE                                                                      \
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"                     \
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"

static void assert_nist_cmac(size_t msg_len, const char *expected_hex) {
    uint8_t key[32], msg[64];
    assert_int_equal(unhex(NIST_AES256_KEY, key, sizeof key), 32);
    assert_int_equal(unhex(NIST_MESSAGE, msg, sizeof msg), 64);
    assert_mac(MAC_ALG_AES256_CMAC, key, sizeof key, msg, msg_len, expected_hex);
}

static void test_nist_cmac_aes256_example9(void **state) {
    assert_nist_cmac(0, "028962f61b7bf89efc6b551f4667d983");
}

static void test_nist_cmac_aes256_example10(void **state) {
    assert_nist_cmac(16, "28a7023f452e8f82bd4bf28d8c37c35c");
}

static void test_nist_cmac_aes256_example11(void **state) {
    assert_nist_cmac(40, "aaf3d8f1de5640c232f5b169b9c911e6");
}

static void test_nist_cmac_aes256_example12(void **state) {
    assert_nist_cmac(64, "e1992190549f6ed5696a2c056c315410");
}

/* ---- registry --------------------------------------------------------- */

static void test_registry_names(void **state) {
    assert_true(mac_alg_known(MAC_ALG_HMAC_SHA256));
    assert_true(mac_alg_known(MAC_ALG_AES256_CMAC));
    assert_false(mac_alg_known(0));
    assert_false(mac_alg_known(3));
    assert_string_equal(mac_alg_name(1), "hmac-sha256");
    assert_string_equal(mac_alg_name(2), "aes256-cmac");
    assert_null(mac_alg_name(99));
    assert_int_equal(mac_alg_parse("hmac-sha256"), 1);
    assert_int_equal(mac_alg_parse("HMAC-SHA256"), 1);
    assert_int_equal(mac_alg_parse("aes256-cmac"), 2);
    assert_int_equal(mac_alg_parse("2"), 2);
    assert_int_equal(mac_alg_parse("1"), 1);
    assert_int_equal(mac_alg_parse("3"), 0);
    assert_int_equal(mac_alg_parse("md5"), 0);
    assert_int_equal(mac_alg_parse(""), 0);
    assert_int_equal(mac_alg_parse("1x"), 0);
    assert_int_equal(mac_alg_parse(NULL), 0);
}

static void test_key_new_refuses_bad_input(void **state) {
    uint8_t secret[32] = {1};
    assert_null(mac_key_new(3, secret, sizeof secret));
    assert_null(mac_key_new(MAC_ALG_HMAC_SHA256, NULL, 32));
    assert_null(mac_key_new(MAC_ALG_HMAC_SHA256, secret, 0));
    assert_null(mac_key_new(MAC_ALG_AES256_CMAC, secret, 16));  /* AES-256 needs 32 bytes */
    assert_null(mac_key_new(MAC_ALG_AES256_CMAC, secret, 31));
    mac_key_free(NULL);
}

static void test_identity_encoding(void **state) {
    uint8_t id[MAC_IDENTITY_LEN];
    const uint8_t want[MAC_IDENTITY_LEN] = {0x01, 0x02, 0x00, 0x0A, 0xBC, 0xDE, 0x3F, 0xFF, 0x00, 0x01, 0x01};
    mac_identity(id, MAC_ROLE_SECOND, 0xABCDE, 0x3FFF0001, true);
    assert_memory_equal(id, want, sizeof want);
    mac_identity(id, MAC_ROLE_FIRST, 1, 2, false);
    const uint8_t want2[MAC_IDENTITY_LEN] = {0x01, 0x01, 0, 0, 0, 1, 0, 0, 0, 2, 0};
    assert_memory_equal(id, want2, sizeof want2);
}

/* ---- security values -------------------------------------------------- */

static mac_key *key_with(int alg, uint8_t seed) {
    uint8_t secret[MAC_SECRET_LEN];
    for (size_t i = 0; i < sizeof secret; i++) secret[i] = (uint8_t)(seed * 31 + i);
    mac_key *k = mac_key_new(alg, secret, sizeof secret);
    assert_non_null(k);
    return k;
}

static void check_values_are_leading_mac_bits(int alg) {
    mac_key *k = key_with(alg, 7);
    uint8_t id[MAC_IDENTITY_LEN], m[32];
    uint64_t v;
    mac_identity(id, MAC_ROLE_FIRST, 4365, 11, false);
    assert_true(mac_compute(k, id, sizeof id, m) > 0);
    assert_int_equal(mac_security_value(k, MAC_ROLE_FIRST, 4365, 11, false, &v), 0);
    assert_true(v == ((uint64_t)m[0] << 32 | (uint64_t)m[1] << 24 | (uint64_t)m[2] << 16 |
                      (uint64_t)m[3] << 8 | m[4]));
    mac_identity(id, MAC_ROLE_SECOND, 4365, 11, false);
    assert_true(mac_compute(k, id, sizeof id, m) > 0);
    assert_int_equal(mac_security_value(k, MAC_ROLE_SECOND, 4365, 11, false, &v), 0);
    assert_true(v == ((uint64_t)m[0] << 5 | m[1] >> 3));
    mac_key_free(k);
}

static void test_values_are_leading_mac_bits(void **state) {
    check_values_are_leading_mac_bits(MAC_ALG_HMAC_SHA256);
    check_values_are_leading_mac_bits(MAC_ALG_AES256_CMAC);
}

static void check_ranges_use_all_bits(int alg) {
    mac_key *k = key_with(alg, 1);
    uint64_t or_first = 0, or_second = 0, v;
    for (uint32_t serial = 0; serial < 4000; serial++) {
        assert_int_equal(mac_security_value(k, MAC_ROLE_FIRST, 9, serial, false, &v), 0);
        assert_true(v <= (UINT64_C(1) << 40) - 1);
        or_first |= v;
        assert_int_equal(mac_security_value(k, MAC_ROLE_SECOND, 9, serial, false, &v), 0);
        assert_true(v <= (1u << 13) - 1);
        or_second |= v;
    }
    assert_true(or_first == (UINT64_C(1) << 40) - 1);
    assert_true(or_second == (1u << 13) - 1);
    mac_key_free(k);
}

static void test_ranges_use_all_bits(void **state) {
    check_ranges_use_all_bits(MAC_ALG_HMAC_SHA256);
    check_ranges_use_all_bits(MAC_ALG_AES256_CMAC);
}

static void check_determinism_and_independence(int alg) {
    mac_key *a = key_with(alg, 1), *b = key_with(alg, 2), *a2 = key_with(alg, 1);
    mac_key *dup = mac_key_dup(a);
    assert_non_null(dup);
    int same_first = 0, same_second = 0, role_same = 0, upgrade_same = 0;
    for (uint32_t serial = 0; serial < 512; serial++) {
        uint64_t va, va2, vd, vb, vs, vu, wa, wb;
        assert_int_equal(mac_security_value(a, MAC_ROLE_FIRST, 77, serial, false, &va), 0);
        assert_int_equal(mac_security_value(a2, MAC_ROLE_FIRST, 77, serial, false, &va2), 0);
        assert_int_equal(mac_security_value(dup, MAC_ROLE_FIRST, 77, serial, false, &vd), 0);
        assert_int_equal(mac_security_value(b, MAC_ROLE_FIRST, 77, serial, false, &vb), 0);
        assert_int_equal(mac_security_value(a, MAC_ROLE_FIRST, 77, serial, true, &vu), 0);
        assert_int_equal(mac_security_value(a, MAC_ROLE_SECOND, 77, serial, false, &vs), 0);
        assert_int_equal(mac_security_value(a, MAC_ROLE_SECOND, 77, serial, false, &wa), 0);
        assert_int_equal(mac_security_value(b, MAC_ROLE_SECOND, 77, serial, false, &wb), 0);
        assert_true(va == va2);
        assert_true(va == vd);
        same_first += va == vb;
        upgrade_same += va == vu;
        role_same += (va >> 27) == vs;   /* the second role is not a prefix of the first */
        same_second += wa == wb;
    }
    /* 40-bit collisions between independent secrets are (practically) impossible;
     * 13-bit ones happen once in 8192 per pair. */
    assert_int_equal(same_first, 0);
    assert_int_equal(upgrade_same, 0);
    assert_true(role_same <= 3);
    assert_true(same_second <= 3);
    mac_key_free(a);
    mac_key_free(a2);
    mac_key_free(b);
    mac_key_free(dup);
}

static void test_determinism_and_independence(void **state) {
    check_determinism_and_independence(MAC_ALG_HMAC_SHA256);
    check_determinism_and_independence(MAC_ALG_AES256_CMAC);
}

static void test_algorithms_differ(void **state) {
    mac_key *h = key_with(MAC_ALG_HMAC_SHA256, 5), *c = key_with(MAC_ALG_AES256_CMAC, 5);
    uint64_t vh, vc;
    assert_int_equal(mac_security_value(h, MAC_ROLE_FIRST, 1, 1, false, &vh), 0);
    assert_int_equal(mac_security_value(c, MAC_ROLE_FIRST, 1, 1, false, &vc), 0);
    assert_true(vh != vc);
    mac_key_free(h);
    mac_key_free(c);
}

static void check_security_check(int alg) {
    mac_key *k = key_with(alg, 3), *other = key_with(alg, 4);
    uint64_t v, s;
    assert_int_equal(mac_security_value(k, MAC_ROLE_FIRST, 12, 345, false, &v), 0);
    assert_int_equal(mac_security_value(k, MAC_ROLE_SECOND, 12, 345, false, &s), 0);
    assert_true(mac_security_check(k, MAC_ROLE_FIRST, 12, 345, false, v));
    assert_true(mac_security_check(k, MAC_ROLE_SECOND, 12, 345, false, s));
    assert_false(mac_security_check(k, MAC_ROLE_FIRST, 12, 345, false, v ^ 1));
    assert_false(mac_security_check(k, MAC_ROLE_FIRST, 12, 345, false, v ^ (UINT64_C(1) << 39)));
    assert_false(mac_security_check(k, MAC_ROLE_FIRST, 12, 345, false, v | UINT64_C(1) << 40));
    assert_false(mac_security_check(k, MAC_ROLE_SECOND, 12, 345, false, s | 1u << 13));
    assert_false(mac_security_check(k, MAC_ROLE_FIRST, 12, 346, false, v));
    assert_false(mac_security_check(k, MAC_ROLE_FIRST, 13, 345, false, v));
    assert_false(mac_security_check(k, MAC_ROLE_FIRST, 12, 345, true, v));
    assert_false(mac_security_check(other, MAC_ROLE_FIRST, 12, 345, false, v));
    assert_false(mac_security_check(k, (mac_role)3, 12, 345, false, v));
    assert_int_equal(mac_security_value(k, (mac_role)0, 12, 345, false, &v), -1);
    mac_key_free(k);
    mac_key_free(other);
}

static void test_security_check(void **state) {
    check_security_check(MAC_ALG_HMAC_SHA256);
    check_security_check(MAC_ALG_AES256_CMAC);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4231_case1),
        cmocka_unit_test(test_rfc4231_case2),
        cmocka_unit_test(test_rfc4231_case3),
        cmocka_unit_test(test_rfc4231_case4),
        cmocka_unit_test(test_rfc4231_case5_truncated),
        cmocka_unit_test(test_rfc4231_case6),
        cmocka_unit_test(test_rfc4231_case7),
        cmocka_unit_test(test_nist_cmac_aes256_example9),
        cmocka_unit_test(test_nist_cmac_aes256_example10),
        cmocka_unit_test(test_nist_cmac_aes256_example11),
        cmocka_unit_test(test_nist_cmac_aes256_example12),
        cmocka_unit_test(test_registry_names),
        cmocka_unit_test(test_key_new_refuses_bad_input),
        cmocka_unit_test(test_identity_encoding),
        cmocka_unit_test(test_values_are_leading_mac_bits),
        cmocka_unit_test(test_ranges_use_all_bits),
        cmocka_unit_test(test_determinism_and_independence),
        cmocka_unit_test(test_algorithms_differ),
        cmocka_unit_test(test_security_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
