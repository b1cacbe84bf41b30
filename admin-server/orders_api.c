/* orders_api.c -- the order routes (orders_api.h).
 *
 * Lists read the `orders` set and each order's record (orders are few:
 * hundreds, not millions), filter, and page by service serial: the cursor
 * is the last serial returned. */
#include "orders_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api_args.h"
#include "order_controls.h"
#include "order_describe.h"
#include "order_store.h"
#include "organisations.h"
#include "redis_keys.h"

static const admin_orders_config *config_now;

void orders_api_setup(const admin_orders_config *cfg) { config_now = cfg; }

/* ---- import ---- */

/* The refusals a caller can fix by sending another file are 400; the ones
 * that depend on what is stored are 409. */
static int refusal_status(order_refusal r) {
    return r == ORDER_REFUSED_OLDER_REVISION || r == ORDER_REFUSED_CONFLICT ? 409 : 400;
}

static const char *import_result(order_import_result r) {
    switch (r) {
    case ORDER_IMPORT_NEW: return "imported";
    case ORDER_IMPORT_REPLACED: return "replaced";
    default: return "unchanged";
    }
}

void orders_import(const http_request *rq) {
    static const char *const none[] = {NULL};
    char err[1024];
    if (!http_query_only(rq, none)) return;
    if (!rq->body || rq->body_len == 0) {
        http_trail(rq, "order.import", "", "body: the order file's bytes are required");
        http_reply_error(rq, 400, "body: the order file's bytes are required (Content-Type: application/octet-stream)");
        return;
    }
    /* an order file is bytes; a form or JSON body is a client's mistake, named */
    if (!http_type_is(rq->content_type, "application/octet-stream")) {
        http_trail(rq, "order.import", "", "Content-Type: not application/octet-stream");
        http_reply_error(rq, 415, "Content-Type %s: an order file is sent as application/octet-stream",
                         rq->content_type ? rq->content_type : "(none)");
        return;
    }
    const admin_orders_config *cfg = config_now;
    order_server srv = {.order_keys = cfg ? cfg->order_keys : NULL,
                        .on_premises = cfg && cfg->on_premises,
                        .signing_key = cfg && cfg->on_premises ? cfg->server_key : NULL};
    order_import_outcome out;
    order_import_result res =
        order_import(rq->redis, &srv, rq->body, rq->body_len, (int64_t)time(NULL), &out, err, sizeof err);
    const char *target = out.serial[0] ? out.serial : "";
    if (res == ORDER_IMPORT_REFUSED) {
        http_trail(rq, "order.import", target, err);
        http_reply_error(rq, refusal_status(out.refusal), "%s", err);
        return;
    }
    if (res == ORDER_IMPORT_FAILED) {
        http_trail(rq, "order.import", target, "the store is unavailable");
        api_unavailable(rq, "order import", err);
        return;
    }
    http_trail(rq, "order.import", target, "ok");
    http_reply_json(rq, res == ORDER_IMPORT_NEW ? 201 : 200,
                    json_pack("{s:s, s:s, s:I, s:I, s:I}", "result", import_result(res), "order", out.serial,
                              "revision", (json_int_t)out.revision, "previous_revision",
                              (json_int_t)out.previous_revision, "version", (json_int_t)out.version));
}

/* ---- list ---- */

typedef struct order_filter {
    const char *q;         /* customer prefix (case-insensitive) or serial prefix; NULL: any */
    bool by_organisation;  /* filter on organisation */
    uint32_t organisation; /* ... this one */
} order_filter;

static bool matches(const order_filter *f, const order_record *rec, uint32_t org) {
    if (f->by_organisation && org != f->organisation) return false;
    if (!f->q || !*f->q) return true;
    size_t n = strlen(f->q);
    return strncmp(rec->serial, f->q, n) == 0 || strncasecmp(rec->customer, f->q, n) == 0;
}

static json_t *time_or_null(int64_t t) { return t ? json_integer((json_int_t)t) : json_null(); }

static json_t *org_json(uint32_t org) { return org ? json_integer(org) : json_null(); }

static json_t *list_item(const order_record *rec, uint32_t org) {
    return json_pack("{s:s, s:I, s:s, s:s, s:I, s:o, s:o, s:s, s:b, s:o}", "service_serial", rec->serial, "revision",
                     (json_int_t)rec->revision, "customer", rec->customer, "mode", seat_mode_name(rec->mode), "seats",
                     (json_int_t)rec->seats, "valid_from", time_or_null(rec->valid_from), "valid_until",
                     time_or_null(rec->valid_until), "deployment", rec->on_premises ? "on-premises" : "vendor-hosted",
                     "retired", rec->retired, "organisation", org_json(org));
}

static bool parse_filter(const http_request *rq, order_filter *f) {
    const char *org = http_query(rq, "organisation");
    *f = (order_filter){.q = http_query(rq, "q")};
    if (f->q && strlen(f->q) > ORDER_CUSTOMER_BYTES) {
        http_reply_error(rq, 400, "q: at most %d bytes", ORDER_CUSTOMER_BYTES);
        return false;
    }
    if (!org) return true;
    if (!organisation_parse_id(org, &f->organisation)) {
        http_reply_error(rq, 400, "organisation: expected an organisation id");
        return false;
    }
    f->by_organisation = true;
    return true;
}

/* Appends the orders after `after` that match, up to `limit`; *last is the
 * serial of the last one taken when another match follows, else "". 0, or -1 with err. */
static int collect(rstore *r, const order_filter *f, const char *after, size_t limit, json_t *items, char *last,
                   char *err, size_t errlen) {
    char(*serials)[ORDER_SERIAL_LEN + 1] = NULL;
    size_t n = 0;
    if (order_store_list(r, &serials, &n, err, errlen) != 0) return -1;
    int rc = 0;
    last[0] = '\0';
    for (size_t i = 0; rc == 0 && !last[0] && i < n; i++) {
        if (strcmp(serials[i], after) <= 0) continue;
        order_record rec;
        uint32_t org = 0;
        int found = order_store_load(r, serials[i], &rec, err, errlen);
        if (found == 0 && organisation_of(r, serials[i], &org, err, errlen) < 0) found = -1;
        if (found < 0) rc = -1;
        else if (found == 0 && matches(f, &rec, org)) {
            /* One match beyond the page: there is a next page, it starts after the page's last. */
            if (json_array_size(items) == limit)
                snprintf(last, ORDER_SERIAL_LEN + 1, "%s",
                         json_string_value(json_object_get(json_array_get(items, limit - 1), "service_serial")));
            else if (json_array_append_new(items, list_item(&rec, org)) != 0)
                rc = -1, snprintf(err, errlen, "out of memory");
        }
        order_record_clear(&rec);
    }
    free(serials);
    return rc;
}

void orders_list(const http_request *rq) {
    static const char *const allowed[] = {"q", "organisation", "limit", "cursor", NULL};
    size_t limit;
    char after[API_CURSOR_MAX], last[ORDER_SERIAL_LEN + 1], err[512];
    order_filter f;
    if (!http_query_only(rq, allowed) || !api_page(rq, &limit, after) || !parse_filter(rq, &f)) return;
    json_t *items = json_array(), *body = NULL;
    if (!items || collect(rq->redis, &f, after, limit, items, last, err, sizeof err) != 0) {
        json_decref(items);
        api_unavailable(rq, "orders", err);
        return;
    }
    body = json_pack("{s:o}", "items", items);
    if (body && last[0]) json_object_set_new(body, "next_cursor", api_cursor(last));
    http_reply_json(rq, 200, body);
}

/* ---- one order ---- */

/* Seats used and free, the thresholds and whether to warn: what the console's
 * seat bar and banner show. */
static json_t *seats_json(const order_record *rec, json_t *counters) {
    json_int_t used = json_integer_value(json_object_get(counters, "seats"));
    json_int_t machines = json_integer_value(json_object_get(counters, "machines"));
    bool counted = rec->mode != SEAT_MODE_UNLIMITED;
    json_int_t free_seats = counted ? (json_int_t)rec->seats - used : 0;
    if (free_seats < 0) free_seats = 0;
    bool warning = counted && rec->seat_warning > 0 && free_seats < (json_int_t)rec->seat_warning;
    return json_pack("{s:o, s:I, s:o, s:I, s:I, s:I, s:b}", "total", counted ? json_integer(rec->seats) : json_null(),
                     "used", used, "free", counted ? json_integer(free_seats) : json_null(), "seat_warning",
                     (json_int_t)rec->seat_warning, "threshold", (json_int_t)rec->threshold, "machines", machines,
                     "warning", warning);
}

/* The usage return's hash ({o:S}:usage) as strings; an empty object when none. */
static json_t *usage_json(rstore *r, const order_record *rec) {
    static const char *const shown[] = {"revision", "generated_at", "received_at", "server_key_id",     "seats_held",
                                        "machines", "over_term",    "uploaded_at", "uploaded_report_at"};
    json_t *j = json_object();
    redisReply *rep = rstore_command(r, "HGETALL %s", rec->key_usage);
    for (size_t i = 0; j && rep && rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2)
        for (size_t k = 0; k < sizeof shown / sizeof *shown; k++)
            if (strcmp(rep->element[i]->str, shown[k]) == 0)
                json_object_set_new(j, shown[k], json_integer(strtoll(rep->element[i + 1]->str, NULL, 10)));
    if (rep) freeReplyObject(rep);
    return j;
}

void orders_get(const http_request *rq) {
    static const char *const none[] = {NULL};
    const char *serial = rq->params[0];
    char err[512];
    order_record rec;
    uint32_t org = 0;
    if (!http_query_only(rq, none) || !api_serial(rq, "serial", serial)) return;
    int found = order_store_load(rq->redis, serial, &rec, err, sizeof err);
    if (found == 0 && organisation_of(rq->redis, serial, &org, err, sizeof err) < 0) found = -1;
    json_t *j = found == 0 ? order_describe(rq->redis, &rec) : NULL;
    if (found == 1) http_reply_error(rq, 404, "no order %s is imported here", serial);
    else if (found < 0) api_unavailable(rq, "order", err);
    else if (!j) http_reply_error(rq, 500, "order %s: its stored record does not decode", serial);
    else {
        json_object_set_new(j, "seats_status", seats_json(&rec, json_object_get(j, "counters")));
        json_object_set_new(j, "usage", usage_json(rq->redis, &rec));
        json_object_set_new(j, "organisation", org_json(org));
        http_reply_json(rq, 200, j), j = NULL;
    }
    json_decref(j);
    order_record_clear(&rec);
}

/* ---- retire ---- */

void orders_retire(const http_request *rq) {
    static const char *const none[] = {NULL};
    const char *serial = rq->params[0];
    char err[512];
    uint64_t version = 0;
    if (!http_query_only(rq, none)) return;
    if (!api_serial(rq, "serial", serial)) {
        http_trail(rq, "order.retire", serial ? serial : "", "serial: not a service serial");
        return;
    }
    int r = order_store_retire(rq->redis, serial, &version, err, sizeof err);
    if (r == 1) {
        http_trail(rq, "order.retire", serial, "no such order");
        http_reply_error(rq, 404, "no order %s is imported here", serial);
    } else if (r < 0) {
        http_trail(rq, "order.retire", serial, "the store is unavailable");
        api_unavailable(rq, "order retire", err);
    } else {
        http_trail(rq, "order.retire", serial, "ok");
        http_reply_json(rq, 200,
                        json_pack("{s:s, s:s, s:I}", "order", serial, "result", r == 2 ? "already" : "retired",
                                  "version", (json_int_t)version));
    }
}

/* ---- component matching ---- */

/* The body's machine_match: an integer 0..ORDER_MATCH_MAX or "exact"; false after answering 400. */
static bool body_match(const http_request *rq, json_t *body, unsigned *k) {
    json_t *v = json_object_get(body, "machine_match");
    if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= ORDER_MATCH_MAX) {
        *k = (unsigned)json_integer_value(v);
        return true;
    }
    if (json_is_string(v) && strcmp(json_string_value(v), "exact") == 0) return *k = 0, true;
    http_reply_error(rq, 400,
                     "field \"machine_match\": expected a number of components from 1 to %d, or 0 or \"exact\" "
                     "for exact matching",
                     ORDER_MATCH_MAX);
    return false;
}

void orders_set_match(const http_request *rq) {
    static const char *const none[] = {NULL}, *const fields[] = {"machine_match", NULL};
    const char *serial = rq->params[0] ? rq->params[0] : "";
    char err[512];
    uint64_t version = 0;
    unsigned k = 0;
    if (!http_query_only(rq, none)) return;
    if (!api_serial(rq, "serial", serial)) {
        http_trail(rq, "order.machine_match", serial, "serial: not a service serial");
        return;
    }
    json_t *body = http_body_json(rq, fields);
    bool ok = body && body_match(rq, body, &k);
    json_decref(body);
    if (!ok) {
        http_trail(rq, "order.machine_match", serial, "bad machine_match");
        return;
    }
    int r = order_set_match(rq->redis, serial, k, &version, err, sizeof err);
    if (r == 1) {
        http_trail(rq, "order.machine_match", serial, "no such order");
        http_reply_error(rq, 404, "no order %s is imported here", serial);
    } else if (r < 0) {
        http_trail(rq, "order.machine_match", serial, "the store is unavailable");
        api_unavailable(rq, "order machine-match", err);
    } else {
        char result[32];
        snprintf(result, sizeof result, "ok: %u", k);
        http_trail(rq, "order.machine_match", serial, result);
        http_reply_json(rq, 200,
                        json_pack("{s:s, s:I, s:s, s:I}", "order", serial, "machine_match", (json_int_t)k, "result",
                                  r == 2 ? "unchanged" : "set", "version", (json_int_t)version));
    }
}
