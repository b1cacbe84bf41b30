/* machines_api.c -- see machines_api.h. A page examines at most
 * PAGE_BUDGET index entries, so a search whose filters match little still
 * answers quickly: with fewer items than asked for (maybe none) and a
 * next_cursor to go on from. */
#include "machines_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_args.h"
#include "machine_dir.h"
#include "machine_search.h"

#define PAGE_BUDGET 5000
#define TEXT_FILTER_MAX 253 /* the longest hostname a machine may report */

const char *const machine_filter_params[] = {"group",  "serial", "order", "hostname", "ip",     "mac", "host_serial",
                                             "status", "from",   "to",    "limit",    "cursor", NULL};

/* A decimal in [0, max]; false when `s` is anything else. */
static bool parse_uint(const char *s, unsigned long long max, unsigned long long *out) {
    if (!s || !*s || *s == '-' || *s == '+') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max) return false;
    *out = v;
    return true;
}

bool machine_filters_from_query(const http_request *rq, machine_filters *f) {
    memset(f, 0, sizeof *f);
    f->status = MACHINE_STATUS_ANY;
    unsigned long long v;
    const char *g = http_query(rq, "group"), *s = http_query(rq, "serial");
    if (g && !(f->has_group = parse_uint(g, UINT32_MAX, &v))) goto bad_group;
    f->group = (uint32_t)(g ? v : 0);
    if (s && !(f->has_serial = parse_uint(s, UINT32_MAX, &v))) {
        http_reply_error(rq, 400, "serial: expected a key serial (decimal)");
        return false;
    }
    f->serial = (uint32_t)(s ? v : 0);
    if (f->has_serial && !f->has_group) {
        http_reply_error(rq, 400, "serial: needs group");
        return false;
    }
    const char *names[] = {"order", "hostname", "ip", "mac", "host_serial"};
    const char **slots[] = {&f->order, &f->hostname, &f->ip, &f->mac, &f->host_serial};
    for (size_t i = 0; i < 5; i++) {
        const char *t = http_query(rq, names[i]);
        if (t && strlen(t) > TEXT_FILTER_MAX) {
            http_reply_error(rq, 400, "%s: longer than %d characters", names[i], TEXT_FILTER_MAX);
            return false;
        }
        *slots[i] = t;
    }
    const char *st = http_query(rq, "status");
    if (st && !machine_status_parse(st, &f->status)) {
        http_reply_error(rq, 400, "status: expected active, pending, expired, deactivated or awaiting_approval");
        return false;
    }
    const char *from = http_query(rq, "from"), *to = http_query(rq, "to");
    if (from && !parse_uint(from, UINT32_MAX, &v)) {
        http_reply_error(rq, 400, "from: expected unix seconds");
        return false;
    }
    f->from = from ? (int64_t)v : 0;
    if (to && !parse_uint(to, UINT32_MAX, &v)) {
        http_reply_error(rq, 400, "to: expected unix seconds");
        return false;
    }
    f->to = to ? (int64_t)v : 0;
    return true;
bad_group:
    http_reply_error(rq, 400, "group: expected a group ID (decimal)");
    return false;
}

json_t *machine_row_json(const machine_row *w) {
    json_t *macs = json_array();
    char one[MACHINE_FIELD_MAX];
    for (const char *p = w->macs; macs && *p;) {
        size_t n = strcspn(p, " ");
        if (n > 0 && n < sizeof one) {
            memcpy(one, p, n);
            one[n] = 0;
            json_array_append_new(macs, json_string(one));
        }
        p += n;
        while (*p == ' ') p++;
    }
    return json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:I, s:I, s:I}", "id", w->id, "group",
                     (json_int_t)w->group, "serial", (json_int_t)w->serial, "order", w->order, "hostname", w->hostname,
                     "ip", w->ip, "macs", macs ? macs : json_array(), "host_serial", w->host_serial, "os", w->os,
                     "status", machine_status_name(w->status), "first_seen", (json_int_t)w->first_seen, "last_seen",
                     (json_int_t)w->last_seen, "expires_at", (json_int_t)w->expires_at);
}

void machines_search(const http_request *rq) {
    if (!http_query_only(rq, machine_filter_params)) return;
    machine_filters f;
    if (!machine_filters_from_query(rq, &f)) return;
    long long limit;
    if (!http_query_int(rq, "limit", 1, API_LIMIT_MAX, API_LIMIT_DEFAULT, &limit)) return;
    char err[160];
    machine_search *s = machine_search_open(rq->redis, &f, http_query(rq, "cursor"), err, sizeof err);
    if (!s) {
        http_reply_error(rq, 400, "%s", err);
        return;
    }
    json_t *items = json_array();
    const machine_record *rec;
    int rc = 0;
    while (items && json_array_size(items) < (size_t)limit && (rc = machine_search_next(s, PAGE_BUDGET, &rec)) == 1)
        json_array_append_new(items, machine_row_json(&rec->row));
    if (rc < 0 || !items) {
        http_reply_error(rq, 503, "%s", items ? machine_search_error(s) : "out of memory");
        json_decref(items);
        machine_search_close(s);
        return;
    }
    json_t *body = json_pack("{s:o}", "items", items);
    if (!machine_search_done(s)) {
        char cursor[MACHINE_CURSOR_MAX];
        machine_search_cursor(s, cursor);
        json_object_set_new(body, "next_cursor", json_string(cursor));
    }
    machine_search_close(s);
    http_reply_json(rq, 200, body);
}

static const char *op_name(char op) {
    switch (op) {
    case 'a': return "activate";
    case 'b': return "rebound";
    case 'm': return "moved";
    case 'r': return "renew";
    case 'd': return "deactivate";
    case 'x': return "reclaimed";
    case 'p': return "pending";
    case 'q': return "deactivation_requested";
    default: return "unknown";
    }
}

void machines_get(const http_request *rq) {
    static const char *const none[] = {NULL};
    if (!http_query_only(rq, none)) return;
    uint8_t id[MD_ID_LEN];
    if (!rq->params[0] || !machine_id_parse(rq->params[0], id)) {
        http_reply_error(rq, 404, "no machine %s", rq->params[0] ? rq->params[0] : "");
        return;
    }
    machine_record rec;
    int found = machine_dir_get(rq->redis, id, (int64_t)time(NULL), &rec);
    if (found < 0) {
        http_reply_error(rq, 503, "machine directory: %s", rstore_error(rq->redis));
        return;
    }
    if (found == 0) {
        http_reply_error(rq, 404, "no machine %s", rq->params[0]);
        return;
    }
    json_t *body = machine_row_json(&rec.row), *history = json_array();
    for (size_t i = 0; history && i < rec.n_history; i++)
        json_array_append_new(
            history, json_pack("{s:s, s:I}", "op", op_name(rec.history[i].op), "t", (json_int_t)rec.history[i].t));
    json_object_set_new(body, "history", history ? history : json_array());
    http_reply_json(rq, 200, body);
}
