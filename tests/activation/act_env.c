/* act_env.c -- the activation test environment (see act_env.h). */
#include "act_env.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mac_registry.h"

static int make_signing_key(act_env *e) {
    snprintf(e->signing_key, sizeof e->signing_key, "%s/license-signing.pem", e->dir);
    snprintf(e->public_key, sizeof e->public_key, "%s/license-signing.pub.pem", e->dir);
    char *gen[] = {"/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out", e->signing_key,
                   NULL};
    char *pub[] = {"/usr/bin/openssl", "pkey", "-in", e->signing_key, "-pubout", "-out",
                   e->public_key, NULL};
    if (fixture_run(gen, NULL, NULL) != 0 || fixture_run(pub, NULL, NULL) != 0) {
        fprintf(stderr, "act_env: openssl could not make the signing key\n");
        return -1;
    }
    e->pub = fixture_public_key_load(e->public_key);
    return e->pub ? 0 : -1;
}

int env_start_stores(act_env *e) {
    memset(e, 0, sizeof *e);
    e->server = -1;
    e->a.pid = e->b.pid = -1;
    if (fixture_tmpdir(e->dir, sizeof e->dir, "activation") != 0) return -1;
    snprintf(e->log_path, sizeof e->log_path, "%s/server.log", e->dir);
    if (redis_fixture_start(&e->a, FIXTURE_STORE_ACTIVATION) != 0 ||
        redis_fixture_start(&e->b, FIXTURE_STORE_AUDIT) != 0)
        return -1;
    if (fixture_make_kek(e->dir, "activation.kek", e->kek_a, sizeof e->kek_a, e->kek_a_bytes) != 0 ||
        fixture_make_kek(e->dir, "audit.kek", e->kek_b, sizeof e->kek_b, e->kek_b_bytes) != 0 ||
        make_signing_key(e) != 0)
        return -1;
    e->ks_a = redis_fixture_connect(&e->a, "keystore", FIXTURE_PW_KEYSTORE);
    e->ks_b = redis_fixture_connect(&e->b, "keystore", FIXTURE_PW_KEYSTORE);
    return e->ks_a && e->ks_b ? 0 : -1;
}

int env_make_certs(act_env *e) {
    snprintf(e->certs, sizeof e->certs, "%s/certs", e->dir);
    return fixture_make_certs(e->certs);
}

const char *const *env_audit_flags(act_env *e, const char *audit_target) {
    static char target[64], ca[340], cert[340], key[340];
    static const char *flags[] = {"--audit-target", target, "--audit-ca", ca, "--audit-cert",
                                  cert, "--audit-key", key, NULL};
    snprintf(target, sizeof target, "%s", audit_target);
    snprintf(ca, sizeof ca, "%s/ca.pem", e->certs);
    snprintf(cert, sizeof cert, "%s/activation-client.pem", e->certs);
    snprintf(key, sizeof key, "%s/activation-client.key", e->certs);
    return flags;
}

int env_keystore_reconnect(act_env *e) {
    if (e->ks_a) redisFree(e->ks_a);
    e->ks_a = redis_fixture_connect(&e->a, "keystore", FIXTURE_PW_KEYSTORE);
    return e->ks_a ? 0 : -1;
}

int env_start_server(act_env *e, const char *const *extra) {
    char url[256], listen[64], metrics[64];
    e->port = fixture_free_port();
    do e->metrics_port = fixture_free_port(); while (e->metrics_port == e->port);
    redis_fixture_url(&e->a, "activation", url, sizeof url);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", e->port);
    snprintf(metrics, sizeof metrics, "127.0.0.1:%d", e->metrics_port);
    snprintf(e->target, sizeof e->target, "127.0.0.1:%d", e->port);
    const char *argv[64] = {fixture_bin("activation-server/activation-server"),
                            "--listen",
                            listen,
                            "--redis-url",
                            url,
                            "--signing-key",
                            e->signing_key,
                            "--metrics-listen",
                            metrics,
                            "--workers",
                            "2",
                            "--log-level",
                            "debug"};
    int n = 13;
    bool tls = false, on_premises = false;
    for (int i = 0; extra && extra[i] && n < 61; i++) {
        tls |= strcmp(extra[i], "--tls-cert") == 0;
        on_premises |= strcmp(extra[i], "--on-premises") == 0;
        argv[n++] = extra[i];
    }
    /* An on-premises server holds no group secret: no KEK. */
    if (!on_premises) {
        argv[n++] = "--kek";
        argv[n++] = e->kek_a;
    }
    /* Tests talk plain text unless they bring a certificate. */
    if (!tls && n < 63) argv[n++] = "--insecure-plaintext";
    argv[n] = NULL;
    e->server = fixture_spawn((char *const *)argv, e->log_path, e->port, 15000);
    if (e->server < 0) return -1;
    e->ch = tls ? NULL : rpc_channel_new(e->target, NULL);
    if (tls) return 0;
    return e->ch ? 0 : -1;
}

int env_stop_server(act_env *e) {
    rpc_channel_free(e->ch);
    e->ch = NULL;
    if (e->server < 0) return -1;
    int st = fixture_stop(e->server, SIGTERM, 20000);
    e->server = -1;
    return st;
}

void env_stop(act_env *e) {
    if (e->server >= 0 || e->ch) env_stop_server(e);
    if (e->ks_a) redisFree(e->ks_a);
    if (e->ks_b) redisFree(e->ks_b);
    e->ks_a = e->ks_b = NULL;
    EVP_PKEY_free(e->pub);
    e->pub = NULL;
    if (e->a.pid > 0 || e->a.dir[0]) redis_fixture_stop(&e->a);
    if (e->b.pid > 0 || e->b.dir[0]) redis_fixture_stop(&e->b);
    if (getenv("PA_KEEP_TEST_DIR")) fprintf(stderr, "act_env: kept %s\n", e->dir);
    else if (e->dir[0]) fixture_rmtree(e->dir);
    rpc_client_thread_done();
}

int env_create_group(act_env *e, uint32_t id, void (*tune)(group_record *)) {
    group_record rec;
    group_record_defaults(&rec);
    rec.id = id;
    snprintf(rec.product, sizeof rec.product, "Demo Office");
    snprintf(rec.edition, sizeof rec.edition, "Professional");
    snprintf(rec.policy.features, sizeof rec.policy.features, "editor,spreadsheet");
    if (tune) tune(&rec);
    char err[256];
    if (group_create(e->ks_a, e->kek_a_bytes, e->ks_b, e->kek_b_bytes, &rec, err, sizeof err) != 0) {
        fprintf(stderr, "act_env: group_create %u: %s\n", id, err);
        return -1;
    }
    return 0;
}

int env_make_key(act_env *e, uint32_t group, uint32_t serial, bool upgrade, uint64_t first_delta,
                 char out[PK_TEXT_LEN + 1]) {
    group_record rec;
    mac_key *first = NULL, *second = NULL;
    int alg2;
    char err[256];
    if (group_load(e->ks_a, e->kek_a_bytes, group, &rec, &first, err, sizeof err) != 0 ||
        group_load_audit(e->ks_b, e->kek_b_bytes, group, &alg2, &second, err, sizeof err) != 0) {
        fprintf(stderr, "act_env: cannot load group %u: %s\n", group, err);
        mac_key_free(first);
        return -1;
    }
    pk_fields f = {.group = group, .serial = serial, .upgrade = upgrade};
    uint64_t sv2;
    int rc = mac_security_value(first, MAC_ROLE_FIRST, group, serial, upgrade, &f.security_first);
    rc |= mac_security_value(second, MAC_ROLE_SECOND, group, serial, upgrade, &sv2);
    f.security_second = (uint32_t)sv2;
    f.security_first = (f.security_first ^ first_delta) & PK_SECURITY_FIRST_MAX;
    mac_key_free(first);
    mac_key_free(second);
    return rc == 0 ? pk_encode(&f, out) : -1;
}

void env_forge_key(uint32_t group, uint32_t serial, char out[PK_TEXT_LEN + 1]) {
    pk_fields f = {.group = group, .serial = serial, .security_first = 123456789, .security_second = 42};
    pk_encode(&f, out);
}

void env_machine(uint8_t out[32], unsigned n) {
    for (int i = 0; i < 32; i++) out[i] = (uint8_t)(n * 131 + i * 7 + (n >> 8));
    memcpy(out, &n, sizeof n);
}

grpc_status_code env_call(act_env *e, const char *path, const uint8_t *req, size_t len,
                          int timeout_ms, rpc_result *res) {
    return rpc_call(e->ch, rpc_channel_method(e->ch, path), req, len, timeout_ms, res);
}

grpc_status_code env_activate(act_env *e, const char *key, const uint8_t *machine,
                              size_t machine_len, rpc_result *res,
                              Activation__V1__ActivateResponse **resp) {
    return env_activate_keyed(e, key, machine, machine_len, NULL, res, resp);
}

EVP_PKEY *env_place_key(unsigned n) {
    uint8_t seed[32];
    for (int i = 0; i < 32; i++) seed[i] = (uint8_t)(n * 31 + (unsigned)i * 7 + 1);
    return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
}

size_t env_license_request(const char *license_id, const uint8_t machine[32], EVP_PKEY *key, place_op op,
                           int64_t timestamp, uint8_t *buf, size_t cap) {
    Activation__V1__RenewRequest rq = ACTIVATION__V1__RENEW_REQUEST__INIT;
    Activation__V1__PlaceProof proof = ACTIVATION__V1__PLACE_PROOF__INIT;
    uint8_t pub[PLACE_KEY_LEN], sig[PLACE_PROOF_SIG_LEN];
    size_t pub_len = sizeof pub;
    rq.license_id = (char *)license_id;
    rq.machine_id = (ProtobufCBinaryData){.len = 32, .data = (uint8_t *)machine};
    if (key) {
        if (!timestamp) timestamp = (int64_t)time(NULL);
        if (EVP_PKEY_get_raw_public_key(key, pub, &pub_len) != 1 ||
            place_proof_sign(key, op, license_id, machine, timestamp, sig) != 0)
            return 0;
        proof.place_key = (ProtobufCBinaryData){.len = sizeof pub, .data = pub};
        proof.timestamp = timestamp;
        proof.signature = (ProtobufCBinaryData){.len = sizeof sig, .data = sig};
        rq.proof = &proof;
    }
    if (activation__v1__renew_request__get_packed_size(&rq) > cap) return 0;
    return activation__v1__renew_request__pack(&rq, buf);
}

grpc_status_code env_activate_keyed(act_env *e, const char *key, const uint8_t *machine, size_t machine_len,
                                    EVP_PKEY *place_key, rpc_result *res, Activation__V1__ActivateResponse **resp) {
    uint8_t pub[PLACE_KEY_LEN];
    size_t pub_len = sizeof pub;
    char host[32];
    unsigned no = 0;
    if (machine_len >= sizeof no) memcpy(&no, machine, sizeof no);
    snprintf(host, sizeof host, "host-%u", no);
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = (char *)key;
    rq.machine_id = (ProtobufCBinaryData){.len = machine_len, .data = (uint8_t *)machine};
    rq.hostname = host;
    rq.os = "Debian GNU/Linux 12";
    rq.arch = "x86_64";
    rq.client_version = "test/1";
    if (place_key && EVP_PKEY_get_raw_public_key(place_key, pub, &pub_len) == 1)
        rq.place_key = (ProtobufCBinaryData){.len = pub_len, .data = pub};
    uint8_t buf[1024];
    size_t len = activation__v1__activate_request__pack(&rq, buf);
    grpc_status_code st = env_call(e, PA_RPC_ACTIVATE, buf, len, 5000, res);
    if (resp) {
        *resp = st == GRPC_STATUS_OK
                    ? activation__v1__activate_response__unpack(NULL, res->body_len, res->body)
                    : NULL;
    }
    return st;
}

Activation__V1__License *env_open_license(act_env *e, const ProtobufCBinaryData *license,
                                          const ProtobufCBinaryData *signature, const char *key_id, uint32_t tree_index,
                                          uint32_t tree_size, const ProtobufCBinaryData *tree_path,
                                          size_t n_tree_path) {
    char id[LICENSE_KEY_ID_LEN + 1];
    if (signing_key_id(e->pub, id) != 0 || strcmp(id, key_id) != 0) return NULL;
    if (!fixture_license_ok(e->pub, license->data, license->len, signature->data, signature->len, tree_index, tree_size,
                            tree_path, n_tree_path))
        return NULL;
    return activation__v1__license__unpack(NULL, license->len, license->data);
}

double env_metric(act_env *e, const char *series) {
    char *text = fixture_http_get("127.0.0.1", e->metrics_port, "/metrics");
    double v = fixture_metric(text, series, -1);
    free(text);
    return v;
}

char *env_read_log(act_env *e) {
    FILE *f = fopen(e->log_path, "r");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    if (buf) buf[got] = '\0';
    fclose(f);
    return buf;
}

int env_restart_server(act_env *e, const char *const *flags) {
    if (e->server >= 0 && env_stop_server(e) != 0) return -1;
    return env_start_server(e, flags);
}

/* Adds the measuring user to `f`'s ACL file and restarts it (keeping its
 * data); reconnects the keystore user there. */
static redisContext *measuring_on(redis_fixture *f, redisContext **keystore) {
    static const char pw[] = "test-measure-pw";
    char acl[512];
    snprintf(acl, sizeof acl, "%s/users.acl", f->dir);
    if (redis_fixture_pause(f) != 0) return NULL;
    FILE *file = fopen(acl, "a");
    if (!file) return NULL;
    fprintf(file, "user measure on >%s ~* &* +@all\n", pw);
    fclose(file);
    if (redis_fixture_resume(f) != 0) return NULL;
    if (*keystore) redisFree(*keystore);
    *keystore = redis_fixture_connect(f, "keystore", FIXTURE_PW_KEYSTORE);
    return *keystore ? redis_fixture_connect(f, "measure", pw) : NULL;
}

redisContext *env_measuring_connection(act_env *e) { return measuring_on(&e->a, &e->ks_a); }

redisContext *env_measuring_connection_b(act_env *e) { return measuring_on(&e->b, &e->ks_b); }

int env_activate_license(act_env *e, uint32_t group, uint32_t serial, unsigned m, unsigned n,
                         char license_id[LICENSE_ID_LEN + 1]) {
    char key[PK_TEXT_LEN + 1];
    uint8_t id[32];
    if (env_make_key(e, group, serial, false, 0, key) != 0) return -1;
    env_machine(id, m);
    EVP_PKEY *k = env_place_key(n);
    if (!k) return -1;
    rpc_result res;
    Activation__V1__ActivateResponse *r = NULL;
    grpc_status_code st = env_activate_keyed(e, key, id, sizeof id, k, &res, &r);
    EVP_PKEY_free(k);
    if (st != GRPC_STATUS_OK) fprintf(stderr, "activate: %d %s\n", st, res.message);
    rpc_result_clear(&res);
    if (st != GRPC_STATUS_OK) return -1;
    Activation__V1__License *l = env_open_answer(e, r);
    if (l) snprintf(license_id, LICENSE_ID_LEN + 1, "%s", l->license_id);
    else fprintf(stderr, "activate: the answer's license does not verify\n");
    activation__v1__license__free_unpacked(l, NULL);
    activation__v1__activate_response__free_unpacked(r, NULL);
    return l ? 0 : -1;
}
