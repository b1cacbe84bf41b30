/* order_cache.c -- per-worker order cache (see order_cache.h).
 *
 * Orders are few (a server holds tens, not thousands), so the cache is two
 * sorted arrays: entries by serial, and (group, entry) pairs by group, both
 * searched with bsearch and rebuilt whenever an entry is added, replaced or
 * dropped. An entry owns its order_record (the key hash list of an
 * on-premises order is the big part: 16 bytes a key). */
#include "order_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

typedef struct entry {
    order_record rec; /* valid when usable; else only serial, version and groups */
    bool usable;      /* false: the stored order is damaged (its groups answer UNAVAILABLE) */
} entry;

typedef struct group_ref {
    uint32_t group; /* a group an order covers */
    entry *e;       /* that order */
} group_ref;

struct order_cache {
    rstore *r;               /* the worker's connection (not owned) */
    int refresh_ms;          /* read the versions again after this long; 0: never by time */
    int64_t next_refresh_ms; /* monotonic */
    bool loaded;             /* at least one refresh succeeded */
    entry **entries;         /* sorted by serial */
    size_t n;
    group_ref *groups; /* sorted by group */
    size_t n_groups;
};

order_cache *order_cache_new(rstore *r, int refresh_ms) {
    order_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->r = r;
    c->refresh_ms = refresh_ms;
    return c;
}

static void entry_free(entry *e) {
    if (!e) return;
    order_record_clear(&e->rec);
    free(e);
}

void order_cache_free(order_cache *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) entry_free(c->entries[i]);
    free(c->entries);
    free(c->groups);
    free(c);
}

size_t order_cache_count(const order_cache *c) {
    size_t n = 0;
    for (size_t i = 0; c && i < c->n; i++) n += c->entries[i]->usable;
    return n;
}

/* ---- indexes ---- */

static int entry_cmp(const void *a, const void *b) {
    return strcmp((*(entry *const *)a)->rec.serial, (*(entry *const *)b)->rec.serial);
}

static int group_cmp(const void *a, const void *b) {
    uint32_t x = ((const group_ref *)a)->group, y = ((const group_ref *)b)->group;
    return x < y ? -1 : x > y;
}

static int reindex(order_cache *c) {
    qsort(c->entries, c->n, sizeof *c->entries, entry_cmp);
    size_t total = 0;
    for (size_t i = 0; i < c->n; i++) total += c->entries[i]->rec.n_groups;
    group_ref *g = malloc((total ? total : 1) * sizeof *g);
    if (!g) return -1;
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        for (size_t j = 0; j < c->entries[i]->rec.n_groups; j++)
            g[k++] = (group_ref){c->entries[i]->rec.groups[j], c->entries[i]};
    qsort(g, total, sizeof *g, group_cmp);
    free(c->groups);
    c->groups = g;
    c->n_groups = total;
    return 0;
}

static entry **find_serial(const order_cache *c, const char *serial) {
    entry key, *kp = &key;
    snprintf(key.rec.serial, sizeof key.rec.serial, "%s", serial);
    return c->n ? bsearch(&kp, c->entries, c->n, sizeof *c->entries, entry_cmp) : NULL;
}

/* ---- loading ---- */

/* The group list of a damaged order (field `groups`), so its keys stay volume keys. */
static void groups_of_damaged(entry *e, const redisReply *hash) {
    for (size_t i = 0; i + 1 < hash->elements; i += 2) {
        if (strcmp(hash->element[i]->str, ORDER_F_GROUPS) != 0 || hash->element[i + 1]->type != REDIS_REPLY_STRING)
            continue;
        const char *p = hash->element[i + 1]->str;
        while (*p && e->rec.n_groups < ORDER_GROUPS_MAX) {
            char *end;
            unsigned long g = strtoul(p, &end, 10);
            if (end == p) break;
            e->rec.groups[e->rec.n_groups++] = (uint32_t)g;
            p = *end == ',' ? end + 1 : end;
        }
    }
}

/* One order from its two replies; NULL when it no longer exists (or out of memory). */
static entry *build(const char *serial, const redisReply *hash, const redisReply *keys) {
    entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    char err[256];
    int rc = order_record_from_hash(&e->rec, serial, hash, keys, err, sizeof err);
    if (rc == 1) return entry_free(e), NULL;
    e->usable = rc == 0;
    if (e->usable) return e;
    log_error("order.unusable", LOG_S("order", serial), LOG_S("reason", err), LOG_END);
    order_record_clear(&e->rec);
    snprintf(e->rec.serial, sizeof e->rec.serial, "%s", serial);
    if (hash && hash->type == REDIS_REPLY_ARRAY) groups_of_damaged(e, hash);
    return e;
}

/* HGETALL {o:S}:order and SMEMBERS {o:S}:keys in one round trip; NULL
 * (unreachable, error reply) means "cannot tell", not "gone". */
static int load_one(order_cache *c, const char *serial, entry **out) {
    char ko[PA_RKEY_MAX], kk[PA_RKEY_MAX];
    if (pa_rkey_order(ko, sizeof ko, serial) < 0 || pa_rkey_order_keys(kk, sizeof kk, serial) < 0) return -1;
    const char *a1[] = {"HGETALL", ko}, *a2[] = {"SMEMBERS", kk};
    if (rstore_append_argv(c->r, 2, a1, NULL) != 0 || rstore_append_argv(c->r, 2, a2, NULL) != 0) return -1;
    redisReply *h = rstore_get_reply(c->r), *k = h ? rstore_get_reply(c->r) : NULL;
    int rc = -1;
    if (h && k && h->type == REDIS_REPLY_ARRAY && k->type == REDIS_REPLY_ARRAY) {
        *out = build(serial, h, k);
        rc = 0;
    } else if (h && h->type == REDIS_REPLY_ERROR) {
        log_error("order.load_failed", LOG_S("order", serial), LOG_S("redis", h->str), LOG_END);
    }
    if (h) freeReplyObject(h);
    if (k) freeReplyObject(k);
    return rc;
}

/* Replaces (or adds, or with e NULL drops) the entry for `serial`. */
static int put(order_cache *c, const char *serial, entry *e) {
    entry **slot = find_serial(c, serial);
    if (slot && e) {
        entry_free(*slot);
        *slot = e;
    } else if (slot) {
        entry_free(*slot);
        *slot = c->entries[--c->n];
    } else if (e) {
        entry **more = realloc(c->entries, (c->n + 1) * sizeof *more);
        if (!more) return entry_free(e), -1;
        c->entries = more;
        c->entries[c->n++] = e;
    }
    return reindex(c);
}

/* The stored versions: SMEMBERS orders, then HGET version of each. */
static redisReply *read_serials(order_cache *c) {
    redisReply *r = rstore_command(c->r, "SMEMBERS %s", PA_RKEY_ORDERS);
    if (r && r->type == REDIS_REPLY_ARRAY) return r;
    if (r && r->type == REDIS_REPLY_ERROR)
        log_error("order.load_failed", LOG_S("order", "*"), LOG_S("redis", r->str), LOG_END);
    if (r) freeReplyObject(r);
    return NULL;
}

static bool valid_serial(const redisReply *s) {
    if (s->type != REDIS_REPLY_STRING || s->len != ORDER_SERIAL_LEN) return false;
    for (size_t i = 0; i < s->len; i++)
        if (s->str[i] < '0' || s->str[i] > '9') return false;
    return true;
}

/* Reloads each listed order whose version differs from the one held: all
 * versions in one pipelined round trip, then one round trip per change. */
static int reload_changed(order_cache *c, const redisReply *serials) {
    char key[PA_RKEY_MAX];
    size_t n = serials->elements;
    bool *changed = calloc(n ? n : 1, sizeof *changed);
    if (!changed) return -1;
    for (size_t i = 0; i < n; i++) {
        if (!valid_serial(serials->element[i])) continue;
        pa_rkey_order(key, sizeof key, serials->element[i]->str);
        const char *argv[] = {"HGET", key, ORDER_F_VERSION};
        if (rstore_append_argv(c->r, 3, argv, NULL) != 0) return free(changed), -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!valid_serial(serials->element[i])) continue;
        redisReply *v = rstore_get_reply(c->r);
        if (!v) return free(changed), -1;
        entry **held = find_serial(c, serials->element[i]->str);
        changed[i] = !held || v->type != REDIS_REPLY_STRING || strtoull(v->str, NULL, 10) != (*held)->rec.version;
        freeReplyObject(v);
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        entry *e = NULL;
        if (changed[i] && (load_one(c, serials->element[i]->str, &e) != 0 || put(c, serials->element[i]->str, e) != 0))
            rc = -1;
    }
    free(changed);
    return rc;
}

static bool listed(const redisReply *serials, const char *serial) {
    for (size_t i = 0; i < serials->elements; i++)
        if (serials->element[i]->type == REDIS_REPLY_STRING && strcmp(serials->element[i]->str, serial) == 0)
            return true;
    return false;
}

int order_cache_refresh(order_cache *c) {
    redisReply *serials = read_serials(c);
    if (!serials) return -1;
    int rc = reload_changed(c, serials);
    for (size_t i = c->n; rc == 0 && i-- > 0;) /* orders no longer listed */
        if (!listed(serials, c->entries[i]->rec.serial)) rc = put(c, c->entries[i]->rec.serial, NULL);
    freeReplyObject(serials);
    if (rc == 0) c->loaded = true;
    return rc;
}

/* Refreshes when due; false when nothing was ever loaded. */
static bool fresh_enough(order_cache *c) {
    int64_t now = pa_mono_ms();
    if (!c->loaded || (c->refresh_ms > 0 && now >= c->next_refresh_ms)) {
        if (order_cache_refresh(c) != 0 && c->loaded)
            log_warn("order.refresh_failed", LOG_S("error", rstore_error(c->r)), LOG_END);
        c->next_refresh_ms = now + (c->loaded ? c->refresh_ms : 0);
    }
    return c->loaded;
}

/* ---- lookups ---- */

static order_lookup answer(const entry *e, const order_record **o) {
    if (!e) return ORDER_NONE;
    if (!e->usable) return ORDER_UNAVAILABLE;
    *o = &e->rec;
    return ORDER_FOUND;
}

order_lookup order_cache_for_group(order_cache *c, uint32_t group, const order_record **o) {
    if (!fresh_enough(c)) return ORDER_UNAVAILABLE;
    group_ref key = {.group = group};
    const group_ref *g = c->n_groups ? bsearch(&key, c->groups, c->n_groups, sizeof *c->groups, group_cmp) : NULL;
    return answer(g ? g->e : NULL, o);
}

order_lookup order_cache_get(order_cache *c, const char *serial, const order_record **o) {
    if (!fresh_enough(c)) return ORDER_UNAVAILABLE;
    entry **e = serial ? find_serial(c, serial) : NULL;
    return answer(e ? *e : NULL, o);
}

order_lookup order_cache_held(const order_cache *c, const char *serial, const order_record **o) {
    entry **e = c->loaded && serial ? find_serial(c, serial) : NULL;
    return answer(e ? *e : NULL, o);
}

order_lookup order_cache_check_version(order_cache *c, const char *serial, uint64_t version, const order_record **o) {
    entry **held = serial ? find_serial(c, serial) : NULL;
    if (held && (*held)->usable && (*held)->rec.version == version) return answer(*held, o);
    entry *e = NULL;
    if (!serial || strlen(serial) != ORDER_SERIAL_LEN || load_one(c, serial, &e) != 0 || put(c, serial, e) != 0)
        return ORDER_UNAVAILABLE;
    return answer(e, o);
}

bool order_key_accepted(const order_record *o, const char *canonical_key) {
    uint8_t h[ORDER_KEY_HASH_LEN];
    if (!o || !o->on_premises || o->n_key_hashes == 0 || order_key_hash(o->key_salt, canonical_key, h) != 0)
        return false;
    size_t lo = 0, hi = o->n_key_hashes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = memcmp(o->key_hashes[mid], h, sizeof h);
        if (cmp == 0) return true;
        if (cmp < 0) lo = mid + 1;
        else hi = mid;
    }
    return false;
}
