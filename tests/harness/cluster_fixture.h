/* cluster_fixture.h -- a private Redis Cluster on loopback for tests and
 * benchmarks: M masters, each with R replicas, every node an ordinary
 * activation-store fixture (fixture.h: the production ACL users, AOF)
 * with cluster-enabled, its own bus port (cluster-port, so the
 * port+10000 rule cannot collide) and a short node timeout, so a failover
 * takes a second or two. One master is allowed (all 16384 slots on it).
 *
 * Nodes 0..M-1 are the masters as started, in slot order; replica r of
 * master i is node M + i*R + r. The test user `clusterops` (every
 * permission) is for the test's own cluster commands (SETSLOT, MIGRATE,
 * redis-cli --cluster). */
#ifndef PA_TEST_CLUSTER_FIXTURE_H
#define PA_TEST_CLUSTER_FIXTURE_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "fixture.h"

#define CLUSTER_FIXTURE_NODES_MAX 12
#define FIXTURE_PW_CLUSTER_OPS "test-cluster-ops-pw"

typedef struct cluster_fixture {
    int masters;                                   /* masters started (slots spread evenly) */
    int replicas;                                  /* replicas per master */
    int n;                                         /* nodes started */
    redis_fixture node[CLUSTER_FIXTURE_NODES_MAX]; /* each node's process, port and directory */
    int bus_port[CLUSTER_FIXTURE_NODES_MAX];       /* its cluster bus port */
    char id[CLUSTER_FIXTURE_NODES_MAX][41];        /* its cluster node id */
    int slot_masters;                              /* masters the slots were spread over at start */
} cluster_fixture;

/* Starts the nodes, assigns the slots, joins them, makes the replicas and
 * waits for cluster_state:ok everywhere. 0, or -1 (message on stderr;
 * whatever started is stopped). */
int cluster_fixture_start(cluster_fixture *f, int masters, int replicas);
/* The same with every slot on master 0 and the other masters empty: for
 * data written first through a plain connection to node 0 (e.g. groups
 * made by the keystore library), then spread with
 * cluster_fixture_cli(f, "rebalance", ..., "--cluster-use-empty-masters"). */
int cluster_fixture_start_on_first(cluster_fixture *f, int masters);
void cluster_fixture_stop(cluster_fixture *f);
/* Runs `redis-cli --cluster COMMAND 127.0.0.1:P0 ARGS...` as clusterops
 * (args NULL-terminated). 0 when it exits 0, else -1 (its output on
 * stderr). */
int cluster_fixture_cli(const cluster_fixture *f, const char *command, const char *const *args);

/* "redis-cluster://USER:PASSWORD@127.0.0.1:P0,...": every node a seed. */
void cluster_fixture_url(const cluster_fixture *f, const char *user, const char *password, char *buf, size_t n);
/* A connection to node i as clusterops; NULL (message on stderr) if none. */
redisContext *cluster_fixture_connect(const cluster_fixture *f, int i);
/* A command to node i as clusterops; 0 unless it fails or answers an
 * error (then on stderr). */
int cluster_fixture_exec(const cluster_fixture *f, int i, const char *fmt, ...);
/* Waits until every running node says cluster_state:ok (and, when
 * `nodes_known` > 0, knows that many nodes). 0, or -1 after timeout_ms. */
int cluster_fixture_wait_ok(const cluster_fixture *f, int nodes_known, int timeout_ms);
/* The node that serves `slot` as its master, by node 0's (or, when that is
 * down, the next running node's) CLUSTER SLOTS; -1 if none. */
int cluster_fixture_owner(const cluster_fixture *f, unsigned slot);
/* SIGKILL to node i (it stays down). */
void cluster_fixture_kill(cluster_fixture *f, int i);

#endif
