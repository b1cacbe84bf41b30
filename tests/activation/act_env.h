/* act_env.h -- what every activation test starts for real: Redis A and B
 * (fixture.h), a KEK per store, a license signing key, groups created with
 * the keystore library, keys made with the groups' true secrets, and the
 * activation-server binary itself, called over gRPC.
 *
 * Also small helpers to call the server, read its /metrics, read its log,
 * and look into Redis A as the keystore user. */
#ifndef TEST_ACT_ENV_H
#define TEST_ACT_ENV_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "activation/v1/activation.pb-c.h"
#include "fixture.h"
#include "group.h"
#include "keycodec.h"
#include "license.h"
#include "place_proof.h"
#include "rpc_client.h"
#include "rpc_methods.h"
#include "validate.h"

typedef struct act_env {
    redis_fixture a;               /* activation store */
    redis_fixture b;               /* audit store */
    char dir[256];                 /* temp dir: KEKs, signing key, server log */
    char kek_a[300], kek_b[300];   /* KEK files */
    uint8_t kek_a_bytes[KEK_LEN], kek_b_bytes[KEK_LEN];
    char signing_key[300];         /* Ed25519 private key (PEM) */
    char public_key[300];          /* its public half */
    EVP_PKEY *pub;                 /* loaded public key, to verify licenses */
    char log_path[300];            /* the server's stderr */
    char certs[300];               /* scripts/make-certs.sh output (env_make_certs), or "" */
    redisContext *ks_a, *ks_b;     /* keystore user on each store */
    pid_t server;                  /* activation-server, or -1 */
    int port;                      /* its gRPC port on 127.0.0.1 */
    int metrics_port;
    char target[64];               /* "127.0.0.1:PORT" */
    rpc_channel *ch;               /* channel to target */
} act_env;

/* Redis A + B, KEKs, signing key. Returns 0 or -1 (message on stderr). */
int env_start_stores(act_env *e);
/* Server options lifting the address and group token buckets far above
 * what a test's bursts take, so bursts measure batching, not limits
 * (8 strings, for an options array). */
#define ENV_UNLIMITED_RATES                                                                             \
    "--rate-address-per-s", "100000", "--rate-address-burst", "100000", "--rate-group-per-s", "100000", \
        "--rate-group-burst", "100000"

/* Starts activation-server on a free port with the env's files and
 * `extra` flags (NULL-terminated, may be NULL). Without --tls-cert among
 * them it serves plain text (--insecure-plaintext) and e->ch is its
 * channel; with it, e->ch is NULL (the test brings its own TLS client).
 * With --on-premises among them the server gets no --kek. Returns 0 or -1. */
int env_start_server(act_env *e, const char *const *extra);
/* Makes the audit mTLS certificates into e->certs with scripts/make-certs.sh. */
int env_make_certs(act_env *e);
/* The flags that turn auditing on against `audit_target` with e->certs
 * (NULL-terminated, in a static buffer: use before the next call). */
const char *const *env_audit_flags(act_env *e, const char *audit_target);
/* Reconnects the keystore user to Redis A (after a restart of it). */
int env_keystore_reconnect(act_env *e);
/* Stops the running server, if any, and starts one with `flags`. */
int env_restart_server(act_env *e, const char *const *flags);
/* A connection to Redis A as a user allowed every command (INFO needs
 * @dangerous, which no production user has), added to this private
 * instance's ACL file: tests measure through it. NULL on failure. */
redisContext *env_measuring_connection(act_env *e);
/* The same on Redis B (CONFIG, INFO, the audit trail). */
redisContext *env_measuring_connection_b(act_env *e);
/* SIGTERM to the server; returns its exit status. */
int env_stop_server(act_env *e);
void env_stop(act_env *e);

/* Creates a group: defaults from group_record_defaults, then `tune` may
 * change the record before it is written (may be NULL). Returns 0 or -1. */
int env_create_group(act_env *e, uint32_t id, void (*tune)(group_record *));
/* A genuine key for (group, serial); `first_delta` != 0 spoils the first
 * security value (checksum stays valid). Returns 0 or -1. */
int env_make_key(act_env *e, uint32_t group, uint32_t serial, bool upgrade, uint64_t first_delta,
                 char out[PK_TEXT_LEN + 1]);
/* A key with any security values (e.g. for a group that does not exist). */
void env_forge_key(uint32_t group, uint32_t serial, char out[PK_TEXT_LEN + 1]);

/* A deterministic 32-byte machine id from a small number. */
void env_machine(uint8_t out[32], unsigned n);

/* Raw unary call to the server; fills *res. */
grpc_status_code env_call(act_env *e, const char *path, const uint8_t *req, size_t len,
                          int timeout_ms, rpc_result *res);
/* Activate with hostname "host-N"; *resp (if not NULL) gets the decoded
 * response on OK (free with activation__v1__activate_response__free_unpacked).
 * Sends no place key: the place is bound by its first proven Renew. */
grpc_status_code env_activate(act_env *e, const char *key, const uint8_t *machine,
                              size_t machine_len, rpc_result *res,
                              Activation__V1__ActivateResponse **resp);
/* The same, sending the public half of `place_key` (NULL: none). */
grpc_status_code env_activate_keyed(act_env *e, const char *key, const uint8_t *machine, size_t machine_len,
                                    EVP_PKEY *place_key, rpc_result *res, Activation__V1__ActivateResponse **resp);

/* A place key (Ed25519) made from the number n: the same n gives the same
 * key, so a test can sign again with the key a place was bound to. */
EVP_PKEY *env_place_key(unsigned n);
/* A packed Renew or Deactivate request (they share their fields) for
 * (license_id, machine) with a proof for `op` by `key` made at `timestamp`
 * (0: now); no proof when key is NULL. Returns the length written to buf. */
size_t env_license_request(const char *license_id, const uint8_t machine[32], EVP_PKEY *key, place_op op,
                           int64_t timestamp, uint8_t *buf, size_t cap);
/* Verifies the key id and the signature over the license's batch tree
 * (index, size, path), then decodes the license (NULL if bad). */
Activation__V1__License *env_open_license(act_env *e, const ProtobufCBinaryData *license,
                                          const ProtobufCBinaryData *signature, const char *key_id, uint32_t tree_index,
                                          uint32_t tree_size, const ProtobufCBinaryData *tree_path, size_t n_tree_path);
/* The same for an ActivateResponse or RenewResponse `r`. */
#define env_open_answer(e, r)                                                                           \
    env_open_license((e), &(r)->license, &(r)->signature, (r)->key_id, (r)->tree_index, (r)->tree_size, \
                     (r)->tree_path, (r)->n_tree_path)

/* Activates a genuine key of (group, serial) on machine `m` with place key
 * env_place_key(n), checks the answer's signature, and copies the license
 * id into `license_id` (for the Renew and Deactivate that follow).
 * Returns 0, or -1 after saying why on stderr. */
int env_activate_license(act_env *e, uint32_t group, uint32_t serial, unsigned m, unsigned n,
                         char license_id[LICENSE_ID_LEN + 1]);

/* The value of one metric line ("name{labels}") in the server's /metrics, or -1. */
double env_metric(act_env *e, const char *series);
/* The server log so far (malloc'd). */
char *env_read_log(act_env *e);

#endif
