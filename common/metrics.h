/* metrics.h -- Prometheus metrics, served as text over HTTP (libmicrohttpd).
 *
 * Metrics are registered at start-up and updated on the hot path with one
 * relaxed atomic add each: no locks, no allocation. A metric is identified
 * by name plus a fixed label string, e.g.
 *   metric *ok = metric_counter("pa_calls_total", "gRPC calls by method and code",
 *                               "method=\"Activate\",code=\"OK\"");
 * Registering the same name+labels twice returns the same metric, so lazily
 * registering a label combination the first time it is seen is safe (it
 * takes a mutex then). Label text is used as given (escape quotes yourself).
 * Registration mistakes are bugs, not input, and abort with a message: an
 * invalid name, a name registered again with another type, histogram bounds
 * not ascending. */
#ifndef PA_METRICS_H
#define PA_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct metric metric;

metric *metric_counter(const char *name, const char *help, const char *labels);
metric *metric_gauge(const char *name, const char *help, const char *labels);
/* `bounds` are the upper bounds of the buckets, ascending (+Inf is added). */
metric *metric_histogram(const char *name, const char *help, const char *labels,
                         const double *bounds, size_t n_bounds);

void metric_inc(metric *m);
void metric_add(metric *m, uint64_t n);
void metric_dec(metric *m);                 /* gauges: e.g. calls in flight */
void metric_set(metric *m, int64_t v);       /* gauges */
void metric_observe(metric *m, double v);    /* histograms */

/* Current value of a counter or gauge (tests and the threat signal read it). */
int64_t metric_value(const metric *m);

/* The whole registry in Prometheus text exposition format (malloc'd). */
char *metrics_render(void);

/* Serves GET /metrics on addr:port (port 0 picks one; the bound port is
 * returned), in its own thread. `addr` is a numeric IPv4 or IPv6 address
 * ("127.0.0.1", "::1" or "[::1]"). Other paths get 404, other methods 405.
 * One listener per process. Returns -1 on failure. */
int metrics_http_start(const char *addr, int port);
void metrics_http_stop(void);

#endif
