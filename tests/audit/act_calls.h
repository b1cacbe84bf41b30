/* act_calls.h -- the activation API calls and server helpers shared by the
 * tests that run the activation server on Redis Cluster
 * (test_single_slot.c, test_activation_cluster.c): one place for the
 * request building, so both tests speak the API the same way.
 *
 * Calls return the gRPC status; a status other than OK and UNAVAILABLE
 * (which a cluster answers while a slot moves) is printed with its message
 * so a failing assertion has its cause beside it. */
#ifndef PA_TEST_ACT_CALLS_H
#define PA_TEST_ACT_CALLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit_env.h"
#include "place_proof.h"
#include "rpc_client.h"

/* One activation-server process on a cluster, with the audit server of
 * the test's audit_env. */
typedef struct act_server {
    const char *name; /* --audit-consumer, and its log's name */
    pid_t pid;        /* -1 when not running */
    int port, metrics_port;
    char target[64]; /* "127.0.0.1:port" */
    char log[400];   /* its stderr (appended across restarts) */
    rpc_channel *ch; /* to target */
} act_server;

/* Starts the server on the cluster `redis_url` (as user activation) with
 * the options every cluster test gives it and then `extra` (NULL-
 * terminated: workers, log level, rates, flush interval); 0 once it
 * listens, else -1. */
int act_server_start(act_server *s, const audit_env *e, const char *redis_url, const char *signing_key,
                     const char *const *extra);
/* Sends `sig`, waits; the exit status, or -1 if it was not running. */
int act_server_stop(act_server *s, int sig);

/* An ed25519 license-signing key in e->dir; its path to `path`. 0 or -1. */
int act_make_signing_key(const audit_env *e, char *path, size_t n);

/* Activate for `machine`; on OK the license id to `license_id` and the
 * licenses signed with it to `tree_size` (each if not NULL). */
grpc_status_code act_activate(rpc_channel *ch, const char *key, const uint8_t machine[32], char license_id[33],
                              uint32_t *tree_size);

/* Renew or Deactivate (their requests share fields), proven with a place
 * key made from `seed` (one per machine: the first proof registers it). */
grpc_status_code act_by_license(rpc_channel *ch, place_op op, const char *license_id, const uint8_t machine[32],
                                unsigned seed);

/* ListMachines authorised by the product key; the places it lists to
 * `listed` (0 when not OK). */
grpc_status_code act_list_machines(rpc_channel *ch, const char *key, const uint8_t machine[32], size_t *listed);

/* Lines of the log at `path` that contain `needle` (0 if unreadable). */
int act_log_count(const char *path, const char *needle);

#endif
