/* group_cache.h -- a worker's view of the groups it has seen.
 *
 * Every activation needs its group's record (product, edition, features for
 * the license, whether upgrade keys are allowed) and the first-secret MAC key.
 * Loading that from Redis and unwrapping the secret per call would add a
 * round trip and an AES-GCM decryption to every activation, so each worker
 * keeps the groups it has used, with the secret unwrapped once into a
 * prepared mac_key. The cache is per worker: no locks, and mac_key contexts
 * are not thread-safe anyway.
 *
 * Freshness costs no extra round trip: the policy script returns the
 * record's `version` on every call and the handler passes it to
 * group_cache_check_version, which reloads the entry only when it moved.
 *
 * Whether a group exists at all is answered from memory (group_ids.h), so
 * a made-up group costs no Redis lookup and takes as long as a known one:
 * group_cache_get reads Redis only for a group that exists and that this
 * worker has not loaded yet (once per worker and record version). For the
 * key check of a group that does not exist, group_cache_decoy gives a MAC
 * key with a random secret of this worker's own, so the refusal does the
 * same work as a wrong key of a real group. Unusable records (wrong KEK,
 * damaged fields) are remembered for a few seconds (negative entries), so
 * they do not turn into a flood of Redis lookups either. */
#ifndef PA_ACTIVATION_GROUP_CACHE_H
#define PA_ACTIVATION_GROUP_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "group.h"
#include "group_ids.h"
#include "mac_registry.h"
#include "metrics.h"
#include "redis_keys.h"
#include "redis_store.h"

#define GROUP_FEATURES_MAX 64

typedef struct group_entry {
    group_record rec;                          /* as loaded; rec.version is what we hold */
    mac_key *first;                            /* first-secret MAC key, unwrapped once */
    char *features[GROUP_FEATURES_MAX];        /* rec.policy.features split for licenses */
    size_t n_features;
    char features_buf[sizeof(((group_policy *)0)->features)]; /* storage of features[] */
    char key_group[PA_RKEY_MAX];                              /* "{g:ID}:group", built once */
    char key_revoked[PA_RKEY_MAX];                            /* "{g:ID}:revoked" */
    char key_bucket[PA_RKEY_MAX];                             /* "{g:ID}:rl", the group's token bucket */
    char key_failures[PA_RKEY_MAX];                           /* "{g:ID}:rl:f", its failure bucket */
} group_entry;

/* Names the group's keys in the entry (key_group, key_revoked, key_bucket,
 * key_failures), as the cache does for every entry it loads. */
void group_entry_name_keys(group_entry *e, uint32_t id);

typedef enum group_lookup {
    GROUP_FOUND = 0,       /* *out is valid until the next call on this cache */
    GROUP_UNKNOWN,         /* no such group (answer like a wrong security value) */
    GROUP_UNAVAILABLE,     /* Redis unreachable, or the record is unusable (logged) */
} group_lookup;

typedef struct group_cache group_cache;

/* `redis` is the worker's connection; `kek` unwraps first secrets (copied);
 * `ids` says which groups exist (shared, not owned; NULL: ask Redis for
 * every group not cached); unusable groups are asked again after
 * negative_ttl_ms; `loads` (may be NULL) counts records read from Redis. */
group_cache *group_cache_new(rstore *redis, const uint8_t kek[KEK_LEN], group_ids *ids, int negative_ttl_ms,
                             metric *loads);
void group_cache_free(group_cache *c);

/* Finds group `id`: GROUP_UNKNOWN at once if it does not exist (ids),
 * else the cached entry, loading it with one HGETALL on a miss. */
group_lookup group_cache_get(group_cache *c, uint32_t id, const group_entry **out);

/* Redis says group `id` exists although `ids` did not know it (created
 * since its last refresh): records it there and looks it up. */
group_lookup group_cache_learn(group_cache *c, uint32_t id, const group_entry **out);

/* The stand-in first-secret key for a group that does not exist: HMAC-SHA256
 * (the default algorithm) with a random secret made when the cache was. */
mac_key *group_cache_decoy(group_cache *c);

/* The policy script saw `version`: reload the entry if it differs from the
 * one held. Returns like group_cache_get; an entry obtained earlier is
 * invalid afterwards (use *out). */
group_lookup group_cache_check_version(group_cache *c, uint32_t id, uint64_t version,
                                       const group_entry **out);

/* Drops what is known about `id` (e.g. the group disappeared). */
void group_cache_forget(group_cache *c, uint32_t id);


#endif
