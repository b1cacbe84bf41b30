/* keycodec.c -- the 5x5 product key text <-> fields, bit for bit (DESIGN.md §3).
 *
 * Why it looks like this:
 * - Decoding runs on every activation and in the installer, so it is one pass
 *   over the text with a 256-entry symbol table, no allocation, no locale
 *   calls (toupper would consult the locale; the table already maps both
 *   cases), and a table-driven CRC over 16 bytes.
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
 *   reflection, no final xor) over V's 16 little-endian bytes with the
 *   checksum bits cleared; the key keeps the low 10 bits of its complement. */
#include "keycodec.h"

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

/* CRC-32 MSB-first table for polynomial 0x04C11DB7: entry i is the CRC
 * register after shifting byte i through eight rounds. Generated once by a
 * script; tests/keystore_unit checks the table-driven checksum against a
 * bit-by-bit reference. */
static const uint32_t pk_crc_table[256] = {
    0x00000000u, 0x04C11DB7u, 0x09823B6Eu, 0x0D4326D9u, 0x130476DCu, 0x17C56B6Bu,
    0x1A864DB2u, 0x1E475005u, 0x2608EDB8u, 0x22C9F00Fu, 0x2F8AD6D6u, 0x2B4BCB61u,
    0x350C9B64u, 0x31CD86D3u, 0x3C8EA00Au, 0x384FBDBDu, 0x4C11DB70u, 0x48D0C6C7u,
    0x4593E01Eu, 0x4152FDA9u, 0x5F15ADACu, 0x5BD4B01Bu, 0x569796C2u, 0x52568B75u,
    0x6A1936C8u, 0x6ED82B7Fu, 0x639B0DA6u, 0x675A1011u, 0x791D4014u, 0x7DDC5DA3u,
    0x709F7B7Au, 0x745E66CDu, 0x9823B6E0u, 0x9CE2AB57u, 0x91A18D8Eu, 0x95609039u,
    0x8B27C03Cu, 0x8FE6DD8Bu, 0x82A5FB52u, 0x8664E6E5u, 0xBE2B5B58u, 0xBAEA46EFu,
    0xB7A96036u, 0xB3687D81u, 0xAD2F2D84u, 0xA9EE3033u, 0xA4AD16EAu, 0xA06C0B5Du,
    0xD4326D90u, 0xD0F37027u, 0xDDB056FEu, 0xD9714B49u, 0xC7361B4Cu, 0xC3F706FBu,
    0xCEB42022u, 0xCA753D95u, 0xF23A8028u, 0xF6FB9D9Fu, 0xFBB8BB46u, 0xFF79A6F1u,
    0xE13EF6F4u, 0xE5FFEB43u, 0xE8BCCD9Au, 0xEC7DD02Du, 0x34867077u, 0x30476DC0u,
    0x3D044B19u, 0x39C556AEu, 0x278206ABu, 0x23431B1Cu, 0x2E003DC5u, 0x2AC12072u,
    0x128E9DCFu, 0x164F8078u, 0x1B0CA6A1u, 0x1FCDBB16u, 0x018AEB13u, 0x054BF6A4u,
    0x0808D07Du, 0x0CC9CDCAu, 0x7897AB07u, 0x7C56B6B0u, 0x71159069u, 0x75D48DDEu,
    0x6B93DDDBu, 0x6F52C06Cu, 0x6211E6B5u, 0x66D0FB02u, 0x5E9F46BFu, 0x5A5E5B08u,
    0x571D7DD1u, 0x53DC6066u, 0x4D9B3063u, 0x495A2DD4u, 0x44190B0Du, 0x40D816BAu,
    0xACA5C697u, 0xA864DB20u, 0xA527FDF9u, 0xA1E6E04Eu, 0xBFA1B04Bu, 0xBB60ADFCu,
    0xB6238B25u, 0xB2E29692u, 0x8AAD2B2Fu, 0x8E6C3698u, 0x832F1041u, 0x87EE0DF6u,
    0x99A95DF3u, 0x9D684044u, 0x902B669Du, 0x94EA7B2Au, 0xE0B41DE7u, 0xE4750050u,
    0xE9362689u, 0xEDF73B3Eu, 0xF3B06B3Bu, 0xF771768Cu, 0xFA325055u, 0xFEF34DE2u,
    0xC6BCF05Fu, 0xC27DEDE8u, 0xCF3ECB31u, 0xCBFFD686u, 0xD5B88683u, 0xD1799B34u,
    0xDC3ABDEDu, 0xD8FBA05Au, 0x690CE0EEu, 0x6DCDFD59u, 0x608EDB80u, 0x644FC637u,
    0x7A089632u, 0x7EC98B85u, 0x738AAD5Cu, 0x774BB0EBu, 0x4F040D56u, 0x4BC510E1u,
    0x46863638u, 0x42472B8Fu, 0x5C007B8Au, 0x58C1663Du, 0x558240E4u, 0x51435D53u,
    0x251D3B9Eu, 0x21DC2629u, 0x2C9F00F0u, 0x285E1D47u, 0x36194D42u, 0x32D850F5u,
    0x3F9B762Cu, 0x3B5A6B9Bu, 0x0315D626u, 0x07D4CB91u, 0x0A97ED48u, 0x0E56F0FFu,
    0x1011A0FAu, 0x14D0BD4Du, 0x19939B94u, 0x1D528623u, 0xF12F560Eu, 0xF5EE4BB9u,
    0xF8AD6D60u, 0xFC6C70D7u, 0xE22B20D2u, 0xE6EA3D65u, 0xEBA91BBCu, 0xEF68060Bu,
    0xD727BBB6u, 0xD3E6A601u, 0xDEA580D8u, 0xDA649D6Fu, 0xC423CD6Au, 0xC0E2D0DDu,
    0xCDA1F604u, 0xC960EBB3u, 0xBD3E8D7Eu, 0xB9FF90C9u, 0xB4BCB610u, 0xB07DABA7u,
    0xAE3AFBA2u, 0xAAFBE615u, 0xA7B8C0CCu, 0xA379DD7Bu, 0x9B3660C6u, 0x9FF77D71u,
    0x92B45BA8u, 0x9675461Fu, 0x8832161Au, 0x8CF30BADu, 0x81B02D74u, 0x857130C3u,
    0x5D8A9099u, 0x594B8D2Eu, 0x5408ABF7u, 0x50C9B640u, 0x4E8EE645u, 0x4A4FFBF2u,
    0x470CDD2Bu, 0x43CDC09Cu, 0x7B827D21u, 0x7F436096u, 0x7200464Fu, 0x76C15BF8u,
    0x68860BFDu, 0x6C47164Au, 0x61043093u, 0x65C52D24u, 0x119B4BE9u, 0x155A565Eu,
    0x18197087u, 0x1CD86D30u, 0x029F3D35u, 0x065E2082u, 0x0B1D065Bu, 0x0FDC1BECu,
    0x3793A651u, 0x3352BBE6u, 0x3E119D3Fu, 0x3AD08088u, 0x2497D08Du, 0x2056CD3Au,
    0x2D15EBE3u, 0x29D4F654u, 0xC5A92679u, 0xC1683BCEu, 0xCC2B1D17u, 0xC8EA00A0u,
    0xD6AD50A5u, 0xD26C4D12u, 0xDF2F6BCBu, 0xDBEE767Cu, 0xE3A1CBC1u, 0xE760D676u,
    0xEA23F0AFu, 0xEEE2ED18u, 0xF0A5BD1Du, 0xF464A0AAu, 0xF9278673u, 0xFDE69BC4u,
    0x89B8FD09u, 0x8D79E0BEu, 0x803AC667u, 0x84FBDBD0u, 0x9ABC8BD5u, 0x9E7D9662u,
    0x933EB0BBu, 0x97FFAD0Cu, 0xAFB010B1u, 0xAB710D06u, 0xA6322BDFu, 0xA2F33668u,
    0xBCB4666Du, 0xB8757BDAu, 0xB5365D03u, 0xB1F740B4u,
};

#define PK_POW24_6 UINT32_C(191102976)          /* 24^6 */
#define PK_POW24_13 UINT64_C(876488338465357824) /* 24^13 */

/* The 115-bit value as two limbs. */
typedef struct pk_value {
    uint64_t lo;   /* bits 0..63: group, serial, low 14 bits of security_first */
    uint64_t hi;   /* bits 64..127: the rest of the fields and the reserved bit */
} pk_value;

static uint8_t pk_symbol(unsigned char c) {
    uint8_t s = pk_symbol_table[c];
    return s ? (uint8_t)(s - 1) : (uint8_t)SYM_BAD;
}

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
        uint8_t v = pk_symbol((unsigned char)text[i]);
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
 * success fills the 25 base-24 digits, most significant (N's index) first. */
static pk_status pk_parse(const char *text, size_t len, uint8_t digit[PK_CHARS], pk_error *err) {
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

    digit[0] = (uint8_t)s.n_pos;
    memcpy(digit + 1, s.rest, sizeof s.rest);
    return pk_fail(err, PK_OK, 0, 0, s.count);
}

/* hi:lo = a * b, from 32-bit halves (portable C11, no __int128). */
static void pk_mul_64x64(uint64_t a, uint64_t b, uint64_t *lo, uint64_t *hi) {
    uint64_t a0 = a & 0xFFFFFFFFu, a1 = a >> 32;
    uint64_t b0 = b & 0xFFFFFFFFu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFu) + (p10 & 0xFFFFFFFFu);
    *lo = (mid << 32) | (p00 & 0xFFFFFFFFu);
    *hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

static pk_value pk_value_from_digits(const uint8_t digit[PK_CHARS]) {
    uint64_t top = 0, bottom = 0;
    for (int i = 0; i < 12; i++) top = top * 24 + digit[i];
    for (int i = 12; i < PK_CHARS; i++) bottom = bottom * 24 + digit[i];
    pk_value v;
    pk_mul_64x64(top, PK_POW24_13, &v.lo, &v.hi);
    v.lo += bottom;
    v.hi += v.lo < bottom;  /* carry */
    return v;
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
    digit[0] = (uint8_t)limb[0];  /* < 16 for any V below 2^114 */
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

static uint32_t pk_crc_limb(uint32_t crc, uint64_t limb) {
    for (int i = 0; i < 8; i++)
        crc = crc << 8 ^ pk_crc_table[(crc >> 24 ^ (uint32_t)(limb >> (8 * i))) & 0xFFu];
    return crc;
}

/* The checksum of a value whose checksum bits are clear. */
static uint32_t pk_checksum_value(pk_value v) {
    uint32_t crc = pk_crc_limb(pk_crc_limb(0xFFFFFFFFu, v.lo), v.hi);
    return ~crc & PK_CHECKSUM_MAX;
}

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

pk_status pk_decode(const char *text, size_t len, pk_fields *out, pk_error *err) {
    uint8_t digit[PK_CHARS];
    pk_fields scratch;
    if (!out) out = &scratch;
    memset(out, 0, sizeof *out);
    pk_status s = pk_parse(text, len, digit, err);
    if (s != PK_OK) return s;

    pk_value v = pk_value_from_digits(digit);
    if (v.hi >> 50) return pk_fail(err, PK_ERR_RANGE, 0, 0, PK_CHARS);  /* bit 114 and up */
    pk_fields_from_value(v, out);
    v.hi &= ~((uint64_t)PK_CHECKSUM_MAX << 39);
    if (pk_checksum_value(v) != out->checksum) return pk_fail(err, PK_ERR_CHECKSUM, 0, 0, PK_CHARS);
    return PK_OK;
}

uint32_t pk_checksum(const pk_fields *f) {
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
    pk_status s = pk_parse(text, len, digit, err);
    if (s != PK_OK) {
        out[0] = '\0';
        return s;
    }
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
