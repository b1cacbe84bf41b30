/* admin_env.h -- what the admin server's tests stand up for real: a
 * private Redis A (fixture.h, with the production ACL user `admin`), TLS
 * certificates from scripts/make-certs.sh, accounts made with the
 * `admin-server user` command, the admin-server binary, and an HTTPS
 * client (libcurl) that keeps the session cookie and CSRF token like a
 * browser.
 *
 *   admin_env e;
 *   assert_int_equal(admin_env_start(&e, NULL), 0);           // redis, certs, server
 *   assert_int_equal(admin_env_add_user(&e, "ops", "operator", "a long password"), 0);
 *   assert_int_equal(admin_login(&e, "ops", "a long password"), 200);
 *   int status;
 *   json_t *j = admin_call(&e, "GET", "/api/v1/trail?limit=5", NULL, &status);
 *   ...
 *   json_decref(j);
 *   if (admin_env_stop(&e) != 0) ...        // the server did not exit 0 (e.g. ASan found a leak)
 *
 * With cmocka, start it in the group setup and stop it after
 * cmocka_run_group_tests, failing the program when admin_env_stop does
 * (a group teardown's failure does not change cmocka's exit status).
 *
 * Changes (POST, PUT, PATCH, DELETE) carry e.csrf in X-CSRF-Token; a test
 * may overwrite or empty e.csrf to send a wrong token or none, and e.cookie
 * (the session cookie) likewise. The last reply's status, raw body and
 * headers stay in the env (e.status, e.body, e.body_len, admin_header)
 * until the next request: an export reads its bytes there. Passwords are hashed cheaply in tests
 * (--argon2-memory-kib 1024); login tries are many (--login-tries 1000)
 * unless a test's server flags say otherwise. */
#ifndef PA_TEST_ADMIN_ENV_H
#define PA_TEST_ADMIN_ENV_H

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "fixture.h"

typedef struct admin_env {
    redis_fixture redis;      /* Redis A: users keystore, activation, admin */
    char dir[256];            /* temp dir: certs/, the Redis password file, logs, console/ */
    char certs[300];          /* make-certs.sh output (ca.pem, audit-server.pem/.key) */
    char redis_url[128];      /* redis://admin@127.0.0.1:PORT */
    char redis_pw[320];       /* file with the admin user's Redis password */
    char log_path[320];       /* admin-server's stderr (JSON lines) */
    pid_t server;             /* admin-server, -1 when not running */
    int port;                 /* its HTTP(S) port on 127.0.0.1 */
    bool insecure;            /* started with --insecure-http: the client speaks plain HTTP */
    CURL *curl;               /* the client, reused so its connections are kept */
    char cookie[128];         /* the pa_session cookie's value, kept as a browser keeps it; "" = none */
    char csrf[64];            /* the session's CSRF token, sent with every change */
    char source_addr[64];     /* the client's own address (another client: 127.0.0.2); "" = 127.0.0.1 */
    const char *extra_header; /* one more request header ("Name: value") for every request; NULL: none */
    long status;              /* the last reply's status (0: no reply) */
    char *body;               /* the last reply's body, NUL-terminated (malloc'd) */
    size_t body_len;          /* its length */
    char *headers;            /* the last reply's header lines (malloc'd) */
    size_t headers_len;       /* their length */
    char header_value[512];   /* admin_header's answer */
} admin_env;

/* Redis A, certificates, and admin-server with `server_flags`
 * (NULL-terminated, may be NULL; later flags override the defaults).
 * Returns 0 or -1 (message on stderr). */
int admin_env_start(admin_env *e, const char *const *server_flags);
/* The same against a Redis A the caller runs (redis_url as the admin user,
 * password FIXTURE_PW_ADMIN; e.g. a cluster_fixture's): e->redis is unused. */
int admin_env_start_on(admin_env *e, const char *redis_url, const char *const *server_flags);
/* Stops the running server, if any, and starts it again with these flags
 * (same port, same store). The cookie is kept. -1 also when the server
 * that was running did not exit 0 (a sanitizer's report, a crash). */
int admin_env_restart_server(admin_env *e, const char *const *server_flags);
/* SIGTERM to the server; returns its exit status. */
int admin_env_stop_server(admin_env *e);
/* Stops everything; -1 when the server did not exit 0 (its log tells). */
int admin_env_stop(admin_env *e);

/* Runs `admin-server user ARGS...` against the env's store; `input`, when
 * not NULL, is its standard input. Returns the exit status; *out and *err
 * (may be NULL) get stdout and stderr (malloc'd). */
int admin_env_user_cli(admin_env *e, const char *const *args, const char *input, char **out, char **err);
/* `user add NAME --role ROLE` with the password on standard input.
 * Returns the command's exit status. */
int admin_env_add_user(admin_env *e, const char *name, const char *role, const char *password);

/* POST /api/v1/session; keeps the cookie and the CSRF token. Returns the status. */
int admin_login(admin_env *e, const char *user, const char *password);
/* Forgets the cookie and the CSRF token (a new browser). */
void admin_forget_session(admin_env *e);

/* A request with a JSON body (NULL: none). Returns the reply parsed as
 * JSON (NULL when it is none: an empty body, a file, a connection error)
 * and sets *status (0 when there was no reply). */
json_t *admin_call(admin_env *e, const char *method, const char *path, const char *body, int *status);
/* Any request: the body's bytes and type (NULL: none). Returns the status
 * (0 when there was no reply); the reply is in e->body, e->headers. */
int admin_request(admin_env *e, const char *method, const char *path, const char *content_type, const void *body,
                  size_t len);
/* The last reply's header `name` (case-insensitive; the last such line),
 * or NULL. Valid until the next call. */
const char *admin_header(admin_env *e, const char *name);

/* A connection to Redis A as the admin user, to look at or change what
 * the server keeps. NULL on failure. */
redisContext *admin_env_redis(admin_env *e);

/* The value of a JSON error reply's error.code, or "" (not an error). */
const char *admin_error_code(const json_t *reply);

#endif
