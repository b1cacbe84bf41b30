/* redis_sentinel.h -- asking Redis Sentinels where a primary is.
 *
 * Internal to the store (redis_store.c): a set of sentinel addresses and
 * the master name they watch. sentinel_ask tries them in turn, starting
 * with the one that answered last, and returns the first answer. It does
 * not vote: the store checks the answer itself with ROLE on the node, so a
 * sentinel that has not yet heard of a failover costs one more attempt,
 * never a write to a replica. */
#ifndef PA_REDIS_SENTINEL_H
#define PA_REDIS_SENTINEL_H

#include <stdbool.h>
#include <stddef.h>

#define SENTINELS_MAX 16
#define SENTINEL_DEFAULT_PORT 26379

typedef struct sentinel_addr {
    char host[256]; /* address or name as the URL gives it */
    int port;       /* TCP port, 26379 unless the URL says otherwise */
} sentinel_addr;

typedef struct sentinel_set {
    sentinel_addr addr[SENTINELS_MAX]; /* from the URL, in its order */
    int n;                             /* how many addr are used */
    char master[128];                  /* the master name the sentinels monitor */
    char password[256];                /* the sentinels' requirepass; empty: none */
    int first;                         /* the sentinel that answered last: asked first next time */
    bool down_logged;                  /* redis.sentinel_unreachable was logged for this outage */
} sentinel_set;

/* Asks the sentinels for the primary's address. Returns 0 with host and
 * *port set, or -1 with err saying what the last sentinel answered. Logs
 * redis.sentinel_unreachable when none answers (once until one does).
 * Each connection is bounded by timeout_ms. */
int sentinel_ask(sentinel_set *s, int timeout_ms, char *host, size_t hostlen, int *port, char *err, size_t errlen);

#endif
