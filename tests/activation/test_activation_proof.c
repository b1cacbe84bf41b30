/* test_activation_proof.c -- Renew and Deactivate need proof of holding the
 * place key (activation.proto, "Proof of possession"), against the real
 * server and redis-server:
 *   - a copied license file (license id + machine id, without the private
 *     key) can neither renew nor deactivate; with the key both work;
 *   - an old proof (outside the window), a tampered signature, a proof for
 *     the other operation, machine or license are refused; a replay inside
 *     the window only repeats what was done;
 *   - a place without a key (made before proofs, or by an Activate without
 *     place_key) is bound by its first proven call; activating the machine
 *     again with a new key rebinds it;
 *   - refused proofs cost the address failure tokens;
 *   - a NUL inside a string field is refused, not cut short. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "act_env.h"
#include "redis_keys.h"
#include "validate.h"

enum {
    G_PERM = 4365, /* permanent, 3 machines per key */
    G_LEASE = 120, /* 1 h lease */
};

static act_env env;

static void tune_perm(group_record *r) { r->policy.max_machines = 3; }
static void tune_lease(group_record *r) {
    r->policy.max_machines = 3;
    r->policy.lease_seconds = 3600;
}

static int setup(void **state) {
    if (env_start_stores(&env) != 0 || env_create_group(&env, G_PERM, tune_perm) != 0 ||
        env_create_group(&env, G_LEASE, tune_lease) != 0)
        return -1;
    const char *extra[] = {"--rate-address-per-s", "100000", "--rate-address-burst", "100000", NULL};
    return env_start_server(&env, extra);
}

static int teardown(void **state) {
    int st = env_stop_server(&env);
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

/* Activates (group, serial) on machine m with place key `k` (NULL: none);
 * license_id gets the license's id. */
static void activate_with(uint32_t group, uint32_t serial, unsigned m, EVP_PKEY *k,
                          char license_id[LICENSE_ID_LEN + 1]) {
    char key[PK_TEXT_LEN + 1];
    uint8_t id[32];
    assert_int_equal(env_make_key(&env, group, serial, false, 0, key), 0);
    env_machine(id, m);
    rpc_result res;
    Activation__V1__ActivateResponse *r;
    grpc_status_code st = env_activate_keyed(&env, key, id, sizeof id, k, &res, &r);
    if (st != GRPC_STATUS_OK) fprintf(stderr, "activate: %d %s\n", st, res.message);
    assert_int_equal(st, GRPC_STATUS_OK);
    rpc_result_clear(&res);
    Activation__V1__License *l = env_open_answer(&env, r);
    assert_non_null(l);
    snprintf(license_id, LICENSE_ID_LEN + 1, "%s", l->license_id);
    activation__v1__license__free_unpacked(l, NULL);
    activation__v1__activate_response__free_unpacked(r, NULL);
}

/* Sends a packed Renew/Deactivate; returns the status, the trailer's
 * error-reason in `reason` (may be NULL). */
static grpc_status_code send_raw(const char *path, const uint8_t *buf, size_t len, char reason[32]) {
    assert_true(len > 0);
    rpc_result res;
    grpc_status_code st = env_call(&env, path, buf, len, 5000, &res);
    if (reason) snprintf(reason, 32, "%s", res.reason);
    if (st != GRPC_STATUS_OK) fprintf(stderr, "  %s -> %d %s [%s]\n", path, st, res.message, res.reason);
    rpc_result_clear(&res);
    return st;
}

/* Renew (or Deactivate) license_id from machine m, signed by `k` at `t` (0: now). */
static grpc_status_code call(place_op op, const char *license_id, unsigned m, EVP_PKEY *k, int64_t t, char reason[32]) {
    uint8_t id[32], buf[512];
    env_machine(id, m);
    size_t len = env_license_request(license_id, id, k, op, t, buf, sizeof buf);
    return send_raw(op == PLACE_OP_RENEW ? PA_RPC_RENEW : PA_RPC_DEACTIVATE, buf, len, reason);
}

/* The stored place of machine m on (group, serial), in the place format of
 * docs/machines.md: -1 absent, 0 no key bound (16 zero bytes), 1 bound. */
static int place_bound(uint32_t group, uint32_t serial, unsigned m) {
    uint8_t id[32], d[32];
    static const uint8_t zero[16];
    env_machine(id, m);
    SHA256(id, sizeof id, d);
    char record[PA_RKEY_MAX];
    pa_rkey_record(record, sizeof record, group, serial);
    redisReply *r = redisCommand(env.ks_a, "HGET %s %b", record, d, (size_t)16);
    assert_non_null(r);
    int bound = -1;
    if (r->type == REDIS_REPLY_STRING) {
        assert_true(r->len >= 34); /* random, expiry, key digest, seen, re-binds, tokens: none */
        bound = memcmp(r->str + 12, zero, sizeof zero) != 0;
    }
    freeReplyObject(r);
    return bound;
}

static void test_copied_license_cannot_renew_or_deactivate(void **state) {
    EVP_PKEY *mine = env_place_key(1), *thief = env_place_key(2);
    char lid[LICENSE_ID_LEN + 1], reason[32];
    activate_with(G_LEASE, 1, 1, mine, lid);
    assert_int_equal(place_bound(G_LEASE, 1, 1), 1);

    /* The license file gives license id and machine id: not enough. */
    assert_int_equal(call(PLACE_OP_RENEW, lid, 1, NULL, 0, reason), GRPC_STATUS_UNAUTHENTICATED);
    assert_string_equal(reason, "PROOF_INVALID");
    assert_int_equal(call(PLACE_OP_DEACTIVATE, lid, 1, NULL, 0, reason), GRPC_STATUS_UNAUTHENTICATED);
    assert_string_equal(reason, "PROOF_INVALID");
    /* Nor is a key of one's own, however well it signs. */
    assert_int_equal(call(PLACE_OP_RENEW, lid, 1, thief, 0, reason), GRPC_STATUS_UNAUTHENTICATED);
    assert_string_equal(reason, "PROOF_WRONG_KEY");
    assert_int_equal(call(PLACE_OP_DEACTIVATE, lid, 1, thief, 0, reason), GRPC_STATUS_UNAUTHENTICATED);
    assert_string_equal(reason, "PROOF_WRONG_KEY");
    assert_int_equal(place_bound(G_LEASE, 1, 1), 1); /* the place is still held */

    /* The installer that holds the key renews and deactivates. */
    assert_int_equal(call(PLACE_OP_RENEW, lid, 1, mine, 0, NULL), GRPC_STATUS_OK);
    assert_int_equal(call(PLACE_OP_DEACTIVATE, lid, 1, mine, 0, NULL), GRPC_STATUS_OK);
    assert_int_equal(place_bound(G_LEASE, 1, 1), -1);
    assert_true(env_metric(&env, "pa_renewals_refused_total{reason=\"bad_proof\"}") >= 2);
    EVP_PKEY_free(mine);
    EVP_PKEY_free(thief);
}

static void test_old_and_replayed_proofs(void **state) {
    EVP_PKEY *k = env_place_key(3);
    char lid[LICENSE_ID_LEN + 1], reason[32];
    activate_with(G_LEASE, 2, 3, k, lid);
    int64_t now = (int64_t)time(NULL);
    /* Outside the 300 s window, either way: refused as stale. */
    assert_int_equal(call(PLACE_OP_RENEW, lid, 3, k, now - 400, reason), GRPC_STATUS_UNAUTHENTICATED);
    assert_string_equal(reason, "PROOF_STALE");
    assert_int_equal(call(PLACE_OP_RENEW, lid, 3, k, now + 400, reason), GRPC_STATUS_UNAUTHENTICATED);
    assert_string_equal(reason, "PROOF_STALE");
    assert_int_equal(call(PLACE_OP_DEACTIVATE, lid, 3, k, now - 400, reason), GRPC_STATUS_UNAUTHENTICATED);
    assert_string_equal(reason, "PROOF_STALE");
    /* Inside it, a clock a few minutes off is fine. */
    assert_int_equal(call(PLACE_OP_RENEW, lid, 3, k, now - 200, NULL), GRPC_STATUS_OK);
    assert_int_equal(call(PLACE_OP_RENEW, lid, 3, k, now + 200, NULL), GRPC_STATUS_OK);

    /* A replayed Renew inside the window renews again, as its holder asked. */
    uint8_t id[32], renew[512], deact[512];
    env_machine(id, 3);
    size_t rlen = env_license_request(lid, id, k, PLACE_OP_RENEW, 0, renew, sizeof renew);
    assert_int_equal(send_raw(PA_RPC_RENEW, renew, rlen, NULL), GRPC_STATUS_OK);
    assert_int_equal(send_raw(PA_RPC_RENEW, renew, rlen, NULL), GRPC_STATUS_OK);
    /* A replayed Deactivate finds nothing left to free ... */
    size_t dlen = env_license_request(lid, id, k, PLACE_OP_DEACTIVATE, 0, deact, sizeof deact);
    assert_int_equal(send_raw(PA_RPC_DEACTIVATE, deact, dlen, NULL), GRPC_STATUS_OK);
    assert_int_equal(send_raw(PA_RPC_DEACTIVATE, deact, dlen, NULL), GRPC_STATUS_NOT_FOUND);
    /* ... and cannot free the place taken again: it has a new license id. */
    char lid2[LICENSE_ID_LEN + 1];
    activate_with(G_LEASE, 2, 3, k, lid2);
    assert_string_not_equal(lid, lid2);
    assert_int_equal(send_raw(PA_RPC_DEACTIVATE, deact, dlen, NULL), GRPC_STATUS_NOT_FOUND);
    assert_int_equal(send_raw(PA_RPC_RENEW, renew, rlen, NULL), GRPC_STATUS_NOT_FOUND);
    assert_int_equal(place_bound(G_LEASE, 2, 3), 1);
    EVP_PKEY_free(k);
}

/* A RenewRequest for machine m with a proof whose parts the caller may spoil. */
typedef struct proof_parts {
    uint8_t pub[PLACE_KEY_LEN];
    size_t pub_len;
    uint8_t sig[PLACE_PROOF_SIG_LEN];
    size_t sig_len;
    int64_t t;
} proof_parts;

static void sign_parts(EVP_PKEY *k, place_op op, const char *lid, unsigned signed_machine, proof_parts *p) {
    uint8_t id[32];
    env_machine(id, signed_machine);
    p->pub_len = sizeof p->pub;
    p->sig_len = sizeof p->sig;
    p->t = (int64_t)time(NULL);
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, p->pub, &p->pub_len), 1);
    assert_int_equal(place_proof_sign(k, op, lid, id, p->t, p->sig), 0);
}

static grpc_status_code send_parts(const char *path, const char *lid, unsigned m, const proof_parts *p,
                                   char reason[32]) {
    uint8_t id[32], buf[512];
    env_machine(id, m);
    Activation__V1__PlaceProof proof = ACTIVATION__V1__PLACE_PROOF__INIT;
    proof.place_key = (ProtobufCBinaryData){.len = p->pub_len, .data = (uint8_t *)p->pub};
    proof.timestamp = p->t;
    proof.signature = (ProtobufCBinaryData){.len = p->sig_len, .data = (uint8_t *)p->sig};
    Activation__V1__RenewRequest rq = ACTIVATION__V1__RENEW_REQUEST__INIT;
    rq.license_id = (char *)lid;
    rq.machine_id = (ProtobufCBinaryData){.len = sizeof id, .data = id};
    rq.proof = &proof;
    return send_raw(path, buf, activation__v1__renew_request__pack(&rq, buf), reason);
}

static void test_tampered_or_misused_proofs(void **state) {
    EVP_PKEY *k = env_place_key(4);
    char lid[LICENSE_ID_LEN + 1], other[LICENSE_ID_LEN + 1], reason[32];
    activate_with(G_LEASE, 3, 4, k, lid);
    activate_with(G_LEASE, 4, 4, k, other); /* same machine and key, another key's place */
    proof_parts p;

    sign_parts(k, PLACE_OP_RENEW, lid, 4, &p);
    p.sig[10] ^= 0x01; /* one bit of the signature */
    assert_int_equal(send_parts(PA_RPC_RENEW, lid, 4, &p, reason), GRPC_STATUS_UNAUTHENTICATED);
    assert_string_equal(reason, "PROOF_INVALID");
    sign_parts(k, PLACE_OP_RENEW, lid, 4, &p);
    p.t += 1; /* the time it claims is not the time it signed */
    assert_int_equal(send_parts(PA_RPC_RENEW, lid, 4, &p, reason), GRPC_STATUS_UNAUTHENTICATED);
    assert_string_equal(reason, "PROOF_INVALID");
    /* A Renew's proof does not deactivate. */
    sign_parts(k, PLACE_OP_RENEW, lid, 4, &p);
    assert_int_equal(send_parts(PA_RPC_DEACTIVATE, lid, 4, &p, reason), GRPC_STATUS_UNAUTHENTICATED);
    assert_string_equal(reason, "PROOF_INVALID");
    /* Nor does one license's proof serve another, or another machine's. */
    sign_parts(k, PLACE_OP_RENEW, lid, 4, &p);
    assert_int_equal(send_parts(PA_RPC_RENEW, other, 4, &p, reason), GRPC_STATUS_UNAUTHENTICATED);
    sign_parts(k, PLACE_OP_RENEW, lid, 5, &p);
    assert_int_equal(send_parts(PA_RPC_RENEW, lid, 4, &p, reason), GRPC_STATUS_UNAUTHENTICATED);
    assert_string_equal(reason, "PROOF_INVALID");
    /* Wrong sizes are named. */
    sign_parts(k, PLACE_OP_RENEW, lid, 4, &p);
    p.pub_len = 31;
    assert_int_equal(send_parts(PA_RPC_RENEW, lid, 4, &p, reason), GRPC_STATUS_UNAUTHENTICATED);
    sign_parts(k, PLACE_OP_RENEW, lid, 4, &p);
    p.sig_len = 63;
    assert_int_equal(send_parts(PA_RPC_RENEW, lid, 4, &p, reason), GRPC_STATUS_UNAUTHENTICATED);
    assert_string_equal(reason, "PROOF_INVALID");
    /* The untouched proof works, and the place survived all of the above. */
    sign_parts(k, PLACE_OP_RENEW, lid, 4, &p);
    assert_int_equal(send_parts(PA_RPC_RENEW, lid, 4, &p, NULL), GRPC_STATUS_OK);
    sign_parts(k, PLACE_OP_DEACTIVATE, lid, 4, &p);
    assert_int_equal(send_parts(PA_RPC_DEACTIVATE, lid, 4, &p, NULL), GRPC_STATUS_OK);
    EVP_PKEY_free(k);
}

/* Migration: a place without a key -- as every place made before proofs
 * existed -- is bound by its first proven call, and then only that key works. */
static void test_unbound_place_is_bound_by_first_proof(void **state) {
    EVP_PKEY *first = env_place_key(6), *later = env_place_key(7);
    char lid[LICENSE_ID_LEN + 1], reason[32];
    activate_with(G_PERM, 5, 6, NULL, lid);
    assert_int_equal(place_bound(G_PERM, 5, 6), 0); /* no key yet */
    assert_int_equal(call(PLACE_OP_RENEW, lid, 6, NULL, 0, reason), GRPC_STATUS_UNAUTHENTICATED);
    assert_int_equal(call(PLACE_OP_RENEW, lid, 6, first, 0, NULL), GRPC_STATUS_OK);
    assert_int_equal(place_bound(G_PERM, 5, 6), 1);
    assert_int_equal(call(PLACE_OP_RENEW, lid, 6, later, 0, reason), GRPC_STATUS_UNAUTHENTICATED);
    assert_string_equal(reason, "PROOF_WRONG_KEY");
    assert_int_equal(call(PLACE_OP_RENEW, lid, 6, first, 0, NULL), GRPC_STATUS_OK);

    /* A Deactivate may be the first proven call too. */
    char lid2[LICENSE_ID_LEN + 1];
    activate_with(G_PERM, 6, 6, NULL, lid2);
    assert_int_equal(call(PLACE_OP_DEACTIVATE, lid2, 6, later, 0, NULL), GRPC_STATUS_OK);
    assert_int_equal(place_bound(G_PERM, 6, 6), -1);
    EVP_PKEY_free(first);
    EVP_PKEY_free(later);
}

/* Activating the same machine again with a new place key rebinds its place
 * (the way back for an installer that lost its key); without a key the
 * place keeps the one it has. */
static void test_reactivation_rotates_the_key(void **state) {
    EVP_PKEY *old = env_place_key(8), *fresh = env_place_key(9);
    char lid[LICENSE_ID_LEN + 1], lid2[LICENSE_ID_LEN + 1], reason[32];
    activate_with(G_LEASE, 7, 8, old, lid);
    activate_with(G_LEASE, 7, 8, fresh, lid2);
    assert_string_equal(lid, lid2); /* the same place */
    assert_int_equal(call(PLACE_OP_RENEW, lid, 8, old, 0, reason), GRPC_STATUS_UNAUTHENTICATED);
    assert_string_equal(reason, "PROOF_WRONG_KEY");
    assert_int_equal(call(PLACE_OP_RENEW, lid, 8, fresh, 0, NULL), GRPC_STATUS_OK);
    activate_with(G_LEASE, 7, 8, NULL, lid2);
    assert_int_equal(call(PLACE_OP_RENEW, lid, 8, old, 0, NULL), GRPC_STATUS_UNAUTHENTICATED);
    assert_int_equal(call(PLACE_OP_RENEW, lid, 8, fresh, 0, NULL), GRPC_STATUS_OK);
    EVP_PKEY_free(old);
    EVP_PKEY_free(fresh);
}

static void test_place_key_must_be_32_bytes(void **state) {
    char key[PK_TEXT_LEN + 1];
    uint8_t id[32], pub[31] = {1}, buf[512];
    assert_int_equal(env_make_key(&env, G_PERM, 8, false, 0, key), 0);
    env_machine(id, 10);
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = key;
    rq.machine_id = (ProtobufCBinaryData){.len = sizeof id, .data = id};
    rq.place_key = (ProtobufCBinaryData){.len = sizeof pub, .data = pub};
    rpc_result res;
    assert_int_equal(env_call(&env, PA_RPC_ACTIVATE, buf, activation__v1__activate_request__pack(&rq, buf), 5000, &res),
                     GRPC_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(res.message, "place_key: must be exactly 32 bytes"));
    rpc_result_clear(&res);
}

/* A length-delimited field by hand: protobuf-c packs strings with strlen. */
static size_t put_field(uint8_t *buf, unsigned field, const void *data, size_t len) {
    buf[0] = (uint8_t)(field << 3 | 2);
    buf[1] = (uint8_t)len; /* every value here is shorter than 128 bytes */
    memcpy(buf + 2, data, len);
    return len + 2;
}

/* protobuf-c hands strings over NUL-terminated: "KEY\0junk" would read as
 * KEY. The server refuses the NUL instead, naming the field. */
static void test_nul_inside_a_string_is_refused(void **state) {
    char key[PK_TEXT_LEN + 1], text[64];
    uint8_t id[32], buf[256];
    assert_int_equal(env_make_key(&env, G_PERM, 9, false, 0, key), 0);
    env_machine(id, 11);
    size_t klen = strlen(key);
    memcpy(text, key, klen);
    memcpy(text + klen, "\0junk", 5);
    size_t n = put_field(buf, 1, text, klen + 5);
    n += put_field(buf + n, 2, id, sizeof id);
    rpc_result res;
    assert_int_equal(env_call(&env, PA_RPC_ACTIVATE, buf, n, 5000, &res), GRPC_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(res.message, "product_key: byte 0x00 at position 30"));
    rpc_result_clear(&res);
    /* The same key without the tail activates: the refusal was the NUL's. */
    n = put_field(buf, 1, key, klen);
    n += put_field(buf + n, 2, id, sizeof id);
    assert_int_equal(env_call(&env, PA_RPC_ACTIVATE, buf, n, 5000, &res), GRPC_STATUS_OK);
    rpc_result_clear(&res);

    /* Renew's license_id likewise. */
    const char *lid = "0000110d000000090000000000000000";
    memcpy(text, lid, 32);
    memcpy(text + 32, "\0x", 2);
    n = put_field(buf, 1, text, 34);
    n += put_field(buf + n, 2, id, sizeof id);
    assert_int_equal(env_call(&env, PA_RPC_RENEW, buf, n, 5000, &res), GRPC_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(res.message, "license_id: byte 0x00 at position 33"));
    rpc_result_clear(&res);
}

/* Runs last: restarts the server with a small address bucket. A refused
 * proof costs the failure tokens a key that is not genuine costs. */
static void test_refused_proofs_cost_tokens(void **state) {
    EVP_PKEY *k = env_place_key(12);
    char lid[LICENSE_ID_LEN + 1];
    activate_with(G_LEASE, 12, 12, k, lid);
    assert_int_equal(env_stop_server(&env), 0);
    const char *tight[] = {
        "--rate-address-per-s", "0.01", "--rate-address-burst", "10", "--rate-failure-cost", "5", NULL};
    assert_int_equal(env_start_server(&env, tight), 0);
    assert_int_equal(call(PLACE_OP_RENEW, lid, 12, NULL, 0, NULL), GRPC_STATUS_UNAUTHENTICATED);
    assert_int_equal(call(PLACE_OP_RENEW, lid, 12, NULL, 0, NULL), GRPC_STATUS_UNAUTHENTICATED);
    /* 10 tokens, 5 each: the address has none left, for good proofs too. */
    assert_int_equal(call(PLACE_OP_RENEW, lid, 12, NULL, 0, NULL), GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(call(PLACE_OP_RENEW, lid, 12, k, 0, NULL), GRPC_STATUS_RESOURCE_EXHAUSTED);
    EVP_PKEY_free(k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copied_license_cannot_renew_or_deactivate),
        cmocka_unit_test(test_old_and_replayed_proofs),
        cmocka_unit_test(test_tampered_or_misused_proofs),
        cmocka_unit_test(test_unbound_place_is_bound_by_first_proof),
        cmocka_unit_test(test_reactivation_rotates_the_key),
        cmocka_unit_test(test_place_key_must_be_32_bytes),
        cmocka_unit_test(test_nul_inside_a_string_is_refused),
        cmocka_unit_test(test_refused_proofs_cost_tokens),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
