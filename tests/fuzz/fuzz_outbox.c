/* fuzz_outbox.c -- libFuzzer target for what the outbox forwarder reads
 * from Redis A: an audit:outbox stream entry's field list, decoded by
 * audit_record_from_outbox (audit_record.c) and then turned into the
 * audit.v1.AuditRecord the forwarder submits.
 *
 * The input is the entry as Redis sends it, in RESP ("*20\r\n$10\r\n
 * request_id\r\n$32\r\n..."), read by a small reader here into the same
 * redisReply tree hiredis builds (hiredis's own reader is not instrumented
 * and, in the version we build against, allocates whatever element count
 * the input claims). Everything in Redis A can be changed by whoever owns an
 * activation server (docs/trust-boundaries.md), so the decoder is a trust
 * boundary for the audit side.
 *
 * The target checks what the forwarder relies on:
 *   - an accepted entry has key fields in range, so audit_record_to_proto
 *     succeeds and its key text decodes to the same fields;
 *   - the record it makes passes the audit server's Submit checks
 *     (audit_service.c: request_id of 1-64 [A-Za-z0-9._:-], at most 64 bytes
 *     of machine id, printable texts of at most 128): the forwarder drops
 *     an entry it cannot decode, but one the audit server refuses would fail
 *     every batch it is in, forever;
 *   - writing the record back as outbox fields (audit_record_outbox_fields)
 *     and decoding that gives the same record;
 *   - the SubmitRequest packs and unpacks to the same record. */
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/v1/audit.pb-c.h"
#include "audit_record.h"
#include "fuzz_util.h"

#define RESP_MAX_DEPTH 4
#define RESP_MAX_ELEMENTS 64

/* ---- a bounded RESP reader -------------------------------------------- */

typedef struct cursor {
    const uint8_t *p, *end;
} cursor;

static void free_reply(redisReply *r) {
    if (!r) return;
    for (size_t i = 0; i < r->elements; i++) free_reply(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

/* The text up to the next CRLF (which is consumed). */
static bool read_line(cursor *c, const uint8_t **s, size_t *len) {
    for (const uint8_t *q = c->p; q + 1 < c->end; q++) {
        if (q[0] == '\r' && q[1] == '\n') {
            *s = c->p;
            *len = (size_t)(q - c->p);
            c->p = q + 2;
            return true;
        }
    }
    return false;
}

/* A decimal number, optionally negative, of at most 18 digits. */
static bool read_number(cursor *c, long long *out) {
    const uint8_t *s;
    size_t len;
    if (!read_line(c, &s, &len) || len == 0) return false;
    size_t i = s[0] == '-' ? 1 : 0;
    if (i == len || len - i > 18) return false;
    long long v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = s[0] == '-' ? -v : v;
    return true;
}

static redisReply *new_reply(int type) {
    redisReply *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->type = type;
    return r;
}

/* Like hiredis: str is NUL-terminated after len bytes. */
static void set_str(redisReply *r, const uint8_t *s, size_t len) {
    r->str = malloc(len + 1);
    if (!r->str) abort();
    memcpy(r->str, s, len);
    r->str[len] = '\0';
    r->len = len;
}

static redisReply *read_reply(cursor *c, int depth) {
    if (c->p >= c->end || depth > RESP_MAX_DEPTH) return NULL;
    uint8_t type = *c->p++;
    const uint8_t *s;
    size_t len;
    long long n;
    redisReply *r;
    switch (type) {
    case '+':
    case '-':
        if (!read_line(c, &s, &len)) return NULL;
        r = new_reply(type == '+' ? REDIS_REPLY_STATUS : REDIS_REPLY_ERROR);
        set_str(r, s, len);
        return r;
    case ':':
        if (!read_number(c, &n)) return NULL;
        r = new_reply(REDIS_REPLY_INTEGER);
        r->integer = n;
        return r;
    case '$':
        if (!read_number(c, &n) || n < -1) return NULL;
        if (n == -1) return new_reply(REDIS_REPLY_NIL);
        if ((size_t)(c->end - c->p) < (size_t)n + 2 || c->p[n] != '\r' || c->p[n + 1] != '\n') return NULL;
        r = new_reply(REDIS_REPLY_STRING);
        set_str(r, c->p, (size_t)n);
        c->p += n + 2;
        return r;
    case '*':
        if (!read_number(c, &n) || n < -1 || n > RESP_MAX_ELEMENTS) return NULL;
        if (n == -1) return new_reply(REDIS_REPLY_NIL);
        r = new_reply(REDIS_REPLY_ARRAY);
        if (n > 0 && !(r->element = calloc((size_t)n, sizeof *r->element))) abort();
        for (long long i = 0; i < n; i++) {
            redisReply *e = read_reply(c, depth + 1);
            if (!e) {
                free_reply(r);
                return NULL;
            }
            r->element[r->elements++] = e;
        }
        return r;
    default: return NULL;
    }
}

/* ---- the checks --------------------------------------------------------- */

static bool request_id_ok(const char *s) {
    size_t n = strlen(s ? s : "");
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' ||
                  c == '.' || c == ':';
        if (!ok) return false;
    }
    return true;
}

static bool printable(const char *s, size_t max) {
    size_t n = strlen(s ? s : "");
    if (n > max) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return false;
    return true;
}

static bool same_record(const audit_record *a, const audit_record *b) {
    return strcmp(a->request_id, b->request_id) == 0 && a->key.group == b->key.group &&
           a->key.serial == b->key.serial && a->key.security_first == b->key.security_first &&
           a->key.security_second == b->key.security_second && a->key.upgrade == b->key.upgrade &&
           memcmp(a->machine_id, b->machine_id, AUDIT_MACHINE_ID_LEN) == 0 &&
           strcmp(a->client_address, b->client_address) == 0 && a->received_at == b->received_at &&
           strcmp(a->sample_reason, b->sample_reason) == 0;
}

/* The record's outbox fields as Redis would return them, decoded again. */
static void check_round_trip(const audit_record *r) {
    audit_record_args a;
    audit_record_outbox_fields(r, &a);
    CHECK(a.n == 2 * AUDIT_OUTBOX_FIELDS);
    redisReply *fields = new_reply(REDIS_REPLY_ARRAY);
    fields->element = calloc(a.n, sizeof *fields->element);
    CHECK(fields->element);
    for (size_t i = 0; i < a.n; i++) {
        redisReply *v = new_reply(REDIS_REPLY_STRING);
        set_str(v, (const uint8_t *)a.argv[i], a.len[i]);
        fields->element[fields->elements++] = v;
    }
    audit_record again;
    char err[160];
    CHECK(audit_record_from_outbox(fields, &again, err, sizeof err) == 0);
    CHECK(same_record(r, &again));
    free_reply(fields);
}

static void check_accepted(const audit_record *r) {
    char key_text[PK_TEXT_LEN + 1];
    Audit__V1__AuditRecord rec;
    CHECK(audit_record_to_proto(r, "fuzz", key_text, &rec) == 0);
    pk_fields k;
    CHECK(pk_decode(key_text, strlen(key_text), &k, NULL) == PK_OK);
    CHECK(k.group == r->key.group && k.serial == r->key.serial && k.security_first == r->key.security_first &&
          k.security_second == r->key.security_second && k.upgrade == r->key.upgrade);

    /* what audit_service.c's record_ok demands of a submitted record */
    CHECK(request_id_ok(rec.request_id));
    CHECK(rec.machine_id.len <= 64);
    CHECK(printable(rec.client_address, 128));
    CHECK(printable(rec.origin, 128));
    CHECK(printable(rec.sample_reason, 128));

    Audit__V1__AuditRecord *ptrs[1] = {&rec};
    Audit__V1__SubmitRequest req = AUDIT__V1__SUBMIT_REQUEST__INIT;
    req.n_records = 1;
    req.records = ptrs;
    size_t n = audit__v1__submit_request__get_packed_size(&req);
    uint8_t *buf = malloc(n);
    CHECK(buf && audit__v1__submit_request__pack(&req, buf) == n);
    Audit__V1__SubmitRequest *back = audit__v1__submit_request__unpack(NULL, n, buf);
    CHECK(back && back->n_records == 1);
    const Audit__V1__AuditRecord *b = back->records[0];
    CHECK(strcmp(b->request_id, rec.request_id) == 0 && strcmp(b->product_key, key_text) == 0 &&
          b->machine_id.len == AUDIT_MACHINE_ID_LEN &&
          memcmp(b->machine_id.data, r->machine_id, AUDIT_MACHINE_ID_LEN) == 0 &&
          strcmp(b->client_address, r->client_address) == 0 && b->received_at == r->received_at &&
          strcmp(b->sample_reason, r->sample_reason) == 0);
    audit__v1__submit_request__free_unpacked(back, NULL);
    free(buf);

    check_round_trip(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cursor c = {data, data + size};
    redisReply *fields = read_reply(&c, 0);
    if (!fields) return 0;
    audit_record r;
    char err[160]; /* the size the forwarder uses */
    err[0] = '\0';
    if (audit_record_from_outbox(fields, &r, err, sizeof err) == 0) check_accepted(&r);
    else CHECK(strncmp(err, "outbox entry: ", 14) == 0);
    free_reply(fields);
    return 0;
}
