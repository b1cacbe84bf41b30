/* test_revocation_page.c -- the pages the revocation puller follows
 * (audit_revocation_page_check): only strictly increasing sequences from
 * above the position asked for, none past the log's last, are accepted, so
 * a server that repeats or reorders entries cannot keep the puller asking
 * for the same page for ever. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

#include "audit_client.h"

/* A page of `n` entries with these sequences and this last_sequence. */
static audit_revocation_page page_of(audit_revocation *e, const uint64_t *seq, size_t n, uint64_t last) {
    for (size_t i = 0; i < n; i++) e[i] = (audit_revocation){.sequence = seq[i], .group = 7, .serial = (uint32_t)i};
    return (audit_revocation_page){.entries = e, .n = n, .last_sequence = last};
}

static void test_increasing_pages_pass(void **state) {
    audit_revocation e[4];
    char err[200] = "";
    audit_revocation_page p = page_of(e, (uint64_t[]){11, 12, 15}, 3, 20);
    assert_int_equal(audit_revocation_page_check(&p, 10, err, sizeof err), 0);
    p = page_of(e, (uint64_t[]){1}, 1, 1);
    assert_int_equal(audit_revocation_page_check(&p, 0, err, sizeof err), 0);
    p = page_of(e, NULL, 0, 5); /* up to date */
    assert_int_equal(audit_revocation_page_check(&p, 5, err, sizeof err), 0);
    p = page_of(e, (uint64_t[]){UINT64_MAX}, 1, UINT64_MAX);
    assert_int_equal(audit_revocation_page_check(&p, UINT64_MAX - 1, err, sizeof err), 0);
}

static void test_pages_that_do_not_advance_are_refused(void **state) {
    struct {
        uint64_t after, last;
        uint64_t seq[3];
        size_t n;
        const char *says;
    } bad[] = {
        {10, 20, {10}, 1, "follows 10"},     /* repeats the position */
        {10, 20, {9}, 1, "follows 10"},      /* goes back */
        {10, 20, {11, 11}, 2, "follows 11"}, /* a duplicate */
        {10, 20, {12, 11}, 2, "follows 12"}, /* out of order */
        {10, 20, {11, 21}, 2, "past the log's last sequence 20"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        audit_revocation e[3];
        audit_revocation_page p = page_of(e, bad[i].seq, bad[i].n, bad[i].last);
        char err[200] = "";
        if (audit_revocation_page_check(&p, bad[i].after, err, sizeof err) == 0) fail_msg("case %zu accepted", i);
        if (!strstr(err, bad[i].says)) fail_msg("case %zu: '%s' does not say '%s'", i, err, bad[i].says);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_increasing_pages_pass),
        cmocka_unit_test(test_pages_that_do_not_advance_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
