/* redis_slot.c -- CRC16-XMODEM and the hash-tag rule (see redis_slot.h).
 *
 * The CRC is computed bit by bit: keys are short and a store computes one
 * slot per command, so a 512-byte table would buy nothing measurable; the
 * tag table (about 150 000 CRCs of ten bytes for "ob:") is built once. */
#include "redis_slot.h"

#include <stdio.h>
#include <string.h>

uint16_t redis_crc16(const void *buf, size_t len) {
    const unsigned char *p = buf;
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++) crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

void redis_hash_part(const char *key, size_t len, const char **part, size_t *part_len) {
    *part = key;
    *part_len = len;
    const char *open = memchr(key, '{', len);
    if (!open) return;
    size_t rest = len - (size_t)(open - key) - 1;
    const char *close = memchr(open + 1, '}', rest);
    if (!close || close == open + 1) return; /* no closing brace, or an empty tag: the whole key */
    *part = open + 1;
    *part_len = (size_t)(close - open - 1);
}

unsigned redis_slot_of(const char *key, size_t len) {
    const char *part;
    size_t n;
    redis_hash_part(key, len, &part, &n);
    return redis_crc16(part, n) & (REDIS_SLOTS - 1);
}

int redis_slot_tags(const char *prefix, uint32_t tags[REDIS_SLOTS]) {
    char buf[64];
    size_t plen = strlen(prefix);
    if (plen > sizeof buf - 11) return -1; /* no room for the decimal of a uint32 */
    memcpy(buf, prefix, plen);
    for (unsigned s = 0; s < REDIS_SLOTS; s++) tags[s] = UINT32_MAX; /* not found yet (no n gets that far) */
    unsigned found = 0;
    for (uint32_t n = 0; found < REDIS_SLOTS && n < UINT32_MAX; n++) {
        int d = snprintf(buf + plen, sizeof buf - plen, "%u", n);
        if (d < 0) return -1;
        unsigned s = redis_crc16(buf, plen + (size_t)d) & (REDIS_SLOTS - 1);
        if (tags[s] == UINT32_MAX) {
            tags[s] = n;
            found++;
        }
    }
    return found == REDIS_SLOTS ? 0 : -1;
}
