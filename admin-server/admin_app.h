/* admin_app.h -- the admin server's shared state: its options, read once at
 * start-up, and what every connection thread shares (docs/admin.md,
 * "Process and options").
 *
 * The daemon (main.c) and the `user` commands (user_cli.c) configure it
 * from the same option table, so both reach the same Redis A and hash
 * passwords alike. Everything here is read-only once the server runs;
 * each connection thread opens its own Redis connection from `store`
 * (http_server.c), so nothing here needs a lock. */
#ifndef PA_ADMIN_APP_H
#define PA_ADMIN_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "redis_store.h"

/* Scripts every admin Redis connection registers, in this order
 * (admin_scripts_register), so an index means the same everywhere. */
enum admin_script {
    ADMIN_SCRIPT_LOGIN_BUCKET = 0, /* session.c: the login token buckets */
    ADMIN_SCRIPT_USER_ADD,         /* user_store.c: create an account whole or not at all */
    ADMIN_SCRIPT_USER_SET,         /* user_store.c: change a field of an existing account */
    ADMIN_SCRIPT_USER_REMOVE,      /* user_store.c: the account and its name in the set */
    ADMIN_N_SCRIPTS
};

struct admin_app {
    rstore_config store;        /* Redis A as user admin; one connection per thread */
    const char *console_dir;    /* the built console served at /, NULL: API only */
    bool insecure_http;         /* plain HTTP (behind a TLS proxy): cookies lack Secure */
    int session_ttl_s;          /* idle lifetime of a session */
    size_t max_body_bytes;      /* larger request bodies get 413 */
    int http_threads;           /* connection threads of the HTTP server */
    int login_tries;            /* login bucket size, per account and per address */
    int login_refill_s;         /* one more try after this long */
    uint32_t argon2_memory_kib; /* Argon2id memory cost of new hashes (64 MiB; tests lower it) */
    char dummy_hash[160];       /* verified for unknown users, so they cost what a wrong password does */
    int webhook_interval_ms;    /* --webhook-interval-ms: how often the event task runs (events.h) */
    int expiry_warn_days;       /* --order-expiry-warning-days: when order.expiring fires */
};

typedef struct admin_app admin_app; /* as http_api.h names it */

/* The admin server's own options (the daemon frame adds its own), for the
 * daemon's spec and the `user` commands. */
extern const config_option ADMIN_OPTIONS[];
extern const size_t ADMIN_N_OPTIONS;

/* Fills `app` from the loaded configuration. Returns 0, or 2 after
 * printing what was wrong. `app` borrows strings from `c`, which must
 * outlive it. */
int admin_app_configure(struct admin_app *app, const config *c);

/* Makes the dummy hash logins of unknown accounts verify against (the
 * daemon only). 0, or -1 after printing why. */
int admin_app_make_dummy_hash(struct admin_app *app);

/* Registers the admin scripts on a new connection. Returns 0 or -1. */
int admin_scripts_register(rstore *r);

/* A new connection to Redis A as the admin user, its scripts registered;
 * lazily connected when `lazy`. NULL with a message in err. */
rstore *admin_store_open(const struct admin_app *app, bool lazy, char *err, size_t errlen);

#endif
