/* rate_hold.c -- per-worker holds on rate-limited callers (see rate_hold.h).
 *
 * Two direct-mapped tables, one for addresses (by the bucket key's text)
 * and one for groups (by ID), each slot the latest hold that hashed there.
 * Monotonic milliseconds, so a clock step never lengthens a hold. */
#include "rate_hold.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "redis_keys.h"

#define HOLD_SLOTS 1024 /* per table; a power of two */

typedef struct address_slot {
    int64_t until_ms;
    char key[PA_RKEY_MAX];
} address_slot;

typedef struct group_slot {
    int64_t until_ms;
    uint32_t group;
} group_slot;

struct rate_hold {
    address_slot addresses[HOLD_SLOTS];
    group_slot groups[HOLD_SLOTS];
};

static size_t slot_of_text(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h & (HOLD_SLOTS - 1);
}

static size_t slot_of_group(uint32_t g) { return (g * 2654435761u) & (HOLD_SLOTS - 1); }

rate_hold *rate_hold_new(void) { return calloc(1, sizeof(rate_hold)); }

void rate_hold_free(rate_hold *h) { free(h); }

void rate_hold_note(rate_hold *h, const char *address_key, uint32_t group, const policy_result *p) {
    if (!h || p->status != POLICY_RATE_LIMITED || p->retry_after_s <= 0) return;
    int64_t until = pa_mono_ms() + (int64_t)p->retry_after_s * 1000;
    if (p->scope && strcmp(p->scope, "group") == 0) {
        group_slot *s = &h->groups[slot_of_group(group)];
        s->group = group;
        s->until_ms = until;
        return;
    }
    size_t n = strlen(address_key);
    if (n >= PA_RKEY_MAX) return;
    address_slot *s = &h->addresses[slot_of_text(address_key)];
    memcpy(s->key, address_key, n + 1);
    s->until_ms = until;
}

static void held(policy_result *out, int64_t until, int64_t now, const char *scope) {
    memset(out, 0, sizeof *out);
    out->status = POLICY_RATE_LIMITED;
    out->retry_after_s = (int)((until - now + 999) / 1000);
    if (out->retry_after_s < 1) out->retry_after_s = 1;
    out->scope = scope;
}

bool rate_hold_check(rate_hold *h, const char *address_key, bool by_group, uint32_t group, policy_result *out) {
    if (!h) return false;
    int64_t now = pa_mono_ms();
    const address_slot *a = &h->addresses[slot_of_text(address_key)];
    if (a->until_ms > now && strcmp(a->key, address_key) == 0) {
        held(out, a->until_ms, now, "address");
        return true;
    }
    if (!by_group) return false;
    const group_slot *g = &h->groups[slot_of_group(group)];
    if (g->until_ms > now && g->group == group) {
        held(out, g->until_ms, now, "group");
        return true;
    }
    return false;
}
