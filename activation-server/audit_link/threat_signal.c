/* threat_signal.c -- lock-free sliding windows (see threat_signal.h).
 *
 * Bucket words:
 *   group    [63..40] second mod 2^24 | [39..20] requests | [19..0] failures
 *   address  [63..40] second mod 2^24 | [39..0]  requests
 * A bucket counts for "now" when its second is within the window of the
 * current second; a stale second reads as zero and is overwritten by the
 * next writer with a compare-and-swap, which also adds the writer's count.
 * Counts saturate instead of wrapping. */
#include "threat_signal.h"

#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

#define SEC_MASK ((UINT64_C(1) << 24) - 1)
#define C20 ((UINT64_C(1) << 20) - 1)
#define C40 ((UINT64_C(1) << 40) - 1)

typedef struct group_slot {
    _Atomic uint32_t key;                       /* group + 1; 0 = empty */
    _Atomic uint64_t buckets[THREAT_BUCKETS];   /* see the top of this file */
} group_slot;

struct threat_signal {
    threat_config cfg;                          /* defaults applied */
    uint64_t seed[2];                           /* address hash seeds (random per process) */
    _Atomic uint64_t untracked;                 /* records dropped: group table full */
    group_slot groups[THREAT_GROUP_SLOTS];
    _Atomic uint64_t sketch[THREAT_BUCKETS][2][THREAT_ADDRESS_WIDTH];
};

threat_signal *threat_signal_new(const threat_config *cfg) {
    threat_signal *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    if (cfg) t->cfg = *cfg;
    if (t->cfg.window_s <= 0) t->cfg.window_s = 10;
    if (t->cfg.window_s > THREAT_BUCKETS - 1) t->cfg.window_s = THREAT_BUCKETS - 1;
    if (t->cfg.group_min_requests == 0) t->cfg.group_min_requests = 20;
    if (t->cfg.group_failure_ratio <= 0) t->cfg.group_failure_ratio = 0.5;
    if (t->cfg.address_max_requests == 0) t->cfg.address_max_requests = 200;
    if (!t->cfg.clock_ms) t->cfg.clock_ms = pa_mono_ms;
    if (RAND_bytes((unsigned char *)t->seed, sizeof t->seed) != 1) {
        free(t);
        return NULL;
    }
    return t;
}

void threat_signal_free(threat_signal *t) { free(t); }

static uint64_t now_sec(const threat_signal *t) {
    return (uint64_t)(t->cfg.clock_ms() / 1000) & SEC_MASK;
}

/* True when a bucket stamped `sec` lies in the window ending at `now`. */
static bool in_window(const threat_signal *t, uint64_t sec, uint64_t now) {
    return ((now - sec) & SEC_MASK) < (uint64_t)t->cfg.window_s;
}

/* Adds to a bucket word: `add` is pre-shifted counts, `cap` the field masks
 * used to saturate, `shifts` where the (up to two) fields start. */
static void bucket_add(_Atomic uint64_t *w, uint64_t now, int nfields, const int *shift,
                       const uint64_t *mask, const uint64_t *inc) {
    uint64_t old = atomic_load_explicit(w, memory_order_relaxed), next;
    do {
        bool fresh = (old >> 40) == now;
        next = now << 40;
        for (int f = 0; f < nfields; f++) {
            uint64_t v = fresh ? (old >> shift[f]) & mask[f] : 0;
            v = v + inc[f] > mask[f] ? mask[f] : v + inc[f];
            next |= v << shift[f];
        }
    } while (!atomic_compare_exchange_weak_explicit(w, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
}

static uint32_t group_hash(uint32_t group) { return (group * 2654435761u) & (THREAT_GROUP_SLOTS - 1); }

/* The slot of `group`; with `insert`, claims an empty one. NULL if absent
 * (or the table is full). */
static group_slot *group_find(threat_signal *t, uint32_t group, bool insert) {
    uint32_t key = group + 1;
    for (uint32_t i = 0, h = group_hash(group); i < THREAT_GROUP_SLOTS; i++, h = (h + 1) & (THREAT_GROUP_SLOTS - 1)) {
        group_slot *s = &t->groups[h];
        uint32_t k = atomic_load_explicit(&s->key, memory_order_acquire);
        if (k == key) return s;
        if (k != 0) continue;
        if (!insert) return NULL;
        uint32_t empty = 0;
        if (atomic_compare_exchange_strong(&s->key, &empty, key) || empty == key) return s;
    }
    return NULL;
}

void threat_record_group(threat_signal *t, uint32_t group, bool failed) {
    group_slot *s = group_find(t, group, true);
    if (!s) {
        atomic_fetch_add_explicit(&t->untracked, 1, memory_order_relaxed);
        return;
    }
    uint64_t now = now_sec(t);
    static const int shift[] = {20, 0};
    static const uint64_t mask[] = {C20, C20};
    uint64_t inc[] = {1, failed ? 1 : 0};
    bucket_add(&s->buckets[now % THREAT_BUCKETS], now, 2, shift, mask, inc);
}

void threat_group_counts(const threat_signal *t, uint32_t group, uint32_t *requests, uint32_t *failures) {
    *requests = *failures = 0;
    group_slot *s = group_find((threat_signal *)t, group, false);
    if (!s) return;
    uint64_t now = now_sec(t), req = 0, fail = 0;
    for (int b = 0; b < THREAT_BUCKETS; b++) {
        uint64_t w = atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
        if (w == 0 || !in_window(t, w >> 40, now)) continue;
        req += (w >> 20) & C20;
        fail += w & C20;
    }
    *requests = req > UINT32_MAX ? UINT32_MAX : (uint32_t)req;
    *failures = fail > UINT32_MAX ? UINT32_MAX : (uint32_t)fail;
}

bool threat_group_alert(const threat_signal *t, uint32_t group) {
    uint32_t req, fail;
    threat_group_counts(t, group, &req, &fail);
    return req >= t->cfg.group_min_requests && (double)fail >= t->cfg.group_failure_ratio * (double)req;
}

/* Seeded 64-bit hash of the address (FNV-1a core with a final mix). */
static uint64_t address_hash(const threat_signal *t, const char *a) {
    uint64_t h = t->seed[0] ^ UINT64_C(0xcbf29ce484222325);
    for (; *a; a++) h = (h ^ (uint8_t)*a) * UINT64_C(0x100000001b3);
    h ^= t->seed[1];
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return h;
}

void threat_record_address(threat_signal *t, const char *address) {
    if (!address) return;
    uint64_t h = address_hash(t, address), now = now_sec(t);
    static const int shift[] = {0};
    static const uint64_t mask[] = {C40};
    static const uint64_t inc[] = {1};
    size_t col[2] = {h % THREAT_ADDRESS_WIDTH, (h >> 32) % THREAT_ADDRESS_WIDTH};
    for (int r = 0; r < 2; r++)
        bucket_add(&t->sketch[now % THREAT_BUCKETS][r][col[r]], now, 1, shift, mask, inc);
}

uint32_t threat_address_requests(const threat_signal *t, const char *address) {
    if (!address) return 0;
    uint64_t h = address_hash(t, address), now = now_sec(t), best = UINT64_MAX;
    size_t col[2] = {h % THREAT_ADDRESS_WIDTH, (h >> 32) % THREAT_ADDRESS_WIDTH};
    for (int r = 0; r < 2; r++) {
        uint64_t sum = 0;
        for (int b = 0; b < THREAT_BUCKETS; b++) {
            uint64_t w = atomic_load_explicit(&((threat_signal *)t)->sketch[b][r][col[r]], memory_order_relaxed);
            if (w != 0 && in_window(t, w >> 40, now)) sum += w & C40;
        }
        if (sum < best) best = sum;
    }
    return best > UINT32_MAX ? UINT32_MAX : (uint32_t)best;
}

bool threat_address_alert(const threat_signal *t, const char *address) {
    return threat_address_requests(t, address) > t->cfg.address_max_requests;
}

uint64_t threat_untracked_groups(const threat_signal *t) {
    return atomic_load_explicit(&((threat_signal *)t)->untracked, memory_order_relaxed);
}
