/* file_atomic.h -- writing a whole file so readers never see half of it.
 *
 * Order files, usage reports, the installer's license and every other
 * state file are written to a temporary file beside the target, given
 * their mode, fsynced, and only then moved into place: renamed over an
 * existing file, or linked to a name that must not exist yet (so a file
 * someone already has is never overwritten by accident). The directory is
 * fsynced last, so the move itself survives a power cut. A failure (or a
 * kill) at any step leaves the target as it was: the old content or the
 * new, never a mix. */
#ifndef PA_COMMON_FILE_ATOMIC_H
#define PA_COMMON_FILE_ATOMIC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Writes `len` bytes of `data` to `path` with `mode`. `replace`: rename
 * over an existing file; otherwise fail with EEXIST when `path` exists.
 * Returns 0, or -1 with errno set. */
int pa_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, bool replace);

/* Flushes the directory that holds `path` (after a rename or unlink in
 * it, so the change survives a crash). Returns 0, or -1 with errno set. */
int pa_file_sync_dir(const char *path);

#endif
