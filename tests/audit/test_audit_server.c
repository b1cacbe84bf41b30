/* test_audit_server.c -- the audit server for real: redis-server A and B,
 * certificates from scripts/make-certs.sh, the audit-server binary, calls
 * over mutual TLS.
 *
 * One environment serves all tests (group setup and certificates are the
 * slow part); each test uses its own group ID or serial range so they do
 * not see each other's revocations. */
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/v1/audit.pb-c.h"
#include "audit_client.h"
#include "audit_env.h"
#include "grpc/health/v1/health.pb-c.h"
#include "redis_keys.h"
#include "rpc_client.h"
#include "rpc_methods.h"

static audit_env E;

static int setup(void **state) {
    if (env_start(&E) != 0 || env_create_group(&E, 4101) != 0 || env_create_group(&E, 4102) != 0 ||
        env_create_group(&E, 4103) != 0 || env_start_server(&E) != 0) {
        env_stop(&E);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    int st = env_stop_server(&E, SIGTERM);
    env_stop(&E);
    return st == 0 ? 0 : -1;
}

static audit_record make_record(uint32_t group, uint32_t serial, bool genuine, const char *reason) {
    audit_record r;
    pk_fields f;
    char text[PK_TEXT_LEN + 1];
    uint8_t machine[32];
    memset(machine, (int)(serial & 0xff), sizeof machine);
    assert_int_equal(env_make_key(&E, group, serial, genuine, &f, text), 0);
    assert_int_equal(audit_record_init(&r, &f, machine, "192.0.2.7", reason), 0);
    return r;
}

/* Reads the revocation log through the API. */
static audit_revocation_page last_page; /* the page of the last list_revocations, without its entries */

/* Reads the revocation log through the API; *out is malloc'd. */
static size_t list_revocations(audit_client *c, uint64_t after, audit_revocation **out, uint64_t *last) {
    char err[300];
    assert_int_equal(audit_client_list_revocations(c, after, 0, &last_page, err, sizeof err), 0);
    *out = last_page.entries;
    *last = last_page.last_sequence;
    last_page.entries = NULL;
    return last_page.n;
}

static bool is_log_id(const char *s) {
    if (strlen(s) != 32) return false;
    for (size_t i = 0; i < 32; i++)
        if (!strchr("0123456789abcdef", s[i])) return false;
    return true;
}

static bool log_contains(const char *needle) {
    FILE *f = fopen(E.log_path, "r");
    if (!f) return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static void test_verify_genuine_and_forged(void **state) {
    audit_client *c = env_client(&E, E.certs);
    assert_non_null(c);
    char detail[200];
    audit_record genuine = make_record(4101, 1, true, "base-rate");
    assert_int_equal(audit_client_verify(c, &genuine, detail, sizeof detail), AUDIT_VERIFY_GENUINE);

    audit_record forged1 = make_record(4101, 2, false, "threat-group");
    audit_record forged2 = make_record(4101, 3, false, "base-rate");
    assert_int_equal(audit_client_verify(c, &forged1, detail, sizeof detail), AUDIT_VERIFY_FORGED);
    assert_non_null(strstr(detail, "second security value"));
    assert_int_equal(audit_client_verify(c, &forged2, detail, sizeof detail), AUDIT_VERIFY_FORGED);

    audit_revocation *rv = NULL;
    uint64_t last = 0;
    size_t n = list_revocations(c, 0, &rv, &last);
    assert_int_equal(n, 2);
    assert_int_equal(last, 2);
    assert_int_equal(rv[0].sequence, 1);
    assert_int_equal(rv[0].group, 4101);
    assert_int_equal(rv[0].serial, 2);
    assert_int_equal(rv[1].sequence, 2);
    assert_int_equal(rv[1].serial, 3);
    /* The log has an identity, each entry a random id; nothing asked "after 0". */
    assert_true(is_log_id(last_page.epoch));
    assert_true(is_log_id(rv[0].entry_id) && is_log_id(rv[1].entry_id));
    assert_string_not_equal(rv[0].entry_id, rv[1].entry_id);
    assert_false(last_page.after_found);
    char epoch[40], id1[40];
    snprintf(epoch, sizeof epoch, "%s", last_page.epoch);
    snprintf(id1, sizeof id1, "%s", rv[0].entry_id);
    free(rv);
    /* After sequence 1: the entry at 1 is named, so a caller can check it. */
    assert_int_equal(list_revocations(c, 1, &rv, &last), 1);
    assert_true(last_page.after_found);
    assert_string_equal(last_page.after_entry_id, id1);
    assert_string_equal(last_page.epoch, epoch);
    free(rv);
    assert_int_equal(list_revocations(c, 99, &rv, &last), 0); /* beyond the log */
    assert_false(last_page.after_found);
    free(rv);

    /* The same forged key again: still FORGED, but revoked only once. */
    forged1 = make_record(4101, 2, false, "base-rate");
    assert_int_equal(audit_client_verify(c, &forged1, detail, sizeof detail), AUDIT_VERIFY_FORGED);
    n = list_revocations(c, 1, &rv, &last);
    assert_int_equal(n, 1);
    assert_int_equal(last, 2);
    assert_int_equal(rv[0].sequence, 2);
    free(rv);

    /* The genuine key is not revoked; the trail holds every verdict, never the key. */
    assert_int_equal(env_int(E.audit_b, "HEXISTS " PA_RKEY_AUDIT_REVOKED " " PA_AUDIT_REVOKED_MEMBER_FMT, 4101, 1), 0);
    assert_true(env_trail_count(&E, "verify", NULL) >= 4);
    char text[PK_TEXT_LEN + 1];
    assert_int_equal(pk_encode(&genuine.key, text), 0);
    redisReply *r = redisCommand(E.audit_b, "XRANGE " PA_RKEY_AUDIT_TRAIL " - +");
    assert_non_null(r);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *f = r->element[i]->element[1];
        for (size_t j = 0; j < f->elements; j++) assert_null(strstr(f->element[j]->str, text));
    }
    freeReplyObject(r);
    assert_false(log_contains(text));
    assert_true(log_contains("\"peer_cn\":\"activation-server\""));
    /* Verdicts and revocations are counted. */
    char *m = fixture_http_get("127.0.0.1", E.metrics_port, "/metrics");
    assert_non_null(m);
    assert_true(fixture_metric(m, "pa_audit_verdicts_total{source=\"verify\",verdict=\"forged\"}", -1) >= 3);
    assert_true(fixture_metric(m, "pa_audit_verdicts_total{source=\"verify\",verdict=\"genuine\"}", -1) >= 1);
    assert_true(fixture_metric(m, "pa_audit_revocations_total", -1) >= 2);
    free(m);
    audit_client_free(c);
}

static void test_unknown_group_is_forged(void **state) {
    audit_client *c = env_client(&E, E.certs);
    audit_record r = make_record(4101, 40, true, "base-rate");
    r.key.group = 99999;   /* no such group in Redis B */
    char detail[200];
    assert_int_equal(audit_client_verify(c, &r, detail, sizeof detail), AUDIT_VERIFY_FORGED);
    assert_non_null(strstr(detail, "no audit record"));
    assert_int_equal(env_int(E.audit_b, "HEXISTS " PA_RKEY_AUDIT_REVOKED " " PA_AUDIT_REVOKED_MEMBER_FMT, 99999, 40),
                     1);
    audit_client_free(c);
}

/* A raw channel with the given client certificate directory (NULL: no
 * client certificate; plaintext when `tls` is false). */
static rpc_channel *raw_channel(const char *certdir, bool tls, char **pems) {
    char path[400], err[256];
    if (!tls) return rpc_channel_new(E.target, NULL);
    snprintf(path, sizeof path, "%s/ca.pem", E.certs);
    pems[0] = rpc_read_pem(path, err, sizeof err);
    if (certdir) {
        snprintf(path, sizeof path, "%s/activation-client.pem", certdir);
        pems[1] = rpc_read_pem(path, err, sizeof err);
        snprintf(path, sizeof path, "%s/activation-client.key", certdir);
        pems[2] = rpc_read_pem(path, err, sizeof err);
    }
    rpc_client_tls t = {.ca_pem = pems[0], .cert_pem = pems[1], .key_pem = pems[2],
                        .target_name_override = "localhost"};
    return rpc_channel_new(E.target, &t);
}

static grpc_status_code call_list(rpc_channel *ch) {
    rpc_client_method *m = rpc_channel_method(ch, PA_RPC_AUDIT_LIST_REVOCATIONS);
    Audit__V1__ListRevocationsRequest req = AUDIT__V1__LIST_REVOCATIONS_REQUEST__INIT;
    rpc_result res;
    grpc_status_code st = rpc_call_message(ch, m, &req.base, 3000, &res);
    rpc_result_clear(&res);
    return st;
}

static void check_channel(const char *certdir, bool tls, grpc_status_code want) {
    char *pems[3] = {NULL, NULL, NULL};
    rpc_channel *ch = raw_channel(certdir, tls, pems);
    assert_non_null(ch);
    assert_int_equal(call_list(ch), want);
    rpc_channel_free(ch);
    for (int i = 0; i < 3; i++) free(pems[i]);
}

static void test_mtls_only(void **state) {
    check_channel(NULL, false, GRPC_STATUS_UNAVAILABLE);          /* plaintext */
    check_channel(NULL, true, GRPC_STATUS_UNAVAILABLE);           /* TLS, no client certificate */
    check_channel(E.other, true, GRPC_STATUS_UNAVAILABLE);        /* certificate from another CA */
    check_channel(E.certs, true, GRPC_STATUS_OK);                 /* the right certificate */
    /* The audit client maps every refusal to UNAVAILABLE too. */
    audit_client *other = env_client(&E, E.other);
    audit_record r = make_record(4101, 41, true, "base-rate");
    assert_int_equal(audit_client_verify(other, &r, NULL, 0), AUDIT_VERIFY_UNAVAILABLE);
    audit_client_free(other);
}

static void test_health_and_bad_input(void **state) {
    char *pems[3] = {NULL, NULL, NULL};
    rpc_channel *ch = raw_channel(E.certs, true, pems);
    rpc_client_method *health = rpc_channel_method(ch, PA_RPC_HEALTH_CHECK);
    Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    hreq.service = PA_RPC_AUDIT_SERVICE;
    rpc_result res;
    assert_int_equal(rpc_call_message(ch, health, &hreq.base, 3000, &res), GRPC_STATUS_OK);
    Grpc__Health__V1__HealthCheckResponse *hr =
        grpc__health__v1__health_check_response__unpack(NULL, res.body_len, res.body);
    assert_non_null(hr);
    assert_int_equal(hr->status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    grpc__health__v1__health_check_response__free_unpacked(hr, NULL);
    rpc_result_clear(&res);

    /* A key that does not decode is refused, naming the field. */
    rpc_client_method *verify = rpc_channel_method(ch, PA_RPC_AUDIT_VERIFY);
    Audit__V1__AuditRecord rec = AUDIT__V1__AUDIT_RECORD__INIT;
    rec.product_key = "NOT-A-KEY";
    Audit__V1__VerifyRequest vreq = AUDIT__V1__VERIFY_REQUEST__INIT;
    vreq.record = &rec;
    assert_int_equal(rpc_call_message(ch, verify, &vreq.base, 3000, &res), GRPC_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(res.message, "record.product_key"));
    rpc_result_clear(&res);
    /* No record at all. */
    vreq.record = NULL;
    assert_int_equal(rpc_call_message(ch, verify, &vreq.base, 3000, &res), GRPC_STATUS_INVALID_ARGUMENT);
    rpc_result_clear(&res);
    /* Submit without request_id. */
    rpc_client_method *submit = rpc_channel_method(ch, PA_RPC_AUDIT_SUBMIT);
    Audit__V1__AuditRecord *recs[] = {&rec};
    Audit__V1__SubmitRequest sreq = AUDIT__V1__SUBMIT_REQUEST__INIT;
    sreq.n_records = 1;
    sreq.records = recs;
    assert_int_equal(rpc_call_message(ch, submit, &sreq.base, 3000, &res), GRPC_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(res.message, "records[0].request_id"));
    rpc_result_clear(&res);
    /* Garbage bytes. */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x07};
    assert_int_equal(rpc_call(ch, verify, junk, sizeof junk, 3000, &res), GRPC_STATUS_INVALID_ARGUMENT);
    rpc_result_clear(&res);
    rpc_channel_free(ch);
    for (int i = 0; i < 3; i++) free(pems[i]);
}

typedef struct trail_goal {
    long want;                    /* queue verdicts expected */
} trail_goal;

static bool trail_reached(void *arg) {
    trail_goal *g = arg;
    return env_trail_count(&E, "queue", NULL) >= g->want;
}

static void test_submit_queue_exactly_once(void **state) {
    audit_client *c = env_client(&E, E.certs);
    enum { N = 20 };
    audit_record recs[N + 2];
    for (int i = 0; i < N + 2; i++) recs[i] = make_record(4102, 100 + (uint32_t)i, i % 4 != 0, "base-rate");
    long before = env_trail_count(&E, "queue", NULL);
    long long known = env_request_keys(&E);
    uint32_t acc, dup;
    char err[300];
    assert_int_equal(audit_client_submit(c, recs, N, &acc, &dup, err, sizeof err), 0);
    assert_int_equal(acc, N);
    assert_int_equal(dup, 0);
    /* Stored before the answer: every request_id is known right away. */
    assert_int_equal(env_request_keys(&E), known + N);
    /* Again, with two new ones: the old ones count as duplicates. */
    assert_int_equal(audit_client_submit(c, recs, N + 2, &acc, &dup, err, sizeof err), 0);
    assert_int_equal(acc, 2);
    assert_int_equal(dup, N);
    trail_goal g = {before + N + 2};
    assert_true(env_wait(trail_reached, &g, 10000));
    env_sleep_ms(300);
    long dups = -1;
    assert_int_equal(env_trail_count(&E, "queue", &dups), before + N + 2);
    assert_int_equal(dups, 0);
    assert_int_equal(env_int(E.audit_b, "XLEN " PA_RKEY_AUDIT_QUEUE), 0);
    for (int i = 0; i < N + 2; i++) {
        long long revoked =
            env_int(E.audit_b, "HEXISTS " PA_RKEY_AUDIT_REVOKED " " PA_AUDIT_REVOKED_MEMBER_FMT, 4102, 100 + i);
        assert_int_equal(revoked, i % 4 == 0 ? 1 : 0);
    }
    audit_client_free(c);
}

/* TTL of one request id's key: -2 absent, -1 no expiry. */
static long long request_ttl(const char *request_id) {
    char key[PA_RKEY_MAX];
    pa_rkey_audit_request(key, sizeof key, request_id);
    return env_int(E.audit_b, "TTL %s", key);
}

static bool request_gone(void *arg) { return request_ttl(arg) == -2; }

typedef struct request_state {
    const char *id, *want;
} request_state;
static bool request_is(void *arg) {
    request_state *r = arg;
    char key[PA_RKEY_MAX];
    pa_rkey_audit_request(key, sizeof key, r->id);
    redisReply *v = redisCommand(E.audit_b, "GET %s", key);
    bool is = v && v->type == REDIS_REPLY_STRING && strcmp(v->str, r->want) == 0;
    if (v) freeReplyObject(v);
    return is;
}

/* Request ids are remembered for the retention only: every key expires by
 * itself (no key without a TTL, nothing to scan), and a record sent again
 * after that is accepted and audited again. */
static void test_request_ids_expire(void **state) {
    assert_int_equal(env_stop_server(&E, SIGTERM), 0);
    const char *opts[] = {"--request-retention-s", "2", NULL};
    assert_int_equal(env_start_server_with(&E, opts), 0);
    audit_client *c = env_client(&E, E.certs);
    audit_record sub = make_record(4103, 3001, true, "base-rate"), ver = make_record(4103, 3002, true, "base-rate");
    uint32_t acc, dup;
    char err[300];
    long before = env_trail_count(&E, "queue", NULL);
    assert_int_equal(audit_client_submit(c, &sub, 1, &acc, &dup, err, sizeof err), 0);
    assert_int_equal(acc, 1);
    long long ttl = request_ttl(sub.request_id);
    assert_true(ttl >= 1 && ttl <= 2);
    assert_int_equal(audit_client_submit(c, &sub, 1, &acc, &dup, err, sizeof err), 0);
    assert_int_equal(dup, 1); /* within the retention: known */
    request_state done = {sub.request_id, "done"};
    assert_true(env_wait(request_is, &done, 5000)); /* audited: done, with a TTL again */
    ttl = request_ttl(sub.request_id);
    assert_true(ttl >= 1 && ttl <= 2);
    assert_int_equal(audit_client_verify(c, &ver, NULL, 0), AUDIT_VERIFY_GENUINE);
    ttl = request_ttl(ver.request_id);
    assert_true(ttl >= 1 && ttl <= 2);

    /* No request key lives forever (the old hash grew with every sample). */
    assert_int_equal(env_int(E.audit_b, "EXISTS audit:requests"), 0);
    redisReply *r = redisCommand(E.audit_b, "SCAN 0 MATCH audit:request:* COUNT 100000");
    assert_non_null(r);
    for (size_t i = 0; i < r->element[1]->elements; i++)
        assert_true(env_int(E.audit_b, "TTL %s", r->element[1]->element[i]->str) > 0);
    freeReplyObject(r);

    assert_true(env_wait(request_gone, sub.request_id, 6000));
    assert_true(env_wait(request_gone, ver.request_id, 6000));
    assert_int_equal(audit_client_submit(c, &sub, 1, &acc, &dup, err, sizeof err), 0);
    assert_int_equal(acc, 1); /* forgotten: audited again */
    trail_goal g = {before + 2};
    assert_true(env_wait(trail_reached, &g, 10000));
    audit_client_free(c);
    assert_int_equal(env_stop_server(&E, SIGTERM), 0);
    assert_int_equal(env_start_server(&E), 0);
}

/* SIGKILL of the audit server right after a big Submit: after restart the
 * worker finishes the queue and every request is audited exactly once. */
static void test_queue_survives_sigkill(void **state) {
    audit_client *c = env_client(&E, E.certs);
    enum { N = 400 };
    audit_record *recs = calloc(N, sizeof *recs);
    for (int i = 0; i < N; i++) recs[i] = make_record(4103, 1000 + (uint32_t)i, i % 10 != 0, "base-rate");
    long before = env_trail_count(&E, "queue", NULL);
    uint32_t acc, dup;
    char err[300];
    assert_int_equal(audit_client_submit(c, recs, N, &acc, &dup, err, sizeof err), 0);
    assert_int_equal(acc, N);
    /* Let the worker get going, then kill it mid-queue. */
    for (int i = 0; i < 2000 && env_trail_count(&E, "queue", NULL) < before + 10; i++) env_sleep_ms(1);
    assert_int_equal(env_stop_server(&E, SIGKILL), 128 + SIGKILL);
    long mid = env_trail_count(&E, "queue", NULL);
    assert_int_equal(env_start_server(&E), 0);
    trail_goal g = {before + N};
    assert_true(env_wait(trail_reached, &g, 20000));
    env_sleep_ms(300);
    long dups = -1;
    assert_int_equal(env_trail_count(&E, "queue", &dups), before + N);
    assert_int_equal(dups, 0);
    assert_int_equal(env_int(E.audit_b, "XLEN " PA_RKEY_AUDIT_QUEUE), 0);
    redisReply *pending = redisCommand(E.audit_b, "XPENDING " PA_RKEY_AUDIT_QUEUE " " PA_AUDIT_QUEUE_GROUP);
    assert_non_null(pending);
    assert_int_equal(pending->element[0]->integer, 0);
    freeReplyObject(pending);
    print_message("  killed with %ld of %d audited; the rest after restart\n", mid - before, N);
    free(recs);
    audit_client_free(c);
}

static int run_cli(char **out, const char *cmd, ...) {
    char url[256];
    redis_fixture_url(&E.b, "audit", url, sizeof url);
    char *argv[24] = {(char *)fixture_bin("audit-server/audit-server"), (char *)cmd, "--redis-url", url};
    int n = 4;
    va_list ap;
    va_start(ap, cmd);
    for (char *a; n < 23 && (a = va_arg(ap, char *)); ) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return fixture_run(argv, out, NULL);
}

/* Every line of `out` is one JSON object whose first key is `first`;
 * returns the line count. */
static int json_lines(const char *out, const char *first) {
    int n = 0;
    for (const char *p = out; *p; n++) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        json_error_t jerr;
        json_t *o = json_loadb(p, (size_t)(nl - p), 0, &jerr);
        if (!o) fail_msg("not JSON: %.*s (%s)", (int)(nl - p), p, jerr.text);
        assert_true(json_is_object(o));
        assert_string_equal(json_object_iter_key(json_object_iter(o)), first);
        json_decref(o);
        p = nl + 1;
    }
    return n;
}

static void test_manual_revoke_cli(void **state) {
    char *out = NULL;
    assert_int_equal(run_cli(&out, "revoke", "--group", "4101", "--serial", "777", "--reason", "key sold twice", NULL), 0);
    /* The exact bytes: scripts read this line. */
    assert_non_null(strstr(out, "{\"group\":4101,\"serial\":777,\"sequence\":"));
    assert_non_null(strstr(out, ",\"new\":true}\n"));
    assert_int_equal(json_lines(out, "group"), 1);
    free(out);
    audit_client *c = env_client(&E, E.certs);
    audit_revocation *rv = NULL;
    uint64_t last = 0;
    size_t n = list_revocations(c, 0, &rv, &last);
    bool found = false;
    for (size_t i = 0; i < n; i++) found |= rv[i].group == 4101 && rv[i].serial == 777 && rv[i].sequence == last;
    assert_true(found);
    free(rv);
    /* Again: no second log entry. */
    assert_int_equal(run_cli(&out, "revoke", "--group", "4101", "--serial", "777", "--reason", "again", NULL), 0);
    assert_non_null(strstr(out, "\"new\":false"));
    free(out);
    uint64_t last2 = 0;
    list_revocations(c, 0, &rv, &last2);
    free(rv);
    assert_int_equal(last2, last);
    /* Quotes and backslashes in a reason come out escaped. */
    assert_int_equal(run_cli(NULL, "revoke", "--group", "4101", "--serial", "779", "--reason", "said \"x\\y\"", NULL),
                     0);
    /* Listings. */
    assert_int_equal(run_cli(&out, "revocations", NULL), 0);
    assert_non_null(strstr(out, "\"group\":4101,\"serial\":777,\"revoked_at\":"));
    assert_non_null(strstr(out, "\"reason\":\"key sold twice\"}\n"));
    assert_non_null(strstr(out, "\"serial\":779,"));
    assert_non_null(strstr(out, "\"reason\":\"said \\\"x\\\\y\\\"\"}\n"));
    assert_true(json_lines(out, "sequence") >= 2);
    free(out);
    assert_int_equal(run_cli(&out, "trail", "--group", "4101", "--serial", "777", NULL), 0);
    assert_non_null(strstr(out, "{\"id\":\""));
    assert_non_null(strstr(out, "\"verdict\":\"revoked\""));
    assert_non_null(strstr(out, "\"source\":\"manual\""));
    assert_int_equal(json_lines(out, "id"), 2); /* the two revokes of 777, nothing else */
    free(out);
    /* Bad input is named. */
    assert_int_equal(run_cli(NULL, "revoke", "--group", "4101", "--serial", "778", NULL), 2);
    assert_int_equal(run_cli(NULL, "revoke", "--group", "x", "--serial", "1", "--reason", "r", NULL), 2);
    audit_client_free(c);
}

static void test_isolation(void **state) {
    /* Redis B has no activation user at all. */
    assert_null(redis_fixture_connect(&E.b, "activation", FIXTURE_PW_ACTIVATION));
    /* On Redis A the activation user cannot touch an audit record. */
    redisReply *r = redisCommand(E.act_a, "HGETALL " PA_RKEY_AUDIT_FMT, 4101);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "NOPERM"));
    freeReplyObject(r);
    r = redisCommand(E.act_a, "EVAL %s 1 " PA_RKEY_AUDIT_FMT, "return redis.call('HGETALL', KEYS[1])", 4101);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    /* The audit user cannot rewrite the second secrets it reads. */
    r = redisCommand(E.audit_b, "HSET " PA_RKEY_AUDIT_FMT " secret x", 4101);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

/* The line `appendfsync X` of a store's rendered redis.conf. */
static bool conf_has(const redis_fixture *f, const char *line) {
    char path[320], buf[256];
    snprintf(path, sizeof path, "%s/redis.conf", f->dir);
    FILE *fp = fopen(path, "r");
    bool found = false;
    while (fp && !found && fgets(buf, sizeof buf, fp)) found = strcmp(buf, line) == 0;
    if (fp) fclose(fp);
    return found;
}

/* Redis B writes every verdict and revocation to disk before the audit
 * server answers (appendfsync always); Redis A keeps everysec. The ACL
 * users may not run CONFIG or INFO, so the check reads the configuration
 * the fixture rendered from docker/redis/redis.conf.in and started. */
static void test_audit_store_fsyncs_every_write(void **state) {
    assert_true(conf_has(&E.b, "appendfsync always\n"));
    assert_false(conf_has(&E.b, "appendfsync everysec\n"));
    assert_true(conf_has(&E.a, "appendfsync everysec\n"));
    assert_true(conf_has(&E.b, "appendonly yes\n"));
}

static void test_sigterm_drains(void **state) {
    assert_int_equal(env_stop_server(&E, SIGTERM), 0);
    assert_true(log_contains("server.stopped"));
    assert_int_equal(env_start_server(&E), 0);
    audit_client *c = env_client(&E, E.certs);
    audit_record r = make_record(4101, 1, true, "base-rate");
    assert_int_equal(audit_client_verify(c, &r, NULL, 0), AUDIT_VERIFY_GENUINE);
    audit_client_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_genuine_and_forged),
        cmocka_unit_test(test_unknown_group_is_forged),
        cmocka_unit_test(test_mtls_only),
        cmocka_unit_test(test_health_and_bad_input),
        cmocka_unit_test(test_submit_queue_exactly_once),
        cmocka_unit_test(test_queue_survives_sigkill),
        cmocka_unit_test(test_request_ids_expire),
        cmocka_unit_test(test_manual_revoke_cli),
        cmocka_unit_test(test_isolation),
        cmocka_unit_test(test_audit_store_fsyncs_every_write),
        cmocka_unit_test(test_sigterm_drains),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
