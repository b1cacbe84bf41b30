/* order_cache.h -- a worker's view of the imported volume orders
 * (docs/volume.md, "An activation under an order").
 *
 * Every Activate asks whether its key's group belongs to an order, so that
 * answer comes from memory: each worker holds every order as an
 * order_record, indexed by group and by serial, and the hot path takes no
 * lock and no Redis round trip. Nothing cryptographic happens here: import
 * verified the order; the cache decodes `signed` again only for the
 * product, edition, features, groups and lists a license needs.
 *
 * Loading is lazy (the first lookup reads `orders` and every order), then
 * kept fresh two ways, like the group cache:
 *   - every refresh_ms (--group-refresh-ms) a lookup first reads the
 *     orders' versions (SMEMBERS orders and one HGET each, pipelined) and
 *     reloads only the orders whose version moved, appeared or vanished;
 *   - sooner, when volume.lua reports an order version other than the one
 *     held: order_cache_check_version reloads that one order.
 * A record that cannot be used (damaged fields) is logged once per load and
 * its groups answer ORDER_UNAVAILABLE, never ORDER_NONE: a volume key must
 * not be taken for a retail one because its order is unreadable.
 *
 * Pointers handed out are valid until the next call on the same cache. */
#ifndef PA_ACTIVATION_ORDER_CACHE_H
#define PA_ACTIVATION_ORDER_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "order_record.h"
#include "redis_store.h"

typedef enum order_lookup {
    ORDER_NONE,        /* no order covers it (a retail key), or no such serial */
    ORDER_FOUND,       /* *o is valid until the next call on this cache */
    ORDER_UNAVAILABLE, /* Redis unreachable before the first load, or the order is unusable */
} order_lookup;

typedef struct order_cache order_cache;

/* One per worker, on the worker's connection (not owned); loads lazily.
 * refresh_ms 0: never by time (only check_version reloads). */
order_cache *order_cache_new(rstore *r, int refresh_ms);
void order_cache_free(order_cache *c);

/* The order covering `group`. */
order_lookup order_cache_for_group(order_cache *c, uint32_t group, const order_record **o);

/* The order named by its service serial. */
order_lookup order_cache_get(order_cache *c, const char *serial, const order_record **o);

/* The order named by its serial as held now: memory only, never a
 * refresh or a reload, so the records handed out before stay valid (a
 * batch takes its licenses' terms from several orders at once). */
order_lookup order_cache_held(const order_cache *c, const char *serial, const order_record **o);
/* volume.lua saw `version` for order `serial`: reloads it when the cached
 * one differs. Returns like order_cache_get; any record obtained earlier
 * is invalid afterwards (use *o). */
order_lookup order_cache_check_version(order_cache *c, const char *serial, uint64_t version, const order_record **o);

/* Reads every order again now (the next lookups then use what was read).
 * 0, or -1 when Redis could not be read (the old state stays). */
int order_cache_refresh(order_cache *c);

/* The number of usable orders held (for tests and metrics). */
size_t order_cache_count(const order_cache *c);

/* On-premises key check: is the salted hash of `canonical_key` (the
 * 29-character text) among the order's accepted keys? A binary search. */
bool order_key_accepted(const order_record *o, const char *canonical_key);

#endif
