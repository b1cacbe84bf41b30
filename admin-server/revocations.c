/* revocations.c -- the revocation routes (revocations.h). */
#include "revocations.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_args.h"
#include "errbuf.h"
#include "keycodec.h"
#include "redis_keys.h"

#define REASON_MAX 128 /* the audit log's limit, kept on premises too */

static audit_revoker *audit_now;

void revocations_setup(audit_revoker *audit) { audit_now = audit; }

typedef struct revocation_req {
    uint32_t group;     /* the key's group */
    uint32_t serial;    /* the key's serial */
    const char *reason; /* 1..128 printable ASCII */
} revocation_req;

static bool body_uint(const http_request *rq, json_t *body, const char *field, json_int_t max, uint32_t *out) {
    json_t *v = json_object_get(body, field);
    if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= max) {
        *out = (uint32_t)json_integer_value(v);
        return true;
    }
    http_reply_error(rq, 400, "field \"%s\": expected an integer 0..%lld", field, (long long)max);
    return false;
}

static bool reason_ok(const char *r) {
    size_t n = r ? strlen(r) : 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)r[i] < 0x20 || (unsigned char)r[i] > 0x7e) return false;
    return n > 0 && n <= REASON_MAX;
}

static bool parse_request(const http_request *rq, json_t *body, revocation_req *q) {
    if (!body_uint(rq, body, "group", PK_GROUP_MAX, &q->group) ||
        !body_uint(rq, body, "serial", PK_SERIAL_MAX, &q->serial))
        return false;
    q->reason = json_string_value(json_object_get(body, "reason"));
    if (reason_ok(q->reason)) return true;
    http_reply_error(rq, 400, "field \"reason\": required, 1-%d printable ASCII characters", REASON_MAX);
    return false;
}

/* On premises: SADD {g:ID}:revoked, then the log entry. 0 (*newly), -1 with err. */
static int revoke_local(rstore *r, const revocation_req *q, const char *by, bool *newly, char *err, size_t errlen) {
    char k[PA_RKEY_MAX];
    pa_rkey_revoked(k, sizeof k, q->group);
    redisReply *a = rstore_command(r, "SADD %s %u", k, q->serial);
    if (!a || a->type != REDIS_REPLY_INTEGER) {
        int rc = err_set(err, errlen, "%s: %s", k, a && a->type == REDIS_REPLY_ERROR ? a->str : rstore_error(r));
        if (a) freeReplyObject(a);
        return rc;
    }
    *newly = a->integer == 1;
    freeReplyObject(a);
    if (!*newly) return 0; /* logged when it was revoked */
    redisReply *x =
        rstore_command(r, "XADD %s MAXLEN ~ 1000000 * group %u serial %u reason %s by %s at %lld",
                       PA_RKEY_ADMIN_REVOCATIONS, q->group, q->serial, q->reason, by ? by : "", (long long)time(NULL));
    int rc = x && x->type == REDIS_REPLY_STRING
                 ? 0
                 : err_set(err, errlen, "%s: %s (the key is revoked)", PA_RKEY_ADMIN_REVOCATIONS,
                           x && x->type == REDIS_REPLY_ERROR ? x->str : rstore_error(r));
    if (x) freeReplyObject(x);
    return rc;
}

void revocations_create(const http_request *rq) {
    static const char *const fields[] = {"group", "serial", "reason", NULL};
    json_t *body = http_body_json(rq, fields);
    revocation_req q;
    char target[32], err[256];
    if (!body) {
        http_trail(rq, "key.revoke", "", "bad request");
        return;
    }
    if (!parse_request(rq, body, &q)) {
        http_trail(rq, "key.revoke", "", "bad request");
        json_decref(body);
        return;
    }
    snprintf(target, sizeof target, "%u:%u", q.group, q.serial);
    bool newly = false, denied = false;
    uint64_t seq = 0;
    int rc = audit_now ? audit_revoker_revoke(audit_now, q.group, q.serial, q.reason, rq->user, &seq, &newly, &denied,
                                              err, sizeof err)
                       : revoke_local(rq->redis, &q, rq->user, &newly, err, sizeof err);
    if (rc == 0) {
        http_trail(rq, "key.revoke", target, "ok");
        json_t *j = json_pack("{s:I, s:I, s:b, s:s}", "group", (json_int_t)q.group, "serial", (json_int_t)q.serial,
                              "new", newly, "via", audit_now ? "audit" : "local");
        if (j && audit_now) json_object_set_new(j, "sequence", json_integer((json_int_t)seq));
        http_reply_json(rq, newly ? 201 : 200, j);
    } else if (rc == 1 && !denied) {
        http_trail(rq, "key.revoke", target, err);
        http_reply_error(rq, 400, "audit server: %s", err);
    } else {
        http_trail(rq, "key.revoke", target, denied ? "the audit server refuses this server" : "unavailable");
        api_unavailable(
            rq, denied ? "revocation (the audit server refuses this admin server's certificate)" : "revocation", err);
    }
    json_decref(body);
}

/* ---- the list, newest first ---- */

static json_t *item(uint64_t seq, const char *id, uint32_t group, uint32_t serial, const char *reason, const char *by,
                    long long at) {
    json_t *j = json_pack("{s:I, s:I, s:s, s:I}", "group", (json_int_t)group, "serial", (json_int_t)serial, "reason",
                          reason, "revoked_at", (json_int_t)at);
    if (j && seq) json_object_set_new(j, "sequence", json_integer((json_int_t)seq));
    if (j && id) json_object_set_new(j, "id", json_string(id));
    if (j && by) json_object_set_new(j, "by", json_string(by));
    return j;
}

static const char *field(const redisReply *fields, const char *name) {
    for (size_t i = 0; fields && i + 1 < fields->elements; i += 2)
        if (strcmp(fields->element[i]->str, name) == 0) return fields->element[i + 1]->str;
    return "";
}

/* admin:revocations from the cursor's entry (exclusive) down. */
static int list_local(rstore *r, const char *after, size_t limit, json_t *items, char *next, size_t nextlen, char *err,
                      size_t errlen) {
    char from[API_CURSOR_MAX + 1] = "+";
    if (after[0]) snprintf(from, sizeof from, "(%s", after);
    redisReply *rep =
        rstore_command(r, "XREVRANGE %s %s - COUNT %u", PA_RKEY_ADMIN_REVOCATIONS, from, (unsigned)(limit + 1));
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        int rc = err_set(err, errlen, "%s: %s", PA_RKEY_ADMIN_REVOCATIONS,
                         rep && rep->type == REDIS_REPLY_ERROR ? rep->str : rstore_error(r));
        if (rep) freeReplyObject(rep);
        return rc;
    }
    next[0] = '\0';
    for (size_t i = 0; i < rep->elements && i < limit; i++) {
        const redisReply *e = rep->element[i], *f = e->elements == 2 ? e->element[1] : NULL;
        json_array_append_new(items, item(0, e->element[0]->str, (uint32_t)strtoul(field(f, "group"), NULL, 10),
                                          (uint32_t)strtoul(field(f, "serial"), NULL, 10), field(f, "reason"),
                                          field(f, "by"), strtoll(field(f, "at"), NULL, 10)));
        if (rep->elements > limit && i + 1 == limit) snprintf(next, nextlen, "%s", e->element[0]->str);
    }
    freeReplyObject(rep);
    return 0;
}

/* The audit server's log, read backwards: the page below sequence `below`
 * (0: from the newest). */
static int list_audit(audit_revoker *a, const char *after, size_t limit, json_t *items, char *next, size_t nextlen,
                      char *err, size_t errlen) {
    audit_log_entry one, *page = NULL;
    size_t n = 0;
    uint64_t last = 0, below = after[0] ? strtoull(after, NULL, 10) : 0;
    if (audit_revoker_list(a, 0, 1, &one, &n, &last, err, errlen) != 0) return -1;
    uint64_t top = below ? below - 1 : last, from = top > limit ? top - limit : 0;
    next[0] = '\0';
    if (top == 0) return 0;
    if (!(page = calloc(limit, sizeof *page))) return err_set(err, errlen, "out of memory");
    int rc = audit_revoker_list(a, from, (uint32_t)(top - from), page, &n, &last, err, errlen);
    for (size_t i = n; rc == 0 && i-- > 0;)
        if (page[i].sequence <= top)
            json_array_append_new(items, item(page[i].sequence, NULL, page[i].group, page[i].serial, page[i].reason,
                                              NULL, page[i].revoked_at));
    if (rc == 0 && from > 0) snprintf(next, nextlen, "%llu", (unsigned long long)from + 1);
    free(page);
    return rc;
}

/* A cursor this list hands out: a sequence (audit log) or a stream entry ID. */
static bool cursor_ok(const char *c, bool sequence) {
    size_t digits = strspn(c, "0123456789");
    if (sequence) return digits > 0 && c[digits] == '\0' && strtoull(c, NULL, 10) > 1;
    return digits > 0 && c[digits] == '-' && c[digits + 1] &&
           strspn(c + digits + 1, "0123456789") == strlen(c + digits + 1);
}

void revocations_list(const http_request *rq) {
    static const char *const allowed[] = {"limit", "cursor", NULL};
    size_t limit;
    char after[API_CURSOR_MAX], next[API_CURSOR_MAX], err[256];
    if (!http_query_only(rq, allowed) || !api_page(rq, &limit, after)) return;
    if (after[0] && !cursor_ok(after, audit_now != NULL)) {
        http_reply_error(rq, 400, "cursor: not a cursor this API handed out");
        return;
    }
    json_t *items = json_array();
    int rc = !items      ? err_set(err, sizeof err, "out of memory")
             : audit_now ? list_audit(audit_now, after, limit, items, next, sizeof next, err, sizeof err)
                         : list_local(rq->redis, after, limit, items, next, sizeof next, err, sizeof err);
    if (rc != 0) {
        json_decref(items);
        api_unavailable(rq, "revocations", err);
        return;
    }
    json_t *body = json_pack("{s:o}", "items", items);
    if (body && next[0]) json_object_set_new(body, "next_cursor", api_cursor(next));
    http_reply_json(rq, 200, body);
}
