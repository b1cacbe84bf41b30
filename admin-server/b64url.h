/* b64url.h -- unpadded base64url (RFC 4648 section 5): session cookies,
 * CSRF tokens and the opaque list cursors of the API. */
#ifndef PA_ADMIN_B64URL_H
#define PA_ADMIN_B64URL_H

#include <stddef.h>
#include <stdint.h>

/* Room for n bytes encoded, with the NUL. */
#define B64URL_LEN(n) (((n)*4 + 2) / 3 + 1)

/* Encodes n bytes into out (B64URL_LEN(n) bytes). */
void b64url_encode(const void *in, size_t n, char *out);
/* Decodes text into at most cap bytes; returns how many, or -1 when it is
 * not base64url or does not fit. */
long b64url_decode(const char *text, uint8_t *out, size_t cap);

#endif
