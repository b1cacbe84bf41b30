/* redis_cluster.c -- the cluster's shape as a client sees it (see
 * redis_cluster.h).
 *
 * The slot table is a flat 16384-entry array of node indexes (32 KiB per
 * store): a lookup per command is one load, and a CLUSTER SLOTS answer
 * rewrites it whole, so a reshard seen late never leaves a mix of old and
 * new ranges. Replicas in the answer are ignored: every call to the
 * activation store writes. */
#include "redis_cluster.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void cluster_map_init(cluster_map *m) {
    m->n = 0;
    m->loaded = false;
    for (unsigned s = 0; s < REDIS_SLOTS; s++) m->owner[s] = -1;
}

int cluster_map_node(cluster_map *m, const char *host, int port) {
    for (int i = 0; i < m->n; i++)
        if (m->node[i].port == port && strcmp(m->node[i].host, host) == 0) return i;
    if (m->n == CLUSTER_NODES_MAX || strlen(host) >= sizeof m->node[0].host) return -1;
    cluster_node *nd = &m->node[m->n];
    snprintf(nd->host, sizeof nd->host, "%s", host);
    nd->port = port;
    return m->n++;
}

bool cluster_map_is_master(const cluster_map *m, int i) {
    for (unsigned s = 0; s < REDIS_SLOTS; s++)
        if (m->owner[s] == i) return true;
    return false;
}

/* One range of a CLUSTER SLOTS answer: [start, end, [host, port, ...], replicas...]. */
static int read_range(const redisReply *e, const char *asked_host, unsigned *lo, unsigned *hi, const char **host,
                      int *port) {
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || e->element[0]->type != REDIS_REPLY_INTEGER ||
        e->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    long long a = e->element[0]->integer, b = e->element[1]->integer;
    const redisReply *m = e->element[2];
    if (a < 0 || b < a || b >= REDIS_SLOTS || m->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
        m->element[0]->type != REDIS_REPLY_STRING || m->element[1]->type != REDIS_REPLY_INTEGER ||
        m->element[1]->integer <= 0 || m->element[1]->integer > 65535)
        return -1;
    *lo = (unsigned)a, *hi = (unsigned)b;
    *host = m->element[0]->str;
    if (!**host || strcmp(*host, "?") == 0) *host = asked_host; /* no announced address: the node we asked */
    *port = (int)m->element[1]->integer;
    return 0;
}

int cluster_map_load(cluster_map *m, const redisReply *slots, const char *asked_host, char *err, size_t errlen) {
    if (!slots || slots->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "CLUSTER SLOTS: unexpected reply");
        return -1;
    }
    int16_t *owner = malloc(sizeof m->owner);
    if (!owner) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (unsigned s = 0; s < REDIS_SLOTS; s++) owner[s] = -1;
    for (size_t i = 0; i < slots->elements; i++) {
        unsigned lo, hi;
        const char *host;
        int port, idx;
        if (read_range(slots->element[i], asked_host, &lo, &hi, &host, &port) != 0) {
            snprintf(err, errlen, "CLUSTER SLOTS: malformed range %zu", i);
            free(owner);
            return -1;
        }
        if ((idx = cluster_map_node(m, host, port)) < 0) {
            snprintf(err, errlen, "CLUSTER SLOTS: more than %d nodes", CLUSTER_NODES_MAX);
            free(owner);
            return -1;
        }
        for (unsigned s = lo; s <= hi; s++) owner[s] = (int16_t)idx;
    }
    memcpy(m->owner, owner, sizeof m->owner);
    free(owner);
    m->loaded = true;
    return 0;
}

cluster_redirect cluster_redirect_parse(const char *msg, const char *from_host, unsigned *slot, char *host,
                                        size_t hostlen, int *port) {
    cluster_redirect kind;
    const char *p;
    if (strncmp(msg, "MOVED ", 6) == 0) kind = CLUSTER_REDIRECT_MOVED, p = msg + 6;
    else if (strncmp(msg, "ASK ", 4) == 0) kind = CLUSTER_REDIRECT_ASK, p = msg + 4;
    else return CLUSTER_REDIRECT_NONE;
    char *end;
    unsigned long s = strtoul(p, &end, 10);
    if (end == p || *end != ' ' || s >= REDIS_SLOTS) return CLUSTER_REDIRECT_NONE;
    const char *addr = end + 1, *colon = strrchr(addr, ':');
    if (!colon) return CLUSTER_REDIRECT_NONE;
    long pt = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || (*end && !isspace((unsigned char)*end)) || pt <= 0 || pt > 65535)
        return CLUSTER_REDIRECT_NONE;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') h++, hl -= 2; /* [v6]:port */
    if (hl == 0) h = from_host, hl = strlen(from_host);
    if (hl >= hostlen) return CLUSTER_REDIRECT_NONE;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *slot = (unsigned)s;
    *port = (int)pt;
    return kind;
}

static bool arg_is(const char *a, size_t len, const char *word) {
    return strlen(word) == len && strncasecmp(a, word, len) == 0;
}

/* Commands that name no key: they go where the caller's previous command went. */
static const char *const keyless[] = {"PING",   "INFO",     "TIME",     "WAIT",    "SCRIPT",  "ROLE",
                                      "ECHO",   "MULTI",    "EXEC",     "DISCARD", "CLUSTER", "ASKING",
                                      "AUTH",   "HELLO",    "SELECT",   "CLIENT",  "COMMAND", "CONFIG",
                                      "DBSIZE", "READONLY", "LASTSAVE", "SLOWLOG", "MEMORY",  NULL};

int cluster_key_index(int argc, const char **argv, const size_t *argvlen) {
    if (argc < 2) return -1;
    size_t l0 = argvlen ? argvlen[0] : strlen(argv[0]);
    for (const char *const *k = keyless; *k; k++)
        if (arg_is(argv[0], l0, *k)) return -1;
    if (arg_is(argv[0], l0, "EVALSHA") || arg_is(argv[0], l0, "EVAL") || arg_is(argv[0], l0, "EVALSHA_RO") ||
        arg_is(argv[0], l0, "EVAL_RO") || arg_is(argv[0], l0, "FCALL")) {
        return argc > 3 && argv[2][0] != '0' ? 3 : -1; /* numkeys 0: no key */
    }
    if (arg_is(argv[0], l0, "XREAD") || arg_is(argv[0], l0, "XREADGROUP")) {
        for (int i = 1; i + 1 < argc; i++)
            if (arg_is(argv[i], argvlen ? argvlen[i] : strlen(argv[i]), "STREAMS")) return i + 1;
        return -1;
    }
    return 1;
}

/* "<c><digits>\r\n" at *p; the number, advancing *p; -1 if malformed. */
static long resp_header(const char **p, const char *end, char c) {
    if (*p >= end || **p != c) return -1;
    char *e;
    long v = strtol(*p + 1, &e, 10);
    if (e == *p + 1 || e + 2 > end || e[0] != '\r' || e[1] != '\n' || v < 0) return -1;
    *p = e + 2;
    return v;
}

int cluster_resp_split(const char *cmd, size_t len, const char ***argv, size_t **argvlen) {
    const char *p = cmd, *end = cmd + len;
    long n = resp_header(&p, end, '*');
    if (n <= 0 || n > 1 << 20) return -1;
    *argv = malloc((size_t)n * sizeof **argv);
    *argvlen = malloc((size_t)n * sizeof **argvlen);
    if (!*argv || !*argvlen) goto bad;
    for (long i = 0; i < n; i++) {
        long l = resp_header(&p, end, '$');
        if (l < 0 || l + 2 > end - p) goto bad;
        (*argv)[i] = p;
        (*argvlen)[i] = (size_t)l;
        p += l + 2;
    }
    return (int)n;
bad:
    free(*argv);
    free(*argvlen);
    *argv = NULL, *argvlen = NULL;
    return -1;
}
