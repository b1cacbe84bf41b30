/* static_files.h -- the console's files under --console-dir, served at /.
 *
 * A path names a file below the directory and nothing else: ".." segments,
 * backslashes and NUL bytes are refused, and the file found must still lie
 * below the directory once symbolic links are resolved. A path that names
 * no file and whose last segment has no dot is a page of the single-page
 * app, answered with index.html; a missing asset (a dot in its name) is 404. */
#ifndef PA_ADMIN_STATIC_FILES_H
#define PA_ADMIN_STATIC_FILES_H

#include <stddef.h>
#include <sys/types.h>

typedef struct static_file {
    int fd;                   /* open for reading; the caller closes it (or hands it to the response) */
    off_t size;               /* bytes to send */
    const char *content_type; /* from the extension */
    int is_index;             /* index.html: must not be cached, it names the current assets */
} static_file;

/* Opens the file for URL path `path` (already percent-decoded) below `dir`.
 * Returns 200 (*f filled), 400 (a refused path) or 404. */
int static_open(const char *dir, const char *path, static_file *f);

/* The content type of a file name, by its extension. */
const char *static_content_type(const char *name);

#endif
