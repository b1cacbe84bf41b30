/* test_activation_renew_batch.c -- Renew calls answered in batches
 * (docs/batching.md): 32 concurrent Renews of distinct places, refusals
 * mixed in (a proof by the wrong place key, a lapsed lease), against a
 * server with one worker, so the calls meet on its queue and go through
 * renew_batch.c. Every call must get its own answer (its own license, for
 * its place and machine, verified against its batch tree), and the records
 * in Redis must be what the same burst leaves with batching off
 * (--batch-max 1). */
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
#include <unistd.h>

#define G_LONG_BATCHED 81  /* live leases, the burst with batching */
#define G_SHORT_BATCHED 82 /* 2 s leases, lapsed before the burst */
#define G_LONG_SINGLE 83   /* the same, batching off */
#define G_SHORT_SINGLE 84
#define BURST 32
#define LONG_PLACES 28 /* calls 0..27 renew these; 20..23 sign with the wrong key */
#define WRONG_FROM 20
#define WRONG_TO 24

static act_env env;

static void tune_long(group_record *r) { r->policy.max_machines = 1; }
static void tune_short(group_record *r) {
    r->policy.max_machines = 1;
    r->policy.lease_seconds = 2;
    r->policy.renew_seconds = 1;
}

/* What call i of the burst sends and expects. */
typedef struct renew_case {
    char license_id[LICENSE_ID_LEN + 1];
    uint32_t group, serial;
    unsigned machine, key; /* the machine and the place key it signs with */
    grpc_status_code want, got;
    bool own_license;   /* OK: signed, for this place and machine */
    uint32_t tree_size; /* OK: licenses signed together with this one */
    pthread_barrier_t *start;
} renew_case;

/* Activates (group, serial) on machine m bound to place key n. */
static void activate_with(uint32_t group, uint32_t serial, unsigned m, unsigned n,
                          char license_id[LICENSE_ID_LEN + 1]) {
    assert_int_equal(env_activate_license(&env, group, serial, m, n, license_id), 0);
}

static void *run_renew(void *p) {
    renew_case *c = p;
    uint8_t m[32], buf[512];
    env_machine(m, c->machine);
    EVP_PKEY *k = env_place_key(c->key);
    size_t len = k ? env_license_request(c->license_id, m, k, PLACE_OP_RENEW, 0, buf, sizeof buf) : 0;
    EVP_PKEY_free(k);
    pthread_barrier_wait(c->start);
    if (len == 0) return NULL;
    rpc_result res;
    c->got = env_call(&env, PA_RPC_RENEW, buf, len, 10000, &res);
    if (c->got == GRPC_STATUS_OK) {
        Activation__V1__RenewResponse *r = activation__v1__renew_response__unpack(NULL, res.body_len, res.body);
        Activation__V1__License *l = r ? env_open_answer(&env, r) : NULL;
        c->own_license = l && l->key_group == c->group && l->key_serial == c->serial &&
                         strcmp(l->license_id, c->license_id) == 0 && l->machine_id.len == sizeof m &&
                         memcmp(l->machine_id.data, m, sizeof m) == 0;
        c->tree_size = r ? r->tree_size : 0;
        if (l) activation__v1__license__free_unpacked(l, NULL);
        if (r) activation__v1__renew_response__free_unpacked(r, NULL);
    }
    rpc_result_clear(&res);
    return NULL;
}

/* Activates the burst's places (the short ones lapse meanwhile), then the
 * burst, every call checked; returns the largest tree seen. */
static uint32_t burst(uint32_t g_long, uint32_t g_short) {
    static renew_case c[BURST];
    for (int i = 0; i < BURST; i++) {
        memset(&c[i], 0, sizeof c[i]);
        bool is_long = i < LONG_PLACES;
        c[i].group = is_long ? g_long : g_short;
        c[i].serial = is_long ? 1 + (uint32_t)i : 1 + (uint32_t)(i - LONG_PLACES);
        c[i].machine = 100 + (unsigned)i;
        activate_with(c[i].group, c[i].serial, c[i].machine, 500 + (unsigned)i, c[i].license_id);
        bool wrong = i >= WRONG_FROM && i < WRONG_TO;
        c[i].key = wrong ? 900 + (unsigned)i : 500 + (unsigned)i;
        c[i].want = !is_long ? GRPC_STATUS_FAILED_PRECONDITION : wrong ? GRPC_STATUS_UNAUTHENTICATED : GRPC_STATUS_OK;
    }
    sleep(3); /* the 2 s leases lapse */
    pthread_t t[BURST];
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, BURST), 0);
    for (int i = 0; i < BURST; i++) c[i].start = &start;
    for (int i = 0; i < BURST; i++) assert_int_equal(pthread_create(&t[i], NULL, run_renew, &c[i]), 0);
    for (int i = 0; i < BURST; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    uint32_t tree = 0;
    for (int i = 0; i < BURST; i++) {
        if (c[i].got != c[i].want)
            fprintf(stderr, "renew %d (serial %u): %d, not %d\n", i, c[i].serial, c[i].got, c[i].want);
        assert_int_equal(c[i].got, c[i].want);
        if (c[i].want == GRPC_STATUS_OK) assert_true(c[i].own_license);
        if (c[i].tree_size > tree) tree = c[i].tree_size;
    }
    return tree;
}

static const char *const rates[] = {"--workers", "1", ENV_UNLIMITED_RATES, NULL};

static int setup(void **state) {
    (void)state;
    if (env_start_stores(&env) != 0) return -1;
    if (env_create_group(&env, G_LONG_BATCHED, tune_long) != 0 ||
        env_create_group(&env, G_LONG_SINGLE, tune_long) != 0 ||
        env_create_group(&env, G_SHORT_BATCHED, tune_short) != 0 ||
        env_create_group(&env, G_SHORT_SINGLE, tune_short) != 0)
        return -1;
    return env_start_server(&env, rates);
}

static int teardown(void **state) {
    (void)state;
    int st = env_stop_server(&env);
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

static double batch_metric(const char *part) {
    char series[160];
    snprintf(series, sizeof series, "pa_batch_calls_%s{method=\"" PA_RPC_RENEW_LABEL "\"}", part);
    return env_metric(&env, series);
}

static void test_renews_in_batches(void **state) {
    (void)state;
    uint32_t tree = burst(G_LONG_BATCHED, G_SHORT_BATCHED);
    double batches = batch_metric("count"), calls = batch_metric("sum");
    fprintf(stderr, "batched renews: %.0f calls in %.0f batches, largest tree %u\n", calls, batches, tree);
    assert_true(tree > 1); /* renewed licenses of a batch share one signature */
    assert_true(calls == BURST);
    assert_true(batches < calls);
    assert_true(env_metric(&env, "pa_renewals_refused_total{reason=\"bad_proof\"}") == WRONG_TO - WRONG_FROM);
    assert_true(env_metric(&env, "pa_renewals_refused_total{reason=\"lease_expired\"}") == BURST - LONG_PLACES);
}

static void test_same_burst_batching_off(void **state) {
    (void)state;
    const char *extra[] = {"--batch-max", "1", NULL};
    const char *args[sizeof rates / sizeof *rates + 2];
    size_t n = 0;
    for (size_t i = 0; extra[i]; i++) args[n++] = extra[i];
    for (size_t i = 0; rates[i]; i++) args[n++] = rates[i];
    args[n] = NULL;
    assert_int_equal(env_restart_server(&env, args), 0);
    assert_int_equal(burst(G_LONG_SINGLE, G_SHORT_SINGLE), 1); /* every license its own one-leaf tree */
    assert_true(batch_metric("count") <= 0);
}

/* A record's places without their times and randoms: its field names
 * (machine digests) and how many there are. */
static void record_shape(uint32_t group, uint32_t serial, char *out, size_t cap) {
    redisReply *r = redisCommand(env.ks_a, "HKEYS " PA_RKEY_RECORD_FMT, group, serial);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->elements; i++)
        for (size_t k = 0; k < r->element[i]->len && off + 3 < cap; k++, off += 2)
            snprintf(out + off, 3, "%02x", (unsigned char)r->element[i]->str[k]);
    freeReplyObject(r);
}

/* Field names are digests of the machine and are the same in both runs;
 * what must match is which places are held, and that a lapsed place was
 * not renewed (its record lost nothing, gained nothing). */
static void test_records_as_with_single_calls(void **state) {
    (void)state;
    for (uint32_t s = 1; s <= LONG_PLACES; s++) {
        char a[4096], b[4096];
        record_shape(G_LONG_BATCHED, s, a, sizeof a);
        record_shape(G_LONG_SINGLE, s, b, sizeof b);
        assert_string_equal(a, b);
        assert_true(a[0] != '\0');
    }
    for (uint32_t s = 1; s <= BURST - LONG_PLACES; s++) {
        char a[4096], b[4096];
        record_shape(G_SHORT_BATCHED, s, a, sizeof a);
        record_shape(G_SHORT_SINGLE, s, b, sizeof b);
        assert_string_equal(a, b);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_renews_in_batches),
        cmocka_unit_test(test_same_burst_batching_off),
        cmocka_unit_test(test_records_as_with_single_calls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
