/* redis_slot.h -- which Redis Cluster hash slot a key belongs to.
 *
 * A cluster-aware store routes each command to the master that owns its
 * key's slot, and refuses a script whose keys span slots before sending it
 * (docs/cluster.md). The slot is CRC16-XMODEM of the key (or of its hash
 * tag) modulo 16384, as the Redis Cluster specification defines it. Libc
 * only, so tools and tests can use it without hiredis. */
#ifndef PA_COMMON_REDIS_SLOT_H
#define PA_COMMON_REDIS_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define REDIS_SLOTS 16384

/* CRC16, XMODEM variant: polynomial 0x1021, initial value 0, no reflection,
 * no final xor. */
uint16_t redis_crc16(const void *buf, size_t len);

/* The part of a key that is hashed: the bytes between the first '{' and the
 * first '}' after it when there is at least one byte between them, else the
 * whole key. Writes its start and length. */
void redis_hash_part(const char *key, size_t len, const char **part, size_t *part_len);

/* The key's slot, 0..16383 (binary-safe). */
unsigned redis_slot_of(const char *key, size_t len);

/* For each slot s, the smallest n such that the tag text PREFIX followed by
 * n in decimal lies in slot s: so a key "{PREFIXn}..." can be put in the
 * same slot as any other key (one outbox shard per slot). Deterministic, so
 * every process computes the same table. Returns 0, or -1 if the prefix is
 * too long to build tags from. */
int redis_slot_tags(const char *prefix, uint32_t tags[REDIS_SLOTS]);

#endif
