/* static_files.c -- the console's files (static_files.h). */
#include "static_files.h"

#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *ext, *type;
} TYPES[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".woff", "font/woff"},
    {".txt", "text/plain; charset=utf-8"},
};

const char *static_content_type(const char *name) {
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof TYPES / sizeof *TYPES; i++)
        if (strcasecmp(dot, TYPES[i].ext) == 0) return TYPES[i].type;
    return "application/octet-stream";
}

/* No "..", no backslash, no control bytes. */
static bool path_ok(const char *path) {
    if (path[0] != '/') return false;
    for (const char *p = path; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == '\\') return false;
        if (p[0] == '/' && p[1] == '.' && p[2] == '.' && (p[3] == '/' || p[3] == '\0')) return false;
    }
    return true;
}

/* Opens dir/rel when it is a regular file still below dir (links resolved). */
static int open_below(const char *root, const char *rel, static_file *f) {
    char joined[PATH_MAX], real[PATH_MAX];
    if (snprintf(joined, sizeof joined, "%s/%s", root, rel) >= (int)sizeof joined) return 404;
    if (!realpath(joined, real)) return 404;
    size_t n = strlen(root);
    if (strncmp(real, root, n) != 0 || (real[n] != '/' && real[n] != '\0')) return 400;
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) return 404;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 404;
    }
    f->fd = fd;
    f->size = st.st_size;
    f->content_type = static_content_type(real);
    f->is_index = strcmp(strrchr(real, '/'), "/index.html") == 0;
    return 200;
}

int static_open(const char *dir, const char *path, static_file *f) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    if (!path_ok(path)) return 400;
    char root[PATH_MAX];
    if (!realpath(dir, root)) return 404;
    const char *rel = path + 1;
    if (!*rel || rel[strlen(rel) - 1] == '/') {
        char idx[PATH_MAX];
        snprintf(idx, sizeof idx, "%sindex.html", rel);
        return open_below(root, idx, f);
    }
    int rc = open_below(root, rel, f);
    if (rc != 404) return rc;
    const char *last = strrchr(path, '/');
    if (strchr(last, '.')) return 404;
    return open_below(root, "index.html", f);
}
