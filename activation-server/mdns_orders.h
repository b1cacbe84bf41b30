/* mdns_orders.h -- which orders an on-premises server's mDNS announcement
 * names (TXT "order=", mdns_announce.h): the serials of the orders stored
 * in Redis A that are not retired, sorted, comma-separated. An installer
 * that holds a license of one of them prefers this server. */
#ifndef PA_MDNS_ORDERS_H
#define PA_MDNS_ORDERS_H

#include <stddef.h>

#include "redis_store.h"

typedef struct mdns_orders mdns_orders;

/* Keeps its own lazy connection with `redis` (copied pointers: the config
 * outlives it). NULL when out of memory. */
mdns_orders *mdns_orders_new(const rstore_config *redis);
void mdns_orders_free(mdns_orders *o);

/* An mdns_orders_fn (arg: an mdns_orders): the serials into buf ("" for
 * none). -1 when Redis cannot tell now, or the list does not fit in buf
 * (one TXT string: 255 bytes, 28 orders); the announcement keeps its last
 * value then. */
int mdns_orders_read(void *arg, char *buf, size_t n);

#endif
