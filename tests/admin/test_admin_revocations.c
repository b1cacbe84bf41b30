/* test_admin_revocations.c -- the revocation routes (admin-server/revocations.h)
 * in both deployments:
 *   - vendor-hosted: POST goes to the audit server's Revoke (a real
 *     audit-server, --allow-revoke-client naming the admin server's
 *     certificate); the entry is in the audit log; GET lists it newest
 *     first, paged; a second revocation of the key is not new;
 *   - on premises: POST adds the serial to {g:ID}:revoked on Redis A (which
 *     the activation user reads) and records it in admin:revocations; GET
 *     lists those newest first, paged.
 * Bad requests are 400 naming the field, and write nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api_stub.h"
#include "audit_certs.h"
#include "audit_env.h"
#include "log.h"
#include "redis_keys.h"
#include "revocations.h"

enum { G = 6601 };

static audit_env E;
static rstore *admin;
static audit_revoker *link_;

static int setup(void **state) {
    char extra[300], ca[400], cert[400], key[400], url[256], err[256];
    log_set_level(LOG_LEVEL_WARN);
    if (env_start(&E) != 0 || env_create_group(&E, G) != 0) goto fail;
    snprintf(extra, sizeof extra, "%s/extra", E.dir);
    if (mkdir(extra, 0700) != 0 || certs_make(E.certs, extra, "admin-client", "admin-server", NULL, false, 9201) != 0)
        goto fail;
    const char *opts[] = {"--allow-revoke-client", "admin-server", NULL};
    if (env_start_server_with(&E, opts) != 0) goto fail;
    snprintf(ca, sizeof ca, "%s/ca.pem", E.certs);
    snprintf(cert, sizeof cert, "%s/admin-client.pem", extra);
    snprintf(key, sizeof key, "%s/admin-client.key", extra);
    redis_fixture_url(&E.a, "admin", url, sizeof url);
    rstore_config rc = {.url = url, .connect_timeout_ms = 1000, .command_timeout_ms = 5000};
    if (!(link_ = audit_revoker_new(E.target, ca, cert, key, err, sizeof err)) ||
        !(admin = rstore_new(&rc, false, err, sizeof err))) {
        fprintf(stderr, "setup: %s\n", err);
        goto fail;
    }
    return 0;
fail:
    env_stop(&E);
    return -1;
}

static int teardown(void **state) {
    audit_revoker_free(link_);
    rstore_free(admin);
    env_stop(&E);
    return 0;
}

static api_result post_revocation(const char *body) {
    return api_call_json(revocations_create, admin, "POST", NULL, NULL, body);
}

static void revoke_ok(unsigned serial, int status, const char *via) {
    char body[128];
    snprintf(body, sizeof body, "{\"group\": %u, \"serial\": %u, \"reason\": \"test %u\"}", G, serial, serial);
    api_result a = post_revocation(body);
    if (a.status != status) fprintf(stderr, "revoke %u: %d %s\n", serial, a.status, api_error(&a));
    assert_int_equal(a.status, status);
    assert_string_equal(json_string_value(json_object_get(a.body, "via")), via);
    char trail[64];
    snprintf(trail, sizeof trail, "key.revoke %u:%u ok", G, serial);
    assert_string_equal(a.trail, trail);
    api_result_clear(&a);
}

/* The serials of a GET page, newest first, and its cursor (or ""). */
static size_t page(const char *query, unsigned serials[8], char *next, size_t nextlen) {
    api_result a = api_call(revocations_list, admin, "GET", NULL, query, NULL, 0);
    assert_int_equal(a.status, 200);
    json_t *items = json_object_get(a.body, "items");
    size_t n = json_array_size(items);
    for (size_t i = 0; i < n && i < 8; i++)
        serials[i] = (unsigned)json_integer_value(json_object_get(json_array_get(items, i), "serial"));
    const char *c = json_string_value(json_object_get(a.body, "next_cursor"));
    snprintf(next, nextlen, "%s", c ? c : "");
    api_result_clear(&a);
    return n;
}

static void expect_pages(unsigned newest) {
    unsigned s[8];
    char next[128], query[200];
    assert_int_equal(page("limit=2", s, next, sizeof next), 2);
    assert_int_equal(s[0], newest);
    assert_int_equal(s[1], newest - 1);
    assert_true(next[0]);
    snprintf(query, sizeof query, "limit=2&cursor=%s", next);
    assert_int_equal(page(query, s, next, sizeof next), 1);
    assert_int_equal(s[0], newest - 2);
    assert_false(next[0]);
    api_result a = api_call(revocations_list, admin, "GET", NULL, "cursor=Zm9v", NULL, 0);
    assert_int_equal(a.status, 400);
    api_result_clear(&a);
}

static void bad_requests(void) {
    const char *bad[] = {"{\"group\": -1, \"serial\": 1, \"reason\": \"x\"}",
                         "{\"group\": 1048576, \"serial\": 1, \"reason\": \"x\"}",
                         "{\"group\": 1, \"serial\": 1073741824, \"reason\": \"x\"}",
                         "{\"group\": 1, \"serial\": 1}",
                         "{\"group\": 1, \"serial\": 1, \"reason\": \"\"}",
                         "{\"group\": 1, \"serial\": 1, \"reason\": \"tab\\there\"}",
                         "{\"group\": \"1\", \"serial\": 1, \"reason\": \"x\"}",
                         "{\"group\": 1, \"serial\": 1, \"reason\": \"x\", \"extra\": 1}",
                         "[1, 2]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        api_result a = post_revocation(bad[i]);
        if (a.status != 400) fprintf(stderr, "%s: %d\n", bad[i], a.status);
        assert_int_equal(a.status, 400);
        assert_int_equal(a.trails, 1);
        api_result_clear(&a);
    }
    redisReply *r = redisCommand(E.act_a, "SISMEMBER " PA_RKEY_REVOKED_FMT " 1", 1u);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

/* Vendor-hosted: through the audit server's log. */
static void test_vendor_hosted(void **state) {
    revocations_setup(link_);
    revoke_ok(1, 201, "audit");
    revoke_ok(2, 201, "audit");
    revoke_ok(3, 201, "audit");
    revoke_ok(3, 200, "audit"); /* already revoked: not new */
    expect_pages(3);
    bad_requests();
    /* Nothing local: the activation servers learn it from the audit log. */
    redisReply *r = redisCommand(E.act_a, "XLEN %s", PA_RKEY_ADMIN_REVOCATIONS);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

/* On premises: the revoked set on Redis A and the local log. */
static void test_on_premises(void **state) {
    revocations_setup(NULL);
    revoke_ok(11, 201, "local");
    revoke_ok(12, 201, "local");
    revoke_ok(13, 201, "local");
    revoke_ok(13, 200, "local");
    redisReply *r = redisCommand(E.act_a, "SISMEMBER " PA_RKEY_REVOKED_FMT " 12", (unsigned)G);
    assert_int_equal(r->integer, 1); /* what volume.lua and policy.lua read, as the activation user */
    freeReplyObject(r);
    r = redisCommand(E.act_a, "XLEN %s", PA_RKEY_ADMIN_REVOCATIONS);
    assert_int_equal(r->type, REDIS_REPLY_ERROR); /* the activation user never sees the admin log */
    freeReplyObject(r);
    r = redisCommand(E.ks_a, "XLEN %s", PA_RKEY_ADMIN_REVOCATIONS);
    freeReplyObject(r);
    expect_pages(13);
    bad_requests();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vendor_hosted),
        cmocka_unit_test(test_on_premises),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
