/* test_faults_partition.c -- the network between the activation server and
 * the audit server cut and healed (the fault matrix, docs/testing.md).
 *
 * The audit server runs in a network namespace of its own, joined to ours
 * by a veth pair (netns_link.h); it listens on the namespace's address and
 * reaches Redis B over the link, so a partition cuts it off from
 * everything, as a lost audit site would be. Redis A, Redis B and the
 * activation server stay here on 127.0.0.1 (Redis B also on our end of the
 * link). During the partition:
 *   - offline audit: activations are granted and their records wait in the
 *     outbox; after healing the outbox drains and each record is in the
 *     audit trail exactly once (counted by request id);
 *   - online audit, fail-closed: UNAVAILABLE; offline fallback: granted
 *     and queued in the outbox;
 *   - a revocation made meanwhile (`audit-server revoke` into Redis B) is
 *     not known to the activation server until the link is back; then it
 *     is applied (Activate of the key refused FAILED_PRECONDITION).
 * Needs root and iproute2; exits 77 (skipped) otherwise. Figures printed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act_env.h"
#include "clock.h"
#include "fault_audit.h"
#include "netns_link.h"
#include "redis_keys.h"

enum { G_OFFLINE = 501, G_CLOSED = 502, G_FALLBACK = 503, G_REVOKE = 504, N_OFFLINE = 20 };

static act_env env;
static netns_link link_;
static pid_t audit = -1;
static redisContext *meas_a, *meas_b; /* users allowed every command (CONFIG, the outbox, the trail) */

static void tune_offline(group_record *r) {
    r->policy.max_machines = 100;
    r->policy.audit_rate_ppm = 1000000;
    r->policy.audit = AUDIT_MODE_OFFLINE;
}
static void tune_closed(group_record *r) {
    tune_offline(r);
    r->policy.audit = AUDIT_MODE_ONLINE;
    r->policy.on_audit_down = AUDIT_UNREACHABLE_FAIL_CLOSED;
}
static void tune_fallback(group_record *r) {
    tune_closed(r);
    r->policy.on_audit_down = AUDIT_UNREACHABLE_OFFLINE;
}
static void tune_unsampled(group_record *r) {
    r->policy.max_machines = 100;
    r->policy.audit_rate_ppm = 0;
}

static int setup(void **state) {
    (void)state;
    if (env_start_stores(&env) != 0 || env_make_certs(&env) != 0) return -1;
    if (env_create_group(&env, G_OFFLINE, tune_offline) != 0 || env_create_group(&env, G_CLOSED, tune_closed) != 0 ||
        env_create_group(&env, G_FALLBACK, tune_fallback) != 0 || env_create_group(&env, G_REVOKE, tune_unsampled) != 0)
        return -1;
    meas_a = env_measuring_connection(&env);
    meas_b = env_measuring_connection_b(&env);
    if (!meas_a || !meas_b) return -1;
    /* Redis B answers on our end of the link too, for the audit server. */
    char bind[64];
    snprintf(bind, sizeof bind, "127.0.0.1 %s", link_.near_ip);
    redisReply *r = redisCommand(meas_b, "CONFIG SET bind %s", bind);
    int ok = r && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
    if (!ok) return -1;
    const char *prefix[4];
    char target[64];
    netns_link_exec_prefix(&link_, prefix);
    audit = fault_audit_start(&env, prefix, link_.far_ip, link_.near_ip, target);
    if (audit < 0) return -1;
    const char *more[] = {"--audit-consumer",
                          "fault-act",
                          "--audit-reconcile-s",
                          "1",
                          "--rate-address-per-s",
                          "0",
                          "--rate-group-per-s",
                          "0",
                          NULL};
    const char *flags[32];
    fault_audit_flags(&env, target, more, flags, 32);
    return env_start_server(&env, flags);
}

static int teardown(void **state) {
    (void)state;
    int st = env_stop_server(&env);
    if (audit > 0) fixture_stop(audit, SIGTERM, 10000);
    if (meas_a) redisFree(meas_a);
    if (meas_b) redisFree(meas_b);
    env_stop(&env);
    netns_link_destroy(&link_);
    return st == 0 ? 0 : -1;
}

static grpc_status_code activate(uint32_t group, uint32_t serial, unsigned machine, char *msg, size_t msglen) {
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, group, serial, false, 0, key), 0);
    uint8_t m[32];
    env_machine(m, machine);
    rpc_result res;
    grpc_status_code st = env_activate(&env, key, m, sizeof m, &res, NULL);
    if (msg) snprintf(msg, msglen, "%s", res.message);
    rpc_result_clear(&res);
    return st;
}

static long long outbox_len(void) {
    redisReply *r = redisCommand(meas_a, "XLEN %s", PA_RKEY_OUTBOX);
    assert_non_null(r);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

typedef char request_id[64];

/* Request ids of every outbox entry now (up to cap). */
static size_t outbox_ids(request_id *ids, size_t cap) {
    redisReply *r = redisCommand(meas_a, "XRANGE %s - +", PA_RKEY_OUTBOX);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    size_t n = 0;
    for (size_t i = 0; i < r->elements && n < cap; i++) {
        const redisReply *kv = r->element[i]->element[1];
        for (size_t k = 0; k + 1 < kv->elements; k += 2)
            if (strcmp(kv->element[k]->str, "request_id") == 0)
                snprintf(ids[n++], sizeof *ids, "%s", kv->element[k + 1]->str);
    }
    freeReplyObject(r);
    return n;
}

/* How often `id` occurs in the audit trail. */
static int trail_count(const char *id) {
    redisReply *r = redisCommand(meas_b, "XRANGE %s - +", PA_RKEY_AUDIT_TRAIL);
    assert_non_null(r);
    int n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *kv = r->element[i]->element[1];
        for (size_t k = 0; k + 1 < kv->elements; k += 2)
            if (strcmp(kv->element[k]->str, "request_id") == 0 && strcmp(kv->element[k + 1]->str, id) == 0) n++;
    }
    freeReplyObject(r);
    return n;
}

static void operator_revokes(uint32_t group, uint32_t serial) {
    char url[256], g[16], s[16], *out = NULL;
    redis_fixture_url(&env.b, "audit", url, sizeof url);
    snprintf(g, sizeof g, "%u", group);
    snprintf(s, sizeof s, "%u", serial);
    char *argv[] = {(char *)fixture_bin("audit-server/audit-server"),
                    "revoke",
                    "--redis-url",
                    url,
                    "--group",
                    g,
                    "--serial",
                    s,
                    "--reason",
                    "refunded order",
                    NULL};
    assert_int_equal(fixture_run(argv, &out, NULL), 0);
    assert_non_null(strstr(out, "\"new\":true"));
    free(out);
}

/* Seconds until pred holds (polled every 100 ms, up to limit_s), or -1. */
static double until(bool (*pred)(void), double limit_s) {
    for (double t0 = pa_mono_s(); pa_mono_s() - t0 < limit_s; usleep(100 * 1000))
        if (pred()) return pa_mono_s() - t0;
    return -1;
}
static bool outbox_empty(void) { return outbox_len() == 0; }
static unsigned revoke_probe; /* machine numbers for probing the revoked key */
static bool revoked_here(void) {
    return activate(G_REVOKE, 1, 900 + revoke_probe++, NULL, 0) == GRPC_STATUS_FAILED_PRECONDITION;
}
static bool online_back(void) { return activate(G_CLOSED, 9, 950 + revoke_probe++, NULL, 0) == GRPC_STATUS_OK; }

static void test_partition_and_heal(void **state) {
    (void)state;
    char msg[256];
    /* Before: everything flows. */
    assert_int_equal(activate(G_OFFLINE, 1000, 1, NULL, 0), GRPC_STATUS_OK);
    assert_int_equal(activate(G_CLOSED, 1, 2, NULL, 0), GRPC_STATUS_OK);
    assert_int_equal(activate(G_REVOKE, 1, 3, NULL, 0), GRPC_STATUS_OK);
    assert_true(until(outbox_empty, 15) >= 0);

    assert_int_equal(netns_link_set_down(&link_, 1), 0);
    double cut = pa_mono_s();
    for (uint32_t i = 1; i <= N_OFFLINE; i++) assert_int_equal(activate(G_OFFLINE, i, 10 + i, NULL, 0), GRPC_STATUS_OK);
    double t0 = pa_mono_s();
    assert_int_equal(activate(G_CLOSED, 2, 40, msg, sizeof msg), GRPC_STATUS_UNAVAILABLE);
    double closed_s = pa_mono_s() - t0;
    assert_int_equal(activate(G_FALLBACK, 1, 41, NULL, 0), GRPC_STATUS_OK);
    operator_revokes(G_REVOKE, 1);
    usleep(2500 * 1000); /* more than a reconcile period: nothing can reach the activation server */
    assert_int_equal(activate(G_REVOKE, 1, 42, NULL, 0), GRPC_STATUS_OK);
    long long queued = outbox_len();
    static request_id ids[N_OFFLINE + 8];
    size_t n = outbox_ids(ids, sizeof ids / sizeof *ids);
    assert_int_equal(queued, N_OFFLINE + 1); /* every offline activation and the fallback one */
    assert_int_equal(n, (size_t)queued);

    assert_int_equal(netns_link_set_down(&link_, 0), 0);
    double healed = pa_mono_s(), partition_s = healed - cut;
    /* Each figure: seconds after healing by which it was seen (polled in turn). */
    double drained = until(outbox_empty, 30) < 0 ? -1 : pa_mono_s() - healed;
    double revoked = until(revoked_here, 30) < 0 ? -1 : pa_mono_s() - healed;
    double online = until(online_back, 30) < 0 ? -1 : pa_mono_s() - healed;
    usleep(1000 * 1000); /* a second delivery would show up by now */
    int once = 0;
    for (size_t i = 0; i < n; i++) {
        int c = trail_count(ids[i]);
        if (c != 1) fprintf(stderr, "request %s is in the audit trail %d times\n", ids[i], c);
        once += c == 1;
    }
    printf(
        "  partition of %.1f s: %lld records queued; fail-closed online audit UNAVAILABLE after %.2f s "
        "(\"%s\"); after healing: outbox drained by %.1f s, %d of %zu records in the trail exactly once, "
        "the revocation applied by %.1f s, online audit back by %.1f s\n",
        partition_s, queued, closed_s, msg, drained, once, n, revoked, online);
    assert_true(drained >= 0);
    assert_int_equal(once, (int)n);
    assert_true(revoked >= 0);
    assert_true(online >= 0);
}

int main(void) {
    char why[512];
    if (netns_link_create(&link_, why, sizeof why) != 0) {
        printf("faults.partition skipped: %s\n", why);
        netns_link_destroy(&link_);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_partition_and_heal, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    netns_link_destroy(&link_);
    return failed;
}
