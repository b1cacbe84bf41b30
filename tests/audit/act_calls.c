/* act_calls.c -- the activation API calls shared by the cluster tests
 * (act_calls.h). Requests are packed into stack buffers: every field is
 * small and fixed (a 29-character key, a 32-byte machine id). */
#include "act_calls.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "activation/v1/activation.pb-c.h"
#include "fixture.h"
#include "rpc_methods.h"

int act_server_start(act_server *s, const audit_env *e, const char *redis_url, const char *signing_key,
                     const char *const *extra) {
    char listen[64], metrics[64], ca[400], cert[400], key[400];
    s->port = fixture_free_port();
    do s->metrics_port = fixture_free_port();
    while (s->metrics_port == s->port);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s->port);
    snprintf(metrics, sizeof metrics, "127.0.0.1:%d", s->metrics_port);
    snprintf(s->target, sizeof s->target, "127.0.0.1:%d", s->port);
    snprintf(s->log, sizeof s->log, "%s/%s.log", e->dir, s->name);
    snprintf(ca, sizeof ca, "%s/ca.pem", e->certs);
    snprintf(cert, sizeof cert, "%s/activation-client.pem", e->certs);
    snprintf(key, sizeof key, "%s/activation-client.key", e->certs);
    const char *base[] = {fixture_bin("activation-server/activation-server"),
                          "--listen",
                          listen,
                          "--redis-url",
                          redis_url,
                          "--kek",
                          e->kek_a,
                          "--signing-key",
                          signing_key,
                          "--metrics-listen",
                          metrics,
                          "--audit-target",
                          e->target,
                          "--audit-ca",
                          ca,
                          "--audit-cert",
                          cert,
                          "--audit-key",
                          key,
                          "--audit-consumer",
                          s->name,
                          "--insecure-plaintext"};
    const char *argv[64];
    size_t n = 0;
    for (; n < sizeof base / sizeof base[0]; n++) argv[n] = base[n];
    for (; extra && *extra && n < 63; extra++) argv[n++] = *extra;
    argv[n] = NULL;
    s->pid = fixture_spawn((char *const *)argv, s->log, s->port, 15000);
    if (s->pid < 0) return -1;
    s->ch = rpc_channel_new(s->target, NULL);
    return s->ch ? 0 : -1;
}

int act_server_stop(act_server *s, int sig) {
    rpc_channel_free(s->ch);
    s->ch = NULL;
    if (s->pid < 0) return -1;
    int st = fixture_stop(s->pid, sig, 30000);
    s->pid = -1;
    return st;
}

int act_make_signing_key(const audit_env *e, char *path, size_t n) {
    snprintf(path, n, "%s/license-signing.pem", e->dir);
    char *argv[] = {"/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out", path, NULL};
    return fixture_run(argv, NULL, NULL) == 0 ? 0 : -1;
}

static void report(const char *what, grpc_status_code st, const rpc_result *res) {
    if (st != GRPC_STATUS_OK && st != GRPC_STATUS_UNAVAILABLE) fprintf(stderr, "  %s: %d %s\n", what, st, res->message);
}

/* The license id and tree size of an Activate answer; -1 if it does not parse. */
static int unpack_grant(const rpc_result *res, char license_id[33], uint32_t *tree_size) {
    Activation__V1__ActivateResponse *r = activation__v1__activate_response__unpack(NULL, res->body_len, res->body);
    Activation__V1__License *l = r ? activation__v1__license__unpack(NULL, r->license.len, r->license.data) : NULL;
    if (l && license_id) snprintf(license_id, 33, "%s", l->license_id);
    if (l && tree_size) *tree_size = r->tree_size;
    if (l) activation__v1__license__free_unpacked(l, NULL);
    if (r) activation__v1__activate_response__free_unpacked(r, NULL);
    return l ? 0 : -1;
}

grpc_status_code act_activate(rpc_channel *ch, const char *key, const uint8_t machine[32], char license_id[33],
                              uint32_t *tree_size) {
    uint8_t buf[512];
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = (char *)key;
    rq.machine_id = (ProtobufCBinaryData){.len = 32, .data = (uint8_t *)machine};
    rq.hostname = "cluster-host";
    size_t len = activation__v1__activate_request__pack(&rq, buf);
    rpc_result res;
    grpc_status_code st = rpc_call(ch, rpc_channel_method(ch, PA_RPC_ACTIVATE), buf, len, 10000, &res);
    report("activate", st, &res);
    if (st == GRPC_STATUS_OK && (license_id || tree_size) && unpack_grant(&res, license_id, tree_size) != 0)
        st = GRPC_STATUS_INTERNAL; /* an OK without a license is a wrong answer */
    rpc_result_clear(&res);
    return st;
}

/* A place proof of `op` on `license_id` by machine, key made from `seed`. */
static int sign_proof(place_op op, const char *license_id, const uint8_t machine[32], unsigned seed,
                      uint8_t pub[PLACE_KEY_LEN], uint8_t sig[PLACE_PROOF_SIG_LEN], int64_t *now) {
    uint8_t raw[32];
    memset(raw, (int)(seed & 0xff), sizeof raw);
    memcpy(raw, &seed, sizeof seed);
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, sizeof raw);
    size_t pub_len = PLACE_KEY_LEN;
    *now = (int64_t)time(NULL);
    int ok = k && EVP_PKEY_get_raw_public_key(k, pub, &pub_len) == 1 &&
             place_proof_sign(k, op, license_id, machine, *now, sig) == 0;
    EVP_PKEY_free(k);
    return ok ? 0 : -1;
}

grpc_status_code act_by_license(rpc_channel *ch, place_op op, const char *license_id, const uint8_t machine[32],
                                unsigned seed) {
    uint8_t buf[512], pub[PLACE_KEY_LEN], sig[PLACE_PROOF_SIG_LEN];
    int64_t now;
    if (sign_proof(op, license_id, machine, seed, pub, sig, &now) != 0) return GRPC_STATUS_INTERNAL;
    Activation__V1__PlaceProof proof = ACTIVATION__V1__PLACE_PROOF__INIT;
    proof.place_key = (ProtobufCBinaryData){.len = sizeof pub, .data = pub};
    proof.timestamp = now;
    proof.signature = (ProtobufCBinaryData){.len = sizeof sig, .data = sig};
    Activation__V1__RenewRequest rq = ACTIVATION__V1__RENEW_REQUEST__INIT;
    rq.license_id = (char *)license_id;
    rq.machine_id = (ProtobufCBinaryData){.len = 32, .data = (uint8_t *)machine};
    rq.proof = &proof;
    size_t len = activation__v1__renew_request__pack(&rq, buf);
    rpc_result res;
    const char *method = op == PLACE_OP_RENEW ? PA_RPC_RENEW : PA_RPC_DEACTIVATE;
    grpc_status_code st = rpc_call(ch, rpc_channel_method(ch, method), buf, len, 10000, &res);
    report(method, st, &res);
    rpc_result_clear(&res);
    return st;
}

grpc_status_code act_list_machines(rpc_channel *ch, const char *key, const uint8_t machine[32], size_t *listed) {
    uint8_t buf[512];
    Activation__V1__ListMachinesRequest rq = ACTIVATION__V1__LIST_MACHINES_REQUEST__INIT;
    rq.product_key = (char *)key;
    rq.machine_id = (ProtobufCBinaryData){.len = 32, .data = (uint8_t *)machine};
    size_t len = activation__v1__list_machines_request__pack(&rq, buf);
    rpc_result res;
    grpc_status_code st = rpc_call(ch, rpc_channel_method(ch, PA_RPC_LIST_MACHINES), buf, len, 10000, &res);
    *listed = 0;
    report("list machines", st, &res);
    if (st == GRPC_STATUS_OK) {
        Activation__V1__ListMachinesResponse *r =
            activation__v1__list_machines_response__unpack(NULL, res.body_len, res.body);
        if (r) *listed = r->n_machines;
        else st = GRPC_STATUS_INTERNAL;
        if (r) activation__v1__list_machines_response__free_unpacked(r, NULL);
    }
    rpc_result_clear(&res);
    return st;
}

int act_log_count(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    char line[4096];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) n += strstr(line, needle) != NULL;
    if (f) fclose(f);
    return n;
}
