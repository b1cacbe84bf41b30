/* admin_app.c -- the admin server's options and shared state (admin_app.h).
 *
 * The dummy hash is made at start-up with the same parameters as real
 * ones: a login for an unknown account verifies against it, so it takes
 * as long as a wrong password and the answer's timing tells nothing. */
#include "admin_app.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "session.h"
#include "user_store.h"

const config_option ADMIN_OPTIONS[] = {
    {"tls-cert", "FILE", "the server's certificate chain (PEM)", NULL},
    {"tls-key", "FILE", "the server's private key (PEM)", NULL},
    {"insecure-http", NULL, "serve plain HTTP (only behind a TLS proxy); cookies then lack Secure", NULL},
    {"redis-url", "URL", "Redis A as user admin", "redis://admin@127.0.0.1:6379"},
    {"redis-password-file", "FILE", "read the Redis password from FILE", NULL},
    {"redis-sentinel-password-file", "FILE",
     "with a redis-sentinel:// URL: the sentinels' password (their requirepass)", NULL},
    {"console-dir", "DIR", "the built web console (console/dist) served at /; unset: API only", NULL},
    {"session-ttl-s", "S", "idle lifetime of a session", "1800"},
    {"max-body-bytes", "N", "largest request body (an order file included)", "1048576"},
    {"http-threads", "N", "connection threads", "4"},
    {"login-tries", "N", "login tries per account and per client address before the wait", "5"},
    {"login-refill-s", "S", "one more login try after this long", "12"},
    {"webhook-interval-ms", "MS", "how often the event task looks for events to send to webhooks", "1000"},
    {"order-expiry-warning-days", "N", "order.expiring fires this many days before an order ends", "30"},
    /* orders, revocations (orders_api.h, revocations.h) */
    {"order-public-key", "FILE",
     "the vendor's order-verification public key (PEM); repeat for several; order import checks signatures with them",
     NULL},
    {"on-premises", NULL, "an on-premises deployment: orders must delegate --server-public-key", NULL},
    {"server-public-key", "FILE", "on premises: the activation server's license-signing public key (PEM)", NULL},
    {"audit-address", "ADDR", "the audit server host:port, for revocations (mutual TLS); unset: revocations are local",
     NULL},
    {"audit-ca", "FILE", "CA that signed the audit server's certificate (PEM)", NULL},
    {"audit-cert", "FILE", "this server's client certificate for the audit server (PEM)", NULL},
    {"audit-key", "FILE", "its private key (PEM)", NULL},
    /* Hidden: tests lower the cost of hashing; production keeps 64 MiB. */
    {"argon2-memory-kib", "KIB", NULL, "65536"},
};
const size_t ADMIN_N_OPTIONS = sizeof ADMIN_OPTIONS / sizeof *ADMIN_OPTIONS;

int admin_app_configure(admin_app *app, const config *c) {
    bool ok = true;
    memset(app, 0, sizeof *app);
    app->store.url = config_get(c, "redis-url");
    app->store.password_file = config_get(c, "redis-password-file");
    app->store.sentinel_password_file = config_get(c, "redis-sentinel-password-file");
    const char *dir = config_get(c, "console-dir");
    app->console_dir = dir && *dir ? dir : NULL;
    app->insecure_http = config_get_bool(c, "insecure-http");
    app->session_ttl_s = (int)config_get_int(c, "session-ttl-s", 1, 30 * 86400, &ok);
    app->max_body_bytes = (size_t)config_get_int(c, "max-body-bytes", 1024, 1LL << 30, &ok);
    app->http_threads = (int)config_get_int(c, "http-threads", 1, 256, &ok);
    app->login_tries = (int)config_get_int(c, "login-tries", 1, 1000000, &ok);
    app->login_refill_s = (int)config_get_int(c, "login-refill-s", 1, 86400, &ok);
    app->webhook_interval_ms = (int)config_get_int(c, "webhook-interval-ms", 10, 3600000, &ok);
    app->expiry_warn_days = (int)config_get_int(c, "order-expiry-warning-days", 1, 3650, &ok);
    app->argon2_memory_kib = (uint32_t)config_get_int(c, "argon2-memory-kib", 64, 4 * 1024 * 1024, &ok);
    return ok ? 0 : 2;
}

int admin_app_make_dummy_hash(admin_app *app) {
    unsigned char junk[32];
    char pw[65];
    if (RAND_bytes(junk, sizeof junk) != 1) {
        fprintf(stderr, "admin-server: error: no random bytes\n");
        return -1;
    }
    for (size_t i = 0; i < sizeof junk; i++) snprintf(pw + 2 * i, 3, "%02x", junk[i]);
    if (user_hash_password(app, pw, app->dummy_hash, sizeof app->dummy_hash) != 0) {
        fprintf(stderr, "admin-server: error: cannot hash with Argon2id (memory?)\n");
        return -1;
    }
    return 0;
}

int admin_scripts_register(rstore *r) {
    const char *sources[ADMIN_N_SCRIPTS] = {
        [ADMIN_SCRIPT_LOGIN_BUCKET] = session_bucket_lua,
        [ADMIN_SCRIPT_USER_ADD] = user_add_lua,
        [ADMIN_SCRIPT_USER_SET] = user_set_lua,
        [ADMIN_SCRIPT_USER_REMOVE] = user_remove_lua,
    };
    for (int i = 0; i < ADMIN_N_SCRIPTS; i++)
        if (rstore_script_add(r, sources[i]) != i) return -1;
    return 0;
}

rstore *admin_store_open(const admin_app *app, bool lazy, char *err, size_t errlen) {
    rstore *r = rstore_new(&app->store, true, err, errlen);
    if (!r) return NULL;
    if (admin_scripts_register(r) != 0) {
        snprintf(err, errlen, "cannot register the admin scripts");
        rstore_free(r);
        return NULL;
    }
    if (!lazy) {
        redisReply *rep = rstore_command(r, "PING");
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "%s", rep ? rep->str : rstore_error(r));
            if (rep) freeReplyObject(rep);
            rstore_free(r);
            return NULL;
        }
        freeReplyObject(rep);
    }
    return r;
}
