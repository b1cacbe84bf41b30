/* test_metrics.c -- the metrics registry, its text format and its HTTP
 * endpoint (fetched with a raw socket, as a scraper would). */
#include "metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_counter_and_gauge(void **state) {
    metric *a = metric_counter("t_requests_total", "Requests seen", "kind=\"a\"");
    metric *b = metric_counter("t_requests_total", "Requests seen", "kind=\"b\"");
    assert_ptr_equal(a, metric_counter("t_requests_total", "Requests seen", "kind=\"a\""));
    assert_ptr_not_equal(a, b);
    metric_inc(a);
    metric_add(a, 41);
    metric_inc(b);
    assert_int_equal(metric_value(a), 42);
    assert_int_equal(metric_value(b), 1);
    metric *g = metric_gauge("t_in_flight", "Calls in flight", NULL);
    metric_set(g, 5);
    metric_inc(g);
    metric_dec(g);
    metric_dec(g);
    assert_int_equal(metric_value(g), 4);

    char *text = metrics_render();
    assert_non_null(text);
    assert_non_null(strstr(text, "# HELP t_requests_total Requests seen\n# TYPE t_requests_total counter\n"));
    assert_non_null(strstr(text, "t_requests_total{kind=\"a\"} 42\n"));
    assert_non_null(strstr(text, "t_requests_total{kind=\"b\"} 1\n"));
    assert_non_null(strstr(text, "# TYPE t_in_flight gauge\nt_in_flight 4\n"));
    const char *first = strstr(text, "# HELP t_requests_total");
    assert_null(strstr(first + 1, "# HELP t_requests_total"));
    free(text);
}

static void test_histogram(void **state) {
    const double bounds[] = {0.01, 0.1, 1};
    metric *h = metric_histogram("t_latency_seconds", "Latency\nwith a newline", "op=\"x\"", bounds, 3);
    metric_observe(h, 0.005);
    metric_observe(h, 0.01);   /* le is inclusive */
    metric_observe(h, 0.05);
    metric_observe(h, 5);
    char *text = metrics_render();
    assert_non_null(text);
    assert_non_null(strstr(text, "# HELP t_latency_seconds Latency\\nwith a newline\n"));
    assert_non_null(strstr(text, "# TYPE t_latency_seconds histogram\n"));
    assert_non_null(strstr(text, "t_latency_seconds_bucket{op=\"x\",le=\"0.01\"} 2\n"));
    assert_non_null(strstr(text, "t_latency_seconds_bucket{op=\"x\",le=\"0.1\"} 3\n"));
    assert_non_null(strstr(text, "t_latency_seconds_bucket{op=\"x\",le=\"1\"} 3\n"));
    assert_non_null(strstr(text, "t_latency_seconds_bucket{op=\"x\",le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(text, "t_latency_seconds_sum{op=\"x\"} 5.065\n"));
    assert_non_null(strstr(text, "t_latency_seconds_count{op=\"x\"} 4\n"));
    free(text);
}

typedef struct bump_arg {
    metric *c;
    metric *h;
} bump_arg;

static void *bump(void *p) {
    bump_arg *a = p;
    for (int i = 0; i < 100000; i++) {
        metric_inc(a->c);
        metric_observe(a->h, 0.5);
    }
    return NULL;
}

static void test_concurrent_updates_are_exact(void **state) {
    const double bounds[] = {1};
    bump_arg a = {metric_counter("t_bumps_total", "Bumps", ""),
                  metric_histogram("t_bump_seconds", "Bumps", "", bounds, 1)};
    pthread_t t[4];
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&t[i], NULL, bump, &a), 0);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    assert_int_equal(metric_value(a.c), 400000);
    char *text = metrics_render();
    assert_non_null(strstr(text, "t_bump_seconds_sum 200000\n"));
    assert_non_null(strstr(text, "t_bump_seconds_count 400000\n"));
    free(text);
}

/* One HTTP/1.0 request over a raw socket; returns the whole response. */
static char *http_get(int family, const char *ip, int port, const char *method, const char *path) {
    int fd = socket(family, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, ip, &a->sin_addr);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, ip, &a->sin6_addr);
        len = sizeof *a;
    }
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
    char req[256];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: x\r\n\r\n", method, path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t cap = 65536, off = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(fd, buf + off, cap - off - 1)) > 0) {
        off += (size_t)r;
        if (off + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    buf[off] = '\0';
    close(fd);
    return buf;
}

static void test_http_endpoint(void **state) {
    metric_inc(metric_counter("t_http_total", "Seen over HTTP", "x=\"1\""));
    int port = metrics_http_start("127.0.0.1", 0);
    assert_true(port > 0);
    assert_int_equal(metrics_http_start("127.0.0.1", 0), -1);   /* one listener per process */
    char *resp = http_get(AF_INET, "127.0.0.1", port, "GET", "/metrics");
    assert_true(strncmp(resp, "HTTP/1.0 200", 12) == 0 || strncmp(resp, "HTTP/1.1 200", 12) == 0);
    assert_non_null(strstr(resp, "text/plain; version=0.0.4"));
    assert_non_null(strstr(resp, "t_http_total{x=\"1\"} 1\n"));
    free(resp);
    resp = http_get(AF_INET, "127.0.0.1", port, "GET", "/other");
    assert_non_null(strstr(resp, " 404 "));
    free(resp);
    resp = http_get(AF_INET, "127.0.0.1", port, "POST", "/metrics");
    assert_non_null(strstr(resp, " 405 "));
    free(resp);
    metrics_http_stop();

    port = metrics_http_start("[::1]", 0);
    assert_true(port > 0);
    resp = http_get(AF_INET6, "::1", port, "GET", "/metrics");
    assert_non_null(strstr(resp, "t_http_total{x=\"1\"} 1\n"));
    free(resp);
    metrics_http_stop();

    assert_int_equal(metrics_http_start("not-an-ip", 0), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_and_gauge),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_concurrent_updates_are_exact),
        cmocka_unit_test(test_http_endpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
