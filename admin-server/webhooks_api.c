/* webhooks_api.c -- the webhook routes: input checks and answers; the
 * records are webhooks.c's, the delivery log webhook_delivery.c's. */
#include "webhooks_api.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_args.h"
#include "b64url.h"
#include "redis_keys.h"
#include "webhooks.h"

void webhooks_list(const http_request *rq) {
    static const char *const none[] = {NULL};
    if (!http_query_only(rq, none)) return;
    char err[256];
    json_t *items = webhook_list(rq->redis, err, sizeof err);
    if (!items) {
        http_reply_error(rq, 503, "%s", err);
        return;
    }
    http_reply_json(rq, 200, json_pack("{s:o}", "items", items));
}

void webhooks_create(const http_request *rq) {
    static const char *const fields[] = {"url", "events", NULL};
    json_t *body = http_body_json(rq, fields), *out = NULL;
    if (!body) return;
    char err[256];
    const char *url = json_string_value(json_object_get(body, "url"));
    int rc = webhook_create(rq->redis, url, json_object_get(body, "events"), &out, err, sizeof err);
    json_decref(body);
    http_trail(rq, "webhook.create", rc == 0 ? json_string_value(json_object_get(out, "id")) : "",
               rc == 0 ? "ok" : err);
    if (rc == -1) {
        http_reply_error(rq, 400, "%s", err);
        return;
    }
    if (rc != 0) {
        http_reply_error(rq, 503, "%s", err);
        return;
    }
    http_reply_json(rq, 201, out);
}

void webhooks_delete(const http_request *rq) {
    char err[256] = "";
    const char *id = rq->params[0];
    int rc = strlen(id) == WEBHOOK_ID_LEN ? webhook_delete(rq->redis, id, err, sizeof err) : 0;
    http_trail(rq, "webhook.delete", id, rc == 1 ? "ok" : rc == 0 ? "no such webhook" : err);
    if (rc == 0) {
        http_reply_error(rq, 404, "no webhook %s", id);
        return;
    }
    if (rc < 0) {
        http_reply_error(rq, 503, "%s", err);
        return;
    }
    http_reply_json(rq, 200, json_pack("{s:s}", "deleted", id));
}

/* One admin:deliveries entry as JSON: its fields, numbers as numbers. */
static json_t *delivery_json(const redisReply *entry) {
    json_t *o = json_pack("{s:s}", "log_id", entry->element[0]->str);
    const redisReply *f = entry->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const char *k = f->element[i]->str, *v = f->element[i + 1]->str;
        bool number = !strcmp(k, "try") || !strcmp(k, "status") || !strcmp(k, "next_at_ms") || !strcmp(k, "at");
        json_object_set_new(o, k, number ? json_integer(atoll(v)) : json_string(v));
    }
    return o;
}

/* The opaque cursor (base64url of the last entry's stream ID) as the
 * exclusive start "(ID" of the next page; false when it is not one. */
static bool cursor_start(const char *cursor, char *start, size_t n) {
    uint8_t raw[41];
    long len = b64url_decode(cursor, raw, sizeof raw - 1);
    if (len <= 0) return false;
    raw[len] = '\0';
    const char *id = (const char *)raw;
    if (strspn(id, "0123456789-") != (size_t)len || !strchr(id, '-')) return false;
    snprintf(start, n, "(%s", id);
    return true;
}

void webhooks_deliveries(const http_request *rq) {
    static const char *const allowed[] = {"limit", "cursor", NULL};
    if (!http_query_only(rq, allowed)) return;
    const char *cursor = http_query(rq, "cursor");
    char start[48] = "+";
    long long limit;
    if (!http_query_int(rq, "limit", 1, API_LIMIT_MAX, API_LIMIT_DEFAULT, &limit)) return;
    if (cursor && !cursor_start(cursor, start, sizeof start)) {
        http_reply_error(rq, 400, "parameter \"cursor\": not a cursor of this list");
        return;
    }
    redisReply *rep = rstore_command(rq->redis, "XREVRANGE %s %s - COUNT %lld", PA_RKEY_ADMIN_DELIVERIES, start, limit);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        http_reply_error(rq, 503, "reading the delivery log: %s", rep && rep->str ? rep->str : rstore_error(rq->redis));
        if (rep) freeReplyObject(rep);
        return;
    }
    json_t *items = json_array(), *out = json_object();
    for (size_t i = 0; i < rep->elements; i++) json_array_append_new(items, delivery_json(rep->element[i]));
    json_object_set_new(out, "items", items);
    if (rep->elements == (size_t)limit) {
        const char *last = rep->element[rep->elements - 1]->element[0]->str;
        char next[B64URL_LEN(40)];
        b64url_encode(last, strlen(last), next);
        json_object_set_new(out, "next_cursor", json_string(next));
    }
    freeReplyObject(rep);
    http_reply_json(rq, 200, out);
}
