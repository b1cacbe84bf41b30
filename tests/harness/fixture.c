/* fixture.c -- real redis-server instances and real child processes for
 * integration tests.
 *
 * Design: every fixture renders the production config templates from
 * docker/redis/ (redis.conf.in and the ACL file of its store) into a private
 * temporary directory, so tests exercise exactly the ACL rules a deployment
 * uses, with the test passwords of fixture.h substituted. Ports are chosen
 * at random below the kernel's ephemeral range and probed, so parallel
 * ctest runs rarely collide and outgoing connections never steal them.
 *
 * Children are started with PR_SET_PDEATHSIG(SIGKILL): if a test crashes or
 * is killed by the ctest timeout, its redis-servers and daemons die with it
 * instead of lingering and holding ports. A fixture is ready when Redis
 * answers PING after AUTH (not merely when the port accepts), so a resumed
 * instance has finished loading its AOF before the test continues.
 *
 * Only libc here: the fixture speaks the three RESP commands it needs itself
 * and does not depend on the code under test. */
#include "clock.h"
#include "fixture.h"

#include "merkle.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PA_SOURCE_DIR_DEFAULT
#define PA_SOURCE_DIR_DEFAULT "."
#endif
#ifndef PA_BUILD_DIR_DEFAULT
#define PA_BUILD_DIR_DEFAULT "."
#endif

#define REDIS_SERVER "/usr/bin/redis-server"

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static const char *source_dir(void) {
    const char *s = getenv("PA_SOURCE_DIR");
    return s && *s ? s : PA_SOURCE_DIR_DEFAULT;
}

const char *fixture_source_dir(void) { return source_dir(); }

const char *fixture_bin(const char *rel) {
    static _Thread_local char buf[4096];   /* per thread: tests run CLIs from several threads */
    const char *b = getenv("PA_BUILD_DIR");
    snprintf(buf, sizeof buf, "%s/%s", b && *b ? b : PA_BUILD_DIR_DEFAULT, rel);
    return buf;
}

int fixture_tmpdir(char *buf, size_t n, const char *tag) {
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    if ((size_t)snprintf(buf, n, "%s/pa-%s-XXXXXX", base, tag ? tag : "test") >= n) return -1;
    if (!mkdtemp(buf)) {
        fprintf(stderr, "fixture: mkdtemp %s: %s\n", buf, strerror(errno));
        return -1;
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st, (void)type, (void)ftw;
    remove(path);   /* best effort: keep going so as much as possible goes */
    return 0;
}

void fixture_rmtree(const char *dir) {
    if (dir && *dir) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- ports ---- */

static int can_bind(int family, int port) {
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0) return family == AF_INET6;   /* no IPv6 here: only IPv4 matters */
    int ok;
    if (family == AF_INET) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    } else {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
        a.sin6_addr = in6addr_loopback;
        ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0 || errno == EADDRNOTAVAIL;
    }
    close(fd);
    return ok;
}

/* Tests run in parallel (ctest -j), and a port one test has picked is
 * not bound until its server has started, which can take a while: another
 * test can pick the same port meanwhile, and one of the two servers then
 * fails to listen. So a picked port is also claimed, with flock(2) on a
 * file named after it in a directory every test process shares; the lock
 * goes with the process (or its fd), so nothing stale is left behind. A
 * process keeps its last PORT_CLAIMS claims: by the time one is dropped,
 * its server has long been listening, and can_bind sees that. */
#define PORT_CLAIMS 64

static pthread_mutex_t port_claims_lock = PTHREAD_MUTEX_INITIALIZER;
static int port_claims[PORT_CLAIMS]; /* open fds holding the locks; 0 = none */
static unsigned port_claims_next;    /* the slot to reuse next (the oldest claim) */

/* The directory of claims ($TMPDIR/pa-test-ports), made open to every
 * user so root and non-root runs can share it; NULL if it cannot be. */
static const char *port_claims_dir(void) {
    static char dir[512];
    if (dir[0]) return dir;
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    char path[sizeof dir];
    if ((size_t)snprintf(path, sizeof path, "%s/pa-test-ports", base) >= sizeof path) return NULL;
    if (mkdir(path, 01777) != 0 && errno != EEXIST) return NULL;
    (void)chmod(path, 01777); /* best effort: the umask may have cut it; someone else's is fine */
    memcpy(dir, path, sizeof dir);
    return dir;
}

/* 1 if this process now holds the claim on `port`, 0 if another process
 * does. Without a usable directory every port counts as claimed: the
 * bind check alone is what tests had before. */
static int claim_port(int port) {
    const char *dir = port_claims_dir();
    if (!dir) return 1;
    char path[600];
    snprintf(path, sizeof path, "%s/%d", dir, port);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) fd = open(path, O_RDONLY | O_CLOEXEC); /* made by another user without write for us */
    if (fd < 0) return 1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return 0;
    }
    int *slot = &port_claims[port_claims_next];
    if (*slot > 0) close(*slot);
    *slot = fd;
    port_claims_next = (port_claims_next + 1) % PORT_CLAIMS;
    return 1;
}

int fixture_free_port(void) {
    static unsigned seed;
    int lo = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d", &lo) != 1) lo = 32768;
        fclose(f);
    }
    int base = 10000, span = lo - base;
    if (span < 1000) base = 1024, span = lo - base;   /* unusual range: use what is left */
    if (span < 1) span = 1;
    pthread_mutex_lock(&port_claims_lock);
    if (!seed) seed = (unsigned)getpid() ^ (unsigned)pa_mono_ms() * 2654435761u;
    int port = -1;
    for (int tries = 0; tries < 500 && port < 0; tries++) {
        int p = base + (int)(rand_r(&seed) % (unsigned)span);
        if (can_bind(AF_INET, p) && can_bind(AF_INET6, p) && claim_port(p)) port = p;
    }
    pthread_mutex_unlock(&port_claims_lock);
    if (port < 0) fprintf(stderr, "fixture: no free port found\n");
    return port;
}

/* A TCP connection to ip:port (IPv4 literal), or -1. */
static int connect_ipv4(const char *ip, int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- processes ---- */

/* In the child, right after fork: die with the parent, even if the parent
 * already died before prctl ran. */
static void child_tie_to_parent(pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* In the child: execs argv. A cross build's tests run under an emulator
 * (PA_TEST_EMULATOR, e.g. "/usr/bin/qemu-aarch64", set by ctest from
 * CMAKE_CROSSCOMPILING_EMULATOR), and so must the programs of the build
 * tree they start: without binfmt_misc the kernel cannot run those itself.
 * Host programs (redis-server, python3, bash) run as they are. Only the
 * stack here: this runs between fork and exec. */
static void exec_child(char *const argv[]) {
    const char *emu = getenv("PA_TEST_EMULATOR");
    const char *build = getenv("PA_BUILD_DIR");
    size_t blen = build ? strlen(build) : 0;
    size_t elen = emu ? strlen(emu) : 0;
    char words[512];
    if (!elen || elen >= sizeof words || !blen || strncmp(argv[0], build, blen) != 0 || argv[0][blen] != '/') {
        execv(argv[0], argv);
        return;
    }
    char *args[64];
    size_t n = 0;
    memcpy(words, emu, elen + 1);
    for (char *save = NULL, *w = strtok_r(words, " ", &save); w && n < 8; w = strtok_r(NULL, " ", &save)) args[n++] = w;
    for (size_t i = 0; argv[i] && n < sizeof args / sizeof *args - 1; i++) args[n++] = argv[i];
    args[n] = NULL;
    execv(args[0], args);
}

static int status_code(int st) {
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

int fixture_stop(pid_t pid, int sig, int timeout_ms) {
    if (pid <= 0) return -1;
    int st;
    if (kill(pid, sig) != 0 && errno == ESRCH) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        return r == pid ? status_code(st) : -1;
    }
    long long deadline = pa_mono_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return status_code(st);
        if (r < 0) return -1;
        if (pa_mono_ms() >= deadline) break;
        sleep_ms(5);
    }
    kill(pid, SIGKILL);
    if (waitpid(pid, &st, 0) != pid) return -1;
    return status_code(st);
}

/* The end of a log that a daemon wrote before it died, on stderr: the
 * test's directory (and the log in it) is gone by the time anyone looks. */
static void print_log_tail(const char *log_path) {
    if (!log_path) return;
    FILE *f = fopen(log_path, "r");
    if (!f) return;
    char tail[2048];
    long start = 0;
    if (fseek(f, 0, SEEK_END) == 0) start = ftell(f) - (long)sizeof tail + 1;
    if (start < 0) start = 0;
    size_t n = fseek(f, start, SEEK_SET) == 0 ? fread(tail, 1, sizeof tail - 1, f) : 0;
    fclose(f);
    tail[n] = '\0';
    fprintf(stderr, "fixture: the end of %s:\n%s%s", log_path, tail, n && tail[n - 1] != '\n' ? "\n" : "");
}

pid_t fixture_spawn(char *const argv[], const char *log_path, int port, int timeout_ms) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        child_tie_to_parent(parent);
        int in = open("/dev/null", O_RDONLY);
        int out = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644) : open("/dev/null", O_WRONLY);
        if (in < 0 || out < 0) _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        exec_child(argv);
        dprintf(2, "fixture: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (port <= 0) return pid;
    long long deadline = pa_mono_ms() + timeout_ms;
    while (pa_mono_ms() < deadline) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "fixture: %s exited (status %d) before listening on %d%s%s\n", argv[0],
                    status_code(st), port, log_path ? "; see " : "", log_path ? log_path : "");
            print_log_tail(log_path);
            return -1;
        }
        int fd = connect_ipv4("127.0.0.1", port);
        if (fd >= 0) {
            close(fd);
            return pid;
        }
        sleep_ms(10);
    }
    fprintf(stderr, "fixture: %s did not listen on %d within %d ms\n", argv[0], port, timeout_ms);
    fixture_stop(pid, SIGKILL, 1000);
    return -1;
}

/* Appends everything readable from fd to *buf; returns 0 at EOF. */
static int drain_fd(int fd, char **buf, size_t *len) {
    char tmp[65536];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
    if (n <= 0) return 0;
    char *nb = realloc(*buf, *len + (size_t)n + 1);
    if (!nb) return 0;
    memcpy(nb + *len, tmp, (size_t)n);
    *len += (size_t)n;
    nb[*len] = '\0';
    *buf = nb;
    return 1;
}

int fixture_run(char *const argv[], char **out, char **err) {
    int po[2], pe[2];
    if (pipe(po) != 0) return -1;
    if (pipe(pe) != 0) {
        close(po[0]), close(po[1]);
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
        return -1;
    }
    if (pid == 0) {
        child_tie_to_parent(parent);
        int in = open("/dev/null", O_RDONLY);
        if (in >= 0) dup2(in, 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]), close(pe[0]);
        exec_child(argv);
        dprintf(2, "fixture: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(po[1]), close(pe[1]);
    char *bo = calloc(1, 1), *be = calloc(1, 1);
    size_t lo = 0, le = 0;
    struct pollfd p[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (!drain_fd(p[i].fd, i == 0 ? &bo : &be, i == 0 ? &lo : &le)) {
                close(p[i].fd);
                p[i].fd = -1;
                open_fds--;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (p[i].fd >= 0) close(p[i].fd);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (out) *out = bo;
    else free(bo);
    if (err) *err = be;
    else free(be);
    return status_code(st);
}

/* ---- redis fixtures ---- */

int fixture_render(const char *in, const char *out, int strip_comments, const char *const *subst) {
    FILE *fi = fopen(in, "r"), *fo = fi ? fopen(out, "w") : NULL;
    if (!fi || !fo) {
        fprintf(stderr, "fixture: cannot render %s -> %s: %s\n", in, out, strerror(errno));
        if (fi) fclose(fi);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, fi) >= 0) {
        if (strip_comments && line[0] == '#') continue;
        for (const char *p = line; *p;) {
            int done = 0;
            for (const char *const *s = subst; *s && !done; s += 2) {
                size_t l = strlen(s[0]);
                if (strncmp(p, s[0], l) == 0) {
                    fputs(s[1], fo);
                    p += l;
                    done = 1;
                }
            }
            if (!done) fputc(*p++, fo);
        }
    }
    free(line);
    fclose(fi);
    return fclose(fo) == 0 ? 0 : -1;
}

/* Appends `template` rendered with `subst` to the file `path`. */
static int append_rendered(const char *template, const char *path, const char *const *subst) {
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.part", path);
    FILE *in = fixture_render(template, tmp, 1, subst) == 0 ? fopen(tmp, "r") : NULL;
    FILE *out = in ? fopen(path, "a") : NULL;
    int c, rc = in && out ? 0 : -1;
    while (rc == 0 && (c = fgetc(in)) != EOF) fputc(c, out);
    if (in) fclose(in);
    if (out && fclose(out) != 0) rc = -1;
    remove(tmp);
    return rc;
}

/* A Sentinel node: the replication and sentinel users, and how it logs in
 * to its primary (also on the primary: after a failover it is a replica). */
static int add_ha_lines(const redis_fixture *f, const char *acl, const char *conf) {
    char in[1024];
    const char *subst[] = {"@REPLICA_PASSWORD@", FIXTURE_PW_REPLICA, "@SENTINEL_PASSWORD@", FIXTURE_PW_SENTINEL, NULL};
    snprintf(in, sizeof in, "%s/docker/redis/ha.acl.in", source_dir());
    if (append_rendered(in, acl, subst) != 0) return -1;
    FILE *c = fopen(conf, "a");
    if (!c) return -1;
    fprintf(c, "masteruser replica\nmasterauth %s\n", FIXTURE_PW_REPLICA);
    if (f->primary_port) fprintf(c, "replicaof 127.0.0.1 %d\n", f->primary_port);
    return fclose(c) == 0 ? 0 : -1;
}

/* Appends text (if any) to the file at path. */
static int append_text(const char *path, const char *text) {
    if (!text) return 0;
    FILE *f = fopen(path, "a");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

static int render_redis_files(redis_fixture *f) {
    char in[1024], conf[512], acl[512], log[512], port[16];
    snprintf(conf, sizeof conf, "%s/redis.conf", f->dir);
    snprintf(acl, sizeof acl, "%s/users.acl", f->dir);
    snprintf(log, sizeof log, "%s/redis.log", f->dir);
    snprintf(port, sizeof port, "%d", f->port);
    const char *acl_subst[] = {"@KEYSTORE_PASSWORD@", FIXTURE_PW_KEYSTORE, "@ACTIVATION_PASSWORD@",
                               FIXTURE_PW_ACTIVATION, "@AUDIT_PASSWORD@",  FIXTURE_PW_AUDIT,
                               "@ADMIN_PASSWORD@",    FIXTURE_PW_ADMIN,    NULL};
    const char *fsync = f->kind == FIXTURE_STORE_AUDIT ? "always" : "everysec"; /* as deployed */
    const char *conf_subst[] = {"@PORT@",    port, "@DIR@",         f->dir, "@ACLFILE@", acl,
                                "@LOGFILE@", log,  "@APPENDFSYNC@", fsync,  NULL};
    snprintf(in, sizeof in, "%s/docker/redis/%s", source_dir(),
             f->kind == FIXTURE_STORE_ACTIVATION ? "activation.acl.in" : "audit.acl.in");
    if (fixture_render(in, acl, 1, acl_subst) != 0) return -1;
    snprintf(in, sizeof in, "%s/docker/redis/redis.conf.in", source_dir());
    if (fixture_render(in, conf, 0, conf_subst) != 0) return -1;
    if (append_text(conf, f->extra_conf) != 0 || append_text(acl, f->extra_acl) != 0) return -1;
    return f->ha ? add_ha_lines(f, acl, conf) : 0;
}

/* RESP: AUTH keystore PW, then PING; ready when the PING says PONG (not
 * LOADING while the AOF is read back). */
static int redis_ready(int port) {
    int fd = connect_ipv4("127.0.0.1", port);
    if (fd < 0) return 0;
    char req[256], buf[512];
    int n = snprintf(req, sizeof req, "*3\r\n$4\r\nAUTH\r\n$8\r\nkeystore\r\n$%zu\r\n%s\r\n*1\r\n$4\r\nPING\r\n",
                     strlen(FIXTURE_PW_KEYSTORE), FIXTURE_PW_KEYSTORE);
    size_t got = 0;
    int ready = 0;
    if (write(fd, req, (size_t)n) == n) {
        struct pollfd p = {fd, POLLIN, 0};
        while (got < sizeof buf - 1 && poll(&p, 1, 500) > 0) {
            ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
            if (r <= 0) break;
            got += (size_t)r;
            buf[got] = '\0';
            if (strstr(buf, "PONG") || strstr(buf, "-LOADING") || strstr(buf, "-WRONGPASS")) break;
        }
        ready = strstr(buf, "+OK\r\n+PONG") != NULL;
    }
    close(fd);
    return ready;
}

static int redis_launch(redis_fixture *f) {
    char conf[512], log[512];
    snprintf(conf, sizeof conf, "%s/redis.conf", f->dir);
    snprintf(log, sizeof log, "%s/redis.stdout", f->dir);
    char *argv[] = {REDIS_SERVER, conf, NULL};
    f->pid = fixture_spawn(argv, log, f->port, 10000);
    if (f->pid < 0) {
        fprintf(stderr, "fixture: redis-server failed; its log is %s/redis.log\n", f->dir);
        return -1;
    }
    for (long long deadline = pa_mono_ms() + 10000; pa_mono_ms() < deadline; sleep_ms(10)) {
        int st;
        if (waitpid(f->pid, &st, WNOHANG) == f->pid) {   /* e.g. lost the port to someone else */
            fprintf(stderr, "fixture: redis-server on %d exited; see %s/redis.log\n", f->port, f->dir);
            f->pid = -1;
            return -1;
        }
        if (redis_ready(f->port)) return 0;
    }
    fprintf(stderr, "fixture: redis-server on %d never answered PING as keystore\n", f->port);
    fixture_stop(f->pid, SIGKILL, 1000);
    f->pid = -1;
    return -1;
}

static int start_node(redis_fixture *f, fixture_store kind);

int redis_fixture_start(redis_fixture *f, fixture_store kind) {
    memset(f, 0, sizeof *f);
    return start_node(f, kind);
}

int redis_fixture_start_extra(redis_fixture *f, fixture_store kind, const char *conf, const char *acl) {
    memset(f, 0, sizeof *f);
    f->extra_conf = conf;
    f->extra_acl = acl;
    int rc = start_node(f, kind);
    f->extra_conf = f->extra_acl = NULL; /* the caller's strings need not outlive the start */
    return rc;
}

int redis_fixture_start_ha(redis_fixture *f, fixture_store kind, int primary_port) {
    memset(f, 0, sizeof *f);
    f->ha = true;
    f->primary_port = primary_port;
    return start_node(f, kind);
}

static int start_node(redis_fixture *f, fixture_store kind) {
    f->kind = kind;
    f->pid = -1;
    if (fixture_tmpdir(f->dir, sizeof f->dir, kind == FIXTURE_STORE_ACTIVATION ? "redisA" : "redisB"))
        return -1;
    /* A port probed free can still be taken before redis binds it; retry. */
    for (int attempt = 0; attempt < 5; attempt++) {
        if ((f->port = fixture_free_port()) < 0) break;
        if (render_redis_files(f) != 0) break;
        if (redis_launch(f) == 0) return 0;
    }
    fixture_rmtree(f->dir);
    f->dir[0] = '\0';
    return -1;
}

void redis_fixture_stop(redis_fixture *f) {
    if (f->pid > 0) fixture_stop(f->pid, SIGTERM, 5000);
    f->pid = -1;
    fixture_rmtree(f->dir);
    f->dir[0] = '\0';
}

int redis_fixture_pause(redis_fixture *f) {
    if (f->pid <= 0) return -1;
    /* SIGTERM: Redis flushes the AOF before it exits, so data survives. */
    int st = fixture_stop(f->pid, SIGTERM, 5000);
    f->pid = -1;
    return st == 0 ? 0 : -1;
}

int redis_fixture_resume(redis_fixture *f) {
    if (f->pid > 0) return 0;
    return redis_launch(f);
}

int redis_fixture_resume_replica(redis_fixture *f, int primary_port) {
    char conf[512];
    snprintf(conf, sizeof conf, "%s/redis.conf", f->dir);
    FILE *c = fopen(conf, "a");
    if (!c || f->pid > 0) {
        if (c) fclose(c);
        return -1;
    }
    fprintf(c, "replicaof 127.0.0.1 %d\n", primary_port); /* the last replicaof line wins */
    if (fclose(c) != 0) return -1;
    f->primary_port = primary_port;
    return redis_launch(f);
}

void redis_fixture_url(const redis_fixture *f, const char *user, char *buf, size_t n) {
    const char *pw = strcmp(user, "activation") == 0 ? FIXTURE_PW_ACTIVATION
                     : strcmp(user, "audit") == 0    ? FIXTURE_PW_AUDIT
                     : strcmp(user, "keystore") == 0 ? FIXTURE_PW_KEYSTORE
                     : strcmp(user, "admin") == 0    ? FIXTURE_PW_ADMIN
                                                     : "no-such-user-pw";
    snprintf(buf, n, "redis://%s:%s@127.0.0.1:%d", user, pw, f->port);
}

void redis_info_command_stats(const char *info, const char *command, double *calls, double *usec) {
    char needle[80];
    snprintf(needle, sizeof needle, "cmdstat_%s:calls=", command);
    const char *p = info ? strstr(info, needle) : NULL;
    *calls = *usec = 0;
    if (!p) return;
    *calls = strtod(p + strlen(needle), NULL);
    const char *u = strstr(p, ",usec=");
    if (u) *usec = strtod(u + strlen(",usec="), NULL);
}

double redis_info_all_calls(const char *info) {
    double n = 0;
    for (const char *p = info ? strstr(info, ":calls=") : NULL; p; p = strstr(p + 1, ":calls="))
        n += strtod(p + strlen(":calls="), NULL);
    return n;
}

long long redis_fixture_command_calls(redisContext *c, const char *command) {
    redisReply *r = redisCommand(c, "INFO commandstats");
    long long n = -1;
    if (r && r->type == REDIS_REPLY_STRING) {
        double calls, usec;
        redis_info_command_stats(r->str, command, &calls, &usec);
        n = (long long)calls;
    }
    if (r) freeReplyObject(r);
    return n;
}

int redis_fixture_script_flush(redisContext *c) {
    redisReply *r = redisCommand(c, "SCRIPT FLUSH");
    int rc = r && r->type == REDIS_REPLY_STATUS ? 0 : -1;
    if (r) freeReplyObject(r);
    return rc;
}

redisContext *redis_fixture_connect(const redis_fixture *f, const char *user, const char *password) {
    redisContext *c = redisConnect("127.0.0.1", f->port);
    if (!c || c->err) {
        fprintf(stderr, "fixture: cannot connect to redis on %d\n", f->port);
        if (c) redisFree(c);
        return NULL;
    }
    redisReply *r = redisCommand(c, "AUTH %s %s", user, password);
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
    if (!ok) {
        fprintf(stderr, "fixture: AUTH %s refused on redis %d\n", user, f->port);
        redisFree(c);
        return NULL;
    }
    return c;
}

/* ---- secrets, certificates and HTTP ---- */

int fixture_make_kek(const char *dir, const char *name, char *path, size_t n, uint8_t kek[KEK_LEN]) {
    char err[256];
    snprintf(path, n, "%s/%s", dir, name);
    if (kek_create_file(path, err, sizeof err) != 0 || kek_load_file(path, kek, err, sizeof err) != 0) {
        fprintf(stderr, "fixture: KEK %s: %s\n", path, err);
        return -1;
    }
    return 0;
}

int fixture_make_certs(const char *dir) {
    char script[512];
    snprintf(script, sizeof script, "%s/scripts/make-certs.sh", source_dir());
    char *argv[] = {"/bin/bash", script, (char *)dir, NULL};
    char *err = NULL;
    int rc = fixture_run(argv, NULL, &err);
    if (rc != 0) fprintf(stderr, "fixture: make-certs.sh %s failed (%d): %s\n", dir, rc, err ? err : "");
    free(err);
    return rc == 0 ? 0 : -1;
}

/* Reads until EOF into a NUL-terminated malloc'd buffer, or NULL. */
static char *read_all(int fd) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t got;
    while (buf && (got = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)got;
        if (cap - len < 4096) {
            char *bigger = realloc(buf, cap *= 2);
            if (!bigger) free(buf);
            buf = bigger;
        }
    }
    if (buf) buf[len] = '\0';
    return buf;
}

char *fixture_http_get(const char *host, int port, const char *path) {
    int fd = connect_ipv4(host, port);
    if (fd < 0) return NULL;
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host);
    char *buf = n > 0 && (size_t)n < sizeof req && write(fd, req, (size_t)n) == n ? read_all(fd) : NULL;
    close(fd);
    char *body = buf ? strstr(buf, "\r\n\r\n") : NULL;
    if (!body) {
        free(buf);
        return NULL;
    }
    memmove(buf, body + 4, strlen(body + 4) + 1);
    return buf;
}

double fixture_metric(const char *text, const char *series, double absent) {
    size_t n = strlen(series);
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
        if (strncmp(l, series, n) == 0 && l[n] == ' ') return strtod(l + n + 1, NULL);
    return absent;
}

EVP_PKEY *fixture_public_key_load(const char *pem_path) {
    FILE *f = fopen(pem_path, "r");
    if (!f) {
        fprintf(stderr, "fixture: %s: %s\n", pem_path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (k && EVP_PKEY_get_id(k) == EVP_PKEY_ED25519) return k;
    fprintf(stderr, "fixture: %s holds no Ed25519 public key\n", pem_path);
    EVP_PKEY_free(k);
    return NULL;
}

bool fixture_signature_ok(EVP_PKEY *pub, const uint8_t *body, size_t body_len, const uint8_t *sig,
                          size_t sig_len) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
              EVP_DigestVerify(ctx, sig, sig_len, body, body_len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

bool fixture_license_ok(EVP_PKEY *pub, const uint8_t *body, size_t body_len, const uint8_t *sig, size_t sig_len,
                        uint32_t index, uint32_t size, const ProtobufCBinaryData *path, size_t n_path) {
    merkle_hash leaf, root, hashes[MERKLE_MAX_PATH];
    if (n_path > MERKLE_MAX_PATH) return false;
    for (size_t i = 0; i < n_path; i++) {
        if (path[i].len != MERKLE_HASH_LEN) return false;
        memcpy(hashes[i], path[i].data, MERKLE_HASH_LEN);
    }
    merkle_leaf(body, body_len, leaf);
    if (merkle_root_from_path(leaf, index, size, hashes, n_path, root) != 0) return false;
    uint8_t msg[MERKLE_MESSAGE_LEN];
    size_t len = merkle_signed_message(root, size, msg);
    return fixture_signature_ok(pub, msg, len, sig, sig_len);
}
