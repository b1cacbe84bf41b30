/* test_activation_limits.c -- what one client may cost the activation
 * server's transport (rpc_server_limits, the daemon frame's options), tried
 * against the real daemon the way an attacker would:
 *   - a gzip bomb (60 MB of zeros, ~60 KB on the wire, eight at once) is
 *     refused before it is inflated: the server's peak memory barely moves;
 *   - connections from one address beyond --max-connections-per-address are
 *     reset at once, and the cap counts again after connections close;
 *   - 2,000 connections that send only the HTTP/2 preface, from 200
 *     loopback addresses, do not keep a genuine client from an answer, and
 *     the server closes them after --max-connection-idle-ms;
 *   - connections that never finish setting up are closed after
 *     --handshake-timeout-ms.
 * Figures (memory, counts, latency) are printed; only generous bounds are
 * asserted. Loopback only: 127.0.0.0/8 gives every attacker address. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/compression.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "act_env.h"
#include "clock.h"
#include "grpc_status_name.h"

/* HANDSHAKE_MS leaves a genuine client room to finish its handshake on a
 * loaded machine under ASan while 2000 idle connections are open. */
enum { G = 4370, CAP = 20, IDLE_MS = 3000, HANDSHAKE_MS = 3000 };

static act_env env;

/* The HTTP/2 client preface: the magic, then an empty SETTINGS frame. */
static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
#define PREFACE_LEN (sizeof PREFACE - 1)
#define MAGIC_LEN 24

/* The server with the test's cap and handshake timeout, and `idle_ms` as
 * --max-connection-idle-ms (0: the default). */
static int start_server(int idle_ms) {
    char cap[16], idle[16], hs[16];
    snprintf(cap, sizeof cap, "%d", CAP);
    snprintf(idle, sizeof idle, "%d", idle_ms);
    snprintf(hs, sizeof hs, "%d", HANDSHAKE_MS);
    const char *flags[] = {"--max-connections-per-address",
                           cap,
                           "--handshake-timeout-ms",
                           hs,
                           idle_ms ? "--max-connection-idle-ms" : NULL,
                           idle,
                           NULL};
    return env_start_server(&env, flags);
}

static int setup(void **state) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
    if (env_start_stores(&env) != 0 || env_create_group(&env, G, NULL) != 0) return -1;
    return start_server(0);
}

static int teardown(void **state) {
    int st = env_stop_server(&env);
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

/* A field of /proc/PID/status in kB ("VmHWM", "VmRSS"). */
static long status_kb(pid_t pid, const char *field) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long kb = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') kb = atol(line + n + 1);
    fclose(f);
    assert_true(kb >= 0);
    return kb;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void genuine_activation(unsigned serial, unsigned machine) {
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G, serial, false, 0, key), 0);
    uint8_t m[32];
    env_machine(m, machine);
    rpc_result res;
    double t0 = pa_mono_s();
    grpc_status_code st = env_activate(&env, key, m, sizeof m, &res, NULL);
    printf("  genuine Activate: %s in %.3f s\n", st == GRPC_STATUS_OK ? "OK" : res.message, pa_mono_s() - t0);
    assert_int_equal(st, GRPC_STATUS_OK);
    assert_true(pa_mono_s() - t0 < 5.0);
    rpc_result_clear(&res);
}

/* ---- the gzip bomb ------------------------------------------------------------- */

#define BOMB_BYTES (60 * 1000 * 1000)
#define BOMBS 8

typedef struct bomb {
    const char *target;
    grpc_slice body; /* BOMB_BYTES of zeros, shared */
    grpc_status_code status;
    char details[160];
} bomb;

/* Waits until the channel's connection is up (HTTP/2 settings exchanged). */
static void wait_ready(grpc_channel *ch, grpc_completion_queue *cq) {
    gpr_timespec until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(10000, GPR_TIMESPAN));
    grpc_connectivity_state st;
    static int tag;
    while ((st = grpc_channel_check_connectivity_state(ch, 1)) != GRPC_CHANNEL_READY) {
        grpc_channel_watch_connectivity_state(ch, st, until, cq, &tag);
        grpc_event ev = grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (!ev.success) fail_msg("the bomb's channel did not connect");
    }
}

/* One Activate whose request the client compresses with gzip, on its own
 * connection, made before the (slow) compression starts. */
static void *throw_bomb(void *arg) {
    bomb *b = arg;
    grpc_arg a[2] = {{.type = GRPC_ARG_INTEGER, .key = GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM},
                     {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL}};
    a[0].value.integer = GRPC_COMPRESS_GZIP;
    a[1].value.integer = 1;
    grpc_channel_args args = {.num_args = 2, .args = a};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(b->target, creds, &args);
    grpc_channel_credentials_release(creds);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    wait_ready(ch, cq);
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(30000, GPR_TIMESPAN));
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                               grpc_slice_from_static_string(PA_RPC_ACTIVATE), NULL, deadline, NULL);
    grpc_byte_buffer *req = grpc_raw_byte_buffer_create(&b->body, 1);
    grpc_byte_buffer *resp = NULL;
    grpc_metadata_array md, trailers;
    grpc_metadata_array_init(&md);
    grpc_metadata_array_init(&trailers);
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
    ops[5].data.recv_status_on_client.trailing_metadata = &trailers;
    ops[5].data.recv_status_on_client.status = &b->status;
    ops[5].data.recv_status_on_client.status_details = &details;
    static int tag;
    assert_int_equal(grpc_call_start_batch(call, ops, 6, &tag, NULL), GRPC_CALL_OK);
    grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    snprintf(b->details, sizeof b->details, "%.*s", (int)GRPC_SLICE_LENGTH(details),
             (const char *)GRPC_SLICE_START_PTR(details));
    grpc_slice_unref(details);
    if (resp) grpc_byte_buffer_destroy(resp);
    grpc_byte_buffer_destroy(req);
    grpc_metadata_array_destroy(&md);
    grpc_metadata_array_destroy(&trailers);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(ch);
    return NULL;
}

static void test_gzip_bomb_is_refused_before_inflating(void **state) {
    genuine_activation(1, 1); /* the server's steady state first */
    long hwm0 = status_kb(env.server, "VmHWM"), rss0 = status_kb(env.server, "VmRSS");
    /* calloc'd zeros stay unmapped until written: the client costs little. */
    char *zeros = calloc(1, BOMB_BYTES);
    assert_non_null(zeros);
    bomb b[BOMBS];
    pthread_t th[BOMBS];
    for (int i = 0; i < BOMBS; i++) {
        b[i] = (bomb){.target = env.target, .body = grpc_slice_from_static_buffer(zeros, BOMB_BYTES)};
        assert_int_equal(pthread_create(&th[i], NULL, throw_bomb, &b[i]), 0);
    }
    for (int i = 0; i < BOMBS; i++) pthread_join(th[i], NULL);
    long hwm1 = status_kb(env.server, "VmHWM"), rss1 = status_kb(env.server, "VmRSS");
    printf("  %d gzip bombs of %d MB: server VmHWM %ld -> %ld kB (+%ld), VmRSS %ld -> %ld kB; first answer: %s (%s)\n",
           BOMBS, BOMB_BYTES / 1000000, hwm0, hwm1, hwm1 - hwm0, rss0, rss1, pa_grpc_status_name(b[0].status),
           b[0].details);
    for (int i = 0; i < BOMBS; i++) {
        if (b[i].status != GRPC_STATUS_UNIMPLEMENTED)
            printf("  bomb %d: %s (%s)\n", i, pa_grpc_status_name(b[i].status), b[i].details);
        assert_int_equal(b[i].status, GRPC_STATUS_UNIMPLEMENTED);
        assert_non_null(strstr(b[i].details, "gzip"));
    }
    assert_true(hwm1 - hwm0 < 8 * 1024); /* unrefused: +60 MB per bomb inflating at once */
    free(zeros);
    genuine_activation(2, 2);
}

/* ---- raw connections ----------------------------------------------------------- */

/* A TCP connection from `src` (a loopback address) to the server that has
 * sent `len` bytes of `data`. */
static int raw_connect(const char *src, const void *data, size_t len) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &a.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    a.sin_port = htons((uint16_t)env.port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) fail_msg("connect from %s: %s", src, strerror(errno));
    /* A refused connection may be reset before this: still_open tells. */
    if (len) (void)send(fd, data, len, MSG_NOSIGNAL);
    return fd;
}

/* Reads what the server sent; false once it closed (EOF or reset). */
static bool still_open(int fd) {
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) continue;
        if (n == 0) return false;
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
}

static int count_open(int *fds, int n) {
    int open = 0;
    for (int i = 0; i < n; i++) {
        if (fds[i] < 0) continue;
        if (still_open(fds[i])) {
            open++;
        } else {
            close(fds[i]);
            fds[i] = -1;
        }
    }
    return open;
}

static void close_all(int *fds, int n) {
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) close(fds[i]);
}

static double refused_metric(void) {
    return env_metric(&env, "pa_grpc_connections_refused_total{reason=\"per_address\"}");
}

static void test_connections_over_the_cap_are_reset(void **state) {
    enum { N = 200 };
    int fds[N];
    double before = refused_metric();
    long rss0 = status_kb(env.server, "VmRSS");
    for (int i = 0; i < N; i++) fds[i] = raw_connect("127.0.0.2", PREFACE, PREFACE_LEN);
    /* Wait until the server has accepted (and refused) them all. */
    for (int k = 0; k < 500 && refused_metric() - before < N - CAP; k++) sleep_ms(10);
    int open = count_open(fds, N);
    printf("  %d connections from 127.0.0.2 (cap %d): %d open, %.0f reset; server VmRSS %ld -> %ld kB\n", N, CAP, open,
           refused_metric() - before, rss0, status_kb(env.server, "VmRSS"));
    assert_int_equal(open, CAP);
    assert_int_equal((int)(refused_metric() - before), N - CAP);
    /* Another address is not affected. */
    genuine_activation(3, 3);

    /* The cap counts closed connections out: after closing ten, ten more fit. */
    for (int i = 0, closed = 0; i < N && closed < 10; i++) {
        if (fds[i] < 0) continue;
        close(fds[i]);
        fds[i] = -1;
        closed++;
    }
    sleep_ms(300); /* the server sees the EOFs and closes its side */
    before = refused_metric();
    int more[20];
    for (int i = 0; i < 20; i++) more[i] = raw_connect("127.0.0.2", PREFACE, PREFACE_LEN);
    for (int k = 0; k < 500 && refused_metric() - before < 10; k++) sleep_ms(10);
    int again = count_open(more, 20);
    printf("  after closing 10: %d of 20 new connections open\n", again);
    assert_int_equal(again, 10);
    close_all(more, 20);
    close_all(fds, N);
}

/* A generous bound on what one idle connection costs the server: about 21 kB
 * measured in a plain build, about 75 kB under ASan's redzones and quarantine. */
#if defined(PA_SANITIZED_BUILD)
enum { KB_PER_IDLE_CONNECTION = 160 };
#else
enum { KB_PER_IDLE_CONNECTION = 48 };
#endif

static void test_idle_connections_do_not_starve_a_client(void **state) {
    enum { N = 2000, PER_ADDRESS = 10 };
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur < N + 200) {
        printf("  skipped: RLIMIT_NOFILE %llu is below %d\n", (unsigned long long)r.rlim_cur, N + 200);
        skip();
    }
    /* This test alone closes idle connections quickly (a gzip bomb's client,
     * compressing, would otherwise lose its connection as idle). */
    assert_int_equal(env_stop_server(&env), 0);
    assert_int_equal(start_server(IDLE_MS), 0);
    static int fds[N];
    long rss0 = status_kb(env.server, "VmRSS");
    double t0 = pa_mono_s();
    for (int i = 0; i < N; i++) {
        char src[32];
        int a = i / PER_ADDRESS;
        snprintf(src, sizeof src, "127.0.%d.%d", 10 + a / 200, 1 + a % 200);
        fds[i] = raw_connect(src, PREFACE, PREFACE_LEN);
    }
    sleep_ms(500);
    int open = count_open(fds, N);
    long rss1 = status_kb(env.server, "VmRSS");
    printf(
        "  %d preface-only connections from %d addresses in %.2f s: %d open; server VmRSS %ld -> %ld kB "
        "(%.1f kB each)\n",
        N, N / PER_ADDRESS, pa_mono_s() - t0, open, rss0, rss1, (double)(rss1 - rss0) / N);
    assert_true(open > N / 2);
    genuine_activation(4, 4);
    assert_true(rss1 - rss0 < N * KB_PER_IDLE_CONNECTION);

    /* Nothing happens on them: the idle limit closes every one. */
    double t1 = pa_mono_s();
    while ((open = count_open(fds, N)) > 0 && pa_mono_s() - t1 < IDLE_MS / 1000.0 + 10) sleep_ms(100);
    printf("  all closed by the server %.1f s later (--max-connection-idle-ms %d); server VmRSS %ld kB\n",
           pa_mono_s() - t1, IDLE_MS, status_kb(env.server, "VmRSS"));
    assert_int_equal(open, 0);
    close_all(fds, N);
}

static void test_unfinished_handshakes_are_closed(void **state) {
    enum { N = 100 };
    int fds[N];
    /* Half send nothing at all, half only the magic without SETTINGS. */
    for (int i = 0; i < N; i++) fds[i] = raw_connect("127.0.0.3", PREFACE, i % 2 ? MAGIC_LEN : 0);
    double t0 = pa_mono_s();
    int open = N;
    while ((open = count_open(fds, N)) > 0 && pa_mono_s() - t0 < HANDSHAKE_MS / 1000.0 + 10) sleep_ms(100);
    printf("  %d unfinished handshakes: all closed after %.1f s (--handshake-timeout-ms %d)\n", N, pa_mono_s() - t0,
           HANDSHAKE_MS);
    assert_int_equal(open, 0);
    close_all(fds, N);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gzip_bomb_is_refused_before_inflating),
        cmocka_unit_test(test_connections_over_the_cap_are_reset),
        cmocka_unit_test(test_idle_connections_do_not_starve_a_client),
        cmocka_unit_test(test_unfinished_handshakes_are_closed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
