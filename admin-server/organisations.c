/* organisations.c -- the organisation routes (organisations.h). */
#include "organisations.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_args.h"
#include "errbuf.h"
#include "redis_keys.h"

/* KEYS[1] admin:org:names, [2] admin:org:ID, [3] admin:orgs. ARGV[1] ID,
 * [2] folded name, [3] name, [4] created_at. {'taken', other ID} or {'ok'}. */
static const char CREATE_SCRIPT[] =
    "local other = redis.call('HGET', KEYS[1], ARGV[2])\n"
    "if other then return {'taken', other} end\n"
    "redis.call('HSET', KEYS[1], ARGV[2], ARGV[1])\n"
    "redis.call('HSET', KEYS[2], 'name', ARGV[3], 'folded', ARGV[2], 'created_at', ARGV[4])\n"
    "redis.call('SADD', KEYS[3], ARGV[1])\n"
    "return {'ok'}\n";

/* KEYS[1] admin:org:names, [2] admin:org:ID. ARGV[1] ID, [2] folded new
 * name, [3] new name. {'none'}, {'taken', other ID} or {'ok', old name}. */
static const char RENAME_SCRIPT[] =
    "local old = redis.call('HMGET', KEYS[2], 'name', 'folded')\n"
    "if not old[1] then return {'none'} end\n"
    "local other = redis.call('HGET', KEYS[1], ARGV[2])\n"
    "if other and other ~= ARGV[1] then return {'taken', other} end\n"
    "redis.call('HDEL', KEYS[1], old[2])\n"
    "redis.call('HSET', KEYS[1], ARGV[2], ARGV[1])\n"
    "redis.call('HSET', KEYS[2], 'name', ARGV[3], 'folded', ARGV[2])\n"
    "return {'ok', old[1]}\n";

bool organisation_parse_id(const char *text, uint32_t *id) {
    char *end;
    errno = 0;
    unsigned long long v = text && *text >= '1' && *text <= '9' ? strtoull(text, &end, 10) : 0;
    if (v == 0 || errno || *end || v > UINT32_MAX) return false;
    *id = (uint32_t)v;
    return true;
}

int organisation_of(rstore *r, const char *serial, uint32_t *id, char *err, size_t errlen) {
    char k[PA_RKEY_MAX];
    if (pa_rkey_admin_org_of(k, sizeof k, serial) < 0) return err_set(err, errlen, "serial too long");
    redisReply *rep = rstore_command(r, "GET %s", k);
    int rc = 0;
    *id = 0;
    if (!rep || (rep->type != REDIS_REPLY_STRING && rep->type != REDIS_REPLY_NIL))
        rc = err_set(err, errlen, "%s: %s", k, rep && rep->type == REDIS_REPLY_ERROR ? rep->str : rstore_error(r));
    else if (rep->type == REDIS_REPLY_STRING && !organisation_parse_id(rep->str, id))
        rc = err_set(err, errlen, "%s: not an organisation id", k);
    if (rep) freeReplyObject(rep);
    return rc;
}

/* A name's folded form, or false (with the reason in why) when it is not a
 * name: 1..80 code points, no control characters (C0, DEL, C1). jansson
 * hands over valid UTF-8 only. */
static bool fold_name(const char *name, char *folded, size_t cap, const char **why) {
    size_t chars = 0, n = strlen(name);
    if (n + 1 > cap) return *why = "at most 80 characters", false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if ((c & 0xc0) != 0x80) chars++;
        bool c1 = c == 0xc2 && i + 1 < n && (unsigned char)name[i + 1] >= 0x80 && (unsigned char)name[i + 1] <= 0x9f;
        if (c < 0x20 || c == 0x7f || c1) return *why = "control characters are not allowed", false;
        folded[i] = c < 0x80 ? (char)tolower(c) : (char)c;
    }
    folded[n] = '\0';
    if (chars == 0) return *why = "must not be empty", false;
    if (chars > ORGANISATION_NAME_MAX) return *why = "at most 80 characters", false;
    return true;
}

#define NAME_BYTES (4 * ORGANISATION_NAME_MAX + 1)

/* The body's "name", checked and folded; false after answering 400. */
static bool body_name(const http_request *rq, json_t *body, const char **name, char folded[NAME_BYTES]) {
    json_t *v = json_object_get(body, "name");
    const char *why = NULL;
    if (!json_is_string(v)) why = "expected a string";
    else if (strlen(json_string_value(v)) != json_string_length(v)) why = "control characters are not allowed";
    else fold_name(json_string_value(v), folded, NAME_BYTES, &why);
    if (why) {
        http_reply_error(rq, 400, "field \"name\": %s", why);
        return false;
    }
    *name = json_string_value(v);
    return true;
}

static json_t *org_item(uint32_t id, const char *name, long long created_at) {
    return json_pack("{s:I, s:s, s:I}", "id", (json_int_t)id, "name", name, "created_at", (json_int_t)created_at);
}

static const char *elem(const redisReply *r, size_t i) {
    return r && r->type == REDIS_REPLY_ARRAY && i < r->elements && r->element[i]->str ? r->element[i]->str : "";
}

static const char *store_error(rstore *r, const redisReply *rep) {
    return rep && rep->type == REDIS_REPLY_ERROR ? rep->str : rstore_error(r);
}

/* Creating and renaming change the name index and the organisation's
 * record in one script: on Redis Cluster they are two slots and the script
 * is not split yet, so both refuse by name instead of failing in Redis. */
static bool refused_on_cluster(const http_request *rq, const char *action, const char *target) {
    if (!rstore_is_cluster(rq->redis)) return false;
    http_trail(rq, action, target, "not on Redis Cluster");
    http_reply_error(rq, 501,
                     "%s is not available with Redis A on Redis Cluster (the name index and the record are in "
                     "different slots)",
                     action);
    return true;
}

void organisations_create(const http_request *rq) {
    static const char *const fields[] = {"name", NULL};
    if (refused_on_cluster(rq, "organisation.create", "")) return;
    json_t *body = http_body_json(rq, fields);
    const char *name;
    char folded[NAME_BYTES], id_text[16], created[24], ko[PA_RKEY_MAX];
    if (!body) {
        http_trail(rq, "organisation.create", "", "bad request");
        return;
    }
    if (!body_name(rq, body, &name, folded)) {
        http_trail(rq, "organisation.create", "", "bad name");
        json_decref(body);
        return;
    }
    redisReply *n = rstore_command(rq->redis, "INCR %s", PA_RKEY_ADMIN_ORG_NEXT), *rep = NULL;
    uint32_t id =
        n && n->type == REDIS_REPLY_INTEGER && n->integer > 0 && n->integer <= UINT32_MAX ? (uint32_t)n->integer : 0;
    long long now = (long long)time(NULL);
    if (id) {
        snprintf(id_text, sizeof id_text, "%u", id);
        snprintf(created, sizeof created, "%lld", now);
        pa_rkey_admin_org(ko, sizeof ko, id);
        rep = rstore_command(rq->redis, "EVAL %s 3 %s %s %s %s %s %s %s", CREATE_SCRIPT, PA_RKEY_ADMIN_ORG_NAMES, ko,
                             PA_RKEY_ADMIN_ORGS, id_text, folded, name, created);
    }
    const char *what = elem(rep, 0);
    if (strcmp(what, "ok") == 0) {
        http_trail(rq, "organisation.create", id_text, "ok");
        http_reply_json(rq, 201, org_item(id, name, now));
    } else if (strcmp(what, "taken") == 0) {
        http_trail(rq, "organisation.create", "", "name taken");
        http_reply_error(rq, 409, "field \"name\": organisation %s already has that name", elem(rep, 1));
    } else {
        http_trail(rq, "organisation.create", "", "the store is unavailable");
        api_unavailable(rq, "organisation create", store_error(rq->redis, rep ? rep : n));
    }
    if (n) freeReplyObject(n);
    if (rep) freeReplyObject(rep);
    json_decref(body);
}

static int by_number(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The IDs in admin:orgs, sorted (malloc'd). -1 with err. */
static int org_ids(rstore *r, uint32_t **ids, size_t *n, char *err, size_t errlen) {
    redisReply *rep = rstore_command(r, "SMEMBERS %s", PA_RKEY_ADMIN_ORGS);
    *n = 0;
    *ids = NULL;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        int rc = err_set(err, errlen, "%s: %s", PA_RKEY_ADMIN_ORGS, store_error(r, rep));
        if (rep) freeReplyObject(rep);
        return rc;
    }
    *ids = malloc((rep->elements ? rep->elements : 1) * sizeof **ids);
    for (size_t i = 0; *ids && i < rep->elements; i++)
        if (organisation_parse_id(rep->element[i]->str, &(*ids)[*n])) (*n)++;
    freeReplyObject(rep);
    if (!*ids) return err_set(err, errlen, "out of memory");
    qsort(*ids, *n, sizeof **ids, by_number);
    return 0;
}

void organisations_list(const http_request *rq) {
    static const char *const allowed[] = {"limit", "cursor", NULL};
    size_t limit, n = 0;
    char after[API_CURSOR_MAX], err[256], ko[PA_RKEY_MAX];
    uint32_t *ids = NULL, from = 0;
    if (!http_query_only(rq, allowed) || !api_page(rq, &limit, after)) return;
    if (after[0] && !organisation_parse_id(after, &from)) {
        http_reply_error(rq, 400, "cursor: not a cursor this API handed out");
        return;
    }
    if (org_ids(rq->redis, &ids, &n, err, sizeof err) != 0) {
        api_unavailable(rq, "organisations", err);
        return;
    }
    json_t *items = json_array();
    bool more = false, failed = !items;
    uint32_t last = 0;
    for (size_t i = 0; !failed && !more && i < n; i++) {
        if (ids[i] <= from) continue;
        if (json_array_size(items) == limit) {
            more = true;
            break;
        }
        pa_rkey_admin_org(ko, sizeof ko, ids[i]);
        redisReply *h = rstore_command(rq->redis, "HMGET %s name created_at", ko);
        if (!h || h->type != REDIS_REPLY_ARRAY || h->elements != 2) {
            failed = true, snprintf(err, sizeof err, "%s: %s", ko, store_error(rq->redis, h));
        } else if (h->element[0]->type == REDIS_REPLY_STRING) {
            json_array_append_new(items, org_item(ids[i], h->element[0]->str, strtoll(elem(h, 1), NULL, 10)));
            last = ids[i];
        }
        if (h) freeReplyObject(h);
    }
    free(ids);
    if (failed) {
        json_decref(items);
        api_unavailable(rq, "organisations", err);
        return;
    }
    json_t *body = json_pack("{s:o}", "items", items);
    char cur[16];
    snprintf(cur, sizeof cur, "%u", last);
    if (body && more) json_object_set_new(body, "next_cursor", api_cursor(cur));
    http_reply_json(rq, 200, body);
}

void organisations_rename(const http_request *rq) {
    static const char *const fields[] = {"name", NULL};
    const char *target = rq->params[0] ? rq->params[0] : "", *name;
    uint32_t id;
    char folded[NAME_BYTES], ko[PA_RKEY_MAX], id_text[16];
    if (refused_on_cluster(rq, "organisation.rename", target)) return;
    if (!organisation_parse_id(target, &id)) {
        http_trail(rq, "organisation.rename", target, "bad id");
        http_reply_error(rq, 400, "id: expected an organisation id");
        return;
    }
    json_t *body = http_body_json(rq, fields);
    if (!body) {
        http_trail(rq, "organisation.rename", target, "bad request");
        return;
    }
    if (!body_name(rq, body, &name, folded)) {
        http_trail(rq, "organisation.rename", target, "bad name");
        json_decref(body);
        return;
    }
    snprintf(id_text, sizeof id_text, "%u", id);
    pa_rkey_admin_org(ko, sizeof ko, id);
    redisReply *rep = rstore_command(rq->redis, "EVAL %s 2 %s %s %s %s %s", RENAME_SCRIPT, PA_RKEY_ADMIN_ORG_NAMES, ko,
                                     id_text, folded, name);
    const char *what = elem(rep, 0);
    if (strcmp(what, "ok") == 0) {
        http_trail(rq, "organisation.rename", id_text, "ok");
        http_reply_json(
            rq, 200, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id, "name", name, "previous_name", elem(rep, 1)));
    } else if (strcmp(what, "none") == 0) {
        http_trail(rq, "organisation.rename", id_text, "no such organisation");
        http_reply_error(rq, 404, "no organisation %u", id);
    } else if (strcmp(what, "taken") == 0) {
        http_trail(rq, "organisation.rename", id_text, "name taken");
        http_reply_error(rq, 409, "field \"name\": organisation %s already has that name", elem(rep, 1));
    } else {
        http_trail(rq, "organisation.rename", id_text, "the store is unavailable");
        api_unavailable(rq, "organisation rename", store_error(rq->redis, rep));
    }
    if (rep) freeReplyObject(rep);
    json_decref(body);
}

/* 1 when `key` exists, 0 when not, -1 on a store error. */
static int exists(rstore *r, const char *key) {
    redisReply *rep = rstore_command(r, "EXISTS %s", key);
    int rc = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer > 0 : -1;
    if (rep) freeReplyObject(rep);
    return rc;
}

/* The body's "organisation": an ID, or null (*id = 0); false after 400. */
static bool body_org(const http_request *rq, json_t *body, uint32_t *id) {
    json_t *v = json_object_get(body, "organisation");
    *id = 0;
    if (json_is_null(v)) return true;
    if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= UINT32_MAX) {
        *id = (uint32_t)json_integer_value(v);
        return true;
    }
    http_reply_error(rq, 400, "field \"organisation\": expected an organisation id or null");
    return false;
}

void organisations_assign(const http_request *rq) {
    static const char *const fields[] = {"organisation", NULL};
    const char *serial = rq->params[0] ? rq->params[0] : "";
    char ko[PA_RKEY_MAX], korg[PA_RKEY_MAX], kof[PA_RKEY_MAX];
    uint32_t id;
    if (!api_serial(rq, "serial", serial)) {
        http_trail(rq, "order.organisation", serial, "bad serial");
        return;
    }
    json_t *body = http_body_json(rq, fields);
    if (!body) {
        http_trail(rq, "order.organisation", serial, "bad request");
        return;
    }
    bool ok = body_org(rq, body, &id);
    json_decref(body);
    if (!ok) {
        http_trail(rq, "order.organisation", serial, "bad organisation");
        return;
    }
    pa_rkey_order(ko, sizeof ko, serial);
    pa_rkey_admin_org(korg, sizeof korg, id);
    pa_rkey_admin_org_of(kof, sizeof kof, serial);
    int order = exists(rq->redis, ko), org = id ? exists(rq->redis, korg) : 1;
    redisReply *rep = NULL;
    if (order == 1 && org == 1)
        rep = id ? rstore_command(rq->redis, "SET %s %u", kof, id) : rstore_command(rq->redis, "DEL %s", kof);
    if (order == 0) {
        http_trail(rq, "order.organisation", serial, "no such order");
        http_reply_error(rq, 404, "no order %s is imported here", serial);
    } else if (org == 0) {
        http_trail(rq, "order.organisation", serial, "no such organisation");
        http_reply_error(rq, 404, "field \"organisation\": no organisation %u", id);
    } else if (!rep || rep->type == REDIS_REPLY_ERROR) {
        http_trail(rq, "order.organisation", serial, "the store is unavailable");
        api_unavailable(rq, "order organisation", store_error(rq->redis, rep));
    } else {
        http_trail(rq, "order.organisation", serial, "ok");
        http_reply_json(rq, 200,
                        json_pack("{s:s, s:o}", "order", serial, "organisation", id ? json_integer(id) : json_null()));
    }
    if (rep) freeReplyObject(rep);
}
