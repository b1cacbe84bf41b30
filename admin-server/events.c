/* events.c -- see events.h. Fields of admin:event:state:
 *   seats:SERIAL    "low" | "ok": the side of the seat warning last seen
 *   expiring:SERIAL the order revision already warned about
 *   deact:SERIAL    machine digests (hex, comma-separated) announced as
 *                   awaiting approval and still waiting
 *   revoked:ID      the size of {g:ID}:revoked last seen
 *   limit:ID        the unix minute last announced as key.machine_limit
 * Each round reads every order and group: orders and groups are few
 * (hundreds), a machine table is read only for orders with deactivation
 * approval, a revoked set only when its size changed. */
#include "events.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hex.h"
#include "log.h"
#include "order_record.h"
#include "redis_keys.h"
#include "task.h"
#include "volume_policy.h"
#include "webhooks.h"

#define STATE_MAX 4096         /* the longest state value read back */
#define REVOKED_PER_ROUND 1000 /* key.revoked events one group fires per round */
#define LIMIT_SETTLE_S 20      /* a minute's counts are complete this long after it (two flushes) */

/* KEYS[1] lease; ARGV: holder, ms. 1 when the caller holds it (taken or renewed). */
static const char LEASE_LUA[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if v == false or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end\n"
    "return 0\n";

struct events_task {
    events_config cfg;               /* defaults applied */
    rstore *redis;                   /* the task's own connection */
    int lease_script;                /* LEASE_LUA's index */
    char holder[WEBHOOK_ID_LEN + 1]; /* this process's name on the lease */
    task *task;                      /* the detection loop */
};

/* ---- state ------------------------------------------------------------- */

/* 1 with the value in buf, 0 when absent, -1 on a Redis failure. */
static int state_get(rstore *r, const char *field, char *buf, size_t n) {
    redisReply *rep = rstore_command(r, "HGET %s %s", PA_RKEY_ADMIN_EVENT_STATE, field);
    int rc = !rep || rep->type == REDIS_REPLY_ERROR ? -1 : rep->type == REDIS_REPLY_STRING ? 1 : 0;
    if (rc == 1) snprintf(buf, n, "%s", rep->str);
    if (rep) freeReplyObject(rep);
    return rc;
}

static int state_set(rstore *r, const char *field, const char *value) {
    redisReply *rep = *value ? rstore_command(r, "HSET %s %s %s", PA_RKEY_ADMIN_EVENT_STATE, field, value)
                             : rstore_command(r, "HDEL %s %s", PA_RKEY_ADMIN_EVENT_STATE, field);
    int rc = !rep || rep->type == REDIS_REPLY_ERROR ? -1 : 0;
    if (rep) freeReplyObject(rep);
    return rc;
}

/* Fires one event; counts it. -1 when it could not be queued. */
static int fire(rstore *r, const char *event, json_t *data, int *fired) {
    char err[256];
    if (webhook_emit(r, event, data, err, sizeof err) < 0) {
        log_warn("event.queue_failed", LOG_S("event", event), LOG_S("error", err), LOG_END);
        return -1;
    }
    (*fired)++;
    return 0;
}

static long long num(const redisReply *arr, size_t i) {
    return i < arr->elements && arr->element[i]->type == REDIS_REPLY_STRING ? atoll(arr->element[i]->str) : 0;
}

/* ---- orders ------------------------------------------------------------- */

typedef struct order_facts {
    const char *serial; /* the service serial */
    long long seats;    /* sold (0: unlimited) */
    long long warning;  /* seat_warning (0: never) */
    long long until;    /* valid_until (0: no end) */
    long long revision; /* order revision */
    bool retired;       /* retired orders fire nothing */
    bool approval;      /* deactivations wait for the operator */
    long long used;     /* seats held ({o:S}:n seats) */
} order_facts;

static int seats_event(rstore *r, const order_facts *o, int *fired) {
    char field[64], was[16] = "";
    if (o->seats <= 0 || o->warning <= 0) return 0;
    long long free_seats = o->seats > o->used ? o->seats - o->used : 0;
    const char *now = free_seats < o->warning ? "low" : "ok";
    snprintf(field, sizeof field, "seats:%s", o->serial);
    int got = state_get(r, field, was, sizeof was);
    if (got < 0) return -1;
    if (got == 1 && strcmp(was, now) == 0) return 0;
    if (strcmp(now, "low") == 0 && fire(r, "seats.below_threshold",
                                        json_pack("{s:s,s:I,s:I,s:I,s:I}", "order", o->serial, "seats",
                                                  (json_int_t)o->seats, "seats_used", (json_int_t)o->used, "seats_free",
                                                  (json_int_t)free_seats, "seat_warning", (json_int_t)o->warning),
                                        fired) != 0)
        return -1;
    return state_set(r, field, now);
}

static int expiry_event(rstore *r, const order_facts *o, int64_t warn_s, int64_t now, int *fired) {
    char field[64], was[24] = "", rev[24];
    if (o->until <= 0 || o->until <= now || o->until - now > warn_s) return 0;
    snprintf(field, sizeof field, "expiring:%s", o->serial);
    snprintf(rev, sizeof rev, "%lld", o->revision);
    int got = state_get(r, field, was, sizeof was);
    if (got < 0) return -1;
    if (got == 1 && strcmp(was, rev) == 0) return 0;
    json_t *data = json_pack("{s:s,s:I,s:I,s:I}", "order", o->serial, "revision", (json_int_t)o->revision,
                             "valid_until", (json_int_t)o->until, "days_left", (json_int_t)((o->until - now) / 86400));
    if (fire(r, "order.expiring", data, fired) != 0) return -1;
    return state_set(r, field, rev);
}

static bool listed(const char *list, const char *hex) {
    size_t n = strlen(hex);
    for (const char *p = strstr(list, hex); p; p = strstr(p + 1, hex))
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return true;
    return false;
}

/* Machines asking to be deactivated, announced once per request. */
static int deactivation_events(rstore *r, const order_facts *o, int *fired) {
    char rkey[PA_RKEY_MAX], field[64], was[STATE_MAX] = "", now[STATE_MAX] = "";
    if (!o->approval) return 0;
    pa_rkey_order_machines(rkey, sizeof rkey, o->serial);
    snprintf(field, sizeof field, "deact:%s", o->serial);
    redisReply *m = rstore_command(r, "HGETALL %s", rkey);
    if (!m || m->type != REDIS_REPLY_ARRAY || state_get(r, field, was, sizeof was) < 0) {
        if (m) freeReplyObject(m);
        return -1;
    }
    size_t used = 0;
    int rc = 0;
    for (size_t i = 0; i + 1 < m->elements && rc == 0; i += 2) {
        volume_record rec;
        char hex[2 * VOLUME_DIGEST_LEN + 1];
        const redisReply *k = m->element[i], *v = m->element[i + 1];
        if (k->len != VOLUME_DIGEST_LEN || !volume_record_decode(v->str, v->len, &rec) || !(rec.flags & VOLUME_F_ASKED))
            continue;
        pa_hex_encode(k->str, k->len, hex);
        hex[2 * VOLUME_DIGEST_LEN] = '\0';
        if (!listed(was, hex))
            rc = fire(r, "deactivation.awaiting_approval", json_pack("{s:s,s:s}", "order", o->serial, "machine", hex),
                      fired);
        if (used + sizeof hex + 1 < sizeof now)
            used += (size_t)snprintf(now + used, sizeof now - used, "%s%s", used ? "," : "", hex);
    }
    freeReplyObject(m);
    return rc == 0 && strcmp(was, now) != 0 ? state_set(r, field, now) : rc;
}

static int order_events(rstore *r, const events_config *cfg, const char *serial, int64_t now, int *fired) {
    char okey[PA_RKEY_MAX], nkey[PA_RKEY_MAX];
    pa_rkey_order(okey, sizeof okey, serial);
    pa_rkey_order_counts(nkey, sizeof nkey, serial);
    redisReply *h = rstore_command(r, "HMGET %s %s %s %s %s %s %s", okey, ORDER_F_SEATS, ORDER_F_SEAT_WARNING,
                                   ORDER_F_VALID_UNTIL, ORDER_F_REVISION, ORDER_F_RETIRED, ORDER_F_APPROVAL);
    redisReply *n = h ? rstore_command(r, "HGET %s seats", nkey) : NULL;
    int rc = -1;
    if (h && n && h->type == REDIS_REPLY_ARRAY && h->elements == 6 && n->type != REDIS_REPLY_ERROR) {
        order_facts o = {.serial = serial,
                         .seats = num(h, 0),
                         .warning = num(h, 1),
                         .until = num(h, 2),
                         .revision = num(h, 3),
                         .retired = num(h, 4) == 1,
                         .approval = num(h, 5) == 1,
                         .used = n->type == REDIS_REPLY_STRING ? atoll(n->str) : 0};
        int64_t warn_s = cfg->expiry_warning_s ? cfg->expiry_warning_s : (int64_t)cfg->expiry_warning_days * 86400;
        rc = o.retired ? 0
             : seats_event(r, &o, fired) != 0 || expiry_event(r, &o, warn_s, now, fired) != 0 ||
                     deactivation_events(r, &o, fired) != 0
                 ? -1
                 : 0;
    }
    if (h) freeReplyObject(h);
    if (n) freeReplyObject(n);
    return rc;
}

/* ---- groups ------------------------------------------------------------- */

/* New members of {g:ID}:revoked since the last look; the first look only
 * takes note of what is there. */
static int revocation_events(rstore *r, uint32_t group, int *fired) {
    char rkey[PA_RKEY_MAX], seen[PA_RKEY_MAX], field[32], was[24] = "", count[24];
    pa_rkey_revoked(rkey, sizeof rkey, group);
    pa_rkey_admin_event_revoked(seen, sizeof seen, group);
    snprintf(field, sizeof field, "revoked:%u", (unsigned)group);
    redisReply *c = rstore_command(r, "SCARD %s", rkey);
    int got = c && c->type == REDIS_REPLY_INTEGER ? state_get(r, field, was, sizeof was) : -1;
    long long size = got >= 0 ? c->integer : 0;
    if (c) freeReplyObject(c);
    if (got < 0) return -1;
    if (got == 1 && atoll(was) == size) return 0;
    bool baseline = got == 0;
    redisReply *all = rstore_command(r, "SMEMBERS %s", rkey);
    int rc = all && all->type == REDIS_REPLY_ARRAY ? 0 : -1, sent = 0;
    for (size_t i = 0; rc == 0 && i < all->elements && sent < REVOKED_PER_ROUND; i++) {
        redisReply *add = rstore_command(r, "SADD %s %s", seen, all->element[i]->str);
        bool fresh = add && add->type == REDIS_REPLY_INTEGER && add->integer == 1;
        if (!add || add->type == REDIS_REPLY_ERROR) rc = -1;
        if (add) freeReplyObject(add);
        if (!fresh || baseline) continue;
        sent++;
        rc = fire(r, "key.revoked",
                  json_pack("{s:I,s:I}", "group", (json_int_t)group, "serial", (json_int_t)atoll(all->element[i]->str)),
                  fired);
    }
    if (all) freeReplyObject(all);
    snprintf(count, sizeof count, "%lld", size);
    /* Capped: the rest fires next round, so the size is noted only when done. */
    return rc == 0 && sent < REVOKED_PER_ROUND ? state_set(r, field, count) : rc;
}

static uint32_t utc_day(int64_t unix_s) {
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    return (uint32_t)((tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
}

/* The newest minute whose counts are complete, if its machine-limit
 * refusals were not announced yet. */
static int limit_events(rstore *r, uint32_t group, int64_t now, int *fired) {
    int64_t minute = (now - LIMIT_SETTLE_S) / 60 - 1;
    char rkey[PA_RKEY_MAX], field[32], state[32], was[24] = "", m[24];
    pa_rkey_threat_group(rkey, sizeof rkey, group, utc_day(minute * 60));
    snprintf(field, sizeof field, PA_THREAT_FIELD_FMT, (unsigned)(minute % 1440), PA_THREAT_KIND_MACHINE_LIMIT);
    redisReply *v = rstore_command(r, "HGET %s %s", rkey, field);
    if (!v || v->type == REDIS_REPLY_ERROR) {
        if (v) freeReplyObject(v);
        return -1;
    }
    long long refusals = v->type == REDIS_REPLY_STRING ? atoll(v->str) : 0;
    freeReplyObject(v);
    if (refusals <= 0) return 0;
    snprintf(state, sizeof state, "limit:%u", (unsigned)group);
    snprintf(m, sizeof m, "%lld", (long long)minute);
    int got = state_get(r, state, was, sizeof was);
    if (got < 0) return -1;
    if (got == 1 && strcmp(was, m) == 0) return 0;
    json_t *data = json_pack("{s:I,s:I,s:I}", "group", (json_int_t)group, "minute", (json_int_t)(minute * 60),
                             "refusals", (json_int_t)refusals);
    if (fire(r, "key.machine_limit", data, fired) != 0) return -1;
    return state_set(r, state, m);
}

/* ---- the round ----------------------------------------------------------- */

static redisReply *members(rstore *r, const char *set) {
    redisReply *rep = rstore_command(r, "SMEMBERS %s", set);
    if (rep && rep->type == REDIS_REPLY_ARRAY) return rep;
    log_warn("event.read_failed", LOG_S("key", set), LOG_S("error", rep && rep->str ? rep->str : rstore_error(r)),
             LOG_END);
    if (rep) freeReplyObject(rep);
    return NULL;
}

int events_detect(rstore *r, const events_config *cfg, int64_t now) {
    int fired = 0, rc = 0;
    redisReply *orders = members(r, PA_RKEY_ORDERS), *groups = orders ? members(r, PA_RKEY_GROUPS) : NULL;
    if (!groups) rc = -1;
    for (size_t i = 0; rc == 0 && i < orders->elements; i++)
        if (orders->element[i]->len <= ORDER_SERIAL_LEN)
            rc = order_events(r, cfg, orders->element[i]->str, now, &fired);
    for (size_t i = 0; rc == 0 && i < groups->elements; i++) {
        uint32_t g = (uint32_t)strtoul(groups->element[i]->str, NULL, 10);
        rc = revocation_events(r, g, &fired) != 0 || limit_events(r, g, now, &fired) != 0 ? -1 : 0;
    }
    if (orders) freeReplyObject(orders);
    if (groups) freeReplyObject(groups);
    if (rc != 0) log_warn("event.round_failed", LOG_S("error", rstore_error(r)), LOG_END);
    return rc == 0 ? fired : -1;
}

static bool hold_lease(events_task *e) {
    char ms[24];
    snprintf(ms, sizeof ms, "%d", 3 * e->cfg.interval_ms + 1000);
    const char *argv[] = {PA_RKEY_ADMIN_EVENT_LEASE, e->holder, ms};
    redisReply *rep = rstore_eval(e->redis, e->lease_script, 1, 2, argv, NULL);
    bool held = rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    if (rep) freeReplyObject(rep);
    return held;
}

static void loop(task *t, void *arg) {
    events_task *e = arg;
    do {
        if (hold_lease(e)) events_detect(e->redis, &e->cfg, (int64_t)time(NULL));
    } while (task_sleep(t, e->cfg.interval_ms));
}

events_task *events_start(const events_config *cfg, char *err, size_t errlen) {
    events_task *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->cfg = *cfg;
    if (e->cfg.interval_ms <= 0) e->cfg.interval_ms = 1000;
    if (e->cfg.expiry_warning_days <= 0 && !e->cfg.expiry_warning_s) e->cfg.expiry_warning_days = 30;
    if (webhook_new_id(e->holder) != 0) {
        snprintf(err, errlen, "no randomness available");
        free(e);
        return NULL;
    }
    if (!(e->redis = rstore_new(&e->cfg.store, true, err, errlen)) ||
        (e->lease_script = rstore_script_add(e->redis, LEASE_LUA)) < 0 ||
        !(e->task = task_start("events", loop, e, err, errlen))) {
        if (e->redis && e->lease_script < 0) snprintf(err, errlen, "registering the lease script failed");
        events_stop(e);
        return NULL;
    }
    return e;
}

void events_stop(events_task *e) {
    if (!e) return;
    task_stop(e->task);
    rstore_free(e->redis);
    free(e);
}
