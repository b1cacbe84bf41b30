/* outbox_shards.h -- which offline-audit outbox stream a grant writes to
 * on Redis Cluster (docs/cluster.md, "The offline-audit outbox").
 *
 * The record is written by the same script as the grant, so it must lie in
 * the group's hash slot: one stream per slot, {ob:N}:outbox, N the slot's
 * tag (redis_slot_tags). The tag table (16384 entries, some tens of
 * milliseconds to build) is made once per process on first use and never
 * changes; every process computes the same one. Single-node Redis keeps
 * the one PA_RKEY_OUTBOX. */
#ifndef PA_COMMON_OUTBOX_SHARDS_H
#define PA_COMMON_OUTBOX_SHARDS_H

#include <stddef.h>

/* The shard of slot `slot` (0..16383): its key in out, or -1 when it does
 * not fit (or the table could not be built). */
int outbox_shard_of_slot(unsigned slot, char *out, size_t n);

/* The shard in the slot of `key` (for a group, any of its {g:ID} keys). */
int outbox_shard_for_key(const char *key, char *out, size_t n);

#endif
