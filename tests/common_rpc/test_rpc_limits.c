/* test_rpc_limits.c -- the runtime's transport limits in one process: the
 * per-address connection cap (conn_limit.c) on IPv4, IPv6 and a dual-stack
 * listener, accept4 left as libc's for sockets nobody watches, compressed
 * requests refused, bad limits refused at start. The daemon-level figures
 * (memory under gzip bombs and connection floods) are in
 * tests/activation/test_activation_limits.c. */
#include "conn_limit.h"
#include "echo_service.h"
#include "metrics.h"
#include "rpc_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/compression.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CAP = 3, TRIES = 6 };

static rpc_server *start(const char *const *listen, size_t n, int cap) {
    rpc_server_config cfg = {.listen = listen, .n_listen = n, .workers = 1};
    cfg.limits.max_connections_per_address = cap;
    char err[256];
    rpc_server *s = rpc_server_start(&cfg, echo_methods, echo_n_methods, err, sizeof err);
    if (!s) fail_msg("rpc_server_start: %s", err);
    return s;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int raw_connect(int family, const char *addr, int port) {
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, addr, &a->sin_addr);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, addr, &a->sin6_addr);
        len = sizeof *a;
    }
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) fail_msg("connect %s: %s", addr, strerror(errno));
    return fd;
}

/* Open means: no EOF and no reset from the server. */
static int count_open(const int *fds, int n) {
    int open = 0;
    for (int i = 0; i < n; i++) {
        char buf[512];
        ssize_t r;
        while ((r = recv(fds[i], buf, sizeof buf, MSG_DONTWAIT)) > 0) {
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) open++;
    }
    return open;
}

static double refused(void) {
    char *text = metrics_render();
    const char *p = strstr(text, "pa_grpc_connections_refused_total{reason=\"per_address\"} ");
    double v = p ? atof(p + strlen("pa_grpc_connections_refused_total{reason=\"per_address\"} ")) : 0;
    free(text);
    return v;
}

/* TRIES connections to addr:port from the same address; CAP stay open. */
static void expect_capped(int family, const char *addr, int port) {
    double before = refused();
    int fds[TRIES];
    for (int i = 0; i < TRIES; i++) fds[i] = raw_connect(family, addr, port);
    for (int k = 0; k < 300 && refused() - before < TRIES - CAP; k++) sleep_ms(10);
    int open = count_open(fds, TRIES);
    printf("  %s port %d: %d of %d open, %.0f reset\n", addr, port, open, TRIES, refused() - before);
    assert_int_equal(open, CAP);
    assert_int_equal((int)(refused() - before), TRIES - CAP);
    for (int i = 0; i < TRIES; i++) close(fds[i]);
}

static void test_cap_per_address_ipv4_and_ipv6(void **state) {
    const char *listen[] = {"127.0.0.1:0", "[::1]:0"};
    rpc_server *s = start(listen, 2, CAP);
    expect_capped(AF_INET, "127.0.0.1", rpc_server_port(s, 0));
    sleep_ms(200); /* the server sees those close */
    expect_capped(AF_INET6, "::1", rpc_server_port(s, 1));
    /* Calls still work on a fresh connection from a counted-out address. */
    sleep_ms(200);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", rpc_server_port(s, 0));
    rpc_channel *ch = rpc_channel_new(target, NULL);
    rpc_result r;
    assert_int_equal(rpc_call(ch, rpc_channel_method(ch, "/test.v1.Echo/Echo"), (const uint8_t *)"hi", 2, 5000, &r),
                     GRPC_STATUS_OK);
    rpc_result_clear(&r);
    rpc_channel_free(ch);
    assert_int_equal(rpc_server_shutdown(s, 1000), 0);
}

/* On a dual-stack listener an IPv4 client arrives as ::ffff:a.b.c.d and
 * counts under the same address as on an IPv4 listener. */
static void test_cap_on_a_dual_stack_listener(void **state) {
    const char *listen[] = {"[::]:0"};
    rpc_server *s = start(listen, 1, CAP);
    expect_capped(AF_INET, "127.0.0.1", rpc_server_port(s, 0));
    assert_int_equal(rpc_server_shutdown(s, 1000), 0);
}

/* accept4 on a socket no server watches is libc's: the address is filled
 * in and nothing is refused. */
static void test_accept4_elsewhere_is_untouched(void **state) {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 16), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    int port = ntohs(a.sin_port), c[TRIES];
    for (int i = 0; i < TRIES; i++) c[i] = raw_connect(AF_INET, "127.0.0.1", port);
    for (int i = 0; i < TRIES; i++) {
        struct sockaddr_in from;
        socklen_t flen = sizeof from;
        int fd = accept4(l, (struct sockaddr *)&from, &flen, SOCK_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(flen, sizeof from);
        assert_int_equal(from.sin_family, AF_INET);
        assert_int_equal(ntohl(from.sin_addr.s_addr), INADDR_LOOPBACK);
        close(fd);
        close(c[i]);
    }
    /* A NULL address is allowed, as with libc. */
    int c2 = raw_connect(AF_INET, "127.0.0.1", port);
    int fd = accept4(l, NULL, NULL, 0);
    assert_true(fd >= 0);
    close(fd);
    close(c2);
    close(l);
    /* One port, one limiter. */
    conn_limit *x = conn_limit_new(2, NULL, NULL), *y = conn_limit_new(2, NULL, NULL);
    assert_int_equal(conn_limit_watch(x, 4242), 0);
    assert_int_equal(conn_limit_watch(x, 4242), 0);
    assert_int_equal(conn_limit_watch(y, 4242), -1);
    assert_int_equal(conn_limit_open(x), 0);
    assert_null(conn_limit_new(0, NULL, NULL));
    conn_limit_free(x);
    assert_int_equal(conn_limit_watch(y, 4242), 0); /* free gave the port up */
    conn_limit_free(y);
}

/* A gzip-compressed request: UNIMPLEMENTED, the handler never runs. */
static void test_compressed_request_refused(void **state) {
    const char *listen[] = {"127.0.0.1:0"};
    rpc_server *s = start(listen, 1, 0);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", rpc_server_port(s, 0));
    grpc_arg a = {.type = GRPC_ARG_INTEGER, .key = GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM};
    a.value.integer = GRPC_COMPRESS_GZIP;
    grpc_channel_args args = {.num_args = 1, .args = &a};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, creds, &args);
    grpc_channel_credentials_release(creds);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(5000, GPR_TIMESPAN));
    grpc_call *call =
        grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                 grpc_slice_from_static_string("/test.v1.Echo/Echo"), NULL, deadline, NULL);
    static char body[1000]; /* zeros: gzip makes them small */
    grpc_slice sl = grpc_slice_from_static_buffer(body, sizeof body);
    grpc_byte_buffer *req = grpc_raw_byte_buffer_create(&sl, 1), *resp = NULL;
    grpc_metadata_array md, tr;
    grpc_metadata_array_init(&md);
    grpc_metadata_array_init(&tr);
    grpc_status_code status;
    grpc_slice details;
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &resp;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &tr;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    static int tag;
    assert_int_equal(grpc_call_start_batch(call, ops, 6, &tag, NULL), GRPC_CALL_OK);
    grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    printf("  gzip request: status %d (%.*s)\n", (int)status, (int)GRPC_SLICE_LENGTH(details),
           (const char *)GRPC_SLICE_START_PTR(details));
    assert_int_equal(status, GRPC_STATUS_UNIMPLEMENTED);
    assert_null(resp);
    grpc_slice_unref(details);
    grpc_byte_buffer_destroy(req);
    grpc_metadata_array_destroy(&md);
    grpc_metadata_array_destroy(&tr);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(ch);
    assert_int_equal(rpc_server_shutdown(s, 1000), 0);
}

static void test_negative_limits_refused(void **state) {
    const char *listen[] = {"127.0.0.1:0"};
    rpc_server_config cfg = {.listen = listen, .n_listen = 1, .workers = 1};
    cfg.limits.handshake_timeout_ms = -1;
    char err[256];
    assert_null(rpc_server_start(&cfg, echo_methods, echo_n_methods, err, sizeof err));
    assert_non_null(strstr(err, "must not be negative"));
}

int main(void) {
    grpc_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_per_address_ipv4_and_ipv6),  cmocka_unit_test(test_cap_on_a_dual_stack_listener),
        cmocka_unit_test(test_accept4_elsewhere_is_untouched), cmocka_unit_test(test_compressed_request_refused),
        cmocka_unit_test(test_negative_limits_refused),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rpc_client_thread_done();
    grpc_shutdown();
    return rc;
}
