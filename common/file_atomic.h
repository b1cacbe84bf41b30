/* file_atomic.h -- writing a whole file so readers never see half of it.
 *
 * Order files, usage reports and other files the tools hand to people or
 * to other programs are written to a temporary file beside the target,
 * given their mode, fsynced, and only then moved into place: renamed over
 * an existing file, or linked to a name that must not exist yet (so a file
 * someone already has is never overwritten by accident). A failure at any
 * step leaves the target as it was and no temporary file behind. */
#ifndef PA_COMMON_FILE_ATOMIC_H
#define PA_COMMON_FILE_ATOMIC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Writes `len` bytes of `data` to `path` with `mode`. `replace`: rename
 * over an existing file; otherwise fail with EEXIST when `path` exists.
 * Returns 0, or -1 with errno set. */
int pa_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, bool replace);

#endif
