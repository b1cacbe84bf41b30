/* conn_limit.c -- the per-address connection cap (see conn_limit.h).
 *
 * accept4 is defined here for the whole process. It calls the kernel
 * directly (syscall), so it does not depend on finding libc's definition,
 * and behaves like libc's for every socket nobody watches. On a watched
 * port it loops: a connection over the cap is reset and closed, and the
 * next one is taken, so a caller that accepts until EAGAIN (gRPC does)
 * never misses a pending connection because one was refused.
 *
 * The bookkeeping, under one mutex (accepts are rare next to calls):
 *   - peers: a hash table of client addresses (16 bytes: IPv4 as
 *     ::ffff:a.b.c.d, IPv6 cut to its /64), each with a count and a list of
 *     the descriptors counted for it;
 *   - slots: one entry per descriptor number, naming the peer it counts for
 *     and the socket's device and inode, so a closed or reused descriptor
 *     is told from a live one by fstat alone.
 * A peer whose count falls to zero is freed, so the table holds only
 * addresses with counted descriptors: at most one per descriptor number.
 *
 * _GNU_SOURCE is dropped for this file so <sys/socket.h> does not declare
 * accept4 with glibc's transparent-union address type; the prototype below
 * is the kernel's. */
#undef _GNU_SOURCE
#define _DEFAULT_SOURCE 1

#include "conn_limit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int accept4(int fd, struct sockaddr *restrict addr, socklen_t *restrict addrlen, int flags);

#define MAX_PORTS 8      /* listen addresses of one server with distinct ports */
#define FIRST_BUCKETS 64 /* peers hash table; doubles when it holds more peers than buckets */

typedef struct peer_key {
    uint8_t b[16];
} peer_key;

typedef struct peer {
    peer_key key;
    int count;         /* descriptors counted for this address */
    int head;          /* first of them (slot list), -1 when none */
    struct peer *next; /* hash chain */
} peer;

typedef struct slot {
    peer *owner; /* NULL: this descriptor number is not counted */
    dev_t dev;   /* the socket counted under this number */
    ino_t ino;
    int prev, next; /* the owner's list of descriptors */
} slot;

struct conn_limit {
    int max;                        /* per address */
    conn_limit_refuse_fn on_refuse; /* may be NULL */
    void *arg;
    int ports[MAX_PORTS];
    size_t n_ports;
    slot *slots; /* indexed by descriptor number */
    size_t n_slots;
    peer **buckets;
    size_t n_buckets; /* a power of two */
    size_t n_peers;
    _Atomic uint64_t refused;
    struct conn_limit *next; /* the registry */
};

/* Every live limiter, and everything inside them, under one mutex. */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static conn_limit *registry;
static atomic_int registry_ports; /* ports watched; 0 keeps accept4 to one syscall */

/* ---- peers ---------------------------------------------------------------- */

static size_t key_hash(const peer_key *k) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < sizeof k->b; i++) h = (h ^ k->b[i]) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29));
}

/* The address a connection counts under; false for non-IP sockets. */
static bool key_of(const struct sockaddr_storage *ss, peer_key *k) {
    memset(k, 0, sizeof *k);
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        k->b[10] = k->b[11] = 0xff;
        memcpy(&k->b[12], &in->sin_addr, 4);
        return true;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) memcpy(k->b, &in6->sin6_addr, 16);
        else memcpy(k->b, &in6->sin6_addr, 8); /* one /64 is one subscriber */
        return true;
    }
    return false;
}

static void key_text(const peer_key *k, char *out, size_t n) {
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(k->b, v4mapped, 12) == 0) {
        if (!inet_ntop(AF_INET, &k->b[12], out, (socklen_t)n)) snprintf(out, n, "?");
        return;
    }
    char a[INET6_ADDRSTRLEN];
    if (!inet_ntop(AF_INET6, k->b, a, sizeof a)) snprintf(a, sizeof a, "?");
    snprintf(out, n, "%s/64", a);
}

static int grow_buckets(conn_limit *l) {
    size_t n = l->n_buckets ? l->n_buckets * 2 : FIRST_BUCKETS;
    peer **b = calloc(n, sizeof *b);
    if (!b) return -1;
    for (size_t i = 0; i < l->n_buckets; i++) {
        for (peer *p = l->buckets[i], *next; p; p = next) {
            next = p->next;
            size_t h = key_hash(&p->key) & (n - 1);
            p->next = b[h];
            b[h] = p;
        }
    }
    free(l->buckets);
    l->buckets = b;
    l->n_buckets = n;
    return 0;
}

static peer *peer_find(conn_limit *l, const peer_key *k, bool add) {
    if (l->n_buckets) {
        for (peer *p = l->buckets[key_hash(k) & (l->n_buckets - 1)]; p; p = p->next)
            if (memcmp(p->key.b, k->b, sizeof k->b) == 0) return p;
    }
    if (!add) return NULL;
    if (l->n_peers >= l->n_buckets && grow_buckets(l) != 0) return NULL;
    peer *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->key = *k;
    p->head = -1;
    size_t h = key_hash(k) & (l->n_buckets - 1);
    p->next = l->buckets[h];
    l->buckets[h] = p;
    l->n_peers++;
    return p;
}

static void peer_remove(conn_limit *l, peer *p) {
    peer **pp = &l->buckets[key_hash(&p->key) & (l->n_buckets - 1)];
    while (*pp != p) pp = &(*pp)->next;
    *pp = p->next;
    l->n_peers--;
    free(p);
}

/* ---- slots ---------------------------------------------------------------- */

static int ensure_slot(conn_limit *l, int fd) {
    if ((size_t)fd < l->n_slots) return 0;
    size_t n = l->n_slots ? l->n_slots : 256;
    while (n <= (size_t)fd) n *= 2;
    slot *s = realloc(l->slots, n * sizeof *s);
    if (!s) return -1;
    memset(s + l->n_slots, 0, (n - l->n_slots) * sizeof *s);
    l->slots = s;
    l->n_slots = n;
    return 0;
}

/* Stops counting descriptor `fd`; frees its peer when that was the last. */
static void slot_drop(conn_limit *l, int fd) {
    slot *s = &l->slots[fd];
    peer *p = s->owner;
    if (s->prev >= 0) l->slots[s->prev].next = s->next;
    else p->head = s->next;
    if (s->next >= 0) l->slots[s->next].prev = s->prev;
    s->owner = NULL;
    if (--p->count == 0) peer_remove(l, p);
}

static void slot_add(conn_limit *l, peer *p, int fd, const struct stat *st) {
    slot *s = &l->slots[fd];
    *s = (slot){.owner = p, .dev = st->st_dev, .ino = st->st_ino, .prev = -1, .next = p->head};
    if (p->head >= 0) l->slots[p->head].prev = fd;
    p->head = fd;
    p->count++;
}

static bool slot_alive(const slot *s, int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino;
}

/* Drops the descriptors of `p` that were closed since they were counted.
 * Returns false when that freed `p`. */
static bool peer_prune(conn_limit *l, peer *p) {
    int count = p->count;
    for (int fd = p->head, next; fd >= 0 && count > 0; fd = next) {
        next = l->slots[fd].next;
        if (!slot_alive(&l->slots[fd], fd)) {
            count--;
            slot_drop(l, fd); /* may free p once count reaches 0 */
        }
    }
    return count > 0;
}

/* ---- the registry ---------------------------------------------------------- */

static conn_limit *watching(int port) {
    for (conn_limit *l = registry; l; l = l->next)
        for (size_t i = 0; i < l->n_ports; i++)
            if (l->ports[i] == port) return l;
    return NULL;
}

conn_limit *conn_limit_new(int max_per_address, conn_limit_refuse_fn on_refuse, void *arg) {
    if (max_per_address < 1) return NULL;
    conn_limit *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->max = max_per_address;
    l->on_refuse = on_refuse;
    l->arg = arg;
    pthread_mutex_lock(&registry_mu);
    l->next = registry;
    registry = l;
    pthread_mutex_unlock(&registry_mu);
    return l;
}

int conn_limit_watch(conn_limit *l, int port) {
    pthread_mutex_lock(&registry_mu);
    conn_limit *other = watching(port);
    int rc = -1;
    if (other == l) {
        rc = 0;
    } else if (!other && l->n_ports < MAX_PORTS) {
        l->ports[l->n_ports++] = port;
        atomic_fetch_add(&registry_ports, 1);
        rc = 0;
    }
    pthread_mutex_unlock(&registry_mu);
    return rc;
}

void conn_limit_free(conn_limit *l) {
    if (!l) return;
    pthread_mutex_lock(&registry_mu);
    conn_limit **pp = &registry;
    while (*pp && *pp != l) pp = &(*pp)->next;
    if (*pp) *pp = l->next;
    atomic_fetch_sub(&registry_ports, (int)l->n_ports);
    pthread_mutex_unlock(&registry_mu);
    for (size_t i = 0; i < l->n_buckets; i++) {
        for (peer *p = l->buckets[i], *next; p; p = next) {
            next = p->next;
            free(p);
        }
    }
    free(l->buckets);
    free(l->slots);
    free(l);
}

uint64_t conn_limit_refused(const conn_limit *l) { return atomic_load(&l->refused); }

size_t conn_limit_open(conn_limit *l) {
    pthread_mutex_lock(&registry_mu);
    size_t open = 0;
    for (size_t i = 0; i < l->n_buckets; i++) {
        for (peer *p = l->buckets[i], *next; p; p = next) {
            next = p->next;
            if (peer_prune(l, p)) open += (size_t)p->count;
        }
    }
    pthread_mutex_unlock(&registry_mu);
    return open;
}

/* ---- accept4 ----------------------------------------------------------------- */

static int local_port(int listen_fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(listen_fd, (struct sockaddr *)&ss, &len) != 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* Counts connection `fd` from `from` if its listener is watched and the
 * address is under the cap; false means close it. */
static bool admit(int listen_fd, int fd, const struct sockaddr_storage *from) {
    if (atomic_load_explicit(&registry_ports, memory_order_relaxed) == 0) return true;
    peer_key k;
    int port = local_port(listen_fd);
    if (port < 0 || !key_of(from, &k)) return true;
    pthread_mutex_lock(&registry_mu);
    conn_limit *l = watching(port);
    if (!l) {
        pthread_mutex_unlock(&registry_mu);
        return true;
    }
    bool ok = false;
    struct stat st;
    if (fstat(fd, &st) == 0 && ensure_slot(l, fd) == 0) {
        /* The number came back from the kernel, so whatever it counted is gone. */
        if (l->slots[fd].owner) slot_drop(l, fd);
        peer *p = peer_find(l, &k, false);
        if (p && !peer_prune(l, p)) p = NULL; /* none of its connections is open any more */
        if (!p) p = peer_find(l, &k, true);
        ok = p && p->count < l->max;
        if (ok) slot_add(l, p, fd, &st);
    }
    conn_limit_refuse_fn cb = ok ? NULL : l->on_refuse;
    void *arg = l->arg;
    if (!ok) atomic_fetch_add(&l->refused, 1);
    pthread_mutex_unlock(&registry_mu);
    if (cb) {
        char text[INET6_ADDRSTRLEN + 4];
        key_text(&k, text, sizeof text);
        cb(arg, text);
    }
    return ok;
}

int accept4(int listen_fd, struct sockaddr *restrict addr, socklen_t *restrict addrlen, int flags) {
    for (;;) {
        struct sockaddr_storage from;
        socklen_t len = sizeof from;
        long fd = syscall(SYS_accept4, listen_fd, (struct sockaddr *)&from, &len, flags);
        if (fd < 0) return -1;
        if (admit(listen_fd, (int)fd, &from)) {
            if (addr && addrlen) {
                memcpy(addr, &from, len < *addrlen ? len : *addrlen);
                *addrlen = len;
            }
            return (int)fd;
        }
        /* A reset, not a FIN: no TIME_WAIT left behind for a refused peer. */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt((int)fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close((int)fd);
    }
}
