/* file_atomic.c -- see file_atomic.h. */
#include "file_atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* All of `len` bytes to fd, through short writes and signals. */
static int write_all(int fd, const char *p, size_t len) {
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int pa_file_sync_dir(const char *path) {
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int n = slash ? snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path)
                  : snprintf(dir, sizeof dir, ".");
    if (n < 0 || (size_t)n >= sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    errno = err;
    return rc;
}

int pa_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, bool replace) {
    size_t n = strlen(path) + sizeof ".tmp.XXXXXX";
    char *tmp = malloc(n);
    if (!tmp) return -1;
    snprintf(tmp, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        free(tmp);
        return -1;
    }
    int rc = write_all(fd, data, len) == 0 && fchmod(fd, mode) == 0 && fsync(fd) == 0 ? 0 : -1;
    int err = errno;
    if (close(fd) != 0 && rc == 0) rc = -1, err = errno;
    if (rc == 0 && (replace ? rename(tmp, path) : link(tmp, path)) != 0) rc = -1, err = errno;
    if (rc != 0 || !replace) unlink(tmp); /* after link(), the temporary name goes; the file stays */
    free(tmp);
    if (rc == 0 && pa_file_sync_dir(path) != 0) rc = -1, err = errno;
    errno = err;
    return rc;
}
