/* keycodec.c -- the 5x5 product key text <-> fields, bit for bit (docs/key-format.md).
 *
 * Why it looks like this:
 * - Decoding runs on every activation and in the installer, so it does no
 *   allocation and no locale calls (a 256-entry symbol table maps both
 *   cases), and the common input -- canonical text or 25 bare characters,
 *   well-formed -- takes a fast path with no branch per character.
 *   Everything else takes a careful path that alone decides which error to
 *   report, so the fast path only has to be right about good keys.
 * - V is 115 bits. Standard C11 has no 128-bit integer, so V lives in two
 *   uint64_t limbs (lo = bits 0..63, hi = bits 64..127). Decoding splits the
 *   25 base-24 digits into 12 + 13 digits; each half fits a uint64_t
 *   (24^13 < 2^60), and one 64x64->128 multiply joins them. Encoding
 *   divides V (as four 32-bit limbs) by 24^6 four times: each remainder
 *   holds six digits, the last quotient is the first digit, N's position.
 * - Checks run in the order a person retyping a key finds most useful:
 *   length, hyphens, characters, the letter N, then range and checksum.
 *   Every failure carries its own status, and the position where it applies.
 * - The checksum is CRC-32 MSB-first (poly 0x04C11DB7, init ~0, no
 *   reflection) over V's 16 little-endian bytes with the checksum bits
 *   cleared; the key keeps the low 10 bits of its complement. Because a CRC
 *   is affine in its input, it is computed as 16 independent table lookups
 *   instead of 16 dependent steps (see pk_crc_pos).
 * - Derived tables (CRC per byte position, digit weights per N position,
 *   the fast path's symbol table; about 13 KiB) are built from first
 *   principles once, on first use, under pthread_once behind an atomic flag;
 *   they are read-only afterwards, so the codec is thread-safe. */
#include "keycodec.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* Symbol values 0..23 are digits; the rest are classes. Stored +1 in the
 * table so that every byte not listed reads as 0, "not allowed". */
enum { SYM_N = 24, SYM_HYPHEN = 25, SYM_BAD = 0xFF };

#define SYM(up, lo, v) [up] = (v) + 1, [lo] = (v) + 1
#define DIG(c, v) [c] = (v) + 1

static const uint8_t pk_symbol_table[256] = {
    SYM('B', 'b', 0),  SYM('C', 'c', 1),  SYM('D', 'd', 2),  SYM('F', 'f', 3),
    SYM('G', 'g', 4),  SYM('H', 'h', 5),  SYM('J', 'j', 6),  SYM('K', 'k', 7),
    SYM('M', 'm', 8),  SYM('P', 'p', 9),  SYM('Q', 'q', 10), SYM('R', 'r', 11),
    SYM('T', 't', 12), SYM('V', 'v', 13), SYM('W', 'w', 14), SYM('X', 'x', 15),
    SYM('Y', 'y', 16), DIG('2', 17),      DIG('3', 18),      DIG('4', 19),
    DIG('6', 20),      DIG('7', 21),      DIG('8', 22),      DIG('9', 23),
    SYM('N', 'n', SYM_N), ['-'] = SYM_HYPHEN + 1,
};

static const char pk_alphabet[25] = "BCDFGHJKMPQRTVWXY2346789";

#define PK_POW24_6 UINT32_C(191102976)          /* 24^6 */
#define PK_POW24_13 UINT64_C(876488338465357824) /* 24^13 */

/* 24^0 .. 24^12: the weights of digits within a 12- or 13-digit half. */
static const uint64_t pk_pow24[13] = {
    UINT64_C(1), UINT64_C(24), UINT64_C(576), UINT64_C(13824), UINT64_C(331776),
    UINT64_C(7962624), UINT64_C(191102976), UINT64_C(4586471424), UINT64_C(110075314176),
    UINT64_C(2641807540224), UINT64_C(63403380965376), UINT64_C(1521681143169024),
    UINT64_C(36520347436056576),
};

/* The 115-bit value as two limbs. */
typedef struct pk_value {
    uint64_t lo;   /* bits 0..63: group, serial, low 14 bits of security_first */
    uint64_t hi;   /* bits 64..127: the rest of the fields and the reserved bit */
} pk_value;

/* ---- derived tables ----------------------------------------------------- */

/* checksum = pk_crc_base ^ XOR over k of pk_crc_pos[k][byte k of V], where
 * pk_crc_pos[k][x] is the low 10 bits of CRC(0, x at position k, zeros
 * elsewhere) and pk_crc_base = ~CRC(~0, 16 zero bytes) & 0x3FF. */
#define PK_CRC_POLY 0x04C11DB7u
static uint16_t pk_crc_pos[16][256];
static uint32_t pk_crc_base;

/* pk_weight[p][i]: the power of 24 (within its half) of the character at
 * index i when N stands at index p; 0 for N itself. Lets the fast path sum
 * V's halves straight from the text, without first removing the N. */
static uint64_t pk_weight[PK_CHARS - 1][PK_CHARS];

/* The fast path's view of a byte: the digit value (0..23), N as FAST_N
 * (value 0, so it adds nothing wherever it stands), anything else FAST_BAD. */
enum { FAST_N = 0x40, FAST_BAD = 0x80 };
static uint8_t pk_fast_table[256];

static pthread_once_t pk_tables_once = PTHREAD_ONCE_INIT;

/* One zero byte through the CRC register. */
static uint32_t pk_crc_zero_byte(uint32_t crc) {
    for (int b = 0; b < 8; b++) crc = crc << 1 ^ (crc >> 31 ? PK_CRC_POLY : 0);
    return crc;
}

static void pk_tables_build(void) {
    for (uint32_t x = 0; x < 256; x++) {
        uint32_t crc = pk_crc_zero_byte(x << 24);  /* x as the last byte */
        for (int k = 15; k >= 0; k--) {
            pk_crc_pos[k][x] = (uint16_t)(crc & PK_CHECKSUM_MAX);
            crc = pk_crc_zero_byte(crc);            /* one more zero byte after x */
        }
    }
    uint32_t init = 0xFFFFFFFFu;
    for (int k = 0; k < 16; k++) init = pk_crc_zero_byte(init);
    pk_crc_base = ~init & PK_CHECKSUM_MAX;

    for (unsigned c = 0; c < 256; c++) {
        uint8_t t = pk_symbol_table[c];
        pk_fast_table[c] = t == 0 || t == SYM_HYPHEN + 1 ? FAST_BAD : t == SYM_N + 1 ? FAST_N : (uint8_t)(t - 1);
    }

    for (unsigned p = 0; p < PK_CHARS - 1; p++)
        for (unsigned i = 0; i < PK_CHARS; i++) {
            unsigned digit = i < p ? i + 1 : i;     /* digit 0 is p itself */
            unsigned power = PK_CHARS - 1 - digit;  /* 24^power in V */
            pk_weight[p][i] = i == p ? 0 : pk_pow24[power >= 13 ? power - 13 : power];
        }
}

/* The atomic flag keeps the common case to one load; pthread_once makes
 * the first callers wait until the tables are complete. */
static atomic_bool pk_tables_done;

static void pk_tables_build_once(void) {
    pk_tables_build();
    atomic_store_explicit(&pk_tables_done, true, memory_order_release);
}

static void pk_tables_ready(void) {
    if (!atomic_load_explicit(&pk_tables_done, memory_order_acquire))
        pthread_once(&pk_tables_once, pk_tables_build_once);
}

/* The checksum of a value whose checksum bits are clear. */
static uint32_t pk_checksum_value(pk_value v) {
    uint32_t c = pk_crc_base;
    for (int k = 0; k < 8; k++) c ^= pk_crc_pos[k][(v.lo >> (8 * k)) & 0xFFu];
    for (int k = 0; k < 8; k++) c ^= pk_crc_pos[8 + k][(v.hi >> (8 * k)) & 0xFFu];
    return c;
}

/* ---- arithmetic --------------------------------------------------------- */

/* hi:lo = a * b, from 32-bit halves (portable C11, no __int128). */
static void pk_mul_64x64(uint64_t a, uint64_t b, uint64_t *lo, uint64_t *hi) {
    uint64_t a0 = a & 0xFFFFFFFFu, a1 = a >> 32;
    uint64_t b0 = b & 0xFFFFFFFFu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFu) + (p10 & 0xFFFFFFFFu);
    *lo = (mid << 32) | (p00 & 0xFFFFFFFFu);
    *hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/* V = top * 24^13 + bottom. */
static pk_value pk_value_join(uint64_t top, uint64_t bottom) {
    pk_value v;
    pk_mul_64x64(top, PK_POW24_13, &v.lo, &v.hi);
    v.lo += bottom;
    v.hi += v.lo < bottom;  /* carry */
    return v;
}

static pk_value pk_value_from_digits(const uint8_t digit[PK_CHARS]) {
    uint64_t top = 0, bottom = 0;
    for (int i = 0; i < 12; i++) top += digit[i] * pk_pow24[11 - i];
    for (int i = 12; i < PK_CHARS; i++) bottom += digit[i] * pk_pow24[24 - i];
    return pk_value_join(top, bottom);
}

static void pk_digits_from_value(pk_value v, uint8_t digit[PK_CHARS]) {
    uint32_t limb[4] = {(uint32_t)v.lo, (uint32_t)(v.lo >> 32), (uint32_t)v.hi, (uint32_t)(v.hi >> 32)};
    for (int chunk = 0; chunk < 4; chunk++) {
        uint64_t rem = 0;
        for (int i = 3; i >= 0; i--) {
            uint64_t cur = (rem << 32) | limb[i];
            limb[i] = (uint32_t)(cur / PK_POW24_6);
            rem = cur % PK_POW24_6;
        }
        uint32_t six = (uint32_t)rem;  /* digits 19-24, then 13-18, 7-12, 1-6 */
        for (int d = 0; d < 6; d++) {
            digit[PK_CHARS - 1 - chunk * 6 - d] = (uint8_t)(six % 24);
            six /= 24;
        }
    }
    digit[0] = (uint8_t)limb[0];  /* < 24 for any V below 24^25 */
}

static pk_value pk_value_from_fields(const pk_fields *f, uint32_t checksum) {
    pk_value v;
    v.lo = (uint64_t)f->group | (uint64_t)f->serial << 20 | (f->security_first & 0x3FFFu) << 50;
    v.hi = f->security_first >> 14 | (uint64_t)f->security_second << 26 |
           (uint64_t)checksum << 39 | (uint64_t)(f->upgrade ? 1 : 0) << 49;
    return v;
}

static void pk_fields_from_value(pk_value v, pk_fields *f) {
    f->group = (uint32_t)(v.lo & PK_GROUP_MAX);
    f->serial = (uint32_t)((v.lo >> 20) & PK_SERIAL_MAX);
    f->security_first = v.lo >> 50 | (v.hi & ((UINT64_C(1) << 26) - 1)) << 14;
    f->security_second = (uint32_t)((v.hi >> 26) & PK_SECURITY_SECOND_MAX);
    f->checksum = (uint32_t)((v.hi >> 39) & PK_CHECKSUM_MAX);
    f->upgrade = (v.hi >> 49) & 1;
}

/* ---- parsing ------------------------------------------------------------ */

static bool pk_is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static pk_status pk_fail(pk_error *err, pk_status s, int position, char c, size_t length) {
    if (err) {
        err->status = s;
        err->position = position;
        err->character = c;
        err->length = length;
    }
    return s;
}

/* The common case: well-formed text of the usual shape, straight to V.
 * Returns false for anything unusual, without judging it. */
static bool pk_parse_fast(const char *text, size_t len, pk_value *v) {
    const unsigned char *u = (const unsigned char *)text;
    unsigned step;  /* distance between the starts of two groups of five */
    if (len == PK_TEXT_LEN && u[5] == '-' && u[11] == '-' && u[17] == '-' && u[23] == '-')
        step = 6;
    else if (len == PK_CHARS)
        step = 5;
    else
        return false;

    uint8_t raw[PK_CHARS];
    unsigned acc = 0, n_count = 0, p = 0;
    for (unsigned g = 0; g < 5; g++)
        for (unsigned j = 0; j < 5; j++) {
            uint8_t t = pk_fast_table[u[g * step + j]];
            unsigned is_n = t >> 6 & 1;
            raw[g * 5 + j] = t;
            acc |= t;
            n_count += is_n;
            p += is_n * (g * 5 + j);
        }
    /* nothing outside the alphabet, exactly one N, and not in the last place */
    if ((acc & FAST_BAD) || n_count != 1 || p == PK_CHARS - 1) return false;

    const uint64_t *w = pk_weight[p];
    uint64_t top = p * pk_pow24[11], bottom = 0, mid = (uint64_t)(raw[11] & 0x3F) * w[11];
    for (unsigned i = 0; i < 11; i++) top += (uint64_t)(raw[i] & 0x3F) * w[i];
    for (unsigned i = 12; i < PK_CHARS; i++) bottom += (uint64_t)(raw[i] & 0x3F) * w[i];
    /* Character 11 is digit 11 (top half) when N stands before it, else digit 12. */
    if (p < 11) top += mid;
    else bottom += mid;
    *v = pk_value_join(top, bottom);
    return true;
}

/* What one pass over the text found; the first problem of each kind. */
typedef struct pk_scan {
    size_t count;          /* key characters seen (everything but hyphens) */
    int n_pos;             /* 0-based index of the first N among key characters, -1 if none */
    int second_n;          /* 1-based position of a second N, 0 if none */
    int bad_pos;           /* 1-based position of the first disallowed character, 0 if none */
    char bad_char;         /* that character */
    int hyphen_pos;        /* 1-based text position of the first misplaced hyphen, 0 if none */
    uint8_t rest[PK_CHARS - 1]; /* digit values of the 24 characters other than N */
    size_t rest_count;     /* how many of `rest` are filled */
} pk_scan;

static void pk_scan_text(const char *text, size_t b, size_t e, pk_scan *s) {
    bool prev_hyphen = false;
    s->count = 0;
    s->n_pos = -1;
    s->second_n = s->bad_pos = s->hyphen_pos = 0;
    s->bad_char = 0;
    s->rest_count = 0;
    for (size_t i = b; i < e; i++) {
        uint8_t t = pk_symbol_table[(unsigned char)text[i]];
        uint8_t v = t ? (uint8_t)(t - 1) : (uint8_t)SYM_BAD;
        if (v == SYM_HYPHEN) {
            /* A hyphen may stand only between two groups of five, once. */
            bool placed = s->count % 5 == 0 && s->count > 0 && s->count < PK_CHARS && !prev_hyphen;
            if (!placed && s->hyphen_pos == 0) s->hyphen_pos = (int)(i - b + 1);
            prev_hyphen = true;
            continue;
        }
        prev_hyphen = false;
        if (++s->count > PK_CHARS) continue;  /* keep counting for the length message */
        if (v == SYM_BAD) {
            if (s->bad_pos == 0) {
                s->bad_pos = (int)s->count;
                s->bad_char = text[i];
            }
        } else if (v == SYM_N) {
            if (s->n_pos < 0) s->n_pos = (int)s->count - 1;
            else if (s->second_n == 0) s->second_n = (int)s->count;
        } else if (s->rest_count < PK_CHARS - 1) {
            s->rest[s->rest_count++] = v;
        }
    }
}

/* Syntax: everything that can be judged from the characters alone. On
 * success sets V. */
static pk_status pk_parse(const char *text, size_t len, pk_value *v, pk_error *err) {
    if (text && pk_parse_fast(text, len, v)) return pk_fail(err, PK_OK, 0, 0, PK_CHARS);

    size_t b = 0, e = text ? len : 0;
    while (b < e && pk_is_space(text[b])) b++;
    while (e > b && pk_is_space(text[e - 1])) e--;
    if (b == e) return pk_fail(err, PK_ERR_EMPTY, 0, 0, 0);

    pk_scan s;
    pk_scan_text(text, b, e, &s);
    if (s.count != PK_CHARS) return pk_fail(err, PK_ERR_LENGTH, 0, 0, s.count);
    if (s.hyphen_pos) return pk_fail(err, PK_ERR_HYPHEN, s.hyphen_pos, '-', s.count);
    if (s.bad_pos) return pk_fail(err, PK_ERR_CHAR, s.bad_pos, s.bad_char, s.count);
    if (s.n_pos < 0) return pk_fail(err, PK_ERR_LEGACY, 0, 0, s.count);
    if (s.second_n) return pk_fail(err, PK_ERR_MULTIPLE_N, s.second_n, 'N', s.count);
    if (s.n_pos == PK_CHARS - 1) return pk_fail(err, PK_ERR_N_LAST, PK_CHARS, 'N', s.count);

    uint8_t digit[PK_CHARS];
    digit[0] = (uint8_t)s.n_pos;
    memcpy(digit + 1, s.rest, sizeof s.rest);
    *v = pk_value_from_digits(digit);
    return pk_fail(err, PK_OK, 0, 0, s.count);
}

/* ---- text --------------------------------------------------------------- */

static void pk_write_text(const uint8_t digit[PK_CHARS], char out[PK_TEXT_LEN + 1]) {
    size_t o = 0;
    int next = 1;
    for (int i = 0; i < PK_CHARS; i++) {
        if (i > 0 && i % 5 == 0) out[o++] = '-';
        out[o++] = i == digit[0] ? 'N' : pk_alphabet[digit[next++]];
    }
    out[o] = '\0';
}

static bool pk_fields_in_range(const pk_fields *f) {
    return f->group <= PK_GROUP_MAX && f->serial <= PK_SERIAL_MAX &&
           f->security_first <= PK_SECURITY_FIRST_MAX && f->security_second <= PK_SECURITY_SECOND_MAX;
}

/* ---- public API --------------------------------------------------------- */

pk_status pk_decode(const char *text, size_t len, pk_fields *out, pk_error *err) {
    pk_value v;
    pk_fields scratch;
    if (!out) out = &scratch;
    memset(out, 0, sizeof *out);
    pk_tables_ready();
    pk_status s = pk_parse(text, len, &v, err);
    if (s != PK_OK) return s;

    if (v.hi >> 50) return pk_fail(err, PK_ERR_RANGE, 0, 0, PK_CHARS);  /* bit 114 and up */
    pk_fields_from_value(v, out);
    v.hi &= ~((uint64_t)PK_CHECKSUM_MAX << 39);
    if (pk_checksum_value(v) != out->checksum) return pk_fail(err, PK_ERR_CHECKSUM, 0, 0, PK_CHARS);
    return PK_OK;
}

uint32_t pk_checksum(const pk_fields *f) {
    pk_tables_ready();
    return pk_checksum_value(pk_value_from_fields(f, 0));
}

int pk_encode(const pk_fields *f, char out[PK_TEXT_LEN + 1]) {
    if (!f || !pk_fields_in_range(f)) return -1;
    uint8_t digit[PK_CHARS];
    pk_digits_from_value(pk_value_from_fields(f, pk_checksum(f)), digit);
    pk_write_text(digit, out);
    return 0;
}

pk_status pk_normalize(const char *text, size_t len, char out[PK_TEXT_LEN + 1], pk_error *err) {
    uint8_t digit[PK_CHARS];
    pk_value v;
    pk_tables_ready();
    pk_status s = pk_parse(text, len, &v, err);
    if (s != PK_OK) {
        out[0] = '\0';
        return s;
    }
    pk_digits_from_value(v, digit);
    pk_write_text(digit, out);
    return PK_OK;
}

/* "'O'" for a printable character, "a space", or "byte 0x0A". */
static void pk_describe_char(char c, char *buf, size_t buflen) {
    unsigned char u = (unsigned char)c;
    if (u == ' ') snprintf(buf, buflen, "a space");
    else if (u > 0x20 && u < 0x7F) snprintf(buf, buflen, "'%c'", c);
    else snprintf(buf, buflen, "byte 0x%02X", u);
}

const char *pk_strerror(const pk_error *err, char *buf, size_t buflen) {
    if (!err) return "no error information";
    if (!buf || buflen == 0) return pk_status_name(err->status);
    char what[16];
    switch (err->status) {
    case PK_OK:
        snprintf(buf, buflen, "the product key is well-formed and its checksum matches");
        break;
    case PK_ERR_EMPTY:
        snprintf(buf, buflen, "the product key is empty");
        break;
    case PK_ERR_LENGTH:
        snprintf(buf, buflen, "a product key has %d characters not counting hyphens, but this one has %zu",
                 PK_CHARS, err->length);
        break;
    case PK_ERR_HYPHEN:
        snprintf(buf, buflen, "the hyphen at position %d is misplaced: hyphens may only separate "
                 "the five groups of five characters", err->position);
        break;
    case PK_ERR_CHAR:
        pk_describe_char(err->character, what, sizeof what);
        snprintf(buf, buflen, "character %s at position %d is not allowed in a product key "
                 "(allowed: %s and one N)", what, err->position, pk_alphabet);
        break;
    case PK_ERR_LEGACY:
        snprintf(buf, buflen, "this is an older-format (legacy) product key without the letter N; "
                 "it is not a typing error, but this service only accepts keys that contain one N");
        break;
    case PK_ERR_MULTIPLE_N:
        snprintf(buf, buflen, "the letter N appears more than once (again at position %d); "
                 "a product key has exactly one N", err->position);
        break;
    case PK_ERR_N_LAST:
        snprintf(buf, buflen, "the letter N cannot be the last character (position %d)", err->position);
        break;
    case PK_ERR_RANGE:
        snprintf(buf, buflen, "the key's value is out of range (its reserved top bit is set), "
                 "so no key was ever issued like this; check it for typing errors");
        break;
    case PK_ERR_CHECKSUM:
        snprintf(buf, buflen, "the key's checksum does not match: a character is probably mistyped");
        break;
    default:
        snprintf(buf, buflen, "unknown product key error %d", (int)err->status);
        break;
    }
    return buf;
}

const char *pk_status_name(pk_status s) {
    switch (s) {
    case PK_OK: return "ok";
    case PK_ERR_EMPTY: return "empty";
    case PK_ERR_LENGTH: return "length";
    case PK_ERR_HYPHEN: return "hyphen";
    case PK_ERR_CHAR: return "character";
    case PK_ERR_LEGACY: return "legacy";
    case PK_ERR_MULTIPLE_N: return "multiple_n";
    case PK_ERR_N_LAST: return "n_last";
    case PK_ERR_RANGE: return "range";
    case PK_ERR_CHECKSUM: return "checksum";
    }
    return "unknown";
}
