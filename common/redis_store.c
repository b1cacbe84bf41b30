/* redis_store.c -- one hiredis connection that heals itself.
 *
 * Design: hiredis gives a blocking context that is unusable after any I/O
 * error or timeout. We wrap it so that a broken context is dropped at once
 * and rebuilt later, never on a hot loop: after a failure the next attempt
 * waits 50 ms, then 100, 200 ... up to 2 s. Until then every command fails
 * immediately with the last error, so a server whose store is down answers
 * UNAVAILABLE in microseconds instead of queueing threads behind connect
 * timeouts. A successful connect resets the backoff.
 *
 * Connecting means: TCP (or unix socket) with a connect timeout, socket
 * send/receive timeouts for commands, TCP keepalive, AUTH as the ACL user
 * from the URL (password from the URL or a file), SELECT, and SCRIPT LOAD of
 * every registered script. Script SHAs are computed locally, so EVALSHA can
 * be sent before Redis has told us anything; a NOSCRIPT answer (Redis was
 * restarted from an AOF, or SCRIPT FLUSH ran) reloads the script and retries
 * once.
 *
 * Sentinel mode (redis-sentinel:// URLs) only changes where a connect goes:
 * before each connect the sentinels are asked for the primary
 * (redis_sentinel.c), after the handshake ROLE must say "master", and a
 * READONLY error reply drops the connection so the next command asks
 * again. Everything else -- fail fast, backoff, NOSCRIPT -- is the same,
 * so a failover looks to callers like a short Redis outage.
 *
 * Cluster mode (redis-cluster:// URLs) hands every call to the router
 * (redis_cluster_store.c), which keeps one store like this one per node
 * (rstore_node_new below): the cluster-mode store itself never connects.
 *
 * No message produced here ever contains the password. */
#include "redis_store.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "clock.h"
#include "hex.h"
#include "log.h"
#include "metrics.h"
#include "redis_cluster_store.h"
#include "redis_sentinel.h"
#include "redis_store_node.h"

#define BACKOFF_FIRST_MS 50
#define BACKOFF_MAX_MS 2000

typedef struct rscript {
    char *source;      /* Lua source, sent again on NOSCRIPT */
    char sha[41];      /* hex SHA-1 of source, what EVALSHA names */
} rscript;

struct rstore {
    char host[256];          /* host name, address, or unix socket path; in sentinel
                                mode the primary last named ("" before that) */
    int port;                /* TCP port; 0 for a unix socket */
    sentinel_set *sentinels; /* NULL unless the URL is redis-sentinel:// */
    rcluster *cluster;       /* NULL unless the URL is redis-cluster://: then it does all the I/O */
    metric *followed;        /* pa_redis_failovers_followed_total (sentinel mode) */
    char user[128];          /* ACL user; empty means the default user */
    char password[256];      /* from the URL or the password file */
    int db;                  /* SELECTed after AUTH when not 0 */
    int connect_timeout_ms;  /* bounds connect(2) */
    int command_timeout_ms;  /* bounds every read and write */
    redisContext *ctx;       /* NULL while disconnected */
    rscript *scripts;        /* registered scripts, loaded on every connect */
    int nscripts;
    int backoff_ms;          /* current wait between reconnects; 0 when healthy */
    long long next_try_ms;   /* monotonic time before which we do not reconnect */
    int pending;             /* pipelined replies not yet read */
    char err[256];           /* why the last operation failed */
};

static struct timeval ms_to_tv(int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* Copies [s, s+n) into out with %XX decoded. */
static int pct_decode(const char *s, size_t n, char *out, size_t outlen) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int a = pa_hex_digit((unsigned char)s[i + 1]), b = pa_hex_digit((unsigned char)s[i + 2]);
            if (a < 0 || b < 0) return -1;
            c = a * 16 + b;
            i += 2;
        }
        if (o + 1 >= outlen) return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

static int copy_str(char *dst, size_t n, const char *src, size_t len) {
    if (len >= n) return -1;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

static int parse_uint(const char *s, size_t n, long max, int *out) {
    if (n == 0 || n > 9) return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max) return -1;
    *out = (int)v;
    return 0;
}

/* host[:port] or [v6]:port, up to `end`. */
static int parse_hostport(const char *p, const char *end, char *host, size_t hostlen, int *port) {
    const char *colon;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close || copy_str(host, hostlen, p + 1, (size_t)(close - p - 1)) != 0) return -1;
        if (close + 1 == end) return 0;
        if (close[1] != ':') return -1;
        colon = close + 1;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        size_t hl = (size_t)((colon ? colon : end) - p);
        if (hl == 0) return copy_str(host, hostlen, "127.0.0.1", 9);
        if (copy_str(host, hostlen, p, hl) != 0) return -1;
        if (!colon) return 0;
    }
    if (parse_uint(colon + 1, (size_t)(end - colon - 1), 65535, port) != 0 || *port == 0) return -1;
    return 0;
}

/* [user[:password]@] at p, before `end`; *rest gets what follows it. */
static int parse_userinfo(const char *p, const char *end, char *user, size_t userlen, char *password, size_t passlen,
                          const char **rest) {
    const char *auth_end = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@') auth_end = q; /* the last '@' ends the user info */
    *rest = p;
    if (!auth_end) return 0;
    const char *colon = memchr(p, ':', (size_t)(auth_end - p));
    const char *uend = colon ? colon : auth_end;
    if (pct_decode(p, (size_t)(uend - p), user, userlen) != 0) return -1;
    if (colon && pct_decode(colon + 1, (size_t)(auth_end - colon - 1), password, passlen) != 0) return -1;
    *rest = auth_end + 1;
    return 0;
}

#define SENTINEL_SCHEME "redis-sentinel://"

/* redis-sentinel://[user[:password]@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/db] */
static int parse_sentinel_url(const char *url, sentinel_set *ss, char *user, size_t userlen, char *password,
                              size_t passlen, int *db) {
    const char *p = url + strlen(SENTINEL_SCHEME), *end = p + strlen(p);
    const char *slash = memchr(p, '/', (size_t)(end - p));
    if (!slash || parse_userinfo(p, slash, user, userlen, password, passlen, &p) != 0) return -1;
    for (;;) { /* every address, none empty */
        const char *comma = memchr(p, ',', (size_t)(slash - p)), *stop = comma ? comma : slash;
        if (ss->n == SENTINELS_MAX || stop == p) return -1;
        sentinel_addr *a = &ss->addr[ss->n++];
        a->port = SENTINEL_DEFAULT_PORT;
        if (parse_hostport(p, stop, a->host, sizeof a->host, &a->port) != 0) return -1;
        if (!comma) break;
        p = comma + 1;
    }
    const char *name = slash + 1, *next = memchr(name, '/', (size_t)(end - name)), *nend = next ? next : end;
    if (ss->n == 0 || nend == name || copy_str(ss->master, sizeof ss->master, name, (size_t)(nend - name)) != 0)
        return -1;
    for (const char *q = name; q < nend; q++)
        if (!isgraph((unsigned char)*q)) return -1;
    return next && parse_uint(next + 1, (size_t)(end - next - 1), 1 << 20, db) != 0 ? -1 : 0;
}

#define CLUSTER_SCHEME "redis-cluster://"
#define CLUSTER_SEEDS_MAX 16

typedef struct cluster_seeds {
    cluster_node node[CLUSTER_SEEDS_MAX]; /* from the URL, in its order */
    int n;
} cluster_seeds;

/* redis-cluster://[user[:password]@]HOST:PORT[,HOST:PORT...]; -1 with a
 * message saying what is wrong. */
static int parse_cluster_url(const char *url, cluster_seeds *cs, char *user, size_t userlen, char *password,
                             size_t passlen, char *err, size_t errlen) {
    const char *p = url + strlen(CLUSTER_SCHEME), *end = p + strlen(p);
    const char *slash = memchr(p, '/', (size_t)(end - p)), *stop = slash ? slash : end;
    if (parse_userinfo(p, stop, user, userlen, password, passlen, &p) != 0) {
        snprintf(err, errlen, "invalid redis-cluster:// URL: bad user or password encoding");
        return -1;
    }
    if (slash) {
        int db;
        bool digits = parse_uint(slash + 1, (size_t)(end - slash - 1), 1 << 20, &db) == 0;
        snprintf(err, errlen,
                 digits ? "redis-cluster:// URLs take no /db: a cluster has database 0 only"
                        : "redis-cluster:// URLs take no /NAME: a Sentinel master name does not "
                          "apply, Sentinel and cluster modes exclude each other");
        return -1;
    }
    if (p == stop) {
        snprintf(err, errlen, "redis-cluster:// URL names no seed node (expected HOST:PORT[,HOST:PORT...])");
        return -1;
    }
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(stop - p)), *e = comma ? comma : stop;
        cluster_node *nd = &cs->node[cs->n];
        nd->port = 0;
        if (cs->n == CLUSTER_SEEDS_MAX) {
            snprintf(err, errlen, "redis-cluster:// URL names more than %d seed nodes", CLUSTER_SEEDS_MAX);
            return -1;
        }
        if (e == p || parse_hostport(p, e, nd->host, sizeof nd->host, &nd->port) != 0 || nd->port == 0) {
            snprintf(err, errlen, "redis-cluster:// URL: bad seed address '%.*s' (expected HOST:PORT)",
                     (int)(e - p > 100 ? 100 : e - p), p);
            return -1;
        }
        cs->n++;
        if (!comma) return 0;
        p = comma + 1;
    }
}

int rstore_parse_url(const char *url, char *host, size_t hostlen, int *port, char *user,
                     size_t userlen, char *password, size_t passlen, int *db) {
    if (!url || hostlen == 0 || userlen == 0 || passlen == 0) return -1;
    *port = 6379;
    *db = 0;
    user[0] = password[0] = host[0] = '\0';
    if (strncmp(url, "unix:", 5) == 0) {
        const char *path = url + 5;
        if (strncmp(path, "//", 2) == 0) path += 2;
        *port = 0;
        return path[0] == '/' ? copy_str(host, hostlen, path, strlen(path)) : -1;
    }
    if (strncmp(url, "redis://", 8) != 0) return -1;
    const char *p = url + 8, *end = p + strlen(p);
    const char *slash = memchr(p, '/', (size_t)(end - p));
    if (parse_userinfo(p, slash ? slash : end, user, userlen, password, passlen, &p) != 0) return -1;
    if (parse_hostport(p, slash ? slash : end, host, hostlen, port) != 0) return -1;
    if (slash && slash + 1 < end && parse_uint(slash + 1, (size_t)(end - slash - 1), 1 << 20, db) != 0)
        return -1;
    return 0;
}

static int read_password_file(const char *path, char *out, size_t n, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read Redis password file %s: %s", path, strerror(errno));
        return -1;
    }
    char *ok = fgets(out, (int)n, f);
    fclose(f);
    size_t l = ok ? strlen(out) : 0;
    while (l > 0 && isspace((unsigned char)out[l - 1])) out[--l] = '\0';
    if (l == 0) {
        snprintf(err, errlen, "Redis password file %s is empty", path);
        return -1;
    }
    return 0;
}

__attribute__((format(printf, 2, 3))) static void set_err(rstore *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
}

static const char *where(const rstore *s, char *buf, size_t n) {
    if (s->sentinels && !s->host[0]) snprintf(buf, n, "master '%s'", s->sentinels->master);
    else if (s->port) snprintf(buf, n, "%s:%d", s->host, s->port);
    else snprintf(buf, n, "%s", s->host);
    return buf;
}

/* Forgets a broken connection and schedules the next attempt. */
static void drop(rstore *s, const char *why) {
    char w[300];
    if (why) set_err(s, "redis %s: %s", where(s, w, sizeof w), why);
    if (s->ctx) redisFree(s->ctx);
    s->ctx = NULL;
    s->pending = 0;
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_FIRST_MS;
    if (s->backoff_ms > BACKOFF_MAX_MS) s->backoff_ms = BACKOFF_MAX_MS;
    s->next_try_ms = pa_mono_ms() + s->backoff_ms;
}

/* Runs one setup command on a fresh context; -1 with s->err on failure. */
static int setup_cmd(rstore *s, int argc, const char **argv, const char *what) {
    redisReply *r = redisCommandArgv(s->ctx, argc, argv, NULL);
    if (!r) {
        set_err(s, "%s: %s", what, s->ctx->errstr);
        return -1;
    }
    int ok = r->type != REDIS_REPLY_ERROR;
    if (!ok) set_err(s, "%s: %s", what, r->str);
    freeReplyObject(r);
    return ok ? 0 : -1;
}

static int load_script(rstore *s, int i) {
    const char *argv[] = {"SCRIPT", "LOAD", s->scripts[i].source};
    return setup_cmd(s, 3, argv, "SCRIPT LOAD");
}

static int handshake(rstore *s) {
    char what[200], dbs[16];
    if (s->password[0]) {
        snprintf(what, sizeof what, "AUTH as user '%s'", s->user[0] ? s->user : "default");
        const char *a2[] = {"AUTH", s->password}, *a3[] = {"AUTH", s->user, s->password};
        if (s->user[0] ? setup_cmd(s, 3, a3, what) : setup_cmd(s, 2, a2, what)) return -1;
    }
    if (s->db) {
        snprintf(dbs, sizeof dbs, "%d", s->db);
        const char *a[] = {"SELECT", dbs};
        if (setup_cmd(s, 2, a, "SELECT")) return -1;
    }
    for (int i = 0; i < s->nscripts; i++)
        if (load_script(s, i)) return -1;
    return 0;
}

/* Sentinel mode: asks where the primary is now and notes a move. */
static int locate_primary(rstore *s) {
    char host[sizeof s->host];
    int port = 0;
    if (sentinel_ask(s->sentinels, s->connect_timeout_ms, host, sizeof host, &port, s->err, sizeof s->err) != 0)
        return -1;
    if (s->host[0] && (strcmp(host, s->host) != 0 || port != s->port)) {
        char from[300];
        log_info("redis.failover_followed", LOG_S("master", s->sentinels->master),
                 LOG_S("from", where(s, from, sizeof from)), LOG_S("to", host), LOG_I("to_port", port), LOG_END);
        metric_inc(s->followed);
    }
    memcpy(s->host, host, sizeof host);
    s->port = port;
    return 0;
}

/* Sentinel mode: the node must say it is the primary (a sentinel may not
 * have heard of a failover yet, or the old primary came back as one). */
static int check_role(rstore *s) {
    redisReply *r = redisCommand(s->ctx, "ROLE");
    if (!r) {
        set_err(s, "ROLE: %s", s->ctx->errstr);
        return -1;
    }
    int ok = 0;
    if (r->type == REDIS_REPLY_ERROR)
        set_err(s, "ROLE: %s (following a failover needs +role for the ACL user)", r->str);
    else if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING)
        set_err(s, "ROLE: unexpected reply");
    else if (strcmp(r->element[0]->str, "master") != 0)
        set_err(s, "the node the sentinels named is a %s, not the primary (a failover is under way)",
                r->element[0]->str);
    else ok = 1;
    freeReplyObject(r);
    return ok ? 0 : -1;
}

static int do_connect(rstore *s) {
    char why[sizeof s->err];
    if (s->sentinels && locate_primary(s) != 0) {
        drop(s, NULL);
        return -1;
    }
    struct timeval ct = ms_to_tv(s->connect_timeout_ms);
    s->ctx = s->port ? redisConnectWithTimeout(s->host, s->port, ct)
                     : redisConnectUnixWithTimeout(s->host, ct);
    if (!s->ctx || s->ctx->err) {
        snprintf(why, sizeof why, "cannot connect: %s", s->ctx ? s->ctx->errstr : "out of memory");
        drop(s, why);
        return -1;
    }
    if (redisSetTimeout(s->ctx, ms_to_tv(s->command_timeout_ms)) != REDIS_OK) {
        drop(s, "cannot set socket timeouts");
        return -1;
    }
    if (s->port) redisEnableKeepAlive(s->ctx);
    if (handshake(s) != 0 || (s->sentinels && check_role(s) != 0)) {
        snprintf(why, sizeof why, "%s", s->err);
        drop(s, why);
        return -1;
    }
    s->backoff_ms = 0;
    s->err[0] = '\0';
    return 0;
}

/* Makes sure there is a usable context, reconnecting if the backoff allows. */
static int ensure(rstore *s) {
    if (s->ctx && s->ctx->err) {
        char why[160];
        snprintf(why, sizeof why, "connection lost: %s", s->ctx->errstr);
        drop(s, why);
    }
    if (s->ctx) return 0;
    if (pa_mono_ms() < s->next_try_ms) return -1; /* fail fast; s->err still says why */
    return do_connect(s);
}

/* Reads and discards pipelined replies the caller left unread, so the
 * next reply really belongs to the next command. */
static void drain(rstore *s) {
    while (s->pending > 0 && s->ctx) {
        redisReply *r = rstore_get_reply(s);
        if (!r) return;
        freeReplyObject(r);
    }
}

/* After a command: NULL means the context broke (I/O error, timeout, EOF). */
static redisReply *checked(rstore *s, redisReply *r) {
    if (!r) {
        char why[160];
        snprintf(why, sizeof why, "%s", s->ctx && s->ctx->errstr[0] ? s->ctx->errstr : "no reply");
        drop(s, why);
    } else if (s->sentinels && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "READONLY", 8) == 0) {
        drop(s, "the primary became a replica (READONLY); asking the sentinels again");
    }
    return r;
}

#define URL_FORMS                                                                     \
    "redis://[user[:password]@]host[:port][/db], unix:/path, "                        \
    "redis-sentinel://[user[:password]@]host[:port][,host[:port]...]/master[/db] or " \
    "redis-cluster://[user[:password]@]host:port[,host:port...]"

/* Cluster mode: the seeds, and the router made from them. */
static int config_cluster(rstore *s, const char *url, char *err, size_t errlen) {
    cluster_seeds cs = {.n = 0};
    if (parse_cluster_url(url, &cs, s->user, sizeof s->user, s->password, sizeof s->password, err, errlen) != 0)
        return -1;
    if (!(s->cluster = rcluster_new(s, cs.node, cs.n))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Fills the address, user, password and db (or the sentinel set) from url. */
static int parse_config_url(rstore *s, const char *url, char *err, size_t errlen) {
    int rc;
    if (url && strncmp(url, CLUSTER_SCHEME, strlen(CLUSTER_SCHEME)) == 0) return config_cluster(s, url, err, errlen);
    if (url && strncmp(url, SENTINEL_SCHEME, strlen(SENTINEL_SCHEME)) == 0) {
        if (!(s->sentinels = calloc(1, sizeof *s->sentinels))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        rc = parse_sentinel_url(url, s->sentinels, s->user, sizeof s->user, s->password, sizeof s->password, &s->db);
        s->followed = metric_counter("pa_redis_failovers_followed_total",
                                     "times a Redis connection moved to a new primary the sentinels named", "");
    } else {
        rc = rstore_parse_url(url, s->host, sizeof s->host, &s->port, s->user, sizeof s->user, s->password,
                              sizeof s->password, &s->db);
    }
    if (rc != 0) snprintf(err, errlen, "invalid Redis URL (expected " URL_FORMS ")");
    return rc;
}

bool rstore_url_check(const char *url, char *err, size_t errlen) {
    rstore *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    bool ok = parse_config_url(s, url, err, errlen) == 0;
    rstore_free(s);
    return ok;
}

rstore *rstore_new(const rstore_config *cfg, bool lazy, char *err, size_t errlen) {
    rstore *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (parse_config_url(s, cfg->url, err, errlen) != 0) {
        rstore_free(s); /* a URL that failed late may have left its password behind */
        return NULL;
    }
    if (s->cluster && cfg->sentinel_password_file) {
        snprintf(err, errlen,
                 "a sentinel password file was given with a redis-cluster:// URL: Sentinel and "
                 "cluster modes exclude each other");
        rstore_free(s);
        return NULL;
    }
    if (s->sentinels && cfg->sentinel_password_file &&
        read_password_file(cfg->sentinel_password_file, s->sentinels->password, sizeof s->sentinels->password, err,
                           errlen) != 0) {
        rstore_free(s);
        return NULL;
    }
    if (cfg->password_file &&
        read_password_file(cfg->password_file, s->password, sizeof s->password, err, errlen) != 0) {
        rstore_free(s);
        return NULL;
    }
    if (s->user[0] && !s->password[0]) {
        snprintf(err, errlen, "Redis URL names user '%s' but gives no password (put it in the URL "
                              "or a password file)", s->user);
        rstore_free(s);
        return NULL;
    }
    s->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 500;
    s->command_timeout_ms = cfg->command_timeout_ms > 0 ? cfg->command_timeout_ms : 1000;
    if (s->cluster && !lazy && rcluster_connect(s->cluster) != 0) {
        snprintf(err, errlen, "%s", rcluster_error(s->cluster));
        rstore_free(s);
        return NULL;
    }
    if (!s->cluster && !lazy && do_connect(s) != 0) {
        snprintf(err, errlen, "%s", s->err);
        rstore_free(s);
        return NULL;
    }
    return s;
}

void rstore_free(rstore *s) {
    if (!s) return;
    if (s->ctx) redisFree(s->ctx);
    rcluster_free(s->cluster);
    for (int i = 0; i < s->nscripts; i++) free(s->scripts[i].source);
    free(s->scripts);
    OPENSSL_cleanse(s->password, sizeof s->password); /* a memset before free may be optimised away */
    if (s->sentinels) OPENSSL_cleanse(s->sentinels, sizeof *s->sentinels);
    free(s->sentinels);
    free(s);
}

static int sha1_hex(const char *src, char out[41]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(src, strlen(src), md, &n, EVP_sha1(), NULL) || n != 20) return -1;
    pa_hex_encode(md, n, out);
    return 0;
}

int rstore_script_add(rstore *s, const char *lua_source) {
    rscript *n = realloc(s->scripts, (size_t)(s->nscripts + 1) * sizeof *n);
    if (!n) return -1;
    s->scripts = n;
    rscript *sc = &s->scripts[s->nscripts];
    if (sha1_hex(lua_source, sc->sha) != 0 || !(sc->source = strdup(lua_source))) return -1;
    int idx = s->nscripts++;
    if (s->cluster) rcluster_script_added(s->cluster, lua_source);
    /* Already connected: load now. If that fails, NOSCRIPT will load it later. */
    if (s->ctx && !s->ctx->err && s->pending == 0) load_script(s, idx);
    return idx;
}

/* Cluster mode: a printf-style command as an argument vector, sent to
 * where it routes (key NULL) or to the master of key's slot. */
static redisReply *cluster_vcommand(rstore *s, const char *key, size_t keylen, const char *fmt, va_list ap) {
    char *cmd = NULL;
    const char **argv = NULL;
    size_t *argvlen = NULL;
    int len = redisvFormatCommand(&cmd, fmt, ap), argc = -1;
    s->err[0] = '\0';
    if (len < 0 || (argc = cluster_resp_split(cmd, (size_t)len, &argv, &argvlen)) < 0) {
        set_err(s, "cannot format the command '%.40s'", fmt);
        free(cmd);
        return NULL;
    }
    redisReply *r = key ? rcluster_command_at(s->cluster, key, keylen, argc, argv, argvlen)
                        : rcluster_commandargv(s->cluster, argc, argv, argvlen);
    free(argv);
    free(argvlen);
    redisFreeCommand(cmd);
    return r;
}

static redisReply *single_vcommand(rstore *s, const char *fmt, va_list ap) {
    drain(s);
    if (ensure(s) != 0) return NULL;
    return checked(s, redisvCommand(s->ctx, fmt, ap));
}

redisReply *rstore_command(rstore *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = s->cluster ? cluster_vcommand(s, NULL, 0, fmt, ap) : single_vcommand(s, fmt, ap);
    va_end(ap);
    return r;
}

redisReply *rstore_command_at(rstore *s, const char *key, size_t keylen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = s->cluster ? cluster_vcommand(s, key, keylen, fmt, ap) : single_vcommand(s, fmt, ap);
    va_end(ap);
    return r;
}

redisReply *rstore_commandargv(rstore *s, int argc, const char **argv, const size_t *argvlen) {
    if (s->cluster) {
        s->err[0] = '\0';
        return rcluster_commandargv(s->cluster, argc, argv, argvlen);
    }
    drain(s);
    if (ensure(s) != 0) return NULL;
    return checked(s, redisCommandArgv(s->ctx, argc, argv, argvlen));
}

static bool is_noscript(const redisReply *r) {
    return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* EVALSHA's argument vector for script `idx`: in the caller's stack arrays
 * when they hold it, else allocated (free with evalsha_argv_free). -1 on
 * a bad script or out of memory (s->err says which). */
typedef struct evalsha_argv {
    const char *stack_v[32]; /* most scripts' arguments fit here */
    size_t stack_l[32];
    const char **v;
    size_t *l;
    int n;
    char nk[16]; /* nkeys, decimal */
} evalsha_argv;

static void evalsha_argv_free(evalsha_argv *e) {
    if (e->v != e->stack_v) free(e->v);
    if (e->l != e->stack_l) free(e->l);
}

static int evalsha_argv_make(rstore *s, evalsha_argv *e, int idx, int nkeys, int nargs, const char **argv,
                             const size_t *argvlen) {
    e->v = e->stack_v;
    e->l = e->stack_l;
    if (idx < 0 || idx >= s->nscripts || nkeys < 0 || nargs < 0) {
        set_err(s, "rstore_eval: no script %d", idx);
        return -1;
    }
    e->n = 3 + nkeys + nargs;
    if (e->n > 32) {
        e->v = malloc((size_t)e->n * sizeof *e->v);
        e->l = malloc((size_t)e->n * sizeof *e->l);
    }
    if (!e->v || !e->l) {
        set_err(s, "out of memory");
        return -1;
    }
    snprintf(e->nk, sizeof e->nk, "%d", nkeys);
    e->v[0] = "EVALSHA", e->l[0] = 7;
    e->v[1] = s->scripts[idx].sha, e->l[1] = 40;
    e->v[2] = e->nk, e->l[2] = strlen(e->nk);
    for (int i = 0; i < nkeys + nargs; i++) {
        e->v[3 + i] = argv[i];
        e->l[3 + i] = argvlen ? argvlen[i] : strlen(argv[i]);
    }
    return 0;
}

/* Cluster mode: 0 when all of a script's KEYS share one slot, else -1 with
 * the two keys that differ named in s->err (nothing is sent). */
static int same_slot(rstore *s, int nkeys, const char **keys, const size_t *lens) {
    if (!s->cluster || nkeys < 2) return 0;
    size_t l0 = lens ? lens[0] : strlen(keys[0]);
    unsigned first = redis_slot_of(keys[0], l0);
    for (int i = 1; i < nkeys; i++) {
        size_t li = lens ? lens[i] : strlen(keys[i]);
        unsigned si = redis_slot_of(keys[i], li);
        if (si == first) continue;
        set_err(s,
                "script keys '%.*s' and '%.*s' are in different hash slots (%u, %u): a cluster runs a script "
                "on one slot only",
                (int)(l0 > 80 ? 80 : l0), keys[0], (int)(li > 80 ? 80 : li), keys[i], first, si);
        return -1;
    }
    return 0;
}

redisReply *rstore_eval(rstore *s, int idx, int nkeys, int nargs, const char **argv, const size_t *argvlen) {
    evalsha_argv e;
    redisReply *r = NULL;
    if (same_slot(s, nkeys, argv, argvlen) != 0) return NULL;
    int made = evalsha_argv_make(s, &e, idx, nkeys, nargs, argv, argvlen);
    if (made == 0 && s->cluster) {
        r = rstore_commandargv(s, e.n, e.v, e.l); /* the router loads a missing script on its node */
    } else if (made == 0) {
        r = rstore_commandargv(s, e.n, e.v, e.l);
        if (is_noscript(r)) {
            freeReplyObject(r);
            r = NULL;
            if (load_script(s, idx) == 0) r = rstore_commandargv(s, e.n, e.v, e.l);
            else if (s->ctx && s->ctx->err) drop(s, s->ctx->errstr);
        }
    }
    evalsha_argv_free(&e);
    return r;
}

int rstore_eval_append(rstore *s, int idx, int nkeys, int nargs, const char **argv, const size_t *argvlen) {
    evalsha_argv e;
    if (same_slot(s, nkeys, argv, argvlen) != 0) return -1;
    int rc = evalsha_argv_make(s, &e, idx, nkeys, nargs, argv, argvlen);
    if (rc == 0) rc = rstore_append_argv(s, e.n, e.v, e.l);
    evalsha_argv_free(&e);
    return rc;
}

bool rstore_reply_noscript(const redisReply *r) { return is_noscript(r); }

int rstore_append_argv(rstore *s, int argc, const char **argv, const size_t *argvlen) {
    if (s->cluster) return rcluster_append(s->cluster, argc, argv, argvlen);
    if (s->pending == 0 && ensure(s) != 0) return -1;
    if (!s->ctx) return -1;   /* the connection broke mid-pipeline */
    if (redisAppendCommandArgv(s->ctx, argc, argv, argvlen) != REDIS_OK) {
        set_err(s, "out of memory");
        return -1;
    }
    s->pending++;
    return 0;
}

redisReply *rstore_get_reply(rstore *s) {
    if (s->cluster) {
        s->err[0] = '\0';
        return rcluster_get_reply(s->cluster);
    }
    if (!s->ctx || s->pending <= 0) {
        if (!s->err[0]) set_err(s, "no pipelined command is waiting for a reply");
        return NULL;
    }
    void *r = NULL;
    if (redisGetReply(s->ctx, &r) != REDIS_OK) r = NULL;
    s->pending--;
    return checked(s, r);
}

bool rstore_connected(const rstore *s) {
    if (s->cluster) return rcluster_connected(s->cluster);
    return s->ctx && !s->ctx->err;
}

bool rstore_is_cluster(const rstore *s) { return s->cluster != NULL; }

const char *rstore_error(const rstore *s) {
    if (s->cluster && !s->err[0]) return rcluster_error(s->cluster);
    return s->err[0] ? s->err : "no error";
}

redisContext *rstore_context(rstore *s) {
    if (s->cluster) {
        set_err(s, "a cluster has no single connection (use rstore_context_for_key)");
        return NULL;
    }
    if (ensure(s) != 0) return NULL;
    return s->ctx;
}

redisContext *rstore_context_for_key(rstore *s, const char *key, size_t keylen) {
    if (!s->cluster) return rstore_context(s);
    s->err[0] = '\0';
    return rcluster_context_for_key(s->cluster, key, keylen);
}

int rstore_command_all(rstore *s, rstore_each_fn each, void *arg, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *cmd = NULL;
    const char **argv = NULL;
    size_t *argvlen = NULL;
    int len = redisvFormatCommand(&cmd, fmt, ap), argc = -1, rc = -1;
    va_end(ap);
    s->err[0] = '\0';
    if (len < 0 || (argc = cluster_resp_split(cmd, (size_t)len, &argv, &argvlen)) < 0) {
        set_err(s, "cannot format the command '%.40s'", fmt);
    } else if (s->cluster) {
        rc = rcluster_command_all(s->cluster, each, arg, argc, argv, argvlen);
    } else {
        redisReply *r = rstore_commandargv(s, argc, argv, argvlen);
        char name[300];
        if (each) each(arg, where(s, name, sizeof name), r);
        rc = r && r->type != REDIS_REPLY_ERROR ? 0 : -1;
        if (r && rc != 0) set_err(s, "redis %s: %.200s", name, r->str);
        if (r) freeReplyObject(r);
    }
    free(argv);
    free(argvlen);
    if (cmd) redisFreeCommand(cmd);
    return rc;
}

/* ---- node stores of the cluster router (redis_store_node.h) ---- */

rstore *rstore_node_new(const rstore *cs, const char *host, int port) {
    rstore *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    snprintf(s->host, sizeof s->host, "%s", host);
    s->port = port;
    memcpy(s->user, cs->user, sizeof s->user);
    memcpy(s->password, cs->password, sizeof s->password);
    s->connect_timeout_ms = cs->connect_timeout_ms;
    s->command_timeout_ms = cs->command_timeout_ms;
    for (int i = 0; i < cs->nscripts; i++)
        if (rstore_script_add(s, cs->scripts[i].source) < 0) {
            rstore_free(s);
            return NULL;
        }
    return s;
}

void rstore_node_drop(rstore *node, const char *why) {
    if (node && node->ctx) drop(node, why);
}

int rstore_node_script_find(const rstore *node, const char *sha, size_t len) {
    for (int i = 0; i < node->nscripts; i++)
        if (len == 40 && strncasecmp(node->scripts[i].sha, sha, 40) == 0) return i;
    return -1;
}

int rstore_node_load_script(rstore *node, int idx) {
    if (ensure(node) != 0) return -1;
    if (load_script(node, idx) == 0) return 0;
    if (node->ctx && node->ctx->err) drop(node, node->ctx->errstr);
    return -1;
}
