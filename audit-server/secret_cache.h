/* secret_cache.h -- second secrets, unwrapped once and kept ready.
 *
 * Unwrapping (AES-GCM) and preparing a MAC context cost far more than the
 * MAC itself, so each group's second secret is loaded from Redis B on first
 * use (group_load_audit with the audit server's own KEK) and kept as a
 * ready mac_key. A mac_key is not thread-safe, so every thread owns its own
 * cache: lookups take no lock.
 *
 * Unknown groups are remembered for a short time too, so a stream of keys
 * naming groups that do not exist costs one Redis read per group and
 * interval, not one per request. A group's second secret never changes
 * (rotating it means a new group), so found entries never expire. */
#ifndef PA_SECRET_CACHE_H
#define PA_SECRET_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "mac_registry.h"
#include "redis_store.h"
#include "secret_wrap.h"

#define SECRET_CACHE_NEGATIVE_MS 2000   /* how long "no such group" is believed */

typedef struct secret_cache secret_cache;

/* `kek` is copied (and wiped on free). */
secret_cache *secret_cache_new(const uint8_t kek[KEK_LEN]);
void secret_cache_free(secret_cache *c);

/* Finds group `id`'s second secret, loading it through `store` on a miss.
 * Returns 0 with *key set (owned by the cache), 1 when the group has no
 * audit record, -1 when it cannot be loaded now (store down, wrong KEK,
 * damaged record) with a message in err. */
int secret_cache_get(secret_cache *c, rstore *store, uint32_t id, mac_key **key, char *err,
                     size_t errlen);

#endif
