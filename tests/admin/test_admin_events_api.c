/* test_admin_events_api.c -- the threat and webhook routes over HTTPS
 * against the real admin-server binary, whose own event task and webhook
 * sender run (--webhook-interval-ms 100): roles, input checks, the secret
 * shown once, an event found in a planted order delivered and signed, the
 * delivery log, deletion and its trail, and no secret in the server's log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_env.h"
#include "redis_keys.h"
#include "webhook_receiver.h"

#define PW "correct horse battery"

static admin_env env;
static int rx_port;
static char secret[WEBHOOK_SECRET_LEN + 1];

static int setup(void **state) {
    (void)state;
    const char *flags[] = {"--webhook-interval-ms", "100", NULL};
    if ((rx_port = receiver_start()) < 0 || admin_env_start(&env, flags) != 0) return -1;
    if (admin_env_add_user(&env, "root", "admin", PW) != 0 || admin_env_add_user(&env, "eve", "viewer", PW) != 0)
        return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    int st = env.server >= 0 ? admin_env_stop_server(&env) : 0;
    admin_env_stop(&env);
    receiver_stop();
    return st == 0 ? 0 : -1;
}

static void test_threats_route(void **state) {
    (void)state;
    int st;
    assert_int_equal(admin_login(&env, "eve", PW), 200);
    json_t *j = admin_call(&env, "GET", "/api/v1/threats?group=5&from=1796000000&to=1796003600", NULL, &st);
    assert_int_equal(st, 200);
    json_t *series = json_object_get(json_array_get(json_object_get(j, "groups"), 0), "series");
    assert_int_equal(json_array_size(series), 60);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(series, 0), "attempts")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "top_addresses")), 0);
    json_decref(j);
    j = admin_call(&env, "GET", "/api/v1/threats?step=90", NULL, &st);
    assert_int_equal(st, 400);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "\"step\""));
    json_decref(j);
    j = admin_call(&env, "GET", "/api/v1/threats?grop=5", NULL, &st);
    assert_int_equal(st, 400);
    json_decref(j);
    /* Webhooks are for admins only. */
    j = admin_call(&env, "GET", "/api/v1/webhooks", NULL, &st);
    assert_int_equal(st, 403);
    json_decref(j);
}

static void test_webhook_routes(void **state) {
    (void)state;
    int st;
    char body[256], path[96], id[WEBHOOK_ID_LEN + 1];
    assert_int_equal(admin_login(&env, "root", PW), 200);
    json_t *j = admin_call(&env, "POST", "/api/v1/webhooks",
                           "{\"url\":\"http://10.0.0.1/h\",\"events\":[\"key.revoked\"]}", &st);
    assert_int_equal(st, 400);
    json_decref(j);
    j = admin_call(&env, "POST", "/api/v1/webhooks", "{\"url\":\"https://x.example/h\",\"events\":[],\"x\":1}", &st);
    assert_int_equal(st, 400);
    json_decref(j);
    snprintf(body, sizeof body, "{\"url\":\"http://127.0.0.1:%d/h\",\"events\":[\"seats.below_threshold\"]}", rx_port);
    j = admin_call(&env, "POST", "/api/v1/webhooks", body, &st);
    assert_int_equal(st, 201);
    snprintf(secret, sizeof secret, "%s", json_string_value(json_object_get(j, "secret")));
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    assert_int_equal(strlen(secret), WEBHOOK_SECRET_LEN);
    receiver_set_secret("/h", secret);
    json_decref(j);
    j = admin_call(&env, "GET", "/api/v1/webhooks", NULL, &st);
    assert_int_equal(st, 200);
    json_t *items = json_object_get(j, "items");
    assert_int_equal(json_array_size(items), 1);
    assert_null(json_object_get(json_array_get(items, 0), "secret"));
    json_decref(j);

    /* An order with 1 of 3 seats free and a warning below 2: the server's
     * event task fires, its sender delivers. */
    redisContext *r = admin_env_redis(&env);
    assert_non_null(r);
    freeReplyObject(
        redisCommand(r, "HSET " PA_RKEY_ORDER_FMT " seats 3 seat_warning 2 revision 1 retired 0", "50000001"));
    freeReplyObject(redisCommand(r, "HSET " PA_RKEY_ORDER_COUNTS_FMT " seats 2", "50000001"));
    freeReplyObject(redisCommand(r, "SADD %s 50000001", PA_RKEY_ORDERS));
    redisFree(r);
    assert_int_equal(receiver_wait("/h", "seats.below_threshold", 1), 1);
    const rx_seen *s = receiver_last("/h", "seats.below_threshold");
    assert_true(s->signed_ok);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(s->body, "data"), "seats_free")), 1);
    usleep(300 * 1000); /* more rounds: still once */
    assert_int_equal(receiver_delivered("/h", "seats.below_threshold"), 1);

    j = admin_call(&env, "GET", "/api/v1/webhooks/deliveries?limit=10", NULL, &st);
    assert_int_equal(st, 200);
    json_t *first = json_array_get(json_object_get(j, "items"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "outcome")), "delivered");
    assert_string_equal(json_string_value(json_object_get(first, "event")), "seats.below_threshold");
    assert_int_equal(json_integer_value(json_object_get(first, "status")), 200);
    json_decref(j);
    j = admin_call(&env, "GET", "/api/v1/webhooks/deliveries?limit=0", NULL, &st);
    assert_int_equal(st, 400);
    json_decref(j);
    /* Pages: one entry a page, then none after the last. */
    j = admin_call(&env, "GET", "/api/v1/webhooks/deliveries?limit=1", NULL, &st);
    assert_int_equal(st, 200);
    char next[96];
    snprintf(next, sizeof next, "/api/v1/webhooks/deliveries?limit=1&cursor=%s",
             json_string_value(json_object_get(j, "next_cursor")));
    json_decref(j);
    j = admin_call(&env, "GET", next, NULL, &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_array_size(json_object_get(j, "items")), 0);
    assert_null(json_object_get(j, "next_cursor"));
    json_decref(j);
    j = admin_call(&env, "GET", "/api/v1/webhooks/deliveries?cursor=bm90LWFuLWlk", NULL, &st);
    assert_int_equal(st, 400);
    json_decref(j);

    snprintf(path, sizeof path, "/api/v1/webhooks/%s", id);
    j = admin_call(&env, "DELETE", path, NULL, &st);
    assert_int_equal(st, 200);
    json_decref(j);
    j = admin_call(&env, "DELETE", path, NULL, &st);
    assert_int_equal(st, 404);
    json_decref(j);

    /* The server's log has the try, never the secret. */
    FILE *f = fopen(env.log_path, "r");
    assert_non_null(f);
    static char log[1 << 20];
    size_t n = fread(log, 1, sizeof log - 1, f);
    log[n] = '\0';
    fclose(f);
    assert_non_null(strstr(log, "\"webhook.delivery\""));
    assert_null(strstr(log, secret));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threats_route),
        cmocka_unit_test(test_webhook_routes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
