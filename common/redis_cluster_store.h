/* redis_cluster_store.h -- the store in Redis Cluster mode: routing each
 * command to the master of its key's slot and following the cluster's
 * redirects (docs/cluster.md, "The store in cluster mode").
 *
 * Internal to redis_store.c: callers keep using the rstore API, which
 * hands every call to these functions when the URL is redis-cluster://.
 * The functions mirror that API; their errors are read with
 * rcluster_error. */
#ifndef PA_COMMON_REDIS_CLUSTER_STORE_H
#define PA_COMMON_REDIS_CLUSTER_STORE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#include "redis_cluster.h"
#include "redis_store.h"

typedef struct rcluster rcluster;

/* A router over the seed nodes; `settings` (the cluster-mode store that
 * owns the router) gives every node store its credentials and scripts. */
rcluster *rcluster_new(rstore *settings, const cluster_node *seeds, int nseeds);
void rcluster_free(rcluster *c);
/* Reads the slot map now; 0, or -1 when no node answered. */
int rcluster_connect(rcluster *c);
/* A script was registered on the cluster store: the node stores made so
 * far register it too (node stores made later copy it). */
void rcluster_script_added(rcluster *c, const char *lua_source);

/* One command, routed by its first key (cluster_key_index) or, without a
 * key, to the node of the previous command; redirects are followed. */
redisReply *rcluster_commandargv(rcluster *c, int argc, const char **argv, const size_t *argvlen);
/* A keyless command on the master that owns key's slot. */
redisReply *rcluster_command_at(rcluster *c, const char *key, size_t keylen, int argc, const char **argv,
                                const size_t *argvlen);
/* Pipelines: commands are kept until the first reply is asked for, then
 * sent to every master they go to before any reply is read. */
int rcluster_append(rcluster *c, int argc, const char **argv, const size_t *argvlen);
redisReply *rcluster_get_reply(rcluster *c);
/* The command on every master; each (may be NULL) sees every answer.
 * 0 when all answered without an error, else -1. */
int rcluster_command_all(rcluster *c, rstore_each_fn each, void *arg, int argc, const char **argv,
                         const size_t *argvlen);
/* The connection to the master of key's slot, or NULL. */
redisContext *rcluster_context_for_key(rcluster *c, const char *key, size_t keylen);

bool rcluster_connected(const rcluster *c);
const char *rcluster_error(const rcluster *c);

#endif
