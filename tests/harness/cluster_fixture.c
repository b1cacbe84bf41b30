/* cluster_fixture.c -- a private Redis Cluster (cluster_fixture.h).
 *
 * Design: each node is an activation-store fixture (fixture.c renders the
 * deployment's redis.conf and ACL file) with cluster lines added. The
 * cluster is then assembled by hand, as `redis-cli --cluster create` would
 * (which refuses fewer than three masters, and a one-master cluster is the
 * baseline the benchmark compares against): each master gets a distinct
 * config epoch and its even share of the slots (CLUSTER ADDSLOTSRANGE),
 * every node MEETs node 0, and once all know each other the replicas
 * REPLICATE their master. Ready means cluster_state:ok on every node. */
#include "cluster_fixture.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "redis_slot.h"

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

redisContext *cluster_fixture_connect(const cluster_fixture *f, int i) {
    return redis_fixture_connect(&f->node[i], "clusterops", FIXTURE_PW_CLUSTER_OPS);
}

static redisReply *vexec(const cluster_fixture *f, int i, const char *fmt, va_list ap) {
    redisContext *c = cluster_fixture_connect(f, i);
    if (!c) return NULL;
    redisReply *r = redisvCommand(c, fmt, ap);
    if (!r) fprintf(stderr, "cluster_fixture: node %d: %s\n", i, c->errstr);
    redisFree(c);
    return r;
}

int cluster_fixture_exec(const cluster_fixture *f, int i, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vexec(f, i, fmt, ap);
    va_end(ap);
    int rc = r && r->type != REDIS_REPLY_ERROR ? 0 : -1;
    if (r && rc != 0) fprintf(stderr, "cluster_fixture: node %d: %s: %s\n", i, fmt, r->str);
    if (r) freeReplyObject(r);
    return rc;
}

static int start_node(cluster_fixture *f, int i) {
    char conf[512];
    static const char acl[] = "user clusterops on >" FIXTURE_PW_CLUSTER_OPS " ~* &* +@all\n";
    for (int attempt = 0; attempt < 3; attempt++) {
        if ((f->bus_port[i] = fixture_free_port()) < 0) return -1;
        snprintf(conf, sizeof conf,
                 "cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-port %d\n"
                 "cluster-node-timeout 1000\ncluster-replica-validity-factor 0\n"
                 "masteruser clusterops\nmasterauth %s\n",
                 f->bus_port[i], FIXTURE_PW_CLUSTER_OPS);
        if (redis_fixture_start_extra(&f->node[i], FIXTURE_STORE_ACTIVATION, conf, acl) == 0) return 0;
    }
    return -1;
}

static int read_id(cluster_fixture *f, int i) {
    redisContext *c = cluster_fixture_connect(f, i);
    redisReply *r = c ? redisCommand(c, "CLUSTER MYID") : NULL;
    int ok = r && r->type == REDIS_REPLY_STRING && r->len == 40;
    if (ok) memcpy(f->id[i], r->str, 41);
    if (r) freeReplyObject(r);
    if (c) redisFree(c);
    return ok ? 0 : -1;
}

/* Slots, epochs and MEET: the cluster's shape before it knows itself. */
static int assemble(cluster_fixture *f) {
    for (int i = 0; i < f->n; i++) {
        if (read_id(f, i) != 0 || cluster_fixture_exec(f, i, "CLUSTER SET-CONFIG-EPOCH %d", i + 1) != 0) return -1;
        if (i < f->slot_masters) {
            int lo = i * REDIS_SLOTS / f->slot_masters, hi = (i + 1) * REDIS_SLOTS / f->slot_masters - 1;
            if (cluster_fixture_exec(f, i, "CLUSTER ADDSLOTSRANGE %d %d", lo, hi) != 0) return -1;
        }
    }
    for (int i = 1; i < f->n; i++)
        if (cluster_fixture_exec(f, i, "CLUSTER MEET 127.0.0.1 %d %d", f->node[0].port, f->bus_port[0]) != 0) return -1;
    return 0;
}

/* Whether node i's CLUSTER INFO says ok (and it knows `known` nodes). */
static int node_ok(const cluster_fixture *f, int i, int known) {
    redisContext *c = f->node[i].pid > 0 ? cluster_fixture_connect(f, i) : NULL;
    redisReply *r = c ? redisCommand(c, "CLUSTER INFO") : NULL;
    int ok = 0;
    if (r && r->type == REDIS_REPLY_STRING) {
        char want[64];
        snprintf(want, sizeof want, "cluster_known_nodes:%d\r", known);
        ok = strstr(r->str, "cluster_state:ok") && (known <= 0 || strstr(r->str, want));
    }
    if (r) freeReplyObject(r);
    if (c) redisFree(c);
    return ok;
}

int cluster_fixture_wait_ok(const cluster_fixture *f, int nodes_known, int timeout_ms) {
    for (long long deadline = pa_mono_ms() + timeout_ms; pa_mono_ms() < deadline; sleep_ms(50)) {
        int all = 1;
        for (int i = 0; i < f->n && all; i++)
            if (f->node[i].pid > 0 && !node_ok(f, i, nodes_known)) all = 0;
        if (all) return 0;
    }
    fprintf(stderr, "cluster_fixture: cluster_state:ok not reached within %d ms\n", timeout_ms);
    return -1;
}

/* Every node must know every other before a replica can name its master. */
static int make_replicas(cluster_fixture *f) {
    if (f->replicas == 0) return 0;
    if (cluster_fixture_wait_ok(f, f->n, 20000) != 0) return -1;
    for (int i = f->masters; i < f->n; i++) {
        int m = (i - f->masters) / f->replicas;
        if (cluster_fixture_exec(f, i, "CLUSTER REPLICATE %s", f->id[m]) != 0) return -1;
    }
    return 0;
}

/* Whether master i has its replicas in sync (INFO replication). */
static int linked(const cluster_fixture *f, int i) {
    redisContext *c = cluster_fixture_connect(f, i);
    redisReply *r = c ? redisCommand(c, "INFO replication") : NULL;
    int online = 0; /* a replica still in its first sync is connected but not "online" */
    for (const char *p = r && r->type == REDIS_REPLY_STRING ? r->str : ""; (p = strstr(p, "state=online")); p++)
        online++;
    int ok = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "role:master") && online == f->replicas;
    if (r) freeReplyObject(r);
    if (c) redisFree(c);
    return ok;
}

/* A test that kills a master needs its replica in sync first. */
static int wait_linked(const cluster_fixture *f, int timeout_ms) {
    for (long long deadline = pa_mono_ms() + timeout_ms; pa_mono_ms() < deadline; sleep_ms(50)) {
        int all = 1;
        for (int i = 0; i < f->masters && all; i++) all = linked(f, i);
        if (all) return 0;
    }
    fprintf(stderr, "cluster_fixture: the replicas did not connect within %d ms\n", timeout_ms);
    return -1;
}

static int start(cluster_fixture *f, int masters, int replicas, int slot_masters);

int cluster_fixture_start(cluster_fixture *f, int masters, int replicas) {
    return start(f, masters, replicas, masters);
}

int cluster_fixture_start_on_first(cluster_fixture *f, int masters) { return start(f, masters, 0, 1); }

static int start(cluster_fixture *f, int masters, int replicas, int slot_masters) {
    memset(f, 0, sizeof *f);
    if (masters < 1 || replicas < 0 || masters * (1 + replicas) > CLUSTER_FIXTURE_NODES_MAX) {
        fprintf(stderr, "cluster_fixture: %d masters with %d replicas each is too many\n", masters, replicas);
        return -1;
    }
    f->masters = masters, f->replicas = replicas, f->slot_masters = slot_masters;
    for (f->n = 0; f->n < masters * (1 + replicas); f->n++)
        if (start_node(f, f->n) != 0) goto fail;
    if (assemble(f) != 0 || make_replicas(f) != 0 || cluster_fixture_wait_ok(f, f->n, 20000) != 0 ||
        (replicas > 0 && wait_linked(f, 20000) != 0))
        goto fail;
    return 0;
fail:
    fprintf(stderr, "cluster_fixture: the cluster did not form\n");
    cluster_fixture_stop(f);
    return -1;
}

void cluster_fixture_stop(cluster_fixture *f) {
    for (int i = 0; i < f->n; i++) redis_fixture_stop(&f->node[i]);
    f->n = 0;
}

void cluster_fixture_url(const cluster_fixture *f, const char *user, const char *password, char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "redis-cluster://%s:%s@", user, password);
    for (int i = 0; i < f->n && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s127.0.0.1:%d", i ? "," : "", f->node[i].port);
}

int cluster_fixture_owner(const cluster_fixture *f, unsigned slot) {
    for (int i = 0; i < f->n; i++) {
        if (f->node[i].pid <= 0) continue;
        redisContext *c = cluster_fixture_connect(f, i);
        redisReply *r = c ? redisCommand(c, "CLUSTER SLOTS") : NULL;
        int port = -1, answered = r && r->type == REDIS_REPLY_ARRAY;
        for (size_t k = 0; r && r->type == REDIS_REPLY_ARRAY && k < r->elements; k++) {
            redisReply *e = r->element[k];
            if (e->elements >= 3 && (unsigned)e->element[0]->integer <= slot &&
                slot <= (unsigned)e->element[1]->integer)
                port = (int)e->element[2]->element[1]->integer;
        }
        if (r) freeReplyObject(r);
        if (c) redisFree(c);
        for (int j = 0; j < f->n && port > 0; j++)
            if (f->node[j].port == port) return j;
        if (answered) return -1;
    }
    return -1;
}

void cluster_fixture_kill(cluster_fixture *f, int i) {
    if (f->node[i].pid > 0) fixture_stop(f->node[i].pid, SIGKILL, 2000);
    f->node[i].pid = -1;
}

int cluster_fixture_cli(const cluster_fixture *f, const char *command, const char *const *args) {
    char addr[32];
    const char *argv[40] = {"/usr/bin/redis-cli",   "--no-auth-warning", "--user", "clusterops", "-a",
                            FIXTURE_PW_CLUSTER_OPS, "--cluster",         command,  addr};
    int n = 9;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f->node[0].port);
    for (int i = 0; args && args[i] && n < 39; i++) argv[n++] = args[i];
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    int st = fixture_run((char *const *)argv, &out, &err);
    if (st != 0)
        fprintf(stderr, "cluster_fixture: redis-cli --cluster %s exited %d:\n%s%s\n", command, st, out ? out : "",
                err ? err : "");
    free(out);
    free(err);
    return st == 0 ? 0 : -1;
}
