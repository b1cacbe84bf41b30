/* redis_cluster_store.c -- routing the store's commands over a Redis
 * Cluster (redis_cluster_store.h, docs/cluster.md).
 *
 * Design: every node has its own single-node store (redis_store_node.h),
 * so connect, fail fast, backoff and NOSCRIPT are per node and exactly as
 * without a cluster; one dead master makes only its own slots fail fast.
 * This file only decides where a command goes and what to do with the
 * cluster's answers:
 *
 * - MOVED: the slot has a new owner; the table is fixed at once, the
 *   command re-sent there, and a full CLUSTER SLOTS read before a later
 *   command (a reshard moves many slots; one refresh beats a MOVED each).
 * - ASK: ASKING and the command pipelined to the named node, table kept.
 * - TRYAGAIN, and a script's "non local key" error (a key the script
 *   reached through ARGV has already migrated): retried after 10, 20 and
 *   40 ms, then the command fails (the caller answers UNAVAILABLE).
 * - At most 5 redirects per command: a map that disagrees with the
 *   cluster must not loop.
 * - CLUSTERDOWN, READONLY (a master that became a replica) and a broken
 *   connection drop that node's connection and mark the map stale; a stale
 *   map is re-read before the next command, at most every 100 ms, from
 *   whichever node answers (after a failover it names the promoted replica).
 *
 * A pipeline is kept here, copied, until its first reply is asked for:
 * then each command is routed, every master's share is written before any
 * reply is read (one round trip per master touched), and the replies are
 * read back in the caller's order. A reply that is a redirect is re-sent
 * alone once all replies of the pipeline are in. Keyless commands in a
 * pipeline (MULTI, EXEC) go with the next keyed command, or the previous. */
#include "redis_cluster_store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "redis_store_node.h"

#define REDIRECTS_MAX 5
#define RETRIES_MAX 3 /* TRYAGAIN waits: 10, 20, 40 ms */
#define RETRY_FIRST_MS 10
#define REFRESH_EVERY_MS 100

typedef struct pipe_cmd {
    int argc;          /* the command, copied: re-sent alone after a redirect */
    const char **argv; /* into the same allocation */
    size_t *argvlen;
    int node;          /* where it was sent; -1: it could not be */
    redisReply *reply; /* read and not yet handed to the caller */
    char why[256];     /* when reply is NULL: what went wrong (as long as err) */
} pipe_cmd;

struct rcluster {
    rstore *settings;                /* the cluster-mode store: what node stores are made from */
    cluster_map map;                 /* nodes and slot owners */
    rstore *conn[CLUSTER_NODES_MAX]; /* per node (map index), made on first use */
    bool stale;                      /* the map must be re-read before the next command */
    long long next_refresh_ms;       /* a stale map is re-read no more often than this */
    int ask_first;                   /* the node that answered CLUSTER SLOTS last: asked first */
    int last;                        /* node of the previous command: keyless commands follow it */
    pipe_cmd *pipe;                  /* the pipeline, in the caller's order */
    int npipe, cap;                  /* commands in it, room */
    int sent;                        /* commands of it already sent and read */
    int next;                        /* the next reply to hand out */
    char err[256];                   /* why the last operation failed */
};

__attribute__((format(printf, 2, 3))) static void set_err(rcluster *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static bool starts(const redisReply *r, const char *prefix) {
    return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, prefix, strlen(prefix)) == 0;
}

rcluster *rcluster_new(rstore *settings, const cluster_node *seeds, int nseeds) {
    rcluster *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->settings = settings;
    c->last = -1;
    cluster_map_init(&c->map);
    for (int i = 0; i < nseeds; i++)
        if (cluster_map_node(&c->map, seeds[i].host, seeds[i].port) < 0) {
            free(c);
            return NULL;
        }
    return c;
}

static void pipe_reset(rcluster *c) {
    for (int i = c->next; i < c->npipe; i++)
        if (c->pipe[i].reply) freeReplyObject(c->pipe[i].reply);
    for (int i = 0; i < c->npipe; i++) free(c->pipe[i].argv);
    c->npipe = c->sent = c->next = 0;
}

void rcluster_free(rcluster *c) {
    if (!c) return;
    pipe_reset(c);
    free(c->pipe);
    for (int i = 0; i < c->map.n; i++) rstore_free(c->conn[i]);
    free(c);
}

static rstore *conn_of(rcluster *c, int i) {
    if (!c->conn[i]) c->conn[i] = rstore_node_new(c->settings, c->map.node[i].host, c->map.node[i].port);
    if (!c->conn[i]) set_err(c, "out of memory");
    return c->conn[i];
}

void rcluster_script_added(rcluster *c, const char *lua_source) {
    for (int i = 0; i < c->map.n; i++)
        if (c->conn[i] && rstore_script_add(c->conn[i], lua_source) < 0) set_err(c, "out of memory");
}

/* Asks the nodes in turn for CLUSTER SLOTS, the last one to answer first. */
static int refresh(rcluster *c) {
    for (int k = 0, n = c->map.n; k < n; k++) {
        int i = (c->ask_first + k) % n;
        rstore *st = conn_of(c, i);
        if (!st) return -1;
        redisReply *r = rstore_command(st, "CLUSTER SLOTS");
        if (!r) {
            set_err(c, "%s", rstore_error(st));
            continue;
        }
        int rc = -1;
        if (r->type == REDIS_REPLY_ERROR)
            set_err(c, "redis %s:%d: CLUSTER SLOTS: %s", c->map.node[i].host, c->map.node[i].port, r->str);
        else rc = cluster_map_load(&c->map, r, c->map.node[i].host, c->err, sizeof c->err);
        freeReplyObject(r);
        if (rc == 0) {
            c->stale = false;
            c->ask_first = i;
            return 0;
        }
    }
    return -1;
}

int rcluster_connect(rcluster *c) {
    if (refresh(c) != 0) return -1;
    c->err[0] = '\0';
    return 0;
}

/* Reads the map when it was never read, or is stale and may be re-read. */
static int ensure_map(rcluster *c) {
    long long now = pa_mono_ms();
    if (c->map.loaded && !(c->stale && now >= c->next_refresh_ms)) return 0;
    c->next_refresh_ms = now + REFRESH_EVERY_MS;
    if (refresh(c) == 0 || c->map.loaded) return 0; /* a failed refresh keeps the old table */
    return -1;
}

static int any_master(rcluster *c) {
    if (c->last >= 0) return c->last;
    for (unsigned s = 0; s < REDIS_SLOTS; s++)
        if (c->map.owner[s] >= 0) return c->map.owner[s];
    set_err(c, "the cluster has no master");
    return -1;
}

static int owner_of(rcluster *c, const char *key, size_t len) {
    unsigned slot = redis_slot_of(key, len);
    int o = c->map.owner[slot];
    if (o < 0) {
        set_err(c, "no master known for slot %u (the cluster map is incomplete)", slot);
        c->stale = true;
    }
    return o;
}

/* The node a command goes to, or -1 (c->err says why). */
static int route(rcluster *c, int argc, const char **argv, const size_t *argvlen) {
    int ki = cluster_key_index(argc, argv, argvlen);
    if (ki < 0) return any_master(c);
    return owner_of(c, argv[ki], argvlen ? argvlen[ki] : strlen(argv[ki]));
}

/* The command on one node, preceded by ASKING in the same write when asked. */
static redisReply *send_one(rcluster *c, int node, bool asking, int argc, const char **argv, const size_t *argvlen) {
    rstore *st = conn_of(c, node);
    if (!st) return NULL;
    if (!asking) return rstore_commandargv(st, argc, argv, argvlen);
    const char *ask[] = {"ASKING"};
    if (rstore_append_argv(st, 1, ask, NULL) != 0 || rstore_append_argv(st, argc, argv, argvlen) != 0) return NULL;
    redisReply *a = rstore_get_reply(st);
    if (!a) return NULL;
    freeReplyObject(a);
    return rstore_get_reply(st);
}

/* A reply that means "the same command again, a little later". */
static bool retryable(const redisReply *r) {
    return starts(r, "TRYAGAIN") || (r->type == REDIS_REPLY_ERROR && strstr(r->str, "non local key"));
}

typedef struct run_state {
    int node;      /* where the command goes next */
    bool asking;   /* precede it with ASKING (after an ASK) */
    int redirects; /* MOVED and ASK followed so far */
    int retries;   /* TRYAGAIN waits so far */
    bool loaded;   /* NOSCRIPT: the script was loaded on the node once */
} run_state;

/* What to do with an error reply: 1 send again (st updated), 0 hand it to
 * the caller, -1 fail (c->err says why). Frees r unless it returns 0. */
static int on_error(rcluster *c, run_state *st, redisReply *r, const char **argv, const size_t *argvlen) {
    unsigned slot;
    char host[256];
    int port;
    cluster_redirect k = cluster_redirect_parse(r->str, c->map.node[st->node].host, &slot, host, sizeof host, &port);
    if (k != CLUSTER_REDIRECT_NONE) {
        int to = ++st->redirects > REDIRECTS_MAX ? -2 : cluster_map_node(&c->map, host, port);
        if (to < 0)
            set_err(c, to == -2 ? "more than %d redirects (last: %.150s)" : "too many nodes (%d) for: %.150s",
                    to == -2 ? REDIRECTS_MAX : CLUSTER_NODES_MAX, r->str);
        else if (k == CLUSTER_REDIRECT_MOVED) c->map.owner[slot] = (int16_t)to, c->stale = true;
        st->asking = k == CLUSTER_REDIRECT_ASK;
        st->node = to;
        freeReplyObject(r);
        return to < 0 ? -1 : 1;
    }
    if (retryable(r)) {
        if (st->retries == RETRIES_MAX) set_err(c, "still refused after %d retries: %.150s", RETRIES_MAX, r->str);
        else sleep_ms(RETRY_FIRST_MS << st->retries);
        freeReplyObject(r);
        return st->retries++ == RETRIES_MAX ? -1 : 1;
    }
    if (starts(r, "READONLY") || starts(r, "CLUSTERDOWN")) {
        rstore_node_drop(c->conn[st->node], r->str);
        c->stale = true;
        c->next_refresh_ms = 0;
        return 0;
    }
    size_t l0 = argvlen ? argvlen[0] : strlen(argv[0]);
    if (starts(r, "NOSCRIPT") && !st->loaded && l0 == 7 && strncmp(argv[0], "EVALSHA", 7) == 0) {
        int idx = rstore_node_script_find(c->conn[st->node], argv[1], argvlen ? argvlen[1] : strlen(argv[1]));
        if (idx >= 0 && rstore_node_load_script(c->conn[st->node], idx) == 0) {
            st->loaded = true;
            freeReplyObject(r);
            return 1;
        }
    }
    return 0;
}

/* Sends a command to `node` (or where it routes, if -1) and follows the
 * cluster's answers. */
static redisReply *run(rcluster *c, int node, int argc, const char **argv, const size_t *argvlen) {
    if (ensure_map(c) != 0) return NULL;
    run_state st = {.node = node >= 0 ? node : route(c, argc, argv, argvlen)};
    if (st.node < 0) return NULL;
    for (;;) {
        c->last = st.node;
        redisReply *r = send_one(c, st.node, st.asking, argc, argv, argvlen);
        if (!r) {
            if (c->conn[st.node]) set_err(c, "%s", rstore_error(c->conn[st.node]));
            c->stale = true;
            return NULL;
        }
        if (r->type != REDIS_REPLY_ERROR) return r;
        int what = on_error(c, &st, r, argv, argvlen);
        if (what == 0) return r;
        if (what < 0) return NULL;
    }
}

redisReply *rcluster_commandargv(rcluster *c, int argc, const char **argv, const size_t *argvlen) {
    pipe_reset(c); /* replies of a pipeline the caller left unread are dropped */
    return run(c, -1, argc, argv, argvlen);
}

redisReply *rcluster_command_at(rcluster *c, const char *key, size_t keylen, int argc, const char **argv,
                                const size_t *argvlen) {
    pipe_reset(c);
    if (ensure_map(c) != 0) return NULL;
    int node = owner_of(c, key, keylen);
    return node < 0 ? NULL : run(c, node, argc, argv, argvlen);
}

int rcluster_append(rcluster *c, int argc, const char **argv, const size_t *argvlen) {
    if (c->npipe == c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        pipe_cmd *n = realloc(c->pipe, (size_t)cap * sizeof *n);
        if (!n) goto oom;
        c->pipe = n, c->cap = cap;
    }
    size_t bytes = 0;
    for (int i = 0; i < argc; i++) bytes += argvlen ? argvlen[i] : strlen(argv[i]);
    pipe_cmd *p = &c->pipe[c->npipe];
    char *block = malloc((size_t)argc * (sizeof(char *) + sizeof(size_t)) + bytes + (size_t)argc);
    if (!block) goto oom;
    p->argv = (const char **)(void *)block;
    p->argvlen = (size_t *)(void *)(block + (size_t)argc * sizeof(char *));
    char *data = block + (size_t)argc * (sizeof(char *) + sizeof(size_t));
    for (int i = 0; i < argc; i++) {
        size_t l = argvlen ? argvlen[i] : strlen(argv[i]);
        memcpy(data, argv[i], l);
        data[l] = '\0'; /* so a copied argument can be read as a string too */
        p->argv[i] = data, p->argvlen[i] = l;
        data += l + 1;
    }
    p->argc = argc;
    p->node = -1;
    p->reply = NULL;
    p->why[0] = '\0';
    c->npipe++;
    return 0;
oom:
    set_err(c, "out of memory");
    return -1;
}

/* Where each unsent command goes; keyless ones go with a neighbour. */
static void route_pipe(rcluster *c, int from, int to) {
    for (int i = from; i < to; i++) {
        pipe_cmd *p = &c->pipe[i];
        int ki = cluster_key_index(p->argc, p->argv, p->argvlen);
        p->node = ki < 0 ? -2 : owner_of(c, p->argv[ki], p->argvlen[ki]);
        if (p->node == -1) snprintf(p->why, sizeof p->why, "%s", c->err);
    }
    for (int i = from; i < to; i++) {
        if (c->pipe[i].node != -2) continue;
        int j = i + 1;
        while (j < to && c->pipe[j].node < 0) j++;
        int prev = i > from ? c->pipe[i - 1].node : -1;
        c->pipe[i].node = j < to ? c->pipe[j].node : prev >= 0 ? prev : any_master(c);
        if (c->pipe[i].node < 0) snprintf(c->pipe[i].why, sizeof c->pipe[i].why, "%s", c->err);
    }
}

/* Writes every node's share of the pipeline before reading any reply. */
static void write_pipe(rcluster *c, int from, int to) {
    bool touched[CLUSTER_NODES_MAX] = {false};
    for (int i = from; i < to; i++) {
        pipe_cmd *p = &c->pipe[i];
        if (p->node < 0) continue;
        rstore *st = conn_of(c, p->node);
        if (!st || rstore_append_argv(st, p->argc, p->argv, p->argvlen) != 0) {
            snprintf(p->why, sizeof p->why, "%s", st ? rstore_error(st) : "out of memory");
            p->node = -1;
            continue;
        }
        touched[p->node] = true;
    }
    for (int n = 0; n < c->map.n; n++) {
        redisContext *ctx = touched[n] ? rstore_context(c->conn[n]) : NULL;
        int done = 0;
        while (ctx && !done && redisBufferWrite(ctx, &done) == REDIS_OK) {
        }
    }
}

/* After every reply is in: redirected commands are re-sent alone. */
static void settle_pipe(rcluster *c, int from, int to) {
    for (int i = from; i < to; i++) {
        pipe_cmd *p = &c->pipe[i];
        redisReply *r = p->reply;
        if (!r || r->type != REDIS_REPLY_ERROR) continue;
        if (!retryable(r) && !starts(r, "MOVED ") && !starts(r, "ASK ")) {
            run_state st = {.node = p->node};
            if (starts(r, "READONLY") || starts(r, "CLUSTERDOWN")) on_error(c, &st, r, p->argv, p->argvlen);
            continue;
        }
        freeReplyObject(r);
        p->reply = run(c, -1, p->argc, p->argv, p->argvlen);
        if (!p->reply) snprintf(p->why, sizeof p->why, "%s", c->err);
    }
}

static void send_pipe(rcluster *c) {
    int from = c->sent, to = c->npipe;
    c->sent = to;
    if (ensure_map(c) != 0) {
        for (int i = from; i < to; i++) snprintf(c->pipe[i].why, sizeof c->pipe[i].why, "%s", c->err);
        return;
    }
    route_pipe(c, from, to);
    write_pipe(c, from, to);
    for (int i = from; i < to; i++) {
        pipe_cmd *p = &c->pipe[i];
        if (p->node < 0) continue;
        c->last = p->node;
        if (!(p->reply = rstore_get_reply(c->conn[p->node]))) {
            snprintf(p->why, sizeof p->why, "%s", rstore_error(c->conn[p->node]));
            c->stale = true;
        }
    }
    settle_pipe(c, from, to);
}

redisReply *rcluster_get_reply(rcluster *c) {
    if (c->next >= c->npipe) {
        set_err(c, "no pipelined command is waiting for a reply");
        return NULL;
    }
    if (c->next >= c->sent) send_pipe(c);
    pipe_cmd *p = &c->pipe[c->next++];
    redisReply *r = p->reply;
    p->reply = NULL;
    if (!r) set_err(c, "%s", p->why[0] ? p->why : "no reply");
    if (c->next == c->npipe) pipe_reset(c);
    return r;
}

int rcluster_command_all(rcluster *c, rstore_each_fn each, void *arg, int argc, const char **argv,
                         const size_t *argvlen) {
    pipe_reset(c);
    if (ensure_map(c) != 0) return -1;
    int rc = 0;
    for (int i = 0; i < c->map.n; i++) {
        if (!cluster_map_is_master(&c->map, i)) continue;
        rstore *st = conn_of(c, i);
        redisReply *r = st ? rstore_commandargv(st, argc, argv, argvlen) : NULL;
        char name[300];
        snprintf(name, sizeof name, "%s:%d", c->map.node[i].host, c->map.node[i].port);
        if (each) each(arg, name, r);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            if (rc == 0) set_err(c, "redis %s: %.200s", name, r ? r->str : st ? rstore_error(st) : "out of memory");
            rc = -1;
            if (!r) c->stale = true;
        }
        if (r) freeReplyObject(r);
    }
    return rc;
}

redisContext *rcluster_context_for_key(rcluster *c, const char *key, size_t keylen) {
    pipe_reset(c);
    if (ensure_map(c) != 0) return NULL;
    int node = owner_of(c, key, keylen);
    rstore *st = node < 0 ? NULL : conn_of(c, node);
    redisContext *ctx = st ? rstore_context(st) : NULL;
    if (st && !ctx) set_err(c, "%s", rstore_error(st));
    return ctx;
}

bool rcluster_connected(const rcluster *c) {
    if (!c->map.loaded) return false;
    for (int i = 0; i < c->map.n; i++)
        if (cluster_map_is_master(&c->map, i) && !(c->conn[i] && rstore_connected(c->conn[i]))) return false;
    return true;
}

const char *rcluster_error(const rcluster *c) { return c->err[0] ? c->err : "no error"; }
