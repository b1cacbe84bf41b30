/* redis_store.h -- one hiredis connection that heals itself.
 *
 * Each worker thread owns one rstore; it is not shared, so there are no
 * locks on the hot path. Commands have a timeout. When the connection
 * breaks, the next command fails fast (no blocking reconnect storm) and a
 * reconnect is attempted on later commands with exponential backoff
 * (50 ms doubling to 2 s), so a server survives Redis going away and comes
 * back by itself when it returns.
 *
 * Sentinel: given redis-sentinel://[user[:password]@]HOST:PORT[,HOST:PORT...]/MASTER[/db]
 * instead of one address, the store asks the sentinels in turn (SENTINEL
 * get-master-addr-by-name MASTER) where the primary is, connects there,
 * and checks with ROLE that it really is a primary. A broken connection, a
 * READONLY answer (the primary became a replica) or a ROLE that is not
 * "master" makes the next connect ask the sentinels again, with the same
 * backoff; a move to a new address logs redis.failover_followed and counts
 * pa_redis_failovers_followed_total, no sentinel answering logs
 * redis.sentinel_unreachable (once per outage). The URL's user and password
 * are for the data nodes; sentinels that require a password get it from
 * sentinel_password_file (their requirepass, as the default user).
 *
 * Cluster: given redis-cluster://[user[:password]@]HOST:PORT[,HOST:PORT...]
 * (any nodes of the cluster; no /db), the store reads the slot map
 * (CLUSTER SLOTS) and sends each command to the master of its first key's
 * slot (EVAL/EVALSHA: KEYS[1]; XREAD/XREADGROUP: the first stream), one
 * connection per master with its own fail fast and backoff, following
 * MOVED and ASK and retrying TRYAGAIN (docs/cluster.md). A script whose
 * KEYS span slots is refused before it is sent. A command without a key
 * goes to the master of the previous command; rstore_command_all sends
 * one to every master, rstore_command_at to the master of a given key.
 *
 * Scripts are registered once at start-up (rstore_script_add) and run by
 * SHA (EVALSHA); if Redis answers NOSCRIPT (restart, SCRIPT FLUSH) the script
 * is loaded again and the call retried once, transparently. */
#ifndef PA_REDIS_STORE_H
#define PA_REDIS_STORE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct rstore_config {
    const char *url;            /* redis://[user[:password]@]host[:port][/db]; unix:/path,
                                   redis-sentinel://... and redis-cluster://... (above) also */
    const char *password_file;  /* if set, the password is read from this file instead of the URL */
    int connect_timeout_ms;     /* default 500 */
    int command_timeout_ms;     /* default 1000 */
    const char *sentinel_password_file; /* the sentinels' password, when they require one */
} rstore_config;

typedef struct rstore rstore;

/* Connects (and authenticates) at once. On failure returns NULL with a
 * message in err, unless `lazy` is true: then the store is returned
 * disconnected and connects on first use. */
rstore *rstore_new(const rstore_config *cfg, bool lazy, char *err, size_t errlen);
void rstore_free(rstore *s);

/* A script every connection can run by index. Returns the index, or -1.
 * Register before the first command; the script is loaded on connect. */
int rstore_script_add(rstore *s, const char *lua_source);

/* Sees each master's answer to rstore_command_all (NULL: it did not answer). */
typedef void (*rstore_each_fn)(void *arg, const char *node, const redisReply *reply);

/* Runs a command. Returns the reply (free with freeReplyObject) or NULL when
 * the store is unreachable or timed out; then rstore_error says why. An
 * error *reply* from Redis (e.g. NOPERM) is returned as a REDIS_REPLY_ERROR,
 * not NULL. */
redisReply *rstore_command(rstore *s, const char *fmt, ...);
redisReply *rstore_commandargv(rstore *s, int argc, const char **argv, const size_t *argvlen);
/* A command without a key on the master that owns `key`'s slot (e.g. WAIT
 * after a write to key). Without a cluster: rstore_command. */
redisReply *rstore_command_at(rstore *s, const char *key, size_t keylen, const char *fmt, ...);
/* A command without a key (PING, SCRIPT LOAD, INFO) on every master (the
 * one server without a cluster); `each` (may be NULL) sees every answer.
 * 0 when all answered without an error reply, else -1 (rstore_error names
 * the first node that did not). */
int rstore_command_all(rstore *s, rstore_each_fn each, void *arg, const char *fmt, ...);

/* EVALSHA of script `idx` with keys and args (binary-safe). NULL as above;
 * in cluster mode also when the keys span hash slots (nothing is sent). */
redisReply *rstore_eval(rstore *s, int idx, int nkeys, int nargs, const char **argv,
                        const size_t *argvlen);

/* Pipelining: append several commands, then read their replies in order.
 * Use for work that must not cost extra round trips. */
int rstore_append_argv(rstore *s, int argc, const char **argv, const size_t *argvlen);
redisReply *rstore_get_reply(rstore *s);
/* EVALSHA of script `idx` appended to the pipeline (read its reply with
 * rstore_get_reply). A pipelined EVALSHA is not retried: a reply for which
 * rstore_reply_noscript is true means "run it again with rstore_eval" (which
 * loads the script), once the pipeline's replies have all been read. */
int rstore_eval_append(rstore *s, int idx, int nkeys, int nargs, const char **argv, const size_t *argvlen);
bool rstore_reply_noscript(const redisReply *r);

bool rstore_connected(const rstore *s);
/* Whether the store is a Redis Cluster (a redis-cluster:// URL,
 * docs/cluster.md): then every script's keys must share one hash slot, and
 * callers use the split forms of the scripts that would cross slots. */
bool rstore_is_cluster(const rstore *s);
const char *rstore_error(const rstore *s);
/* Direct access for code that needs hiredis itself (e.g. the keystore CLI).
 * May be NULL while disconnected; always NULL in cluster mode, where
 * rstore_context_for_key gives the connection to the master of key's slot
 * (without a cluster it is rstore_context). */
redisContext *rstore_context(rstore *s);
redisContext *rstore_context_for_key(rstore *s, const char *key, size_t keylen);

/* Parses a redis:// URL into parts (for tools that connect by themselves).
 * Returns 0 or -1. Strings are written into the caller's buffers. */
int rstore_parse_url(const char *url, char *host, size_t hostlen, int *port, char *user,
                     size_t userlen, char *password, size_t passlen, int *db);

/* Whether `url` is one rstore_new accepts (any of the four forms); on
 * false, err says what is wrong. Nothing is connected. */
bool rstore_url_check(const char *url, char *err, size_t errlen);

#endif
