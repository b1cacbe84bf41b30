/* test_keycodec.c -- the product key codec against docs/key-format.md.
 *
 * The published vectors pin the bit layout; random round trips pin encode
 * and decode as inverses; every error class is provoked with its position
 * and character asserted; the checksum's miss rate for single-character
 * typos is measured against the 1-in-1024 the format promises; and the
 * table-driven CRC is compared with a bit-by-bit reference written here
 * from the definition, on a 128-bit value packed here byte by byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "keycodec.h"

static const char alphabet[] = "BCDFGHJKMPQRTVWXY2346789";

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Du;
}

static pk_fields random_fields(void) {
    pk_fields f = {0};
    f.group = (uint32_t)(rnd() & PK_GROUP_MAX);
    f.serial = (uint32_t)(rnd() & PK_SERIAL_MAX);
    f.security_first = rnd() & PK_SECURITY_FIRST_MAX;
    f.security_second = (uint32_t)(rnd() & PK_SECURITY_SECOND_MAX);
    f.upgrade = rnd() & 1;
    return f;
}

static pk_status decode_str(const char *s, pk_fields *f, pk_error *e) {
    return pk_decode(s, strlen(s), f, e);
}

static void assert_canonical_shape(const char *k) {
    assert_int_equal(strlen(k), PK_TEXT_LEN);
    int n = 0;
    for (int i = 0; i < PK_TEXT_LEN; i++) {
        if (i % 6 == 5) {
            assert_int_equal(k[i], '-');
        } else if (k[i] == 'N') {
            n++;
        } else {
            assert_non_null(strchr(alphabet, k[i]));
        }
    }
    assert_int_equal(n, 1);
    assert_int_not_equal(k[PK_TEXT_LEN - 1], 'N');
}

/* ---- published vectors ------------------------------------------------ */

static uint64_t security53(const pk_fields *f) {
    return f->security_first | (uint64_t)f->security_second << 40;
}

static void test_vector_qpm6n(void **state) {
    pk_fields f;
    pk_error e;
    char out[PK_TEXT_LEN + 1];
    assert_int_equal(decode_str("QPM6N-7J2WJ-P88HH-P3YRH-YY74H", &f, &e), PK_OK);
    assert_int_equal(e.status, PK_OK);
    assert_int_equal(f.group, 4365);
    assert_int_equal(f.serial, 0);
    assert_true(security53(&f) == UINT64_C(34969266479148));
    assert_int_equal(f.checksum, 583);
    assert_false(f.upgrade);
    assert_int_equal(pk_checksum(&f), 583);
    assert_int_equal(pk_encode(&f, out), 0);
    assert_string_equal(out, "QPM6N-7J2WJ-P88HH-P3YRH-YY74H");
}

static void test_vector_k8kng(void **state) {
    pk_fields f;
    char out[PK_TEXT_LEN + 1];
    assert_int_equal(decode_str("K8KNG-MGG4H-KX82M-M8QYW-DGRFH", &f, NULL), PK_OK);
    assert_int_equal(f.group, 4365);
    assert_int_equal(f.serial, 11);
    assert_true(security53(&f) == 12);
    assert_int_equal(f.checksum, 438);
    assert_int_equal(pk_encode(&f, out), 0);
    assert_string_equal(out, "K8KNG-MGG4H-KX82M-M8QYW-DGRFH");
}

static void test_vector_w269n(void **state) {
    pk_fields f;
    char out[PK_TEXT_LEN + 1];
    assert_int_equal(decode_str("W269N-WFGWX-YVC9B-4J6C9-T83GX", &f, NULL), PK_OK);
    assert_int_equal(f.group, 3311);
    assert_int_equal(f.serial, 1);
    assert_int_equal(f.checksum, pk_checksum(&f));
    assert_int_equal(pk_encode(&f, out), 0);
    assert_string_equal(out, "W269N-WFGWX-YVC9B-4J6C9-T83GX");
}

/* ---- round trips ------------------------------------------------------ */

/* The same key through the careful path: surrounding spaces and lowercase
 * bypass the canonical fast path, and must change nothing. */
static void assert_careful_path_agrees(const char *key, const pk_fields *want) {
    char padded[PK_TEXT_LEN + 3];
    pk_fields f;
    snprintf(padded, sizeof padded, " %s ", key);
    for (char *c = padded; *c; c++)
        if (*c >= 'A' && *c <= 'Z' && *c != 'N') *c = (char)(*c - 'A' + 'a');
    assert_int_equal(decode_str(padded, &f, NULL), PK_OK);
    assert_memory_equal(&f, want, sizeof f);
}

static void assert_round_trip(const pk_fields *in) {
    char key[PK_TEXT_LEN + 1];
    pk_fields out;
    pk_error e;
    assert_int_equal(pk_encode(in, key), 0);
    assert_canonical_shape(key);
    assert_int_equal(decode_str(key, &out, &e), PK_OK);
    assert_careful_path_agrees(key, &out);
    assert_int_equal(out.group, in->group);
    assert_int_equal(out.serial, in->serial);
    assert_true(out.security_first == in->security_first);
    assert_int_equal(out.security_second, in->security_second);
    assert_int_equal(out.upgrade, in->upgrade);
    assert_int_equal(out.checksum, pk_checksum(in));
}

static void test_round_trip_random(void **state) {
    for (int i = 0; i < 100000; i++) {
        pk_fields f = random_fields();
        f.checksum = (uint32_t)(rnd() & PK_CHECKSUM_MAX); /* ignored by encode */
        assert_round_trip(&f);
    }
}

static void test_round_trip_extremes(void **state) {
    pk_fields zero = {0};
    pk_fields max = {PK_GROUP_MAX, PK_SERIAL_MAX, PK_SECURITY_FIRST_MAX, PK_SECURITY_SECOND_MAX, 0, true};
    assert_round_trip(&zero);
    assert_round_trip(&max);
    for (int bit = 0; bit < 40; bit++) {  /* each security bit alone crosses the limb boundary */
        pk_fields f = {0};
        f.security_first = UINT64_C(1) << bit;
        assert_round_trip(&f);
    }
}

static void test_encode_rejects_out_of_range(void **state) {
    char key[PK_TEXT_LEN + 1];
    pk_fields f = {0};
    f.group = PK_GROUP_MAX + 1;
    assert_int_equal(pk_encode(&f, key), -1);
    f.group = 0;
    f.serial = PK_SERIAL_MAX + 1;
    assert_int_equal(pk_encode(&f, key), -1);
    f.serial = 0;
    f.security_first = PK_SECURITY_FIRST_MAX + 1;
    assert_int_equal(pk_encode(&f, key), -1);
    f.security_first = 0;
    f.security_second = PK_SECURITY_SECOND_MAX + 1;
    assert_int_equal(pk_encode(&f, key), -1);
    assert_int_equal(pk_encode(NULL, key), -1);
}

/* ---- input forms ------------------------------------------------------ */

static void test_input_forms(void **state) {
    const char *forms[] = {
        "W269N-WFGWX-YVC9B-4J6C9-T83GX",
        "w269n-wfgwx-yvc9b-4j6c9-t83gx",
        "W269NWFGWXYVC9B4J6C9T83GX",
        "  W269N-WFGWX-YVC9B-4J6C9-T83GX  ",
        "\tw269nWFGWXyvc9b4J6C9t83gx\r\n",
        "W269N-WFGWXYVC9B-4J6C9T83GX",   /* some hyphens only */
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        pk_fields f;
        char norm[PK_TEXT_LEN + 1];
        assert_int_equal(decode_str(forms[i], &f, NULL), PK_OK);
        assert_int_equal(f.group, 3311);
        assert_int_equal(f.serial, 1);
        assert_int_equal(pk_normalize(forms[i], strlen(forms[i]), norm, NULL), PK_OK);
        assert_string_equal(norm, "W269N-WFGWX-YVC9B-4J6C9-T83GX");
    }
}

static void test_length_argument_is_respected(void **state) {
    /* Only the first `len` bytes count: trailing garbage beyond is unseen. */
    const char *s = "W269N-WFGWX-YVC9B-4J6C9-T83GX!!!";
    pk_fields f;
    assert_int_equal(pk_decode(s, PK_TEXT_LEN, &f, NULL), PK_OK);
    assert_int_equal(pk_decode(s, PK_TEXT_LEN - 1, &f, NULL), PK_ERR_LENGTH);
}

/* ---- error classes ---------------------------------------------------- */

static void expect_error(const char *text, pk_status want, int position, char character,
                         const char *message_part) {
    pk_fields f;
    pk_error e;
    char msg[256];
    assert_int_equal(decode_str(text, &f, &e), want);
    assert_int_equal(e.status, want);
    assert_int_equal(e.position, position);
    assert_int_equal(e.character, character);
    pk_strerror(&e, msg, sizeof msg);
    if (!strstr(msg, message_part)) fail_msg("message \"%s\" lacks \"%s\"", msg, message_part);
}

static void test_error_empty(void **state) {
    expect_error("", PK_ERR_EMPTY, 0, 0, "empty");
    expect_error("   \t\n", PK_ERR_EMPTY, 0, 0, "empty");
    pk_error e;
    assert_int_equal(pk_decode(NULL, 0, NULL, &e), PK_ERR_EMPTY);
}

static void test_error_length(void **state) {
    pk_error e;
    expect_error("W269N-WFGWX-YVC9B-4J6C9-T83G", PK_ERR_LENGTH, 0, 0, "has 24");
    expect_error("W269N-WFGWX-YVC9B-4J6C9-T83GXX", PK_ERR_LENGTH, 0, 0, "has 26");
    assert_int_equal(decode_str("ABC", NULL, &e), PK_ERR_LENGTH);
    assert_int_equal(e.length, 3);
}

static void test_error_hyphen(void **state) {
    expect_error("W269-NWFGWX-YVC9B-4J6C9-T83GX", PK_ERR_HYPHEN, 5, '-', "position 5");
    expect_error("W269N--WFGWX-YVC9B-4J6C9-T83GX", PK_ERR_HYPHEN, 7, '-', "position 7");
    expect_error("-W269N-WFGWX-YVC9B-4J6C9-T83GX", PK_ERR_HYPHEN, 1, '-', "position 1");
    expect_error("W269N-WFGWX-YVC9B-4J6C9-T83GX-", PK_ERR_HYPHEN, 30, '-', "position 30");
    /* Leading spaces do not count towards the position. */
    expect_error("  W269-NWFGWX-YVC9B-4J6C9-T83GX", PK_ERR_HYPHEN, 5, '-', "position 5");
}

static void test_error_character(void **state) {
    expect_error("W26ON-WFGWX-YVC9B-4J6C9-T83GX", PK_ERR_CHAR, 4, 'O', "'O' at position 4");
    expect_error("W269N-WFGWX-YVC9B-4J6C9-T83G0", PK_ERR_CHAR, 25, '0', "'0' at position 25");
    expect_error("a269N-WFGWX-YVC9B-4J6C9-T83GX", PK_ERR_CHAR, 1, 'a', "'a' at position 1");
    expect_error("W269N-WF WX-YVC9B-4J6C9-T83GX", PK_ERR_CHAR, 8, ' ', "a space at position 8");
    expect_error("W269N-WFGWX-YVC9B-4J6C9-T8\x01GX", PK_ERR_CHAR, 23, '\x01', "byte 0x01 at position 23");
    /* The first bad character wins. */
    expect_error("W269N-WFGWX-YVC9B-4J6C9-T8EIX", PK_ERR_CHAR, 23, 'E', "position 23");
}

static void test_error_legacy(void **state) {
    expect_error("BBBBB-CCCCC-DDDDD-FFFFF-GGGGG", PK_ERR_LEGACY, 0, 0, "older-format");
    pk_error e = {PK_ERR_LEGACY, 0, 0, 25};
    char msg[256];
    pk_strerror(&e, msg, sizeof msg);
    assert_non_null(strstr(msg, "legacy"));
    assert_non_null(strstr(msg, "not a typing error"));
}

static void test_error_multiple_n(void **state) {
    expect_error("W26NN-WFGWX-YVC9B-4J6C9-T83GX", PK_ERR_MULTIPLE_N, 5, 'N', "position 5");
    expect_error("NBBBB-BBBBB-BBBBB-BBBBB-BBBBN", PK_ERR_MULTIPLE_N, 25, 'N', "more than once");
}

static void test_error_n_last(void **state) {
    expect_error("W269B-WFGWX-YVC9B-4J6C9-T83GN", PK_ERR_N_LAST, 25, 'N', "last character");
}

static void test_error_range(void **state) {
    /* N at index 16 makes V >= 16 * 24^24 > 2^114: the reserved bit is set. */
    expect_error("BBBBB-BBBBB-BBBBB-BNBBB-BBBBB", PK_ERR_RANGE, 0, 0, "out of range");
    /* N at index 15 with every other digit 23: V = 16 * 24^24 - 1, still too big. */
    expect_error("99999-99999-99999-N9999-99999", PK_ERR_RANGE, 0, 0, "reserved");
    /* N at index 15 with zeros: V = 15 * 24^24 < 2^114, so only the checksum can fail. */
    pk_status s = decode_str("BBBBB-BBBBB-BBBBB-NBBBB-BBBBB", NULL, NULL);
    assert_true(s == PK_OK || s == PK_ERR_CHECKSUM);
}

static void test_error_checksum(void **state) {
    pk_fields f;
    expect_error("W269N-WFGWX-YVC9B-4J6C9-T83GB", PK_ERR_CHECKSUM, 0, 0, "checksum");
    /* Fields are still filled so a caller can show them. */
    assert_int_equal(decode_str("W269N-WFGWX-YVC9B-4J6C9-T83GB", &f, NULL), PK_ERR_CHECKSUM);
    assert_int_not_equal(f.checksum, pk_checksum(&f));
}

static void test_error_names_and_messages_distinct(void **state) {
    char seen[PK_ERR_CHECKSUM + 1][256];
    for (int s = PK_OK; s <= PK_ERR_CHECKSUM; s++) {
        pk_error e = {(pk_status)s, 3, 'O', 24};
        pk_strerror(&e, seen[s], sizeof seen[s]);
        assert_true(strlen(seen[s]) > 10);
        for (int t = PK_OK; t < s; t++) {
            assert_string_not_equal(seen[s], seen[t]);
            assert_string_not_equal(pk_status_name((pk_status)s), pk_status_name((pk_status)t));
        }
    }
    /* A short buffer truncates but stays a string. */
    pk_error e = {PK_ERR_LEGACY, 0, 0, 25};
    char tiny[8];
    pk_strerror(&e, tiny, sizeof tiny);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

static void test_normalize_reports_syntax_errors(void **state) {
    char out[PK_TEXT_LEN + 1];
    pk_error e;
    assert_int_equal(pk_normalize("W26ON-WFGWX-YVC9B-4J6C9-T83GX", 29, out, &e), PK_ERR_CHAR);
    assert_int_equal(e.position, 4);
    assert_string_equal(out, "");
    /* Normalising does not judge the checksum. */
    assert_int_equal(pk_normalize("w269nwfgwxyvc9b4j6c9t83gb", 25, out, NULL), PK_OK);
    assert_string_equal(out, "W269N-WFGWX-YVC9B-4J6C9-T83GB");
}

/* ---- checksum --------------------------------------------------------- */

/* Bit-by-bit CRC-32, MSB first, poly 0x04C11DB7, init ~0, from the definition. */
static uint32_t reference_crc(const uint8_t *p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        for (int b = 7; b >= 0; b--) {
            uint32_t in = (p[i] >> b) & 1u;
            uint32_t top = crc >> 31;
            crc <<= 1;
            if (top ^ in) crc ^= 0x04C11DB7u;
        }
    }
    return crc;
}

static void set_bits(uint8_t v[16], int from, int width, uint64_t value) {
    for (int i = 0; i < width; i++)
        if ((value >> i) & 1) v[(from + i) / 8] |= (uint8_t)(1u << ((from + i) % 8));
}

static void test_checksum_matches_reference(void **state) {
    for (int i = 0; i < 20000; i++) {
        pk_fields f = random_fields();
        uint8_t v[16] = {0};
        set_bits(v, 0, 20, f.group);
        set_bits(v, 20, 30, f.serial);
        set_bits(v, 50, 40, f.security_first);
        set_bits(v, 90, 13, f.security_second);
        set_bits(v, 113, 1, f.upgrade);
        assert_int_equal(pk_checksum(&f), ~reference_crc(v, 16) & 0x3FFu);
    }
}

/* Changing one character (to another letter of the alphabet, N left in
 * place) must slip past the checksum about once in 1,024 tries. */
static void test_checksum_catches_single_changes(void **state) {
    const int trials = 400000;
    int passed = 0, range = 0;
    for (int i = 0; i < trials; i++) {
        pk_fields f = random_fields();
        char key[PK_TEXT_LEN + 1];
        assert_int_equal(pk_encode(&f, key), 0);
        int pos;
        do pos = (int)(rnd() % PK_TEXT_LEN);
        while (key[pos] == '-' || key[pos] == 'N');
        char c;
        do c = alphabet[rnd() % 24];
        while (c == key[pos]);
        key[pos] = c;
        pk_status s = decode_str(key, NULL, NULL);
        if (s == PK_OK) passed++;
        else if (s == PK_ERR_RANGE) range++;
        else assert_int_equal(s, PK_ERR_CHECKSUM);
    }
    double rate = (double)passed / (trials - range);
    print_message("single-character changes passing the checksum: %d of %d (%.4f%%)\n", passed,
                  trials - range, 100.0 * rate);
    assert_true(rate > 0.0005 && rate < 0.003);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_qpm6n),
        cmocka_unit_test(test_vector_k8kng),
        cmocka_unit_test(test_vector_w269n),
        cmocka_unit_test(test_round_trip_random),
        cmocka_unit_test(test_round_trip_extremes),
        cmocka_unit_test(test_encode_rejects_out_of_range),
        cmocka_unit_test(test_input_forms),
        cmocka_unit_test(test_length_argument_is_respected),
        cmocka_unit_test(test_error_empty),
        cmocka_unit_test(test_error_length),
        cmocka_unit_test(test_error_hyphen),
        cmocka_unit_test(test_error_character),
        cmocka_unit_test(test_error_legacy),
        cmocka_unit_test(test_error_multiple_n),
        cmocka_unit_test(test_error_n_last),
        cmocka_unit_test(test_error_range),
        cmocka_unit_test(test_error_checksum),
        cmocka_unit_test(test_error_names_and_messages_distinct),
        cmocka_unit_test(test_normalize_reports_syntax_errors),
        cmocka_unit_test(test_checksum_matches_reference),
        cmocka_unit_test(test_checksum_catches_single_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
