/* group_ids.c -- the in-memory set of existing group IDs (see group_ids.h).
 *
 * The refresher builds a complete new bitmap from SMEMBERS and then stores
 * it word by word over the shared one. A bit the on-demand path set during
 * that copy may be overwritten by the (older) SMEMBERS answer; the next
 * reject call for that group sets it again. Members that are not decimal
 * IDs in range are ignored (the keystore writes none). */
#include "group_ids.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keycodec.h"
#include "log.h"
#include "redis_keys.h"
#include "task.h"

#define ID_SPACE ((size_t)PK_GROUP_MAX + 1)
#define WORDS (ID_SPACE / 64)

struct group_ids {
    _Atomic uint64_t bits[WORDS];
    rstore *redis; /* the refresher's own connection */
    metric *loads;
    task *loop;
    int refresh_ms;
    bool failing; /* the last refresh failed (logged once) */
};

bool group_ids_known(const group_ids *g, uint32_t id) {
    if (id >= ID_SPACE) return false;
    uint64_t w = atomic_load_explicit(&g->bits[id / 64], memory_order_relaxed);
    return (w >> (id % 64)) & 1;
}

void group_ids_add(group_ids *g, uint32_t id) {
    if (id < ID_SPACE) atomic_fetch_or_explicit(&g->bits[id / 64], UINT64_C(1) << (id % 64), memory_order_relaxed);
}

static bool parse_id(const redisReply *e, uint32_t *out) {
    if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len > 7) return false;
    char buf[8], *end;
    memcpy(buf, e->str, e->len);
    buf[e->len] = '\0';
    errno = 0;
    unsigned long v = strtoul(buf, &end, 10);
    if (*end || errno || buf[0] == '-' || v >= ID_SPACE) return false;
    *out = (uint32_t)v;
    return true;
}

static void note_failure(group_ids *g, const char *why) {
    if (!g->failing) log_warn("group_ids.refresh_failed", LOG_S("error", why), LOG_END);
    g->failing = true;
}

int group_ids_refresh(group_ids *g) {
    redisReply *r = rstore_command(g->redis, "SMEMBERS %s", PA_RKEY_GROUPS);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        note_failure(g, r && r->type == REDIS_REPLY_ERROR ? r->str : rstore_error(g->redis));
        if (r) freeReplyObject(r);
        return -1;
    }
    uint64_t *fresh = calloc(WORDS, sizeof *fresh);
    if (!fresh) {
        freeReplyObject(r);
        note_failure(g, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < r->elements; i++) {
        uint32_t id;
        if (parse_id(r->element[i], &id)) fresh[id / 64] |= UINT64_C(1) << (id % 64);
    }
    size_t n = r->elements;
    freeReplyObject(r);
    for (size_t i = 0; i < WORDS; i++)
        if (atomic_load_explicit(&g->bits[i], memory_order_relaxed) != fresh[i])
            atomic_store_explicit(&g->bits[i], fresh[i], memory_order_relaxed);
    free(fresh);
    if (g->loads) metric_inc(g->loads);
    if (g->failing) log_info("group_ids.refreshed", LOG_U("groups", n), LOG_END);
    g->failing = false;
    return 0;
}

static void run(task *t, void *arg) {
    group_ids *g = arg;
    while (task_sleep(t, g->refresh_ms)) group_ids_refresh(g);
}

group_ids *group_ids_start(const rstore_config *store, int refresh_ms, metric *loads, char *err, size_t errlen) {
    group_ids *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->refresh_ms = refresh_ms;
    g->loads = loads;
    g->redis = rstore_new(store, true, err, errlen);
    if (!g->redis) {
        free(g);
        return NULL;
    }
    group_ids_refresh(g); /* before the first call; a failure is only logged */
    if (refresh_ms > 0 && !(g->loop = task_start("group ids", run, g, err, errlen))) {
        rstore_free(g->redis);
        free(g);
        return NULL;
    }
    return g;
}

void group_ids_stop(group_ids *g) {
    if (!g) return;
    task_stop(g->loop);
    rstore_free(g->redis);
    free(g);
}
