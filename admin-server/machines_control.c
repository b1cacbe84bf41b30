/* machines_control.c -- the machine decisions, designation and the approvals
 * queue (machines_control.h).
 *
 * volume.lua is registered once per connection thread (each thread owns its
 * Redis connection, so the index is kept per thread with the store it
 * belongs to). The approvals queue walks every order's machine table with
 * HSCAN: fine for the tables of today (thousands of machines per order),
 * the machine directory replaces it for millions. */
#include "machines_control.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_args.h"
#include "b64url.h"
#include "hex.h"
#include "order_controls.h"
#include "order_store.h"
#include "volume_policy.h"

#define MACHINE_REF_LEN (ORDER_SERIAL_LEN + 1 + 2 * VOLUME_DIGEST_LEN) /* "SERIAL-HEX" */
#define DIR_ID_LEN 12                                                  /* a directory id's bytes */
#define DIR_ID_TEXT_LEN 16                                             /* ... as base64url */

static machine_order_fn lookup_now;

void machines_control_setup(machine_order_fn lookup) { lookup_now = lookup; }

/* volume.lua's index on this thread's connection, -1 when it cannot be registered. */
static int volume_script(rstore *r) {
    static _Thread_local rstore *on;
    static _Thread_local int idx = -1;
    if (on != r || idx < 0) {
        idx = volume_register(r);
        on = r;
    }
    return idx;
}

typedef struct machine_target {
    char serial[ORDER_SERIAL_LEN + 1];
    char hex[2 * VOLUME_DIGEST_LEN + 1];
    uint8_t digest[VOLUME_DIGEST_LEN];
} machine_target;

static bool set_target(machine_target *t, const char *serial, size_t serial_len, const char *hex) {
    bool ok = serial_len == ORDER_SERIAL_LEN && strlen(hex) == 2 * VOLUME_DIGEST_LEN;
    for (size_t i = 0; ok && i < ORDER_SERIAL_LEN; i++) ok = serial[i] >= '0' && serial[i] <= '9';
    if (!ok || pa_hex_decode(hex, strlen(hex), t->digest, sizeof t->digest) != VOLUME_DIGEST_LEN) return false;
    memcpy(t->serial, serial, ORDER_SERIAL_LEN);
    t->serial[ORDER_SERIAL_LEN] = '\0';
    for (size_t i = 0; i <= 2 * VOLUME_DIGEST_LEN; i++)
        t->hex[i] = (char)(hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] + 32 : hex[i]);
    return true;
}

/* The directory's id of machine `digest` of order `serial`: the first 12
 * bytes of SHA-1("o" SERIAL NUL DIGEST), as machine_dir.lua's machine_id. */
static void dir_id(const char *serial, const uint8_t digest[VOLUME_DIGEST_LEN], uint8_t out[DIR_ID_LEN]) {
    uint8_t buf[2 + ORDER_SERIAL_LEN + VOLUME_DIGEST_LEN], md[SHA_DIGEST_LENGTH];
    size_t n = 0;
    buf[n++] = 'o';
    memcpy(buf + n, serial, ORDER_SERIAL_LEN), n += ORDER_SERIAL_LEN;
    buf[n++] = '\0';
    memcpy(buf + n, digest, VOLUME_DIGEST_LEN), n += VOLUME_DIGEST_LEN;
    SHA1(buf, n, md);
    memcpy(out, md, DIR_ID_LEN);
}

typedef struct id_search {
    const char *serial;       /* the order */
    uint8_t want[DIR_ID_LEN]; /* the id asked for */
    machine_target *t;        /* filled when found */
} id_search;

static int id_match(void *arg, const uint8_t digest[VOLUME_DIGEST_LEN], const volume_record *m, const redisReply *f) {
    id_search *s = arg;
    uint8_t id[DIR_ID_LEN];
    dir_id(s->serial, digest, id);
    if (memcmp(id, s->want, DIR_ID_LEN) != 0) return 0;
    char hex[2 * VOLUME_DIGEST_LEN + 1];
    pa_hex_encode(digest, VOLUME_DIGEST_LEN, hex);
    return set_target(s->t, s->serial, ORDER_SERIAL_LEN, hex) ? 1 : 0;
}

/* A directory id: its order from the directory, its digest from the
 * order's table. True when found; otherwise it has answered. */
static bool resolve_dir_id(const http_request *rq, const char *text, machine_target *t) {
    char serial[16], err[256];
    order_record rec;
    int got = lookup_now(rq->redis, text, serial, sizeof serial, err, sizeof err), found = 0;
    id_search s = {serial, {0}, t};
    if (got == 1 && (!api_serial_text(serial) || b64url_decode(text, s.want, DIR_ID_LEN) != DIR_ID_LEN)) got = 0;
    int loaded = got == 1 ? order_store_load(rq->redis, serial, &rec, err, sizeof err) : 1;
    if (loaded == 0) found = order_machines_each(rq->redis, &rec, false, id_match, &s, err, sizeof err);
    else if (loaded < 0) found = -1;
    if (got == 1) order_record_clear(&rec);
    if (got < 0 || found < 0) api_unavailable(rq, "machine", err);
    else if (got == 2) http_reply_error(rq, 400, "id: machine %s is not a volume order's (no seat to decide)", text);
    else if (got == 0 || found != 1) http_reply_error(rq, 404, "no machine %s", text);
    return got == 1 && found == 1;
}

/* The machine the path (or, with "-", the body) names; false after 400. */
static bool parse_target(const http_request *rq, machine_target *t) {
    static const char *const fields[] = {"order", "machine", NULL};
    const char *id = rq->params[0] ? rq->params[0] : "";
    if (lookup_now && strlen(id) == DIR_ID_TEXT_LEN) return resolve_dir_id(rq, id, t);
    if (strcmp(id, "-") != 0) {
        if (strlen(id) == MACHINE_REF_LEN && id[ORDER_SERIAL_LEN] == '-' &&
            set_target(t, id, ORDER_SERIAL_LEN, id + ORDER_SERIAL_LEN + 1))
            return true;
        http_reply_error(rq, 400,
                         "id: expected ORDER-DIGEST (the order's %d-digit service serial, '-', the machine digest in "
                         "%d hex digits), or '-' with the body {\"order\", \"machine\"}",
                         ORDER_SERIAL_LEN, 2 * VOLUME_DIGEST_LEN);
        return false;
    }
    json_t *body = http_body_json(rq, fields);
    if (!body) return false;
    const char *serial = json_string_value(json_object_get(body, "order"));
    const char *hex = json_string_value(json_object_get(body, "machine"));
    bool ok = serial && hex && set_target(t, serial, strlen(serial), hex);
    if (!ok)
        http_reply_error(rq, 400, "%s",
                         !serial || !api_serial_text(serial)
                             ? "field \"order\": expected a service serial of 8 digits"
                             : "field \"machine\": expected a machine digest of 32 hex digits");
    json_decref(body);
    return ok;
}

static const char *const decision_action[] = {
    [VOLUME_APPROVE] = "machine.approve", [VOLUME_DENY] = "machine.deny", [VOLUME_FORCE] = "machine.deactivate"};

static void decide(const http_request *rq, volume_decision d) {
    machine_target t;
    char target[MACHINE_REF_LEN + 1];
    if (!parse_target(rq, &t)) {
        http_trail(rq, decision_action[d], rq->params[0] ? rq->params[0] : "", "bad machine");
        return;
    }
    snprintf(target, sizeof target, "%s-%s", t.serial, t.hex);
    int script = volume_script(rq->redis);
    volume_result r = {.status = VOLUME_UNAVAILABLE};
    if (script >= 0) volume_decide(rq->redis, script, t.serial, d, t.digest, &r);
    else snprintf(r.error, sizeof r.error, "cannot register volume.lua");
    switch (r.status) {
    case VOLUME_OK:
        http_trail(rq, decision_action[d], target, "ok");
        http_reply_json(rq, 200,
                        json_pack("{s:s, s:s, s:s, s:I, s:I}", "order", t.serial, "machine", t.hex, "result",
                                  volume_decision_name(d), "seats_used", (json_int_t)r.seats_used, "machines",
                                  (json_int_t)r.count));
        return;
    case VOLUME_UNKNOWN_ORDER:
        http_trail(rq, decision_action[d], target, "no such order");
        http_reply_error(rq, 404, "no order %s is imported here", t.serial);
        return;
    case VOLUME_NOT_FOUND:
        http_trail(rq, decision_action[d], target, "no such machine");
        http_reply_error(rq, 404, "order %s has no machine %s", t.serial, t.hex);
        return;
    case VOLUME_NOT_REQUESTED:
        http_trail(rq, decision_action[d], target, "no deactivation requested");
        http_reply_error(rq, 409, "machine %s asked for no deactivation (order %s)", t.hex, t.serial);
        return;
    default:
        http_trail(rq, decision_action[d], target, "the store is unavailable");
        api_unavailable(rq, decision_action[d],
                        r.status == VOLUME_UNAVAILABLE ? r.error : volume_status_name(r.status));
    }
}

void machines_approve(const http_request *rq) { decide(rq, VOLUME_APPROVE); }
void machines_deny(const http_request *rq) { decide(rq, VOLUME_DENY); }
void machines_deactivate(const http_request *rq) { decide(rq, VOLUME_FORCE); }

/* ---- designated devices ---- */

/* The body's one device: {"machine": HEX} | {"serial": S} | {"mac": M}. */
static bool device_name(const http_request *rq, char name[VOLUME_DESIGNATION_MAX]) {
    static const char *const fields[] = {"machine", "serial", "mac", NULL};
    static const char kinds[] = {'m', 's', 'a'};
    static const char *const expect[] = {"a machine digest of 32 hex digits",
                                         "a host serial of 1..64 printable characters",
                                         "a MAC address aa:bb:cc:dd:ee:ff"};
    json_t *body = http_body_json(rq, fields);
    if (!body) return false;
    int given = 0, rc = 0;
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(body, fields[i]);
        if (!v) continue;
        given++;
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            volume_designation_name(kinds[i], json_string_value(v), name) < 0) {
            http_reply_error(rq, 400, "field \"%s\": expected %s", fields[i], expect[i]);
            rc = -1;
            break;
        }
    }
    if (!rc && given != 1) {
        http_reply_error(rq, 400, "give exactly one of \"machine\", \"serial\", \"mac\"");
        rc = -1;
    }
    json_decref(body);
    return rc == 0;
}

static void designation(const http_request *rq, bool add) {
    const char *serial = rq->params[0] ? rq->params[0] : "", *action = add ? "order.designate" : "order.undesignate";
    char name[VOLUME_DESIGNATION_MAX], err[256], target[ORDER_SERIAL_LEN + 2 + VOLUME_DESIGNATION_MAX];
    bool changed = false;
    if (!api_serial(rq, "serial", serial) || !device_name(rq, name)) {
        http_trail(rq, action, serial, "bad request");
        return;
    }
    snprintf(target, sizeof target, "%s %s", serial, name);
    int r = order_designate(rq->redis, serial, name, add, &changed, err, sizeof err);
    if (r == 1) {
        http_trail(rq, action, target, "no such order");
        http_reply_error(rq, 404, "no order %s is imported here", serial);
    } else if (r < 0) {
        http_trail(rq, action, target, "the store is unavailable");
        api_unavailable(rq, action, err);
    } else {
        http_trail(rq, action, target, "ok");
        http_reply_json(rq, 200, json_pack("{s:s, s:s, s:b}", "order", serial, "device", name, "changed", changed));
    }
}

void designated_add(const http_request *rq) { designation(rq, true); }
void designated_remove(const http_request *rq) { designation(rq, false); }

/* ---- the approvals queue ---- */

typedef struct approvals_run {
    const order_record *rec; /* the order being walked */
    const char *after;       /* the cursor: ORDER-DIGEST of the previous page's last */
    size_t limit;            /* items per page */
    json_t *items;           /* the page */
    bool more;               /* a match beyond the page exists */
} approvals_run;

static int approval(void *arg, const uint8_t digest[VOLUME_DIGEST_LEN], const volume_record *m, const redisReply *f) {
    approvals_run *run = arg;
    char ref[MACHINE_REF_LEN + 1], hex[2 * VOLUME_DIGEST_LEN + 1];
    if (!(m->flags & VOLUME_F_ASKED) || (m->flags & VOLUME_F_GONE)) return 0;
    pa_hex_encode(digest, VOLUME_DIGEST_LEN, hex);
    snprintf(ref, sizeof ref, "%s-%s", run->rec->serial, hex);
    if (strcmp(ref, run->after) <= 0) return 0;
    json_t *item = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "id", ref, "order", run->rec->serial, "machine", hex,
                             "customer", run->rec->customer, "first_seen", (json_int_t)m->first_seen, "last_seen",
                             (json_int_t)m->last_contact);
    if (!item) return -1;
    return json_array_append_new(run->items, item) == 0 ? 0 : -1;
}

static int by_id(const void *a, const void *b) {
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "id")),
                  json_string_value(json_object_get(*(json_t *const *)b, "id")));
}

/* Sorts the gathered items by id (HSCAN has no order) and keeps the first `limit`. */
static json_t *page_of(json_t *all, size_t limit, bool *more) {
    size_t n = json_array_size(all);
    json_t **v = malloc((n ? n : 1) * sizeof *v), *page = json_array();
    for (size_t i = 0; v && i < n; i++) v[i] = json_array_get(all, i);
    if (v) qsort(v, n, sizeof *v, by_id);
    for (size_t i = 0; v && page && i < n && i < limit; i++) json_array_append(page, v[i]);
    *more = n > limit;
    free(v);
    return v ? page : (json_decref(page), NULL);
}

void approvals_list(const http_request *rq) {
    static const char *const allowed[] = {"limit", "cursor", NULL};
    size_t limit, n = 0;
    char after[API_CURSOR_MAX], err[512] = "";
    char(*serials)[ORDER_SERIAL_LEN + 1] = NULL;
    if (!http_query_only(rq, allowed) || !api_page(rq, &limit, after)) return;
    if (order_store_list(rq->redis, &serials, &n, err, sizeof err) != 0) {
        api_unavailable(rq, "approvals", err);
        return;
    }
    json_t *all = json_array();
    int rc = all ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (strncmp(serials[i], after, ORDER_SERIAL_LEN) < 0) continue;
        order_record rec;
        int found = order_store_load(rq->redis, serials[i], &rec, err, sizeof err);
        approvals_run run = {&rec, after, limit, all, false};
        if (found < 0) rc = -1;
        else if (found == 0) rc = order_machines_each(rq->redis, &rec, false, approval, &run, err, sizeof err);
        order_record_clear(&rec);
    }
    free(serials);
    bool more = false;
    json_t *page = rc == 0 ? page_of(all, limit, &more) : NULL;
    json_decref(all);
    if (!page) {
        api_unavailable(rq, "approvals", err[0] ? err : "out of memory");
        return;
    }
    json_t *last = json_array_get(page, json_array_size(page) - 1);
    json_t *body = json_pack("{s:o}", "items", page);
    if (body && more && last)
        json_object_set_new(body, "next_cursor", api_cursor(json_string_value(json_object_get(last, "id"))));
    http_reply_json(rq, 200, body);
}
