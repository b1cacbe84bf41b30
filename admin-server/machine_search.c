/* machine_search.c -- see machine_search.h. Also the machine_rows iterator
 * (machine_rows.h): a search without a page bound. */
#include "machine_search.h"

#include "b64url.h"
#include "machine_scan.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define VAL_MAX 48       /* machine_dir.lua VAL_MAX: indexed text is cut there */
#define BOUND_MAX 80     /* longest index member: type, VAL_MAX, NUL, id */
#define WALK_BATCH "200" /* index entries per script call */
#define FILTER_TEXT_MAX 6
_Static_assert(B64URL_LEN(BOUND_MAX) <= MACHINE_CURSOR_MAX, "a cursor holds any index member");

/* One walk of the index: from lo, while members start with pfx, up to hi. */
typedef struct md_plan {
    char lo[BOUND_MAX + 2]; /* ZRANGE lex bound: '[' start or '(' the cursor's member */
    size_t lo_len;          /* binary: group and time values hold NULs */
    char pfx[BOUND_MAX];    /* what every member of the walk starts with */
    size_t pfx_len;
    char hi[BOUND_MAX]; /* the last member that may match ('' none) */
    size_t hi_len;
} md_plan;

struct machine_search {
    rstore *r;                                     /* the caller's connection */
    machine_filters f;                             /* the filters, strings pointing into text[] */
    char text[FILTER_TEXT_MAX][MACHINE_FIELD_MAX]; /* copies of the filters' strings */
    md_plan plan;                                  /* the walk */
    redisReply *batch;                             /* the walk's current batch: {done, member, record, ...} */
    size_t at;                                     /* next element of batch to look at */
    bool done;                                     /* the walk reached its end */
    char last[BOUND_MAX];                          /* last member examined: the cursor */
    size_t last_len;
    machine_record rec; /* the record handed out */
    int64_t now;        /* statuses are derived at this time */
    size_t examined;    /* index entries looked at since open (the budget counts these) */
    char error[160];    /* why the last call failed */
};

static bool is_prefix(const char *v) {
    size_t n = v ? strlen(v) : 0;
    return n > 0 && v[n - 1] == '*';
}

static bool has(const char *v) { return v && *v; }

/* type | value cut to VAL_MAX (lower case if asked) | NUL when exact and whole. */
static void plan_text(md_plan *p, char type, const char *v, bool lower) {
    size_t n = strlen(v);
    bool prefix = is_prefix(v);
    if (prefix) n--;
    bool whole = n <= VAL_MAX;
    if (!whole) n = VAL_MAX;
    p->pfx[0] = type;
    for (size_t i = 0; i < n; i++) p->pfx[1 + i] = lower ? (char)tolower((unsigned char)v[i]) : v[i];
    p->pfx_len = 1 + n;
    if (!prefix && whole) p->pfx[p->pfx_len++] = 0;
}

static void put_u32(char *o, uint32_t v) {
    o[0] = (char)(v >> 24);
    o[1] = (char)(v >> 16);
    o[2] = (char)(v >> 8);
    o[3] = (char)v;
}

static void make_plan(const machine_filters *f, md_plan *p) {
    memset(p, 0, sizeof *p);
    const char *exact[] = {f->host_serial, f->mac, f->hostname, f->ip, f->order};
    const char types[] = {'s', 'm', 'h', 'i', 'o'};
    const bool lower[] = {false, true, true, false, false};
    if (f->has_group && f->has_serial) {
        p->pfx[0] = 'k';
        put_u32(p->pfx + 1, f->group);
        put_u32(p->pfx + 5, f->serial);
        p->pfx_len = 9;
    } else {
        int pick = -1;
        for (int i = 0; i < 5 && pick < 0; i++)
            if (has(exact[i]) && !is_prefix(exact[i])) pick = i;
        for (int i = 0; i < 5 && pick < 0; i++)
            if (has(exact[i])) pick = i;
        if (pick >= 0) {
            plan_text(p, types[pick], exact[pick], lower[pick]);
        } else if (f->has_group) {
            p->pfx[0] = 'k';
            put_u32(p->pfx + 1, f->group);
            p->pfx_len = 5;
        } else {
            p->pfx[0] = 't';
            p->pfx_len = 1;
            if (f->from > 0) {
                put_u32(p->pfx + 1, (uint32_t)f->from);
                memcpy(p->lo + 1, p->pfx, 5);
                p->lo_len = 6;
            }
            if (f->to > 0) {
                p->hi[0] = 't';
                put_u32(p->hi + 1, (uint32_t)f->to);
                memset(p->hi + 5, 0xff, 14);
                p->hi_len = 19;
            }
        }
    }
    if (!p->lo_len) {
        memcpy(p->lo + 1, p->pfx, p->pfx_len);
        p->lo_len = 1 + p->pfx_len;
    }
    p->lo[0] = '[';
    if (p->pfx[0] == 't') p->pfx_len = 1; /* the time walk keeps the whole index */
}

static void copy_filter(machine_search *s, int slot, const char **field) {
    if (!*field) return;
    snprintf(s->text[slot], sizeof s->text[slot], "%s", *field);
    *field = s->text[slot];
}

machine_search *machine_search_open(rstore *r, const machine_filters *f, const char *cursor, char *err, size_t errlen) {
    machine_search *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->r = r;
    s->f = *f;
    copy_filter(s, 0, &s->f.order);
    copy_filter(s, 1, &s->f.hostname);
    copy_filter(s, 2, &s->f.ip);
    copy_filter(s, 3, &s->f.mac);
    copy_filter(s, 4, &s->f.host_serial);
    s->now = (int64_t)time(NULL);
    make_plan(&s->f, &s->plan);
    if (cursor && *cursor) {
        uint8_t m[BOUND_MAX];
        long n = b64url_decode(cursor, m, sizeof m);
        if (n <= MD_ID_LEN || (size_t)n < s->plan.pfx_len || memcmp(m, s->plan.pfx, s->plan.pfx_len) != 0) {
            snprintf(err, errlen, "cursor: not one of this search's");
            free(s);
            return NULL;
        }
        s->plan.lo[0] = '(';
        memcpy(s->plan.lo + 1, m, (size_t)n);
        s->plan.lo_len = 1 + (size_t)n;
        memcpy(s->last, m, (size_t)n);
        s->last_len = (size_t)n;
    }
    return s;
}

/* Fetches the next batch of the walk, after the last member examined. */
static int fetch(machine_search *s) {
    if (s->batch) freeReplyObject(s->batch);
    s->batch = NULL;
    s->at = 1;
    const char *argv[] = {s->plan.lo, s->plan.pfx, s->plan.hi, WALK_BATCH};
    size_t lens[] = {s->plan.lo_len, s->plan.pfx_len, s->plan.hi_len, strlen(WALK_BATCH)};
    redisReply *rep = machine_dir_call(s->r, "walk", 4, argv, lens);
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 || rep->element[0]->type != REDIS_REPLY_INTEGER) {
        snprintf(s->error, sizeof s->error, "machine directory: %s",
                 !rep                             ? rstore_error(s->r)
                 : rep->type == REDIS_REPLY_ERROR ? rep->str
                                                  : "unexpected reply");
        if (rep) freeReplyObject(rep);
        return -1;
    }
    s->batch = rep;
    if (rep->element[0]->integer == 1) s->done = true;
    return 0;
}

/* Moves the walk's start past member m. */
static void advance(machine_search *s, const redisReply *m) {
    size_t n = m->len < sizeof s->last ? m->len : sizeof s->last;
    memcpy(s->last, m->str, n);
    s->last_len = n;
    s->plan.lo[0] = '(';
    memcpy(s->plan.lo + 1, m->str, n);
    s->plan.lo_len = 1 + n;
}

int machine_search_next(machine_search *s, size_t budget, const machine_record **rec) {
    size_t seen = s->examined;
    for (;;) {
        if (!s->batch || s->at + 1 >= s->batch->elements) {
            if (s->done || (budget && seen >= budget)) return 0;
            if (fetch(s) != 0) return -1;
            continue; /* an empty batch comes only with done */
        }
        const redisReply *m = s->batch->element[s->at], *v = s->batch->element[s->at + 1];
        s->at += 2;
        seen = ++s->examined;
        advance(s, m);
        if (m->type != REDIS_REPLY_STRING || m->len <= MD_ID_LEN || v->type != REDIS_REPLY_STRING) continue;
        const uint8_t *id = (const uint8_t *)m->str + m->len - MD_ID_LEN;
        if (!machine_record_decode(id, v->str, v->len, s->now, &s->rec)) continue;
        if (!machine_filters_match(&s->f, &s->rec)) {
            if (budget && seen >= budget) return 0;
            continue;
        }
        *rec = &s->rec;
        return 1;
    }
}

bool machine_search_done(const machine_search *s) { return s->done && (!s->batch || s->at + 1 >= s->batch->elements); }

void machine_search_cursor(const machine_search *s, char out[MACHINE_CURSOR_MAX]) {
    b64url_encode(s->last, s->last_len, out); /* BOUND_MAX bytes fit MACHINE_CURSOR_MAX */
}

const char *machine_search_error(const machine_search *s) { return s->error; }

void machine_search_close(machine_search *s) {
    if (!s) return;
    if (s->batch) freeReplyObject(s->batch);
    free(s);
}

/* exact, or a prefix when the filter ends in '*'; case-insensitive if asked. */
static bool text_match(const char *filter, const char *value, bool nocase) {
    if (!has(filter)) return true;
    size_t n = strlen(filter);
    if (filter[n - 1] == '*')
        return nocase ? strncasecmp(value, filter, n - 1) == 0 : strncmp(value, filter, n - 1) == 0;
    return nocase ? strcasecmp(value, filter) == 0 : strcmp(value, filter) == 0;
}

/* Any of the space-separated MACs matches. */
static bool mac_match(const char *filter, const char *macs) {
    if (!has(filter)) return true;
    char one[MACHINE_FIELD_MAX];
    for (const char *p = macs; *p;) {
        size_t n = strcspn(p, " ");
        if (n < sizeof one) {
            memcpy(one, p, n);
            one[n] = 0;
            if (text_match(filter, one, true)) return true;
        }
        p += n;
        while (*p == ' ') p++;
    }
    return false;
}

bool machine_filters_match(const machine_filters *f, const machine_record *rec) {
    const machine_row *w = &rec->row;
    if (f->has_group && w->group != f->group) return false;
    if (f->has_serial && w->serial != f->serial) return false;
    if (f->status != MACHINE_STATUS_ANY && w->status != f->status) return false;
    if (f->from > 0 && w->last_seen < f->from) return false;
    if (f->to > 0 && w->last_seen > f->to) return false;
    return text_match(f->order, w->order, false) && text_match(f->hostname, w->hostname, true) &&
           text_match(f->ip, w->ip, false) && text_match(f->host_serial, w->host_serial, false) &&
           mac_match(f->mac, w->macs);
}

/* ---- machine_rows.h: the search as one long walk ------------------------ */

struct machine_rows {
    machine_search *s;  /* the index walk, never bounded; NULL when scanning */
    machine_scan *scan; /* the bucket scan, for filters that select little (machine_scan_fits) */
};

machine_rows *machine_rows_open(rstore *r, const machine_filters *f, char *err, size_t errlen) {
    if (f->has_serial && !f->has_group) {
        snprintf(err, errlen, "serial: needs group");
        return NULL;
    }
    machine_rows *it = calloc(1, sizeof *it);
    if (!it) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (machine_scan_fits(f)) {
        if ((it->scan = machine_scan_open(r, f))) return it;
        snprintf(err, errlen, "out of memory");
    } else if ((it->s = machine_search_open(r, f, NULL, err, errlen))) {
        return it;
    }
    free(it);
    return NULL;
}

int machine_rows_next(machine_rows *it, const machine_row **row) {
    const machine_record *rec;
    int rc = it->scan ? machine_scan_next(it->scan, &rec) : machine_search_next(it->s, 0, &rec);
    if (rc == 1) *row = &rec->row;
    return rc;
}

const char *machine_rows_error(const machine_rows *it) {
    return it->scan ? machine_scan_error(it->scan) : machine_search_error(it->s);
}

void machine_rows_close(machine_rows *it) {
    if (!it) return;
    machine_scan_close(it->scan);
    machine_search_close(it->s);
    free(it);
}
