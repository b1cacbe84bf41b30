/* test_single_slot.c -- the activation server on Redis Cluster, where Redis
 * itself refuses a script or multi-key command whose keys span hash slots
 * (CROSSSLOT): one cluster-enabled redis-server owning all 16384 slots
 * (cluster_fixture.h, one master), reached through a redis-cluster:// URL,
 * so every call takes the split forms of docs/cluster.md ("Scripts that
 * cross slots"). Redis B and the audit server are as usual.
 *
 * Through the real gRPC API against the real binaries:
 *   - Activate, Renew, Deactivate and ListMachines of a plain group, and a
 *     wrong first security value (the reject call), all answered as on a
 *     single node;
 *   - a burst of concurrent Activates (good keys and wrong first values),
 *     which the server answers in batches: the address takes pipelined,
 *     then the group scripts; each call gets its own answer, and licenses
 *     share signatures (tree_size > 1); then their Renews, then their
 *     Deactivates (some proven by another place key: refused, the place
 *     kept), each burst answered in batches the same way;
 *   - the address limit (address_take.lua first): a server with a burst of
 *     2 per address grants two activations and refuses the third with
 *     RESOURCE_EXHAUSTED, the bucket rl:a:127.0.0.1 in Redis;
 *   - a sampled group's grant writes its outbox record to the shard of the
 *     group's slot ({ob:N}:outbox, never audit:outbox); the forwarder takes
 *     it to the audit server, which finds the key forged and revokes it;
 *     the revocation puller applies it ({rev}:last_seq moves) and Renew of
 *     that license is then refused;
 *   - a revocation position left under the names of earlier releases
 *     (revocations:*, three slots) is copied to the {rev} names at start,
 *     then re-synced (its epoch is not the audit log's);
 *   - a volume order (imported with `activation-server order import` on
 *     the cluster): Activate of a volume key, a heartbeat Renew, Deactivate
 *     (volume.lua on the order's slot alone, the address take and the
 *     revocation read first); a sampled order's forged volume key is
 *     judged by the audit server (its record in the order's slot's shard),
 *     revoked, and once the puller applied it refused;
 *   - the groups were created by the keystore library on the cluster (the
 *     record, then the `groups` index: two calls);
 *   - the server's log never shows CROSSSLOT. */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "act_calls.h"
#include "activation/v1/activation.pb-c.h"
#include "audit_env.h"
#include "cluster_fixture.h"
#include "log.h"
#include "outbox_shards.h"
#include "place_proof.h"
#include "redis_keys.h"
#include "rpc_client.h"
#include "rpc_methods.h"

enum {
    G_PLAIN = 7101,          /* not sampled */
    G_SAMPLED = 7102,        /* every activation audited offline */
    G_VOLUME = 7103,         /* a concurrent order's group */
    G_VOLUME_SAMPLED = 7104, /* a permanent order's group, every activation audited offline */
};

#define ORDER_CONC "30000101"    /* the concurrent order of G_VOLUME */
#define ORDER_SAMPLED "30000102" /* the permanent order of G_VOLUME_SAMPLED */

#define REVOKE_WAIT_MS 20000 /* bound for "forwarded, judged, revoked, pulled" */

static audit_env E;
static cluster_fixture C;
static char signing_key[400];
static char order_key[400], order_pub[400]; /* the vendor's order-signing key pair */
static act_server S = {.name = "act-cluster", .pid = -1}, TIGHT = {.name = "act-tight", .pid = -1};

/* `address_rate` and `address_burst`: --rate-address-per-s and -burst. */
static int start_act(act_server *s, const char *address_rate, const char *address_burst) {
    char url[1024];
    cluster_fixture_url(&C, "activation", FIXTURE_PW_ACTIVATION, url, sizeof url);
    const char *extra[] = {"--workers",
                           "2",
                           "--log-level",
                           "debug",
                           "--rate-address-per-s",
                           address_rate,
                           "--rate-address-burst",
                           address_burst,
                           "--audit-flush-ms",
                           "5000",
                           "--order-public-key",
                           order_pub,
                           NULL};
    return act_server_start(s, &E, url, signing_key, extra);
}

static int stop_act(act_server *s, int sig) { return act_server_stop(s, sig); }

static void tune_plain(group_record *r) {
    r->policy.max_machines = 100;
    r->policy.audit_rate_ppm = 0;
}
static void tune_sampled(group_record *r) {
    r->policy.max_machines = 100;
    r->policy.audit_rate_ppm = 1000000;
    r->policy.audit = AUDIT_MODE_OFFLINE;
}

static void tune_volume(group_record *r) {
    r->policy.max_machines = 100;
    r->channel = GROUP_CHANNEL_VOLUME;
}
static void tune_volume_sampled(group_record *r) {
    tune_sampled(r);
    r->channel = GROUP_CHANNEL_VOLUME;
}

/* The license signing key, and the vendor's order-signing pair. */
static int make_keys(void) {
    snprintf(order_key, sizeof order_key, "%s/order-vendor.pem", E.dir);
    snprintf(order_pub, sizeof order_pub, "%s/order-vendor.pub.pem", E.dir);
    char *gen[] = {"/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out", order_key, NULL};
    char *pub[] = {"/usr/bin/openssl", "pkey", "-in", order_key, "-pubout", "-out", order_pub, NULL};
    return act_make_signing_key(&E, signing_key, sizeof signing_key) == 0 && fixture_run(gen, NULL, NULL) == 0 &&
                   fixture_run(pub, NULL, NULL) == 0
               ? 0
               : -1;
}

/* Redis A's users now on the cluster's one master: the keystore library
 * and the test's own reads go there. */
static int move_to_cluster(void) {
    if (cluster_fixture_start(&C, 1, 0) != 0) return -1;
    redisFree(E.ks_a);
    redisFree(E.act_a);
    E.ks_a = redis_fixture_connect(&C.node[0], "keystore", FIXTURE_PW_KEYSTORE);
    E.act_a = redis_fixture_connect(&C.node[0], "activation", FIXTURE_PW_ACTIVATION);
    return E.ks_a && E.act_a ? 0 : -1;
}

#define OLD_EPOCH "0123456789abcdef0123456789abcdef"

/* A position under the old names, as an earlier release left it. */
static int seed_old_position(void) {
    const char *set[][2] = {{PA_RKEY_REVOCATIONS_OLD_LAST_SEQ, "5"},
                            {PA_RKEY_REVOCATIONS_OLD_EPOCH, OLD_EPOCH},
                            {PA_RKEY_REVOCATIONS_OLD_LAST_ID, "5-0"}};
    for (int i = 0; i < 3; i++) {
        redisReply *r = redisCommand(E.act_a, "SET %s %s", set[i][0], set[i][1]);
        bool ok = r && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (!ok) return -1;
    }
    return 0;
}

/* `keystore order create` (an order file) and `activation-server order
 * import` on the cluster, as the keystore user (before the server starts,
 * so its order cache holds the order from the first call). */
static int import_order(const char *serial, unsigned group, const char *mode) {
    char g[16], path[400], url[1024];
    snprintf(g, sizeof g, "%u", group);
    snprintf(path, sizeof path, "%s/%s.license", E.dir, serial);
    const char *create[] = {fixture_bin("keystore/keystore"),
                            "order",
                            "create",
                            "--order-key",
                            order_key,
                            "--out",
                            path,
                            "--serial",
                            serial,
                            "--customer",
                            "Example Corp",
                            "--group",
                            g,
                            "--product",
                            "Office",
                            "--edition",
                            "Enterprise",
                            "--mode",
                            mode,
                            "--seats",
                            "50",
                            "--valid-from",
                            "2020-01-01",
                            "--valid-until",
                            "2099-12-31",
                            NULL};
    char *err = NULL;
    int st = fixture_run((char *const *)create, NULL, &err);
    if (st) fprintf(stderr, "order create: %s\n", err ? err : "");
    free(err);
    if (st) return -1;
    cluster_fixture_url(&C, "keystore", FIXTURE_PW_KEYSTORE, url, sizeof url);
    const char *import[] = {fixture_bin("activation-server/activation-server"),
                            "order",
                            "import",
                            path,
                            "--order-public-key",
                            order_pub,
                            "--redis-url",
                            url,
                            NULL};
    err = NULL;
    st = fixture_run((char *const *)import, NULL, &err);
    if (st) fprintf(stderr, "order import: %s\n", err ? err : "");
    free(err);
    return st ? -1 : 0;
}

static int setup(void **state) {
    (void)state;
    log_set_level(LOG_LEVEL_WARN);
    if (env_start(&E) != 0 || make_keys() != 0 || move_to_cluster() != 0) goto fail;
    if (env_create_group_with(&E, G_PLAIN, tune_plain) != 0 ||
        env_create_group_with(&E, G_SAMPLED, tune_sampled) != 0 ||
        env_create_group_with(&E, G_VOLUME, tune_volume) != 0 ||
        env_create_group_with(&E, G_VOLUME_SAMPLED, tune_volume_sampled) != 0 ||
        import_order(ORDER_CONC, G_VOLUME, "concurrent") != 0 ||
        import_order(ORDER_SAMPLED, G_VOLUME_SAMPLED, "permanent") != 0)
        goto fail;
    if (env_start_server(&E) != 0 || seed_old_position() != 0 || start_act(&S, "1000", "1000") != 0) goto fail;
    return 0;
fail:
    stop_act(&S, SIGKILL);
    cluster_fixture_stop(&C);
    env_stop(&E);
    return -1;
}

static bool log_has(const act_server *s, const char *needle) { return act_log_count(s->log, needle) > 0; }

static int teardown(void **state) {
    (void)state;
    bool crossslot = log_has(&S, "CROSSSLOT") || (TIGHT.log[0] && log_has(&TIGHT, "CROSSSLOT"));
    int st = stop_act(&S, SIGTERM);
    if (TIGHT.pid > 0) stop_act(&TIGHT, SIGTERM);
    cluster_fixture_stop(&C);
    env_stop(&E);
    if (crossslot) fprintf(stderr, "an activation server's log shows CROSSSLOT\n");
    return st == 0 && !crossslot ? 0 : -1;
}

/* ---------------------------------------------------------------- calls */

static void machine(uint8_t out[32], unsigned n) {
    memset(out, 0x5a, 32);
    memcpy(out, &n, sizeof n);
}

static void key_of(uint32_t group, uint32_t serial, bool genuine, char text[PK_TEXT_LEN + 1]) {
    assert_int_equal(env_make_key(&E, group, serial, genuine, NULL, text), 0);
}

/* Activate for machine m; the license id to `license_id` on OK (if not
 * NULL), and the licenses signed with it to `tree_size` (if not NULL). */
static grpc_status_code activate_tree(act_server *s, const char *key, unsigned m, char license_id[33],
                                      uint32_t *tree_size) {
    uint8_t id[32];
    machine(id, m);
    return act_activate(s->ch, key, id, license_id, tree_size);
}

static grpc_status_code activate(act_server *s, const char *key, unsigned m, char license_id[33]) {
    return activate_tree(s, key, m, license_id, NULL);
}

/* Renew or Deactivate, proven with machine m's place key. */
static grpc_status_code by_license(act_server *s, place_op op, const char *license_id, unsigned m) {
    uint8_t id[32];
    machine(id, m);
    return act_by_license(s->ch, op, license_id, id, m + 3);
}

/* ListMachines, authorised by the product key: how many places it lists. */
static grpc_status_code list_machines(act_server *s, const char *key, unsigned m, size_t *listed) {
    uint8_t id[32];
    machine(id, m);
    return act_list_machines(s->ch, key, id, listed);
}

/* ---------------------------------------------------------------- tests */

static bool copied_and_resynced(void *arg) {
    (void)arg;
    redisReply *r = redisCommand(E.act_a, "GET %s", PA_RKEY_REVOCATIONS_EPOCH);
    bool moved = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, OLD_EPOCH) != 0;
    freeReplyObject(r);
    return moved && log_has(&S, "audit.revocations.position_copied") && log_has(&S, "audit.revocations.resync");
}

static void test_old_position_copied(void **state) {
    (void)state;
    assert_true(env_wait(copied_and_resynced, NULL, 10000));
}

static void test_activate_renew_deactivate(void **state) {
    (void)state;
    char key[PK_TEXT_LEN + 1], wrong[PK_TEXT_LEN + 1], lic[33];
    key_of(G_PLAIN, 11, true, key);
    assert_int_equal(activate(&S, key, 1, lic), GRPC_STATUS_OK);
    assert_int_equal(activate(&S, key, 2, NULL), GRPC_STATUS_OK);
    assert_int_equal(by_license(&S, PLACE_OP_RENEW, lic, 1), GRPC_STATUS_OK);
    size_t listed = 0;
    assert_int_equal(list_machines(&S, key, 1, &listed), GRPC_STATUS_OK);
    assert_int_equal(listed, 2);
    assert_int_equal(by_license(&S, PLACE_OP_DEACTIVATE, lic, 1), GRPC_STATUS_OK);
    assert_int_equal(list_machines(&S, key, 2, &listed), GRPC_STATUS_OK);
    assert_int_equal(listed, 1);
    assert_int_equal(by_license(&S, PLACE_OP_RENEW, lic, 1), GRPC_STATUS_NOT_FOUND); /* its place is gone */
    /* A wrong first value: the reject call (address take, then the group's failure bucket). */
    pk_fields f;
    assert_int_equal(env_make_key(&E, G_PLAIN, 13, true, &f, wrong), 0);
    f.security_first ^= 1;
    assert_int_equal(pk_encode(&f, wrong), 0);
    assert_int_equal(activate(&S, wrong, 3, NULL), GRPC_STATUS_PERMISSION_DENIED);
    assert_int_equal(env_int(E.act_a, "EXISTS %s", "rl:a:127.0.0.1"), 1);
}

#define BURST 24

typedef struct burst_call {
    char key[PK_TEXT_LEN + 1];  /* the call's key */
    unsigned machine;           /* its machine */
    grpc_status_code want, got; /* the status it must get, and got */
    uint32_t tree_size;         /* OK: licenses signed together with it */
    char license_id[33];        /* OK: its license, renewed in the second burst */
    grpc_status_code renewed;   /* the Renew's status */
    bool wrong_key;             /* its Deactivate is proven by another place key */
    grpc_status_code freed;     /* the Deactivate's status */
    pthread_barrier_t *start;   /* all calls leave together */
} burst_call;

static void *run_call(void *p) {
    burst_call *c = p;
    pthread_barrier_wait(c->start);
    c->got = activate_tree(&S, c->key, c->machine, c->license_id, &c->tree_size);
    return NULL;
}

static void *run_renew(void *p) {
    burst_call *c = p;
    pthread_barrier_wait(c->start);
    c->renewed = c->got == GRPC_STATUS_OK ? by_license(&S, PLACE_OP_RENEW, c->license_id, c->machine) : GRPC_STATUS_OK;
    return NULL;
}

/* The server's Deactivate batches so far (the histogram's count or sum). */
static double deactivate_batches(const char *part) {
    char series[160];
    snprintf(series, sizeof series, "pa_batch_calls_%s{method=\"" PA_RPC_DEACTIVATE_LABEL "\"}", part);
    char *text = fixture_http_get("127.0.0.1", S.metrics_port, "/metrics");
    double v = fixture_metric(text, series, 0);
    free(text);
    return v;
}

/* Deactivate of a granted call's license, by its own place key or
 * (wrong_key) another's. */
static void *run_deactivate(void *p) {
    burst_call *c = p;
    pthread_barrier_wait(c->start);
    uint8_t id[32];
    machine(id, c->machine);
    c->freed = c->got != GRPC_STATUS_OK ? GRPC_STATUS_OK
                                        : act_by_license(S.ch, PLACE_OP_DEACTIVATE, c->license_id, id,
                                                         c->machine + 3 + (c->wrong_key ? 1000 : 0));
    return NULL;
}

/* The granted calls' Deactivates at once (the Deactivate batch's two round
 * trips): the right key frees the place (Renew then refused), a wrong
 * one is refused and the place stays (Renew OK). */
static void deactivate_burst(burst_call *c, int n) {
    pthread_t t[BURST];
    pthread_barrier_t start;
    double batches = deactivate_batches("count"), calls = deactivate_batches("sum");
    assert_int_equal(pthread_barrier_init(&start, NULL, (unsigned)n), 0);
    for (int i = 0; i < n; i++) c[i].start = &start;
    for (int i = 0; i < n; i++) assert_int_equal(pthread_create(&t[i], NULL, run_deactivate, &c[i]), 0);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    int sent = 0;
    for (int i = 0; i < n; i++) sent += c[i].got == GRPC_STATUS_OK;
    assert_true(deactivate_batches("sum") - calls == sent);    /* through the batch handler, */
    assert_true(deactivate_batches("count") - batches < sent); /* some of them together */
    for (int i = 0; i < n; i++) {
        if (c[i].got != GRPC_STATUS_OK) continue;
        assert_int_equal(c[i].freed, c[i].wrong_key ? GRPC_STATUS_UNAUTHENTICATED : GRPC_STATUS_OK);
        grpc_status_code renewed = by_license(&S, PLACE_OP_RENEW, c[i].license_id, c[i].machine);
        if (c[i].wrong_key) assert_int_equal(renewed, GRPC_STATUS_OK);
        else assert_int_not_equal(renewed, GRPC_STATUS_OK);
    }
}

static void test_burst_in_batches(void **state) {
    (void)state;
    static burst_call c[BURST];
    pthread_t t[BURST];
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, BURST), 0);
    for (int i = 0; i < BURST; i++) {
        pk_fields f;
        c[i] = (burst_call){.machine = 100 + (unsigned)i, .want = GRPC_STATUS_OK, .start = &start};
        assert_int_equal(env_make_key(&E, G_PLAIN, 100 + (uint32_t)i, true, &f, c[i].key), 0);
        if (i % 6 == 5) { /* a wrong first value: its reject call joins the batch */
            f.security_first ^= 1;
            assert_int_equal(pk_encode(&f, c[i].key), 0);
            c[i].want = GRPC_STATUS_PERMISSION_DENIED;
        }
    }
    for (int i = 0; i < BURST; i++) assert_int_equal(pthread_create(&t[i], NULL, run_call, &c[i]), 0);
    for (int i = 0; i < BURST; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    uint32_t most = 0;
    for (int i = 0; i < BURST; i++) {
        if (c[i].got != c[i].want) fprintf(stderr, "burst call %d: %d, not %d\n", i, c[i].got, c[i].want);
        assert_int_equal(c[i].got, c[i].want);
        if (c[i].tree_size > most) most = c[i].tree_size;
    }
    print_message("  burst: at most %u licenses signed together\n", most);
    assert_true(most > 1); /* some calls were answered as one batch */
    /* The granted ones renewed at once: the Renew batch's two round trips. */
    assert_int_equal(pthread_barrier_init(&start, NULL, BURST), 0);
    for (int i = 0; i < BURST; i++) assert_int_equal(pthread_create(&t[i], NULL, run_renew, &c[i]), 0);
    for (int i = 0; i < BURST; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < BURST; i++) assert_int_equal(c[i].renewed, GRPC_STATUS_OK);
    for (int i = 0; i < BURST; i++) c[i].wrong_key = i % 6 == 0;
    deactivate_burst(c, BURST);
}

static void test_address_limit(void **state) {
    (void)state;
    assert_int_equal(start_act(&TIGHT, "0.001", "2"), 0);
    char key[PK_TEXT_LEN + 1];
    key_of(G_PLAIN, 12, true, key);
    redisReply *r = redisCommand(E.act_a, "DEL rl:a:127.0.0.1");
    freeReplyObject(r);
    assert_int_equal(activate(&TIGHT, key, 21, NULL), GRPC_STATUS_OK);
    assert_int_equal(activate(&TIGHT, key, 22, NULL), GRPC_STATUS_OK);
    assert_int_equal(activate(&TIGHT, key, 23, NULL), GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(env_int(E.act_a, "HLEN %s", "{g:7101}:k:12"), 3); /* two places and the use count: no third */
    assert_int_equal(stop_act(&TIGHT, SIGTERM), 0);
    r = redisCommand(E.act_a, "DEL rl:a:127.0.0.1"); /* the drained bucket is the other server's too */
    freeReplyObject(r);
}

typedef struct renewal {
    const char *license_id; /* the forged key's license */
    unsigned m;             /* its machine */
} renewal;

static bool renew_refused(void *arg) {
    renewal *r = arg;
    return by_license(&S, PLACE_OP_RENEW, r->license_id, r->m) == GRPC_STATUS_FAILED_PRECONDITION;
}

static void test_sampled_grant_reaches_audit_and_is_revoked(void **state) {
    (void)state;
    char forged[PK_TEXT_LEN + 1], lic[33], shard[PA_RKEY_MAX];
    assert_int_equal(outbox_shard_for_key("{g:7102}:group", shard, sizeof shard), 0);
    long long seq_before = env_int(E.act_a, "GET %s", PA_RKEY_REVOCATIONS_LAST_SEQ);
    key_of(G_SAMPLED, 5, false, forged);
    assert_int_equal(activate(&S, forged, 31, lic), GRPC_STATUS_OK);
    /* Its record went to the group's shard (it may already be forwarded:
     * the consumer group on the shard then exists). */
    assert_true(env_int(E.act_a, "EXISTS %s", shard) == 1);
    assert_int_equal(env_int(E.act_a, "EXISTS %s", PA_RKEY_OUTBOX), 0);
    renewal r = {lic, 31};
    assert_true(env_wait(renew_refused, &r, REVOKE_WAIT_MS));
    assert_true(env_int(E.act_a, "GET %s", PA_RKEY_REVOCATIONS_LAST_SEQ) > seq_before);
    assert_int_equal(env_int(E.act_a, "SISMEMBER %s 5", "{g:7102}:revoked"), 1);
    assert_int_equal(activate(&S, forged, 32, NULL), GRPC_STATUS_FAILED_PRECONDITION);
}

typedef struct first_grant {
    const char *key; /* the volume key */
    unsigned m;      /* its machine */
    char *license_id;
} first_grant;

static bool volume_granted(void *arg) {
    first_grant *f = arg;
    return activate(&S, f->key, f->m, f->license_id) == GRPC_STATUS_OK;
}

/* The last machine-log entry's field `name` of an order, or "". */
static void mlog_field(const char *serial, const char *name, char *out, size_t n) {
    char key[PA_RKEY_MAX];
    snprintf(key, sizeof key, PA_RKEY_ORDER_MLOG_FMT, serial);
    out[0] = 0;
    redisReply *r = redisCommand(E.act_a, "XREVRANGE %s + - COUNT 1", key);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->elements == 2) {
        const redisReply *f = r->element[0]->element[1];
        for (size_t i = 0; i + 1 < f->elements; i += 2)
            if (strcmp(f->element[i]->str, name) == 0) snprintf(out, n, "%s", f->element[i + 1]->str);
    }
    freeReplyObject(r);
}

static void test_volume_order(void **state) {
    (void)state;
    char key[PK_TEXT_LEN + 1], lic[33], g[16];
    key_of(G_VOLUME, 41, true, key);
    first_grant f = {key, 41, lic};
    assert_true(env_wait(volume_granted, &f, 10000));
    assert_int_equal(env_int(E.act_a, "HLEN %s", "{o:" ORDER_CONC "}:m"), 1); /* the order's machine table */
    mlog_field(ORDER_CONC, "g", g, sizeof g);
    assert_string_equal(g, "7103"); /* the machine log names the key's group without reading its set */
    assert_int_equal(by_license(&S, PLACE_OP_RENEW, lic, 41), GRPC_STATUS_OK); /* the heartbeat */
    mlog_field(ORDER_CONC, "op", g, sizeof g);
    assert_string_equal(g, "r");
    assert_int_equal(by_license(&S, PLACE_OP_DEACTIVATE, lic, 41), GRPC_STATUS_OK);
    mlog_field(ORDER_CONC, "op", g, sizeof g);
    assert_string_equal(g, "d");
    assert_int_not_equal(by_license(&S, PLACE_OP_RENEW, lic, 41), GRPC_STATUS_OK); /* gone */
    assert_int_equal(env_int(E.act_a, "HLEN %s", "{o:" ORDER_CONC "}:m"), 0);
}

/* Concurrent volume Activates, then their heartbeats: the batches take
 * every address and read every revocation in one round trip, then run
 * volume.lua on the order's slot. */
static void test_volume_burst(void **state) {
    (void)state;
    enum { N = 12 };
    static burst_call c[N];
    pthread_t t[N];
    pthread_barrier_t start;
    char key[PK_TEXT_LEN + 1];
    key_of(G_VOLUME, 42, true, key);
    assert_int_equal(pthread_barrier_init(&start, NULL, N), 0);
    for (int i = 0; i < N; i++) {
        c[i] = (burst_call){.machine = 300 + (unsigned)i, .want = GRPC_STATUS_OK, .start = &start};
        snprintf(c[i].key, sizeof c[i].key, "%s", key);
    }
    for (int i = 0; i < N; i++) assert_int_equal(pthread_create(&t[i], NULL, run_call, &c[i]), 0);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    uint32_t most = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].got, GRPC_STATUS_OK);
        if (c[i].tree_size > most) most = c[i].tree_size;
    }
    print_message("  volume burst: at most %u licenses signed together\n", most);
    assert_int_equal(env_int(E.act_a, "HLEN %s", "{o:" ORDER_CONC "}:m"), N);
    assert_int_equal(pthread_barrier_init(&start, NULL, N), 0);
    for (int i = 0; i < N; i++) assert_int_equal(pthread_create(&t[i], NULL, run_renew, &c[i]), 0);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < N; i++) assert_int_equal(c[i].renewed, GRPC_STATUS_OK);
    for (int i = 0; i < N; i++) c[i].wrong_key = i == 0;
    deactivate_burst(c, N); /* volume.lua's deactivate, pipelined on the order's slot */
    assert_int_equal(env_int(E.act_a, "HLEN %s", "{o:" ORDER_CONC "}:m"), 1);
}

static void test_volume_key_revoked(void **state) {
    (void)state;
    char forged[PK_TEXT_LEN + 1], lic[33], shard[PA_RKEY_MAX];
    assert_int_equal(outbox_shard_for_key("{o:" ORDER_SAMPLED "}:m", shard, sizeof shard), 0);
    key_of(G_VOLUME_SAMPLED, 6, false, forged);
    first_grant f = {forged, 51, lic};
    assert_true(env_wait(volume_granted, &f, 10000));
    assert_true(env_int(E.act_a, "EXISTS %s", shard) == 1); /* the order's slot's shard */
    assert_int_equal(env_int(E.act_a, "EXISTS %s", PA_RKEY_OUTBOX), 0);
    renewal r = {lic, 51};
    assert_true(env_wait(renew_refused, &r, REVOKE_WAIT_MS));
    assert_int_equal(env_int(E.act_a, "SISMEMBER %s 6", "{g:7104}:revoked"), 1);
    assert_int_equal(activate(&S, forged, 52, NULL), GRPC_STATUS_FAILED_PRECONDITION);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_position_copied),
        cmocka_unit_test(test_activate_renew_deactivate),
        cmocka_unit_test(test_burst_in_batches),
        cmocka_unit_test(test_address_limit),
        cmocka_unit_test(test_sampled_grant_reaches_audit_and_is_revoked),
        cmocka_unit_test(test_volume_order),
        cmocka_unit_test(test_volume_burst),
        cmocka_unit_test(test_volume_key_revoked),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
