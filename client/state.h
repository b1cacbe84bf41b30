/* state.h -- (internal) the client's files: the stored license and its
 * companions, written atomically. */
#ifndef PA_STATE_H
#define PA_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "license_verify.h"

/* Names inside the state directory. */
#define STATE_LICENSE "license"             /* the signed license (license file format) */
#define STATE_LAST_SERVER "last-server"     /* "host:port" of the last server that answered */
#define STATE_REQUEST_KEY "request-key.pem" /* Ed25519 key that signs offline requests */
#define STATE_PLACE_KEY "place-key.pem"     /* Ed25519 key the place is bound to (place_key.h) */
#define STATE_PLACE_KEY_PENDING "place-key.pending.pem" /* one sent, binding not yet confirmed */
#define STATE_PRODUCT_KEY "product-key"     /* optional: key the daemon activates with */
#define STATE_LOCK "lock"                   /* flock()ed while a command changes state */
#define STATE_DEACTIVATION_REQUESTED "deactivation-requested" /* asked; awaiting the operator (volume.c) */
#define STATE_DEACTIVATED "deactivated"     /* the operator deactivated this machine: no re-activation on its own */
#define STATE_FILE_MAX (64 * 1024)          /* no state file is larger; bigger is corrupt */

/* Creates the directory (and parents) with mode 0700 if missing. */
int state_dir_ensure(const char *dir, char *err, size_t errlen);
/* Joins dir and name; -1 if too long. */
int state_path(char *buf, size_t n, const char *dir, const char *name);

/* Takes an exclusive lock on the state directory, waiting for a concurrent
 * `activate` (daemon or CLI) to finish. Returns the fd to pass to
 * state_unlock, or -1 with `err`. */
int state_lock(const char *dir, char *err, size_t errlen);
void state_unlock(int fd);

/* Writes `path` so that readers see the old or the new content, never a
 * mix: temporary file beside it, fsync, rename over, fsync the directory. */
int state_write_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err, size_t errlen);
/* Reads a whole file of at most STATE_FILE_MAX bytes, NUL-terminated.
 * Returns 0, 1 when it does not exist, -1 with `err` otherwise. */
int state_read_file(const char *path, char **data, size_t *len, char *err, size_t errlen);

/* The license file format (text; also used for offline license files):
 *   # activate license v2 ...
 *   key_id: <16 hex>
 *   activation_count: <n>
 *   signature: <base64>             over the tree of the license's batch
 *   tree_index: <n>                 the license's leaf in that tree,
 *   tree_size: <n>                  its size, and the sibling hashes
 *   tree_path: <base64>             from the leaf up (32 bytes each;
 *                                   empty for a one-leaf tree)
 *   license: <base64 of the serialized License>
 *   order_key_id: <16 hex>          on-premises licenses only: the order
 *   order_signature: <base64>       that delegates the key that signed
 *   order: <base64 of the Order>    the license (all three or none)
 *   volume_count: <n>               the last VolumeStatus counters, shown
 *   volume_threshold: <n>           only (files older than volume orders
 *   volume_seats: <n>               lack these lines and read as 0)
 *   volume_seats_used: <n>
 * Version 1 files (before batch signatures: a signature over the license
 * alone, no tree lines) are not read: parsing one returns
 * LICENSE_FILE_OLDER, so the caller can say "activate again" rather than
 * "damaged" (docs/batching.md). An older client reads a v2 file as not a
 * license file (its first line).
 * Formatting returns a malloc'd string; parsing fills `s` (free with
 * signed_license_clear) and returns 0, LICENSE_FILE_OLDER or -1 with `err`.
 * Parsing checks the shape only: the caller verifies the signature. */
#define LICENSE_FILE_HEADER "# activate license v2"
#define LICENSE_FILE_HEADER_V1 "# activate license v1"
#define LICENSE_FILE_OLDER 1
char *license_file_format(const signed_license *s);
int license_file_parse(const char *text, signed_license *s, char *err, size_t errlen);

/* Base64 helpers shared with the offline request format. */
char *b64_encode(const uint8_t *data, size_t len);
int b64_decode(const char *text, uint8_t **out, size_t *len);

/* "name: value" line reader shared by both file formats: finds the line
 * for `name` in `text` and points *val / *len at its value (trimmed).
 * Returns 0, 1 if absent, -1 if the name appears twice. */
int text_field(const char *text, const char *name, const char **val, size_t *len);
/* The same, copied into `out` (NUL-terminated); -1 also if it does not fit. */
int text_field_copy(const char *text, const char *name, char *out, size_t n);

#endif
