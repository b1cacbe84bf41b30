/* outbox_shards.c -- see outbox_shards.h. */
#include "outbox_shards.h"

#include <pthread.h>
#include <string.h>

#include "redis_keys.h"
#include "redis_slot.h"

static uint32_t tags[REDIS_SLOTS]; /* slot -> N of {ob:N}; built once */
static int tags_rc = -1;           /* redis_slot_tags' result */
static pthread_once_t tags_once = PTHREAD_ONCE_INIT;

static void build_tags(void) { tags_rc = redis_slot_tags(PA_OUTBOX_SHARD_TAG_PREFIX, tags); }

int outbox_shard_of_slot(unsigned slot, char *out, size_t n) {
    if (slot >= REDIS_SLOTS || pthread_once(&tags_once, build_tags) != 0 || tags_rc != 0) return -1;
    return pa_rkey_outbox_shard(out, n, tags[slot]) < 0 ? -1 : 0;
}

int outbox_shard_for_key(const char *key, char *out, size_t n) {
    return outbox_shard_of_slot(redis_slot_of(key, strlen(key)), out, n);
}
