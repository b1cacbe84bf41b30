/* b64url.c -- unpadded base64url (b64url.h). */
#include "b64url.h"

#include <string.h>

static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void b64url_encode(const void *in, size_t n, char *out) {
    const uint8_t *p = in;
    size_t j = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        out[j++] = ALPHABET[v >> 18 & 63];
        out[j++] = ALPHABET[v >> 12 & 63];
        if (i + 1 < n) out[j++] = ALPHABET[v >> 6 & 63];
        if (i + 2 < n) out[j++] = ALPHABET[v & 63];
    }
    out[j] = '\0';
}

long b64url_decode(const char *text, uint8_t *out, size_t cap) {
    size_t len = strlen(text), n = 0;
    if (len % 4 == 1) return -1;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        const char *c = text[i] ? strchr(ALPHABET, text[i]) : NULL;
        if (!c) return -1;
        acc = acc << 6 | (uint32_t)(c - ALPHABET);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap) return -1;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return (long)n;
}
