/* test_audit_e2e.c -- split verification end to end (issue 4, DESIGN.md
 * §1.3, §4.4-4.5): redis-server A and B with their production ACL users,
 * certificates from scripts/make-certs.sh, groups made by the keystore
 * library, the audit-server binary and one or two activation-server
 * binaries, every call over the network through the real gRPC API.
 *
 * The forger of these tests holds a group's FIRST secret (as after a full
 * compromise of the activation side): its keys pass the activation server's
 * own check and carry a wrong second value that only the audit server can
 * see. What must follow:
 *   - offline audit: granted, forwarded, revoked, then refused at Renew and
 *     Activate (FAILED_PRECONDITION);
 *   - online audit: refused at once, exactly like a wrong first value;
 *     online audit with the audit server down: fail-closed groups refuse
 *     with UNAVAILABLE, offline-fallback groups grant and use the outbox;
 *   - first-activation samples of online groups are audited offline
 *     (activation-server/activate.c says why);
 *   - two activation servers on one Redis A both enforce a revocation made
 *     with `audit-server revoke` within 2 s;
 *   - the outbox survives the audit server's absence and the activation
 *     server's SIGKILL: every sampled request reaches the audit trail
 *     exactly once (counted by request id), and SIGTERM flushes it;
 *   - a burst of wrong keys from one address raises the group's sampling,
 *     visible in the activation server's /metrics;
 *   - revocations made after Redis B went back (a restore from a backup:
 *     sequences reused) or lost its log (a new epoch) are enforced, and a
 *     revoked serial removed from Redis A comes back within
 *     --audit-reconcile-s.
 * Isolation is tested at module level and not repeated here:
 * tests/audit/test_audit_server.c test_isolation (the activation user has no
 * login on Redis B and gets NOPERM on {g:*}:audit on Redis A) and
 * test_mtls_only (plain text and a certificate from another CA refused). */
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "activation/v1/activation.pb-c.h"
#include "audit_certs.h"
#include "audit_env.h"
#include "clock.h"
#include "log.h"
#include "outbox_forwarder.h"
#include "place_proof.h"
#include "redis_keys.h"
#include "rpc_client.h"
#include "rpc_methods.h"

enum {
    G_OFFLINE = 6001,      /* every activation audited offline */
    G_ONLINE = 6002,       /* every activation audited online; audit down: fail closed */
    G_FALLBACK = 6003,     /* every activation audited online; audit down: offline */
    G_FIRST_ONLINE = 6004, /* online group, only first activations audited */
    G_TWO = 6005,          /* not sampled; revoked by the operator */
    G_THREAT = 6006,       /* not sampled until a threat signal fires */
    G_FAULT = 6007,        /* every activation audited offline; fault tests */
    G_RESTORE = 6008,      /* not sampled; revoked by the operator around a restore of Redis B */
    G_CAP_CLOSED = 6009,   /* every activation audited offline; outbox full: refuse */
    G_CAP_GRANT = 6010,    /* every activation audited offline; outbox full: grant unaudited */
};

#define REVOKE_WAIT_MS 15000   /* bound for "audited and revoked" through the queue */

typedef char request_id[AUDIT_REQUEST_ID_LEN + 1];

/* One activation-server process. */
typedef struct act_server {
    const char *name;        /* --audit-consumer: stable across restarts */
    pid_t pid;
    int port, metrics_port;
    char target[64];
    char log[400];
    rpc_channel *ch;
} act_server;

static audit_env E;
static char signing_key[400];
static act_server S1 = {.name = "act-1", .pid = -1}, S2 = {.name = "act-2", .pid = -1},
                  S3 = {.name = "act-3", .pid = -1};

/* ------------------------------------------------------------ processes */

/* Starts `s` with the test's options, then `extra` (NULL-terminated; later
 * options override earlier ones). */
static int start_act_with(act_server *s, const char *const *extra) {
    char url[256], listen[64], metrics[64], ca[400], cert[400], key[400];
    s->port = fixture_free_port();
    do s->metrics_port = fixture_free_port(); while (s->metrics_port == s->port);
    redis_fixture_url(&E.a, "activation", url, sizeof url);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s->port);
    snprintf(metrics, sizeof metrics, "127.0.0.1:%d", s->metrics_port);
    snprintf(s->target, sizeof s->target, "127.0.0.1:%d", s->port);
    snprintf(s->log, sizeof s->log, "%s/%s.log", E.dir, s->name);
    snprintf(ca, sizeof ca, "%s/ca.pem", E.certs);
    snprintf(cert, sizeof cert, "%s/activation-client.pem", E.certs);
    snprintf(key, sizeof key, "%s/activation-client.key", E.certs);
    const char *base[][2] = {
        {"--listen", listen},
        {"--redis-url", url},
        {"--kek", E.kek_a},
        {"--signing-key", signing_key},
        {"--metrics-listen", metrics},
        {"--workers", "2"},
        {"--log-level", "debug"},
        {"--rate-address-per-s", "100000"},
        {"--rate-address-burst", "100000"},
        {"--audit-target", E.target},
        {"--audit-ca", ca},
        {"--audit-cert", cert},
        {"--audit-key", key},
        {"--audit-consumer", s->name},
        {"--audit-flush-ms", "15000"},
        {"--audit-reconcile-s", "1"},
    };
    enum { BASE = sizeof base / sizeof *base, MAX_EXTRA = 16 };
    char *argv[1 + 2 * BASE + MAX_EXTRA + 1];
    size_t n = 0;
    argv[n++] = (char *)fixture_bin("activation-server/activation-server");
    for (size_t i = 0; i < BASE; i++) argv[n++] = (char *)base[i][0], argv[n++] = (char *)base[i][1];
    for (size_t i = 0; extra && extra[i] && i < MAX_EXTRA; i++) argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    /* Installers talk to these servers in plain text (the development flag,
     * through the environment the server inherits). */
    setenv("PA_ACTIVATION_INSECURE_PLAINTEXT", "1", 1);
    s->pid = fixture_spawn(argv, s->log, s->port, 15000);
    if (s->pid < 0) return -1;
    s->ch = rpc_channel_new(s->target, NULL);
    return s->ch ? 0 : -1;
}

static int start_act(act_server *s) { return start_act_with(s, NULL); }

/* Stops with `sig`; returns the exit status (128+n for a signal). */
static int stop_act(act_server *s, int sig) {
    rpc_channel_free(s->ch);
    s->ch = NULL;
    if (s->pid < 0) return -1;
    int st = fixture_stop(s->pid, sig, 30000);
    s->pid = -1;
    return st;
}

static void tune_offline(group_record *r) {
    r->policy.max_machines = 100;
    r->policy.audit_rate_ppm = 1000000;
    r->policy.audit = AUDIT_MODE_OFFLINE;
}
static void tune_online(group_record *r) {
    tune_offline(r);
    r->policy.audit = AUDIT_MODE_ONLINE;
    r->policy.on_audit_down = AUDIT_UNREACHABLE_FAIL_CLOSED;
}
static void tune_fallback(group_record *r) {
    tune_online(r);
    r->policy.on_audit_down = AUDIT_UNREACHABLE_OFFLINE;
}
static void tune_first_online(group_record *r) {
    tune_online(r);
    r->policy.audit_rate_ppm = 0;
    r->policy.audit_first_activation = true;
}
static void tune_cap_grant(group_record *r) {
    tune_offline(r);
    r->policy.on_outbox_full = AUDIT_OUTBOX_FULL_GRANT;
}
static void tune_unsampled(group_record *r) {
    r->policy.max_machines = 100;
    r->policy.audit_rate_ppm = 0;
}

static int make_signing_key(void) {
    snprintf(signing_key, sizeof signing_key, "%s/license-signing.pem", E.dir);
    char *argv[] = {"/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out", signing_key, NULL};
    return fixture_run(argv, NULL, NULL) == 0 ? 0 : -1;
}

static int setup(void **state) {
    log_set_level(LOG_LEVEL_WARN);
    struct {
        uint32_t id;
        void (*tune)(group_record *);
    } groups[] = {
        {G_OFFLINE, tune_offline},    {G_ONLINE, tune_online},
        {G_FALLBACK, tune_fallback},  {G_FIRST_ONLINE, tune_first_online},
        {G_TWO, tune_unsampled},      {G_THREAT, tune_unsampled},
        {G_FAULT, tune_offline},      {G_RESTORE, tune_unsampled},
        {G_CAP_CLOSED, tune_offline}, {G_CAP_GRANT, tune_cap_grant},
    };
    if (env_start(&E) != 0 || make_signing_key() != 0) goto fail;
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++)
        if (env_create_group_with(&E, groups[i].id, groups[i].tune) != 0) goto fail;
    if (env_start_server(&E) != 0 || start_act(&S1) != 0) goto fail;
    return 0;
fail:
    stop_act(&S1, SIGKILL);
    env_stop(&E);
    return -1;
}

static int teardown(void **state) {
    int st1 = stop_act(&S1, SIGTERM);
    if (S2.pid > 0) stop_act(&S2, SIGKILL);
    if (S3.pid > 0) stop_act(&S3, SIGKILL);
    env_stop(&E);
    return st1 == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- calls */

static void machine(uint8_t out[32], unsigned n) {
    memset(out, 0x3c, 32);
    memcpy(out, &n, sizeof n);
}

/* A key of `group`: right first value; right (genuine) or wrong second value. */
static void key_of(uint32_t group, uint32_t serial, bool genuine, char text[PK_TEXT_LEN + 1]) {
    assert_int_equal(env_make_key(&E, group, serial, genuine, NULL, text), 0);
}

/* Activate on `s` for machine `m`. On OK the license id goes to
 * `license_id` (if not NULL); the status message to `msg` (if not NULL). */
static grpc_status_code activate(act_server *s, const char *key, unsigned m,
                                 char license_id[33], char msg[256]) {
    uint8_t id[32], buf[512];
    machine(id, m);
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = (char *)key;
    rq.machine_id = (ProtobufCBinaryData){.len = sizeof id, .data = id};
    rq.hostname = "e2e-host";
    size_t len = activation__v1__activate_request__pack(&rq, buf);
    rpc_result res;
    grpc_status_code st = rpc_call(s->ch, rpc_channel_method(s->ch, PA_RPC_ACTIVATE), buf, len, 5000, &res);
    if (msg) snprintf(msg, 256, "%s", res.message);
    if (st == GRPC_STATUS_OK && license_id) {
        Activation__V1__ActivateResponse *r = activation__v1__activate_response__unpack(NULL, res.body_len, res.body);
        assert_non_null(r);
        Activation__V1__License *l = activation__v1__license__unpack(NULL, r->license.len, r->license.data);
        assert_non_null(l);
        snprintf(license_id, 33, "%s", l->license_id);
        activation__v1__license__free_unpacked(l, NULL);
        activation__v1__activate_response__free_unpacked(r, NULL);
    }
    rpc_result_clear(&res);
    return st;
}

static grpc_status_code activate_ok(act_server *s, const char *key, unsigned m, char license_id[33]) {
    char msg[256];
    grpc_status_code st = activate(s, key, m, license_id, msg);
    if (st != GRPC_STATUS_OK) fprintf(stderr, "activate on %s: %d %s\n", s->name, st, msg);
    assert_int_equal(st, GRPC_STATUS_OK);
    return st;
}

/* Renew, proven with machine m's place key (activation.proto, "Proof of
 * possession"): made from m, so every renewal of m signs with the key its
 * first one bound to the place. */
static grpc_status_code renew(act_server *s, const char *license_id, unsigned m) {
    uint8_t id[32], buf[512], seed[32], pub[PLACE_KEY_LEN], sig[PLACE_PROOF_SIG_LEN];
    machine(id, m);
    memset(seed, (int)(m + 1), sizeof seed);
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
    size_t pub_len = sizeof pub;
    int64_t now = (int64_t)time(NULL);
    assert_true(k && EVP_PKEY_get_raw_public_key(k, pub, &pub_len) == 1 &&
                place_proof_sign(k, PLACE_OP_RENEW, license_id, id, now, sig) == 0);
    EVP_PKEY_free(k);
    Activation__V1__PlaceProof proof = ACTIVATION__V1__PLACE_PROOF__INIT;
    proof.place_key = (ProtobufCBinaryData){.len = sizeof pub, .data = pub};
    proof.timestamp = now;
    proof.signature = (ProtobufCBinaryData){.len = sizeof sig, .data = sig};
    Activation__V1__RenewRequest rq = ACTIVATION__V1__RENEW_REQUEST__INIT;
    rq.license_id = (char *)license_id;
    rq.machine_id = (ProtobufCBinaryData){.len = sizeof id, .data = id};
    rq.proof = &proof;
    size_t len = activation__v1__renew_request__pack(&rq, buf);
    rpc_result res;
    grpc_status_code st = rpc_call(s->ch, rpc_channel_method(s->ch, PA_RPC_RENEW), buf, len, 5000, &res);
    rpc_result_clear(&res);
    return st;
}

/* ------------------------------------------------------------- looking */

static double metric_of(act_server *s, const char *series) {
    char *body = fixture_http_get("127.0.0.1", s->metrics_port, "/metrics");
    double v = fixture_metric(body, series, -1);
    free(body);
    return v;
}

static bool log_has(const act_server *s, const char *a, const char *b) {
    FILE *f = fopen(s->log, "r");
    char line[4096];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f)) found = strstr(line, a) && (!b || strstr(line, b));
    if (f) fclose(f);
    return found;
}

static long long outbox_len(void) { return env_int(E.act_a, "XLEN %s", PA_RKEY_OUTBOX); }
static bool outbox_empty(void *arg) { return outbox_len() == 0; }

/* Request ids of every outbox entry (malloc'd); *n gets the count. */
static request_id *outbox_ids(size_t *n) {
    redisReply *r = redisCommand(E.act_a, "XRANGE %s - +", PA_RKEY_OUTBOX);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    request_id *ids = calloc(r->elements + 1, sizeof *ids);
    *n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *kv = r->element[i]->element[1];
        for (size_t k = 0; k + 1 < kv->elements; k += 2)
            if (strcmp(kv->element[k]->str, "request_id") == 0)
                snprintf(ids[(*n)++], sizeof *ids, "%s", kv->element[k + 1]->str);
    }
    freeReplyObject(r);
    return ids;
}

/* How often each of ids[0..n) occurs in the audit trail (Redis B). */
static void trail_counts(const request_id *ids, size_t n, int *counts) {
    memset(counts, 0, n * sizeof *counts);
    redisReply *r = redisCommand(E.audit_b, "XRANGE " PA_RKEY_AUDIT_TRAIL " - +");
    assert_non_null(r);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *kv = r->element[i]->element[1];
        for (size_t k = 0; k + 1 < kv->elements; k += 2) {
            if (strcmp(kv->element[k]->str, "request_id") != 0) continue;
            for (size_t j = 0; j < n; j++)
                if (strcmp(kv->element[k + 1]->str, ids[j]) == 0) counts[j]++;
        }
    }
    freeReplyObject(r);
}

typedef struct id_set { const request_id *ids; size_t n; } id_set;

static bool all_in_trail(void *arg) {
    id_set *s = arg;
    int *c = calloc(s->n ? s->n : 1, sizeof *c);
    trail_counts(s->ids, s->n, c);
    bool all = true;
    for (size_t i = 0; i < s->n; i++) all &= c[i] > 0;
    free(c);
    return all;
}

/* Every one of `ids` audited by the audit server, each exactly once. */
static void assert_audited_once(const request_id *ids, size_t n) {
    id_set s = {ids, n};
    assert_true(env_wait(all_in_trail, &s, 30000));
    env_sleep_ms(300);   /* a duplicate would show up by now */
    int *c = calloc(n ? n : 1, sizeof *c);
    trail_counts(ids, n, c);
    for (size_t i = 0; i < n; i++) {
        if (c[i] != 1) fail_msg("request %s is in the audit trail %d times", ids[i], c[i]);
    }
    free(c);
}

static bool revoked_at_audit(uint32_t group, uint32_t serial) {
    return env_int(E.audit_b, "HEXISTS " PA_RKEY_AUDIT_REVOKED " " PA_AUDIT_REVOKED_MEMBER_FMT, group, serial) == 1;
}

typedef struct renewal { act_server *s; const char *license_id; unsigned m; } renewal;
static bool renew_refused(void *arg) {
    renewal *r = arg;
    return renew(r->s, r->license_id, r->m) == GRPC_STATUS_FAILED_PRECONDITION;
}

/* ---------------------------------------------------------------- tests */

/* 1. Offline audit: a forged key is granted, forwarded, judged, revoked,
 *    and then refused at Renew and Activate. */
static void test_offline_forged_key_revoked_after_the_fact(void **state) {
    char forged[PK_TEXT_LEN + 1], good[PK_TEXT_LEN + 1], lic_forged[33], lic_good[33];
    key_of(G_OFFLINE, 1, false, forged);
    key_of(G_OFFLINE, 2, true, good);
    double t0 = pa_mono_ms();
    activate_ok(&S1, forged, 1, lic_forged);
    activate_ok(&S1, good, 2, lic_good);

    renewal r = {&S1, lic_forged, 1};
    assert_true(env_wait(renew_refused, &r, REVOKE_WAIT_MS));
    print_message("  forged key refused at Renew %.0f ms after it was granted\n", pa_mono_ms() - t0);
    char msg[256];
    assert_int_equal(activate(&S1, forged, 3, NULL, msg), GRPC_STATUS_FAILED_PRECONDITION);
    assert_non_null(strstr(msg, "revoked"));
    assert_int_equal(activate(&S1, forged, 1, NULL, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    assert_true(revoked_at_audit(G_OFFLINE, 1));

    /* The genuine key went the same way and stays good. */
    assert_false(revoked_at_audit(G_OFFLINE, 2));
    assert_int_equal(renew(&S1, lic_good, 2), GRPC_STATUS_OK);
    assert_true(log_has(&S1, "\"event\":\"activate.granted\",\"group\":6001,\"serial\":1,",
                        "\"audit\":\"offline\",\"audit_reason\":\"base-rate\""));
    assert_true(log_has(&S1, "audit.revocation.applied", "\"serial\":1"));
}

/* 2. Online audit: refused at once, reading exactly like a wrong first
 *    value; a genuine key is granted. */
static void test_online_forged_key_refused_at_once(void **state) {
    char forged[PK_TEXT_LEN + 1], good[PK_TEXT_LEN + 1], wrong_first[PK_TEXT_LEN + 1];
    char msg[256], msg_first[256];
    key_of(G_ONLINE, 1, false, forged);
    key_of(G_ONLINE, 2, true, good);
    pk_fields f;
    assert_int_equal(env_make_key(&E, G_ONLINE, 3, true, &f, wrong_first), 0);
    f.security_first ^= 1;
    assert_int_equal(pk_encode(&f, wrong_first), 0);

    assert_int_equal(activate(&S1, forged, 1, NULL, msg), GRPC_STATUS_PERMISSION_DENIED);
    assert_int_equal(activate(&S1, wrong_first, 1, NULL, msg_first), GRPC_STATUS_PERMISSION_DENIED);
    assert_string_equal(msg, msg_first);                 /* no oracle */
    assert_true(revoked_at_audit(G_ONLINE, 1));          /* judged and revoked by Verify */
    assert_int_equal(env_int(E.act_a, "EXISTS " PA_RKEY_RECORD_FMT, G_ONLINE, 1), 0); /* nothing written */

    char lic[33];
    activate_ok(&S1, good, 2, lic);
    assert_false(revoked_at_audit(G_ONLINE, 2));
    assert_true(metric_of(&S1, "pa_audit_online_total{result=\"forged\"}") >= 1);
    assert_true(metric_of(&S1, "pa_audit_online_total{result=\"genuine\"}") >= 1);
    assert_true(log_has(&S1, "\"event\":\"activate.granted\",\"group\":6002,\"serial\":2,",
                        "\"audit\":\"online\""));
    assert_true(log_has(&S1, "activate.forged", "\"serial\":1"));
}

/* 2b. First-activation samples of an online group are audited offline:
 *     the forged key's first activation is granted, then it is revoked. */
static void test_online_group_first_activation_audited_offline(void **state) {
    char forged[PK_TEXT_LEN + 1], lic[33];
    key_of(G_FIRST_ONLINE, 1, false, forged);
    activate_ok(&S1, forged, 1, lic);
    renewal r = {&S1, lic, 1};
    assert_true(env_wait(renew_refused, &r, REVOKE_WAIT_MS));
    assert_int_equal(activate(&S1, forged, 2, NULL, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    assert_true(log_has(&S1, "\"event\":\"activate.granted\",\"group\":6004,\"serial\":1,",
                        "\"audit\":\"offline\",\"audit_reason\":\"first-activation\""));
}

typedef struct pair { renewal a, b; } pair;
static bool both_refuse(void *arg) {
    pair *p = arg;
    return renew_refused(&p->a) && renew_refused(&p->b);
}

/* Revocations of `group` the pullers counted for the threat view (kind v
 * in today's and, around midnight, yesterday's day hash). */
static long long revocations_counted(uint32_t group) {
    long long n = 0;
    uint32_t seen_day = 0;
    for (int back = 0; back < 2; back++) {
        time_t t = time(NULL) - back * 120;
        struct tm tm;
        gmtime_r(&t, &tm);
        uint32_t day = (uint32_t)((tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
        if (day == seen_day) break; /* two minutes ago was today too: its hash is counted already */
        seen_day = day;
        char rkey[PA_RKEY_MAX];
        pa_rkey_threat_group(rkey, sizeof rkey, group, day);
        redisReply *h = redisCommand(E.act_a, "HGETALL %s", rkey);
        for (size_t i = 0; h && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
            size_t len = strlen(h->element[i]->str);
            if (len > 2 && strcmp(h->element[i]->str + len - 2, ":v") == 0) n += atoll(h->element[i + 1]->str);
        }
        if (h) freeReplyObject(h);
        if (back == 0 && tm.tm_hour != 0) break;
    }
    return n;
}

/* 3. Two activation servers on one Redis A: an operator's revocation is
 *    enforced by both within 2 s, and counted once for the threat view
 *    (by the puller that applied it). */
static void test_two_servers_enforce_revocation(void **state) {
    assert_int_equal(start_act(&S2), 0);
    char key[PK_TEXT_LEN + 1], lic1[33], lic2[33];
    key_of(G_TWO, 1, true, key);
    activate_ok(&S1, key, 1, lic1);
    activate_ok(&S2, key, 2, lic2);
    assert_int_equal(renew(&S1, lic1, 1), GRPC_STATUS_OK);
    assert_int_equal(renew(&S2, lic2, 2), GRPC_STATUS_OK);

    char url[256], *out = NULL;
    redis_fixture_url(&E.b, "audit", url, sizeof url);
    char *argv[] = {(char *)fixture_bin("audit-server/audit-server"), "revoke", "--redis-url", url,
                    "--group", "6005", "--serial", "1", "--reason", "refunded order", NULL};
    assert_int_equal(fixture_run(argv, &out, NULL), 0);
    double t0 = pa_mono_ms();
    assert_non_null(strstr(out, "\"new\":true"));
    free(out);
    pair p = {{&S1, lic1, 1}, {&S2, lic2, 2}};
    assert_true(env_wait(both_refuse, &p, 2000));
    double took = pa_mono_ms() - t0;
    print_message("  both servers refuse the revoked key %.0f ms after `audit-server revoke`\n", took);
    assert_true(took < 2000);
    assert_int_equal(activate(&S1, key, 3, NULL, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    assert_int_equal(activate(&S2, key, 4, NULL, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    for (int i = 0; i < 20 && revocations_counted(6005) < 1; i++) usleep(50 * 1000);
    usleep(600 * 1000); /* both pullers polled again: still one */
    assert_int_equal(revocations_counted(6005), 1);
    assert_int_equal(stop_act(&S2, SIGTERM), 0);
}

/* 7. A burst of wrong keys from one address raises the group's sampling. */
static void test_threat_signal_raises_sampling(void **state) {
    const char *gauge = "pa_audit_group_sample_rate_ppm{group=\"6006\"}";
    char good[PK_TEXT_LEN + 1], wrong[PK_TEXT_LEN + 1];
    key_of(G_THREAT, 1, true, good);
    activate_ok(&S1, good, 1, NULL);
    assert_true(metric_of(&S1, gauge) < 0);              /* never alerted: no series */
    double before = metric_of(&S1, "pa_audit_decisions_total{mode=\"audit\",reason=\"threat-group\"}");

    for (uint32_t i = 0; i < 40; i++) {
        pk_fields f;
        assert_int_equal(env_make_key(&E, G_THREAT, 100 + i, true, &f, wrong), 0);
        f.security_first ^= 1;
        assert_int_equal(pk_encode(&f, wrong), 0);
        assert_int_equal(activate(&S1, wrong, 100 + i, NULL, NULL), GRPC_STATUS_PERMISSION_DENIED);
    }
    char lic[33];
    key_of(G_THREAT, 2, true, good);
    activate_ok(&S1, good, 2, lic);                      /* base rate 0, sampled anyway */
    assert_int_equal((long)metric_of(&S1, gauge), 1000000);
    assert_true(metric_of(&S1, "pa_audit_decisions_total{mode=\"audit\",reason=\"threat-group\"}") >= before + 1);
    assert_true(metric_of(&S1, "pa_audit_threat_alerts_total{kind=\"group\"}") >= 1);
    assert_true(log_has(&S1, "\"event\":\"activate.granted\",\"group\":6006,\"serial\":2,",
                        "\"audit_reason\":\"threat-group\""));
    assert_true(log_has(&S1, "audit.threat.group.start", "\"group\":6006"));
}

/* 6. Online audit while the audit server is down: fail-closed refuses with
 *    UNAVAILABLE, offline-fallback grants and writes the outbox; SIGTERM of
 *    the activation server then flushes that outbox to the returned audit
 *    server before exiting. */
static void test_online_audit_down(void **state) {
    assert_true(env_wait(outbox_empty, NULL, 20000));
    assert_int_equal(env_stop_server(&E, SIGTERM), 0);
    char closed[PK_TEXT_LEN + 1], fallback[PK_TEXT_LEN + 1], msg[256];
    key_of(G_ONLINE, 10, true, closed);
    key_of(G_FALLBACK, 10, true, fallback);
    double t0 = pa_mono_ms();
    assert_int_equal(activate(&S1, closed, 10, NULL, msg), GRPC_STATUS_UNAVAILABLE);
    print_message("  fail-closed answer after %.0f ms: %s\n", pa_mono_ms() - t0, msg);
    assert_non_null(strstr(msg, "audit server"));
    assert_int_equal(env_int(E.act_a, "EXISTS " PA_RKEY_RECORD_FMT, G_ONLINE, 10), 0);

    activate_ok(&S1, fallback, 10, NULL);
    assert_int_equal(outbox_len(), 1);
    size_t n;
    request_id *ids = outbox_ids(&n);
    assert_int_equal(n, 1);
    assert_true(metric_of(&S1, "pa_audit_online_fallback_total") >= 1);
    assert_true(metric_of(&S1, "pa_activations_refused_total{reason=\"audit_unavailable\"}") >= 1);
    assert_true(log_has(&S1, "\"event\":\"activate.granted\",\"group\":6003,\"serial\":10,",
                        "\"audit\":\"offline-fallback\""));

    assert_int_equal(env_start_server(&E), 0);
    assert_int_equal(stop_act(&S1, SIGTERM), 0);        /* flushes the outbox first */
    assert_int_equal(outbox_len(), 0);
    assert_audited_once(ids, n);
    free(ids);
    assert_int_equal(start_act(&S1), 0);
}

typedef struct gauge_goal { long want; } gauge_goal;
static bool outbox_gauge_is(void *arg) {
    return (long)metric_of(&S1, "pa_audit_outbox_length") == ((gauge_goal *)arg)->want;
}

/* 5a. Audit server down with offline audit: activations go on, the outbox
 *     grows; back up: it drains, every sampled request audited once. */
static void test_audit_down_outbox_grows_then_drains(void **state) {
    enum { N = 40 };
    assert_true(env_wait(outbox_empty, NULL, 20000));
    assert_int_equal(env_stop_server(&E, SIGTERM), 0);
    for (unsigned i = 0; i < N; i++) {
        char key[PK_TEXT_LEN + 1];
        key_of(G_FAULT, 100 + i, i % 4 != 0, key);
        activate_ok(&S1, key, 100 + i, NULL);
    }
    assert_int_equal(outbox_len(), N);
    gauge_goal g = {N};
    assert_true(env_wait(outbox_gauge_is, &g, 5000));    /* the gauge shows it too */
    assert_int_equal(outbox_len(), N);                   /* nothing lost, nothing sent */
    size_t n;
    request_id *ids = outbox_ids(&n);
    assert_int_equal(n, N);

    assert_int_equal(env_start_server(&E), 0);
    assert_true(env_wait(outbox_empty, NULL, 20000));
    assert_audited_once(ids, n);
    free(ids);
    for (unsigned i = 0; i < N; i++) assert_int_equal(revoked_at_audit(G_FAULT, 100 + i), i % 4 == 0);
}

/* 5b. The activation server killed (SIGKILL) while it forwards: after a
 *     restart nothing sampled is missing and nothing is audited twice. */
static void test_sigkill_while_forwarding(void **state) {
    enum { N = 800 };
    assert_true(env_wait(outbox_empty, NULL, 20000));
    assert_int_equal(env_stop_server(&E, SIGTERM), 0);
    for (unsigned i = 0; i < N; i++) {
        char key[PK_TEXT_LEN + 1];
        key_of(G_FAULT, 1000 + i, i % 10 != 0, key);
        activate_ok(&S1, key, 1000 + i, NULL);
    }
    size_t n;
    request_id *ids = outbox_ids(&n);
    assert_int_equal(n, N);

    /* Kill it mid-drain: several batches sent, several still to go. */
    assert_int_equal(env_start_server(&E), 0);
    for (int i = 0; i < 30000 && outbox_len() > 3 * N / 4; i++) env_sleep_ms(1);
    assert_int_equal(stop_act(&S1, SIGKILL), 128 + SIGKILL);
    long long left = outbox_len();
    print_message("  activation server killed with %lld of %d sampled requests still in the outbox\n",
                  left, N);
    assert_true(left > 0 && left < N);

    assert_int_equal(start_act(&S1), 0);                 /* same consumer name: its pending first */
    assert_true(env_wait(outbox_empty, NULL, 30000));
    assert_audited_once(ids, n);
    free(ids);
    redisReply *p = redisCommand(E.act_a, "XPENDING %s %s", PA_RKEY_OUTBOX, PA_OUTBOX_GROUP);
    assert_non_null(p);
    assert_int_equal(p->element[0]->integer, 0);
    freeReplyObject(p);
}

/* 8. Without --audit-server-name the audit server's certificate is checked
 *    against the host of --audit-target. The audit server here holds a
 *    certificate that names only 127.0.0.1 (no "localhost", the old
 *    default): an activation server given the target 127.0.0.1:PORT
 *    verifies online; one told to expect "localhost" cannot connect, so its
 *    fail-closed group refuses -- the name is really checked. */
static void test_audit_server_name_default(void **state) {
    char dir[400], cert[480], key[480];
    snprintf(dir, sizeof dir, "%s/ip-only", E.dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(certs_make(E.certs, dir, "audit-server", "audit-server", "IP:127.0.0.1", true, 9100), 0);
    snprintf(cert, sizeof cert, "%s/audit-server.pem", dir);
    snprintf(key, sizeof key, "%s/audit-server.key", dir);
    assert_int_equal(env_stop_server(&E, SIGTERM), 0);
    const char *opts[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    assert_int_equal(env_start_server_with(&E, opts), 0);

    char good[PK_TEXT_LEN + 1], msg[256];
    key_of(G_ONLINE, 50, true, good);
    assert_int_equal(start_act(&S2), 0);
    activate_ok(&S2, good, 50, NULL);
    assert_true(log_has(&S2, "\"event\":\"audit.enabled\"", "\"server_name\":\"127.0.0.1\""));
    assert_true(log_has(&S2, "\"event\":\"activate.granted\",\"group\":6002,\"serial\":50,", "\"audit\":\"online\""));

    const char *localhost[] = {"--audit-server-name", "localhost", NULL};
    assert_int_equal(start_act_with(&S3, localhost), 0);
    assert_int_equal(activate(&S3, good, 51, NULL, msg), GRPC_STATUS_UNAVAILABLE);
    assert_true(log_has(&S3, "activate.audit_unavailable", "\"serial\":50"));

    assert_int_equal(stop_act(&S2, SIGTERM), 0);
    assert_int_equal(stop_act(&S3, SIGTERM), 0);
    assert_int_equal(env_stop_server(&E, SIGTERM), 0);
    assert_int_equal(env_start_server(&E), 0);
}

/* `audit-server revoke` of group G_RESTORE, serial `serial`. */
static void operator_revokes(uint32_t serial) {
    char url[256], s[16], *out = NULL;
    redis_fixture_url(&E.b, "audit", url, sizeof url);
    snprintf(s, sizeof s, "%u", serial);
    char *argv[] = {(char *)fixture_bin("audit-server/audit-server"),
                    "revoke",
                    "--redis-url",
                    url,
                    "--group",
                    "6008",
                    "--serial",
                    s,
                    "--reason",
                    "restore test",
                    NULL};
    assert_int_equal(fixture_run(argv, &out, NULL), 0);
    assert_non_null(strstr(out, "\"new\":true"));
    free(out);
}

typedef struct refusal_goal {
    uint32_t serials[4];
    size_t n;
} refusal_goal;
/* Every key of the goal refused at Activate as revoked (FAILED_PRECONDITION). */
static bool all_refused(void *arg) {
    refusal_goal *g = arg;
    for (size_t i = 0; i < g->n; i++) {
        char key[PK_TEXT_LEN + 1];
        key_of(G_RESTORE, g->serials[i], true, key);
        if (activate(&S1, key, 100 + g->serials[i], NULL, NULL) != GRPC_STATUS_FAILED_PRECONDITION) return false;
    }
    return true;
}

/* 9. The audit store goes back, the revoked sets are tampered with: every
 *    revocation is enforced all the same. Before epochs and entry ids, a
 *    serial revoked after Redis B's restore reused a sequence the
 *    activation server had passed and stayed activatable for good. */
static void test_revocations_survive_restore_and_tampering(void **state) {
    operator_revokes(1);
    refusal_goal g = {{1}, 1};
    assert_true(env_wait(all_refused, &g, 3000));

    /* Restore from a backup taken before serial 1's revocation; then 2 is
     * revoked and gets serial 1's sequence. */
    uint64_t seq1 = (uint64_t)env_int(E.audit_b, "GET " PA_RKEY_AUDIT_REVOCATION_SEQ);
    assert_int_equal(env_audit_log_back(&E, 1), 0);
    operator_revokes(2);
    assert_int_equal(env_int(E.audit_b, "GET " PA_RKEY_AUDIT_REVOCATION_SEQ), (long long)seq1);
    g = (refusal_goal){{1, 2}, 2};
    assert_true(env_wait(all_refused, &g, 3000));
    assert_true(log_has(&S1, "\"event\":\"audit.revocations.resync\"", "\"reason\":\"entry_id\""));

    /* The log lost entirely: sequences restart at 1 under a new epoch. */
    assert_int_equal(env_audit_log_wipe(&E), 0);
    operator_revokes(3);
    assert_int_equal(env_int(E.audit_b, "GET " PA_RKEY_AUDIT_REVOCATION_SEQ), 1);
    g = (refusal_goal){{1, 2, 3}, 3};
    assert_true(env_wait(all_refused, &g, 3000));
    assert_true(log_has(&S1, "\"event\":\"audit.revocations.resync\"", "\"reason\":\"epoch\""));

    /* Someone with the activation user removes a revoked serial from Redis A. */
    assert_int_equal(env_int(E.act_a, "SREM " PA_RKEY_REVOKED_FMT " 3", G_RESTORE), 1);
    assert_true(env_wait(all_refused, &g, 4000)); /* --audit-reconcile-s 1 */
    assert_true(log_has(&S1, "\"event\":\"audit.revocations.healed\"", "\"serial\":3"));

    /* Both at once: Redis B goes back (4's sequence reused by 5) and 3 is removed again. */
    operator_revokes(4);
    g = (refusal_goal){{4}, 1};
    assert_true(env_wait(all_refused, &g, 3000));
    assert_int_equal(env_audit_log_back(&E, 1), 0);
    operator_revokes(5);
    assert_int_equal(env_int(E.act_a, "SREM " PA_RKEY_REVOKED_FMT " 3", G_RESTORE), 1);
    g = (refusal_goal){{3, 4, 5}, 3};
    assert_true(env_wait(all_refused, &g, 4000));
    assert_true(metric_of(&S1, "pa_audit_revocation_resyncs_total") >= 3);
    /* (3 came back with the re-sync's full pass, or by the reconciliation,
     * whichever ran first.) */
    assert_true(metric_of(&S1, "pa_audit_revocations_healed_total") >= 1);
}

static bool s3_outbox_high(void *arg) { return log_has(&S3, "\"event\":\"audit.outbox.high\"", NULL); }

/* 10. The outbox has a cap: with the audit server away, sampled
 *     activations fill it to --audit-outbox-max; beyond, a fail-closed group
 *     refuses (UNAVAILABLE, nothing written) and a grant group grants
 *     unaudited; both counted and logged. Unsampled activations go on. A
 *     warning comes before the cap. */
static void test_outbox_cap(void **state) {
    enum { CAP = 5 };
    assert_true(env_wait(outbox_empty, NULL, 20000));
    assert_int_equal(env_stop_server(&E, SIGTERM), 0);
    const char *cap[] = {"--audit-outbox-max", "5", NULL};
    assert_int_equal(start_act_with(&S3, cap), 0);
    char key[PK_TEXT_LEN + 1], msg[256];
    for (unsigned i = 1; i <= CAP; i++) {
        key_of(G_CAP_CLOSED, i, true, key);
        activate_ok(&S3, key, i, NULL);
    }
    assert_int_equal(outbox_len(), CAP);
    assert_int_equal((long)metric_of(&S3, "pa_audit_outbox_max"), CAP);
    assert_true(env_wait(s3_outbox_high, NULL, 6000)); /* above 80 % of the cap */

    key_of(G_CAP_CLOSED, CAP + 1, true, key);
    assert_int_equal(activate(&S3, key, CAP + 1, NULL, msg), GRPC_STATUS_UNAVAILABLE);
    assert_non_null(strstr(msg, "audit"));
    assert_int_equal(env_int(E.act_a, "EXISTS " PA_RKEY_RECORD_FMT, G_CAP_CLOSED, CAP + 1), 0); /* nothing written */
    assert_true(log_has(&S3, "\"event\":\"activate.audit_outbox_full\"", "\"serial\":6"));
    assert_int_equal((long)metric_of(&S3, "pa_audit_outbox_full_total{then=\"refused\"}"), 1);
    assert_true(metric_of(&S3, "pa_activations_refused_total{reason=\"audit_unavailable\"}") >= 1);

    char lic[33];
    key_of(G_CAP_GRANT, 1, true, key);
    activate_ok(&S3, key, 1, lic);
    assert_int_equal(outbox_len(), CAP); /* granted without its record */
    assert_true(log_has(&S3, "\"event\":\"activate.unaudited\",\"group\":6010,\"serial\":1,", NULL));
    assert_int_equal((long)metric_of(&S3, "pa_audit_outbox_full_total{then=\"granted\"}"), 1);
    assert_true(log_has(&S3, "\"event\":\"activate.granted\",\"group\":6010,\"serial\":1,", "\"audit\":\"none\""));
    key_of(G_TWO, 60, true, key);
    activate_ok(&S3, key, 60, NULL); /* not sampled: the cap does not matter */

    /* Back: the outbox drains and the refused key activates. */
    assert_int_equal(env_start_server(&E), 0);
    assert_true(env_wait(outbox_empty, NULL, 20000));
    key_of(G_CAP_CLOSED, CAP + 1, true, key);
    activate_ok(&S3, key, CAP + 1, NULL);
    assert_int_equal(stop_act(&S3, SIGTERM), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offline_forged_key_revoked_after_the_fact),
        cmocka_unit_test(test_online_forged_key_refused_at_once),
        cmocka_unit_test(test_online_group_first_activation_audited_offline),
        cmocka_unit_test(test_two_servers_enforce_revocation),
        cmocka_unit_test(test_threat_signal_raises_sampling),
        cmocka_unit_test(test_online_audit_down),
        cmocka_unit_test(test_audit_down_outbox_grows_then_drains),
        cmocka_unit_test(test_sigkill_while_forwarding),
        cmocka_unit_test(test_audit_server_name_default),
        cmocka_unit_test(test_revocations_survive_restore_and_tampering),
        cmocka_unit_test(test_outbox_cap),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
