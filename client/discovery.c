/* discovery.c -- finding activation servers: an explicit list, or DNS SRV
 * records `_activation._tcp.<domain>` (docs/activation-flow.md, after KMS's
 * _vlmcs._tcp), ordered as RFC 2782 says, or on-premises servers announced
 * on the LAN by mDNS (mdns_browse.h; the answers become endpoints here).
 *
 * SRV lets an enterprise add, drain or weight servers by editing DNS, with
 * no change on the clients. The order matters for failover: all servers of
 * the lowest priority first, spread by weight so that load follows the
 * weights, then the next priority. The transport walks this order and
 * moves on when a server is unavailable.
 *
 * The query runs on c-ares with its own small event loop (ares_getsock +
 * poll + ares_process_fd), bounded by the caller's deadline. The DNS server
 * can be named ("127.0.0.1:5353") so tests, and sites with a dedicated
 * resolver, need not touch /etc/resolv.conf. The SRV target names are
 * resolved by gRPC when it dials; when a DNS server was named, the target
 * carries it as the authority (dns://IP:PORT/host:port), so the names in the
 * records are looked up in the same place the records came from.
 *
 * The last server that answered is remembered by the caller (client.c keeps
 * it in the state directory) and tried first next time: it is likely still
 * up, and sticking to it keeps one machine's calls on one server.
 *
 * Everything a DNS answer or an option names is checked before it becomes a
 * gRPC target, and targets are only ever built as "ipv4:ADDR:PORT",
 * "ipv6:[ADDR]:PORT" or "dns:[//DNS]/HOST:PORT" with HOST a valid host name:
 * a record or option such as "unix:/run/x" never reaches gRPC's URI parser
 * as a scheme of its own. SRV targets must lie inside the SRV domain (the
 * TLS certificate is checked against the target; see endpoints_from_srv),
 * and one answer yields at most SRV_MAX_RECORDS servers to try. */
#include "discovery.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <ctype.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"

/* ---- RFC 2782 ordering ----------------------------------------------- */

static int by_priority(const void *a, const void *b) {
    const srv_record *x = a, *y = b;
    return (int)x->priority - (int)y->priority;
}

/* Moves r[k] to r[i], shifting r[i..k) up one, so the rest keep their order. */
static void move_to(srv_record *r, size_t i, size_t k) {
    srv_record t = r[k];
    memmove(&r[i + 1], &r[i], (k - i) * sizeof *r);
    r[i] = t;
}

/* Orders r[lo, hi) (one priority) by repeated weighted picks. */
static void order_by_weight(srv_record *r, size_t lo, size_t hi, rand_fn rnd, void *arg) {
    /* RFC 2782: zero-weight entries first, so they keep a small chance. */
    size_t z = lo;
    for (size_t k = lo; k < hi; k++)
        if (r[k].weight == 0) move_to(r, z++, k);
    for (size_t i = lo; i + 1 < hi; i++) {
        uint64_t sum = 0;
        for (size_t k = i; k < hi; k++) sum += r[k].weight;
        uint64_t pick = rnd(arg) % (sum + 1);  /* uniform in [0, sum] */
        uint64_t running = 0;
        size_t k = i;
        for (; k < hi; k++) {
            running += r[k].weight;
            if (running >= pick) break;
        }
        move_to(r, i, k < hi ? k : hi - 1);
    }
}

void srv_order(srv_record *r, size_t n, rand_fn rnd, void *rnd_arg) {
    if (n < 2) return;
    /* qsort is not stable; equal priorities are reordered by weight anyway. */
    qsort(r, n, sizeof *r, by_priority);
    size_t lo = 0;
    while (lo < n) {
        size_t hi = lo + 1;
        while (hi < n && r[hi].priority == r[lo].priority) hi++;
        order_by_weight(r, lo, hi, rnd, rnd_arg);
        lo = hi;
    }
}

/* ---- The SRV query on c-ares ------------------------------------------ */

typedef struct srv_query {
    bool done;              /* the callback ran */
    int status;             /* ARES_SUCCESS or the failure */
    srv_record *recs;       /* collected answers */
    size_t n;
} srv_query;

/* Parses a raw DNS answer into q->recs / q->n, q->status saying how it
 * went; no I/O, so the fuzzer can drive it (srv_parse_answer). */
static void collect_answer(srv_query *q, const unsigned char *abuf, int alen) {
    struct ares_srv_reply *reply = NULL;
    q->status = ares_parse_srv_reply(abuf, alen, &reply);
    if (q->status != ARES_SUCCESS) return;
    size_t count = 0;
    for (struct ares_srv_reply *s = reply; s && count < SRV_MAX_RECORDS; s = s->next) count++;
    q->recs = calloc(count ? count : 1, sizeof *q->recs);
    if (!q->recs) {
        q->status = ARES_ENOMEM;
    } else {
        for (struct ares_srv_reply *s = reply; s && q->n < count; s = s->next) {
            /* No target, or one too long to be a host name once c-ares has
             * escaped it: dropped, never cut short into another name. */
            if (!s->host[0] || strcmp(s->host, ".") == 0 || strlen(s->host) >= sizeof q->recs->host) continue;
            srv_record *d = &q->recs[q->n++];
            snprintf(d->host, sizeof d->host, "%s", s->host);
            d->port = s->port;
            d->priority = s->priority;
            d->weight = s->weight;
        }
    }
    ares_free_data(reply);
}

static void on_srv_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen) {
    srv_query *q = arg;
    q->done = true;
    q->status = status;
    if (status != ARES_SUCCESS) return;
    collect_answer(q, abuf, alen);
}

int srv_parse_answer(const unsigned char *abuf, int alen, srv_record **out, size_t *n) {
    srv_query q = {0};
    collect_answer(&q, abuf, alen);
    if (q.status != ARES_SUCCESS) {
        free(q.recs);
        q.recs = NULL;
        q.n = 0;
    }
    *out = q.recs;
    *n = q.n;
    return q.status;
}

/* Drives c-ares until the query finishes or the deadline passes. */
static void run_until_done(ares_channel ch, srv_query *q, int64_t deadline) {
    while (!q->done) {
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        nfds_t n = 0;
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            /* c-ares's own ARES_GETSOCK_WRITABLE shifts into the sign bit of
             * an int for the last socket; shift unsigned instead. */
            unsigned mask = (unsigned)bits;
            short ev = (short)(((mask >> i) & 1u ? POLLIN : 0) |
                               ((mask >> (i + ARES_GETSOCK_MAXNUM)) & 1u ? POLLOUT : 0));
            if (!ev) continue;
            pfd[n].fd = socks[i];
            pfd[n].events = ev;
            pfd[n].revents = 0;
            n++;
        }
        int64_t left = deadline - pa_mono_ms();
        if (left <= 0) return;
        struct timeval maxtv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000}, tv;
        struct timeval *tvp = ares_timeout(ch, &maxtv, &tv);
        int wait_ms = (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000);
        int ready = poll(pfd, n, wait_ms);
        if (ready <= 0) {
            ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  /* timeouts, retries */
            continue;
        }
        for (nfds_t i = 0; i < n; i++) {
            ares_socket_t r = (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd : ARES_SOCKET_BAD;
            ares_socket_t w = (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD;
            if (r != ARES_SOCKET_BAD || w != ARES_SOCKET_BAD) ares_process_fd(ch, r, w);
        }
    }
}

static int open_channel(ares_channel *ch, const char *dns_server, int timeout_ms, char *err, size_t errlen) {
    struct ares_options opts;
    memset(&opts, 0, sizeof opts);
    opts.timeout = timeout_ms / 3 > 0 ? timeout_ms / 3 : 1;  /* per try; three tries fit */
    opts.tries = 3;
    int rc = ares_init_options(ch, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "cannot start the DNS resolver: %s", ares_strerror(rc));
        return -1;
    }
    if (dns_server && *dns_server) {
        rc = ares_set_servers_ports_csv(*ch, dns_server);
        if (rc != ARES_SUCCESS) {
            snprintf(err, errlen, "bad DNS server \"%s\" (want IP:PORT): %s", dns_server, ares_strerror(rc));
            ares_destroy(*ch);
            return -1;
        }
    }
    return 0;
}

int srv_lookup(const char *domain, const char *dns_server, int timeout_ms, srv_record **out, size_t *n,
               char *err, size_t errlen) {
    *out = NULL;
    *n = 0;
    char name[300];
    if (snprintf(name, sizeof name, "_activation._tcp.%s", domain) >= (int)sizeof name) {
        snprintf(err, errlen, "SRV domain too long");
        return -1;
    }
    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "cannot start c-ares: %s", ares_strerror(rc));
        return -1;
    }
    ares_channel ch;
    if (open_channel(&ch, dns_server, timeout_ms, err, errlen) != 0) {
        ares_library_cleanup();
        return -1;
    }
    srv_query q = {0};
    ares_query(ch, name, ns_c_in, ns_t_srv, on_srv_answer, &q);
    run_until_done(ch, &q, pa_mono_ms() + timeout_ms);
    bool timed_out = !q.done;
    ares_destroy(ch);  /* runs the callback with ARES_EDESTRUCTION if still pending */
    ares_library_cleanup();
    if (q.status != ARES_SUCCESS || q.n == 0) {
        snprintf(err, errlen, "no activation servers found for %s: %s", name,
                 timed_out                  ? "the DNS query timed out"
                 : q.status != ARES_SUCCESS ? ares_strerror(q.status)
                                            : "no usable SRV records");
        free(q.recs);
        return -1;
    }
    *out = q.recs;
    *n = q.n;
    return 0;
}

/* ---- Names ---------------------------------------------------------------- */

bool host_name_valid(const char *name) {
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '.') len--; /* absolute form */
    if (len == 0 || len > 253) return false;
    size_t label = 0;        /* characters in the current label */
    bool digits_only = true; /* ... all of them digits */
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? name[i] : '.';
        if (c == '.') {
            if (label == 0 || label > 63 || name[i - 1] == '-') return false;
            if (i == len && digits_only) return false; /* "10.0.0.1" is not a host name */
            label = 0;
            digits_only = true;
            continue;
        }
        if (!(isalnum((unsigned char)c) || c == '-') || (c & 0x80)) return false;
        if (label == 0 && c == '-') return false;
        if (!isdigit((unsigned char)c)) digits_only = false;
        label++;
    }
    return true;
}

/* Length of `s` without one final dot. */
static size_t bare_len(const char *s) {
    size_t n = strlen(s);
    return n > 0 && s[n - 1] == '.' ? n - 1 : n;
}

bool host_in_domain(const char *name, const char *domain) {
    size_t n = bare_len(name), d = bare_len(domain);
    if (d == 0 || n < d || strncasecmp(name + n - d, domain, d) != 0) return false;
    return n == d || name[n - d - 1] == '.';
}

/* ---- Endpoints ----------------------------------------------------------- */

int endpoints_from_srv(const srv_record *r, size_t n, const char *domain, const char *dns_server, endpoint **out,
                       size_t *n_out, char *err, size_t errlen) {
    *out = NULL;
    *n_out = 0;
    endpoint *e = calloc(n ? n : 1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t used = 0;
    char why[300] = "";
    for (size_t i = 0; i < n; i++) {
        /* Checked as printable text first: it goes into messages. */
        if (!host_name_valid(r[i].host)) {
            if (!why[0]) snprintf(why, sizeof why, "an SRV target is not a host name");
            continue;
        }
        if (!host_in_domain(r[i].host, domain)) {
            if (!why[0]) snprintf(why, sizeof why, "SRV target %s is outside %s", r[i].host, domain);
            continue;
        }
        if (r[i].port == 0) {
            if (!why[0]) snprintf(why, sizeof why, "SRV target %s has port 0", r[i].host);
            continue;
        }
        endpoint *p = &e[used++];
        size_t len = bare_len(r[i].host); /* a final dot is fine for DNS but not for display */
        snprintf(p->name, sizeof p->name, "%.*s:%u", (int)len, r[i].host, (unsigned)r[i].port);
        if (dns_server && *dns_server) snprintf(p->target, sizeof p->target, "dns://%s/%s", dns_server, p->name);
        else snprintf(p->target, sizeof p->target, "dns:///%s", p->name);
    }
    if (used == 0) {
        free(e);
        snprintf(err, errlen, "no usable SRV records for %s%s%s", domain, why[0] ? ": " : "", why);
        return -1;
    }
    *out = e;
    *n_out = used;
    return 0;
}

/* "host:port" or "[v6]:port" with a port in 1..65535 into the target gRPC
 * dials; false if it is neither. */
static bool server_target(const char *s, char *target, size_t n) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || colon[1] == '\0') return false;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || !isdigit((unsigned char)colon[1]) || port < 1 || port > 65535) return false;
    char host[256];
    size_t hlen = (size_t)(colon - s);
    if (s[0] == '[') {
        if (colon[-1] != ']' || hlen < 3 || hlen - 2 >= sizeof host) return false;
        memcpy(host, s + 1, hlen - 2);
        host[hlen - 2] = '\0';
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) != 1) return false;
        return snprintf(target, n, "ipv6:[%s]:%ld", host, port) < (int)n;
    }
    if (hlen >= sizeof host) return false;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1) return snprintf(target, n, "ipv4:%s:%ld", host, port) < (int)n;
    if (!host_name_valid(host)) return false;
    return snprintf(target, n, "dns:///%s:%ld", host, port) < (int)n;
}

int endpoints_from_list(const char *const *servers, size_t n, endpoint **out, size_t *n_out, char *err,
                        size_t errlen) {
    *out = NULL;
    *n_out = 0;
    endpoint *e = calloc(n ? n : 1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (strlen(servers[i]) >= sizeof e[i].name || !server_target(servers[i], e[i].target, sizeof e[i].target)) {
            snprintf(err, errlen,
                     "bad server \"%.200s\": want HOST:PORT with HOST a host name or an IP address "
                     "(IPv6 as [ADDR]:PORT)",
                     servers[i]);
            free(e);
            return -1;
        }
        snprintf(e[i].name, sizeof e[i].name, "%s", servers[i]);
    }
    *out = e;
    *n_out = n;
    return 0;
}

/* One mDNS service into `p`; NULL, or why it is not usable. */
static const char *mdns_endpoint(const mdns_service *s, endpoint *p) {
    if (!host_name_valid(s->host)) return "an announced host is not a host name";
    if (!host_in_domain(s->host, "local")) return "an announced host is outside .local";
    if (s->port == 0) return "an announcement has port 0";
    struct in_addr a4;
    struct in6_addr a6;
    size_t len = bare_len(s->host);
    if (inet_pton(AF_INET, s->address, &a4) == 1)
        snprintf(p->target, sizeof p->target, "ipv4:%s:%u", s->address, (unsigned)s->port);
    else if (inet_pton(AF_INET6, s->address, &a6) == 1)
        snprintf(p->target, sizeof p->target, "ipv6:[%s]:%u", s->address, (unsigned)s->port);
    else return "an announced address is not an IP address";
    snprintf(p->name, sizeof p->name, "%.*s:%u", (int)len, s->host, (unsigned)s->port);
    snprintf(p->tls_name, sizeof p->tls_name, "%.*s", (int)len, s->host);
    return NULL;
}

int endpoints_from_mdns(const mdns_service *s, size_t n, endpoint **out, size_t *n_out, char *err, size_t errlen) {
    *out = NULL;
    *n_out = 0;
    endpoint *e = calloc(n ? n : 1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t used = 0;
    const char *why = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *bad = mdns_endpoint(&s[i], &e[used]);
        if (!bad) used++;
        else if (!why) why = bad;
    }
    if (used == 0) {
        free(e);
        snprintf(err, errlen, "mDNS: no usable announcement%s%s", why ? ": " : "", why ? why : "");
        return -1;
    }
    *out = e;
    *n_out = used;
    return 0;
}

void endpoints_prefer(endpoint *e, size_t n, const char *name) {
    if (!name || !*name) return;
    for (size_t k = 1; k < n; k++) {
        if (strcmp(e[k].name, name) != 0) continue;
        endpoint t = e[k];
        memmove(&e[1], &e[0], k * sizeof *e);
        e[0] = t;
        return;
    }
}
