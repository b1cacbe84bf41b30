/* group_ids.h -- which group IDs exist, in memory, for the whole process.
 *
 * An Activate for a group the worker has never seen must not cost more,
 * or less, than one for a group it knows: otherwise the time of a refusal
 * tells a caller whether a made-up group exists (a Redis read for the
 * unknown one was worth about 50 us here). So the server keeps the set of
 * existing group IDs in memory, a bitmap over the whole 20-bit ID space
 * (128 KiB), and answers "does it exist" without Redis, in constant time.
 *
 * Freshness, bounded two ways:
 *   - a background task reads the `groups` set (SMEMBERS) every
 *     --group-refresh-ms (default 10 s) and replaces the bitmap, so a group
 *     created with `keystore group create` is known to every worker within
 *     that time, and a removed one forgotten;
 *   - sooner, on demand: a key of a group not (yet) in the bitmap is refused
 *     by the same policy.lua `reject` call as a wrong key of a known group,
 *     and that call also says whether the group is in `groups` (it asks for
 *     both cases, so both cost the same). When it is, the handler marks the
 *     ID here and checks the key again at once (group_cache.h), so the first
 *     activation of a brand-new group succeeds. It pays the failure tokens
 *     of a wrong key once per worker: the price of not telling.
 *
 * The bitmap is words of _Atomic uint64_t: readers (every worker) load one
 * word, the refresher stores whole words, the on-demand path ORs one bit.
 * No locks; a reader sees each group's old or new state, never a torn one. */
#ifndef PA_ACTIVATION_GROUP_IDS_H
#define PA_ACTIVATION_GROUP_IDS_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"
#include "redis_store.h"

typedef struct group_ids group_ids;

/* Reads `groups` once now (a warning, not a failure, if Redis is away: the
 * set starts empty and the on-demand path still finds every group), then
 * every refresh_ms in the background (0: never, only on demand). `loads`
 * (may be NULL) counts the reads. NULL with a message in err. */
group_ids *group_ids_start(const rstore_config *store, int refresh_ms, metric *loads, char *err, size_t errlen);
void group_ids_stop(group_ids *g);

/* True if `id` is known to exist. */
bool group_ids_known(const group_ids *g, uint32_t id);

/* Records that `id` exists (Redis said so). */
void group_ids_add(group_ids *g, uint32_t id);

/* Reads `groups` now on the caller's thread (what the task does): 0 or -1. */
int group_ids_refresh(group_ids *g);

#endif
