/* secret_wrap.h -- group secrets at rest, wrapped with AES-256-GCM under a
 * key-encryption key (KEK) that lives in a file given to one component only.
 * A Redis dump alone reveals no secret (docs/trust-boundaries.md).
 *
 * Blob layout (61 bytes for a 32-byte secret), stored as binary in Redis:
 *   byte 0       format version, 0x01
 *   bytes 1-12   random nonce
 *   bytes 13-44  ciphertext
 *   bytes 45-60  GCM tag
 * Additional authenticated data binds the blob to its place:
 *   "pa-secret-v1" | role byte | group ID (4 bytes, big-endian)
 * so a blob copied to another group or role fails to unwrap. */
#ifndef PA_SECRET_WRAP_H
#define PA_SECRET_WRAP_H

#include <stddef.h>
#include <stdint.h>

#define KEK_LEN 32
#define WRAP_BLOB_LEN (1 + 12 + 32 + 16)

/* Reads a KEK file: 32 raw bytes, or 64 hex characters with optional
 * trailing newline. Refuses files readable by group or others. Returns 0 or
 * -1 with a message in `err`. */
int kek_load_file(const char *path, uint8_t kek[KEK_LEN], char *err, size_t errlen);

/* Writes a fresh random KEK as hex to `path` with mode 0600; fails if the
 * file exists. */
int kek_create_file(const char *path, char *err, size_t errlen);

/* Wraps a 32-byte secret. `role` is 1 (first) or 2 (second). Returns 0/-1. */
int secret_wrap(const uint8_t kek[KEK_LEN], int role, uint32_t group,
                const uint8_t secret[32], uint8_t blob[WRAP_BLOB_LEN]);

/* Unwraps; returns -1 for a wrong KEK, a tampered blob, a wrong place or a
 * wrong length. Never says which (no oracle). */
int secret_unwrap(const uint8_t kek[KEK_LEN], int role, uint32_t group,
                  const uint8_t *blob, size_t blob_len, uint8_t secret[32]);

#endif
