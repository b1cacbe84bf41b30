/* kill_shim.c -- LD_PRELOAD module that kills its process at the Nth step
 * of writing state, to show a kill at any point leaves the state directory
 * with the old file or the new one, never a damaged one (docs/machines.md,
 * "State on disk"; tests/client/test_client_kill.c).
 *
 *   PA_KILL_DIR=DIR  only steps on files in DIR count (gRPC's own writes
 *                    and closes, stdout and stderr do not)
 *   PA_KILL_AT=N     the Nth counted step raises SIGKILL instead of running
 *                    (0 or unset: nothing is killed)
 *   PA_KILL_LOG=F    each counted step is appended to F as "N op path" (how
 *                    the test learns how many steps there are)
 *
 * The steps are the calls a write is made of: write, fsync and close of a
 * file opened for writing (or of the directory, for its fsync), and rename,
 * link and unlink of a name in DIR. An fd's file is found through
 * /proc/self/fd, so no open call needs wrapping (mkstemp opens inside libc,
 * out of reach of LD_PRELOAD). The counter is atomic: gRPC's threads also
 * call these, though they never touch DIR. */
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static atomic_long steps;

/* DIR resolved (as /proc/self/fd shows paths), or "" when unset. */
static const char *kill_dir(void) {
    static char dir[PATH_MAX];
    static atomic_int ready;
    if (!atomic_load(&ready)) {
        const char *d = getenv("PA_KILL_DIR");
        if (!d || !realpath(d, dir)) dir[0] = '\0';
        atomic_store(&ready, 1);
    }
    return dir;
}

static int in_dir(const char *path) {
    const char *dir = kill_dir();
    size_t n = strlen(dir);
    if (!n || !path) return 0;
    char full[PATH_MAX];
    if (path[0] != '/') {
        /* The client always passes the state directory as given; resolve
         * the directory part of relative names through the cwd. */
        if (!getcwd(full, sizeof full)) return 0;
        size_t used = strlen(full);
        snprintf(full + used, sizeof full - used, "/%s", path);
        path = full;
    }
    char real[PATH_MAX];
    const char *slash = strrchr(path, '/');
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%.*s", slash && slash > path ? (int)(slash - path) : 1, path);
    if (!realpath(parent, real)) return 0;
    return strncmp(real, dir, n) == 0 && (real[n] == '\0' || real[n] == '/');
}

/* Whether fd is a file in DIR (or DIR itself) and, unless `any`, open for
 * writing. */
static int fd_in_dir(int fd, int any) {
    const char *dir = kill_dir();
    size_t n = strlen(dir);
    if (!n) return 0;
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len <= 0) return 0;
    target[len] = '\0';
    if (strncmp(target, dir, n) != 0 || (target[n] != '\0' && target[n] != '/')) return 0;
    if (any || target[n] == '\0') return 1; /* the directory: its fsync and close */
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_ACCMODE) != O_RDONLY;
}

/* Counts a step; kills the process when it is the chosen one. */
static void step(const char *op, const char *what) {
    long k = atomic_fetch_add(&steps, 1) + 1;
    const char *log = getenv("PA_KILL_LOG");
    if (log) {
        FILE *fp = fopen(log, "a");
        if (fp) {
            fprintf(fp, "%ld %s %s\n", k, op, what);
            fclose(fp);
        }
    }
    const char *at = getenv("PA_KILL_AT");
    if (at && atol(at) == k) raise(SIGKILL);
}

static void step_fd(const char *op, int fd) {
    char link[64], target[PATH_MAX] = "?";
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len > 0) target[len] = '\0';
    step(op, target);
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef int (*fd_fn)(int);
typedef int (*two_paths_fn)(const char *, const char *);
typedef int (*path_fn)(const char *);

/* The libc function this module hides. */
static void *next(const char *name) { return dlsym(RTLD_NEXT, name); }

ssize_t write(int fd, const void *buf, size_t n) {
    static write_fn real;
    if (!real) real = (write_fn)next("write");
    if (fd > 2 && fd_in_dir(fd, 0)) step_fd("write", fd);
    return real(fd, buf, n);
}

int fsync(int fd) {
    static fd_fn real;
    if (!real) real = (fd_fn)next("fsync");
    if (fd_in_dir(fd, 1)) step_fd("fsync", fd);
    return real(fd);
}

int close(int fd) {
    static fd_fn real;
    if (!real) real = (fd_fn)next("close");
    if (fd > 2 && fd_in_dir(fd, 0)) step_fd("close", fd);
    return real(fd);
}

int rename(const char *from, const char *to) {
    static two_paths_fn real;
    if (!real) real = (two_paths_fn)next("rename");
    if (in_dir(to)) step("rename", to);
    return real(from, to);
}

int link(const char *from, const char *to) {
    static two_paths_fn real;
    if (!real) real = (two_paths_fn)next("link");
    if (in_dir(to)) step("link", to);
    return real(from, to);
}

int unlink(const char *path) {
    static path_fn real;
    if (!real) real = (path_fn)next("unlink");
    if (in_dir(path)) step("unlink", path);
    return real(path);
}
