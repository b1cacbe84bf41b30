/* fuzz_keycodec.c -- libFuzzer target for the product key text parser.
 *
 * Key text arrives from installers and operators, so the parser must take
 * any bytes. Beyond "never crashes" (ASan/UBSan watch that), the target
 * checks what makes the codec trustworthy:
 *   - decode and normalize agree on every syntax error;
 *   - an accepted key re-encodes to exactly its normalized text, and that
 *     text decodes to the same fields (encode and decode are inverses);
 *   - a checksum failure still yields in-range fields whose true checksum
 *     differs from the one typed;
 *   - positions, lengths and messages are sane for every error;
 *   - the same text with a space on either side (which bypasses the
 *     decoder's fast path for canonical text) decodes identically. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keycodec.h"

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                            \
        }                                                                       \
    } while (0)

static int is_syntax_error(pk_status s) {
    return s != PK_OK && s != PK_ERR_RANGE && s != PK_ERR_CHECKSUM;
}

static int same_fields(const pk_fields *a, const pk_fields *b) {
    return a->group == b->group && a->serial == b->serial && a->security_first == b->security_first &&
           a->security_second == b->security_second && a->checksum == b->checksum &&
           a->upgrade == b->upgrade;
}

static void check_error(const pk_error *e, pk_status s, size_t size) {
    char msg[256];
    CHECK(e->status == s);
    CHECK(strcmp(pk_status_name(s), "unknown") != 0);
    CHECK(strlen(pk_strerror(e, msg, sizeof msg)) > 10);
    switch (s) {
    case PK_ERR_LENGTH:
        CHECK(e->length != PK_CHARS && e->length <= size);
        break;
    case PK_ERR_HYPHEN:
        CHECK(e->position >= 1 && (size_t)e->position <= size && e->character == '-');
        break;
    case PK_ERR_CHAR:
    case PK_ERR_MULTIPLE_N:
        CHECK(e->position >= 1 && e->position <= PK_CHARS);
        break;
    case PK_ERR_N_LAST:
        CHECK(e->position == PK_CHARS);
        break;
    default:
        CHECK(e->position == 0);
        break;
    }
}

static void check_accepted(const pk_fields *f, const char *norm) {
    char enc[PK_TEXT_LEN + 1];
    pk_fields again;
    CHECK(pk_encode(f, enc) == 0);
    CHECK(strcmp(enc, norm) == 0);
    CHECK(f->checksum == pk_checksum(f));
    CHECK(pk_decode(enc, strlen(enc), &again, NULL) == PK_OK);
    CHECK(same_fields(f, &again));
}

static void check_checksum_failure(const pk_fields *f) {
    char enc[PK_TEXT_LEN + 1];
    pk_fields fixed;
    CHECK(f->checksum != pk_checksum(f));
    CHECK(pk_encode(f, enc) == 0);  /* every field is in range */
    CHECK(pk_decode(enc, strlen(enc), &fixed, NULL) == PK_OK);
    CHECK(fixed.group == f->group && fixed.serial == f->serial && fixed.upgrade == f->upgrade);
}

/* Surrounding spaces are ignored, so " x " must decode exactly as x does;
 * it also takes the careful path where x may have taken the fast one. */
static void check_padded_agrees(const char *text, size_t size, pk_status s, const pk_fields *f,
                                const pk_error *e) {
    char padded[130];
    pk_fields pf;
    pk_error pe;
    if (size + 2 > sizeof padded) return;
    padded[0] = ' ';
    memcpy(padded + 1, text, size);
    padded[size + 1] = ' ';
    CHECK(pk_decode(padded, size + 2, &pf, &pe) == s);
    CHECK(pe.position == e->position && pe.character == e->character);
    if (s != PK_ERR_EMPTY) CHECK(pe.length == e->length);
    CHECK(same_fields(f, &pf));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);   /* libFuzzer calls it */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    pk_fields f;
    pk_error e, ne;
    char norm[PK_TEXT_LEN + 1];

    pk_status s = pk_decode(text, size, &f, &e);
    check_error(&e, s, size);
    check_padded_agrees(text, size, s, &f, &e);
    pk_status ns = pk_normalize(text, size, norm, &ne);
    if (is_syntax_error(s)) {
        CHECK(ns == s && ne.position == e.position);
        CHECK(norm[0] == '\0');
        return 0;
    }
    CHECK(ns == PK_OK && strlen(norm) == PK_TEXT_LEN);
    CHECK(pk_decode(norm, strlen(norm), NULL, NULL) == s);  /* normalising keeps the value */
    if (s == PK_OK) check_accepted(&f, norm);
    if (s == PK_ERR_CHECKSUM) check_checksum_failure(&f);
    return 0;
}
