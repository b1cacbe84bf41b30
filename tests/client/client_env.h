/* client_env.h -- the real world the client's integration tests run in:
 * Redis A and B, KEKs and a license signing key made with the shipped
 * tools (keystore, openssl), groups and keys made with the keystore CLI,
 * activation-server processes, and the `activate` CLI run as a child with
 * a fake machine (facts tree) and a state directory of its own. */
#ifndef TEST_CLIENT_ENV_H
#define TEST_CLIENT_ENV_H

#include <stdbool.h>
#include <sys/types.h>

#include "fixture.h"

#define ENV_SERVERS 3
#define KEY_TEXT 30

typedef struct client_env {
    redis_fixture a, b;            /* activation and audit stores */
    char dir[256];                 /* temp dir for everything else */
    char kek_a[300], kek_b[300];   /* key-encryption keys */
    char signing_key[300];         /* the server's Ed25519 private key */
    char public_key[300];          /* what the client trusts */
    char url_a[256], url_b[256];   /* keystore user URLs */
    pid_t server[ENV_SERVERS];     /* activation-server processes, -1 if not running */
    int port[ENV_SERVERS];
    char target[ENV_SERVERS][64];  /* "127.0.0.1:PORT" */
} client_env;

/* Stores, KEKs, signing key; no server yet. 0 or -1. */
int env_start(client_env *e);
/* Starts server i (rate limits off, so tests may call often) with `extra`
 * flags (NULL-terminated, may be NULL); plain text (--insecure-plaintext)
 * unless they include --tls-cert; signing with e->signing_key, and with the
 * KEK unless they include --on-premises. 0 or -1. */
int env_start_server(client_env *e, int i, const char *const *extra);
/* Starts server i again on the port it had (a server coming back). */
int env_restart_server(client_env *e, int i, const char *const *extra);
void env_stop_server(client_env *e, int i);
void env_stop(client_env *e);

/* keystore group create --id ID --product "Demo Office" ... extra flags. */
int env_group(client_env *e, unsigned id, const char *const *extra);
/* `n` fresh keys of group `id`. 0 or -1. */
int env_keys(client_env *e, unsigned id, int n, char keys[][KEY_TEXT]);

/* A fake machine "name" under the env dir (a distinct DMI UUID per name);
 * fills `root` and `state` with its facts root and state dir. */
void env_machine(client_env *e, const char *name, char root[300], char state[300]);

/* Runs `activate` with --json (unless `args` has --no-json) --public-key
 * --facts-root ROOT --state-dir STATE and `args` (NULL-terminated), and
 * --insecure unless `args` has
 * --tls-ca, --insecure or --no-insecure. Returns the exit code; *out gets
 * stdout (malloc'd, may be NULL to discard), stderr goes to the test log. */
int env_activate_cli(client_env *e, const char *root, const char *state, const char *const *args, char **out);

/* The source and build trees (PA_SOURCE_DIR / PA_BUILD_DIR from ctest, else
 * the trees this test was configured in). */
const char *env_source_dir(void);
const char *env_build_dir(void);

/* The first `name` on PATH into `out`, or false. */
bool env_find_program(const char *name, char *out, size_t n);
/* `npm ci` of the Node.js client into node_dir (the build tree's copy of
 * tests/client/node) unless its packages are there; serialised by a lock
 * file, since several tests use the tree. 0 or npm's exit status. */
int env_npm_ci(const char *npm, const char *node_dir);

/* Integer field `"name":N` of a JSON text, or -1. */
long long json_int(const char *json, const char *name);
/* String field `"name":"..."` copied into buf (empty if absent). */
void json_str(const char *json, const char *name, char *buf, size_t n);

#endif
