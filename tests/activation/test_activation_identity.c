/* test_activation_identity.c -- a place follows its machine by the
 * machine's components (docs/machines.md "Matching a machine to a place"),
 * against the real server and Redis.
 *
 * A test machine has the five components of the Linux client (dmi_uuid,
 * board_serial, disk_serial, mac, machine_id_file), each given by a small
 * number: the same number is the same fact. A group matching K = 3 keeps
 * the place of a machine that changed one or two of them, of a container
 * with a fresh MAC and machine_id on every start (the other four facts
 * still match), and refuses the disk (two facts) in another machine. Every re-bind moves the place: the record
 * never holds two places of one machine and the key's use count stays. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "act_env.h"
#include "redis_keys.h"
#include "validate.h"

enum {
    G_MATCH = 711, /* machine_match 3, 2 places per key */
    G_EXACT = 712, /* machine_match exact, 2 places per key */
    G_LEASE = 713, /* machine_match 3, 3 places, 1 h lease */
};
enum { N_COMP = 5 };

static act_env env;
static const char *const comp_names[N_COMP] = {"dmi_uuid", "board_serial", "disk_serial", "mac", "machine_id_file"};

static void tune_match(group_record *r) {
    r->policy.max_machines = 2;
    r->policy.machine_match = 3;
}
static void tune_exact(group_record *r) { r->policy.max_machines = 2; }
static void tune_lease(group_record *r) {
    r->policy.max_machines = 3;
    r->policy.machine_match = 3;
    r->policy.lease_seconds = 3600;
}

static int setup(void **state) {
    (void)state;
    if (env_start_stores(&env) != 0 || env_create_group(&env, G_MATCH, tune_match) != 0 ||
        env_create_group(&env, G_EXACT, tune_exact) != 0 || env_create_group(&env, G_LEASE, tune_lease) != 0)
        return -1;
    const char *extra[] = {"--rate-address-per-s", "100000", "--rate-address-burst", "100000", NULL};
    return env_start_server(&env, extra);
}

static int teardown(void **state) {
    (void)state;
    int st = env_stop_server(&env);
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

/* What one Activate answered. */
typedef struct answer {
    grpc_status_code status;
    char message[256];
    char license_id[LICENSE_ID_LEN + 1];
    uint32_t count;
    bool rebound;
} answer;

/* Activates (group, serial) on machine `m` whose components are the facts
 * `facts` (0: that component is left out). */
static answer activate_keyed(uint32_t group, uint32_t serial, unsigned m, const unsigned facts[N_COMP],
                             EVP_PKEY *place_key) {
    char key[PK_TEXT_LEN + 1], host[32];
    uint8_t pub[32];
    size_t pub_len = sizeof pub;
    uint8_t id[32], digests[N_COMP][32], buf[2048];
    assert_int_equal(env_make_key(&env, group, serial, false, 0, key), 0);
    env_machine(id, m);
    snprintf(host, sizeof host, "machine-%u", m);
    Activation__V1__MachineComponent comps[N_COMP], *list[N_COMP];
    size_t n = 0;
    for (size_t i = 0; i < N_COMP; i++) {
        if (!facts[i]) continue;
        char fact[64];
        snprintf(fact, sizeof fact, "%s=%u", comp_names[i], facts[i]);
        SHA256((const uint8_t *)fact, strlen(fact), digests[i]);
        activation__v1__machine_component__init(&comps[n]);
        comps[n].name = (char *)comp_names[i];
        comps[n].digest = (ProtobufCBinaryData){.len = 32, .data = digests[i]};
        list[n] = &comps[n];
        n++;
    }
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = key;
    rq.machine_id = (ProtobufCBinaryData){.len = sizeof id, .data = id};
    rq.hostname = host;
    rq.components = list;
    rq.n_components = n;
    if (place_key) {
        assert_int_equal(EVP_PKEY_get_raw_public_key(place_key, pub, &pub_len), 1);
        rq.place_key = (ProtobufCBinaryData){.len = pub_len, .data = pub};
    }
    size_t len = activation__v1__activate_request__pack(&rq, buf);
    rpc_result res;
    answer a = {.status = env_call(&env, PA_RPC_ACTIVATE, buf, len, 5000, &res)};
    snprintf(a.message, sizeof a.message, "%s", res.message);
    if (a.status == GRPC_STATUS_OK) {
        Activation__V1__ActivateResponse *r = activation__v1__activate_response__unpack(NULL, res.body_len, res.body);
        assert_non_null(r);
        Activation__V1__License *l = env_open_answer(&env, r);
        assert_non_null(l);
        snprintf(a.license_id, sizeof a.license_id, "%s", l->license_id);
        a.count = r->activation_count;
        a.rebound = r->rebound;
        activation__v1__license__free_unpacked(l, NULL);
        activation__v1__activate_response__free_unpacked(r, NULL);
    }
    rpc_result_clear(&res);
    return a;
}

static answer activate(uint32_t group, uint32_t serial, unsigned m, const unsigned facts[N_COMP]) {
    return activate_keyed(group, serial, m, facts, NULL);
}

static answer must_activate(uint32_t group, uint32_t serial, unsigned m, const unsigned facts[N_COMP]) {
    answer a = activate(group, serial, m, facts);
    if (a.status != GRPC_STATUS_OK) fail_msg("activate %u/%u on %u: %d %s", group, serial, m, a.status, a.message);
    return a;
}

/* The key's record: fields in all (places and the use counter). */
static long record_fields(uint32_t group, uint32_t serial) {
    redisReply *r = redisCommand(env.ks_a, "HLEN " PA_RKEY_RECORD_FMT, group, serial);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long n = (long)r->integer;
    freeReplyObject(r);
    return n;
}

/* The key's use counter 'n'. */
static long uses(uint32_t group, uint32_t serial) {
    redisReply *r = redisCommand(env.ks_a, "HGET " PA_RKEY_RECORD_FMT " n", group, serial);
    assert_non_null(r);
    long n = r->type == REDIS_REPLY_STRING ? atol(r->str) : 0;
    freeReplyObject(r);
    return n;
}

/* The place of machine m on (group, serial) as stored (malloc'd), *len its length; NULL if absent. */
static char *place_of(uint32_t group, uint32_t serial, unsigned m, size_t *len) {
    uint8_t id[32], d[32];
    env_machine(id, m);
    SHA256(id, sizeof id, d);
    redisReply *r = redisCommand(env.ks_a, "HGET " PA_RKEY_RECORD_FMT " %b", group, serial, d, (size_t)16);
    assert_non_null(r);
    char *out = NULL;
    if (r->type == REDIS_REPLY_STRING) {
        out = malloc(r->len + 1);
        assert_non_null(out);
        memcpy(out, r->str, r->len);
        *len = r->len;
    }
    freeReplyObject(r);
    return out;
}

static bool holds_place(uint32_t group, uint32_t serial, unsigned m) {
    size_t len;
    char *p = place_of(group, serial, m, &len);
    free(p);
    return p != NULL;
}

/* One component changed, then two: the place moves each time (K = 3 of 5
 * still shared), with its license id, without another use of the key. */
static void test_changed_components_keep_the_place(void **state) {
    (void)state;
    double before = env_metric(&env, "pa_activations_rebound_total");
    const unsigned first[N_COMP] = {1, 2, 3, 4, 5}, one[N_COMP] = {1, 2, 3, 4, 9}, two[N_COMP] = {1, 2, 3, 8, 10};
    answer a = must_activate(G_MATCH, 1, 100, first);
    assert_false(a.rebound);
    assert_int_equal(a.count, 1);

    answer b = must_activate(G_MATCH, 1, 101, one); /* a new machine_id, one component changed */
    assert_true(b.rebound);
    assert_string_equal(b.license_id, a.license_id);
    assert_int_equal(b.count, 1);
    assert_int_equal(record_fields(G_MATCH, 1), 2); /* 'n' and one place: moved, not copied */
    assert_false(holds_place(G_MATCH, 1, 100));
    assert_true(holds_place(G_MATCH, 1, 101));

    answer c = must_activate(G_MATCH, 1, 102, two); /* two changed against what the place knows now */
    assert_true(c.rebound);
    assert_string_equal(c.license_id, a.license_id);
    assert_int_equal(record_fields(G_MATCH, 1), 2);
    assert_int_equal(uses(G_MATCH, 1), 1);

    /* The same machine again: an exact match, not a re-bind. */
    answer d = must_activate(G_MATCH, 1, 102, two);
    assert_false(d.rebound);
    assert_string_equal(d.license_id, a.license_id);

    assert_true(env_metric(&env, "pa_activations_rebound_total") >= before + 2);
    char *log = env_read_log(&env);
    assert_non_null(log);
    assert_non_null(strstr(log, "\"activate.rebound\""));
    assert_non_null(strstr(log, "\"shared\":3"));
    free(log);

    /* The place now holds the tokens and hostname of its last machine,
     * and counts its re-binds (byte 32). */
    size_t len;
    char *p = place_of(G_MATCH, 1, 102, &len);
    assert_non_null(p);
    assert_int_equal(len, 34 + 5 * 8 + strlen("machine-102"));
    assert_int_equal((unsigned char)p[32], 2);
    assert_int_equal((unsigned char)p[33], 5);
    assert_memory_equal(p + 34 + 40, "machine-102", strlen("machine-102"));
    free(p);
}

/* Every component changed: another machine, which takes a new place, and
 * is refused once the key is full. */
static void test_all_changed_is_another_machine(void **state) {
    (void)state;
    const unsigned first[N_COMP] = {1, 2, 3, 4, 5}, other[N_COMP] = {11, 12, 13, 14, 15},
                   third[N_COMP] = {21, 22, 23, 24, 25};
    answer a = must_activate(G_MATCH, 2, 200, first);
    answer b = must_activate(G_MATCH, 2, 201, other);
    assert_false(b.rebound);
    assert_string_not_equal(b.license_id, a.license_id);
    assert_int_equal(b.count, 2);
    answer c = activate(G_MATCH, 2, 202, third);
    assert_int_equal(c.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(record_fields(G_MATCH, 2), 3);
    assert_int_equal(uses(G_MATCH, 2), 2);
}

/* A container: a fresh MAC and a fresh machine_id on every start. Ten
 * starts hold one place, used once. */
static void test_container_restarts_hold_one_place(void **state) {
    (void)state;
    char first_id[LICENSE_ID_LEN + 1] = "";
    for (unsigned i = 0; i < 10; i++) {
        const unsigned facts[N_COMP] = {1, 2, 3, 1000 + i, 5};
        answer a = must_activate(G_MATCH, 3, 300 + i, facts);
        assert_int_equal(a.count, 1);
        assert_int_equal(a.rebound, i > 0);
        if (i == 0) snprintf(first_id, sizeof first_id, "%s", a.license_id);
        assert_string_equal(a.license_id, first_id);
        assert_int_equal(record_fields(G_MATCH, 3), 2);
        assert_int_equal(uses(G_MATCH, 3), 1);
    }
}

/* The disk in another machine (or a VM copied with its disk's serial)
 * brings disk_serial and machine_id_file along: two shared, below K = 3: a
 * place of its own. (A clone onto another disk brings only machine_id_file.) */
static void test_cloned_disk_is_not_the_machine(void **state) {
    (void)state;
    const unsigned original[N_COMP] = {1, 2, 3, 4, 5}, clone[N_COMP] = {41, 42, 3, 44, 5};
    answer a = must_activate(G_MATCH, 4, 400, original);
    answer b = must_activate(G_MATCH, 4, 401, clone);
    assert_false(b.rebound);
    assert_string_not_equal(b.license_id, a.license_id);
    assert_int_equal(b.count, 2);
    assert_true(holds_place(G_MATCH, 4, 400));
}

/* A machine whose machine_id holds a place keeps that place, even when its
 * components now match another place of the key better. */
static void test_exact_match_wins(void **state) {
    (void)state;
    const unsigned mine[N_COMP] = {1, 2, 3, 4, 5}, theirs[N_COMP] = {51, 52, 53, 54, 55};
    answer a = must_activate(G_MATCH, 5, 500, mine);
    answer b = must_activate(G_MATCH, 5, 501, theirs);
    answer c = must_activate(G_MATCH, 5, 500, theirs);
    assert_false(c.rebound);
    assert_string_equal(c.license_id, a.license_id);
    assert_int_equal(c.count, 2);
    assert_true(holds_place(G_MATCH, 5, 501));
    assert_string_not_equal(b.license_id, a.license_id);
}

/* The place sharing the most components wins; between two sharing as
 * many, the one seen last. */
static void test_best_and_latest_match(void **state) {
    (void)state;
    const unsigned p1[N_COMP] = {1, 2, 3, 4, 5}, p2[N_COMP] = {1, 2, 6, 7, 8};
    answer a = must_activate(G_LEASE, 6, 600, p1);
    sleep(1); /* last seen is kept in seconds */
    answer b = must_activate(G_LEASE, 6, 601, p2);
    assert_false(b.rebound);                      /* two shared with the first: another machine */
    const unsigned tie[N_COMP] = {1, 2, 3, 7, 9}; /* dmi, board, disk of p1; dmi, board, mac of p2 */
    answer c = must_activate(G_LEASE, 6, 602, tie);
    assert_true(c.rebound);
    assert_string_equal(c.license_id, b.license_id); /* three each: the one seen last */
    const unsigned most[N_COMP] = {1, 2, 3, 4, 0};
    answer d = must_activate(G_LEASE, 6, 603, most);
    assert_true(d.rebound);
    assert_string_equal(d.license_id, a.license_id); /* four with p1 (all it sent), three with the other */
    assert_int_equal(record_fields(G_LEASE, 6), 3);
    assert_int_equal(uses(G_LEASE, 6), 2);
}

/* A group matching exactly never re-binds; nor does a request with fewer
 * than K components. */
static void test_exact_group_never_rebinds(void **state) {
    (void)state;
    const unsigned first[N_COMP] = {1, 2, 3, 4, 5}, one[N_COMP] = {1, 2, 3, 4, 9};
    answer a = must_activate(G_EXACT, 7, 700, first);
    answer b = must_activate(G_EXACT, 7, 701, one);
    assert_false(b.rebound);
    assert_string_not_equal(b.license_id, a.license_id);
    assert_int_equal(b.count, 2);

    const unsigned two_only[N_COMP] = {1, 2, 0, 0, 0};
    must_activate(G_MATCH, 8, 800, first);
    answer c = must_activate(G_MATCH, 8, 801, two_only);
    assert_false(c.rebound);
    assert_int_equal(c.count, 2);
}

/* Sends a request with the given components; returns the status, the message in msg. */
static grpc_status_code send_components(Activation__V1__MachineComponent *const *list, size_t n, char msg[256]) {
    char key[PK_TEXT_LEN + 1];
    uint8_t id[32], buf[4096];
    assert_int_equal(env_make_key(&env, G_MATCH, 9, false, 0, key), 0);
    env_machine(id, 900);
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = key;
    rq.machine_id = (ProtobufCBinaryData){.len = sizeof id, .data = id};
    rq.components = (Activation__V1__MachineComponent **)list;
    rq.n_components = n;
    size_t len = activation__v1__activate_request__pack(&rq, buf);
    rpc_result res;
    grpc_status_code st = env_call(&env, PA_RPC_ACTIVATE, buf, len, 5000, &res);
    snprintf(msg, 256, "%s", res.message);
    rpc_result_clear(&res);
    return st;
}

static void expect_refused(Activation__V1__MachineComponent *const *list, size_t n, const char *want) {
    char msg[256];
    assert_int_equal(send_components(list, n, msg), GRPC_STATUS_INVALID_ARGUMENT);
    if (!strstr(msg, want)) fail_msg("message '%s' does not say '%s'", msg, want);
}

static void test_bad_components_are_refused(void **state) {
    (void)state;
    static uint8_t d31[31], d32[32], d33[33];
    char names[17][8];
    Activation__V1__MachineComponent c[17], *list[17];
    for (size_t i = 0; i < 17; i++) {
        snprintf(names[i], sizeof names[i], "c%zu", i);
        activation__v1__machine_component__init(&c[i]);
        c[i].name = names[i];
        c[i].digest = (ProtobufCBinaryData){.len = 32, .data = d32};
        list[i] = &c[i];
    }
    expect_refused(list, 17, "components: at most 16 allowed, got 17");
    c[1].name = "";
    expect_refused(list, 2, "components[1].name: must be 1 to 32 characters, got 0");
    c[1].name = "a234567890123456789012345678901234"; /* 34 */
    expect_refused(list, 2, "components[1].name: must be 1 to 32 characters, got 34");
    c[1].name = "Mac";
    expect_refused(list, 2, "components[1].name: byte 0x4D at position 1");
    c[1].name = "mac addr";
    expect_refused(list, 2, "components[1].name: byte 0x20 at position 4");
    c[0].name = "mac";
    c[1].name = "mac";
    expect_refused(list, 2, "components[1].name: duplicate \"mac\"");
    c[1].name = "disk_serial";
    c[1].digest = (ProtobufCBinaryData){.len = sizeof d31, .data = d31};
    expect_refused(list, 2, "components[1].digest: must be exactly 32 bytes, got 31");
    c[1].digest = (ProtobufCBinaryData){.len = sizeof d33, .data = d33};
    expect_refused(list, 2, "components[1].digest: must be exactly 32 bytes, got 33");
    c[1].digest = (ProtobufCBinaryData){.len = 0, .data = NULL};
    expect_refused(list, 2, "components[1].digest: must be exactly 32 bytes, got 0");
    /* Nothing was written for any of them. */
    assert_int_equal(record_fields(G_MATCH, 9), 0);
    /* 16 well-formed ones (names of the whole alphabet) are fine. */
    c[0].name = "a-z0.9_";
    c[1].name = "a2345678901234567890123456789012"; /* 32 */
    c[1].digest = (ProtobufCBinaryData){.len = 32, .data = d32};
    char msg[256];
    assert_int_equal(send_components(list, 16, msg), GRPC_STATUS_OK);
}

/* Writes a place in an earlier layout: random | expires [| key digest]. */
static void plant_old_place(uint32_t group, uint32_t serial, unsigned m, const uint8_t random[8], uint32_t expires,
                            EVP_PKEY *k) {
    uint8_t id[32], d[32], v[28], pub[32];
    size_t pub_len = sizeof pub;
    env_machine(id, m);
    SHA256(id, sizeof id, d);
    memcpy(v, random, 8);
    for (int i = 0; i < 4; i++) v[8 + i] = (uint8_t)(expires >> (8 * i));
    size_t len = 12;
    if (k) {
        uint8_t h[32];
        assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub, &pub_len), 1);
        SHA256(pub, pub_len, h);
        memcpy(v + 12, h, 16);
        len = 28;
    }
    redisReply *r =
        redisCommand(env.ks_a, "HSET " PA_RKEY_RECORD_FMT " n 1 %b %b", group, serial, d, (size_t)16, v, len);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
}

/* Places of the 28- and 12-byte layouts still renew and activate, and are
 * rewritten in the current one. */
static void test_old_places_are_read_and_rewritten(void **state) {
    (void)state;
    EVP_PKEY *k = env_place_key(31);
    const uint8_t random[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint32_t expires = (uint32_t)time(NULL) + 600;
    plant_old_place(G_LEASE, 10, 1000, random, expires, k);
    char lid[LICENSE_ID_LEN + 1];
    license_id_format(lid, G_LEASE, 10, random);
    uint8_t id[32], buf[1024];
    env_machine(id, 1000);
    size_t len = env_license_request(lid, id, k, PLACE_OP_RENEW, 0, buf, sizeof buf);
    rpc_result res;
    assert_int_equal(env_call(&env, PA_RPC_RENEW, buf, len, 5000, &res), GRPC_STATUS_OK);
    rpc_result_clear(&res);
    char *p = place_of(G_LEASE, 10, 1000, &len);
    assert_non_null(p);
    assert_int_equal(len, 34); /* no components, no hostname known yet */
    assert_memory_equal(p, random, 8);
    uint32_t seen = 0;
    for (int i = 0; i < 4; i++) seen |= (uint32_t)(unsigned char)p[28 + i] << (8 * i);
    assert_true(seen + 5 >= (uint32_t)time(NULL));
    free(p);
    /* the key still binds it: another key is refused */
    EVP_PKEY *other = env_place_key(32);
    len = env_license_request(lid, id, other, PLACE_OP_RENEW, 0, buf, sizeof buf);
    assert_int_equal(env_call(&env, PA_RPC_RENEW, buf, len, 5000, &res), GRPC_STATUS_UNAUTHENTICATED);
    rpc_result_clear(&res);

    /* A 12-byte place, activated again by its machine: the same place, now
     * with its components (so it can follow the machine) and hostname. */
    plant_old_place(G_LEASE, 11, 1100, random, expires, NULL);
    const unsigned facts[N_COMP] = {1, 2, 3, 4, 5};
    answer a = must_activate(G_LEASE, 11, 1100, facts);
    assert_false(a.rebound);
    assert_string_equal(a.license_id + 16, "0102030405060708");
    p = place_of(G_LEASE, 11, 1100, &len);
    assert_non_null(p);
    assert_int_equal(len, 34 + 40 + strlen("machine-1100"));
    free(p);
    const unsigned moved[N_COMP] = {1, 2, 3, 4, 6};
    answer b = must_activate(G_LEASE, 11, 1101, moved);
    assert_true(b.rebound);
    assert_string_equal(b.license_id, a.license_id);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}

/* Renew of license `lid` from machine m with a proof by k: the status. */
static grpc_status_code renew(const char *lid, unsigned m, EVP_PKEY *k) {
    uint8_t id[32], buf[1024];
    env_machine(id, m);
    size_t len = env_license_request(lid, id, k, PLACE_OP_RENEW, 0, buf, sizeof buf);
    rpc_result res;
    grpc_status_code st = env_call(&env, PA_RPC_RENEW, buf, len, 5000, &res);
    rpc_result_clear(&res);
    return st;
}

/* A re-bound place keeps its place key unless the request brings one, and
 * renews under its new machine_id only. */
static void test_rebound_place_keeps_or_changes_its_key(void **state) {
    (void)state;
    EVP_PKEY *k1 = env_place_key(41), *k2 = env_place_key(42);
    const unsigned first[N_COMP] = {1, 2, 3, 4, 5}, one[N_COMP] = {1, 2, 3, 4, 9}, two[N_COMP] = {1, 2, 3, 8, 9};
    answer a = activate_keyed(G_LEASE, 13, 1300, first, k1);
    assert_int_equal(a.status, GRPC_STATUS_OK);
    answer b = activate_keyed(G_LEASE, 13, 1301, one, NULL); /* no key: the place keeps k1 */
    assert_true(b.rebound);
    assert_int_equal(renew(b.license_id, 1301, k1), GRPC_STATUS_OK);
    assert_int_equal(renew(b.license_id, 1300, k1), GRPC_STATUS_NOT_FOUND); /* the old machine_id holds nothing */
    answer c = activate_keyed(G_LEASE, 13, 1302, two, k2);                  /* a new key: bound to it */
    assert_true(c.rebound);
    assert_int_equal(renew(c.license_id, 1302, k1), GRPC_STATUS_UNAUTHENTICATED);
    assert_int_equal(renew(c.license_id, 1302, k2), GRPC_STATUS_OK);
    assert_int_equal(record_fields(G_LEASE, 13), 2);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}

/* The machine log: a re-bind is op b, naming the place it moved from in
 * `was`; every other entry has an empty `was`. */
static void test_machine_log_names_the_old_place(void **state) {
    (void)state;
    const unsigned first[N_COMP] = {1, 2, 3, 4, 5}, one[N_COMP] = {1, 2, 3, 4, 9};
    must_activate(G_MATCH, 12, 1200, first);
    must_activate(G_MATCH, 12, 1201, one);
    redisReply *r = redisCommand(env.ks_a, "XREVRANGE " PA_RKEY_GROUP_MLOG_FMT " + - COUNT 2", (unsigned)G_MATCH);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    uint8_t id[32], old[32];
    env_machine(id, 1200);
    SHA256(id, sizeof id, old);
    for (size_t i = 0; i < 2; i++) {
        const redisReply *fv = r->element[i]->element[1];
        assert_int_equal(fv->elements, 26);
        assert_string_equal(fv->element[24]->str, "was");
        if (i == 0) {
            assert_string_equal(fv->element[1]->str, "b");
            assert_int_equal(fv->element[25]->len, 16);
            assert_memory_equal(fv->element[25]->str, old, 16);
        } else {
            assert_string_equal(fv->element[1]->str, "a");
            assert_int_equal(fv->element[25]->len, 0);
        }
    }
    freeReplyObject(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_changed_components_keep_the_place),
        cmocka_unit_test(test_all_changed_is_another_machine),
        cmocka_unit_test(test_container_restarts_hold_one_place),
        cmocka_unit_test(test_cloned_disk_is_not_the_machine),
        cmocka_unit_test(test_exact_match_wins),
        cmocka_unit_test(test_best_and_latest_match),
        cmocka_unit_test(test_exact_group_never_rebinds),
        cmocka_unit_test(test_bad_components_are_refused),
        cmocka_unit_test(test_old_places_are_read_and_rewritten),
        cmocka_unit_test(test_machine_log_names_the_old_place),
        cmocka_unit_test(test_rebound_place_keeps_or_changes_its_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
