/* sentinel_fixture.h -- private Redis Sentinels for tests of a replicated
 * store: each renders docker/redis/sentinel.conf.in into its own temporary
 * directory and runs `redis-server CONF --sentinel` on a free loopback
 * port, requiring FIXTURE_PW_SENTINELS and logging in to the data nodes as
 * their `sentinel` user (fixture.h, redis_fixture_start_ha). */
#ifndef PA_TEST_SENTINEL_FIXTURE_H
#define PA_TEST_SENTINEL_FIXTURE_H

#include <stddef.h>
#include <sys/types.h>

typedef struct sentinel_fixture {
    int port;      /* where it listens on 127.0.0.1 */
    pid_t pid;     /* the redis-server --sentinel process, or -1 */
    char dir[256]; /* temp dir: sentinel.conf (it rewrites it), log */
} sentinel_fixture;

/* How the sentinels watch: short times make a test's failover quick. */
typedef struct sentinel_timing {
    int quorum;              /* sentinels that must agree the primary is down */
    int down_after_ms;       /* silence before a sentinel thinks it down */
    int failover_timeout_ms; /* how long one failover attempt may take */
} sentinel_timing;

/* Starts a sentinel watching `master` at 127.0.0.1:master_port. Returns 0,
 * or -1 (message on stderr). */
int sentinel_fixture_start(sentinel_fixture *s, const char *master, int master_port, const sentinel_timing *t);
void sentinel_fixture_stop(sentinel_fixture *s);

/* "redis-sentinel://USER:PW@127.0.0.1:P1,...,127.0.0.1:Pn/MASTER" for the
 * data nodes' ACL user `user` (fixture.h passwords). */
void sentinel_fixture_url(const sentinel_fixture *s, size_t n, const char *user, const char *password,
                          const char *master, char *buf, size_t buflen);

#endif
