/* test_activation_cluster.c -- the activation server on a Redis Cluster of
 * three masters (docs/cluster.md, "Test plan"), with a reshard under load.
 *
 * The groups are made by the keystore library through a plain connection
 * while every slot is on the first master, then spread over all three with
 * `redis-cli --cluster rebalance`; so the groups live on every master.
 * Threads activate keys of all groups while `redis-cli --cluster reshard`
 * moves 1000 slots from the second master to the third (the plan says
 * 2000: half keeps the program under a minute here); every third grant of
 * that load is renewed at once, so Renews meet the migration too. Asserts:
 *   - every call (Activate and Renew) answers OK or UNAVAILABLE (a moment
 *     of a migration), never another status, some Renews answer OK, and
 *     the server's log never shows CROSSSLOT;
 *   - afterwards each key lists as many machines as the clients were
 *     granted (plus at most its UNAVAILABLE answers, whose grant may have
 *     been written before the answer was lost);
 *   - every sampled grant's outbox record reaches the audit server, and
 *     none twice (no request id repeats in the trail);
 *   - revocations on every master: after the reshard the keystore CLI
 *     makes a sampled group on each master and generates its keys; keys
 *     with a forged second value are granted, the server is SIGKILLed and
 *     started again, and then the audit server's verdicts revoke every one
 *     through the restarted server's forwarder and puller: Renew and
 *     Activate are refused FAILED_PRECONDITION, each serial is in its
 *     group's revoked set on the master that owns it, and the puller logs
 *     `audit.revocation.applied` once per revocation over both lives.
 * A measured load (CALLS per thread) runs first on a one-master cluster,
 * then on the three masters before the reshard; the Activate rates of both
 * are printed (indicative: everything shares
 * this machine; the reshard's load is not measured). No figure is
 * asserted. Not covered here: the puller killed between its SADDs and its
 * CAS (the kill here is not timed against the puller's round: in practice
 * the revocations are all applied after the restart). */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_calls.h"
#include "activation/v1/activation.pb-c.h"
#include "audit_env.h"
#include "clock.h"
#include "cluster_fixture.h"
#include "log.h"
#include "keycodec.h"
#include "redis_keys.h"
#include "redis_slot.h"
#include "rpc_client.h"
#include "rpc_methods.h"

enum {
    NG = 12,      /* plain groups per run */
    SERIALS = 20, /* keys per group (each gets well under the 100 machines one ListMachines page shows) */
    NKEYS = NG * SERIALS,
    THREADS = 6,       /* client threads */
    CALLS = 150,       /* calls per thread in the measured load; the reshard's load runs until it ends */
    SAMPLE_EVERY = 10, /* every tenth call uses the sampled group's key */
};

static audit_env E;
static char signing_key[400];

typedef struct run {
    int masters;                       /* of the cluster */
    cluster_fixture c;                 /* Redis A */
    act_server s;                      /* the activation server on it */
    char keys[NKEYS][PK_TEXT_LEN + 1]; /* plain groups' keys */
    char sampled[PK_TEXT_LEN + 1];     /* a key of the sampled group */
    atomic_int grants[NKEYS];          /* OK answers per key */
    atomic_int unavailable[NKEYS];     /* UNAVAILABLE answers per key */
    atomic_uint last_machine[NKEYS];   /* a machine granted on the key */
    atomic_int sampled_grants, wrong, calls;
    atomic_int renewed;     /* Renews answered OK during the reshard */
    atomic_bool resharding; /* the reshard is still running */
    double per_s;           /* Activate calls per second */
} run;

static int start_act(run *r) {
    char url[1024];
    cluster_fixture_url(&r->c, "activation", FIXTURE_PW_ACTIVATION, url, sizeof url);
    r->s.name = r->masters == 1 ? "act-cluster-1" : "act-cluster-3";
    const char *extra[] = {
        "--workers",        "4",   "--log-level", "info", "--rate-address-per-s", "0", "--rate-group-per-s", "0",
        "--audit-flush-ms", "200", NULL};
    return act_server_start(&r->s, &E, url, signing_key, extra);
}

static int stop_act(act_server *s) { return act_server_stop(s, SIGTERM); }

static void tune_plain(group_record *g) {
    g->policy.max_machines = 100000;
    g->policy.audit_rate_ppm = 0;
}
static void tune_sampled(group_record *g) {
    g->policy.max_machines = 100000;
    g->policy.audit_rate_ppm = 1000000;
    g->policy.audit = AUDIT_MODE_OFFLINE;
}

static uint32_t group_of(const run *r, int i) { return 7300 + (uint32_t)r->masters * 100 + (uint32_t)i; }

/* The groups on master 0 through plain connections, their keys, then the
 * slots spread over every master. */
static int prepare(run *r) {
    if (cluster_fixture_start_on_first(&r->c, r->masters) != 0) return -1;
    redisFree(E.ks_a);
    redisFree(E.act_a);
    E.ks_a = redis_fixture_connect(&r->c.node[0], "keystore", FIXTURE_PW_KEYSTORE);
    E.act_a = redis_fixture_connect(&r->c.node[0], "activation", FIXTURE_PW_ACTIVATION);
    if (!E.ks_a || !E.act_a) return -1;
    for (int g = 0; g < NG; g++) {
        if (env_create_group_with(&E, group_of(r, g), tune_plain) != 0) return -1;
        for (int k = 0; k < SERIALS; k++)
            if (env_make_key(&E, group_of(r, g), 1 + (uint32_t)k, true, NULL, r->keys[g * SERIALS + k]) != 0) return -1;
    }
    if (env_create_group_with(&E, group_of(r, NG), tune_sampled) != 0 ||
        env_make_key(&E, group_of(r, NG), 1, true, NULL, r->sampled) != 0)
        return -1;
    if (r->masters == 1) return 0;
    const char *args[] = {"--cluster-use-empty-masters", NULL};
    return cluster_fixture_cli(&r->c, "rebalance", args) == 0 && cluster_fixture_wait_ok(&r->c, 0, 20000) == 0 ? 0 : -1;
}

static void machine(uint8_t out[32], unsigned n) {
    memset(out, 0x6b, 32);
    memcpy(out, &n, sizeof n);
}

static grpc_status_code activate(act_server *s, const char *key, unsigned m, char license_id[33]) {
    uint8_t id[32];
    machine(id, m);
    return act_activate(s->ch, key, id, license_id, NULL);
}

static grpc_status_code renew(act_server *s, const char *license_id, unsigned m) {
    uint8_t id[32];
    machine(id, m);
    return act_by_license(s->ch, PLACE_OP_RENEW, license_id, id, m);
}

static size_t listed_machines(act_server *s, const char *key, unsigned m) {
    uint8_t id[32];
    size_t n = 0;
    machine(id, m);
    act_list_machines(s->ch, key, id, &n);
    return n;
}

typedef struct client {
    run *r;
    int t;
    bool reshard; /* the load under the reshard: other machines than the measured load's */
    pthread_t thread;
} client;

/* A Renew of a license just granted while slots move: OK, or briefly
 * UNAVAILABLE; anything else is wrong. */
static void renew_during(run *r, const char *license_id, unsigned m) {
    grpc_status_code st = renew(&r->s, license_id, m);
    if (st == GRPC_STATUS_OK) atomic_fetch_add(&r->renewed, 1);
    else if (st != GRPC_STATUS_UNAVAILABLE) atomic_fetch_add(&r->wrong, 1);
}

static void *client_run(void *arg) {
    client *c = arg;
    run *r = c->r;
    for (int i = 0; c->reshard ? atomic_load(&r->resharding) : i < CALLS; i++) {
        unsigned m =
            (unsigned)r->masters * 1000000u + (c->reshard ? 500000u : 0) + (unsigned)c->t * 50000u + (unsigned)i;
        bool sampled = i % SAMPLE_EVERY == SAMPLE_EVERY - 1;
        int k = (c->t * 7 + i) % NKEYS;
        char lic[33];
        grpc_status_code st = activate(&r->s, sampled ? r->sampled : r->keys[k], m, lic);
        atomic_fetch_add(&r->calls, 1);
        if (c->reshard && st == GRPC_STATUS_OK && i % 3 == 0) renew_during(r, lic, m);
        if (st == GRPC_STATUS_OK && sampled) atomic_fetch_add(&r->sampled_grants, 1);
        else if (st == GRPC_STATUS_OK) atomic_fetch_add(&r->grants[k], 1), atomic_store(&r->last_machine[k], m);
        else if (st == GRPC_STATUS_UNAVAILABLE && !sampled) atomic_fetch_add(&r->unavailable[k], 1);
        else if (st != GRPC_STATUS_UNAVAILABLE) atomic_fetch_add(&r->wrong, 1);
    }
    rpc_client_thread_done();
    return NULL;
}

static void *reshard_run(void *arg) {
    run *r = arg;
    const char *args[] = {"--cluster-from",  r->c.id[1], "--cluster-to",  r->c.id[2],
                          "--cluster-slots", "1000",     "--cluster-yes", NULL};
    if (cluster_fixture_cli(&r->c, "reshard", args) != 0) atomic_fetch_add(&r->wrong, 1000000);
    atomic_store(&r->resharding, false);
    return NULL;
}

/* The measured load (reshard false: CALLS per thread), or a load for as
 * long as the reshard runs. */
static void load(run *r, bool reshard) {
    client cs[THREADS];
    pthread_t rt;
    atomic_store(&r->resharding, reshard);
    int calls0 = atomic_load(&r->calls);
    uint64_t t0 = pa_mono_ns();
    for (int t = 0; t < THREADS; t++) {
        cs[t] = (client){.r = r, .t = t, .reshard = reshard};
        assert_int_equal(pthread_create(&cs[t].thread, NULL, client_run, &cs[t]), 0);
    }
    if (reshard) assert_int_equal(pthread_create(&rt, NULL, reshard_run, r), 0);
    if (reshard) pthread_join(rt, NULL);
    for (int t = 0; t < THREADS; t++) pthread_join(cs[t].thread, NULL);
    double per_s = (atomic_load(&r->calls) - calls0) / ((double)(pa_mono_ns() - t0) / 1e9);
    if (!reshard) r->per_s = per_s;
}

typedef struct trail_wait {
    long before, want; /* entries before the run, and how many it must add */
} trail_wait;

static bool trail_reached(void *arg) {
    trail_wait *w = arg;
    long dups = 0;
    return env_trail_count(&E, "queue", &dups) - w->before >= w->want;
}

/* The places each key lists match what the clients were granted. */
static void check_places(run *r) {
    for (int k = 0; k < NKEYS; k++) {
        int g = atomic_load(&r->grants[k]), u = atomic_load(&r->unavailable[k]);
        if (g == 0) continue;
        size_t n = listed_machines(&r->s, r->keys[k], atomic_load(&r->last_machine[k]));
        if (n < (size_t)g || n > (size_t)(g + u))
            fprintf(stderr, "key %d: %zu places, %d grants, %d unavailable\n", k, n, g, u);
        assert_true(n >= (size_t)g && n <= (size_t)(g + u));
    }
}

/* ---- revocations of groups on every master, across a server restart ---- */

enum { FORGED = 2 }; /* forged keys per master's group */

typedef struct revoked_key {
    uint32_t group; /* a sampled group whose record master m owns */
    int master;     /* m */
    uint32_t serial;
    char key[PK_TEXT_LEN + 1]; /* its second value forged: the audit server revokes it */
    char license_id[33];       /* granted before the revocation */
    unsigned machine;
} revoked_key;

/* The keystore CLI with both stores (Redis A the cluster) after `args`;
 * its stdout (caller frees), or NULL when it does not exit 0. */
static char *keystore(run *r, const char *const *args) {
    const char *argv[32];
    char bin[4096], url_a[1024], url_b[256];
    int n = 0;
    snprintf(bin, sizeof bin, "%s", fixture_bin("keystore/keystore"));
    cluster_fixture_url(&r->c, "keystore", FIXTURE_PW_KEYSTORE, url_a, sizeof url_a);
    redis_fixture_url(&E.b, "keystore", url_b, sizeof url_b);
    argv[n++] = bin;
    for (; *args; args++) argv[n++] = *args;
    const char *st[] = {"--activation-redis", url_a,   "--audit-redis", url_b,
                        "--activation-kek",   E.kek_a, "--audit-kek",   E.kek_b};
    for (int i = 0; i < 8; i++) argv[n++] = st[i];
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    int rc = fixture_run((char *const *)argv, &out, &err);
    if (rc != 0) fprintf(stderr, "keystore %s %s: exit %d: %s\n", argv[1], argv[2], rc, err ? err : "");
    free(err);
    if (rc != 0) free(out);
    return rc == 0 ? out : NULL;
}

/* A sampled group made by the keystore CLI on master m (as the map is
 * now), and FORGED keys of it with a wrong second value. */
static void forged_on(run *r, int m, revoked_key *out) {
    char gkey[PA_RKEY_MAX], id[16];
    uint32_t g = 7900 + 100 * (uint32_t)m;
    for (;; g++) {
        pa_rkey_group(gkey, sizeof gkey, g);
        if (cluster_fixture_owner(&r->c, redis_slot_of(gkey, strlen(gkey))) == m) break;
    }
    snprintf(id, sizeof id, "%u", g);
    const char *create[] = {
        "group",        "create",  "--id",           id,   "--product", "Revoked", "--audit-rate", "100",
        "--audit-mode", "offline", "--max-machines", "10", NULL};
    char *o = keystore(r, create);
    assert_non_null(o);
    free(o);
    char count[8];
    snprintf(count, sizeof count, "%d", FORGED);
    char *keys = keystore(r, (const char *const[]){"keys", "generate", "--group", id, "--count", count, NULL});
    assert_non_null(keys);
    for (int k = 0; k < FORGED; k++) {
        revoked_key *v = &out[k];
        pk_fields f;
        assert_int_equal(pk_decode(keys + k * (PK_TEXT_LEN + 1), PK_TEXT_LEN, &f, NULL), PK_OK);
        f.security_second ^= 1;
        *v = (revoked_key){.group = g, .master = m, .serial = f.serial, .machine = 8000000u + g * 10u + (unsigned)k};
        assert_int_equal(pk_encode(&f, v->key), 0);
    }
    free(keys);
}

static bool all_refused(void *arg) {
    run *r = ((void **)arg)[0];
    revoked_key *v = ((void **)arg)[1];
    for (int i = 0; i < 3 * FORGED; i++)
        if (renew(&r->s, v[i].license_id, v[i].machine) != GRPC_STATUS_FAILED_PRECONDITION) return false;
    return true;
}

/* Whether master m itself (no redirect) holds serial in the group's revoked set. */
static long long revoked_on(run *r, const revoked_key *v) {
    redisContext *c = cluster_fixture_connect(&r->c, v->master);
    assert_non_null(c);
    char key[PA_RKEY_MAX];
    pa_rkey_revoked(key, sizeof key, v->group);
    long long n = env_int(c, "SISMEMBER %s %u", key, (unsigned)v->serial);
    redisFree(c);
    return n;
}

/* Forged keys of groups on every master are granted (sampled offline),
 * then the server is killed before it can forward and pull them all and
 * started again: the audit server revokes each, the puller applies each
 * once (one `audit.revocation.applied` per entry over both lives), and
 * Renew and Activate are then refused. */
static void revoke_on_every_master(run *r) {
    static revoked_key v[3 * FORGED];
    for (int m = 0; m < 3; m++) forged_on(r, m, &v[m * FORGED]);
    for (int i = 0; i < 3 * FORGED; i++)
        assert_int_equal(activate(&r->s, v[i].key, v[i].machine, v[i].license_id), GRPC_STATUS_OK);
    int before = act_log_count(r->s.log, "audit.revocation.applied");
    rpc_channel_free(r->s.ch);
    r->s.ch = NULL;
    assert_int_equal(fixture_stop(r->s.pid, SIGKILL, 10000), 128 + SIGKILL);
    r->s.pid = -1;
    assert_int_equal(start_act(r), 0);
    void *arg[2] = {r, v};
    assert_true(env_wait(all_refused, arg, 30000));
    for (int i = 0; i < 3 * FORGED; i++) {
        assert_int_equal(revoked_on(r, &v[i]), 1);
        assert_int_equal(activate(&r->s, v[i].key, v[i].machine + 1, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    }
    assert_int_equal(act_log_count(r->s.log, "audit.revocation.applied"), 3 * FORGED);
    print_message(
        "  %d revocations on 3 masters applied once, %d of them before the SIGKILL; %d Renews OK during "
        "the reshard\n",
        3 * FORGED, before, atomic_load(&r->renewed));
}

static void one_run(run *r) {
    assert_int_equal(prepare(r), 0);
    bool on[CLUSTER_FIXTURE_NODES_MAX] = {false};
    int used = 0;
    for (int g = 0; g < NG; g++) { /* the groups live on every master */
        char gk[32];
        snprintf(gk, sizeof gk, "{g:%u}:group", group_of(r, g));
        int o = cluster_fixture_owner(&r->c, redis_slot_of(gk, strlen(gk)));
        assert_true(o >= 0);
        if (!on[o]) on[o] = true, used++;
    }
    assert_int_equal(used, r->masters);
    assert_int_equal(start_act(r), 0);
    long dups = 0;
    trail_wait tw = {.before = env_trail_count(&E, "queue", &dups)};
    load(r, false);
    if (r->masters > 1) load(r, true);
    assert_int_equal(atomic_load(&r->wrong), 0);
    if (r->masters > 1) assert_true(atomic_load(&r->renewed) > 0);
    check_places(r);
    tw.want = atomic_load(&r->sampled_grants);
    assert_true(tw.want > 0);
    assert_true(env_wait(trail_reached, &tw, 20000));
    /* Once each: no request id twice (other grants may be audited too, e.g.
     * a key's first activation, so the count is not compared). */
    assert_true(env_trail_count(&E, "queue", &dups) - tw.before >= tw.want);
    assert_int_equal(dups, 0);
    int unavailable = 0;
    for (int k = 0; k < NKEYS; k++) unavailable += atomic_load(&r->unavailable[k]);
    print_message("  %d master%s: %.0f Activate/s (%d threads x %d calls); %d calls in all, %d UNAVAILABLE%s\n",
                  r->masters, r->masters > 1 ? "s" : "", r->per_s, THREADS, CALLS, atomic_load(&r->calls), unavailable,
                  r->masters > 1 ? " (then a load during a 1000-slot reshard)" : "");
    if (r->masters > 1) revoke_on_every_master(r);
    assert_int_equal(stop_act(&r->s), 0);
    assert_int_equal(act_log_count(r->s.log, "CROSSSLOT"), 0);
    cluster_fixture_stop(&r->c);
}

static int setup(void **state) {
    (void)state;
    log_set_level(LOG_LEVEL_WARN);
    snprintf(signing_key, sizeof signing_key, "/nonexistent");
    if (env_start(&E) != 0) return -1;
    if (act_make_signing_key(&E, signing_key, sizeof signing_key) != 0 || env_start_server(&E) != 0) {
        env_stop(&E);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    env_stop(&E);
    return 0;
}

static void test_one_then_three_masters(void **state) {
    (void)state;
    static run one = {.masters = 1, .s.pid = -1}, three = {.masters = 3, .s.pid = -1};
    one_run(&one);
    one_run(&three);
    print_message("  Activate/s, 3 masters / 1 master: %.2f (indicative: one shared machine)\n",
                  three.per_s / one.per_s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_then_three_masters),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
