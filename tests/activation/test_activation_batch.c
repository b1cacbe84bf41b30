/* test_activation_batch.c -- Activate calls answered in batches
 * (docs/batching.md): a burst of 64 concurrent Activates, refusals mixed
 * in (wrong first values, a revoked key, a key with more machines than
 * places, the same machine again), against a server with one worker, so
 * the calls meet on its queue and go through activate_batch.c. Every call
 * must get its own answer (its own license, for its key and machine), and
 * the records in Redis must be what the same burst leaves with batching
 * off (--batch-max 1), the wrong first values' failure tokens included
 * (their reject calls join the batch's pipeline). The batch's policy
 * scripts are one EVALSHA (--batch-script on, Redis's command statistics
 * count one per batch), and the same burst with --batch-script off (one
 * EVALSHA per call in the pipeline) leaves the same records too. */
#include "act_env.h"
#include "redis_keys.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define G_BATCHED 71 /* the burst with batching */
#define G_SINGLE 72  /* the same burst, batching off */
#define G_EACH 73    /* the same burst, batched, one script call per call (--batch-script off) */
#define BURST 64
#define PLACES 3         /* max_machines of both groups */
#define SERIAL_FULL 100  /* 8 machines for 3 places */
#define SERIAL_AGAIN 200 /* one machine, 4 times */
#define SERIAL_REVOKED 300
#define SERIAL_WRONG 500     /* + i: first value spoilt */
#define N_WRONG 8            /* calls 48..55 */
#define FAILURE_BURST "1000" /* the group failure bucket, refilling too slowly to matter */

static act_env env;
static redisContext *admin; /* Redis's command statistics */

extern const char policy_lua[]; /* loaded before the bursts, so no batch meets NOSCRIPT */

static long long evalsha_calls(void) {
    long long n = redis_fixture_command_calls(admin, "evalsha");
    assert_true(n >= 0);
    return n;
}

static void tune(group_record *r) { r->policy.max_machines = PLACES; }

/* What call i of the burst sends and expects. */
typedef struct burst_call {
    char key[PK_TEXT_LEN + 1];
    uint32_t group, serial;
    unsigned machine;
    grpc_status_code want; /* OK, or the refusal; the full key takes either OK or RESOURCE_EXHAUSTED */
    grpc_status_code got;
    bool own_license;   /* OK: the license is signed, for this key and this machine */
    uint32_t count;     /* OK: activation_count */
    uint32_t tree_size; /* OK: licenses signed together with this one */
    pthread_barrier_t *start;
} burst_call;

static void plan_call(burst_call *c, uint32_t group, int i) {
    c->group = group;
    uint64_t spoil = 0;
    if (i < 40) {
        c->serial = 1 + (uint32_t)i, c->machine = 1000 + (unsigned)i, c->want = GRPC_STATUS_OK;
    } else if (i < 48) {
        c->serial = SERIAL_FULL, c->machine = 2000 + (unsigned)i, c->want = GRPC_STATUS_RESOURCE_EXHAUSTED;
    } else if (i < 56) {
        c->serial = SERIAL_WRONG + (uint32_t)i, c->machine = 3000 + (unsigned)i, spoil = 1;
        c->want = GRPC_STATUS_PERMISSION_DENIED;
    } else if (i < 60) {
        c->serial = SERIAL_REVOKED, c->machine = 4000 + (unsigned)i, c->want = GRPC_STATUS_FAILED_PRECONDITION;
    } else {
        c->serial = SERIAL_AGAIN, c->machine = 5000, c->want = GRPC_STATUS_OK;
    }
    assert_int_equal(env_make_key(&env, group, c->serial, false, spoil, c->key), 0);
}

static void *run_call(void *p) {
    burst_call *c = p;
    uint8_t m[32];
    env_machine(m, c->machine);
    rpc_result res;
    Activation__V1__ActivateResponse *resp = NULL;
    pthread_barrier_wait(c->start);
    c->got = env_activate(&env, c->key, m, sizeof m, &res, &resp);
    if (c->got == GRPC_STATUS_OK && resp) {
        Activation__V1__License *l = env_open_answer(&env, resp);
        c->own_license = l && l->key_group == c->group && l->key_serial == c->serial && l->machine_id.len == sizeof m &&
                         memcmp(l->machine_id.data, m, sizeof m) == 0;
        c->count = resp->activation_count;
        c->tree_size = resp->tree_size;
        if (l) activation__v1__license__free_unpacked(l, NULL);
        activation__v1__activate_response__free_unpacked(resp, NULL);
    }
    rpc_result_clear(&res);
    return NULL;
}

/* The burst on `group`, every call checked; returns the largest number
 * of licenses signed together. */
static uint32_t burst(uint32_t group) {
    static burst_call c[BURST];
    pthread_t t[BURST];
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, BURST), 0);
    for (int i = 0; i < BURST; i++) {
        memset(&c[i], 0, sizeof c[i]);
        plan_call(&c[i], group, i);
        c[i].start = &start;
    }
    for (int i = 0; i < BURST; i++) assert_int_equal(pthread_create(&t[i], NULL, run_call, &c[i]), 0);
    for (int i = 0; i < BURST; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    int full_granted = 0;
    for (int i = 0; i < BURST; i++) {
        if (c[i].serial == SERIAL_FULL && c[i].got == GRPC_STATUS_OK) {
            full_granted++;
            assert_true(c[i].own_license);
            assert_true(c[i].count >= 1 && c[i].count <= PLACES);
            continue;
        }
        if (c[i].got != c[i].want)
            fprintf(stderr, "call %d (serial %u): %d, not %d\n", i, c[i].serial, c[i].got, c[i].want);
        assert_int_equal(c[i].got, c[i].want);
        if (c[i].want == GRPC_STATUS_OK) {
            assert_true(c[i].own_license);
            assert_int_equal(c[i].count, 1);
        }
    }
    assert_int_equal(full_granted, PLACES);
    uint32_t tree = 0;
    for (int i = 0; i < BURST; i++)
        if (c[i].tree_size > tree) tree = c[i].tree_size;
    return tree;
}

enum { SERVER_OPTIONS_MAX = 2 + 2 + 2 + 12 + 1 }; /* workers, batch-max, batch-script, the limits, NULL */

/* The server's options: one worker, limits no burst reaches, the failure
 * bucket small enough to read what the wrong values spent; `batch_max`
 * and `batch_script` NULL leave --batch-max and --batch-script at their
 * defaults. */
static void server_options(const char *extra[SERVER_OPTIONS_MAX], const char *batch_max, const char *batch_script) {
    static const char *const limits[] = {ENV_UNLIMITED_RATES, "--rate-group-failures-per-s", "0.001",
                                         "--rate-group-failures-burst", FAILURE_BURST};
    size_t n = 0;
    extra[n++] = "--workers";
    extra[n++] = "1";
    if (batch_max) {
        extra[n++] = "--batch-max";
        extra[n++] = batch_max;
    }
    if (batch_script) {
        extra[n++] = "--batch-script";
        extra[n++] = batch_script;
    }
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) extra[n++] = limits[i];
    extra[n] = NULL;
}

static int setup(void **state) {
    (void)state;
    if (env_start_stores(&env) != 0) return -1;
    uint32_t groups[] = {G_BATCHED, G_SINGLE, G_EACH};
    if (!(admin = env_measuring_connection(&env))) return -1;
    redisReply *loaded = redisCommand(admin, "SCRIPT LOAD %s", policy_lua);
    if (!loaded) return -1;
    freeReplyObject(loaded);
    for (size_t i = 0; i < 3; i++) {
        if (env_create_group(&env, groups[i], tune) != 0) return -1;
        redisReply *r = redisCommand(env.ks_a, "SADD " PA_RKEY_REVOKED_FMT " %u", groups[i], SERIAL_REVOKED);
        if (!r) return -1;
        freeReplyObject(r);
    }
    const char *extra[SERVER_OPTIONS_MAX];
    server_options(extra, NULL, NULL);
    return env_start_server(&env, extra);
}

static int teardown(void **state) {
    (void)state;
    int st = env_stop_server(&env);
    if (admin) redisFree(admin);
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

static double batch_metric(const char *part) {
    char series[160];
    snprintf(series, sizeof series, "pa_batch_calls_%s{method=\"" PA_RPC_ACTIVATE_LABEL "\"}", part);
    return env_metric(&env, series);
}

static void test_burst_in_batches(void **state) {
    (void)state;
    long long evalsha = evalsha_calls();
    uint32_t tree = burst(G_BATCHED);
    evalsha = evalsha_calls() - evalsha;
    assert_true(tree > 1); /* licenses of a batch share one signature (and env_open_answer checked each path) */
    double batches = batch_metric("count"), calls = batch_metric("sum");
    fprintf(stderr, "batched burst: %.0f calls in %.0f batches\n", calls, batches);
    assert_true(calls == BURST);  /* every call went through the batch handler */
    assert_true(batches < calls); /* and some shared a batch */
    fprintf(stderr, "batched burst: %lld EVALSHA\n", evalsha);
    assert_true(evalsha == (long long)batches); /* every script of a batch in one call (--batch-script on) */
    /* The places hold: a fourth machine on the full key is refused. */
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_BATCHED, SERIAL_FULL, false, 0, key), 0);
    uint8_t m[32];
    env_machine(m, 2999);
    rpc_result res;
    assert_int_equal(env_activate(&env, key, m, sizeof m, &res, NULL), GRPC_STATUS_RESOURCE_EXHAUSTED);
    rpc_result_clear(&res);
}

static void test_same_burst_batching_off(void **state) {
    (void)state;
    const char *extra[SERVER_OPTIONS_MAX];
    server_options(extra, "1", NULL);
    assert_int_equal(env_restart_server(&env, extra), 0);
    assert_int_equal(burst(G_SINGLE), 1);    /* every license its own one-leaf tree */
    assert_true(batch_metric("count") <= 0); /* no batch handler ran (no series, or zero) */
}

static void test_same_burst_one_script_call_each(void **state) {
    (void)state;
    const char *extra[SERVER_OPTIONS_MAX];
    server_options(extra, NULL, "off");
    assert_int_equal(env_restart_server(&env, extra), 0);
    long long evalsha = evalsha_calls();
    assert_true(burst(G_EACH) > 1); /* still batched: licenses share trees */
    evalsha = evalsha_calls() - evalsha;
    assert_true(batch_metric("sum") == BURST);
    assert_true(evalsha == BURST); /* one EVALSHA per call, in the batch's pipeline */
}

/* The field names of a record (binary: place digests), hex, sorted, joined;
 * the values hold times and randoms, which differ between runs. */
static int hex_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void record_fields(uint32_t group, uint32_t serial, char *out, size_t cap) {
    redisReply *r = redisCommand(env.ks_a, "HKEYS " PA_RKEY_RECORD_FMT, group, serial);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_true(r->elements <= 64);
    static char hex[64][2 * 64 + 1];
    char *names[64];
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *f = r->element[i];
        size_t len = f->len < 64 ? f->len : 64;
        for (size_t k = 0; k < len; k++) snprintf(hex[i] + 2 * k, 3, "%02x", (unsigned char)f->str[k]);
        hex[i][2 * len] = '\0';
        names[i] = hex[i];
    }
    qsort(names, r->elements, sizeof *names, hex_cmp);
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->elements; i++) {
        int w = snprintf(out + off, cap - off, "%s,", names[i]);
        assert_true(w > 0 && (size_t)w < cap - off);
        off += (size_t)w;
    }
    freeReplyObject(r);
}

static long record_len(uint32_t group, uint32_t serial) {
    redisReply *r = redisCommand(env.ks_a, "HLEN " PA_RKEY_RECORD_FMT, group, serial);
    assert_non_null(r);
    long n = (long)r->integer;
    freeReplyObject(r);
    return n;
}

static void test_records_as_with_single_calls(void **state) {
    (void)state;
    uint32_t serials[41 + 3];
    size_t n = 0;
    for (uint32_t s = 1; s <= 40; s++) serials[n++] = s;
    serials[n++] = SERIAL_AGAIN;
    serials[n++] = SERIAL_REVOKED;
    serials[n++] = SERIAL_WRONG + 50;
    for (size_t i = 0; i < n; i++) {
        char a[4096], b[4096], e[4096];
        record_fields(G_BATCHED, serials[i], a, sizeof a);
        record_fields(G_SINGLE, serials[i], b, sizeof b);
        record_fields(G_EACH, serials[i], e, sizeof e);
        assert_string_equal(a, b);
        assert_string_equal(e, b);
    }
    /* Which three machines won the full key depends on the order; how many does not. */
    assert_int_equal(record_len(G_BATCHED, SERIAL_FULL), record_len(G_SINGLE, SERIAL_FULL));
    assert_int_equal(record_len(G_EACH, SERIAL_FULL), record_len(G_SINGLE, SERIAL_FULL));
    assert_true(record_len(G_BATCHED, SERIAL_FULL) > 0);
}

/* Tokens left in a group's failure bucket (policy.lua: two doubles, level
 * and time); the full burst when the bucket was never written. */
static double failure_tokens(uint32_t group) {
    redisReply *r = redisCommand(env.ks_a, "GET " PA_RKEY_GROUP_FAILURE_BUCKET_FMT, group);
    assert_non_null(r);
    double level = atof(FAILURE_BURST);
    if (r->type == REDIS_REPLY_STRING) {
        assert_int_equal(r->len, 2 * sizeof(double));
        memcpy(&level, r->str, sizeof level);
    }
    freeReplyObject(r);
    return level;
}

/* The wrong first values' reject calls ride the batch's pipeline: each
 * spent its group's failure token, as with single calls. */
static void test_failure_tokens_as_with_single_calls(void **state) {
    (void)state;
    double batched = failure_tokens(G_BATCHED), single = failure_tokens(G_SINGLE), each = failure_tokens(G_EACH);
    fprintf(stderr, "failure tokens left: %.3f batched, %.3f single, %.3f one call each\n", batched, single, each);
    assert_true(each > atof(FAILURE_BURST) - N_WRONG - 0.5 && each < atof(FAILURE_BURST) - N_WRONG + 0.5);
    double full = atof(FAILURE_BURST);
    assert_true(batched > full - N_WRONG - 0.5 && batched < full - N_WRONG + 0.5);
    assert_true(single > full - N_WRONG - 0.5 && single < full - N_WRONG + 0.5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_in_batches),
        cmocka_unit_test(test_same_burst_batching_off),
        cmocka_unit_test(test_same_burst_one_script_call_each),
        cmocka_unit_test(test_records_as_with_single_calls),
        cmocka_unit_test(test_failure_tokens_as_with_single_calls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
