/* test_audit_slow.c -- a slow audit server, not a dead one: it answers
 * every call after 250 ms. The real activation-server binary talks to it
 * over mutual TLS; the audit server is a stand-in in this process, built on
 * the same rpc runtime, that sleeps before each answer (Verify: genuine).
 *
 * What must hold while online-audit groups keep the audit server busy:
 *   - activations of groups that do not audit online are not stalled: each
 *     is answered within a 300 ms deadline (they take a few milliseconds;
 *     before the online-audit pool, a gRPC worker waiting on Verify held
 *     every call queued behind it, and these waited 250-750 ms);
 *   - online-audit calls respect --audit-verify-timeout-ms: genuine within
 *     the timeout when the server answers in time, UNAVAILABLE (the group
 *     fails closed) when it does not, never a longer wait;
 *   - SIGTERM while online audits are in flight drains: every call is
 *     answered, the server exits 0.
 * The deadlines are correctness bounds with a wide margin, not speed
 * measurements; the figures are printed. */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation/v1/activation.pb-c.h"
#include "audit/v1/audit.pb-c.h"
#include "audit_env.h"
#include "clock.h"
#include "log.h"
#include "rpc_client.h"
#include "rpc_methods.h"
#include "rpc_server.h"

enum {
    G_OFF = 7001,  /* every activation audited offline (outbox; no call to the audit server) */
    G_ON = 7002,   /* every activation audited online; audit unanswered: fail closed */
    SLOW_MS = 250, /* the audit server's answer time */
    OFFLINE_DEADLINE_MS = 300,
    FLOODERS = 6, /* online activations in flight at once: three times the workers */
};

static audit_env E;
static rpc_server *slow;
static char signing_key[400];

/* ------------------------------------------------- the slow audit server */

/* Each call is answered SLOW_MS after it arrived, by a thread of its own
 * (the handler defers it), so the stand-in answers many calls at once like
 * a real, merely slow, server -- not one after the other. */
typedef struct slow_answer {
    rpc_deferred *call;
    int method;       /* 0 Verify, 1 Submit, 2 ListRevocations */
    uint32_t records; /* Submit: how many */
} slow_answer;

static void *slow_thread(void *arg) {
    slow_answer *a = arg;
    env_sleep_ms(SLOW_MS);
    rpc_reply reply = {.status = GRPC_STATUS_OK};
    if (a->method == 0) {
        Audit__V1__VerifyResponse r = AUDIT__V1__VERIFY_RESPONSE__INIT;
        r.verdict = AUDIT__V1__VERDICT__VERDICT_GENUINE;
        r.reason = "genuine, slowly";
        rpc_reply_message(&reply, &r.base);
    } else if (a->method == 1) {
        Audit__V1__SubmitResponse r = AUDIT__V1__SUBMIT_RESPONSE__INIT;
        r.accepted = a->records;
        rpc_reply_message(&reply, &r.base);
    } else {
        Audit__V1__ListRevocationsResponse r = AUDIT__V1__LIST_REVOCATIONS_RESPONSE__INIT;
        rpc_reply_message(&reply, &r.base);
    }
    rpc_deferred_reply(a->call, &reply);
    free(reply.body);
    free(a);
    return NULL;
}

static void answer_later(rpc_ctx *ctx, int method, uint32_t records, rpc_reply *reply) {
    slow_answer *a = malloc(sizeof *a);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (a && (a->call = rpc_ctx_defer(ctx))) {
        a->method = method;
        a->records = records;
        if (pthread_create(&t, &attr, slow_thread, a) != 0) abort(); /* a deferred call must be answered */
    } else {
        free(a);
        rpc_reply_error(reply, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    }
    pthread_attr_destroy(&attr);
}

static void slow_verify(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    answer_later(ctx, 0, 0, reply);
}

static void slow_submit(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    Audit__V1__SubmitRequest *in = audit__v1__submit_request__unpack(NULL, len, req);
    uint32_t n = in ? (uint32_t)in->n_records : 0;
    if (in) audit__v1__submit_request__free_unpacked(in, NULL);
    answer_later(ctx, 1, n, reply);
}

static void slow_list(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    answer_later(ctx, 2, 0, reply);
}

static char *pem_of(const char *dir, const char *name) {
    char path[400], err[200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *pem = rpc_read_pem(path, err, sizeof err);
    if (!pem) fprintf(stderr, "%s: %s\n", path, err);
    return pem;
}

static int start_slow_server(void) {
    static char *cert, *key, *ca;
    cert = pem_of(E.certs, "audit-server.pem");
    key = pem_of(E.certs, "audit-server.key");
    ca = pem_of(E.certs, "ca.pem");
    if (!cert || !key || !ca) return -1;
    static const rpc_method methods[] = {
        {PA_RPC_AUDIT_VERIFY, slow_verify, 16 * 1024, NULL},
        {PA_RPC_AUDIT_SUBMIT, slow_submit, 4 * 1024 * 1024, NULL},
        {PA_RPC_AUDIT_LIST_REVOCATIONS, slow_list, 1024, NULL},
    };
    static rpc_tls_config tls;
    tls = (rpc_tls_config){.cert_pem = cert, .key_pem = key, .client_ca_pem = ca};
    static char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", E.port);
    static const char *addrs[1];
    addrs[0] = listen;
    rpc_server_config cfg = {.listen = addrs, .n_listen = 1, .workers = 2, .tls = &tls};
    char err[256];
    slow = rpc_server_start(&cfg, methods, sizeof methods / sizeof *methods, err, sizeof err);
    if (!slow) fprintf(stderr, "slow audit server: %s\n", err);
    return slow ? 0 : -1;
}

/* ------------------------------------------------- the activation server */

typedef struct act_server {
    pid_t pid;
    int port, metrics_port;
    char target[64], log[400];
} act_server;

static act_server S = {.pid = -1};

static int start_act(const char *verify_timeout_ms) {
    char url[256], listen[64], metrics[64], ca[400], cert[400], key[400];
    S.port = fixture_free_port();
    do S.metrics_port = fixture_free_port();
    while (S.metrics_port == S.port);
    redis_fixture_url(&E.a, "activation", url, sizeof url);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", S.port);
    snprintf(metrics, sizeof metrics, "127.0.0.1:%d", S.metrics_port);
    snprintf(S.target, sizeof S.target, "127.0.0.1:%d", S.port);
    snprintf(S.log, sizeof S.log, "%s/act-%s.log", E.dir, verify_timeout_ms);
    snprintf(ca, sizeof ca, "%s/ca.pem", E.certs);
    snprintf(cert, sizeof cert, "%s/activation-client.pem", E.certs);
    snprintf(key, sizeof key, "%s/activation-client.key", E.certs);
    const char *opts[][2] = {
        {"--listen", listen},
        {"--redis-url", url},
        {"--kek", E.kek_a},
        {"--signing-key", signing_key},
        {"--metrics-listen", metrics},
        {"--workers", "2"},
        {"--audit-verify-threads", "2"},
        {"--audit-verify-timeout-ms", verify_timeout_ms},
        {"--rate-address-per-s", "1000000"},
        {"--rate-address-burst", "1000000"},
        {"--threat-address-requests", "1000000000"},
        {"--audit-target", E.target},
        {"--audit-ca", ca},
        {"--audit-cert", cert},
        {"--audit-key", key},
        {"--audit-flush-ms", "0"},
    };
    enum { N = sizeof opts / sizeof *opts };
    char *argv[2 * N + 2];
    size_t n = 0;
    argv[n++] = (char *)fixture_bin("activation-server/activation-server");
    for (size_t i = 0; i < N; i++) argv[n++] = (char *)opts[i][0], argv[n++] = (char *)opts[i][1];
    argv[n] = NULL;
    /* Installers talk to this server in plain text (the development flag,
     * through the environment the server inherits). */
    setenv("PA_ACTIVATION_INSECURE_PLAINTEXT", "1", 1);
    S.pid = fixture_spawn(argv, S.log, S.port, 15000);
    return S.pid > 0 ? 0 : -1;
}

static int stop_act(int sig) {
    if (S.pid < 0) return -1;
    int st = fixture_stop(S.pid, sig, 30000);
    S.pid = -1;
    return st;
}

static void tune_off(group_record *r) {
    r->policy.max_machines = 0;
    r->policy.audit_rate_ppm = 1000000;
    r->policy.audit = AUDIT_MODE_OFFLINE;
}
static void tune_on(group_record *r) {
    tune_off(r);
    r->policy.audit = AUDIT_MODE_ONLINE;
    r->policy.on_audit_down = AUDIT_UNREACHABLE_FAIL_CLOSED;
}

static int setup(void **state) {
    log_set_level(LOG_LEVEL_WARN);
    if (env_start(&E) != 0 || env_create_group_with(&E, G_OFF, tune_off) != 0 ||
        env_create_group_with(&E, G_ON, tune_on) != 0)
        goto fail;
    snprintf(signing_key, sizeof signing_key, "%s/license-signing.pem", E.dir);
    char *argv[] = {"/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out", signing_key, NULL};
    if (fixture_run(argv, NULL, NULL) != 0 || start_slow_server() != 0) goto fail;
    return 0;
fail:
    env_stop(&E);
    return -1;
}

static int teardown(void **state) {
    if (S.pid > 0) stop_act(SIGKILL);
    if (slow) rpc_server_shutdown(slow, 1000);
    env_stop(&E);
    return 0;
}

/* ------------------------------------------------------------- calls */

/* A genuine key (made on the main thread: the keystore connections are
 * not shared with the flooders). */
static void key_of(uint32_t group, uint32_t serial, char key[PK_TEXT_LEN + 1]) {
    assert_int_equal(env_make_key(&E, group, serial, true, NULL, key), 0);
}

/* One Activate of `key` for machine m within deadline_ms; *ms gets how
 * long the answer took. */
static grpc_status_code activate(rpc_channel *ch, const char *key, unsigned m, int deadline_ms, double *ms,
                                 char msg[256]) {
    uint8_t id[32], buf[512];
    memset(id, 0x5a, sizeof id);
    memcpy(id, &m, sizeof m);
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = (char *)key;
    rq.machine_id = (ProtobufCBinaryData){.len = sizeof id, .data = id};
    rq.hostname = "slow-test";
    size_t len = activation__v1__activate_request__pack(&rq, buf);
    rpc_result res;
    uint64_t t0 = pa_mono_ns();
    grpc_status_code st = rpc_call(ch, rpc_channel_method(ch, PA_RPC_ACTIVATE), buf, len, deadline_ms, &res);
    *ms = (double)(pa_mono_ns() - t0) / 1e6;
    if (msg) snprintf(msg, 256, "%s", res.message);
    rpc_result_clear(&res);
    return st;
}

/* Threads keeping online-audit activations in flight. */
typedef struct flood {
    pthread_t th[FLOODERS];
    _Atomic bool stop;
    _Atomic int ok, unavailable, other, calls;
    _Atomic long max_ms; /* slowest answer */
    char other_msg[256];
} flood;

typedef struct flooder {
    flood *f;
    char key[PK_TEXT_LEN + 1];
} flooder;

static void *flood_main(void *arg) {
    flooder *me = arg;
    flood *f = me->f;
    rpc_channel *ch = rpc_channel_new(S.target, NULL);
    for (unsigned m = 0; ch && !atomic_load(&f->stop); m++) {
        double ms;
        char msg[256];
        grpc_status_code st = activate(ch, me->key, m, 5000, &ms, msg);
        atomic_fetch_add(&f->calls, 1);
        if (st == GRPC_STATUS_OK) atomic_fetch_add(&f->ok, 1);
        else if (st == GRPC_STATUS_UNAVAILABLE) atomic_fetch_add(&f->unavailable, 1);
        else if (atomic_fetch_add(&f->other, 1) == 0) snprintf(f->other_msg, sizeof f->other_msg, "%d %.200s", st, msg);
        long l = (long)ms, cur = atomic_load(&f->max_ms);
        while (l > cur && !atomic_compare_exchange_weak(&f->max_ms, &cur, l)) {
        }
        if (st != GRPC_STATUS_OK && st != GRPC_STATUS_UNAVAILABLE) env_sleep_ms(5);
        if (st == GRPC_STATUS_UNAVAILABLE && ms < 5) env_sleep_ms(5); /* the server is gone: do not spin */
    }
    rpc_channel_free(ch);
    rpc_client_thread_done();
    return NULL;
}

static flooder FL[FLOODERS];

static void flood_start(flood *f) {
    memset(f, 0, sizeof *f);
    for (int i = 0; i < FLOODERS; i++) {
        FL[i].f = f;
        key_of(G_ON, 100 + (uint32_t)i, FL[i].key);
        assert_int_equal(pthread_create(&f->th[i], NULL, flood_main, &FL[i]), 0);
    }
    env_sleep_ms(400); /* every worker would be waiting on Verify by now */
}

static void flood_stop(flood *f) {
    atomic_store(&f->stop, true);
    for (int i = 0; i < FLOODERS; i++) pthread_join(f->th[i], NULL);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* n offline-group activations one after the other, each within the
 * deadline; returns how many were answered OK, latencies into ms[]. */
static int offline_round(rpc_channel *ch, uint32_t serial, int n, double *ms) {
    int ok = 0;
    char key[PK_TEXT_LEN + 1];
    key_of(G_OFF, serial, key);
    for (int i = 0; i < n; i++) {
        char msg[256];
        grpc_status_code st = activate(ch, key, (unsigned)i, OFFLINE_DEADLINE_MS, &ms[i], msg);
        if (st == GRPC_STATUS_OK) ok++;
        else print_message("  offline activation %d: status %d (%s) after %.0f ms\n", i, st, msg, ms[i]);
    }
    qsort(ms, (size_t)n, sizeof *ms, cmp_double);
    return ok;
}

static double metric_of(const char *series) {
    char *body = fixture_http_get("127.0.0.1", S.metrics_port, "/metrics");
    double v = fixture_metric(body, series, -1);
    free(body);
    return v;
}

/* ------------------------------------------------------------- tests */

static void test_offline_groups_not_stalled(void **state) {
    enum { N = 20 };
    assert_int_equal(start_act("1000"), 0);
    rpc_channel *ch = rpc_channel_new(S.target, NULL);
    double ms[N], one;
    char key[PK_TEXT_LEN + 1];
    key_of(G_ON, 1, key);
    assert_int_equal(activate(ch, key, 1, 5000, &one, NULL), GRPC_STATUS_OK); /* online works, slowly */
    print_message("  one online activation alone: %.0f ms\n", one);
    assert_true(one >= SLOW_MS);

    flood f;
    flood_start(&f);
    int ok = offline_round(ch, 1, N, ms);
    flood_stop(&f);
    print_message("  %d online activations in flight: offline activations p50 %.1f ms, max %.1f ms\n", FLOODERS,
                  ms[N / 2], ms[N - 1]);
    print_message("  online: %d calls, %d granted, %d unavailable, slowest %ld ms (timeout 1000 ms)\n",
                  atomic_load(&f.calls), atomic_load(&f.ok), atomic_load(&f.unavailable), atomic_load(&f.max_ms));
    assert_int_equal(ok, N);
    assert_int_equal(atomic_load(&f.other), 0);
    assert_true(atomic_load(&f.ok) >= FLOODERS);
    /* The online audit itself never takes longer than the timeout; the
     * rest of the call is the script and the signature. */
    assert_true(atomic_load(&f.max_ms) < 1000 + 500);
    assert_true(metric_of("pa_audit_online_total{result=\"genuine\"}") >= FLOODERS);
    rpc_channel_free(ch);
    assert_int_equal(stop_act(SIGTERM), 0);
}

static void test_online_calls_respect_timeout(void **state) {
    enum { N = 10 };
    assert_int_equal(start_act("100"), 0); /* the audit server needs 250 */
    rpc_channel *ch = rpc_channel_new(S.target, NULL);
    double ms[N], one;
    char msg[256], key[PK_TEXT_LEN + 1];
    key_of(G_ON, 2, key);
    assert_int_equal(activate(ch, key, 1, 5000, &one, msg), GRPC_STATUS_UNAVAILABLE);
    print_message("  online activation, audit server slower than the timeout: UNAVAILABLE after %.0f ms\n", one);
    assert_non_null(strstr(msg, "audit server"));

    flood f;
    flood_start(&f);
    int ok = offline_round(ch, 2, N, ms);
    flood_stop(&f);
    print_message("  online: %d calls, all refused in at most %ld ms (timeout 100 ms)\n", atomic_load(&f.calls),
                  atomic_load(&f.max_ms));
    assert_int_equal(ok, N);
    assert_int_equal(atomic_load(&f.ok), 0);
    assert_int_equal(atomic_load(&f.other), 0);
    assert_true(atomic_load(&f.unavailable) >= FLOODERS);
    assert_true(atomic_load(&f.max_ms) < 100 + 500);
    assert_true(metric_of("pa_audit_online_total{result=\"unavailable\"}") >= FLOODERS);
    assert_true(metric_of("pa_activations_refused_total{reason=\"audit_unavailable\"}") >= FLOODERS);
    rpc_channel_free(ch);
    assert_int_equal(stop_act(SIGTERM), 0);
}

/* SIGTERM while calls wait on pool threads: they are answered, the server
 * exits 0 (the drain waits for deferred calls). */
static void test_sigterm_with_online_audits_in_flight(void **state) {
    assert_int_equal(start_act("1000"), 0);
    flood f;
    flood_start(&f);
    assert_int_equal(stop_act(SIGTERM), 0);
    flood_stop(&f);
    print_message("  stopped with online audits in flight: %d granted, %d unavailable, %d other (%s)\n",
                  atomic_load(&f.ok), atomic_load(&f.unavailable), atomic_load(&f.other), f.other_msg);
    assert_true(atomic_load(&f.ok) >= 1);
    assert_true(atomic_load(&f.max_ms) < 5000); /* no call was left hanging until its deadline */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offline_groups_not_stalled),
        cmocka_unit_test(test_online_calls_respect_timeout),
        cmocka_unit_test(test_sigterm_with_online_audits_in_flight),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
