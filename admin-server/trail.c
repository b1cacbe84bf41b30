/* trail.c -- the admin trail (trail.h).
 *
 * Entry ids are the stream's own (milliseconds-sequence), so a time range
 * is an id range and paging newest first is XREVRANGE from the last id
 * seen, exclusive. Filters on user and action are applied as entries are
 * read, in batches; a page examines at most PAGE_SCAN entries, so a filter
 * that matches nothing costs a bounded amount per call and the client
 * follows next_cursor for more. The cursor is the last id examined,
 * base64url-encoded. */
#include "trail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_args.h"
#include "b64url.h"
#include "log.h"
#include "redis_keys.h"

#define BATCH 200
#define PAGE_SCAN 5000
#define ID_MAX 48

const char *const trail_columns[TRAIL_N_COLS] = {"t", "user", "action", "target", "addr", "result"};

int trail_append(rstore *r, const char *user, const char *action, const char *target, const char *addr,
                 const char *result) {
    char t[24];
    snprintf(t, sizeof t, "%lld", (long long)time(NULL));
    const char *argv[] = {"XADD",       PA_RKEY_ADMIN_TRAIL,
                          "MAXLEN",     "~",
                          TRAIL_MAXLEN, "*",
                          "user",       user,
                          "action",     action,
                          "target",     target,
                          "addr",       addr,
                          "result",     result,
                          "t",          t};
    redisReply *rep = r ? rstore_commandargv(r, sizeof argv / sizeof *argv, argv, NULL) : NULL;
    int rc = rep && rep->type == REDIS_REPLY_STRING ? 0 : -1;
    if (rc)
        log_error("admin.trail.write", LOG_S("action", action), LOG_S("target", target),
                  LOG_S("error", !r                ? "no store"
                                 : rep && rep->str ? rep->str
                                                   : rstore_error(r)),
                  LOG_END);
    if (rep) freeReplyObject(rep);
    return rc;
}

void http_trail(const http_request *rq, const char *action, const char *target, const char *result) {
    (void)trail_append(rq->redis, rq->user ? rq->user : "", action, target ? target : "",
                       rq->client_addr ? rq->client_addr : "", result ? result : "ok");
}

struct trail_rows {
    rstore *r;         /* where the stream is */
    trail_filter f;    /* what to return */
    redisReply *batch; /* the entries read last */
    size_t next;       /* the next of them to examine */
    size_t scanned;    /* entries examined so far */
    bool end;          /* the stream has no more in range */
    char last[ID_MAX]; /* id of the last entry examined */
    char start[32];    /* the range's oldest id ("-" or FROM*1000) */
};

trail_rows *trail_rows_open(rstore *r, const trail_filter *f) {
    trail_rows *it = calloc(1, sizeof *it);
    if (!it) return NULL;
    it->r = r;
    it->f = *f;
    if (f->after) snprintf(it->last, sizeof it->last, "%s", f->after);
    if (f->from > 0) snprintf(it->start, sizeof it->start, "%lld", f->from * 1000);
    else snprintf(it->start, sizeof it->start, "-");
    return it;
}

static int read_batch(trail_rows *it) {
    char end[ID_MAX + 1];
    if (it->last[0]) snprintf(end, sizeof end, "(%s", it->last);
    else if (it->f.to > 0) snprintf(end, sizeof end, "%lld", it->f.to * 1000 + 999);
    else snprintf(end, sizeof end, "+");
    if (it->batch) freeReplyObject(it->batch);
    it->batch = rstore_command(it->r, "XREVRANGE %s %s %s COUNT %d", PA_RKEY_ADMIN_TRAIL, end, it->start, BATCH);
    it->next = 0;
    if (!it->batch || it->batch->type != REDIS_REPLY_ARRAY) return -1;
    if (it->batch->elements < BATCH) it->end = true;
    return 0;
}

static const char *field(const redisReply *fields, const char *name) {
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (strcmp(fields->element[i]->str, name) == 0) return fields->element[i + 1]->str;
    return "";
}

static bool matches(const trail_filter *f, const char *row[TRAIL_N_COLS]) {
    if (f->user && strcmp(f->user, row[TRAIL_COL_USER]) != 0) return false;
    if (!f->action) return true;
    size_t n = strlen(f->action);
    if (n && f->action[n - 1] == '*') return strncmp(f->action, row[TRAIL_COL_ACTION], n - 1) == 0;
    return strcmp(f->action, row[TRAIL_COL_ACTION]) == 0;
}

int trail_rows_next(trail_rows *it, const char *row[TRAIL_N_COLS]) {
    for (;;) {
        if (!it->batch || it->next >= it->batch->elements) {
            if (it->end && it->batch) return 0;
            if (it->f.max_scan && it->scanned >= it->f.max_scan) return 0;
            if (read_batch(it) != 0) return -1;
            if (it->batch->elements == 0) return 0;
        }
        if (it->f.max_scan && it->scanned >= it->f.max_scan) return 0;
        const redisReply *e = it->batch->element[it->next++];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[1]->type != REDIS_REPLY_ARRAY) continue;
        snprintf(it->last, sizeof it->last, "%s", e->element[0]->str);
        it->scanned++;
        for (int i = 0; i < TRAIL_N_COLS; i++) row[i] = field(e->element[1], trail_columns[i]);
        if (matches(&it->f, row)) return 1;
    }
}

bool trail_rows_more(const trail_rows *it) { return !(it->end && it->batch && it->next >= it->batch->elements); }

const char *trail_rows_last_id(const trail_rows *it) { return it->last; }

void trail_rows_close(trail_rows *it) {
    if (!it) return;
    if (it->batch) freeReplyObject(it->batch);
    free(it);
}

/* The cursor back into an entry id; false if it is not one of ours. */
static bool cursor_id(const char *cursor, char id[ID_MAX]) {
    uint8_t raw[ID_MAX];
    long n = b64url_decode(cursor, raw, sizeof raw - 1);
    if (n <= 0) return false;
    raw[n] = '\0';
    unsigned long long ms, seq;
    char extra;
    if (sscanf((const char *)raw, "%llu-%llu%c", &ms, &seq, &extra) != 2) return false;
    snprintf(id, ID_MAX, "%llu-%llu", ms, seq);
    return true;
}

static json_t *row_json(const char *id, const char *row[TRAIL_N_COLS]) {
    return json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:s}", "id", id, "t", (json_int_t)atoll(row[TRAIL_COL_T]), "user",
                     row[TRAIL_COL_USER], "action", row[TRAIL_COL_ACTION], "target", row[TRAIL_COL_TARGET], "addr",
                     row[TRAIL_COL_ADDR], "result", row[TRAIL_COL_RESULT]);
}

/* Reads one page into items; *next gets the cursor (NULL on the last page). */
static int read_page(rstore *r, const trail_filter *f, long long limit, json_t *items, char cursor[B64URL_LEN(ID_MAX)],
                     bool *more) {
    trail_rows *it = trail_rows_open(r, f);
    if (!it) return -1;
    const char *row[TRAIL_N_COLS];
    int rc = 0;
    while ((long long)json_array_size(items) < limit && (rc = trail_rows_next(it, row)) == 1)
        json_array_append_new(items, row_json(trail_rows_last_id(it), row));
    if ((long long)json_array_size(items) < limit && rc < 0) {
        trail_rows_close(it);
        return -1;
    }
    *more = trail_rows_more(it) && trail_rows_last_id(it)[0];
    b64url_encode(trail_rows_last_id(it), strlen(trail_rows_last_id(it)), cursor);
    trail_rows_close(it);
    return 0;
}

void trail_list(const http_request *rq) {
    static const char *const known[] = {"user", "action", "from", "to", "limit", "cursor", NULL};
    long long from, to, limit;
    if (!http_query_only(rq, known) || !http_query_int(rq, "from", 0, 1LL << 40, 0, &from) ||
        !http_query_int(rq, "to", 0, 1LL << 40, 0, &to) ||
        !http_query_int(rq, "limit", 1, API_LIMIT_MAX, API_LIMIT_DEFAULT, &limit))
        return;
    trail_filter f = {.user = http_query(rq, "user"),
                      .action = http_query(rq, "action"),
                      .from = from,
                      .to = to,
                      .max_scan = PAGE_SCAN};
    char after[ID_MAX];
    const char *cursor = http_query(rq, "cursor");
    if (cursor && !cursor_id(cursor, after)) {
        http_reply_error(rq, 400, "query parameter \"cursor\": not a cursor of this list");
        return;
    }
    f.after = cursor ? after : NULL;
    json_t *items = json_array();
    char next[B64URL_LEN(ID_MAX)];
    bool more = false;
    if (!items || read_page(rq->redis, &f, limit, items, next, &more) != 0) {
        json_decref(items);
        http_reply_error(rq, 503, "the store is unavailable");
        return;
    }
    json_t *page = json_pack("{s:o}", "items", items);
    if (more) json_object_set_new(page, "next_cursor", json_string(next));
    http_reply_json(rq, 200, page);
}
