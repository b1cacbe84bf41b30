/* test_activation_volume_batch.c -- volume Activates and concurrent-mode
 * heartbeats answered in batches (docs/batching.md), activation.volume_batch.
 *
 * One server worker, so a burst of concurrent calls meets on its queue and
 * goes through activate_batch.c and renew_batch.c: new machines on a
 * permanent order, ten machines racing for the four seats of a concurrent
 * order (exactly four win), a volume key whose security value is wrong, a
 * retired order, retail keys in the same batches, and heartbeats (Renew)
 * of a concurrent order's machines, two of them proven with the wrong
 * place key. Every call must get its own answer (its own license, for its
 * machine and order, verified up its batch tree), volume licenses must
 * share tree signatures, and the same burst with --batch-max 1 (single
 * calls, one-leaf trees) must leave the same records in Redis. Then the
 * heartbeat machines are deactivated at once, batched and not: the same
 * answers, the same machine tables. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act_env.h"
#include "order_env.h"
#include "redis_keys.h"
#include "volume_calls.h"

static act_env env;
static order_env oe;
static redisContext *admin; /* SCRIPT FLUSH on Redis A (the measuring user) */

/* Each run (0: batched, 1: --batch-max 1) has its own groups and orders. */
enum { RUNS = 2 };
static const unsigned g_perm[RUNS] = {721, 731}, g_full[RUNS] = {722, 732}, g_beat[RUNS] = {723, 733},
                      g_retired[RUNS] = {724, 734}, g_retail[RUNS] = {725, 735};
static const char *const o_perm[RUNS] = {"31000001", "31000011"}, *const o_full[RUNS] = {"31000002", "31000012"},
                         *const o_beat[RUNS] = {"31000003", "31000013"},
                         *const o_retired[RUNS] = {"31000004", "31000014"};

/* The burst: how many calls of each kind. */
enum {
    N_PERM = 8,  /* new machines, permanent order: granted */
    N_FULL = 10, /* racing for FULL_SEATS seats of a concurrent order */
    FULL_SEATS = 4,
    N_FORGED = 2,   /* a volume key with a wrong security value */
    N_RETIRED = 2,  /* a retired order */
    N_RETAIL = 4,   /* retail keys, in the same Activate batches */
    N_BEAT = 14,    /* heartbeats of the concurrent order's machines */
    N_BAD_BEAT = 2, /* ... proven with another place key */
    BURST = N_PERM + N_FULL + N_FORGED + N_RETIRED + N_RETAIL + N_BEAT + N_BAD_BEAT
};

typedef enum kind { K_PERM, K_FULL, K_FORGED, K_RETIRED, K_RETAIL, K_BEAT, K_BAD_BEAT } kind;

/* One call of the burst: what it sends, what it got. */
typedef struct call {
    kind k;
    char key[PK_TEXT_LEN + 1];
    unsigned machine;
    char license_id[64]; /* heartbeats: the license they renew */
    const char *order;   /* volume calls: the order's serial */
    grpc_status_code got;
    char reason[64];
    bool own;           /* OK: a verified license for this machine (and order) */
    uint32_t tree_size; /* OK: licenses signed with this one */
    pthread_barrier_t *start;
} call;

static void tune_volume(group_record *r) { r->channel = GROUP_CHANNEL_VOLUME; }
static void tune_retail(group_record *r) { r->policy.max_machines = 1; }

static const char *const *server_flags(bool single) {
    static const char *flags[] = {
        "--workers",        "1", "--order-public-key", NULL, /* set below */
        "--order-sweep-ms", "0", "--group-refresh-ms", "300", ENV_UNLIMITED_RATES, "--batch-max", "32", NULL};
    flags[3] = oe.vendor_pub;
    flags[17] = single ? "1" : "32";
    return flags;
}

static int setup(void **state) {
    (void)state;
    if (env_start_stores(&env) != 0 || order_env_init(&oe, &env) != 0 || !(admin = env_measuring_connection(&env)))
        return -1;
    volume_calls_init(&env, &oe);
    for (int r = 0; r < RUNS; r++)
        if (env_create_group(&env, g_perm[r], tune_volume) != 0 ||
            env_create_group(&env, g_full[r], tune_volume) != 0 ||
            env_create_group(&env, g_beat[r], tune_volume) != 0 ||
            env_create_group(&env, g_retired[r], tune_volume) != 0 ||
            env_create_group(&env, g_retail[r], tune_retail) != 0)
            return -1;
    return env_start_server(&env, server_flags(false));
}

static int teardown(void **state) {
    (void)state;
    int st = env.server >= 0 ? env_stop_server(&env) : 0;
    if (admin) redisFree(admin);
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

/* The orders of run r, and the heartbeat machines' licenses. */
static void orders_of_run(int r, call *c) {
    order(o_perm[r], g_perm[r], "permanent", "100", NULL);
    order(o_full[r], g_full[r], "concurrent", "4", (const char *[]){"--heartbeat-s", "60", NULL});
    order(o_beat[r], g_beat[r], "concurrent", "100", (const char *[]){"--heartbeat-s", "60", NULL});
    order(o_retired[r], g_retired[r], "permanent", "100", NULL);
    char *err = NULL;
    assert_int_equal(order_env_cli(&oe, NULL, (const char *[]){"retire", o_retired[r], NULL}, NULL, &err), 0);
    free(err);
    char beat_key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, g_beat[r], 1, false, 0, beat_key), 0);
    for (int i = 0; i < BURST; i++) {
        if (c[i].k != K_BEAT && c[i].k != K_BAD_BEAT) continue;
        grant g = activate_on(env.ch, beat_key, c[i].machine, c[i].machine, NULL);
        assert_int_equal(g.status, GRPC_STATUS_OK);
        snprintf(c[i].license_id, sizeof c[i].license_id, "%s", g.license_id);
        grant_free(&g);
    }
    usleep(500 * 1000); /* the retirement reaches the worker's order cache */
}

/* The burst's calls for run r, in a mixed order. */
static void plan_burst(int r, call *c) {
    static const kind order_of_kinds[] = {K_PERM, K_FULL, K_BEAT,   K_RETAIL, K_FULL,    K_BEAT,    K_PERM,
                                          K_FULL, K_BEAT, K_FORGED, K_FULL,   K_RETIRED, K_BAD_BEAT};
    int left[] = {[K_PERM] = N_PERM,     [K_FULL] = N_FULL, [K_FORGED] = N_FORGED,    [K_RETIRED] = N_RETIRED,
                  [K_RETAIL] = N_RETAIL, [K_BEAT] = N_BEAT, [K_BAD_BEAT] = N_BAD_BEAT};
    int n = 0, seen[7] = {0};
    for (size_t j = 0; n < BURST; j = (j + 1) % (sizeof order_of_kinds / sizeof *order_of_kinds)) {
        kind k = order_of_kinds[j];
        if (left[k] == 0) {
            for (k = K_PERM; k <= K_BAD_BEAT && left[k] == 0; k++) {
            }
        }
        left[k]--;
        call *x = &c[n++];
        memset(x, 0, sizeof *x);
        x->k = k;
        unsigned i = (unsigned)seen[k]++;
        x->machine = 100 * (unsigned)(k + 1) + i;
        switch (k) {
        case K_PERM:
            x->order = o_perm[r];
            assert_int_equal(env_make_key(&env, g_perm[r], 1, false, 0, x->key), 0);
            break;
        case K_FULL:
            x->order = o_full[r];
            assert_int_equal(env_make_key(&env, g_full[r], 1, false, 0, x->key), 0);
            break;
        case K_FORGED: assert_int_equal(env_make_key(&env, g_perm[r], 2, false, 1, x->key), 0); break;
        case K_RETIRED:
            x->order = o_retired[r];
            assert_int_equal(env_make_key(&env, g_retired[r], 1, false, 0, x->key), 0);
            break;
        case K_RETAIL: assert_int_equal(env_make_key(&env, g_retail[r], 1 + i, false, 0, x->key), 0); break;
        default: x->order = o_beat[r]; break;
        }
    }
}

static bool own_license(const call *c, const Activation__V1__License *l) {
    uint8_t m[32];
    env_machine(m, c->machine);
    return l && l->machine_id.len == sizeof m && memcmp(l->machine_id.data, m, sizeof m) == 0 &&
           (!c->order || strcmp(l->order_serial, c->order) == 0) &&
           (c->k != K_BEAT || strcmp(l->license_id, c->license_id) == 0);
}

static void *run_call(void *p) {
    call *c = p;
    pthread_barrier_wait(c->start);
    if (c->k == K_BEAT || c->k == K_BAD_BEAT) {
        license_call lc = by_license(PA_RPC_RENEW, c->license_id, c->machine, c->k == K_BEAT ? c->machine : 9999);
        c->got = lc.status;
        snprintf(c->reason, sizeof c->reason, "%s", lc.reason);
        if (lc.renew) {
            Activation__V1__License *l = env_open_answer(&env, lc.renew);
            c->own = own_license(c, l) && lc.renew->volume && strcmp(lc.renew->volume->order_serial, c->order) == 0;
            c->tree_size = lc.renew->tree_size;
            if (l) activation__v1__license__free_unpacked(l, NULL);
        }
        license_call_free(&lc);
        return NULL;
    }
    grant g = activate_on(env.ch, c->key, c->machine, c->machine, NULL);
    c->got = g.status;
    snprintf(c->reason, sizeof c->reason, "%s", g.reason);
    if (g.lic) { /* activate_on verified it up its tree */
        c->own = own_license(c, g.lic) &&
                 (c->k == K_RETAIL || (g.resp->volume && strcmp(g.resp->volume->order_serial, c->order) == 0));
        c->tree_size = g.resp->tree_size;
    }
    grant_free(&g);
    return NULL;
}

/* The largest trees seen: volume Activates, heartbeats. */
typedef struct trees {
    uint32_t activate, beat;
} trees;

static call runs[RUNS][BURST]; /* each run's burst */

/* Calls c[0..n) at once, each by `fn` on its own thread. */
static void run_all_by(call *c, int n, void *(*fn)(void *)) {
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, (unsigned)n), 0);
    pthread_t t[BURST];
    for (int i = 0; i < n; i++) {
        c[i].start = &start;
        assert_int_equal(pthread_create(&t[i], NULL, fn, &c[i]), 0);
    }
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
}

static void run_all(call *c, int n) { run_all_by(c, n, run_call); }

static trees burst(int r) {
    call *c = runs[r];
    plan_burst(r, c);
    orders_of_run(r, c);
    run_all(c, BURST);
    trees most = {0, 0};
    int full_ok = 0;
    for (int i = 0; i < BURST; i++) {
        grpc_status_code want = GRPC_STATUS_OK;
        if (c[i].k == K_FORGED) want = GRPC_STATUS_PERMISSION_DENIED;
        if (c[i].k == K_RETIRED) want = GRPC_STATUS_FAILED_PRECONDITION;
        if (c[i].k == K_BAD_BEAT) want = GRPC_STATUS_UNAUTHENTICATED;
        if (c[i].k == K_FULL && c[i].got != GRPC_STATUS_OK) want = GRPC_STATUS_RESOURCE_EXHAUSTED;
        if (c[i].got != want)
            fprintf(stderr, "call %d (kind %d, machine %u): %d %s, not %d\n", i, c[i].k, c[i].machine, c[i].got,
                    c[i].reason, want);
        assert_int_equal(c[i].got, want);
        if (c[i].k == K_RETIRED) assert_string_equal(c[i].reason, "ORDER_RETIRED");
        if (want != GRPC_STATUS_OK) continue;
        assert_true(c[i].own);
        full_ok += c[i].k == K_FULL;
        uint32_t *most_of = c[i].k == K_BEAT ? &most.beat : c[i].k == K_RETAIL ? NULL : &most.activate;
        if (most_of && c[i].tree_size > *most_of) *most_of = c[i].tree_size;
    }
    assert_int_equal(full_ok, FULL_SEATS); /* exactly the seats, batched or not */
    return most;
}

static double batch_metric(const char *method, const char *part) {
    char series[160];
    snprintf(series, sizeof series, "pa_batch_calls_%s{method=\"%s\"}", part, method);
    return env_metric(&env, series);
}

static void test_volume_calls_in_batches(void **state) {
    (void)state;
    trees most = burst(0);
    double a_batches = batch_metric(PA_RPC_ACTIVATE_LABEL, "count"),
           a_calls = batch_metric(PA_RPC_ACTIVATE_LABEL, "sum");
    double r_batches = batch_metric(PA_RPC_RENEW_LABEL, "count"), r_calls = batch_metric(PA_RPC_RENEW_LABEL, "sum");
    fprintf(stderr, "Activate: %.0f calls in %.0f batches, largest volume tree %u; Renew: %.0f in %.0f, largest %u\n",
            a_calls, a_batches, most.activate, r_calls, r_batches, most.beat);
    assert_true(a_batches < a_calls);
    assert_true(r_batches < r_calls);
    assert_true(r_calls == N_BEAT + N_BAD_BEAT);
    assert_true(most.activate > 1); /* volume licenses of a batch share one signature */
    assert_true(most.beat > 1);     /* and renewed ones */
}

/* Redis forgot its scripts (SCRIPT FLUSH, a restart): each call of the
 * batch whose pipelined EVALSHA met NOSCRIPT runs again by itself, which
 * loads the script; every call still gets its answer. Repeats of machines
 * already granted (the same license) and heartbeats, so the records stay
 * those of the burst. */
static void test_noscript_in_a_batch(void **state) {
    (void)state;
    enum { EACH = 6 };
    call c[2 * EACH];
    int n = 0, perm = 0, beat = 0;
    for (int i = 0; i < BURST && n < 2 * EACH; i++) {
        bool take = (runs[0][i].k == K_PERM && perm < EACH) || (runs[0][i].k == K_BEAT && beat < EACH);
        if (!take) continue;
        perm += runs[0][i].k == K_PERM;
        beat += runs[0][i].k == K_BEAT;
        c[n] = runs[0][i];
        c[n].got = GRPC_STATUS_UNKNOWN;
        c[n++].own = false;
    }
    assert_int_equal(n, 2 * EACH);
    double before = batch_metric(PA_RPC_ACTIVATE_LABEL, "sum") + batch_metric(PA_RPC_RENEW_LABEL, "sum");
    double batches = batch_metric(PA_RPC_ACTIVATE_LABEL, "count") + batch_metric(PA_RPC_RENEW_LABEL, "count");
    assert_int_equal(redis_fixture_script_flush(admin), 0);
    run_all(c, n);
    for (int i = 0; i < n; i++) {
        if (c[i].got != GRPC_STATUS_OK)
            fprintf(stderr, "after SCRIPT FLUSH, call %d: %d %s\n", i, c[i].got, c[i].reason);
        assert_int_equal(c[i].got, GRPC_STATUS_OK);
        assert_true(c[i].own);
    }
    double after = batch_metric(PA_RPC_ACTIVATE_LABEL, "sum") + batch_metric(PA_RPC_RENEW_LABEL, "sum");
    assert_true(after - before == n); /* through the batch handlers, */
    assert_true(batch_metric(PA_RPC_ACTIVATE_LABEL, "count") + batch_metric(PA_RPC_RENEW_LABEL, "count") - batches <
                n); /* some of them together, in one pipeline */
}

static void test_same_burst_batching_off(void **state) {
    (void)state;
    assert_int_equal(env_restart_server(&env, server_flags(true)), 0);
    trees most = burst(1);
    assert_int_equal(most.activate, 1); /* every license its own one-leaf tree */
    assert_int_equal(most.beat, 1);
    assert_true(batch_metric(PA_RPC_ACTIVATE_LABEL, "count") <= 0);
    assert_true(batch_metric(PA_RPC_RENEW_LABEL, "count") <= 0);
}

/* The field names of a hash (machine digests, place digests), sorted, as hex. */
static void hash_fields(const char *key, char *out, size_t cap) {
    redisReply *r = redisCommand(env.ks_a, "HKEYS %s", key);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    char(*hex)[80] = calloc(r->elements ? r->elements : 1, sizeof *hex);
    assert_non_null(hex);
    for (size_t i = 0; i < r->elements; i++)
        for (size_t k = 0; k < r->element[i]->len && 2 * k + 3 < sizeof hex[i]; k++)
            snprintf(hex[i] + 2 * k, 3, "%02x", (unsigned char)r->element[i]->str[k]);
    qsort(hex, r->elements, sizeof *hex, (int (*)(const void *, const void *))strcmp);
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->elements && off + strlen(hex[i]) + 2 < cap; i++)
        off += (size_t)snprintf(out + off, cap - off, "%s,", hex[i]);
    free(hex);
    freeReplyObject(r);
}

static void machines_of(const char *serial, char *out, size_t cap) {
    char key[PA_RKEY_MAX];
    assert_true(pa_rkey_order_machines(key, sizeof key, serial) > 0);
    hash_fields(key, out, cap);
}

static long long hlen(const char *key) {
    redisReply *r = redisCommand(env.ks_a, "HLEN %s", key);
    assert_non_null(r);
    long long n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

/* The machine tables hold the same machines (the full order: as many; which
 * four won may differ), the retail keys the same places. */
static void test_records_as_with_single_calls(void **state) {
    (void)state;
    static char a[16384], b[16384];
    machines_of(o_perm[0], a, sizeof a);
    machines_of(o_perm[1], b, sizeof b);
    assert_string_equal(a, b);
    assert_true(a[0] != '\0');
    machines_of(o_beat[0], a, sizeof a);
    machines_of(o_beat[1], b, sizeof b);
    assert_string_equal(a, b);
    machines_of(o_retired[0], a, sizeof a);
    assert_string_equal(a, ""); /* a retired order takes no machine */
    char full[2][PA_RKEY_MAX];
    for (int r = 0; r < RUNS; r++) assert_true(pa_rkey_order_machines(full[r], sizeof full[r], o_full[r]) > 0);
    assert_int_equal(hlen(full[0]), hlen(full[1]));
    for (uint32_t s = 1; s <= N_RETAIL; s++) {
        char ka[PA_RKEY_MAX], kb[PA_RKEY_MAX];
        snprintf(ka, sizeof ka, PA_RKEY_RECORD_FMT, g_retail[0], s);
        snprintf(kb, sizeof kb, PA_RKEY_RECORD_FMT, g_retail[1], s);
        hash_fields(ka, a, sizeof a);
        hash_fields(kb, b, sizeof b);
        assert_string_equal(a, b);
        assert_true(a[0] != '\0');
    }
}

/* A heartbeat machine's Deactivate (a bad beat's: proven by another place
 * key); own: the answer's VolumeStatus names the order. */
static void *run_deactivate(void *p) {
    call *c = p;
    pthread_barrier_wait(c->start);
    license_call lc = by_license(PA_RPC_DEACTIVATE, c->license_id, c->machine, c->k == K_BEAT ? c->machine : 9999);
    c->got = lc.status;
    snprintf(c->reason, sizeof c->reason, "%s", lc.reason);
    c->own = lc.deact && lc.deact->volume && strcmp(lc.deact->volume->order_serial, c->order) == 0;
    license_call_free(&lc);
    return NULL;
}

/* The heartbeat machines deactivated at once, batched (run 0: volume.lua's
 * deactivate calls pipelined, through the Deactivate batch handler) and
 * not (run 1, --batch-max 1): each freed seat leaves the machine table, a
 * wrong place key is refused and its machine stays; both tables alike. */
static void test_deactivates_in_batches(void **state) {
    (void)state;
    for (int r = 0; r < RUNS; r++) {
        assert_int_equal(env_restart_server(&env, server_flags(r == 1)), 0);
        call c[N_BEAT + N_BAD_BEAT];
        int n = 0;
        for (int i = 0; i < BURST; i++)
            if (runs[r][i].k == K_BEAT || runs[r][i].k == K_BAD_BEAT) c[n++] = runs[r][i];
        assert_int_equal(n, N_BEAT + N_BAD_BEAT);
        run_all_by(c, n, run_deactivate);
        for (int i = 0; i < n; i++) {
            grpc_status_code want = c[i].k == K_BEAT ? GRPC_STATUS_OK : GRPC_STATUS_UNAUTHENTICATED;
            if (c[i].got != want) fprintf(stderr, "run %d deactivate %d: %d %s\n", r, i, c[i].got, c[i].reason);
            assert_int_equal(c[i].got, want);
            if (want == GRPC_STATUS_OK) assert_true(c[i].own);
        }
        double batches = batch_metric(PA_RPC_DEACTIVATE_LABEL, "count");
        if (r == 0) fprintf(stderr, "Deactivate: %d calls in %.0f batches\n", n, batches);
        if (r == 0) assert_true(batch_metric(PA_RPC_DEACTIVATE_LABEL, "sum") == n && batches < n);
        else assert_true(batches <= 0);
        char key[PA_RKEY_MAX];
        assert_true(pa_rkey_order_machines(key, sizeof key, o_beat[r]) > 0);
        assert_int_equal(hlen(key), N_BAD_BEAT);
    }
    static char a[16384], b[16384];
    machines_of(o_beat[0], a, sizeof a);
    machines_of(o_beat[1], b, sizeof b);
    assert_string_equal(a, b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_volume_calls_in_batches), cmocka_unit_test(test_noscript_in_a_batch),
        cmocka_unit_test(test_same_burst_batching_off), cmocka_unit_test(test_records_as_with_single_calls),
        cmocka_unit_test(test_deactivates_in_batches),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
