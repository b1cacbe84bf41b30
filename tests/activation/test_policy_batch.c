/* test_policy_batch.c -- policy.lua's batch operation through policy.c
 * (docs/batching.md, "One script call per batch"), against a real
 * redis-server as the activation user.
 *
 * Two groups set up alike get the same calls: one group's as one batch
 * (policy_batch_*), the other's one by one (policy_activate,
 * policy_reject). Every entry must answer what its single call answered --
 * grants, a machine again, no place, revoked, unknown group, not genuine
 * (a group that exists and one that does not), rate limited -- including
 * an entry whose call raises a Redis error in the middle, which fails
 * alone. Redis's command statistics must count one EVALSHA for the batch.
 * A layout that does not add up is refused whole, before any entry runs,
 * NOSCRIPT reads as "run each call again", and a Redis error on the batch
 * call answers every entry UNAVAILABLE. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_env.h"
#include "policy.h"
#include "redis_keys.h"

extern const char policy_lua[]; /* the script, as the server embeds it */

static act_env env;
static redisContext *admin; /* looks into Redis A, loads and flushes scripts */
static rstore *store;       /* the activation user, as a worker connects */
static int script;
static policy_limits open_limits;  /* no bucket reaches its limit */
static policy_limits tight_limits; /* one address token, refilling too slowly to matter */

enum { G_BATCH = 31, G_SINGLE = 32, G_GONE = 40 /* + the group's: never created */ };
enum { SERIAL_REVOKED = 2, SERIAL_BROKEN = 4 /* its record is a string: the call raises WRONGTYPE */ };

static void tune(group_record *r) { r->policy.max_machines = 1; }

static void cmd_ok(redisReply *r) {
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR) fprintf(stderr, "redis: %s\n", r->str);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

static int setup(void **state) {
    (void)state;
    if (env_start_stores(&env) != 0 || !(admin = env_measuring_connection(&env))) return -1;
    char url[256], err[256] = "";
    redis_fixture_url(&env.a, "activation", url, sizeof url);
    rstore_config cfg = {.url = url};
    if (!(store = rstore_new(&cfg, false, err, sizeof err))) {
        fprintf(stderr, "rstore: %s\n", err);
        return -1;
    }
    script = policy_register(store);
    policy_limits_set(&open_limits, 100000, 100000, 100000, 100000, 1);
    policy_limits_set(&tight_limits, 0.0001, 1, 100000, 100000, 1);
    policy_limits_set_group_failures(&open_limits, 100000, 100000);
    policy_limits_set_group_failures(&tight_limits, 100000, 100000);
    uint32_t groups[] = {G_BATCH, G_SINGLE};
    for (size_t i = 0; i < 2; i++) {
        if (env_create_group(&env, groups[i], tune) != 0) return -1;
        redisReply *r = redisCommand(admin, "SADD " PA_RKEY_REVOKED_FMT " %u", groups[i], SERIAL_REVOKED);
        if (!r) return -1;
        freeReplyObject(r);
        r = redisCommand(admin, "SET " PA_RKEY_RECORD_FMT " broken", groups[i], SERIAL_BROKEN);
        if (!r) return -1;
        freeReplyObject(r);
    }
    return script < 0 ? -1 : 0;
}

static int teardown(void **state) {
    (void)state;
    rstore_free(store);
    if (admin) redisFree(admin);
    env_stop(&env);
    return 0;
}

/* One call of the mix: an activate of (serial, machine) from address
 * `addr`, or a reject of a key of group (`gone`: one that does not exist). */
typedef struct mix_call {
    bool reject;
    uint32_t serial;
    unsigned machine;
    unsigned addr;
    bool tight; /* tight_limits: the address's second call is rate limited */
    bool gone;  /* a group never created */
    policy_status want;
} mix_call;

static const mix_call MIX[] = {
    {false, 1, 1, 1, false, false, POLICY_OK},
    {false, 1, 1, 1, false, false, POLICY_OK},       /* the same machine again */
    {false, 1, 2, 1, false, false, POLICY_NO_PLACE}, /* one place per key */
    {false, SERIAL_REVOKED, 3, 1, false, false, POLICY_REVOKED},
    {true, 0, 0, 2, false, false, POLICY_NOT_GENUINE},
    {false, SERIAL_BROKEN, 4, 1, false, false, POLICY_UNAVAILABLE}, /* raises: fails alone */
    {true, 0, 0, 2, false, true, POLICY_NOT_GENUINE},
    {false, 5, 5, 3, true, false, POLICY_OK},
    {false, 6, 6, 3, true, false, POLICY_RATE_LIMITED}, /* the address's one token is spent */
    {false, 7, 7, 1, false, true, POLICY_UNKNOWN_GROUP},
    {false, 8, 8, 1, false, false, POLICY_OK}, /* after the error */
};
#define N_MIX (sizeof MIX / sizeof MIX[0])

/* What call i of the mix sends, for group `group`. */
typedef struct mix_args {
    group_entry g;
    char address[PA_RKEY_MAX];
    uint8_t machine[MACHINE_ID_LEN];
    uint8_t random[LICENSE_RANDOM_LEN];
    const policy_limits *l;
} mix_args;

static void mix_args_for(const mix_call *c, uint32_t group, mix_args *a) {
    memset(a, 0, sizeof *a);
    uint32_t id = c->gone ? G_GONE + group : group;
    a->g.rec.id = id;
    group_entry_name_keys(&a->g, id);
    char ip[32];
    snprintf(ip, sizeof ip, "10.1.%u.%u", group, c->addr);
    policy_address_key(ip, a->address, sizeof a->address);
    env_machine(a->machine, c->machine);
    memset(a->random, (int)(c->machine + 1), sizeof a->random);
    a->l = c->tight ? &tight_limits : &open_limits;
}

static long long evalsha_calls(void) {
    long long n = redis_fixture_command_calls(admin, "evalsha");
    assert_true(n >= 0);
    return n;
}

/* The fields of a result that do not depend on the time of the call. */
static void assert_same(const policy_result *a, const policy_result *b, size_t i) {
    if (a->status != b->status)
        fprintf(stderr, "call %zu: %s batched, %s alone\n", i, policy_status_name(a->status),
                policy_status_name(b->status));
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->count, b->count);
    assert_int_equal(a->again, b->again);
    assert_int_equal(a->group_exists, b->group_exists);
    assert_int_equal(a->redis_error, b->redis_error);
    assert_memory_equal(a->random, b->random, sizeof a->random);
    assert_int_equal(a->expires_at == 0, b->expires_at == 0);
    if (a->status == POLICY_RATE_LIMITED) {
        assert_string_equal(a->scope, b->scope);
        assert_int_equal(a->retry_after_s > 0, b->retry_after_s > 0);
    }
}

/* The tight address's bucket (MIX[7] and [8]) of group `group`: its level
 * and its time to live, as stored. */
static void tight_bucket(uint32_t group, double *level, long long *pttl) {
    mix_args a;
    mix_args_for(&MIX[7], group, &a);
    redisReply *r = redisCommand(admin, "GET %s", a.address);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(r->len, 2 * sizeof(double)); /* struct.pack('<dd', level, ms), little-endian here */
    memcpy(level, r->str, sizeof *level);
    freeReplyObject(r);
    r = redisCommand(admin, "PTTL %s", a.address);
    assert_non_null(r);
    *pttl = r->integer;
    freeReplyObject(r);
}

static void test_batch_answers_as_single_calls(void **state) {
    (void)state;
    policy_result alone[N_MIX], batched[N_MIX];
    long long sets_before = redis_fixture_command_calls(admin, "set");
    for (size_t i = 0; i < N_MIX; i++) { /* one by one: also loads the script into Redis */
        mix_args a;
        mix_args_for(&MIX[i], G_SINGLE, &a);
        if (MIX[i].reject) policy_reject(store, script, a.l, a.address, a.g.rec.id, &alone[i]);
        else
            policy_activate(store, script, a.l, &a.g, MIX[i].serial, a.machine, NULL, a.random, a.address, NULL, NULL,
                            &alone[i]);
        if (alone[i].status != MIX[i].want)
            fprintf(stderr, "call %zu alone: %s (%s)\n", i, policy_status_name(alone[i].status), alone[i].error);
        assert_int_equal(alone[i].status, MIX[i].want);
    }
    assert_true(alone[1].again);
    assert_true(alone[4].group_exists);
    assert_false(alone[6].group_exists);
    assert_true(alone[5].redis_error);

    policy_batch *b = policy_batch_new();
    assert_non_null(b);
    static mix_args args[N_MIX]; /* the entries' buffers need to live until the append only */
    for (size_t i = 0; i < N_MIX; i++) {
        mix_args_for(&MIX[i], G_BATCH, &args[i]);
        mix_args *a = &args[i];
        int rc = MIX[i].reject ? policy_batch_add_reject(b, a->l, a->address, a->g.rec.id)
                               : policy_batch_add_activate(b, a->l, &a->g, MIX[i].serial, a->machine, NULL, a->random,
                                                           a->address, NULL, NULL);
        assert_int_equal(rc, 0);
    }
    assert_int_equal(policy_batch_size(b), N_MIX);
    long long sets_alone = redis_fixture_command_calls(admin, "set") - sets_before;
    long long before = evalsha_calls(), times = redis_fixture_command_calls(admin, "time");
    sets_before = redis_fixture_command_calls(admin, "set");
    assert_int_equal(policy_batch_append(store, script, b), 0);
    assert_true(policy_batch_read(store, b));
    assert_int_equal(evalsha_calls() - before, 1); /* the whole mix in one script call */
    /* One TIME for the whole batch, and each token bucket written once
     * after its last entry rather than once per entry; the buckets end as
     * the single calls left them. */
    assert_int_equal(redis_fixture_command_calls(admin, "time") - times, 1);
    long long sets_batched = redis_fixture_command_calls(admin, "set") - sets_before;
    assert_true(sets_batched > 0 && sets_batched < sets_alone);
    double level_alone, level_batched;
    long long ttl_alone, ttl_batched;
    tight_bucket(G_SINGLE, &level_alone, &ttl_alone);
    tight_bucket(G_BATCH, &level_batched, &ttl_batched);
    assert_true(level_alone == 0 && level_batched == 0); /* its one token taken, by entry 7 only */
    assert_true(ttl_batched > 0 && llabs(ttl_batched - ttl_alone) < 60000);
    for (size_t i = 0; i < N_MIX; i++) {
        policy_batch_result(b, i, &batched[i]);
        assert_same(&batched[i], &alone[i], i);
    }
    assert_non_null(strstr(batched[SERIAL_BROKEN + 1].error, "WRONGTYPE")); /* entry 5: Redis's own error */
    policy_batch_free(b);
}

/* A raw EVALSHA of policy.lua through the measuring connection. */
static redisReply *raw_batch(int argc, const char **argv) {
    const char *v[40];
    assert_true(argc + 1 <= 40);
    v[0] = "EVALSHA";
    for (int i = 0; i < argc; i++) v[i + 1] = argv[i];
    return redisCommandArgv(admin, argc + 1, v, NULL);
}

static void assert_refused(redisReply *r, const char *why) {
    assert_non_null(r);
    if (r->type != REDIS_REPLY_ERROR) fprintf(stderr, "not refused: %s\n", why);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "policy.lua: batch"));
    freeReplyObject(r);
}

static void test_malformed_layout_refused_whole(void **state) {
    (void)state;
    redisReply *r = redisCommand(admin, "SCRIPT LOAD %s", policy_lua);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    char sha[41];
    snprintf(sha, sizeof sha, "%s", r->str);
    freeReplyObject(r);
    char fb[PA_RKEY_MAX];
    pa_rkey_group_failure_bucket(fb, sizeof fb, 77);
    const char *reject[] = {"reject", "1", "1", "1", PA_RKEY_GROUPS, "77", "1", "1000"}; /* a valid entry's ARGV */
    /* count 0, a count that is no number, fewer counts than entries */
    assert_refused(raw_batch(4, (const char *[]){sha, "0", "batch", "0"}), "count 0");
    assert_refused(raw_batch(4, (const char *[]){sha, "0", "batch", "two"}), "count not a number");
    assert_refused(raw_batch(5, (const char *[]){sha, "0", "batch", "2", "1"}), "counts missing");
    /* a valid reject entry, then one that runs past the end: the first must not have run */
    const char *past[32] = {sha, "1", fb, "batch", "2", "1", "8", "1", "8"};
    int n = 9;
    for (int i = 0; i < 8; i++) past[n++] = reject[i];
    assert_refused(raw_batch(n, past), "second entry past the end");
    /* arguments left over */
    const char *extra[32] = {sha, "1", fb, "batch", "1", "1", "8"};
    n = 7;
    for (int i = 0; i < 8; i++) extra[n++] = reject[i];
    extra[n++] = "left over";
    assert_refused(raw_batch(n, extra), "arguments left over");
    /* a second entry whose operation is unknown, or batch itself, or with the wrong key count */
    const char *ops[] = {"nope", "batch", "reject"};
    const char *nkeys[] = {"1", "1", "0"};
    for (size_t k = 0; k < 3; k++) {
        const char *v[40];
        int m = 0;
        bool keyed = nkeys[k][0] == '1';
        v[m++] = sha;
        v[m++] = keyed ? "2" : "1";
        v[m++] = fb;
        if (keyed) v[m++] = fb;
        v[m++] = "batch", v[m++] = "2", v[m++] = "1", v[m++] = "8", v[m++] = nkeys[k], v[m++] = "8";
        for (int i = 0; i < 8; i++) v[m++] = reject[i];
        v[m++] = ops[k];
        for (int i = 1; i < 8; i++) v[m++] = reject[i];
        assert_refused(raw_batch(m, v), ops[k]);
    }
    r = redisCommand(admin, "EXISTS %s", fb);
    assert_non_null(r);
    assert_int_equal(r->integer, 0); /* no refused layout ran its valid first entry */
    freeReplyObject(r);
    /* and the same entry in a layout that adds up runs */
    const char *good[32] = {sha, "1", fb, "batch", "1", "1", "8"};
    n = 7;
    for (int i = 0; i < 8; i++) good[n++] = reject[i];
    r = raw_batch(n, good);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    assert_int_equal(r->element[0]->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[0]->element[0]->integer, POLICY_NOT_GENUINE);
    freeReplyObject(r);
}

/* NOSCRIPT (Redis restarted, SCRIPT FLUSH) on the batch call: the caller
 * is told to run each call again by itself. */
static void test_noscript_runs_each_again(void **state) {
    (void)state;
    cmd_ok(redisCommand(admin, "SCRIPT FLUSH"));
    policy_batch *b = policy_batch_new();
    assert_non_null(b);
    mix_args a[2];
    for (size_t i = 0; i < 2; i++) {
        mix_args_for(&MIX[4], G_BATCH, &a[i]);
        assert_int_equal(policy_batch_add_reject(b, a[i].l, a[i].address, a[i].g.rec.id), 0);
    }
    assert_int_equal(policy_batch_append(store, script, b), 0);
    assert_false(policy_batch_read(store, b));
    policy_result p;
    policy_reject(store, script, a[0].l, a[0].address, a[0].g.rec.id, &p); /* by itself: loads the script */
    assert_int_equal(p.status, POLICY_NOT_GENUINE);
    policy_batch_clear(b);
    assert_int_equal(policy_batch_size(b), 0);
    policy_batch_free(b);
}

/* A Redis error on the batch call itself (here the ACL refusing a key
 * outside the activation user's families) answers every entry UNAVAILABLE,
 * as one error per call would, and nothing runs. */
static void test_redis_error_fails_every_entry(void **state) {
    (void)state;
    policy_batch *b = policy_batch_new();
    assert_non_null(b);
    mix_args a;
    mix_args_for(&MIX[4], G_BATCH, &a);
    assert_int_equal(policy_batch_add_reject(b, a.l, a.address, a.g.rec.id), 0);
    assert_int_equal(policy_batch_add_reject(b, a.l, "not-a-bucket", a.g.rec.id), 0);
    long long before = evalsha_calls();
    assert_int_equal(policy_batch_append(store, script, b), 0);
    assert_true(policy_batch_read(store, b));
    for (size_t i = 0; i < 2; i++) {
        policy_result p;
        policy_batch_result(b, i, &p);
        assert_int_equal(p.status, POLICY_UNAVAILABLE);
        assert_true(p.redis_error);
        fprintf(stderr, "entry %zu: %s\n", i, p.error);
        assert_non_null(strstr(p.error, "reject: "));
    }
    assert_int_equal(evalsha_calls() - before, 0); /* refused before the script ran */
    policy_batch_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_answers_as_single_calls),
        cmocka_unit_test(test_malformed_layout_refused_whole),
        cmocka_unit_test(test_noscript_runs_each_again),
        cmocka_unit_test(test_redis_error_fails_every_entry),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
