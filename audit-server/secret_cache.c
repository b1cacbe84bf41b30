/* secret_cache.c -- per-thread cache of prepared second-secret MAC keys.
 *
 * An open-addressing table keyed by group ID, grown by doubling. Entries are
 * never removed one by one; if the table ever reaches SECRET_CACHE_MAX
 * entries it is emptied and refilled on demand, which bounds memory even
 * when someone sends keys for every possible group. */
#include "secret_cache.h"

#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "group.h"

#define SECRET_CACHE_MAX 65536   /* entries before the table is emptied */

typedef struct slot {
    uint32_t id;                 /* group ID; meaningful when used */
    bool used;                   /* slot holds an entry */
    mac_key *key;                /* NULL: the group was not found */
    int64_t negative_until_ms;   /* for a NULL key: when to ask Redis again */
} slot;

struct secret_cache {
    uint8_t kek[KEK_LEN];        /* the audit side's key-encryption key */
    slot *slots;                 /* open addressing, linear probing */
    size_t cap;                  /* power of two */
    size_t count;                /* used slots */
};

secret_cache *secret_cache_new(const uint8_t kek[KEK_LEN]) {
    secret_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->cap = 64;
    c->slots = calloc(c->cap, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        return NULL;
    }
    memcpy(c->kek, kek, KEK_LEN);
    return c;
}

static void clear_slots(secret_cache *c) {
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots[i].used) mac_key_free(c->slots[i].key);
    memset(c->slots, 0, c->cap * sizeof *c->slots);
    c->count = 0;
}

void secret_cache_free(secret_cache *c) {
    if (!c) return;
    clear_slots(c);
    free(c->slots);
    OPENSSL_cleanse(c->kek, sizeof c->kek);
    free(c);
}

static size_t hash_id(uint32_t id, size_t cap) {
    return (size_t)((id * 2654435761u) & (uint32_t)(cap - 1));
}

/* The slot holding `id`, or the empty slot where it would go. */
static slot *find(secret_cache *c, uint32_t id) {
    size_t i = hash_id(id, c->cap);
    while (c->slots[i].used && c->slots[i].id != id) i = (i + 1) & (c->cap - 1);
    return &c->slots[i];
}

static int grow(secret_cache *c) {
    slot *old = c->slots;
    size_t old_cap = c->cap;
    slot *fresh = calloc(old_cap * 2, sizeof *fresh);
    if (!fresh) return -1;
    c->slots = fresh;
    c->cap = old_cap * 2;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].used) *find(c, old[i].id) = old[i];
    free(old);
    return 0;
}

/* Makes room for one more entry: grows at 50 % load, empties at the cap. */
static int reserve(secret_cache *c) {
    if (c->count + 1 >= SECRET_CACHE_MAX) clear_slots(c);
    if ((c->count + 1) * 2 > c->cap) return grow(c);
    return 0;
}

int secret_cache_get(secret_cache *c, rstore *store, uint32_t id, mac_key **key, char *err,
                     size_t errlen) {
    slot *s = find(c, id);
    if (s->used && s->key) {
        *key = s->key;
        return 0;
    }
    if (s->used && pa_mono_ms() < s->negative_until_ms) return 1;

    redisContext *ctx = rstore_context(store);
    if (!ctx) {
        snprintf(err, errlen, "audit store unavailable: %s", rstore_error(store));
        return -1;
    }
    int alg = 0;
    mac_key *loaded = NULL;
    int rc = group_load_audit(ctx, c->kek, id, &alg, &loaded, err, errlen);
    if (rc < 0) return -1;
    if (!s->used) {
        if (reserve(c) != 0) {
            mac_key_free(loaded);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        s = find(c, id);
        s->used = true;
        s->id = id;
        c->count++;
    }
    s->key = rc == 0 ? loaded : NULL;
    s->negative_until_ms = pa_mono_ms() + SECRET_CACHE_NEGATIVE_MS;
    if (rc == 1) return 1;
    *key = s->key;
    return 0;
}
