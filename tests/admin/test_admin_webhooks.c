/* test_admin_webhooks.c -- events and webhooks against a real Redis A, a
 * real activation-server with volume orders, and a webhook receiver in
 * this program (libmicrohttpd on 127.0.0.1) that checks every delivery's
 * HMAC-SHA256 signature with the secret webhook_create showed.
 *
 * The event detection runs by hand (events_detect with a chosen `now`),
 * so "once per crossing" is counted exactly; the senders
 * (webhook_delivery) run as the server runs them, two at once, with the
 * backoff shortened to 100 ms. */
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
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
#include "webhooks.h"

#define G_SEATS 821
#define G_EXPIRE 822
#define G_APPROVE 823
#define MAX_SEEN 256

static act_env env;
static order_env oe;
static rstore *admin;       /* Redis A as user admin */
static redisContext *m;     /* every command */
static char admin_url[160]; /* its URL */
static webhook_delivery *senders[2];
static events_config ev_cfg;

/* ---- the receiver -------------------------------------------------------- */

typedef struct seen {
    char path[32], event[64], delivery[WEBHOOK_ID_LEN + 1];
    json_t *body;   /* parsed */
    bool signed_ok; /* X-PA-Signature matched */
    int status;     /* what the receiver answered */
} seen;

static struct {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    char secret[2][WEBHOOK_SECRET_LEN + 1]; /* /all, /flaky */
    int flaky_failures;                     /* /flaky answers 500 this many times first */
    seen got[MAX_SEEN];
    int n;
} rx = {.mu = PTHREAD_MUTEX_INITIALIZER};

typedef struct upload {
    char *data;
    size_t len;
} upload;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *data_len, void **con_cls) {
    (void)cls, (void)version, (void)method;
    upload *u = *con_cls;
    if (!u) {
        *con_cls = calloc(1, sizeof *u);
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*data_len) {
        char *more = realloc(u->data, u->len + *data_len + 1);
        if (!more) return MHD_NO;
        memcpy(more + u->len, data, *data_len);
        u->data = more, u->len += *data_len, u->data[u->len] = '\0';
        *data_len = 0;
        return MHD_YES;
    }
    const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-PA-Signature");
    const char *ev = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-PA-Event");
    const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-PA-Delivery");
    bool flaky = strcmp(url, "/flaky") == 0;
    char want[72];
    pthread_mutex_lock(&rx.mu);
    webhook_signature(rx.secret[flaky], u->data ? u->data : "", u->len, want);
    int status = flaky && rx.flaky_failures > 0 ? (rx.flaky_failures--, 500) : 200;
    if (rx.n < MAX_SEEN) {
        seen *s = &rx.got[rx.n++];
        snprintf(s->path, sizeof s->path, "%s", url);
        snprintf(s->event, sizeof s->event, "%s", ev ? ev : "");
        snprintf(s->delivery, sizeof s->delivery, "%s", id ? id : "");
        s->body = json_loads(u->data ? u->data : "", 0, NULL);
        s->signed_ok = sig && strcmp(sig, want) == 0;
        s->status = status;
    }
    pthread_mutex_unlock(&rx.mu);
    struct MHD_Response *r = MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why) {
    (void)cls, (void)c, (void)why;
    upload *u = *con_cls;
    if (u) free(u->data);
    free(u);
    *con_cls = NULL;
}

static int receiver_start(void) {
    rx.port = fixture_free_port();
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)rx.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rx.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)rx.port, NULL, NULL, on_request, NULL,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                            MHD_OPTION_END);
    return rx.d ? 0 : -1;
}

/* Deliveries of `event` to `path` answered 200 so far. */
static int delivered(const char *path, const char *event) {
    int n = 0;
    pthread_mutex_lock(&rx.mu);
    for (int i = 0; i < rx.n; i++)
        n += strcmp(rx.got[i].path, path) == 0 && strcmp(rx.got[i].event, event) == 0 && rx.got[i].status == 200;
    pthread_mutex_unlock(&rx.mu);
    return n;
}

static int wait_delivered(const char *path, const char *event, int want) {
    for (int i = 0; i < 100 && delivered(path, event) < want; i++) usleep(50 * 1000);
    return delivered(path, event);
}

/* The newest received body of `event` at `path`. */
static const seen *last_seen(const char *path, const char *event) {
    const seen *s = NULL;
    pthread_mutex_lock(&rx.mu);
    for (int i = 0; i < rx.n; i++)
        if (strcmp(rx.got[i].path, path) == 0 && strcmp(rx.got[i].event, event) == 0) s = &rx.got[i];
    pthread_mutex_unlock(&rx.mu);
    return s;
}

/* ---- set-up ----------------------------------------------------------------- */

static void tune_volume(group_record *r) { r->channel = GROUP_CHANNEL_VOLUME; }

/* An endpoint at the receiver's `path`; its secret into secret. */
static void make_webhook(const char *path, const char *const *events, char secret[WEBHOOK_SECRET_LEN + 1]) {
    char url[96], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", rx.port, path);
    json_t *list = json_array(), *out = NULL;
    for (int i = 0; events[i]; i++) json_array_append_new(list, json_string(events[i]));
    assert_int_equal(webhook_create(admin, url, list, &out, err, sizeof err), 0);
    pthread_mutex_lock(&rx.mu);
    snprintf(secret, WEBHOOK_SECRET_LEN + 1, "%s", json_string_value(json_object_get(out, "secret")));
    pthread_mutex_unlock(&rx.mu);
    assert_int_equal(strlen(secret), WEBHOOK_SECRET_LEN);
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
    if (env_start_server(&env, flags) != 0 || receiver_start() != 0 || !(m = env_measuring_connection(&env))) return -1;
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
    if (rx.d) MHD_stop_daemon(rx.d);
    for (int i = 0; i < rx.n; i++) json_decref(rx.got[i].body);
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
    make_webhook("/all", all, rx.secret[0]);
    make_webhook("/flaky", expiring, rx.secret[1]);
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
    assert_int_equal(wait_delivered("/all", "seats.below_threshold", 1), 1);
    const seen *s = last_seen("/all", "seats.below_threshold");
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
    assert_int_equal(wait_delivered("/all", "seats.below_threshold", 2), 2);
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
    pthread_mutex_lock(&rx.mu);
    rx.flaky_failures = 2;
    pthread_mutex_unlock(&rx.mu);
    order(o, G_EXPIRE, "permanent", "5", (const char *[]){"--valid-until", until, NULL});
    assert_int_equal(detect(now), 1);
    assert_int_equal(detect(now), 0);
    assert_int_equal(wait_delivered("/flaky", "order.expiring", 1), 1);
    assert_int_equal(wait_delivered("/all", "order.expiring", 1), 1);
    const seen *s = last_seen("/flaky", "order.expiring");
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
        for (size_t j = 0; j < f->elements; j++) assert_null(strstr(f->element[j]->str, rx.secret[1]));
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
    assert_int_equal(wait_delivered("/all", "deactivation.awaiting_approval", 1), 1);
    digest_hex(1, hex);
    json_t *data = json_object_get(last_seen("/all", "deactivation.awaiting_approval")->body, "data");
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
    assert_int_equal(wait_delivered("/all", "key.revoked", 1), 1);
    json_t *data = json_object_get(last_seen("/all", "key.revoked")->body, "data");
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
    assert_int_equal(wait_delivered("/all", "key.machine_limit", 1), 1);
    data = json_object_get(last_seen("/all", "key.machine_limit")->body, "data");
    assert_int_equal(json_integer_value(json_object_get(data, "refusals")), 3);
}

/* Two senders, many deliveries: each is received (answered 200) exactly once. */
static void test_sent_once(void **state) {
    (void)state;
    char err[256];
    int before = delivered("/all", "key.revoked");
    for (int i = 0; i < 20; i++)
        assert_int_equal(webhook_emit(admin, "key.revoked", json_pack("{s:i}", "n", i), err, sizeof err), 1);
    assert_int_equal(wait_delivered("/all", "key.revoked", before + 20), before + 20);
    usleep(300 * 1000);
    pthread_mutex_lock(&rx.mu);
    for (int i = 0; i < rx.n; i++)
        for (int j = i + 1; j < rx.n; j++)
            if (rx.got[i].status == 200 && rx.got[j].status == 200)
                assert_string_not_equal(rx.got[i].delivery, rx.got[j].delivery);
    pthread_mutex_unlock(&rx.mu);
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
