/* metrics.c -- a process-wide registry of Prometheus metrics.
 *
 * Why it looks like this: metrics are touched on every call, so an update
 * must cost one relaxed atomic operation and nothing else -- no lock, no
 * lookup, no allocation. Everything that is slow happens elsewhere:
 *   - registration (a mutex, a linear search, malloc) at start-up, or the
 *     first time a label combination is seen;
 *   - rendering, which walks the registry under the same mutex and reads
 *     each value atomically. Prometheus scrapes a few times a minute.
 * Series of one metric name are kept together in a "family" so the text
 * output carries HELP and TYPE once per name, as the format requires.
 * Each series is allocated on its own cache line so counters bumped by
 * different worker threads do not share one. Nothing is ever freed: the
 * registry lives as long as the process (and stays reachable, so leak
 * checkers do not complain).
 *
 * The HTTP side is libmicrohttpd with its own polling thread: one GET
 * /metrics renders the registry; everything else is 404. */
#include "metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type;

typedef struct family family;

struct metric {
    _Atomic int64_t value;        /* counters and gauges: the value itself */
    _Atomic uint64_t count;       /* histograms: observations so far */
    _Atomic uint64_t sum_bits;    /* histograms: sum of observations, a double's bits (CAS-updated) */
    _Atomic uint64_t *buckets;    /* histograms: per-bucket (not cumulative) counts, n_bounds + 1 */
    double *bounds;               /* histograms: upper bounds, ascending; the extra bucket is +Inf */
    size_t n_bounds;
    family *fam;                  /* name, help and type shared by all series of the name */
    char *labels;                 /* preformatted `k="v",k2="v2"` or "" */
    metric *next;                 /* next series of the same family, in registration order */
};

struct family {
    char *name;                   /* metric name, validated at registration */
    char *help;                   /* HELP text as given (escaped when rendered) */
    metric_type type;             /* a name has one type; a mismatch is a programming error */
    metric *first, *last;         /* its series, in registration order */
    family *next;                 /* registry order = output order */
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static family *g_first, *g_last;  /* the registry; guarded by g_mu, never shrinks */

/* --- registration ------------------------------------------------------ */

/* Registration mistakes are bugs in our code, not bad input: say what is
 * wrong and stop, rather than hand back a NULL that crashes later. */
static void die(const char *what, const char *name) {
    fprintf(stderr, "metrics: %s: \"%s\"\n", what, name ? name : "(null)");
    abort();
}

static bool valid_name(const char *s) {
    if (!s || !*s) return false;
    for (const char *p = s; *p; p++) {
        bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == ':';
        if (!alpha && !(p > s && *p >= '0' && *p <= '9')) return false;
    }
    return true;
}

static char *xstrdup(const char *s) {
    char *d = strdup(s ? s : "");
    if (!d) die("out of memory registering", s);
    return d;
}

static family *family_get(const char *name, const char *help, metric_type type) {
    for (family *f = g_first; f; f = f->next) {
        if (strcmp(f->name, name) != 0) continue;
        if (f->type != type) die("metric registered again with another type", name);
        return f;
    }
    family *f = calloc(1, sizeof *f);
    if (!f) die("out of memory registering", name);
    f->name = xstrdup(name);
    f->help = xstrdup(help);
    f->type = type;
    if (g_last) g_last->next = f; else g_first = f;
    g_last = f;
    return f;
}

static metric *series_new(family *f, const char *labels, const double *bounds, size_t n_bounds) {
    /* A cache line of its own: two workers bumping neighbouring counters
     * would otherwise fight over one line. */
    size_t size = (sizeof(metric) + 63) / 64 * 64;
    metric *m = aligned_alloc(64, size);
    if (!m) die("out of memory registering", f->name);
    memset(m, 0, size);
    m->fam = f;
    m->labels = xstrdup(labels);
    if (f->type == METRIC_HISTOGRAM) {
        m->n_bounds = n_bounds;
        m->bounds = malloc((n_bounds ? n_bounds : 1) * sizeof *m->bounds);
        m->buckets = calloc(n_bounds + 1, sizeof *m->buckets);
        if (!m->bounds || !m->buckets) die("out of memory registering", f->name);
        for (size_t i = 0; i < n_bounds; i++) {
            if (i > 0 && !(bounds[i] > bounds[i - 1])) die("histogram bounds not ascending", f->name);
            m->bounds[i] = bounds[i];
        }
    }
    if (f->last) f->last->next = m; else f->first = m;
    f->last = m;
    return m;
}

static metric *metric_register(const char *name, const char *help, const char *labels,
                               metric_type type, const double *bounds, size_t n_bounds) {
    if (!valid_name(name)) die("invalid metric name", name);
    if (!labels) labels = "";
    pthread_mutex_lock(&g_mu);
    family *f = family_get(name, help, type);
    metric *m = f->first;
    while (m && strcmp(m->labels, labels) != 0) m = m->next;
    if (!m) m = series_new(f, labels, bounds, n_bounds);
    pthread_mutex_unlock(&g_mu);
    return m;
}

metric *metric_counter(const char *name, const char *help, const char *labels) {
    return metric_register(name, help, labels, METRIC_COUNTER, NULL, 0);
}

metric *metric_gauge(const char *name, const char *help, const char *labels) {
    return metric_register(name, help, labels, METRIC_GAUGE, NULL, 0);
}

metric *metric_histogram(const char *name, const char *help, const char *labels,
                         const double *bounds, size_t n_bounds) {
    return metric_register(name, help, labels, METRIC_HISTOGRAM, bounds, n_bounds);
}

/* --- the hot path -------------------------------------------------------- */

void metric_inc(metric *m) { atomic_fetch_add_explicit(&m->value, 1, memory_order_relaxed); }

void metric_dec(metric *m) { atomic_fetch_sub_explicit(&m->value, 1, memory_order_relaxed); }

void metric_add(metric *m, uint64_t n) {
    atomic_fetch_add_explicit(&m->value, (int64_t)n, memory_order_relaxed);
}

void metric_set(metric *m, int64_t v) { atomic_store_explicit(&m->value, v, memory_order_relaxed); }

int64_t metric_value(const metric *m) {
    return atomic_load_explicit(&((metric *)m)->value, memory_order_relaxed);
}

static uint64_t double_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bits_double(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

void metric_observe(metric *m, double v) {
    size_t lo = 0, hi = m->n_bounds;     /* first bound >= v; n_bounds means +Inf */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v <= m->bounds[mid]) hi = mid; else lo = mid + 1;
    }
    atomic_fetch_add_explicit(&m->buckets[lo], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&m->sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&m->sum_bits, &old, double_bits(bits_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
}

/* --- rendering ------------------------------------------------------------ */

static void put_help(FILE *out, const char *help) {
    for (const char *p = help; *p; p++) {
        if (*p == '\\') fputs("\\\\", out);
        else if (*p == '\n') fputs("\\n", out);
        else fputc(*p, out);
    }
}

/* `name{labels,extra}` with the braces left out when both are empty. */
static void put_series(FILE *out, const char *name, const char *suffix, const char *labels,
                       const char *extra) {
    fputs(name, out);
    fputs(suffix, out);
    if (!*labels && !*extra) return;
    fprintf(out, "{%s%s%s}", labels, (*labels && *extra) ? "," : "", extra);
}

static void render_histogram(FILE *out, const family *f, metric *m) {
    uint64_t cumulative = 0;
    char le[64];
    for (size_t i = 0; i <= m->n_bounds; i++) {
        cumulative += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
        if (i < m->n_bounds) snprintf(le, sizeof le, "le=\"%.9g\"", m->bounds[i]);
        else snprintf(le, sizeof le, "le=\"+Inf\"");
        put_series(out, f->name, "_bucket", m->labels, le);
        fprintf(out, " %llu\n", (unsigned long long)cumulative);
    }
    /* The bucket counts were read one by one while writers kept going, so
     * _count is taken as the +Inf bucket: the two then always agree. */
    put_series(out, f->name, "_sum", m->labels, "");
    fprintf(out, " %.9g\n", bits_double(atomic_load_explicit(&m->sum_bits, memory_order_relaxed)));
    put_series(out, f->name, "_count", m->labels, "");
    fprintf(out, " %llu\n", (unsigned long long)cumulative);
}

static const char *type_name(metric_type t) {
    return t == METRIC_COUNTER ? "counter" : t == METRIC_GAUGE ? "gauge" : "histogram";
}

char *metrics_render(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out) return NULL;
    pthread_mutex_lock(&g_mu);
    for (const family *f = g_first; f; f = f->next) {
        fprintf(out, "# HELP %s ", f->name);
        put_help(out, f->help);
        fprintf(out, "\n# TYPE %s %s\n", f->name, type_name(f->type));
        for (metric *m = f->first; m; m = m->next) {
            if (f->type == METRIC_HISTOGRAM) {
                render_histogram(out, f, m);
                continue;
            }
            put_series(out, f->name, "", m->labels, "");
            fprintf(out, " %lld\n", (long long)metric_value(m));
        }
    }
    pthread_mutex_unlock(&g_mu);
    if (fclose(out) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* --- HTTP ------------------------------------------------------------------ */

static struct MHD_Daemon *g_http;   /* the one metrics listener, or NULL */

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    if (strcmp(url, "/metrics") != 0) return reply_text(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n");
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET is served here\n");
    char *text = metrics_render();
    if (!text) return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* Accepts "127.0.0.1", "::1" and "[::1]". */
static int parse_addr(const char *addr, int port, struct sockaddr_storage *ss, unsigned *flags) {
    char host[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(addr);
    if (n >= sizeof host) return -1;
    if (addr[0] == '[' && n > 2 && addr[n - 1] == ']') {
        memcpy(host, addr + 1, n - 2);
        host[n - 2] = '\0';
    } else {
        memcpy(host, addr, n + 1);
    }
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *flags |= MHD_USE_IPv6;
        return 0;
    }
    return -1;
}

int metrics_http_start(const char *addr, int port) {
    if (g_http || !addr || port < 0 || port > 65535) return -1;
    struct sockaddr_storage ss;
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD;
    if (parse_addr(addr, port, &ss, &flags) != 0) {
        fprintf(stderr, "metrics: listen address \"%s\" is not a numeric IPv4 or IPv6 address\n", addr);
        return -1;
    }
    g_http = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, NULL,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                              MHD_OPTION_END);
    if (!g_http) return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(g_http, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || info->port == 0) {
        metrics_http_stop();
        return -1;
    }
    return info->port;
}

void metrics_http_stop(void) {
    if (!g_http) return;
    MHD_stop_daemon(g_http);
    g_http = NULL;
}
