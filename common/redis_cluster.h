/* redis_cluster.h -- what a client knows of a Redis Cluster: its nodes,
 * which master owns each hash slot, and how to read the cluster's answers
 * (CLUSTER SLOTS, MOVED and ASK redirects) and a command's first key.
 *
 * No connections here: the routing store (redis_cluster_store.c) keeps one
 * per node, indexed like the node list. Nodes are only ever added (a
 * failover or a reshard brings new ones; a dead one keeps its index and
 * simply owns no slots after the next refresh), so an index stays valid
 * for the life of the map. docs/cluster.md has the design. */
#ifndef PA_COMMON_REDIS_CLUSTER_H
#define PA_COMMON_REDIS_CLUSTER_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis_slot.h"

#define CLUSTER_NODES_MAX 64

typedef struct cluster_node {
    char host[256]; /* address as the cluster (or the URL, for a seed) names it */
    int port;       /* client port */
} cluster_node;

typedef struct cluster_map {
    cluster_node node[CLUSTER_NODES_MAX]; /* seeds first, then nodes the cluster named */
    int n;                                /* nodes in use */
    int16_t owner[REDIS_SLOTS];           /* slot -> index of its master; -1: not known */
    bool loaded;                          /* a CLUSTER SLOTS answer was read at least once */
} cluster_map;

/* An empty map (no nodes, no owners). */
void cluster_map_init(cluster_map *m);
/* The index of host:port, added if new; -1 when the list is full. */
int cluster_map_node(cluster_map *m, const char *host, int port);
/* Replaces the slot table with a CLUSTER SLOTS answer. A master whose host
 * is empty or "?" is taken to be `asked_host` (the node that answered).
 * Returns 0, or -1 with err saying what was wrong (the table is unchanged). */
int cluster_map_load(cluster_map *m, const redisReply *slots, const char *asked_host, char *err, size_t errlen);
/* Whether node i owns at least one slot (is a master in use). */
bool cluster_map_is_master(const cluster_map *m, int i);

typedef enum cluster_redirect {
    CLUSTER_REDIRECT_NONE,  /* not a redirect */
    CLUSTER_REDIRECT_MOVED, /* the slot moved for good: update the table */
    CLUSTER_REDIRECT_ASK,   /* the key is migrating: ask that node once, with ASKING */
} cluster_redirect;

/* Reads "MOVED slot host:port" or "ASK slot host:port". An empty host means
 * `from_host` (the node that answered); an IPv6 host is split at the last
 * ':'. Writes slot, host and port; NONE when msg is neither (or malformed). */
cluster_redirect cluster_redirect_parse(const char *msg, const char *from_host, unsigned *slot, char *host,
                                        size_t hostlen, int *port);

/* The argv index of a command's first key, or -1 for a command without
 * keys (PING, INFO, WAIT, SCRIPT ..., MULTI, EXEC, an EVAL with no KEYS).
 * EVAL/EVALSHA use KEYS[1]; XREAD/XREADGROUP the first stream after
 * STREAMS; every other command argv[1]. */
int cluster_key_index(int argc, const char **argv, const size_t *argvlen);

/* Splits a formatted RESP command (redisFormatCommand's output) into an
 * argument vector pointing into `cmd` (the vector is malloc'd: free argv
 * and argvlen). Returns argc, or -1. */
int cluster_resp_split(const char *cmd, size_t len, const char ***argv, size_t **argvlen);

#endif
