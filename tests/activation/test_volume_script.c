/* test_volume_script.c -- volume.lua on its own, through volume_policy.c,
 * against a real redis-server as the activation user: every seat mode, the
 * KMS threshold, designation, ageing through the wheel, the deactivation
 * flows, reinstalls, and machines racing for the last seats from several
 * connections at once.
 *
 * Each test writes its own order hash (the ORDER_F_* fields, as `order
 * import` leaves them) through a measuring user of this private Redis, so
 * the tests are independent of each other; times are a few seconds, read
 * from Redis's own clock. */
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
#include "hex.h"
#include "order_record.h"
#include "redis_keys.h"
#include "volume_policy.h"

static act_env env;
static redisContext *admin; /* writes orders and looks into Redis A */
static rstore *store;       /* the activation user, as the server connects */
static int script;
static policy_limits no_limits;

enum { GROUP = 7, KEY_SERIAL = 1 };

/* The terms a test gives its order; 0 leaves a term at its default. */
typedef struct terms {
    int mode, seats, after_end;
    long from_delta, until_delta; /* seconds from now; until_delta 0: no end date */
    int renew, reclaim, hb, missed, license, validity, retention, pending_retry, threshold;
    bool manual;   /* auto_activation off */
    bool approval; /* deactivation_approval */
} terms;

static int64_t redis_now(void) {
    redisReply *r = redisCommand(admin, "TIME");
    assert_non_null(r);
    int64_t s = strtoll(r->element[0]->str, NULL, 10);
    freeReplyObject(r);
    return s;
}

/* Waits until Redis's clock reads at least `at`. */
static void wait_until(int64_t at) {
    while (redis_now() < at) usleep(50 * 1000);
}

static void cmd_ok(redisReply *r) {
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR) fprintf(stderr, "redis: %s\n", r->str);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

static void hset(const char *key, const char *field, long long v) {
    cmd_ok(redisCommand(admin, "HSET %s %s %lld", key, field, v));
}

/* Writes order `serial` with terms t. */
static void make_order(const char *serial, const terms *t) {
    char key[PA_RKEY_MAX];
    pa_rkey_order(key, sizeof key, serial);
    int64_t now = redis_now();
    cmd_ok(redisCommand(admin, "DEL %s", key));
    hset(key, ORDER_F_VERSION, 1);
    hset(key, ORDER_F_REVISION, 1);
    hset(key, ORDER_F_RETIRED, 0);
    hset(key, ORDER_F_MODE, t->mode);
    hset(key, ORDER_F_SEATS, t->seats);
    hset(key, ORDER_F_VALID_FROM, now + t->from_delta - 60);
    hset(key, ORDER_F_VALID_UNTIL, t->until_delta ? now + t->until_delta : 0);
    hset(key, ORDER_F_AFTER_END, t->after_end ? t->after_end : AFTER_END_STOP);
    hset(key, ORDER_F_RENEW, t->renew);
    hset(key, ORDER_F_RECLAIM, t->reclaim);
    hset(key, ORDER_F_HEARTBEAT, t->hb);
    hset(key, ORDER_F_MISSED, t->missed);
    hset(key, ORDER_F_LICENSE, t->license);
    hset(key, ORDER_F_MACHINE_VALIDITY, t->validity);
    hset(key, ORDER_F_RETENTION, t->retention);
    hset(key, ORDER_F_PENDING_RETRY, t->pending_retry);
    hset(key, ORDER_F_THRESHOLD, t->threshold);
    hset(key, ORDER_F_SEAT_WARNING, 0);
    hset(key, ORDER_F_AUTO, t->manual ? 0 : 1);
    hset(key, ORDER_F_APPROVAL, t->approval ? 1 : 0);
    hset(key, ORDER_F_COLLECT, 0);
}

static long long hget_int(const char *key, const char *field) {
    redisReply *r = redisCommand(admin, "HGET %s %s", key, field);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    return v;
}

static long long int_reply(redisReply *r) {
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static long long counter(const char *serial, const char *field) {
    char key[PA_RKEY_MAX];
    pa_rkey_order_counts(key, sizeof key, serial);
    return hget_int(key, field);
}

static long long table_size(const char *serial) {
    char key[PA_RKEY_MAX];
    pa_rkey_order_machines(key, sizeof key, serial);
    return int_reply(redisCommand(admin, "HLEN %s", key));
}

static long long wheel_size(const char *serial) {
    char key[PA_RKEY_MAX];
    pa_rkey_order_wheel(key, sizeof key, serial);
    return int_reply(redisCommand(admin, "ZCARD %s", key));
}

/* The ops of the order's machine log, oldest first ("a", "r", ... joined);
 * the first entry's fields checked against what the caller sent. */
static void expect_mlog(const char *serial, const char *ops) {
    char key[PA_RKEY_MAX], got[64] = "";
    pa_rkey_order_mlog(key, sizeof key, serial);
    redisReply *r = redisCommand(admin, "XRANGE %s - +", key);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < r->elements && i + 1 < sizeof got; i++) {
        const redisReply *fv = r->element[i]->element[1];
        assert_int_equal(fv->elements, 26); /* every field, always */
        assert_string_equal(fv->element[0]->str, "op");
        got[i] = fv->element[1]->str[0];
        assert_string_equal(fv->element[8]->str, "o");
        assert_string_equal(fv->element[9]->str, serial);
        assert_int_equal(fv->element[3]->len, VOLUME_DIGEST_LEN); /* m: the machine digest */
        if (i == 0) {
            char g[16], sn[16];
            snprintf(g, sizeof g, "%u", (unsigned)GROUP);
            snprintf(sn, sizeof sn, "%u", (unsigned)KEY_SERIAL);
            assert_string_equal(fv->element[5]->str, g);
            assert_string_equal(fv->element[7]->str, sn);
            assert_string_equal(fv->element[13]->str, "192.0.2.1"); /* ip */
        }
    }
    freeReplyObject(r);
    assert_string_equal(got, ops);
}

/* A machine id, and the place key digest of place key number k. */
static void machine(unsigned n, uint8_t out[32]) { env_machine(out, n); }
static void holder(unsigned k, uint8_t out[PLACE_KEY_DIGEST_LEN]) {
    memset(out, 0, PLACE_KEY_DIGEST_LEN);
    out[0] = (uint8_t)k;
    out[1] = (uint8_t)(k >> 8);
    out[15] = 0x5a;
}

static volume_caller caller_for(const char *address) {
    static char keys[8][PA_RKEY_MAX];
    static int next;
    char *k = keys[next++ % 8];
    policy_address_key(address, k, PA_RKEY_MAX);
    return (volume_caller){.group = GROUP, .serial = KEY_SERIAL, .address_key = k, .limits = &no_limits, .ip = address};
}

typedef struct machine_facts {
    const char *host_serial;
    const char *macs[2];
    size_t n_macs;
} machine_facts;

/* Activates machine n with place key k (0: none) on order `serial`. */
static volume_result activate_with(rstore *r, const char *serial, unsigned n, unsigned k, const machine_facts *f) {
    uint8_t m[32], h[PLACE_KEY_DIGEST_LEN], rnd[LICENSE_RANDOM_LEN];
    machine(n, m);
    holder(k, h);
    for (int i = 0; i < LICENSE_RANDOM_LEN; i++) rnd[i] = (uint8_t)rand();
    volume_machine vm = {.machine_id = m, .holder = k ? h : NULL};
    if (f) {
        vm.host_serial = f->host_serial;
        vm.macs = f->macs;
        vm.n_macs = f->n_macs;
    }
    volume_caller c = caller_for("192.0.2.1");
    volume_result out;
    volume_activate(r, script, serial, &c, &vm, rnd, &out);
    if (out.status == VOLUME_UNAVAILABLE) fprintf(stderr, "activate: %s\n", out.error);
    return out;
}

static volume_result activate(const char *serial, unsigned n) { return activate_with(store, serial, n, 1, NULL); }

static volume_result renew_as(const char *serial, unsigned n, unsigned k, const uint8_t random[LICENSE_RANDOM_LEN]) {
    uint8_t m[32], h[PLACE_KEY_DIGEST_LEN];
    machine(n, m);
    holder(k, h);
    volume_caller c = caller_for("192.0.2.1");
    volume_result out;
    volume_renew(store, script, serial, &c, m, h, random, &out);
    if (out.status == VOLUME_UNAVAILABLE) fprintf(stderr, "renew: %s\n", out.error);
    return out;
}

static volume_result renew(const char *serial, unsigned n, const uint8_t random[LICENSE_RANDOM_LEN]) {
    return renew_as(serial, n, 1, random);
}

static volume_result deactivate(const char *serial, unsigned n, const uint8_t random[LICENSE_RANDOM_LEN]) {
    uint8_t m[32], h[PLACE_KEY_DIGEST_LEN];
    machine(n, m);
    holder(1, h);
    volume_caller c = caller_for("192.0.2.1");
    volume_result out;
    volume_deactivate(store, script, serial, &c, m, h, random, &out);
    return out;
}

static volume_result decide(const char *serial, volume_decision d, unsigned n) {
    uint8_t m[32], digest[VOLUME_DIGEST_LEN];
    machine(n, m);
    volume_machine_digest(m, digest);
    volume_result out;
    volume_decide(store, script, serial, d, digest, &out);
    return out;
}

static volume_result sweep(const char *serial) {
    volume_result out;
    volume_sweep(store, script, serial, VOLUME_SWEEP_MAX, &out);
    assert_int_equal(out.status, VOLUME_OK);
    return out;
}

static int setup(void **state) {
    if (env_start_stores(&env) != 0 || !(admin = env_measuring_connection(&env))) return -1;
    char url[256], err[256] = "";
    redis_fixture_url(&env.a, "activation", url, sizeof url);
    rstore_config cfg = {.url = url};
    store = rstore_new(&cfg, false, err, sizeof err);
    if (!store) {
        fprintf(stderr, "rstore: %s\n", err);
        return -1;
    }
    script = volume_register(store);
    policy_limits_set(&no_limits, 0, 1, 0, 1, 1);
    srand(12345);
    return script < 0 ? -1 : 0;
}

static int teardown(void **state) {
    rstore_free(store);
    if (admin) redisFree(admin);
    env_stop(&env);
    return 0;
}

/* Permanent seats: taken once, kept on a repeat, refused when full without
 * changing anything, freed by a deactivation; licenses end with the order. */
static void test_permanent(void **state) {
    const char *o = "10000001";
    make_order(o, &(terms){.mode = SEAT_MODE_PERMANENT, .seats = 2, .until_delta = 1000, .renew = 50});
    volume_result a = activate(o, 1);
    assert_int_equal(a.status, VOLUME_OK);
    assert_int_equal(a.pending, VOLUME_PENDING_NONE);
    assert_false(a.again);
    assert_int_equal(a.seats_used, 1);
    assert_int_equal(a.count, 1);
    assert_int_equal(a.version, 1);
    assert_int_equal(a.renew_after, a.now + 50);
    assert_int_equal(a.check_in_at, a.renew_after);
    assert_true(a.expires_at > a.now + 990 && a.expires_at <= a.now + 1000); /* capped by valid_until */

    volume_result again = activate(o, 1);
    assert_int_equal(again.status, VOLUME_OK);
    assert_true(again.again);
    assert_memory_equal(again.random, a.random, LICENSE_RANDOM_LEN); /* the same license id */
    assert_int_equal(again.seats_used, 1);

    assert_int_equal(activate(o, 2).status, VOLUME_OK);
    volume_result full = activate(o, 3);
    assert_int_equal(full.status, VOLUME_NO_SEAT);
    assert_int_equal(full.retry_after_s, 0); /* not concurrent: no retry-after */
    assert_int_equal(full.seats_used, 2);
    assert_int_equal(table_size(o), 2); /* the refusal wrote nothing */

    volume_result rn = renew(o, 1, a.random);
    assert_int_equal(rn.status, VOLUME_OK);
    assert_true(rn.again);
    assert_int_equal(rn.renew_after, rn.now + 50);

    volume_result d = deactivate(o, 1, a.random);
    assert_int_equal(d.status, VOLUME_OK);
    assert_int_equal(d.deactivation, VOLUME_DEACTIVATION_NONE);
    assert_int_equal(d.seats_used, 1);
    assert_int_equal(d.count, 1);
    assert_int_equal(renew(o, 1, a.random).status, VOLUME_NOT_FOUND);
    assert_int_equal(activate(o, 3).status, VOLUME_OK);
    assert_int_equal(counter(o, "seats"), 2);
    expect_mlog(o, "aaarda"); /* grants, the repeat, renew, deactivation; the refusal wrote nothing */
}

/* Timed reclaim: a seat not renewed within reclaim_seconds is freed by the
 * wheel; the machine must activate again and finds the seat taken. */
static void test_timed_reclaim(void **state) {
    const char *o = "10000002";
    make_order(o, &(terms){.mode = SEAT_MODE_TIMED_RECLAIM, .seats = 1, .renew = 1, .reclaim = 2});
    volume_result a = activate(o, 1);
    assert_int_equal(a.status, VOLUME_OK);
    assert_int_equal(a.renew_after, a.now + 1);
    assert_int_equal(a.expires_at, a.now + 2);
    assert_int_equal(activate(o, 2).status, VOLUME_NO_SEAT);

    /* A renewal in time keeps the seat (and moves the lease). */
    wait_until(a.now + 1);
    volume_result rn = renew(o, 1, a.random);
    assert_int_equal(rn.status, VOLUME_OK);
    assert_int_equal(rn.expires_at, rn.now + 2);

    /* Then silence: the lease ends at +2, its bucket falls due a second later. */
    wait_until(rn.now + 4);
    volume_result s = sweep(o);
    assert_true(s.aged >= 1);
    assert_int_equal(s.seats_used, 0);
    assert_int_equal(s.count, 1); /* still in the window (30 days) */
    assert_int_equal(renew(o, 1, a.random).status, VOLUME_EXPIRED);
    assert_int_equal(activate(o, 2).status, VOLUME_OK);
    assert_int_equal(activate(o, 1).status, VOLUME_NO_SEAT);
    assert_int_equal(counter(o, "seats"), 1);
    expect_mlog(o, "arxa"); /* x: the ageing reclaimed the seat */
}

/* Concurrent: heartbeats keep a seat, a machine that misses them loses it; a
 * full order says when the first seat frees. */
static void test_concurrent(void **state) {
    const char *o = "10000003";
    make_order(o, &(terms){.mode = SEAT_MODE_CONCURRENT, .seats = 2, .hb = 1, .missed = 2});
    volume_result a = activate(o, 1);
    assert_int_equal(a.status, VOLUME_OK);
    assert_int_equal(a.renew_after, a.now + 1);
    assert_int_equal(a.expires_at, a.now + 2);
    volume_result b = activate(o, 2);
    assert_int_equal(b.status, VOLUME_OK);
    volume_result full = activate(o, 3);
    assert_int_equal(full.status, VOLUME_NO_SEAT);
    assert_true(full.retry_after_s >= 1 && full.retry_after_s <= 3);

    /* Machine 1 beats every second, machine 2 falls silent. */
    int64_t end = a.now + 5;
    while (redis_now() < end) {
        volume_result hb = renew(o, 1, a.random);
        assert_int_equal(hb.status, VOLUME_OK);
        assert_int_equal(hb.expires_at, hb.now + 2);
        usleep(700 * 1000);
    }
    volume_result s = sweep(o);
    assert_int_equal(s.seats_used, 1);
    assert_int_equal(renew(o, 2, b.random).status, VOLUME_EXPIRED);
    volume_result c = activate(o, 3);
    assert_int_equal(c.status, VOLUME_OK);
    assert_int_equal(c.seats_used, 2);
    assert_int_equal(renew(o, 1, a.random).status, VOLUME_OK);
}

/* Unlimited, stop: any number of machines, none counted as seats; after the
 * end date nothing activates or renews. */
static void test_unlimited_stop(void **state) {
    const char *o = "10000004";
    make_order(o, &(terms){.mode = SEAT_MODE_UNLIMITED, .until_delta = 2, .after_end = AFTER_END_STOP});
    volume_result first = {0};
    for (unsigned i = 1; i <= 5; i++) {
        volume_result a = activate(o, i);
        assert_int_equal(a.status, VOLUME_OK);
        assert_int_equal(a.seats_used, 0);
        assert_int_equal(a.count, i);
        assert_true(a.expires_at <= a.now + 2); /* never past valid_until */
        if (i == 1) first = a;
    }
    wait_until(first.now + 3);
    assert_int_equal(activate(o, 6).status, VOLUME_ENDED);
    assert_int_equal(renew(o, 1, first.random).status, VOLUME_ENDED);
    assert_int_equal(counter(o, "over_term"), 0);
}

/* Unlimited, continue-counted: activations go on after the end date, their
 * licenses are not cut at it, and those machines are counted. */
static void test_unlimited_continue(void **state) {
    const char *o = "10000005";
    make_order(
        o, &(terms){
               .mode = SEAT_MODE_UNLIMITED, .until_delta = 1, .after_end = AFTER_END_CONTINUE_COUNTED, .license = 500});
    volume_result before = activate(o, 1);
    assert_int_equal(before.status, VOLUME_OK);
    assert_int_equal(before.over_term, 0);
    wait_until(before.now + 2);
    volume_result after = activate(o, 2);
    assert_int_equal(after.status, VOLUME_OK);
    assert_int_equal(after.over_term, 1);
    assert_int_equal(after.expires_at, after.now + 500);
    assert_int_equal(renew(o, 1, before.random).over_term, 2); /* in use after the end */
    assert_int_equal(renew(o, 1, before.random).over_term, 2); /* once per machine */
    assert_int_equal(counter(o, "over_term"), 2);
}

/* Vendor: no renewal; each machine's validity runs from its own first
 * activation, and a repeat does not restart it. */
static void test_vendor(void **state) {
    const char *o = "10000006";
    make_order(o, &(terms){.mode = SEAT_MODE_VENDOR, .seats = 5, .validity = 3});
    volume_result a = activate(o, 1);
    assert_int_equal(a.status, VOLUME_OK);
    assert_int_equal(a.renew_after, 0);
    assert_int_equal(a.check_in_at, 0);
    assert_int_equal(a.expires_at, a.now + 3);
    wait_until(a.now + 1);
    volume_result again = activate(o, 1);
    assert_int_equal(again.status, VOLUME_OK);
    assert_int_equal(again.expires_at, a.expires_at);
    volume_result b = activate(o, 2);
    assert_int_equal(b.expires_at, b.now + 3);
    wait_until(a.now + 3);
    assert_int_equal(activate(o, 1).status, VOLUME_MACHINE_ENDED);
    assert_int_equal(counter(o, "seats"), 2); /* held for ever once taken */
}

/* KMS threshold: pending with the count until N machines asked; the Nth and
 * every later one are granted, and the pending ones at their next call. */
static void test_threshold(void **state) {
    const char *o = "10000007";
    make_order(o, &(terms){.mode = SEAT_MODE_PERMANENT, .seats = 10, .threshold = 3, .pending_retry = 7});
    volume_result p1 = activate(o, 1);
    assert_int_equal(p1.status, VOLUME_OK);
    assert_int_equal(p1.pending, VOLUME_PENDING_THRESHOLD);
    assert_int_equal(p1.count, 1);
    assert_int_equal(p1.check_in_at, p1.now + 7);
    assert_int_equal(p1.seats_used, 0);
    assert_int_equal(p1.expires_at, 0);
    volume_result p1b = activate(o, 1); /* asking again does not count twice */
    assert_int_equal(p1b.pending, VOLUME_PENDING_THRESHOLD);
    assert_int_equal(p1b.count, 1);
    assert_int_equal(activate(o, 2).pending, VOLUME_PENDING_THRESHOLD);
    /* A pending machine was given no license id to renew. */
    assert_int_equal(renew(o, 1, p1.random).status, VOLUME_NOT_FOUND);
    volume_result g3 = activate(o, 3);
    assert_int_equal(g3.status, VOLUME_OK);
    assert_int_equal(g3.pending, VOLUME_PENDING_NONE);
    assert_int_equal(g3.count, 3);
    assert_int_equal(g3.seats_used, 1);
    volume_result g1 = activate(o, 1);
    assert_int_equal(g1.pending, VOLUME_PENDING_NONE);
    assert_int_equal(g1.seats_used, 2);
    assert_int_equal(activate(o, 4).pending, VOLUME_PENDING_NONE);
}

static void designate(const char *serial, char kind, const char *value) {
    char key[PA_RKEY_MAX], name[VOLUME_DESIGNATION_MAX];
    pa_rkey_order_designated(key, sizeof key, serial);
    assert_true(volume_designation_name(kind, value, name) > 0);
    cmd_ok(redisCommand(admin, "SADD %s %s", key, name));
}

/* Auto-activation off: only designated devices activate, by machine digest,
 * host serial or MAC; the others wait as pending. */
static void test_designation(void **state) {
    const char *o = "10000008";
    make_order(o, &(terms){.mode = SEAT_MODE_PERMANENT, .seats = 10, .manual = true});
    volume_result p = activate(o, 1);
    assert_int_equal(p.status, VOLUME_OK);
    assert_int_equal(p.pending, VOLUME_PENDING_NOT_DESIGNATED);
    assert_int_equal(p.seats_used, 0);

    uint8_t m[32], digest[VOLUME_DIGEST_LEN];
    char hex[2 * VOLUME_DIGEST_LEN + 1];
    machine(1, m);
    volume_machine_digest(m, digest);
    pa_hex_encode(digest, sizeof digest, hex);
    hex[0] = (char)(hex[0] >= 'a' ? hex[0] - 32 : hex[0]); /* either case */
    designate(o, 'm', hex);
    assert_int_equal(activate(o, 1).pending, VOLUME_PENDING_NONE);

    designate(o, 's', "SN-4711");
    machine_facts by_serial = {.host_serial = "SN-4711"};
    assert_int_equal(activate_with(store, o, 2, 1, &by_serial).pending, VOLUME_PENDING_NONE);
    designate(o, 'a', "AA:BB:CC:00:11:22");
    machine_facts by_mac = {.macs = {"02:00:00:00:00:01", "aa:bb:cc:00:11:22"}, .n_macs = 2};
    assert_int_equal(activate_with(store, o, 3, 1, &by_mac).pending, VOLUME_PENDING_NONE);
    machine_facts other = {.host_serial = "SN-0000", .macs = {"02:00:00:00:00:09"}, .n_macs = 1};
    assert_int_equal(activate_with(store, o, 4, 1, &other).pending, VOLUME_PENDING_NOT_DESIGNATED);
    assert_int_equal(counter(o, "seats"), 3);
    assert_int_equal(counter(o, "machines"), 4);

    char name[VOLUME_DESIGNATION_MAX];
    assert_int_equal(volume_designation_name('a', "aa:bb:cc:00:11", name), -1);
    assert_int_equal(volume_designation_name('m', "abc", name), -1);
    assert_int_equal(volume_designation_name('s', "tab\there", name), -1);
    assert_true(volume_designation_name('s', "To Be Filled", name) > 0); /* DMI serials may hold spaces */
    assert_int_equal(volume_designation_name('x', "1", name), -1);
}

/* Ageing through the wheel: machines leave the table (and the count) a
 * retention period after their last contact, found by their buckets, not
 * by reading the table; a permanent seat stays held and only leaves the
 * count, and comes back to it at the machine's next call. */
static void test_ageing(void **state) {
    const char *o = "10000009", *u = "10000010";
    make_order(o, &(terms){.mode = SEAT_MODE_PERMANENT, .seats = 10, .retention = 2});
    make_order(u, &(terms){.mode = SEAT_MODE_UNLIMITED, .until_delta = 100000, .retention = 2});
    volume_result a = activate(o, 1);
    assert_int_equal(activate(o, 2).count, 2);
    for (unsigned i = 1; i <= 3; i++) assert_int_equal(activate(u, i).status, VOLUME_OK);
    assert_int_equal(table_size(u), 3);
    assert_true(wheel_size(u) >= 1);

    /* Last contact + 2 s, then one bucket width (1 s) for the bucket. */
    wait_until(a.now + 4);
    volume_result s = sweep(u);
    assert_int_equal(s.aged, 3);
    assert_false(s.more);
    assert_int_equal(s.count, 0);
    assert_int_equal(table_size(u), 0);
    assert_int_equal(wheel_size(u), 0);
    char bucket[PA_RKEY_MAX + 16];
    pa_rkey_order_wheel_prefix(bucket, sizeof bucket, u);
    strcat(bucket, "*");
    redisReply *left = redisCommand(admin, "KEYS %s", bucket);
    assert_non_null(left);
    assert_int_equal(left->elements, 0); /* the bucket sets are gone too */
    freeReplyObject(left);

    volume_result p = sweep(o);
    assert_int_equal(p.count, 0);
    assert_int_equal(p.seats_used, 2);
    assert_int_equal(table_size(o), 2);
    assert_int_equal(wheel_size(o), 0); /* out of the window: in no bucket */
    volume_result back = renew(o, 1, a.random);
    assert_int_equal(back.status, VOLUME_OK);
    assert_int_equal(back.count, 1);
    assert_int_equal(back.seats_used, 2);

    /* A timed-reclaim machine: its lease lapses, then it leaves. */
    const char *t = "10000011";
    make_order(t, &(terms){.mode = SEAT_MODE_TIMED_RECLAIM, .seats = 3, .renew = 1, .reclaim = 1, .retention = 5});
    volume_result l = activate(t, 1);
    wait_until(l.now + 3);
    volume_result lapsed = sweep(t);
    assert_int_equal(lapsed.seats_used, 0);
    assert_int_equal(lapsed.count, 1);
    wait_until(l.now + 7);
    volume_result gone = sweep(t);
    assert_int_equal(gone.count, 0);
    assert_int_equal(table_size(t), 0);
    /* Calls age as they go too, not only the sweep. */
    assert_int_equal(activate(t, 2).count, 1);
}

/* Deactivation with the operator's approval: the seat is held while the
 * request waits; a denial is reported once; an approval frees the seat and
 * the machine's next Renew answers DEACTIVATED. */
static void test_approval(void **state) {
    const char *o = "10000012";
    make_order(o, &(terms){.mode = SEAT_MODE_PERMANENT, .seats = 1, .approval = true});
    volume_result a = activate(o, 1);
    assert_int_equal(a.status, VOLUME_OK);
    assert_int_equal(decide(o, VOLUME_APPROVE, 1).status, VOLUME_NOT_REQUESTED);

    volume_result d = deactivate(o, 1, a.random);
    assert_int_equal(d.status, VOLUME_OK);
    assert_int_equal(d.deactivation, VOLUME_DEACTIVATION_AWAITING);
    assert_int_equal(d.seats_used, 1);
    volume_result r1 = renew(o, 1, a.random);
    assert_int_equal(r1.status, VOLUME_OK);
    assert_int_equal(r1.deactivation, VOLUME_DEACTIVATION_AWAITING);
    assert_int_equal(activate(o, 2).status, VOLUME_NO_SEAT);

    assert_int_equal(decide(o, VOLUME_DENY, 1).status, VOLUME_OK);
    assert_int_equal(decide(o, VOLUME_DENY, 1).status, VOLUME_NOT_REQUESTED);
    assert_int_equal(renew(o, 1, a.random).deactivation, VOLUME_DEACTIVATION_DENIED);
    assert_int_equal(renew(o, 1, a.random).deactivation, VOLUME_DEACTIVATION_NONE); /* reported once */

    assert_int_equal(deactivate(o, 1, a.random).deactivation, VOLUME_DEACTIVATION_AWAITING);
    volume_result ok = decide(o, VOLUME_APPROVE, 1);
    assert_int_equal(ok.status, VOLUME_OK);
    assert_int_equal(ok.seats_used, 0);
    assert_int_equal(ok.count, 0);
    assert_int_equal(renew(o, 1, a.random).status, VOLUME_DEACTIVATED);
    assert_int_equal(deactivate(o, 1, a.random).status, VOLUME_OK); /* done already */
    assert_int_equal(activate(o, 2).status, VOLUME_OK);
    /* q: requests, r: renews and the denial (it keeps its seat), d: approved */
    expect_mlog(o, "aqrrrrqda");
}

/* Forced deactivation: the seat frees at once, with or without a request;
 * the machine's next Renew answers DEACTIVATED. */
static void test_forced(void **state) {
    const char *o = "10000013";
    make_order(o, &(terms){.mode = SEAT_MODE_CONCURRENT, .seats = 1, .hb = 30});
    volume_result a = activate(o, 1);
    assert_int_equal(a.status, VOLUME_OK);
    assert_int_equal(decide(o, VOLUME_FORCE, 9).status, VOLUME_NOT_FOUND);
    volume_result f = decide(o, VOLUME_FORCE, 1);
    assert_int_equal(f.status, VOLUME_OK);
    assert_int_equal(f.seats_used, 0);
    assert_int_equal(f.count, 0);
    assert_int_equal(renew(o, 1, a.random).status, VOLUME_DEACTIVATED);
    assert_int_equal(decide(o, VOLUME_FORCE, 1).status, VOLUME_OK); /* nothing more to do */
    assert_int_equal(counter(o, "seats"), 0);
    volume_result b = activate(o, 2);
    assert_int_equal(b.status, VOLUME_OK);
    /* The deactivated machine starts again as a new one, with a new license id. */
    assert_int_equal(decide(o, VOLUME_FORCE, 2).status, VOLUME_OK);
    volume_result again = activate(o, 1);
    assert_int_equal(again.status, VOLUME_OK);
    assert_false(again.again);
    assert_memory_not_equal(again.random, a.random, 4);
}

/* A reinstall (the same machine id) gets its seat and license id back; a
 * new place key rebinds the machine, and the old key is refused. */
static void test_reinstall(void **state) {
    const char *o = "10000014";
    make_order(o, &(terms){.mode = SEAT_MODE_PERMANENT, .seats = 1});
    volume_result a = activate_with(store, o, 1, 1, NULL);
    assert_int_equal(a.status, VOLUME_OK);
    volume_result re = activate_with(store, o, 1, 2, NULL);
    assert_int_equal(re.status, VOLUME_OK);
    assert_true(re.again);
    assert_memory_equal(re.random, a.random, LICENSE_RANDOM_LEN);
    assert_int_equal(re.seats_used, 1);
    assert_int_equal(renew_as(o, 1, 1, a.random).status, VOLUME_WRONG_KEY);
    assert_int_equal(renew_as(o, 1, 2, a.random).status, VOLUME_OK);
    uint8_t wrong[LICENSE_RANDOM_LEN];
    memcpy(wrong, a.random, sizeof wrong);
    wrong[0] ^= 1;
    assert_int_equal(renew_as(o, 1, 2, wrong).status, VOLUME_NOT_FOUND);
    /* Without a place key the bound one stays. */
    assert_true(activate_with(store, o, 1, 0, NULL).again);
    assert_int_equal(renew_as(o, 1, 2, a.random).status, VOLUME_OK);
}

/* ---- component matching (docs/machines.md, "Matching a machine to a place") ---- */

/* A machine's five components as the tests name them: each a small number,
 * the token its 8 bytes (big-endian, so the numbers sort as the tokens). */
typedef struct parts {
    unsigned c[5]; /* dmi_uuid, board_serial, disk_serial, mac, machine_id_file; 0: not sent */
} parts;

static size_t tokens_of(const parts *p, uint8_t out[COMPONENTS_MAX * COMPONENT_TOKEN_LEN]) {
    unsigned v[5];
    size_t n = 0;
    for (int i = 0; i < 5; i++)
        if (p->c[i]) v[n++] = p->c[i];
    for (size_t i = 1; i < n; i++) /* sorted, as activate_volume.c sends them */
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            unsigned x = v[j];
            v[j] = v[j - 1];
            v[j - 1] = x;
        }
    memset(out, 0, n * COMPONENT_TOKEN_LEN);
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 4; b++) out[i * COMPONENT_TOKEN_LEN + 4 + b] = (uint8_t)(v[i] >> (8 * (3 - b)));
    return n;
}

/* The `was` of the order's machine-log entry number i (from 1): machine
 * n's digest. */
static void expect_was(const char *serial, size_t i, unsigned n) {
    char key[PA_RKEY_MAX];
    uint8_t m[32], d[VOLUME_DIGEST_LEN];
    machine(n, m);
    volume_machine_digest(m, d);
    pa_rkey_order_mlog(key, sizeof key, serial);
    redisReply *r = redisCommand(admin, "XRANGE %s - +", key);
    assert_non_null(r);
    assert_true(r->elements >= i);
    const redisReply *fv = r->element[i - 1]->element[1];
    assert_string_equal(fv->element[24]->str, "was");
    assert_int_equal(fv->element[25]->len, VOLUME_DIGEST_LEN);
    assert_memory_equal(fv->element[25]->str, d, VOLUME_DIGEST_LEN);
    freeReplyObject(r);
}

/* Activates machine n, with place key 1, sending the components p. */
static volume_result activate_parts(const char *serial, unsigned n, const parts *p) {
    uint8_t m[32], h[PLACE_KEY_DIGEST_LEN], rnd[LICENSE_RANDOM_LEN], tok[COMPONENTS_MAX * COMPONENT_TOKEN_LEN];
    machine(n, m);
    holder(1, h);
    for (int i = 0; i < LICENSE_RANDOM_LEN; i++) rnd[i] = (uint8_t)rand();
    volume_machine vm = {.machine_id = m, .holder = h, .tokens = tok, .n_tokens = tokens_of(p, tok)};
    volume_caller c = caller_for("192.0.2.1");
    volume_result out;
    volume_activate(store, script, serial, &c, &vm, rnd, &out);
    if (out.status == VOLUME_UNAVAILABLE) fprintf(stderr, "activate: %s\n", out.error);
    return out;
}

static void set_match(const char *serial, int k) {
    char key[PA_RKEY_MAX];
    pa_rkey_order(key, sizeof key, serial);
    hset(key, ORDER_F_MACHINE_MATCH, k);
}

/* Machine n's record, decoded (false: none); *len its stored length. */
static bool record_of(const char *serial, unsigned n, volume_record *out, size_t *len) {
    char key[PA_RKEY_MAX];
    uint8_t m[32], d[VOLUME_DIGEST_LEN];
    machine(n, m);
    volume_machine_digest(m, d);
    pa_rkey_order_machines(key, sizeof key, serial);
    redisReply *r = redisCommand(admin, "HGET %s %b", key, d, sizeof d);
    assert_non_null(r);
    bool found = r->type == REDIS_REPLY_STRING;
    if (found) {
        *len = r->len;
        assert_true(volume_record_decode(r->str, r->len, out));
    }
    freeReplyObject(r);
    return found;
}

static void expect_rebound(const volume_result *r, unsigned from, unsigned shared) {
    uint8_t m[32], d[VOLUME_DIGEST_LEN];
    machine(from, m);
    volume_machine_digest(m, d);
    assert_int_equal(r->status, VOLUME_OK);
    assert_true(r->rebound);
    assert_false(r->again); /* a new license id: it names the new machine */
    assert_int_equal(r->rebound_shared, shared);
    assert_memory_equal(r->rebound_from, d, VOLUME_DIGEST_LEN);
}

/* K = 3: a container whose MAC and machine-id file change on every start
 * keeps its one seat (dmi, board and disk still match), its first-seen time
 * and a count of re-binds; the old license id is gone with the old digest.
 * A cloned disk in another machine (disk and machine-id file match: two)
 * takes a new seat. */
static void test_match_rebinds(void **state) {
    const char *o = "10000031";
    make_order(o, &(terms){.mode = SEAT_MODE_PERMANENT, .seats = 5});
    set_match(o, 3);
    volume_result a = activate_parts(o, 1, &(parts){{11, 12, 13, 14, 15}});
    assert_int_equal(a.status, VOLUME_OK);
    assert_false(a.rebound);
    volume_record rec;
    size_t len = 0;
    assert_true(record_of(o, 1, &rec, &len));
    assert_int_equal(len, VOLUME_RECORD_LEN + 2 + 5 * COMPONENT_TOKEN_LEN); /* the tokens are kept */
    assert_int_equal(rec.n_tokens, 5);

    volume_result b = activate_parts(o, 2, &(parts){{11, 12, 13, 24, 15}}); /* a new MAC: four match */
    expect_rebound(&b, 1, 4);
    assert_int_equal(b.seats_used, 1);
    assert_int_equal(b.count, 1);
    assert_int_equal(table_size(o), 1);
    assert_false(record_of(o, 1, &rec, &len));
    assert_int_equal(renew(o, 1, a.random).status, VOLUME_NOT_FOUND);
    assert_int_equal(renew(o, 2, b.random).status, VOLUME_OK);

    volume_result c = activate_parts(o, 3, &(parts){{11, 12, 13, 34, 35}}); /* MAC and machine-id file: three */
    expect_rebound(&c, 2, 3);
    assert_true(record_of(o, 3, &rec, &len));
    assert_int_equal(rec.rebinds, 2);
    assert_int_equal(rec.first_seen, (uint32_t)a.now); /* its history goes with it */
    assert_int_equal(c.seats_used, 1);

    /* The same machine again: an exact match, no re-bind. */
    volume_result again = activate_parts(o, 3, &(parts){{11, 12, 13, 34, 35}});
    assert_int_equal(again.status, VOLUME_OK);
    assert_true(again.again);
    assert_false(again.rebound);

    /* A cloned disk: only disk_serial and machine_id_file match. */
    volume_result clone = activate_parts(o, 4, &(parts){{41, 42, 13, 44, 35}});
    assert_int_equal(clone.status, VOLUME_OK);
    assert_false(clone.rebound);
    assert_int_equal(clone.seats_used, 2);
    assert_int_equal(table_size(o), 2);
    /* Fewer components than K: nothing to match with. */
    volume_result few = activate_parts(o, 5, &(parts){{11, 12, 0, 0, 0}});
    assert_false(few.rebound);
    assert_int_equal(few.seats_used, 3);
    expect_mlog(o, "abrbaaa"); /* grant, re-bind, renew, re-bind, repeat, two grants */
    expect_was(o, 2, 1);
    expect_was(o, 4, 2);
}

/* Exact (0, and no field at all): every new machine id takes a new seat and
 * the records stay 28 bytes. */
static void test_match_exact(void **state) {
    const char *o = "10000032";
    make_order(o, &(terms){.mode = SEAT_MODE_PERMANENT, .seats = 5});
    for (unsigned n = 1; n <= 2; n++)
        assert_false(activate_parts(o, n, &(parts){{11, 12, 13, 10 + n, 20 + n}}).rebound);
    set_match(o, 0);
    volume_result c = activate_parts(o, 3, &(parts){{11, 12, 13, 14, 15}});
    assert_false(c.rebound);
    assert_int_equal(c.seats_used, 3);
    volume_record rec;
    size_t len = 0;
    assert_true(record_of(o, 3, &rec, &len));
    assert_int_equal(len, VOLUME_RECORD_LEN);
    /* Switched on later: machines seen before keep no tokens, so they are not matched. */
    set_match(o, 3);
    assert_false(activate_parts(o, 4, &(parts){{11, 12, 13, 14, 15}}).rebound);
    assert_int_equal(counter(o, "seats"), 4);
}

/* The most shared components win; among equals the machine seen last;
 * a deactivated machine is never taken over. */
static void test_match_best(void **state) {
    const char *o = "10000033";
    make_order(o, &(terms){.mode = SEAT_MODE_PERMANENT, .seats = 10});
    set_match(o, 3); /* while the machines arrive, so that they share too little to follow each other */
    volume_result a = activate_parts(o, 1, &(parts){{1, 2, 3, 4, 5}});
    assert_int_equal(activate_parts(o, 2, &(parts){{1, 2, 6, 7, 8}}).status, VOLUME_OK);
    assert_int_equal(activate_parts(o, 4, &(parts){{20, 21, 22, 24, 0}}).status, VOLUME_OK);
    wait_until(a.now + 1);
    assert_int_equal(activate_parts(o, 5, &(parts){{20, 21, 23, 25, 0}}).status, VOLUME_OK);
    assert_int_equal(counter(o, "seats"), 4);
    set_match(o, 2);
    /* Sharing 1,2,3 with machine 1 (three) and 1,2 with machine 2 (two): machine 1. */
    expect_rebound((volume_result[]){activate_parts(o, 3, &(parts){{1, 2, 3, 9, 10}})}, 1, 3);
    /* Machines 4 and 5 share two each with machine 6's components; 5 was seen last. */
    expect_rebound((volume_result[]){activate_parts(o, 6, &(parts){{20, 21, 30, 31, 0}})}, 5, 2);
    /* Deactivated by the operator: a tombstone is not a machine to follow. */
    assert_int_equal(decide(o, VOLUME_FORCE, 6).status, VOLUME_OK);
    volume_result n = activate_parts(o, 7, &(parts){{20, 21, 30, 31, 0}});
    assert_int_equal(n.status, VOLUME_OK);
    assert_true(n.rebound); /* machine 4 still shares 20, 21 */
    assert_int_equal(n.rebound_shared, 2);
}

/* The scan reads the 64 machines activated last ({o:S}:seen): one more
 * recent machine than that and an old machine is not found (a new seat). */
static void test_match_cap(void **state) {
    const char *o = "10000035";
    make_order(o, &(terms){.mode = SEAT_MODE_PERMANENT, .seats = 1000});
    set_match(o, 3);
    assert_int_equal(activate_parts(o, 1, &(parts){{1, 2, 3, 4, 5}}).status, VOLUME_OK);
    for (unsigned i = 0; i < 63; i++) {
        unsigned b = 1000 + 10 * i;
        assert_false(activate_parts(o, 100 + i, &(parts){{b, b + 1, b + 2, b + 3, b + 4}}).rebound);
    }
    expect_rebound((volume_result[]){activate_parts(o, 2, &(parts){{1, 2, 3, 9, 10}})}, 1, 4 - 1);
    for (unsigned i = 63; i < 127; i++) {
        unsigned b = 1000 + 10 * i;
        assert_false(activate_parts(o, 100 + i, &(parts){{b, b + 1, b + 2, b + 3, b + 4}}).rebound);
    }
    volume_result late = activate_parts(o, 3, &(parts){{1, 2, 3, 11, 12}});
    assert_int_equal(late.status, VOLUME_OK);
    assert_false(late.rebound);
    assert_int_equal(late.seats_used, 1 + 127 + 1);
    /* The index holds the machines with tokens, the moved digest not among them. */
    char key[PA_RKEY_MAX];
    pa_rkey_order_seen(key, sizeof key, o);
    assert_int_equal(int_reply(redisCommand(admin, "ZCARD %s", key)), table_size(o));
    /* Deactivated, a machine leaves it. */
    assert_int_equal(decide(o, VOLUME_FORCE, 3).status, VOLUME_OK);
    assert_int_equal(int_reply(redisCommand(admin, "ZCARD %s", key)), table_size(o) - 1);
}

/* A re-bind that cannot be granted writes nothing: the machine it would
 * have taken over stays under its digest. */
static void test_match_refused(void **state) {
    const char *o = "10000034";
    make_order(o, &(terms){.mode = SEAT_MODE_TIMED_RECLAIM, .seats = 1, .renew = 1, .reclaim = 2});
    set_match(o, 3);
    volume_result a = activate_parts(o, 1, &(parts){{1, 2, 3, 4, 5}});
    assert_int_equal(a.status, VOLUME_OK);
    wait_until(a.expires_at + 2); /* the lease lapsed, its bucket fell due */
    sweep(o);
    assert_int_equal(activate_parts(o, 2, &(parts){{50, 51, 52, 53, 54}}).status, VOLUME_OK); /* takes the seat */
    volume_result full = activate_parts(o, 3, &(parts){{1, 2, 3, 40, 41}});
    assert_int_equal(full.status, VOLUME_NO_SEAT);
    assert_false(full.rebound);
    volume_record rec;
    size_t len;
    assert_true(record_of(o, 1, &rec, &len));
    assert_false(record_of(o, 3, &rec, &len));
    assert_int_equal(table_size(o), 2);
}

/* The order's state and dates, revocation, the address bucket, and an
 * order that is not there. */
static void test_refusals(void **state) {
    const char *o = "10000015";
    char key[PA_RKEY_MAX], revoked[PA_RKEY_MAX];
    make_order(o, &(terms){.mode = SEAT_MODE_PERMANENT, .seats = 3, .from_delta = 1000});
    assert_int_equal(activate(o, 1).status, VOLUME_NOT_STARTED);
    make_order(o, &(terms){.mode = SEAT_MODE_PERMANENT, .seats = 3});
    volume_result a = activate(o, 1);
    assert_int_equal(a.status, VOLUME_OK);
    pa_rkey_order(key, sizeof key, o);
    hset(key, ORDER_F_RETIRED, 1);
    hset(key, ORDER_F_VERSION, 2);
    volume_result r = activate(o, 1);
    assert_int_equal(r.status, VOLUME_RETIRED);
    assert_int_equal(r.version, 2); /* the caller learns its cache is stale */
    assert_int_equal(renew(o, 1, a.random).status, VOLUME_RETIRED);
    hset(key, ORDER_F_RETIRED, 0);

    pa_rkey_revoked(revoked, sizeof revoked, GROUP);
    cmd_ok(redisCommand(admin, "SADD %s %u", revoked, KEY_SERIAL));
    assert_int_equal(activate(o, 2).status, VOLUME_REVOKED);
    assert_int_equal(renew(o, 1, a.random).status, VOLUME_REVOKED);
    cmd_ok(redisCommand(admin, "SREM %s %u", revoked, KEY_SERIAL));

    assert_int_equal(activate("19999999", 1).status, VOLUME_UNKNOWN_ORDER);
    volume_result s;
    volume_sweep(store, script, "19999999", 10, &s);
    assert_int_equal(s.status, VOLUME_UNKNOWN_ORDER);

    /* The address bucket policy.lua keeps: two tokens, then a wait. */
    policy_limits tight;
    memset(&tight, 0, sizeof tight);
    policy_limits_set(&tight, 0.01, 2, 0, 1, 1);
    volume_caller c = caller_for("198.51.100.7");
    c.limits = &tight;
    uint8_t m[32], rnd[LICENSE_RANDOM_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};
    machine(5, m);
    volume_machine vm = {.machine_id = m};
    volume_result x;
    for (int i = 0; i < 2; i++) {
        volume_activate(store, script, o, &c, &vm, rnd, &x);
        assert_int_equal(x.status, VOLUME_OK);
    }
    volume_activate(store, script, o, &c, &vm, rnd, &x);
    assert_int_equal(x.status, VOLUME_RATE_LIMITED);
    assert_true(x.retry_after_s >= 1);
}

/* Offline audit of vendor-hosted volume keys: the outbox record comes with
 * the grant, "if first" samples only the key's first use in the order, and
 * the outbox cap refuses or grants unaudited as the group says. */
static volume_result activate_audited(const char *serial, unsigned n, int mode, const char *cap, bool grant_when_full) {
    uint8_t m[32], rnd[LICENSE_RANDOM_LEN] = {9, 9, 9, 9, 1, 2, 3, 4};
    machine(n, m);
    pk_fields key = {.group = GROUP, .serial = KEY_SERIAL};
    audit_record rec;
    assert_int_equal(audit_record_init(&rec, &key, m, "192.0.2.9", "base-rate"), 0);
    policy_audit au = {.mode = mode, .rec = &rec, .outbox_max = cap, .grant_when_full = grant_when_full};
    volume_machine vm = {.machine_id = m, .audit = &au};
    volume_caller c = caller_for("192.0.2.9");
    volume_result out;
    volume_activate(store, script, serial, &c, &vm, rnd, &out);
    return out;
}

static long long outbox_len(void) { return int_reply(redisCommand(admin, "XLEN %s", PA_RKEY_OUTBOX)); }

static void test_audit_outbox(void **state) {
    const char *o = "10000017";
    make_order(o, &(terms){.mode = SEAT_MODE_PERMANENT, .seats = 10});
    cmd_ok(redisCommand(admin, "DEL %s", PA_RKEY_OUTBOX));
    volume_result first = activate_audited(o, 1, 2, "100", false);
    assert_int_equal(first.status, VOLUME_OK);
    assert_true(first.audited);
    assert_int_equal(outbox_len(), 1);
    assert_false(activate_audited(o, 2, 2, "100", false).audited); /* not the key's first use */
    assert_int_equal(outbox_len(), 1);
    redisReply *e = redisCommand(admin, "XRANGE %s - +", PA_RKEY_OUTBOX);
    assert_non_null(e);
    assert_int_equal(e->elements, 1);
    assert_int_equal(e->element[0]->element[1]->elements, 2 * AUDIT_OUTBOX_FIELDS);
    freeReplyObject(e);

    /* At the cap: refused (nothing written), or granted unaudited. */
    volume_result full = activate_audited(o, 3, 1, "1", false);
    assert_int_equal(full.status, VOLUME_OUTBOX_FULL);
    assert_int_equal(table_size(o), 2);
    volume_result unaudited = activate_audited(o, 3, 1, "1", true);
    assert_int_equal(unaudited.status, VOLUME_OK);
    assert_true(unaudited.unaudited);
    assert_int_equal(outbox_len(), 1);
    assert_true(activate_audited(o, 4, 1, "100", false).audited);
    assert_int_equal(outbox_len(), 2);
    /* Pending answers are not audited: nothing is granted. */
}

/* Machines racing for the last seats from several connections: exactly
 * `seats` are granted, the counter never passes the order's count. */
enum { RACERS = 8, PER_RACER = 25, RACE_SEATS = 20 };

typedef struct racer {
    int index;
    int granted, refused, other;
} racer;

static void *race(void *arg) {
    racer *rc = arg;
    char url[256], err[256];
    redis_fixture_url(&env.a, "activation", url, sizeof url);
    rstore_config cfg = {.url = url};
    rstore *mine = rstore_new(&cfg, false, err, sizeof err);
    if (!mine) return NULL;
    int idx = volume_register(mine);
    for (int i = 0; i < PER_RACER; i++) {
        uint8_t m[32], rnd[LICENSE_RANDOM_LEN] = {0};
        machine(1000 + (unsigned)(rc->index * PER_RACER + i), m);
        rnd[0] = (uint8_t)i;
        volume_machine vm = {.machine_id = m};
        volume_caller c = {.group = GROUP, .serial = KEY_SERIAL, .address_key = "rl:a:race", .limits = &no_limits};
        volume_result out;
        volume_activate(mine, idx, "10000016", &c, &vm, rnd, &out);
        if (out.status == VOLUME_OK) rc->granted++;
        else if (out.status == VOLUME_NO_SEAT) rc->refused++;
        else rc->other++;
    }
    rstore_free(mine);
    return NULL;
}

static void test_race_for_last_seats(void **state) {
    make_order("10000016", &(terms){.mode = SEAT_MODE_CONCURRENT, .seats = RACE_SEATS, .hb = 60});
    pthread_t th[RACERS];
    racer rc[RACERS];
    for (int i = 0; i < RACERS; i++) {
        rc[i] = (racer){.index = i};
        assert_int_equal(pthread_create(&th[i], NULL, race, &rc[i]), 0);
    }
    int granted = 0, refused = 0, other = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(th[i], NULL);
        granted += rc[i].granted;
        refused += rc[i].refused;
        other += rc[i].other;
    }
    assert_int_equal(other, 0);
    assert_int_equal(granted, RACE_SEATS);
    assert_int_equal(refused, RACERS * PER_RACER - RACE_SEATS);
    assert_int_equal(counter("10000016", "seats"), RACE_SEATS);
    assert_int_equal(table_size("10000016"), RACE_SEATS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_permanent),
        cmocka_unit_test(test_timed_reclaim),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_unlimited_stop),
        cmocka_unit_test(test_unlimited_continue),
        cmocka_unit_test(test_vendor),
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_designation),
        cmocka_unit_test(test_ageing),
        cmocka_unit_test(test_approval),
        cmocka_unit_test(test_forced),
        cmocka_unit_test(test_reinstall),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_audit_outbox),
        cmocka_unit_test(test_race_for_last_seats),
        cmocka_unit_test(test_match_rebinds),
        cmocka_unit_test(test_match_exact),
        cmocka_unit_test(test_match_best),
        cmocka_unit_test(test_match_refused),
        cmocka_unit_test(test_match_cap),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
