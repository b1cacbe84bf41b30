/* test_admin_webhooks.c -- events and webhooks against a real Redis A, a
 * real activation-server with volume orders, and a webhook receiver in
 * this program (libmicrohttpd on 127.0.0.1) that checks every delivery's
 * HMAC-SHA256 signature with the secret webhook_create showed.
 *
 * The event detection runs by hand (events_detect with a chosen `now`),
 * so "once per crossing" is counted exactly; the senders
 * (webhook_delivery) run as the server runs them, two at once, with the
 * backoff shortened to 100 ms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "events.h"
#include "order_env.h"
#include "redis_keys.h"
#include "volume_calls.h"
#include "webhook_delivery.h"
#include "webhook_receiver.h"
#include "webhooks.h"

#define G_SEATS 821
#define G_EXPIRE 822
#define G_APPROVE 823

static act_env env;
static order_env oe;
static rstore *admin;                             /* Redis A as user admin */
static redisContext *m;                           /* every command */
static char admin_url[160];                       /* its URL */
static int rx_port;                               /* the receiver's */
static char secret_flaky[WEBHOOK_SECRET_LEN + 1]; /* /flaky's secret */
static webhook_delivery *senders[2];
static events_config ev_cfg;

/* ---- set-up ----------------------------------------------------------------- */

static void tune_volume(group_record *r) { r->channel = GROUP_CHANNEL_VOLUME; }

/* An endpoint at the receiver's `path`; its secret into secret. */
static void make_webhook(const char *path, const char *const *events, char secret[WEBHOOK_SECRET_LEN + 1]) {
    char url[96], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", rx_port, path);
    json_t *list = json_array(), *out = NULL;
    for (int i = 0; events[i]; i++) json_array_append_new(list, json_string(events[i]));
    assert_int_equal(webhook_create(admin, url, list, &out, err, sizeof err), 0);
    snprintf(secret, WEBHOOK_SECRET_LEN + 1, "%s", json_string_value(json_object_get(out, "secret")));
    assert_int_equal(strlen(secret), WEBHOOK_SECRET_LEN);
    receiver_set_secret(path, secret);
    json_decref(list);
    json_decref(out);
}

static int setup(void **state) {
    (void)state;
    if (env_start_stores(&env) != 0 || order_env_init(&oe, &env) != 0) return -1;
    volume_calls_init(&env, &oe);
    const unsigned groups[] = {G_SEATS, G_EXPIRE, G_APPROVE};
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++)
        if (env_create_group(&env, groups[i], tune_volume) != 0) return -1;
    const char *flags[] = {"--order-public-key", oe.vendor_pub, "--group-refresh-ms", "300", NULL};
    /* The measuring user first: its ACL LOAD drops every other connection. */
    if (env_start_server(&env, flags) != 0 || (rx_port = receiver_start()) < 0 || !(m = env_measuring_connection(&env)))
        return -1;
    snprintf(admin_url, sizeof admin_url, "redis://admin:%s@127.0.0.1:%d", FIXTURE_PW_ADMIN, env.a.port);
    rstore_config cfg = {.url = admin_url, .connect_timeout_ms = 2000, .command_timeout_ms = 6000};
    char err[256];
    if (!(admin = rstore_new(&cfg, false, err, sizeof err))) return -1;
    ev_cfg = (events_config){.store = cfg, .expiry_warning_days = 30};
    webhook_delivery_config dc = {.store = cfg, .poll_ms = 20, .backoff_ms = 100, .backoff_max_ms = 400};
    for (int i = 0; i < 2; i++)
        if (!(senders[i] = webhook_delivery_start(&dc, err, sizeof err))) {
            fprintf(stderr, "sender: %s\n", err);
            return -1;
        }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    for (int i = 0; i < 2; i++) webhook_delivery_stop(senders[i]);
    receiver_stop();
    rstore_free(admin);
    if (m) redisFree(m);
    int st = env.server >= 0 ? env_stop_server(&env) : 0;
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

static int detect(int64_t now) {
    int n = events_detect(admin, &ev_cfg, now);
    assert_true(n >= 0);
    return n;
}

/* ---- tests ------------------------------------------------------------------- */

/* Endpoint checks, the list without secrets, deletion. */
static void test_endpoints(void **state) {
    (void)state;
    static const char *const all[] = {"seats.below_threshold",
                                      "key.machine_limit",
                                      "order.expiring",
                                      "key.revoked",
                                      "deactivation.awaiting_approval",
                                      NULL};
    static const char *const expiring[] = {"order.expiring", NULL};
    char secret_all[WEBHOOK_SECRET_LEN + 1];
    make_webhook("/all", all, secret_all);
    make_webhook("/flaky", expiring, secret_flaky);
    char err[256];
    json_t *out = NULL, *ev = json_pack("[s]", "order.expiring"), *bad = json_pack("[s]", "order.exploded");
    assert_int_equal(webhook_create(admin, "http://example.com/x", ev, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "\"url\""));
    assert_int_equal(webhook_create(admin, "http://127.0.0.1.evil.example/x", ev, &out, err, sizeof err), -1);
    assert_int_equal(webhook_create(admin, "https://hooks.example/x", bad, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "order.exploded"));
    assert_int_equal(webhook_create(admin, "https://hooks.example/x", ev, &out, err, sizeof err), 0);
    char id[WEBHOOK_ID_LEN + 1];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    json_t *list = webhook_list(admin, err, sizeof err);
    assert_int_equal(json_array_size(list), 3);
    size_t i;
    json_t *w;
    json_array_foreach(list, i, w) assert_null(json_object_get(w, "secret"));
    json_decref(list);
    assert_int_equal(webhook_delete(admin, id, err, sizeof err), 1);
    assert_int_equal(webhook_delete(admin, id, err, sizeof err), 0);
    json_decref(ev);
    json_decref(bad);
}

/* Three seats, warning below 2 free: fires when the second seat is taken,
 * not again for the third or on later rounds; again after the seats came
 * back and were taken again. Each delivery is signed. */
static void test_seats_once_per_crossing(void **state) {
    (void)state;
    const char *o = "40000001";
    int64_t now = (int64_t)time(NULL);
    order(o, G_SEATS, "permanent", "3", (const char *[]){"--seat-warning", "2", NULL});
    assert_int_equal(detect(now), 0); /* 3 free: fine; groups and orders seen for the first time */
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_SEATS, 1, false, 0, key), 0);
    grant g1 = activate(key, 1), g2 = activate(key, 2);
    assert_int_equal(g2.status, GRPC_STATUS_OK);
    assert_int_equal(detect(now), 1);
    assert_int_equal(detect(now), 0);
    grant g3 = activate(key, 3);
    assert_int_equal(g3.status, GRPC_STATUS_OK);
    assert_int_equal(detect(now), 0);
    assert_int_equal(receiver_wait("/all", "seats.below_threshold", 1), 1);
    const rx_seen *s = receiver_last("/all", "seats.below_threshold");
    assert_true(s->signed_ok);
    json_t *data = json_object_get(s->body, "data");
    assert_string_equal(json_string_value(json_object_get(s->body, "event")), "seats.below_threshold");
    assert_string_equal(json_string_value(json_object_get(data, "order")), o);
    assert_int_equal(json_integer_value(json_object_get(data, "seats_free")), 1);
    assert_int_equal(json_integer_value(json_object_get(data, "seat_warning")), 2);

    /* Two seats back: above the warning; then one taken again: below. */
    license_call d2 = by_license(PA_RPC_DEACTIVATE, g2.license_id, 2, 2),
                 d3 = by_license(PA_RPC_DEACTIVATE, g3.license_id, 3, 3);
    assert_int_equal(d2.status, GRPC_STATUS_OK);
    assert_int_equal(d3.status, GRPC_STATUS_OK);
    assert_int_equal(detect(now), 0);
    grant g4 = activate(key, 4);
    assert_int_equal(g4.status, GRPC_STATUS_OK);
    assert_int_equal(detect(now), 1);
    assert_int_equal(receiver_wait("/all", "seats.below_threshold", 2), 2);
    license_call_free(&d2), license_call_free(&d3);
    grant_free(&g1), grant_free(&g2), grant_free(&g3), grant_free(&g4);
}

/* An order ending in 10 days warns once; the /flaky receiver fails twice,
 * and the delivery log shows the two retries and the success. */
static void test_expiring_with_retries(void **state) {
    (void)state;
    const char *o = "40000002";
    int64_t now = (int64_t)time(NULL);
    char until[24];
    snprintf(until, sizeof until, "%lld", (long long)(now + 10 * 86400));
    receiver_fail_next("/flaky", 2);
    order(o, G_EXPIRE, "permanent", "5", (const char *[]){"--valid-until", until, NULL});
    assert_int_equal(detect(now), 1);
    assert_int_equal(detect(now), 0);
    assert_int_equal(receiver_wait("/flaky", "order.expiring", 1), 1);
    assert_int_equal(receiver_wait("/all", "order.expiring", 1), 1);
    const rx_seen *s = receiver_last("/flaky", "order.expiring");
    assert_true(s->signed_ok);
    json_t *data = json_object_get(s->body, "data");
    assert_int_equal(json_integer_value(json_object_get(data, "days_left")), 10);
    assert_int_equal(json_integer_value(json_object_get(data, "valid_until")), now + 10 * 86400);

    /* The log: tries 1 and 2 "retry" with status 500, try 3 "delivered"; no secret in it. */
    char delivery[WEBHOOK_ID_LEN + 1];
    snprintf(delivery, sizeof delivery, "%s", s->delivery);
    redisReply *log = redisCommand(m, "XRANGE %s - +", PA_RKEY_ADMIN_DELIVERIES);
    int tries = 0;
    for (size_t i = 0; i < log->elements; i++) {
        redisReply *f = log->element[i]->element[1];
        const char *id = NULL, *outcome = NULL, *status = NULL, *try_no = NULL;
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            const char *k = f->element[j]->str, *v = f->element[j + 1]->str;
            if (!strcmp(k, "delivery")) id = v;
            if (!strcmp(k, "outcome")) outcome = v;
            if (!strcmp(k, "status")) status = v;
            if (!strcmp(k, "try")) try_no = v;
        }
        for (size_t j = 0; j < f->elements; j++) assert_null(strstr(f->element[j]->str, secret_flaky));
        if (!id || strcmp(id, delivery) != 0) continue;
        tries++;
        assert_int_equal(atoi(try_no), tries);
        assert_string_equal(outcome, tries < 3 ? "retry" : "delivered");
        assert_string_equal(status, tries < 3 ? "500" : "200");
    }
    freeReplyObject(log);
    assert_int_equal(tries, 3);
    /* Nothing left pending. */
    redisReply *due = redisCommand(m, "ZCARD %s", PA_RKEY_ADMIN_DELIVERY_DUE);
    for (int i = 0; i < 50 && due->integer != 0; i++) {
        freeReplyObject(due);
        usleep(50 * 1000);
        due = redisCommand(m, "ZCARD %s", PA_RKEY_ADMIN_DELIVERY_DUE);
    }
    assert_int_equal(due->integer, 0);
    freeReplyObject(due);
}

/* A deactivation waiting for approval fires once. */
static void test_awaiting_approval(void **state) {
    (void)state;
    const char *o = "40000003";
    int64_t now = (int64_t)time(NULL);
    order(o, G_APPROVE, "permanent", "2", (const char *[]){"--deactivation-approval", "on", NULL});
    char key[PK_TEXT_LEN + 1], hex[33];
    assert_int_equal(env_make_key(&env, G_APPROVE, 1, false, 0, key), 0);
    grant g = activate(key, 1);
    assert_int_equal(g.status, GRPC_STATUS_OK);
    assert_int_equal(detect(now), 0);
    license_call d = by_license(PA_RPC_DEACTIVATE, g.license_id, 1, 1);
    assert_int_equal(d.status, GRPC_STATUS_OK);
    assert_int_equal(detect(now), 1);
    assert_int_equal(detect(now), 0);
    assert_int_equal(receiver_wait("/all", "deactivation.awaiting_approval", 1), 1);
    digest_hex(1, hex);
    json_t *data = json_object_get(receiver_last("/all", "deactivation.awaiting_approval")->body, "data");
    assert_string_equal(json_string_value(json_object_get(data, "machine")), hex);
    license_call_free(&d);
    grant_free(&g);
}

/* A serial joining a revoked set fires key.revoked once; a minute with
 * machine-limit refusals in the threat counters fires key.machine_limit once. */
static void test_revoked_and_machine_limit(void **state) {
    (void)state;
    int64_t now = (int64_t)time(NULL);
    detect(now); /* the groups' revoked sets as they are now: the baseline */
    freeReplyObject(redisCommand(m, "SADD {g:%u}:revoked 77", (unsigned)G_SEATS));
    assert_int_equal(detect(now), 1);
    assert_int_equal(detect(now), 0);
    assert_int_equal(receiver_wait("/all", "key.revoked", 1), 1);
    json_t *data = json_object_get(receiver_last("/all", "key.revoked")->body, "data");
    assert_int_equal(json_integer_value(json_object_get(data, "serial")), 77);
    assert_int_equal(json_integer_value(json_object_get(data, "group")), G_SEATS);

    /* Minute M's counts, looked at once they are settled. */
    int64_t minute = now / 60 - 1;
    time_t day_s = (time_t)(minute * 60);
    struct tm tm;
    gmtime_r(&day_s, &tm);
    unsigned day = (unsigned)((tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
    freeReplyObject(
        redisCommand(m, "HINCRBY threat:g:%u:%u %u:l 3", (unsigned)G_EXPIRE, day, (unsigned)(minute % 1440)));
    int64_t later = (minute + 1) * 60 + 25;
    assert_int_equal(detect(later), 1);
    assert_int_equal(detect(later), 0);
    assert_int_equal(receiver_wait("/all", "key.machine_limit", 1), 1);
    data = json_object_get(receiver_last("/all", "key.machine_limit")->body, "data");
    assert_int_equal(json_integer_value(json_object_get(data, "refusals")), 3);
}

/* Two senders, many deliveries: each is received (answered 200) exactly once. */
static void test_sent_once(void **state) {
    (void)state;
    char err[256];
    int before = receiver_delivered("/all", "key.revoked");
    for (int i = 0; i < 20; i++)
        assert_int_equal(webhook_emit(admin, "key.revoked", json_pack("{s:i}", "n", i), err, sizeof err), 1);
    assert_int_equal(receiver_wait("/all", "key.revoked", before + 20), before + 20);
    usleep(300 * 1000);
    assert_true(receiver_each_once());
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_seats_once_per_crossing),
        cmocka_unit_test(test_expiring_with_retries),
        cmocka_unit_test(test_awaiting_approval),
        cmocka_unit_test(test_revoked_and_machine_limit),
        cmocka_unit_test(test_sent_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
