/* test_key_check.c -- the local key check and its advice on where to look. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "activate.h"

static const char ALPHABET[] = "BCDFGHJKMPQRTVWXY2346789";
static const char *VALID[] = {"QPM6N-7J2WJ-P88HH-P3YRH-YY74H", "K8KNG-MGG4H-KX82M-M8QYW-DGRFH",
                              "W269N-WFGWX-YVC9B-4J6C9-T83GX"};

static pa_err check(const char *text, pa_key_problem *p) {
    char canonical[PA_KEY_TEXT_LEN + 1];
    return pa_key_check(text, canonical, p);
}

static void valid_keys_pass_and_normalise(void **state) {
    char canonical[PA_KEY_TEXT_LEN + 1];
    pa_key_problem p;
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(pa_key_check(VALID[i], canonical, &p), PA_OK);
        assert_string_equal(canonical, VALID[i]);
    }
    assert_int_equal(pa_key_check("  qpm6n7j2wjp88hhp3yrhyy74h ", canonical, &p), PA_OK);
    assert_string_equal(canonical, VALID[0]);
}

static void empty_key(void **state) {
    pa_key_problem p;
    assert_int_equal(check("   ", &p), PA_ERR_KEY);
    assert_string_equal(p.reason, "empty");
    assert_int_equal(check(NULL, &p), PA_ERR_KEY);
}

static void legacy_key_is_named_as_such(void **state) {
    pa_key_problem p;
    assert_int_equal(check("BCDFG-HJKMP-QRTVW-XY234-6789B", &p), PA_ERR_KEY);
    assert_string_equal(p.reason, "legacy");
    assert_non_null(strstr(p.message, "older-format"));
    assert_null(strstr(p.message, "typo"));
}

static void bad_character_names_its_group(void **state) {
    pa_key_problem p;
    assert_int_equal(check("QPM6N-7J2WJ-P8OHH-P3YRH-YY74H", &p), PA_ERR_KEY);
    assert_string_equal(p.reason, "character");
    assert_int_equal(p.group, 3);
    assert_non_null(strstr(p.message, "'O'"));
    assert_non_null(strstr(p.message, "group 3, character 3"));
}

static void short_group_is_named(void **state) {
    pa_key_problem p;
    assert_int_equal(check("QPM6N-7J2WJ-P88H-P3YRH-YY74H", &p), PA_ERR_KEY);
    assert_string_equal(p.reason, "length");
    assert_int_equal(p.group, 3);
    assert_non_null(strstr(p.message, "group 3 has 4"));
    assert_int_equal(check("QPM6N7J2WJP88HP3YRHYY74H", &p), PA_ERR_KEY);
    assert_int_equal(p.group, 0);
    assert_non_null(strstr(p.message, "24"));
}

static void n_rules(void **state) {
    pa_key_problem p;
    assert_int_equal(check("QPM6N-7J2WN-P88HH-P3YRH-YY74H", &p), PA_ERR_KEY);
    assert_string_equal(p.reason, "multiple_n");
    assert_int_equal(check("QPM6B-7J2WJ-P88HH-P3YRH-YY74N", &p), PA_ERR_KEY);
    assert_string_equal(p.reason, "n_last");
    assert_int_equal(p.group, 5);
}

/* The groups listed after "in group " in a checksum message. */
static const char *listed_groups(const pa_key_problem *p) {
    const char *s = strstr(p->message, "in group ");
    return s ? s + 9 : "";
}

/* Every single-character typo: the message lists the mistyped group, and a
 * single named group is always the right one. */
static void checksum_typo_points_at_its_group(void **state) {
    int total = 0, pinned = 0;
    for (size_t k = 0; k < 3; k++) {
        char plain[26];
        size_t n = 0;
        for (const char *s = VALID[k]; *s; s++)
            if (*s != '-') plain[n++] = *s;
        plain[n] = '\0';
        for (int pos = 0; pos < 25; pos++) {
            if (plain[pos] == 'N') continue;
            for (const char *a = ALPHABET; *a; a++) {
                if (*a == plain[pos]) continue;
                char typo[26];
                memcpy(typo, plain, sizeof typo);
                typo[pos] = *a;
                pa_key_problem p;
                if (check(typo, &p) == PA_OK) continue;  /* ~1/1024 typos pass the checksum */
                assert_string_equal(p.reason, "checksum");
                int group = pos / 5 + 1;
                char digit[2] = {(char)('0' + group), 0};
                const char *list = listed_groups(&p);
                assert_non_null(strstr(list, digit));
                assert_true(p.group == 0 || p.group == group);
                total++;
                pinned += p.group == group;
            }
        }
    }
    /* Usually one group is named outright (a spurious fix elsewhere is rarer). */
    printf("checksum typos: %d, group named outright: %d (%.0f %%)\n", total, pinned, 100.0 * pinned / total);
    assert_true(pinned * 10 > total * 4);
}

static void swapped_characters_point_at_their_group(void **state) {
    pa_key_problem p;
    /* P88HH -> P8H8H: a swap inside group 3. */
    pa_err e = check("QPM6N-7J2WJ-P8H8H-P3YRH-YY74H", &p);
    if (e == PA_OK) skip();  /* the checksum happened to pass: nothing to test */
    assert_string_equal(p.reason, "checksum");
    assert_non_null(strstr(listed_groups(&p), "3"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_keys_pass_and_normalise),
        cmocka_unit_test(empty_key),
        cmocka_unit_test(legacy_key_is_named_as_such),
        cmocka_unit_test(bad_character_names_its_group),
        cmocka_unit_test(short_group_is_named),
        cmocka_unit_test(n_rules),
        cmocka_unit_test(checksum_typo_points_at_its_group),
        cmocka_unit_test(swapped_characters_point_at_their_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
