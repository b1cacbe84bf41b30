/* test_activation_deactivate_batch.c -- Deactivate calls answered in
 * batches (docs/batching.md), activation.deactivate_batch.
 *
 * 32 concurrent Deactivates against a server with one worker, so the calls
 * meet on its queue and go through deactivate_batch.c: places freed, a
 * proof by the wrong place key (the script's WRONG_KEY), stale proofs
 * (refused before Redis; their reject call joins the pipeline), a license
 * already deactivated (NOT_FOUND), a key whose deactivations for the period
 * are used up (DEACTIVATION_LIMIT) and license ids that do not parse. Every
 * call must get the answer it gets alone; the same burst with --batch-max 1
 * must give the same answers, log lines and per-call metrics, and leave
 * the same records in Redis: exactly the freed places gone. A burst after
 * SCRIPT FLUSH (every pipelined call meets NOSCRIPT and runs again by
 * itself) still frees every place. */
#include "act_env.h"
#include "redis_keys.h"
#include "validate.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"

#define G_BATCHED 91 /* the burst with batching */
#define G_SINGLE 92  /* the same burst, batching off */
#define BURST 32

/* What call i of the burst is (by ranges of i). */
typedef enum kind { K_FREED, K_WRONG_KEY, K_STALE, K_GONE, K_CHURN, K_GARBLED } kind;
static const struct {
    kind k;
    int upto; /* calls below this index (and at or above the previous range's) */
    grpc_status_code want;
} plan[] = {
    {K_FREED, 16, GRPC_STATUS_OK},
    {K_WRONG_KEY, 20, GRPC_STATUS_UNAUTHENTICATED},
    {K_STALE, 22, GRPC_STATUS_UNAUTHENTICATED},
    {K_GONE, 26, GRPC_STATUS_NOT_FOUND},
    {K_CHURN, 28, GRPC_STATUS_RESOURCE_EXHAUSTED},
    {K_GARBLED, BURST, GRPC_STATUS_INVALID_ARGUMENT},
};
enum { N_FREED = 16, N_REFUSED_LOGGED = 4 + 2 + 4 + 2, N_DONE_BEFORE = 4 + 2 };

static act_env env;
static redisContext *admin; /* SCRIPT FLUSH on Redis A (the measuring user) */

/* One deactivation a key may make per period: a second one is refused. */
static void tune(group_record *r) {
    r->policy.max_machines = 1;
    r->policy.max_deactivations = 1;
    r->policy.churn_period_seconds = 3600;
}

/* What call i of the burst sends and expects. */
typedef struct deact_case {
    kind k;
    char license_id[LICENSE_ID_LEN + 1];
    uint32_t group, serial;
    unsigned machine, key; /* the machine and the place key it signs with */
    int64_t timestamp;     /* the proof's; 0: now */
    grpc_status_code want, got;
    char reason[64]; /* the error-reason trailer */
    uint32_t count;  /* OK: activation_count */
    pthread_barrier_t *start;
} deact_case;

static kind kind_of(int i, grpc_status_code *want) {
    size_t r = 0;
    while (i >= plan[r].upto) r++;
    *want = plan[r].want;
    return plan[r].k;
}

static grpc_status_code wanted(kind k) {
    size_t r = 0;
    while (plan[r].k != k) r++;
    return plan[r].want;
}

/* Activates (group, serial) on machine m bound to place key n. */
static void activate_with(uint32_t group, uint32_t serial, unsigned m, unsigned n,
                          char license_id[LICENSE_ID_LEN + 1]) {
    assert_int_equal(env_activate_license(&env, group, serial, m, n, license_id), 0);
}

/* Sends call c (after the barrier when c->start is set). */
static void *run_deactivate(void *p) {
    deact_case *c = p;
    uint8_t m[32], buf[512];
    env_machine(m, c->machine);
    EVP_PKEY *k = c->key ? env_place_key(c->key) : NULL; /* key 0: no proof */
    size_t len =
        k || !c->key ? env_license_request(c->license_id, m, k, PLACE_OP_DEACTIVATE, c->timestamp, buf, sizeof buf) : 0;
    EVP_PKEY_free(k);
    if (c->start) pthread_barrier_wait(c->start);
    if (len == 0) return NULL;
    rpc_result res;
    c->got = env_call(&env, PA_RPC_DEACTIVATE, buf, len, 10000, &res);
    snprintf(c->reason, sizeof c->reason, "%s", res.reason);
    if (c->got == GRPC_STATUS_OK) {
        Activation__V1__DeactivateResponse *r =
            activation__v1__deactivate_response__unpack(NULL, res.body_len, res.body);
        assert_non_null(r);
        c->count = r->activation_count;
        activation__v1__deactivate_response__free_unpacked(r, NULL);
    }
    rpc_result_clear(&res);
    return NULL;
}

/* Call i's place (serial i + 1), made ready for kind k: activated (a gone
 * one also deactivated; a churned one deactivated and activated again). */
static void prepare(deact_case *c, uint32_t group, int i, kind k) {
    memset(c, 0, sizeof *c);
    c->k = k;
    c->want = wanted(k);
    c->group = group;
    c->serial = 1 + (uint32_t)i;
    c->machine = 100 + (unsigned)i;
    c->key = 500 + (unsigned)i;
    c->got = GRPC_STATUS_UNKNOWN;
    if (c->k == K_GARBLED) {
        snprintf(c->license_id, sizeof c->license_id, "not-a-license-id-%d", i); /* refused before the proof */
        c->key = 0;
        return;
    }
    activate_with(group, c->serial, c->machine, c->key, c->license_id);
    if (c->k == K_GONE || c->k == K_CHURN) {
        deact_case once = *c;
        run_deactivate(&once);
        assert_int_equal(once.got, GRPC_STATUS_OK);
    }
    if (c->k == K_CHURN) activate_with(group, c->serial, c->machine, c->key, c->license_id);
    if (c->k == K_WRONG_KEY) c->key = 900 + (unsigned)i;
    if (c->k == K_STALE) c->timestamp = (int64_t)time(NULL) - 400;
}

/* Sends n calls at once (a barrier), each on its own thread. */
static void send_all(deact_case *c, int n) {
    pthread_t t[BURST];
    pthread_barrier_t start;
    assert_true(n <= BURST);
    assert_int_equal(pthread_barrier_init(&start, NULL, (unsigned)n), 0);
    for (int i = 0; i < n; i++) c[i].start = &start;
    for (int i = 0; i < n; i++) assert_int_equal(pthread_create(&t[i], NULL, run_deactivate, &c[i]), 0);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
}

static deact_case runs[2][BURST]; /* 0: batched, 1: --batch-max 1 */

static void burst(int run, uint32_t group) {
    deact_case *c = runs[run];
    grpc_status_code want;
    for (int i = 0; i < BURST; i++) prepare(&c[i], group, i, kind_of(i, &want));
    send_all(c, BURST);
    for (int i = 0; i < BURST; i++) {
        if (c[i].got != c[i].want)
            fprintf(stderr, "deactivate %d (serial %u): %d %s, not %d\n", i, c[i].serial, c[i].got, c[i].reason,
                    c[i].want);
        assert_int_equal(c[i].got, c[i].want);
        if (c[i].k == K_FREED) assert_int_equal(c[i].count, 0); /* its key's one place is gone */
        if (c[i].k == K_WRONG_KEY) assert_string_equal(c[i].reason, "PROOF_WRONG_KEY");
        if (c[i].k == K_STALE) assert_string_equal(c[i].reason, "PROOF_STALE");
        if (c[i].k == K_CHURN) assert_string_equal(c[i].reason, "DEACTIVATION_LIMIT");
    }
}

static const char *const rates[] = {"--workers", "1", ENV_UNLIMITED_RATES, NULL};

static int setup(void **state) {
    (void)state;
    if (env_start_stores(&env) != 0 || !(admin = env_measuring_connection(&env))) return -1;
    if (env_create_group(&env, G_BATCHED, tune) != 0 || env_create_group(&env, G_SINGLE, tune) != 0) return -1;
    return env_start_server(&env, rates);
}

static int teardown(void **state) {
    (void)state;
    int st = env.server >= 0 ? env_stop_server(&env) : 0;
    if (admin) redisFree(admin);
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

static double batch_metric(const char *part) {
    char series[160];
    snprintf(series, sizeof series, "pa_batch_calls_%s{method=\"" PA_RPC_DEACTIVATE_LABEL "\"}", part);
    return env_metric(&env, series);
}

static double calls_with(const char *code) {
    char series[200];
    snprintf(series, sizeof series, "pa_grpc_calls_total{method=\"" PA_RPC_DEACTIVATE_LABEL "\",code=\"%s\"}", code);
    return env_metric(&env, series);
}

/* Per-call metrics of the server since it started: every Deactivate of
 * the preparation (one per gone or churned place) and of the burst. */
static void check_call_metrics(void) {
    assert_true(calls_with("OK") == N_FREED + N_DONE_BEFORE);
    assert_true(calls_with("UNAUTHENTICATED") == 4 + 2);
    assert_true(calls_with("NOT_FOUND") == 4);
    assert_true(calls_with("RESOURCE_EXHAUSTED") == 2);
    assert_true(calls_with("INVALID_ARGUMENT") == BURST - 28);
}

static void test_deactivates_in_batches(void **state) {
    (void)state;
    burst(0, G_BATCHED);
    double batches = batch_metric("count"), calls = batch_metric("sum");
    fprintf(stderr, "batched deactivates: %.0f calls in %.0f batches\n", calls, batches);
    assert_true(calls == BURST + N_DONE_BEFORE); /* the preparation's ones too, each a batch of one */
    assert_true(batches < calls - N_DONE_BEFORE);
    check_call_metrics();
}

static void test_same_burst_batching_off(void **state) {
    (void)state;
    const char *args[sizeof rates / sizeof *rates + 2] = {"--batch-max", "1"};
    size_t n = 2;
    for (size_t i = 0; rates[i]; i++) args[n++] = rates[i];
    args[n] = NULL;
    assert_int_equal(env_restart_server(&env, args), 0);
    burst(1, G_SINGLE);
    assert_true(batch_metric("count") <= 0);
    check_call_metrics();
    for (int i = 0; i < BURST; i++) {
        assert_int_equal(runs[0][i].got, runs[1][i].got);
        assert_string_equal(runs[0][i].reason, runs[1][i].reason);
    }
}

/* The places record (group, serial) holds: its fields that are machine
 * digests (beside them are the use and churn counters). */
static size_t places_held(uint32_t group, uint32_t serial) {
    redisReply *r = redisCommand(env.ks_a, "HKEYS " PA_RKEY_RECORD_FMT, group, serial);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    size_t places = 0;
    for (size_t k = 0; k < r->elements; k++) places += r->element[k]->len == PLACE_FIELD_LEN;
    freeReplyObject(r);
    return places;
}

/* The places held after each run: exactly the freed ones (and the gone
 * ones, freed before the burst) are gone, the same in both runs. */
static void test_records_as_with_single_calls(void **state) {
    (void)state;
    for (int i = 0; i < BURST; i++) {
        const deact_case *c = &runs[0][i];
        bool held = c->k == K_WRONG_KEY || c->k == K_STALE || c->k == K_CHURN;
        assert_int_equal(places_held(G_BATCHED, c->serial), held ? 1 : 0);
        assert_int_equal(places_held(G_SINGLE, c->serial), held ? 1 : 0);
    }
}

/* Counts the log lines of `event` for group g. */
static int lines_of(const char *log, const char *event, uint32_t g) {
    char ev[64], grp[32];
    snprintf(ev, sizeof ev, "\"event\":\"%s\"", event);
    snprintf(grp, sizeof grp, "\"group\":%u,", g);
    int n = 0;
    for (const char *line = log; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *e = strstr(line, ev), *gr = strstr(line, grp);
        if (e && gr && e < line + len && gr < line + len) n++;
        line = end ? end + 1 : NULL;
    }
    return n;
}

/* One log line per call, the same in both runs. */
static void test_log_lines_per_call(void **state) {
    (void)state;
    char *log = env_read_log(&env);
    assert_non_null(log);
    for (uint32_t g = G_BATCHED; g <= G_SINGLE; g++) {
        assert_int_equal(lines_of(log, "deactivate.done", g), N_FREED + N_DONE_BEFORE);
        assert_int_equal(lines_of(log, "deactivate.refused", g), N_REFUSED_LOGGED);
    }
    free(log);
}

/* Redis forgot its scripts: each pipelined call meets NOSCRIPT and runs
 * again by itself (which loads the script); every place is still freed. */
static void test_noscript_in_a_batch(void **state) {
    (void)state;
    enum { N = 12 };
    assert_int_equal(env_restart_server(&env, rates), 0);
    static deact_case c[N];
    for (int i = 0; i < N; i++) prepare(&c[i], G_BATCHED, 40 + i, K_FREED); /* serials 41..52 */
    double batches = batch_metric("count"), calls = batch_metric("sum");
    assert_int_equal(redis_fixture_script_flush(admin), 0);
    send_all(c, N);
    for (int i = 0; i < N; i++) {
        if (c[i].got != GRPC_STATUS_OK)
            fprintf(stderr, "after SCRIPT FLUSH, call %d: %d %s\n", i, c[i].got, c[i].reason);
        assert_int_equal(c[i].got, GRPC_STATUS_OK);
        assert_int_equal(places_held(G_BATCHED, c[i].serial), 0);
    }
    assert_true(batch_metric("sum") - calls == N);
    assert_true(batch_metric("count") - batches < N); /* some of them together */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deactivates_in_batches),       cmocka_unit_test(test_same_burst_batching_off),
        cmocka_unit_test(test_records_as_with_single_calls), cmocka_unit_test(test_log_lines_per_call),
        cmocka_unit_test(test_noscript_in_a_batch),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
