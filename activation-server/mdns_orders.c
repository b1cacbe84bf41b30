/* mdns_orders.c -- the order serials an on-premises server announces
 * (mdns_orders.h).
 *
 * Read on the announcement's thread every --group-refresh-ms, like the
 * workers' order caches, so an order imported or retired while the server
 * runs shows in the TXT record without a restart. It costs one SMEMBERS
 * and one HGET per order: the order records themselves (and their key
 * lists) are not loaded. */
#include "mdns_orders.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "order_record.h"
#include "order_store.h"
#include "redis_keys.h"

struct mdns_orders {
    rstore_config cfg; /* Redis A, as the server's workers use it */
    rstore *redis;     /* NULL until first read */
    bool warned_full;  /* "too many orders" was logged: once is enough */
};

mdns_orders *mdns_orders_new(const rstore_config *redis) {
    mdns_orders *o = calloc(1, sizeof *o);
    if (o) o->cfg = *redis;
    return o;
}

void mdns_orders_free(mdns_orders *o) {
    if (!o) return;
    rstore_free(o->redis);
    free(o);
}

/* Whether the order's record says it is retired; -1 when it cannot be read. */
static int order_retired(rstore *r, const char *serial) {
    char key[PA_RKEY_MAX];
    if (pa_rkey_order(key, sizeof key, serial) < 0) return -1;
    redisReply *rep = rstore_command(r, "HGET %s %s", key, ORDER_F_RETIRED);
    if (!rep) return -1;
    int retired = rep->type == REDIS_REPLY_STRING ? strcmp(rep->str, "1") == 0 : rep->type == REDIS_REPLY_NIL ? 1 : -1;
    freeReplyObject(rep);
    return retired; /* an order listed but without a record is not announced */
}

/* Appends `serial` to buf (used bytes in *len); false when it does not fit. */
static bool append(char *buf, size_t n, size_t *len, const char *serial) {
    int w = snprintf(buf + *len, n - *len, "%s%s", *len ? "," : "", serial);
    if (w < 0 || (size_t)w >= n - *len) return false;
    *len += (size_t)w;
    return true;
}

int mdns_orders_read(void *arg, char *buf, size_t n) {
    mdns_orders *o = arg;
    char err[256];
    if (!o->redis && !(o->redis = rstore_new(&o->cfg, true, err, sizeof err))) return -1;
    char(*serials)[ORDER_SERIAL_LEN + 1];
    size_t count, len = 0;
    if (order_store_list(o->redis, &serials, &count, err, sizeof err) != 0) return -1;
    int rc = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < count && rc == 0; i++) {
        int retired = order_retired(o->redis, serials[i]);
        if (retired < 0) rc = -1;
        else if (!retired && !append(buf, n < 256 ? n : 256, &len, serials[i])) {
            if (!o->warned_full)
                log_warn("server.mdns_failed",
                         LOG_S("error", "too many orders for one TXT string; the announcement keeps its last list"),
                         LOG_END);
            o->warned_full = true;
            rc = -1;
        }
    }
    free(serials);
    return rc;
}
