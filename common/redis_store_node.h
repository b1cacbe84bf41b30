/* redis_store_node.h -- what the cluster router (redis_cluster_store.c)
 * needs of redis_store.c to talk to one node.
 *
 * In cluster mode each node gets a store of its own, an ordinary
 * single-node rstore made from the cluster store's settings (user,
 * password, timeouts, registered scripts). So every node has the one
 * connection logic the rest of the code already relies on -- handshake,
 * fail fast, backoff, NOSCRIPT -- and the router only decides where a
 * command goes. Not for callers outside common/. */
#ifndef PA_COMMON_REDIS_STORE_NODE_H
#define PA_COMMON_REDIS_STORE_NODE_H

#include <stddef.h>

#include "redis_store.h"

/* A disconnected store for host:port with the settings and scripts of
 * `cluster_store`; it connects on first use. NULL when out of memory. */
rstore *rstore_node_new(const rstore *cluster_store, const char *host, int port);
/* Drops the node's connection (READONLY, CLUSTERDOWN): the next command
 * reconnects after the usual backoff. */
void rstore_node_drop(rstore *node, const char *why);
/* The index of the registered script whose SHA is sha[0..len), or -1. */
int rstore_node_script_find(const rstore *node, const char *sha, size_t len);
/* SCRIPT LOAD of script idx on the node's connection; 0 or -1. */
int rstore_node_load_script(rstore *node, int idx);

#endif
