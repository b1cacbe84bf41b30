/* test_activation_faults.c -- the activation server when things go wrong
 * around it: Redis stopped mid-run (UNAVAILABLE, fast, no crash) and started
 * again (calls succeed without restarting the server); an Activate whose
 * deadline passes while it waits (no work done for it, and counted), a Renew
 * whose deadline passes in its script (nothing signed, counted, and its retry
 * renews the same place); SIGTERM under load (every accepted call
 * completes, exit code 0); start-up refused for a signing key others can
 * read; no core dumps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "act_env.h"
#include "clock.h"
#include "redis_keys.h"

enum { G_A = 301, G_B = 302, G_C = 303 };

static act_env env;

static void tune(group_record *r) { r->policy.max_machines = 1000; }

static const char *const generous[] = {"--rate-address-per-s", "0", "--rate-group-per-s", "0",
                                       NULL};

static int setup(void **state) {
    if (env_start_stores(&env) != 0) return -1;
    if (env_create_group(&env, G_A, tune) != 0 || env_create_group(&env, G_B, tune) != 0 ||
        env_create_group(&env, G_C, tune) != 0)
        return -1;
    return 0;
}

static int teardown(void **state) {
    env_stop(&env);
    return 0;
}

static grpc_status_code activate(const char *key, unsigned machine, int timeout_ms,
                                 char *msg, size_t msglen) {
    uint8_t m[32], buf[512];
    env_machine(m, machine);
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = (char *)key;
    rq.machine_id = (ProtobufCBinaryData){.len = sizeof m, .data = m};
    size_t len = activation__v1__activate_request__pack(&rq, buf);
    rpc_result res;
    grpc_status_code st = env_call(&env, PA_RPC_ACTIVATE, buf, len, timeout_ms, &res);
    if (msg) snprintf(msg, msglen, "%s", res.message);
    rpc_result_clear(&res);
    return st;
}

static void test_redis_stopped_and_started_again(void **state) {
    assert_int_equal(env_start_server(&env, generous), 0);
    char a[PK_TEXT_LEN + 1], b[PK_TEXT_LEN + 1], msg[256];
    assert_int_equal(env_make_key(&env, G_A, 1, false, 0, a), 0);
    assert_int_equal(env_make_key(&env, G_B, 1, false, 0, b), 0);
    for (unsigned i = 0; i < 4; i++) assert_int_equal(activate(a, 1, 5000, NULL, 0), GRPC_STATUS_OK);

    assert_int_equal(redis_fixture_pause(&env.a), 0);
    /* A cached group and an uncached one: both UNAVAILABLE, both fast. */
    for (unsigned i = 0; i < 20; i++) {
        double t0 = pa_mono_s();
        assert_int_equal(activate(i % 2 ? a : b, 2 + i, 5000, msg, sizeof msg),
                         GRPC_STATUS_UNAVAILABLE);
        assert_true(pa_mono_s() - t0 < 1.5);
        assert_non_null(strstr(msg, "unavailable"));
    }
    assert_true(env_metric(&env, "pa_redis_errors_total") >= 20);
    assert_int_equal(kill(env.server, 0), 0);   /* still running */

    assert_int_equal(redis_fixture_resume(&env.a), 0);
    assert_int_equal(env_keystore_reconnect(&env), 0);
    /* Script writes are replayed from the AOF as MULTI/EXEC; Redis 7.0
     * re-checks EXEC against the `default` user's ACL while loading and
     * silently drops them if that user has no permissions (redis/redis#14541). */
    redisReply *g = redisCommand(env.ks_a, "EXISTS " PA_RKEY_GROUP_FMT " " PA_RKEY_RECORD_FMT, G_A, G_A, 1);
    assert_non_null(g);
    if (g->integer != 2)
        fail_msg("Redis A lost writes made by Lua scripts across its restart (redis/redis#14541): "
                 "docker/redis/activation.acl.in must give the disabled `default` user "
                 "+@all ~* &* so the AOF loader may replay MULTI/EXEC");
    freeReplyObject(g);
    double t0 = pa_mono_s();
    grpc_status_code st;
    while ((st = activate(b, 50, 5000, NULL, 0)) != GRPC_STATUS_OK && pa_mono_s() - t0 < 15) usleep(100 * 1000);
    assert_int_equal(st, GRPC_STATUS_OK);
    /* What was written before the outage is still there (AOF): machine 1
     * re-activates on its place, which is neither a new place nor a use. */
    assert_int_equal(activate(a, 1, 5000, NULL, 0), GRPC_STATUS_OK);
    redisReply *r = redisCommand(env.ks_a, "HGET " PA_RKEY_RECORD_FMT " n", G_A, 1);
    assert_non_null(r);
    assert_string_equal(r->str, "1");
    freeReplyObject(r);
    assert_int_equal(env_stop_server(&env), 0);
}

/* A group record whose version no longer parses: UNAVAILABLE, not "version 1". */
static void test_damaged_record_version_is_unavailable(void **state) {
    assert_int_equal(env_start_server(&env, generous), 0);
    char key[PK_TEXT_LEN + 1], msg[256];
    assert_int_equal(env_make_key(&env, G_C, 1, false, 0, key), 0);
    assert_int_equal(activate(key, 1, 5000, NULL, 0), GRPC_STATUS_OK); /* the group is cached now */
    redisReply *r = redisCommand(env.ks_a, "HGET {g:%u}:group version", G_C);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    char version[32];
    snprintf(version, sizeof version, "%s", r->str);
    freeReplyObject(r);
    freeReplyObject(redisCommand(env.ks_a, "HSET {g:%u}:group version %sx", G_C, version));
    assert_int_equal(activate(key, 2, 5000, msg, sizeof msg), GRPC_STATUS_UNAVAILABLE);
    assert_non_null(strstr(msg, "unavailable"));
    freeReplyObject(redisCommand(env.ks_a, "HSET {g:%u}:group version %s", G_C, version));
    assert_int_equal(activate(key, 2, 5000, NULL, 0), GRPC_STATUS_OK);
    assert_int_equal(env_stop_server(&env), 0);
}

/* A metrics port that is not a number stops the start instead of binding any port. */
static void test_bad_metrics_port_refused(void **state) {
    const char *const bad[][3] = {{"--metrics-listen", "127.0.0.1:x", NULL},
                                  {"--metrics-listen", "127.0.0.1:", NULL},
                                  {"--metrics-listen", "127.0.0.1:65536", NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double t0 = pa_mono_s();
        assert_int_equal(env_start_server(&env, bad[i]), -1);
        assert_true(pa_mono_s() - t0 < 10); /* it exited; the fixture did not wait out its timeout */
    }
}

/* Runs the server in the foreground with `extra` flags and env's files,
 * the signing key at `signing_key`; returns its exit status and stderr. */
static int run_server(const char *signing_key, const char *const *extra, char **err) {
    char url[256];
    redis_fixture_url(&env.a, "activation", url, sizeof url);
    const char *argv[32] = {fixture_bin("activation-server/activation-server")};
    const char *fixed[] = {"--listen",      "127.0.0.1:0", "--redis-url",      url,  "--kek", env.kek_a,
                           "--signing-key", signing_key,   "--metrics-listen", "off"};
    size_t n = 1;
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) argv[n++] = fixed[i];
    while (extra && *extra && n < 31) argv[n++] = *extra++;
    argv[n] = NULL;
    return fixture_run((char *const *)argv, NULL, err);
}

/* A signing key anyone else on the host may read is refused at start-up,
 * as the KEK files are: exit 2, and the message says what to do. */
static void test_readable_signing_key_refused(void **state) {
    char copy[400], *argv[] = {"/bin/cp", env.signing_key, copy, NULL};
    snprintf(copy, sizeof copy, "%s/readable-signing.pem", env.dir);
    assert_int_equal(fixture_run(argv, NULL, NULL), 0);
    /* A bad --workers, checked after the key is loaded, keeps a server that
     * accepted the key from running on (exit 1 instead of 2). */
    const char *const after[] = {"--workers", "999", "--insecure-plaintext", NULL};
    const mode_t modes[] = {0644, 0640, 0604};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        assert_int_equal(chmod(copy, modes[i]), 0);
        char *err = NULL;
        assert_int_equal(run_server(copy, after, &err), 2);
        if (!strstr(err, "accessible by group or others")) fprintf(stderr, "%s\n", err);
        assert_non_null(strstr(err, "accessible by group or others"));
        assert_non_null(strstr(err, "chmod 600"));
        free(err);
    }
}

/* Every daemon runs without core dumps: a core file would hold its keys. */
static void test_no_core_dumps(void **state) {
    assert_int_equal(env_start_server(&env, generous), 0);
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/limits", (int)env.server);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "Max core file size", 18) != 0) continue;
        char soft[32], hard[32];
        assert_int_equal(sscanf(line + 18, "%31s %31s", soft, hard), 2);
        printf("  activation-server: Max core file size %s %s\n", soft, hard);
        assert_string_equal(soft, "0");
        assert_string_equal(hard, "0");
        found = true;
    }
    fclose(f);
    assert_true(found);
    assert_int_equal(env_stop_server(&env), 0);
}

typedef struct busy_redis {
    int port;
    double seconds;
} busy_redis;

/* Keeps Redis A busy in a Lua loop: every other client waits meanwhile. */
static void *occupy_redis(void *p) {
    busy_redis *b = p;
    redisContext *c = redisConnect("127.0.0.1", b->port);
    redisReply *r = redisCommand(c, "AUTH keystore %s", FIXTURE_PW_KEYSTORE);
    freeReplyObject(r);
    r = redisCommand(c, "EVAL %s 0 %f",
                     "local function us() local t = redis.call('TIME') return t[1] * 1e6 + t[2] end "
                     "local s = us() while us() - s < tonumber(ARGV[1]) * 1e6 do end return 1",
                     b->seconds);
    if (r) freeReplyObject(r);
    redisFree(c);
    return NULL;
}

static void test_expired_deadline_gets_no_work(void **state) {
    const char *flags[] = {"--workers", "1", "--redis-timeout-ms", "3000", "--rate-address-per-s",
                           "0", NULL};
    assert_int_equal(env_start_server(&env, flags), 0);
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_A, 2, false, 0, key), 0);

    /* Redis answers only after 1.2 s; the caller allows 500 ms. The handler
     * starts in time, waits for the group record, finds its caller gone and
     * must not go on to record an activation for it. */
    busy_redis busy = {.port = env.a.port, .seconds = 1.2};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, occupy_redis, &busy), 0);
    usleep(150 * 1000);
    assert_int_equal(activate(key, 61, 500, NULL, 0), GRPC_STATUS_DEADLINE_EXCEEDED);
    pthread_join(t, NULL);

    double refused = -1;
    for (int i = 0; i < 50 && refused < 1; i++, usleep(100 * 1000))
        refused = env_metric(&env, "pa_activations_refused_total{reason=\"deadline_expired\"}");
    if (refused != 1) fprintf(stderr, "deadline_expired refusals: %g\n", refused);
    assert_true(refused == 1);
    redisReply *r = redisCommand(env.ks_a, "EXISTS " PA_RKEY_RECORD_FMT, G_A, 2);
    assert_non_null(r);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    /* The worker is fine afterwards. */
    assert_int_equal(activate(key, 62, 5000, NULL, 0), GRPC_STATUS_OK);
    assert_int_equal(env_stop_server(&env), 0);
}

/* Renews `license_id` for machine `machine`; returns the status. */
static grpc_status_code renew(const char *license_id, unsigned machine, int timeout_ms) {
    uint8_t m[32], buf[512];
    env_machine(m, machine);
    EVP_PKEY *k = env_place_key(machine); /* binds the place at the first renewal */
    size_t len = env_license_request(license_id, m, k, PLACE_OP_RENEW, 0, buf, sizeof buf);
    EVP_PKEY_free(k);
    assert_true(len > 0);
    rpc_result res;
    grpc_status_code st = env_call(&env, PA_RPC_RENEW, buf, len, timeout_ms, &res);
    rpc_result_clear(&res);
    return st;
}

static long long uses_of(uint32_t group, uint32_t serial) {
    redisReply *r = redisCommand(env.ks_a, "HGET {g:%u}:k:%u n", group, serial);
    assert_non_null(r);
    long long n = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
    freeReplyObject(r);
    return n;
}

static void test_expired_deadline_renew_retried_safely(void **state) {
    const char *flags[] = {"--workers", "1", "--redis-timeout-ms", "3000", "--rate-address-per-s", "0", NULL};
    assert_int_equal(env_start_server(&env, flags), 0);
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_B, 4, false, 0, key), 0);
    uint8_t m[32];
    env_machine(m, 63);
    rpc_result res;
    Activation__V1__ActivateResponse *a;
    assert_int_equal(env_activate(&env, key, m, sizeof m, &res, &a), GRPC_STATUS_OK);
    rpc_result_clear(&res);
    Activation__V1__License *l = env_open_answer(&env, a);
    assert_non_null(l);
    char license_id[64];
    snprintf(license_id, sizeof license_id, "%s", l->license_id);
    activation__v1__license__free_unpacked(l, NULL);
    activation__v1__activate_response__free_unpacked(a, NULL);
    /* A fresh server has the group in no cache. */
    assert_int_equal(env_stop_server(&env), 0);
    assert_int_equal(env_start_server(&env, flags), 0);

    /* Renew's first Redis work is the policy script (the rate limit comes
     * before anything else), so the handler waits in it behind the busy
     * Redis: the renewal is recorded, then the handler finds its caller
     * gone and signs nothing for it (counted). */
    busy_redis busy = {.port = env.a.port, .seconds = 1.2};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, occupy_redis, &busy), 0);
    usleep(150 * 1000);
    assert_int_equal(renew(license_id, 63, 500), GRPC_STATUS_DEADLINE_EXCEEDED);
    pthread_join(t, NULL);

    double refused = -1;
    for (int i = 0; i < 50 && refused < 1; i++, usleep(100 * 1000))
        refused = env_metric(&env, "pa_renewals_refused_total{reason=\"deadline_expired\"}");
    if (refused != 1) fprintf(stderr, "renew deadline_expired refusals: %g\n", refused);
    assert_true(refused == 1);
    /* Activate's count stays its own. */
    assert_true(env_metric(&env, "pa_activations_refused_total{reason=\"deadline_expired\"}") == 0);
    /* Retrying is harmless: the worker is fine, the place and its license
     * id are the same, and no machine was added. */
    uint8_t buf[512];
    EVP_PKEY *k = env_place_key(63); /* the key renew() bound the place to */
    size_t len = env_license_request(license_id, m, k, PLACE_OP_RENEW, 0, buf, sizeof buf);
    EVP_PKEY_free(k);
    assert_true(len > 0);
    assert_int_equal(env_call(&env, PA_RPC_RENEW, buf, len, 5000, &res), GRPC_STATUS_OK);
    Activation__V1__RenewResponse *rr = activation__v1__renew_response__unpack(NULL, res.body_len, res.body);
    assert_non_null(rr);
    assert_int_equal(rr->activation_count, 1);
    l = env_open_answer(&env, rr);
    assert_non_null(l);
    assert_string_equal(l->license_id, license_id);
    activation__v1__license__free_unpacked(l, NULL);
    activation__v1__renew_response__free_unpacked(rr, NULL);
    rpc_result_clear(&res);
    assert_int_equal(uses_of(G_B, 4), 1); /* renewals are not uses of the key */
    assert_int_equal(env_stop_server(&env), 0);
}

typedef struct load_thread {
    const char *target;
    const char *key;
    unsigned machine_base;
    volatile int *stop;            /* set once the server has exited */
    unsigned ok, unavailable, cancelled, other;
    grpc_status_code other_status;
    char other_msg[256];
} load_thread;

static void *load(void *p) {
    load_thread *lt = p;
    rpc_channel *ch = rpc_channel_new(lt->target, NULL);
    rpc_client_method *m = rpc_channel_method(ch, PA_RPC_ACTIVATE);
    for (unsigned i = 0; !*lt->stop && i < 200000; i++) {
        uint8_t id[32], buf[512];
        env_machine(id, lt->machine_base + i % 50);
        Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
        rq.product_key = (char *)lt->key;
        rq.machine_id = (ProtobufCBinaryData){.len = sizeof id, .data = id};
        size_t len = activation__v1__activate_request__pack(&rq, buf);
        rpc_result res;
        grpc_status_code st = rpc_call(ch, m, buf, len, 5000, &res);
        if (st == GRPC_STATUS_OK) lt->ok++;
        else if (st == GRPC_STATUS_UNAVAILABLE) lt->unavailable++;
        else if (st == GRPC_STATUS_CANCELLED) lt->cancelled++;
        else if (lt->other++ == 0) {
            lt->other_status = st;
            snprintf(lt->other_msg, sizeof lt->other_msg, "%s", res.message);
        }
        rpc_result_clear(&res);
        if (st == GRPC_STATUS_UNAVAILABLE) usleep(10 * 1000);
    }
    rpc_channel_free(ch);
    rpc_client_thread_done();
    return NULL;
}

static void test_sigterm_under_load(void **state) {
    assert_int_equal(env_start_server(&env, generous), 0);
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_B, 3, false, 0, key), 0);
    enum { N = 4 };
    load_thread lt[N];
    pthread_t t[N];
    volatile int stop = 0;
    for (int i = 0; i < N; i++) {
        lt[i] = (load_thread){.target = env.target, .key = key, .machine_base = 1000u * (i + 1),
                              .stop = &stop};
        assert_int_equal(pthread_create(&t[i], NULL, load, &lt[i]), 0);
    }
    usleep(700 * 1000);
    int status = env_stop_server(&env);   /* SIGTERM, then waits for the exit */
    usleep(300 * 1000);                   /* clients see the server gone */
    stop = 1;
    unsigned ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        ok += lt[i].ok;
        if (lt[i].other)
            fprintf(stderr, "thread %d: %u calls ended with %d: %s\n", i, lt[i].other,
                    lt[i].other_status, lt[i].other_msg);
        assert_int_equal(lt[i].other, 0);   /* only OK, or UNAVAILABLE when not accepted */
    }
    assert_int_equal(status, 0);
    assert_true(ok > 100);
    /* Every call the server took on was answered OK: its grants (counted in
     * its log since it started) match the OKs the clients received. Calls it
     * never took on end UNAVAILABLE, or CANCELLED when they crossed the
     * GOAWAY (gRPC core drops streams that arrive after shutdown began). */
    char *log = env_read_log(&env);
    assert_non_null(log);
    char *run = log, *p;
    while ((p = strstr(run + 1, "\"event\":\"server.started\""))) run = p;
    unsigned granted = 0;
    for (p = run; (p = strstr(p, "\"event\":\"activate.granted\"")); p++) granted++;
    fprintf(stderr, "SIGTERM under load: %u granted, %u OK at the clients\n", granted, ok);
    assert_int_equal(granted, ok);
    assert_non_null(strstr(run, "\"event\":\"server.stopped\",\"cancelled_calls\":0"));
    free(log);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_damaged_record_version_is_unavailable),
        cmocka_unit_test(test_bad_metrics_port_refused),
        cmocka_unit_test(test_readable_signing_key_refused),
        cmocka_unit_test(test_no_core_dumps),
        cmocka_unit_test(test_expired_deadline_gets_no_work),
        cmocka_unit_test(test_expired_deadline_renew_retried_safely),
        cmocka_unit_test(test_sigterm_under_load),
        cmocka_unit_test(test_redis_stopped_and_started_again), /* last: restarts Redis A */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
