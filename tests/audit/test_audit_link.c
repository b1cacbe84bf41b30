/* test_audit_link.c -- the activation side's background audit modules
 * against the real audit server and real Redis A/B:
 *   - the outbox forwarder (in audit_link_tool, a separate process so it can
 *     be SIGKILLed) drains records exactly once, survives the audit server
 *     being down, its own SIGKILL, and a consumer that never comes back,
 *     and drops an entry the audit server would refuse;
 *   - the revocation puller applies the log to Redis A, resumes from
 *     revocations:last_seq, and two pullers on one Redis A converge;
 *   - it notices when the log went back (Redis B restored from a backup:
 *     same epoch, sequences reused) or was wiped (new epoch) and applies it
 *     again from 0, so revocations made afterwards are not skipped; and its
 *     reconciliation puts back a revoked serial removed from Redis A.
 * Records are written to the outbox the way the policy script writes them
 * (audit_record_outbox_fields, as the activation user). */
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit_env.h"
#include "audit_record.h"
#include "clock.h"
#include "log.h"
#include "outbox_forwarder.h"
#include "redis_keys.h"
#include "revocation_puller.h"

static audit_env E;

static int setup(void **state) {
    log_set_level(LOG_LEVEL_WARN);   /* the in-process pullers log every revocation */
    if (env_start(&E) != 0 || env_create_group(&E, 5001) != 0 || env_create_group(&E, 5002) != 0 ||
        env_start_server(&E) != 0) {
        env_stop(&E);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    env_stop(&E);
    return 0;
}

/* ------------------------------------------------------------- forwarder */

typedef struct tool {
    pid_t pid;
    int metrics_port;
    char log[400];
} tool;

static tool start_tool(const char *consumer, const char *batch, const char *claim_ms, const char *mode) {
    tool t = {.metrics_port = fixture_free_port()};
    char url[256], ca[400], cert[400], key[400], port[16];
    redis_fixture_url(&E.a, "activation", url, sizeof url);
    snprintf(ca, sizeof ca, "%s/ca.pem", E.certs);
    snprintf(cert, sizeof cert, "%s/activation-client.pem", E.certs);
    snprintf(key, sizeof key, "%s/activation-client.key", E.certs);
    snprintf(port, sizeof port, "%d", t.metrics_port);
    snprintf(t.log, sizeof t.log, "%s/tool-%s.log", E.dir, consumer);
    char *argv[] = {(char *)fixture_bin("tests/audit/audit_link_tool"),
                    "--redis-url",
                    url,
                    "--audit-target",
                    E.target,
                    "--ca",
                    ca,
                    "--cert",
                    cert,
                    "--key",
                    key,
                    "--consumer",
                    (char *)consumer,
                    "--batch",
                    (char *)batch,
                    "--claim-idle-ms",
                    (char *)claim_ms,
                    "--pull-interval-ms",
                    "100",
                    "--reconcile-ms",
                    "300",
                    "--metrics-port",
                    port,
                    (char *)mode,
                    NULL};
    t.pid = fixture_spawn(argv, t.log, t.metrics_port, 15000);
    assert_true(t.pid > 0);
    return t;
}

/* Writes n outbox records for group 5001, serials from `first`; every
 * fifth has a wrong second value. Request IDs go to ids (if not NULL). */
static void fill_outbox(uint32_t first, int n, char (*ids)[AUDIT_REQUEST_ID_LEN + 1]) {
    for (int i = 0; i < n; i++) {
        pk_fields f;
        char text[PK_TEXT_LEN + 1];
        uint8_t machine[32];
        memset(machine, 0xA0 + i % 16, sizeof machine);
        assert_int_equal(env_make_key(&E, 5001, first + (uint32_t)i, i % 5 != 0, &f, text), 0);
        audit_record r;
        assert_int_equal(audit_record_init(&r, &f, machine, "192.0.2.50", i % 2 ? "base-rate" : "first_activation"), 0);
        if (ids) memcpy(ids[i], r.request_id, sizeof ids[i]);
        audit_record_args a;
        audit_record_outbox_fields(&r, &a);
        const char *argv[3 + 2 * AUDIT_OUTBOX_FIELDS] = {"XADD", PA_RKEY_OUTBOX, "*"};
        size_t lens[3 + 2 * AUDIT_OUTBOX_FIELDS] = {4, strlen(PA_RKEY_OUTBOX), 1};
        for (size_t k = 0; k < a.n; k++) argv[3 + k] = a.argv[k], lens[3 + k] = a.len[k];
        redisReply *rep = redisCommandArgv(E.act_a, (int)(3 + a.n), argv, lens);
        assert_non_null(rep);
        assert_int_equal(rep->type, REDIS_REPLY_STRING);
        freeReplyObject(rep);
    }
}

static long long outbox_len(void) { return env_int(E.act_a, "XLEN %s", PA_RKEY_OUTBOX); }

static bool outbox_empty(void *arg) { return outbox_len() == 0; }

typedef struct want { long n; } want;
static bool queue_trail_reached(void *arg) {
    return env_trail_count(&E, "queue", NULL) >= ((want *)arg)->n;
}

/* Every request ID the audit server stored, exactly once. */
static void assert_stored_once(long expected_total) {
    want w = {expected_total};
    assert_true(env_wait(queue_trail_reached, &w, 20000));
    env_sleep_ms(300);
    long dups = -1;
    assert_int_equal(env_trail_count(&E, "queue", &dups), expected_total);
    assert_int_equal(dups, 0);
    assert_int_equal(env_request_keys(&E), expected_total);
}

static void test_forwarder_drains_exactly_once(void **state) {
    enum { N = 200 };
    char (*ids)[AUDIT_REQUEST_ID_LEN + 1] = calloc(N, sizeof *ids);
    fill_outbox(1, N, ids);
    tool t = start_tool("fw-a", "50", "30000", "--forward");
    assert_true(env_wait(outbox_empty, NULL, 15000));
    assert_stored_once(N);
    /* Reasons travel with the hyphenated names of the audit API. */
    redisReply *r = redisCommand(E.audit_b, "XRANGE " PA_RKEY_AUDIT_TRAIL " - +");
    assert_non_null(r);
    bool hyphen = false;
    for (size_t i = 0; i < r->elements; i++)
        for (size_t k = 0; k + 1 < r->element[i]->element[1]->elements; k += 2)
            hyphen |= strcmp(r->element[i]->element[1]->element[k + 1]->str, "first-activation") == 0;
    freeReplyObject(r);
    assert_true(hyphen);
    /* Forged ones (every fifth) were revoked by the audit server. */
    assert_int_equal(env_int(E.audit_b, "HEXISTS " PA_RKEY_AUDIT_REVOKED " " PA_AUDIT_REVOKED_MEMBER_FMT, 5001, 1), 1);
    assert_int_equal(env_int(E.audit_b, "HEXISTS " PA_RKEY_AUDIT_REVOKED " " PA_AUDIT_REVOKED_MEMBER_FMT, 5001, 2), 0);
    /* The gauge says the outbox is empty. */
    char *m = fixture_http_get("127.0.0.1", t.metrics_port, "/metrics");
    assert_non_null(m);
    assert_int_equal((long)fixture_metric(m, "pa_audit_outbox_length", -1), 0);
    assert_true(fixture_metric(m, "pa_audit_outbox_forwarded_total", -1) >= N);
    free(m);
    assert_int_equal(fixture_stop(t.pid, SIGTERM, 10000), 0);
    free(ids);
}

typedef struct gauge_goal { int port; long want; } gauge_goal;
static bool gauge_reached(void *arg) {
    gauge_goal *g = arg;
    char *m = fixture_http_get("127.0.0.1", g->port, "/metrics");
    long v = m ? (long)fixture_metric(m, "pa_audit_outbox_length", -1) : -1;
    free(m);
    return v == g->want;
}

static void test_forwarder_waits_for_audit_server(void **state) {
    long before = env_trail_count(&E, "queue", NULL);
    tool t = start_tool("fw-b", "50", "30000", "--forward");
    assert_int_equal(env_stop_server(&E, SIGTERM), 0);
    fill_outbox(1001, 60, NULL);
    env_sleep_ms(1500);
    assert_int_equal(outbox_len(), 60);               /* nothing lost, nothing sent */
    gauge_goal g = {t.metrics_port, 60};
    assert_true(env_wait(gauge_reached, &g, 5000));   /* and the gauge shows it */
    fill_outbox(1061, 20, NULL);
    assert_int_equal(outbox_len(), 80);
    assert_int_equal(env_start_server(&E), 0);
    assert_true(env_wait(outbox_empty, NULL, 15000));
    assert_stored_once(before + 80);
    g.want = 0;
    assert_true(env_wait(gauge_reached, &g, 5000));
    assert_int_equal(fixture_stop(t.pid, SIGTERM, 10000), 0);
}

static void test_forwarder_sigkill_and_dead_consumer(void **state) {
    enum { N = 600 };
    long before = env_trail_count(&E, "queue", NULL);
    fill_outbox(2001, N, NULL);
    /* Small batches so the kill lands mid-way. */
    tool t = start_tool("fw-c", "5", "30000", "--forward");
    for (int i = 0; i < 20000 && outbox_len() > N - 100; i++) env_sleep_ms(1);
    assert_int_equal(fixture_stop(t.pid, SIGKILL, 5000), 128 + SIGKILL);
    long long left = outbox_len();
    redisReply *p = redisCommand(E.act_a, "XPENDING %s %s - + 1000 fw-c", PA_RKEY_OUTBOX, PA_OUTBOX_GROUP);
    assert_non_null(p);
    size_t orphaned = p->elements;
    freeReplyObject(p);
    print_message("  forwarder killed with %lld of %d records in the outbox, %zu of them in flight\n", left, N,
                  orphaned);
    assert_true(left > 0);
    /* fw-c never returns: a forwarder with another name claims its pending
     * entries once they are idle for 300 ms, then drains the rest. */
    tool t2 = start_tool("fw-d", "100", "300", "--forward");
    assert_true(env_wait(outbox_empty, NULL, 20000));
    assert_stored_once(before + N);
    if (orphaned > 0) {
        FILE *f = fopen(t2.log, "r");
        char line[1024];
        bool claimed = false;
        while (f && !claimed && fgets(line, sizeof line, f)) claimed = strstr(line, "audit.outbox.claimed") != NULL;
        if (f) fclose(f);
        assert_true(claimed);
    }
    p = redisCommand(E.act_a, "XPENDING %s %s", PA_RKEY_OUTBOX, PA_OUTBOX_GROUP);
    assert_non_null(p);
    assert_int_equal(p->element[0]->integer, 0);
    freeReplyObject(p);
    assert_int_equal(fixture_stop(t2.pid, SIGTERM, 10000), 0);
}

static void test_redelivered_record_absorbed(void **state) {
    /* A record stored by the audit server but still in the outbox (the
     * forwarder died between Submit and XACK) is sent again: counted as a
     * duplicate, audited once. */
    char ids[1][AUDIT_REQUEST_ID_LEN + 1];
    long before = env_trail_count(&E, "queue", NULL);
    fill_outbox(3001, 1, ids);
    tool t = start_tool("fw-e", "10", "30000", "--forward");
    assert_true(env_wait(outbox_empty, NULL, 10000));
    assert_stored_once(before + 1);
    /* Put the very same entry back. */
    pk_fields f;
    char text[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&E, 5001, 3001, false, &f, text), 0);
    uint8_t machine[32];
    memset(machine, 0xA0, sizeof machine);
    audit_record rec;
    assert_int_equal(audit_record_init(&rec, &f, machine, "192.0.2.50", "base-rate"), 0);
    memcpy(rec.request_id, ids[0], sizeof rec.request_id);
    audit_record_args a;
    audit_record_outbox_fields(&rec, &a);
    const char *argv[3 + 2 * AUDIT_OUTBOX_FIELDS] = {"XADD", PA_RKEY_OUTBOX, "*"};
    size_t lens[3 + 2 * AUDIT_OUTBOX_FIELDS] = {4, strlen(PA_RKEY_OUTBOX), 1};
    for (size_t k = 0; k < a.n; k++) argv[3 + k] = a.argv[k], lens[3 + k] = a.len[k];
    redisReply *r = redisCommandArgv(E.act_a, (int)(3 + a.n), argv, lens);
    freeReplyObject(r);
    assert_true(env_wait(outbox_empty, NULL, 10000));
    env_sleep_ms(500);
    assert_stored_once(before + 1);
    assert_int_equal(fixture_stop(t.pid, SIGTERM, 10000), 0);
}

static void test_unsendable_entry_dropped(void **state) {
    /* An entry the audit server would refuse (its request_id is not hex)
     * between two good ones: the forwarder drops it and forwards the
     * others, instead of failing their batch on every attempt. */
    long before = env_trail_count(&E, "queue", NULL);
    fill_outbox(3101, 1, NULL);
    pk_fields f;
    char text[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&E, 5001, 3102, true, &f, text), 0);
    uint8_t machine[32];
    memset(machine, 0xB0, sizeof machine);
    audit_record rec;
    assert_int_equal(audit_record_init(&rec, &f, machine, "192.0.2.50", "base-rate"), 0);
    memcpy(rec.request_id, "00112233445566778899aabbc?ddeeff", AUDIT_REQUEST_ID_LEN);
    audit_record_args a;
    audit_record_outbox_fields(&rec, &a);
    const char *argv[3 + 2 * AUDIT_OUTBOX_FIELDS] = {"XADD", PA_RKEY_OUTBOX, "*"};
    size_t lens[3 + 2 * AUDIT_OUTBOX_FIELDS] = {4, strlen(PA_RKEY_OUTBOX), 1};
    for (size_t k = 0; k < a.n; k++) argv[3 + k] = a.argv[k], lens[3 + k] = a.len[k];
    redisReply *r = redisCommandArgv(E.act_a, (int)(3 + a.n), argv, lens);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    fill_outbox(3103, 1, NULL);
    tool t = start_tool("fw-f", "10", "30000", "--forward");
    assert_true(env_wait(outbox_empty, NULL, 10000));
    assert_stored_once(before + 2);
    assert_int_equal(fixture_stop(t.pid, SIGTERM, 10000), 0);
}

/* ---------------------------------------------------------------- puller */

static audit_client *C;

static void revoke_by_verify(uint32_t group, uint32_t serial) {
    pk_fields f;
    char text[PK_TEXT_LEN + 1];
    uint8_t machine[32] = {0};
    assert_int_equal(env_make_key(&E, group, serial, false, &f, text), 0);
    audit_record r;
    assert_int_equal(audit_record_init(&r, &f, machine, "192.0.2.60", "threat-address"), 0);
    assert_int_equal(audit_client_verify(C, &r, NULL, 0), AUDIT_VERIFY_FORGED);
}

static revocation_puller *new_puller(int interval_ms) {
    char url[256], err[300];
    redis_fixture_url(&E.a, "activation", url, sizeof url);
    revocation_puller_config cfg = {.store = {.url = url}, .client = C, .interval_ms = interval_ms, .batch = 3};
    revocation_puller *p = revocation_puller_start(&cfg, err, sizeof err);
    if (!p) fprintf(stderr, "%s\n", err);
    assert_non_null(p);
    return p;
}

static bool revoked_in_a(uint32_t group, uint32_t serial) {
    return env_int(E.act_a, "SISMEMBER " PA_RKEY_REVOKED_FMT " %u", group, serial) == 1;
}

static uint64_t audit_last_seq(void) { return (uint64_t)env_int(E.audit_b, "GET " PA_RKEY_AUDIT_REVOCATION_SEQ); }

static void test_puller_applies_and_resumes(void **state) {
    C = env_client(&E, E.certs);
    assert_non_null(C);
    uint64_t base = audit_last_seq();
    for (uint32_t s = 7001; s <= 7007; s++) revoke_by_verify(5002, s);
    revocation_puller *p = new_puller(-1);
    char err[300];
    /* batch = 3: several fetches in one round, all applied. */
    int n = revocation_puller_poll(p, err, sizeof err);
    assert_true(n >= 7);
    for (uint32_t s = 7001; s <= 7007; s++) assert_true(revoked_in_a(5002, s));
    assert_int_equal(env_int(E.act_a, "GET %s", PA_RKEY_REVOCATIONS_LAST_SEQ), (long long)base + 7);
    assert_int_equal(revocation_puller_last_sequence(p), base + 7);
    assert_int_equal(revocation_puller_poll(p, err, sizeof err), 0);
    revocation_puller_stop(p);

    /* "Restart": a marker proves the next puller resumes from last_seq
     * instead of replaying the log -- an applied entry removed by hand is
     * not applied again. */
    redisReply *r = redisCommand(E.act_a, "SREM " PA_RKEY_REVOKED_FMT " 7001", 5002);
    freeReplyObject(r);
    revoke_by_verify(5002, 7010);
    p = new_puller(-1);
    assert_int_equal(revocation_puller_poll(p, err, sizeof err), 1);
    assert_true(revoked_in_a(5002, 7010));
    assert_false(revoked_in_a(5002, 7001));
    assert_int_equal(revocation_puller_last_sequence(p), base + 8);

    /* A damaged sequence on either side is an error, not the number its digits start with. */
    long long keep = env_int(E.act_a, "GET %s", PA_RKEY_REVOCATIONS_LAST_SEQ);
    freeReplyObject(redisCommand(E.act_a, "SET %s %lldx", PA_RKEY_REVOCATIONS_LAST_SEQ, keep));
    assert_int_equal(revocation_puller_poll(p, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a sequence number"));
    freeReplyObject(redisCommand(E.act_a, "SET %s %lld", PA_RKEY_REVOCATIONS_LAST_SEQ, keep));
    long long keep_b = env_int(E.audit_b, "GET audit:revocation_seq");
    freeReplyObject(redisCommand(E.audit_b, "SET audit:revocation_seq %lldx", keep_b));
    assert_int_equal(revocation_puller_poll(p, err, sizeof err), -1);
    freeReplyObject(redisCommand(E.audit_b, "SET audit:revocation_seq %lld", keep_b));
    assert_int_equal(revocation_puller_poll(p, err, sizeof err), 0);

    /* Audit server down: the poll fails cleanly; back up: it catches up. */
    assert_int_equal(env_stop_server(&E, SIGTERM), 0);
    assert_int_equal(revocation_puller_poll(p, err, sizeof err), -1);
    assert_int_equal(env_start_server(&E), 0);
    revoke_by_verify(5002, 7011);
    int got = -1;
    for (int i = 0; i < 100 && got < 0; i++) {
        got = revocation_puller_poll(p, err, sizeof err);
        if (got < 0) env_sleep_ms(100);
    }
    assert_int_equal(got, 1);
    assert_true(revoked_in_a(5002, 7011));
    revocation_puller_stop(p);
}

typedef struct both { revocation_puller *p1, *p2; uint64_t want; } both;
static bool both_converged(void *arg) {
    both *b = arg;
    return revocation_puller_last_sequence(b->p1) == b->want && revocation_puller_last_sequence(b->p2) == b->want;
}

static void test_two_pullers_converge(void **state) {
    revocation_puller *p1 = new_puller(500), *p2 = new_puller(500);
    for (uint32_t s = 7101; s <= 7120; s++) revoke_by_verify(5002, s);
    double t0 = pa_mono_s();
    both b = {p1, p2, audit_last_seq()};
    assert_true(env_wait(both_converged, &b, 2000));
    double took = pa_mono_s() - t0;
    print_message("  both pullers at sequence %llu %.0f ms after the last revocation\n",
                  (unsigned long long)b.want, took * 1000);
    for (uint32_t s = 7101; s <= 7120; s++) assert_true(revoked_in_a(5002, s));
    assert_int_equal(env_int(E.act_a, "GET %s", PA_RKEY_REVOCATIONS_LAST_SEQ), (long long)b.want);
    /* One more, enforced by both within 2 s. */
    revoke_by_verify(5002, 7200);
    b.want++;
    assert_true(env_wait(both_converged, &b, 2000));
    assert_true(revoked_in_a(5002, 7200));
    revocation_puller_stop(p1);
    revocation_puller_stop(p2);
    audit_client_free(C);
    C = NULL;
}

/* The puller as a separate process, and the activation user's limits: it
 * may write exactly what the puller and forwarder need on Redis A. */
static void test_puller_process(void **state) {
    C = env_client(&E, E.certs);
    tool t = start_tool("pl-a", "10", "30000", "--pull");
    revoke_by_verify(5002, 7300);
    for (int i = 0; i < 100 && !revoked_in_a(5002, 7300); i++) env_sleep_ms(20);
    assert_true(revoked_in_a(5002, 7300));
    assert_int_equal(fixture_stop(t.pid, SIGTERM, 10000), 0);
    audit_client_free(C);
    C = NULL;
}

/* ------------------------------------------------- the log going back */

static char *tool_log_text(const tool *t) {
    FILE *f = fopen(t->log, "r");
    if (!f) return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Whether the tool's log holds `needle` within 3 s: a line is written just
 * after what it reports is visible in Redis, so a test waits for it. */
static bool tool_logged(const tool *t, const char *needle) {
    for (int i = 0; i < 300; i++) {
        const char *text = tool_log_text(t);
        if (text && strstr(text, needle)) return true;
        env_sleep_ms(10);
    }
    return false;
}

static double tool_metric(const tool *t, const char *series) {
    char *m = fixture_http_get("127.0.0.1", t->metrics_port, "/metrics");
    double v = fixture_metric(m, series, -1);
    free(m);
    return v;
}

static void test_puller_resyncs_after_restore(void **state) {
    C = env_client(&E, E.certs);
    revocation_puller *p = new_puller(-1);
    char err[300];
    revoke_by_verify(5002, 7401);
    assert_true(revocation_puller_poll(p, err, sizeof err) >= 1);
    assert_true(revoked_in_a(5002, 7401));
    uint64_t applied = revocation_puller_last_sequence(p);
    char epoch[64];
    redisReply *r = redisCommand(E.act_a, "GET %s", PA_RKEY_REVOCATIONS_EPOCH);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(r->len, 32);
    snprintf(epoch, sizeof epoch, "%s", r->str);
    freeReplyObject(r);

    /* Redis B goes back by one entry; two new revocations follow: the
     * first reuses the sequence the puller already applied, the second is
     * the next one -- without the check, 7402 would never be applied. */
    assert_int_equal(env_audit_log_back(&E, 1), 0);
    revoke_by_verify(5002, 7402);
    revoke_by_verify(5002, 7403);
    assert_int_equal(audit_last_seq(), applied + 1);
    assert_true(revocation_puller_poll(p, err, sizeof err) >= 2);
    assert_true(revoked_in_a(5002, 7402));
    assert_true(revoked_in_a(5002, 7403));
    assert_true(revoked_in_a(5002, 7401)); /* never removed: the log went back, Redis A does not */
    assert_int_equal(revocation_puller_last_sequence(p), applied + 1);
    assert_int_equal(env_int(E.act_a, "GET %s", PA_RKEY_REVOCATIONS_LAST_SEQ), (long long)applied + 1);
    assert_int_equal(revocation_puller_poll(p, err, sizeof err), 0);

    /* Gone back further than the puller's position, nothing new yet: also seen. */
    assert_int_equal(env_audit_log_back(&E, 2), 0);
    revoke_by_verify(5002, 7404);
    assert_true(revocation_puller_poll(p, err, sizeof err) >= 1);
    assert_true(revoked_in_a(5002, 7404));

    /* Wiped: sequences restart at 1 under a new epoch. */
    assert_int_equal(env_audit_log_wipe(&E), 0);
    assert_int_equal(revocation_puller_poll(p, err, sizeof err), 0); /* an empty log: position 0 */
    assert_int_equal(env_int(E.act_a, "GET %s", PA_RKEY_REVOCATIONS_LAST_SEQ), 0);
    revoke_by_verify(5002, 7405);
    assert_int_equal(audit_last_seq(), 1);
    assert_int_equal(revocation_puller_poll(p, err, sizeof err), 1);
    assert_true(revoked_in_a(5002, 7405));
    r = redisCommand(E.act_a, "GET %s", PA_RKEY_REVOCATIONS_EPOCH);
    assert_int_equal(r->len, 32);
    assert_string_not_equal(r->str, epoch);
    freeReplyObject(r);
    /* And wiped again between two polls, with new revocations at once. */
    assert_int_equal(env_audit_log_wipe(&E), 0);
    revoke_by_verify(5002, 7406);
    revoke_by_verify(5002, 7407);
    assert_int_equal(revocation_puller_poll(p, err, sizeof err), 2);
    assert_true(revoked_in_a(5002, 7406) && revoked_in_a(5002, 7407));
    revocation_puller_stop(p);
    audit_client_free(C);
    C = NULL;
}

static bool revoked_7501(void *arg) { return revoked_in_a(5002, 7501); }
static bool revoked_all(void *arg) {
    return revoked_in_a(5002, 7501) && revoked_in_a(5002, 7502) && revoked_in_a(5002, 7503);
}

/* A revoked serial removed from Redis A (the activation user may SREM) is
 * put back within the reconciliation interval; so is everything after a
 * restore of Redis B and a tampered set at once. */
static void test_reconcile_heals_tampered_sets(void **state) {
    C = env_client(&E, E.certs);
    revocation_puller *p = new_puller(-1);
    char err[300];
    revoke_by_verify(5002, 7501);
    assert_true(revocation_puller_poll(p, err, sizeof err) >= 1);
    assert_int_equal(revocation_puller_reconcile(p, err, sizeof err), 0); /* nothing missing */
    freeReplyObject(redisCommand(E.act_a, "SREM " PA_RKEY_REVOKED_FMT " 7501", 5002));
    assert_false(revoked_in_a(5002, 7501));
    assert_int_equal(revocation_puller_poll(p, err, sizeof err), 0); /* a poll alone does not see it */
    assert_false(revoked_in_a(5002, 7501));
    assert_int_equal(revocation_puller_reconcile(p, err, sizeof err), 1);
    assert_true(revoked_in_a(5002, 7501));
    revocation_puller_stop(p);

    /* The puller process, reconciling every 300 ms. */
    tool t = start_tool("pl-r", "10", "30000", "--pull");
    assert_true(env_wait(revoked_7501, NULL, 3000));
    freeReplyObject(redisCommand(E.act_a, "SREM " PA_RKEY_REVOKED_FMT " 7501", 5002));
    assert_true(env_wait(revoked_7501, NULL, 3000));
    assert_true(tool_logged(&t, "\"event\":\"audit.revocations.healed\",\"sequence\":"));
    assert_true(tool_metric(&t, "pa_audit_revocations_healed_total") >= 1);

    /* Both at once: Redis B goes back (7502's sequence is reused by 7503)
     * and 7501 is removed from Redis A. */
    revoke_by_verify(5002, 7502);
    for (int i = 0; i < 150 && !revoked_in_a(5002, 7502); i++) env_sleep_ms(20);
    assert_int_equal(env_audit_log_back(&E, 1), 0);
    revoke_by_verify(5002, 7503);
    freeReplyObject(redisCommand(E.act_a, "SREM " PA_RKEY_REVOKED_FMT " 7501", 5002));
    assert_true(env_wait(revoked_all, NULL, 3000));
    assert_true(tool_logged(&t, "\"event\":\"audit.revocations.resync\",\"reason\":\"entry_id\""));
    assert_true(tool_metric(&t, "pa_audit_revocation_resyncs_total") >= 1);
    assert_int_equal(fixture_stop(t.pid, SIGTERM, 10000), 0);
    audit_client_free(C);
    C = NULL;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forwarder_drains_exactly_once),
        cmocka_unit_test(test_forwarder_waits_for_audit_server),
        cmocka_unit_test(test_forwarder_sigkill_and_dead_consumer),
        cmocka_unit_test(test_redelivered_record_absorbed),
        cmocka_unit_test(test_unsendable_entry_dropped),
        cmocka_unit_test(test_puller_applies_and_resumes),
        cmocka_unit_test(test_two_pullers_converge),
        cmocka_unit_test(test_puller_process),
        cmocka_unit_test(test_puller_resyncs_after_restore),
        cmocka_unit_test(test_reconcile_heals_tampered_sets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
