/* group_cache.c -- per-worker group cache (see group_cache.h).
 *
 * A chained hash table keyed by group ID. Entries for known groups stay
 * until their version moves; negative entries (unusable records, or a
 * group that vanished between the ID set and its record) expire after
 * negative_ttl_ms. The table is bounded: past
 * GROUP_CACHE_MAX_ENTRIES it sweeps negative entries first, so made-up
 * group IDs cannot grow it without limit. */
#include "group_cache.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"

#define GROUP_CACHE_MAX_ENTRIES 65536

typedef enum slot_state { SLOT_KNOWN, SLOT_UNKNOWN, SLOT_UNAVAILABLE } slot_state;

typedef struct slot {
    uint32_t id;              /* group ID, the hash key */
    slot_state state;         /* known, or which negative answer to repeat */
    int64_t forget_at_ms;     /* negative slots: monotonic time to ask Redis again */
    group_entry entry;        /* valid when state == SLOT_KNOWN */
    struct slot *next;        /* hash chain */
} slot;

struct group_cache {
    rstore *redis;            /* the worker's connection (not owned) */
    uint8_t kek[KEK_LEN];     /* unwraps first secrets; wiped on free */
    int negative_ttl_ms;      /* how long unknown groups stay unknown */
    slot **buckets;           /* power-of-two sized chains */
    size_t n_buckets;
    size_t n_slots;
    metric *loads;            /* counts HGETALLs issued (may be NULL) */
    group_ids *ids;           /* which groups exist (shared; may be NULL) */
    mac_key *decoy;           /* random-secret key for groups that do not exist */
};

static size_t bucket_of(const group_cache *c, uint32_t id) {
    return (size_t)((id * 2654435761u) & (c->n_buckets - 1));
}

group_cache *group_cache_new(rstore *redis, const uint8_t kek[KEK_LEN], group_ids *ids, int negative_ttl_ms,
                             metric *loads) {
    group_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    uint8_t secret[MAC_SECRET_LEN];
    if (RAND_bytes(secret, sizeof secret) == 1) c->decoy = mac_key_new(MAC_ALG_HMAC_SHA256, secret, sizeof secret);
    OPENSSL_cleanse(secret, sizeof secret);
    if (!c->decoy) {
        free(c);
        return NULL;
    }
    c->ids = ids;
    c->redis = redis;
    memcpy(c->kek, kek, KEK_LEN);
    c->negative_ttl_ms = negative_ttl_ms;
    c->loads = loads;
    c->n_buckets = 256;
    c->buckets = calloc(c->n_buckets, sizeof *c->buckets);
    if (!c->buckets) {
        mac_key_free(c->decoy);
        free(c);
        return NULL;
    }
    return c;
}

static void slot_free(slot *s) {
    if (s->state == SLOT_KNOWN) mac_key_free(s->entry.first);
    free(s);
}

void group_cache_free(group_cache *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_buckets; i++) {
        for (slot *s = c->buckets[i], *next; s; s = next) {
            next = s->next;
            slot_free(s);
        }
    }
    OPENSSL_cleanse(c->kek, sizeof c->kek);
    mac_key_free(c->decoy);
    free(c->buckets);
    free(c);
}

static slot **find(group_cache *c, uint32_t id) {
    slot **p = &c->buckets[bucket_of(c, id)];
    while (*p && (*p)->id != id) p = &(*p)->next;
    return p;
}

void group_cache_forget(group_cache *c, uint32_t id) {
    slot **p = find(c, id);
    if (!*p) return;
    slot *s = *p;
    *p = s->next;
    slot_free(s);
    c->n_slots--;
}

/* Drops negative slots (all of them if `all`, else the expired ones). */
static void sweep_negative(group_cache *c, bool all) {
    int64_t now = pa_mono_ms();
    for (size_t i = 0; i < c->n_buckets; i++) {
        slot **p = &c->buckets[i];
        while (*p) {
            slot *s = *p;
            if (s->state != SLOT_KNOWN && (all || s->forget_at_ms <= now)) {
                *p = s->next;
                slot_free(s);
                c->n_slots--;
            } else {
                p = &s->next;
            }
        }
    }
}

static void grow(group_cache *c) {
    size_t n = c->n_buckets * 2;
    slot **b = calloc(n, sizeof *b);
    if (!b) return;   /* keep the old table: longer chains, still correct */
    for (size_t i = 0; i < c->n_buckets; i++) {
        for (slot *s = c->buckets[i], *next; s; s = next) {
            next = s->next;
            size_t j = (size_t)((s->id * 2654435761u) & (n - 1));
            s->next = b[j];
            b[j] = s;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->n_buckets = n;
}

static void insert(group_cache *c, slot *s) {
    if (c->n_slots >= GROUP_CACHE_MAX_ENTRIES) sweep_negative(c, false);
    if (c->n_slots >= GROUP_CACHE_MAX_ENTRIES) sweep_negative(c, true);
    if (c->n_slots >= c->n_buckets) grow(c);
    size_t b = bucket_of(c, s->id);
    s->next = c->buckets[b];
    c->buckets[b] = s;
    c->n_slots++;
}

/* Splits the comma-separated feature list into the entry's own storage. */
static void split_features(group_entry *e) {
    memcpy(e->features_buf, e->rec.policy.features, sizeof e->features_buf);
    e->features_buf[sizeof e->features_buf - 1] = '\0';
    e->n_features = 0;
    char *save = NULL;
    for (char *f = strtok_r(e->features_buf, ",", &save); f && e->n_features < GROUP_FEATURES_MAX;
         f = strtok_r(NULL, ",", &save)) {
        while (*f == ' ') f++;
        char *end = f + strlen(f);
        while (end > f && end[-1] == ' ') *--end = '\0';
        if (*f) e->features[e->n_features++] = f;
    }
}

/* Turns an HGETALL reply into a ready entry: record, unwrapped secret, names. */
static slot_state build_entry(group_cache *c, uint32_t id, const redisReply *r, group_entry *e) {
    char err[160];
    uint8_t blob[WRAP_BLOB_LEN], secret[MAC_SECRET_LEN];
    if (group_record_from_reply(r, id, &e->rec, blob, err, sizeof err) != 0) {
        log_error("group.unusable", LOG_U("group", id), LOG_S("reason", err), LOG_END);
        return SLOT_UNAVAILABLE;
    }
    if (secret_unwrap(c->kek, MAC_ROLE_FIRST, id, blob, sizeof blob, secret) != 0) {
        log_error("group.unusable", LOG_U("group", id),
                  LOG_S("reason", "first secret does not unwrap with this KEK"), LOG_END);
        return SLOT_UNAVAILABLE;
    }
    e->first = mac_key_new(e->rec.alg_first, secret, sizeof secret);
    OPENSSL_cleanse(secret, sizeof secret);
    if (!e->first) {
        log_error("group.unusable", LOG_U("group", id),
                  LOG_S("reason", "unknown or unusable MAC algorithm"), LOG_I("alg", e->rec.alg_first),
                  LOG_END);
        return SLOT_UNAVAILABLE;
    }
    split_features(e);
    group_entry_name_keys(e, id);
    return SLOT_KNOWN;
}

void group_entry_name_keys(group_entry *e, uint32_t id) {
    pa_rkey_group(e->key_group, sizeof e->key_group, id);
    pa_rkey_revoked(e->key_revoked, sizeof e->key_revoked, id);
    pa_rkey_group_bucket(e->key_bucket, sizeof e->key_bucket, id);
    pa_rkey_group_failure_bucket(e->key_failures, sizeof e->key_failures, id);
}

static group_lookup answer(const slot *s, const group_entry **out) {
    switch (s->state) {
    case SLOT_KNOWN: *out = &s->entry; return GROUP_FOUND;
    case SLOT_UNKNOWN: return GROUP_UNKNOWN;
    default: return GROUP_UNAVAILABLE;
    }
}

/* One HGETALL; replaces whatever was cached for `id`. */
static group_lookup load(group_cache *c, uint32_t id, const group_entry **out) {
    char key[PA_RKEY_MAX];
    pa_rkey_group(key, sizeof key, id);
    if (c->loads) metric_inc(c->loads);
    redisReply *r = rstore_command(c->redis, "HGETALL %s", key);
    if (!r) return GROUP_UNAVAILABLE;      /* Redis down: cache nothing */
    if (r->type == REDIS_REPLY_ERROR) {
        log_error("group.load_failed", LOG_U("group", id), LOG_S("redis", r->str), LOG_END);
        freeReplyObject(r);
        return GROUP_UNAVAILABLE;
    }
    group_cache_forget(c, id);
    slot *s = calloc(1, sizeof *s);
    if (!s) {
        freeReplyObject(r);
        return GROUP_UNAVAILABLE;
    }
    s->id = id;
    s->state = (r->type == REDIS_REPLY_ARRAY && r->elements == 0) ? SLOT_UNKNOWN
                                                                  : build_entry(c, id, r, &s->entry);
    freeReplyObject(r);
    s->forget_at_ms = pa_mono_ms() + c->negative_ttl_ms;
    insert(c, s);
    return answer(s, out);
}

group_lookup group_cache_get(group_cache *c, uint32_t id, const group_entry **out) {
    if (c->ids && !group_ids_known(c->ids, id)) return GROUP_UNKNOWN; /* no Redis, no slot */
    slot *s = *find(c, id);
    if (s && (s->state == SLOT_KNOWN || s->forget_at_ms > pa_mono_ms())) return answer(s, out);
    return load(c, id, out);
}

group_lookup group_cache_check_version(group_cache *c, uint32_t id, uint64_t version,
                                       const group_entry **out) {
    slot *s = *find(c, id);
    if (s && s->state == SLOT_KNOWN && s->entry.rec.version == version) return answer(s, out);
    return load(c, id, out);
}

group_lookup group_cache_learn(group_cache *c, uint32_t id, const group_entry **out) {
    if (c->ids) group_ids_add(c->ids, id);
    return group_cache_get(c, id, out);
}

mac_key *group_cache_decoy(group_cache *c) { return c->decoy; }
