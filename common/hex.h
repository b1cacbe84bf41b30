/* hex.h -- bytes <-> hex text, for machine ids, license and request ids,
 * KEKs, digests and stored records. One codec, so every place that writes
 * hex writes lowercase and every reader accepts either case. */
#ifndef PA_COMMON_HEX_H
#define PA_COMMON_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Writes 2 * n lowercase hex digits and a NUL: `out` holds 2 * n + 1. */
void pa_hex_encode(const void *in, size_t n, char *out);

/* Decodes `len` hex digits (either case) into at most `cap` bytes. Returns
 * the byte count, or -1 if len is odd, the bytes exceed cap or a character
 * is not a hex digit. */
long pa_hex_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* The value of one hex digit (either case), or -1. */
int pa_hex_digit(int c);

#endif
