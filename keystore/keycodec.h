/* keycodec.h -- the 25-character product key, bit for bit (docs/key-format.md).
 *
 * A key is a 115-bit integer V written in base 24 with one extra letter `N`
 * whose position carries the most significant digit. V holds, from bit 0:
 *   group (20) | serial (30) | security_first (40) | security_second (13) |
 *   checksum (10) | upgrade (1) | reserved, must be 0 (1)
 * The checksum is CRC-32/MPEG-2 style (poly 0x04C11DB7, init ~0, MSB first,
 * no reflection) over the 16-byte little-endian V with the checksum bits
 * cleared, complemented, low 10 bits.
 *
 * The codec is pure: no allocation, no I/O, no secrets. It is on the hot path
 * of every activation, so decoding is a few hundred instructions. */
#ifndef PA_KEYCODEC_H
#define PA_KEYCODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PK_TEXT_LEN 29       /* canonical form: 5x5 characters and 4 hyphens */
#define PK_CHARS 25          /* characters without hyphens */
#define PK_GROUP_MAX ((1u << 20) - 1)
#define PK_SERIAL_MAX ((1u << 30) - 1)
#define PK_SECURITY_FIRST_MAX ((UINT64_C(1) << 40) - 1)
#define PK_SECURITY_SECOND_MAX ((1u << 13) - 1)
#define PK_CHECKSUM_MAX ((1u << 10) - 1)

/* The fields a key carries. */
typedef struct pk_fields {
    uint32_t group;            /* indexes the verification records (20 bits) */
    uint32_t serial;           /* unique within the group (30 bits) */
    uint64_t security_first;   /* checked by the activation server (40 bits) */
    uint32_t security_second;  /* checked by the audit server only (13 bits) */
    uint32_t checksum;         /* catches typing errors, not forgeries (10 bits) */
    bool upgrade;              /* key is valid only as an upgrade */
} pk_fields;

/* Every way a key text can be wrong; each has its own message. */
typedef enum pk_status {
    PK_OK = 0,
    PK_ERR_EMPTY,        /* nothing but spaces */
    PK_ERR_LENGTH,       /* not 25 characters once hyphens are removed */
    PK_ERR_HYPHEN,       /* hyphens present but not between groups of five */
    PK_ERR_CHAR,         /* a character outside the alphabet */
    PK_ERR_LEGACY,       /* no `N`: an older-format key this service never issues */
    PK_ERR_MULTIPLE_N,   /* more than one `N` */
    PK_ERR_N_LAST,       /* `N` in the last place */
    PK_ERR_RANGE,        /* value above 115 bits or the reserved bit set */
    PK_ERR_CHECKSUM,     /* well-formed, but the checksum does not match */
} pk_status;

/* Where decoding failed, for messages that help the user retype. */
typedef struct pk_error {
    pk_status status;
    int position;        /* 1-based character position (without hyphens), 0 if none;
                          * for PK_ERR_HYPHEN the position in the text itself
                          * (hyphens counted, surrounding spaces not) */
    char character;      /* the offending character, 0 if none */
    size_t length;       /* characters seen, for PK_ERR_LENGTH */
} pk_error;

/* Decodes `text` (case-insensitive, hyphens and surrounding spaces optional)
 * into `out`. Fields are filled even on PK_ERR_CHECKSUM so a caller can show
 * them. `err` may be NULL. */
pk_status pk_decode(const char *text, size_t len, pk_fields *out, pk_error *err);

/* Encodes `f` into canonical text (29 chars + NUL) with the checksum computed
 * here (f->checksum is ignored). Returns -1 if a field is out of range. */
int pk_encode(const pk_fields *f, char out[PK_TEXT_LEN + 1]);

/* The 10-bit checksum of `f` as the format defines it. */
uint32_t pk_checksum(const pk_fields *f);

/* Normalises to canonical text without checking the checksum; used by
 * callers that want to echo the key back. Returns PK_OK or the syntax error. */
pk_status pk_normalize(const char *text, size_t len, char out[PK_TEXT_LEN + 1], pk_error *err);

/* A one-line English message for `err`, e.g.
 * "character 'O' at position 7 is not allowed in a product key". */
const char *pk_strerror(const pk_error *err, char *buf, size_t buflen);

/* A short stable name for the status ("checksum", "legacy", ...) for JSON
 * output and metrics labels. */
const char *pk_status_name(pk_status s);

#endif
