/* redis_sentinel.c -- asking Redis Sentinels where a primary is.
 *
 * Design: one short-lived connection per question. Questions are rare
 * (at start-up and after a connection to the primary broke), so keeping
 * sentinel connections open or subscribing to +switch-master would add
 * state for no gain: the store already reconnects with backoff, and the
 * ROLE check there catches a stale answer. Only "no sentinel answered"
 * is logged here; which answer was followed is the store's to log.
 *
 * No message produced here contains the sentinels' password. */
#include "redis_sentinel.h"

#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "log.h"
#include "metrics.h"

/* One sentinel's answer: 0 with the address, or -1 with why in err. */
static int ask_one(const sentinel_set *s, const sentinel_addr *a, int timeout_ms, char *host, size_t hostlen, int *port,
                   char *err, size_t errlen) {
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(a->host, a->port, tv);
    if (!c || c->err) {
        snprintf(err, errlen, "sentinel %s:%d: cannot connect: %s", a->host, a->port, c ? c->errstr : "out of memory");
        redisFree(c);
        return -1;
    }
    int rc = -1;
    redisReply *r = NULL;
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, errlen, "sentinel %s:%d: cannot set socket timeouts", a->host, a->port);
        goto out;
    }
    if (s->password[0]) {
        r = redisCommand(c, "AUTH %s", s->password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "sentinel %s:%d: AUTH: %s", a->host, a->port, r ? r->str : c->errstr);
            goto out;
        }
        freeReplyObject(r);
    }
    r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", s->master);
    if (!r) snprintf(err, errlen, "sentinel %s:%d: %s", a->host, a->port, c->errstr);
    else if (r->type == REDIS_REPLY_ERROR) snprintf(err, errlen, "sentinel %s:%d: %s", a->host, a->port, r->str);
    else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
             r->element[1]->type != REDIS_REPLY_STRING)
        snprintf(err, errlen, "sentinel %s:%d does not know master '%s'", a->host, a->port, s->master);
    else if (r->element[0]->len >= hostlen || sscanf(r->element[1]->str, "%d", port) != 1 || *port <= 0 ||
             *port > 65535)
        snprintf(err, errlen, "sentinel %s:%d named an unusable address for '%s'", a->host, a->port, s->master);
    else {
        memcpy(host, r->element[0]->str, r->element[0]->len + 1);
        rc = 0;
    }
out:
    if (r) freeReplyObject(r);
    redisFree(c);
    return rc;
}

int sentinel_ask(sentinel_set *s, int timeout_ms, char *host, size_t hostlen, int *port, char *err, size_t errlen) {
    for (int k = 0; k < s->n; k++) {
        int i = (s->first + k) % s->n;
        if (ask_one(s, &s->addr[i], timeout_ms, host, hostlen, port, err, errlen) == 0) {
            s->first = i;
            s->down_logged = false;
            return 0;
        }
    }
    if (!s->down_logged) {
        log_warn("redis.sentinel_unreachable", LOG_S("master", s->master), LOG_I("sentinels", s->n),
                 LOG_S("error", err), LOG_END);
        metric_inc(metric_counter("pa_redis_sentinel_unreachable_total",
                                  "times no Redis Sentinel could name the primary", ""));
        s->down_logged = true;
    }
    return -1;
}
