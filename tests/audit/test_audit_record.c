/* test_audit_record.c -- the outbox entry decoder (audit_record_from_outbox)
 * against the audit server's Submit checks: an entry the forwarder decodes
 * is submitted in a batch, and the audit server refuses the whole batch if
 * one record in it has a request_id outside [A-Za-z0-9._:-] or a text field
 * that is not printable. Such an entry must be refused by the decoder (the
 * forwarder then drops it at once) rather than decoded and sent forever.
 * Found by tests/fuzz/fuzz_outbox.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_record.h"

/* The outbox fields of a fresh record, as a redisReply array; `field`, if
 * not NULL, gets `value` (len bytes) instead. */
static redisReply *entry(const char *field, const char *value, size_t len) {
    static const uint8_t machine[AUDIT_MACHINE_ID_LEN] = {1, 2, 3};
    pk_fields key = {.group = 5001, .serial = 42, .security_first = 7, .security_second = 9};
    audit_record r;
    assert_int_equal(audit_record_init(&r, &key, machine, "192.0.2.50", "base-rate"), 0);
    audit_record_args a;
    audit_record_outbox_fields(&r, &a);
    redisReply *arr = calloc(1, sizeof *arr);
    assert_non_null(arr);
    arr->type = REDIS_REPLY_ARRAY;
    arr->element = calloc(a.n, sizeof *arr->element);
    assert_non_null(arr->element);
    for (size_t i = 0; i < a.n; i++) {
        const char *s = a.argv[i];
        size_t n = a.len[i];
        if (field && i % 2 == 1 && strcmp(a.argv[i - 1], field) == 0) s = value, n = len;
        redisReply *v = calloc(1, sizeof *v);
        assert_non_null(v);
        v->type = REDIS_REPLY_STRING;
        v->str = malloc(n + 1);
        assert_non_null(v->str);
        memcpy(v->str, s, n);
        v->str[n] = '\0';
        v->len = n;
        arr->element[arr->elements++] = v;
    }
    return arr;
}

static void free_entry(redisReply *arr) {
    for (size_t i = 0; i < arr->elements; i++) {
        free(arr->element[i]->str);
        free(arr->element[i]);
    }
    free(arr->element);
    free(arr);
}

/* Decodes an entry with `field` = value; returns the decoder's result and
 * leaves its message in err. */
static int decode_with(const char *field, const char *value, size_t len, char *err, size_t errlen) {
    redisReply *e = entry(field, value, len);
    audit_record r;
    err[0] = '\0';
    int rc = audit_record_from_outbox(e, &r, err, errlen);
    free_entry(e);
    return rc;
}

static void assert_refused(const char *field, const char *value, size_t len) {
    char err[160], want[80];
    assert_int_equal(decode_with(field, value, len, err, sizeof err), -1);
    snprintf(want, sizeof want, "'%s'", field);
    assert_non_null(strstr(err, want));
}

static void test_good_entry_decodes(void **state) {
    char err[160];
    redisReply *e = entry(NULL, NULL, 0);
    audit_record r;
    assert_int_equal(audit_record_from_outbox(e, &r, err, sizeof err), 0);
    assert_int_equal(strlen(r.request_id), AUDIT_REQUEST_ID_LEN);
    assert_int_equal(r.key.group, 5001);
    assert_int_equal(r.key.serial, 42);
    assert_string_equal(r.client_address, "192.0.2.50");
    assert_string_equal(r.sample_reason, "base-rate");
    free_entry(e);
    /* entries written before the reasons were hyphenated still decode */
    assert_int_equal(decode_with("sample_reason", "first_activation", 16, err, sizeof err), 0);
}

static void test_request_id_must_be_hex(void **state) {
    /* 32 characters each, as the length check wants */
    assert_refused("request_id", "00112233445566778899aabbc?ddeeff", 32); /* the fuzzer's find */
    assert_refused("request_id", "00112233445566778899aabbc ddeeff", 32);
    assert_refused("request_id", "00112233445566778899aabbcc\nddeef", 32);
    assert_refused("request_id", "00112233445566778899aabbcc\0ddeef", 32);
    assert_refused("request_id", "00112233445566778899AABBCCDDEEFF", 32); /* ours are lowercase */
    char err[160];
    assert_int_equal(decode_with("request_id", "00112233445566778899aabbccddeeff", 32, err, sizeof err), 0);
}

static void test_texts_must_be_printable(void **state) {
    assert_refused("client_address", "192.0.2.50\n", 11);
    assert_refused("client_address", "192.0.2.50\0x", 12);
    assert_refused("client_address", "\x1b[2J", 4);
    assert_refused("sample_reason", "base\x7frate", 9);
    assert_refused("sample_reason", "base-rate\xc3\xa9", 11);
    char err[160];
    assert_int_equal(decode_with("client_address", "[2001:db8::1]:443", 17, err, sizeof err), 0);
    assert_int_equal(decode_with("client_address", "", 0, err, sizeof err), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_entry_decodes),
        cmocka_unit_test(test_request_id_must_be_hex),
        cmocka_unit_test(test_texts_must_be_printable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
