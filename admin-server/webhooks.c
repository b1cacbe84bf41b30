/* webhooks.c -- see webhooks.h. */
#include "webhooks.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hex.h"
#include "log.h"
#include "redis_keys.h"

const char *const webhook_event_names[] = {"seats.below_threshold",
                                           "key.machine_limit",
                                           "order.expiring",
                                           "key.revoked",
                                           "deactivation.awaiting_approval",
                                           NULL};

int webhook_new_id(char id[WEBHOOK_ID_LEN + 1]) {
    unsigned char raw[WEBHOOK_ID_LEN / 2];
    if (RAND_bytes(raw, sizeof raw) != 1) return -1;
    pa_hex_encode(raw, sizeof raw, id);
    id[WEBHOOK_ID_LEN] = '\0';
    return 0;
}

static bool known_event(const char *name) {
    for (const char *const *e = webhook_event_names; *e; e++)
        if (strcmp(*e, name) == 0) return true;
    return false;
}

/* https://HOST..., or http://127.0.0.1 followed by the end, a port or a path. */
static bool url_allowed(const char *url) {
    static const char local[] = "http://127.0.0.1";
    size_t len = strlen(url);
    if (len >= WEBHOOK_URL_MAX || strpbrk(url, " \t\r\n")) return false;
    if (strncmp(url, "https://", 8) == 0) return len > 8;
    if (strncmp(url, local, sizeof local - 1) != 0) return false;
    char next = url[sizeof local - 1];
    return next == '\0' || next == ':' || next == '/';
}

/* The events as one comma-separated value; -1 (err) when not a non-empty
 * array of known names. */
static int events_text(const json_t *events, char *out, size_t n, char *err, size_t errlen) {
    size_t i, used = 0;
    json_t *v;
    if (!json_is_array(events) || json_array_size(events) == 0) {
        snprintf(err, errlen, "field \"events\": expected a non-empty array of event names");
        return -1;
    }
    out[0] = '\0';
    json_array_foreach(events, i, v) {
        const char *name = json_string_value(v);
        if (!name || !known_event(name)) {
            snprintf(err, errlen,
                     "field \"events\": unknown event %s%s%s (known: seats.below_threshold, "
                     "key.machine_limit, order.expiring, key.revoked, deactivation.awaiting_approval)",
                     name ? "\"" : "", name ? name : "(not a string)", name ? "\"" : "");
            return -1;
        }
        int w = snprintf(out + used, n - used, "%s%s", used ? "," : "", name);
        if (w < 0 || (size_t)w >= n - used) {
            snprintf(err, errlen, "field \"events\": too many");
            return -1;
        }
        used += (size_t)w;
    }
    return 0;
}

static int redis_failed(rstore *r, redisReply *rep, const char *what, char *err, size_t errlen) {
    snprintf(err, errlen, "%s: %s", what, !rep ? rstore_error(r) : rep->str ? rep->str : "unexpected reply");
    if (rep) freeReplyObject(rep);
    return -2;
}

/* On Redis Cluster a record and the set or schedule naming it are in two
 * slots, and a MULTI cannot span slots: the record is written first, then
 * its entry, so what the index names is always there; a crash between
 * leaves a record nothing names (harmless, never delivered). 0 or -1. */
static int record_then_index(rstore *r, int nrec, const char **rec, int nidx, const char **idx, const char *what,
                             char *err, size_t errlen) {
    redisReply *rep = rstore_commandargv(r, nrec, rec, NULL);
    if (rep && rep->type == REDIS_REPLY_INTEGER) {
        freeReplyObject(rep);
        rep = rstore_commandargv(r, nidx, idx, NULL);
        if (rep && rep->type == REDIS_REPLY_INTEGER) {
            freeReplyObject(rep);
            return 0;
        }
    }
    snprintf(err, errlen, "%s: %s", what, rep && rep->type == REDIS_REPLY_ERROR ? rep->str : rstore_error(r));
    if (rep) freeReplyObject(rep);
    return -1;
}

int webhook_create(rstore *r, const char *url, const json_t *events, json_t **out, char *err, size_t errlen) {
    char list[512], id[WEBHOOK_ID_LEN + 1], secret[WEBHOOK_SECRET_LEN + 1], rkey[PA_RKEY_MAX], at[24];
    unsigned char raw[WEBHOOK_SECRET_LEN / 2];
    if (!url || !url_allowed(url)) {
        snprintf(err, errlen, "field \"url\": expected https://..., or http://127.0.0.1... for a local receiver");
        return -1;
    }
    if (events_text(events, list, sizeof list, err, errlen) != 0) return -1;
    if (webhook_new_id(id) != 0 || RAND_bytes(raw, sizeof raw) != 1) {
        snprintf(err, errlen, "no randomness available");
        return -2;
    }
    pa_hex_encode(raw, sizeof raw, secret);
    secret[WEBHOOK_SECRET_LEN] = '\0';
    OPENSSL_cleanse(raw, sizeof raw);
    long long now = (long long)time(NULL);
    snprintf(at, sizeof at, "%lld", now);
    pa_rkey_admin_webhook(rkey, sizeof rkey, id);
    const char *hset[] = {"HSET", rkey, "url", url, "events", list, "secret", secret, "created_at", at};
    const char *sadd[] = {"SADD", PA_RKEY_ADMIN_WEBHOOKS, id};
    redisReply *rep = NULL;
    if (rstore_is_cluster(r)) {
        if (record_then_index(r, 10, hset, 3, sadd, "storing the webhook", err, errlen) != 0) return -2;
    } else if (rstore_append_argv(r, 1, (const char *[]){"MULTI"}, NULL) != 0 ||
               rstore_append_argv(r, 10, hset, NULL) != 0 || rstore_append_argv(r, 3, sadd, NULL) != 0 ||
               rstore_append_argv(r, 1, (const char *[]){"EXEC"}, NULL) != 0)
        return redis_failed(r, NULL, "storing the webhook", err, errlen);
    else {
        for (int i = 0; i < 4; i++) {
            if (rep) freeReplyObject(rep);
            if (!(rep = rstore_get_reply(r))) return redis_failed(r, NULL, "storing the webhook", err, errlen);
        }
        bool ok = rep->type == REDIS_REPLY_ARRAY && rep->elements == 2;
        if (!ok) return redis_failed(r, rep, "storing the webhook", err, errlen);
        freeReplyObject(rep);
    }
    *out = json_pack("{s:s,s:s,s:O,s:I,s:s}", "id", id, "url", url, "events", events, "created_at", (json_int_t)now,
                     "secret", secret);
    OPENSSL_cleanse(secret, sizeof secret);
    log_info("webhook.created", LOG_S("webhook", id), LOG_S("url", url), LOG_S("events", list), LOG_END);
    return 0;
}

/* One endpoint as the list shows it (no secret); NULL when it is gone. */
static json_t *endpoint_json(rstore *r, const char *id) {
    char rkey[PA_RKEY_MAX];
    pa_rkey_admin_webhook(rkey, sizeof rkey, id);
    redisReply *h = rstore_command(r, "HMGET %s url events created_at", rkey);
    json_t *o = NULL;
    if (h && h->type == REDIS_REPLY_ARRAY && h->elements == 3 && h->element[0]->type == REDIS_REPLY_STRING) {
        json_t *events = json_array();
        const char *list = h->element[1]->type == REDIS_REPLY_STRING ? h->element[1]->str : "";
        for (const char *p = list; *p;) {
            size_t len = strcspn(p, ",");
            json_array_append_new(events, json_stringn(p, len));
            p += len + (p[len] == ',');
        }
        long long at = h->element[2]->type == REDIS_REPLY_STRING ? atoll(h->element[2]->str) : 0;
        o = json_pack("{s:s,s:s,s:o,s:I}", "id", id, "url", h->element[0]->str, "events", events, "created_at",
                      (json_int_t)at);
    }
    if (h) freeReplyObject(h);
    return o;
}

static int by_created(const void *a, const void *b) {
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "created_at"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "created_at"));
    return x < y ? -1 : x > y ? 1 : 0;
}

json_t *webhook_list(rstore *r, char *err, size_t errlen) {
    redisReply *ids = rstore_command(r, "SMEMBERS %s", PA_RKEY_ADMIN_WEBHOOKS);
    if (!ids || ids->type != REDIS_REPLY_ARRAY) {
        redis_failed(r, ids, "reading the webhooks", err, errlen);
        return NULL;
    }
    json_t **items = calloc(ids->elements ? ids->elements : 1, sizeof *items);
    size_t n = 0;
    for (size_t i = 0; items && i < ids->elements; i++)
        if ((items[n] = endpoint_json(r, ids->element[i]->str))) n++;
    freeReplyObject(ids);
    if (!items) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    qsort(items, n, sizeof *items, by_created);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(list, items[i]);
    free(items);
    return list;
}

int webhook_delete(rstore *r, const char *id, char *err, size_t errlen) {
    char rkey[PA_RKEY_MAX];
    if (pa_rkey_admin_webhook(rkey, sizeof rkey, id) < 0) return 0;
    redisReply *rep = rstore_command(r, "SREM %s %s", PA_RKEY_ADMIN_WEBHOOKS, id);
    if (!rep || rep->type != REDIS_REPLY_INTEGER) return redis_failed(r, rep, "removing the webhook", err, errlen), -1;
    bool was = rep->integer == 1;
    freeReplyObject(rep);
    rep = rstore_command(r, "DEL %s", rkey);
    if (!rep || rep->type != REDIS_REPLY_INTEGER) return redis_failed(r, rep, "removing the webhook", err, errlen), -1;
    was = was || rep->integer == 1;
    freeReplyObject(rep);
    if (was) log_info("webhook.deleted", LOG_S("webhook", id), LOG_END);
    return was ? 1 : 0;
}

/* Whether the comma-separated list holds `event`. */
static bool subscribed(const char *list, const char *event) {
    size_t n = strlen(event);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, event, n) == 0) return true;
        p += len + (p[len] == ',');
    }
    return false;
}

/* Queues one delivery of `body` to endpoint `webhook`: the record and its
 * due time in one MULTI. 0 or -1. */
static int queue_delivery(rstore *r, const char *webhook, const char *event, const char *event_id, const char *body,
                          char *err, size_t errlen) {
    char id[WEBHOOK_ID_LEN + 1], rkey[PA_RKEY_MAX], due[24];
    if (webhook_new_id(id) != 0) {
        snprintf(err, errlen, "no randomness available");
        return -1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(due, sizeof due, "%lld", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    pa_rkey_admin_delivery(rkey, sizeof rkey, id);
    const char *hset[] = {"HSET",     rkey,     "webhook", webhook, "event", event,
                          "event_id", event_id, "body",    body,    "tries", "0"};
    const char *zadd[] = {"ZADD", PA_RKEY_ADMIN_DELIVERY_DUE, due, id};
    int rc = 0;
    if (rstore_is_cluster(r)) {
        return record_then_index(r, 12, hset, 4, zadd, "queueing a delivery", err, errlen);
    }
    if (rstore_append_argv(r, 1, (const char *[]){"MULTI"}, NULL) != 0 || rstore_append_argv(r, 12, hset, NULL) != 0 ||
        rstore_append_argv(r, 4, zadd, NULL) != 0 || rstore_append_argv(r, 1, (const char *[]){"EXEC"}, NULL) != 0)
        rc = -1;
    for (int i = 0; i < 4; i++) {
        redisReply *rep = rstore_get_reply(r);
        if (!rep || (i == 3 && rep->type != REDIS_REPLY_ARRAY)) rc = -1;
        if (rep) freeReplyObject(rep);
        if (!rep) break;
    }
    if (rc != 0) snprintf(err, errlen, "queueing a delivery: %s", rstore_error(r));
    return rc;
}

int webhook_emit(rstore *r, const char *event, json_t *data, char *err, size_t errlen) {
    char event_id[WEBHOOK_ID_LEN + 1];
    if (errlen) err[0] = '\0';
    if (webhook_new_id(event_id) != 0) {
        json_decref(data);
        snprintf(err, errlen, "no randomness available");
        return -1;
    }
    json_t *msg = json_pack("{s:s,s:s,s:I,s:o}", "event", event, "id", event_id, "at", (json_int_t)time(NULL), "data",
                            data ? data : json_object());
    char *body = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!body) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    log_info("event.fired", LOG_S("event", event), LOG_S("event_id", event_id), LOG_S("body", body), LOG_END);
    redisReply *ids = rstore_command(r, "SMEMBERS %s", PA_RKEY_ADMIN_WEBHOOKS);
    int queued = 0;
    if (!ids || ids->type != REDIS_REPLY_ARRAY) {
        redis_failed(r, ids, "reading the webhooks", err, errlen);
        free(body);
        return -1;
    }
    for (size_t i = 0; i < ids->elements && queued >= 0; i++) {
        char rkey[PA_RKEY_MAX];
        pa_rkey_admin_webhook(rkey, sizeof rkey, ids->element[i]->str);
        redisReply *ev = rstore_command(r, "HGET %s events", rkey);
        bool wants = ev && ev->type == REDIS_REPLY_STRING && subscribed(ev->str, event);
        if (!ev) queued = -1;
        if (ev) freeReplyObject(ev);
        if (wants && queue_delivery(r, ids->element[i]->str, event, event_id, body, err, errlen) != 0) queued = -1;
        if (wants && queued >= 0) queued++;
    }
    if (queued < 0 && !err[0]) snprintf(err, errlen, "reading the webhooks: %s", rstore_error(r));
    freeReplyObject(ids);
    free(body);
    return queued;
}
