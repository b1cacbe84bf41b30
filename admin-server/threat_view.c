/* threat_view.c -- see threat_view.h. Counts are bucketed as they are read:
 * a day hash's field "MINUTE:KIND" lands in the bucket of its minute, so
 * memory is the answer's size, never the range's. */
#include "threat_view.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis_keys.h"

#define DAY_S 86400
#define N_KINDS 6 /* attempts, not genuine, rate limited, grants, machine limit, revocations */

static const char kind_letters[N_KINDS] = {PA_THREAT_KIND_ATTEMPT,       PA_THREAT_KIND_NOT_GENUINE,
                                           PA_THREAT_KIND_RATE_LIMITED,  PA_THREAT_KIND_GRANT,
                                           PA_THREAT_KIND_MACHINE_LIMIT, PA_THREAT_KIND_REVOKED};
static const char *const kind_names[N_KINDS] = {"attempts", "not_genuine",   "rate_limited",
                                                "grants",   "machine_limit", "revocations"};

static bool parse_i64(const char *s, int64_t min, int64_t max, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) return false;
    *out = v;
    return true;
}

static int parse_groups(threat_query *q, const char *text, char *err, size_t errlen) {
    q->n_groups = 0;
    for (const char *p = text; *p;) {
        char one[16];
        size_t len = strcspn(p, ",");
        int64_t id;
        if (len == 0 || len >= sizeof one) goto bad;
        memcpy(one, p, len), one[len] = '\0';
        if (!parse_i64(one, 0, UINT32_MAX, &id)) goto bad;
        if (q->n_groups == THREAT_VIEW_MAX_GROUPS) {
            snprintf(err, errlen, "parameter \"group\": at most %d groups", THREAT_VIEW_MAX_GROUPS);
            return -1;
        }
        q->groups[q->n_groups++] = (uint32_t)id;
        p += len + (p[len] == ',');
    }
    if (q->n_groups) return 0;
bad:
    snprintf(err, errlen, "parameter \"group\": expected group IDs separated by commas");
    return -1;
}

int threat_query_parse(threat_query *q, const char *group, const char *from, const char *to, const char *step,
                       int64_t now, char *err, size_t errlen) {
    *q = (threat_query){.to = now, .step = 60};
    if (group && parse_groups(q, group, err, errlen) != 0) return -1;
    const struct {
        const char *name, *text;
        int64_t *out;
    } p[] = {{"to", to, &q->to}, {"from", from, &q->from}, {"step", step, &q->step}};
    q->from = -1;
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) {
        if (p[i].text && !parse_i64(p[i].text, 0, INT64_C(1) << 40, p[i].out)) {
            snprintf(err, errlen, "parameter \"%s\": expected a whole number of seconds", p[i].name);
            return -1;
        }
    }
    if (q->from < 0) q->from = q->to - 3600;
    if (q->from >= q->to || q->to - q->from > PA_THREAT_RETENTION_S) {
        snprintf(err, errlen, "parameters \"from\", \"to\": need from < to, at most %d days apart",
                 PA_THREAT_RETENTION_S / DAY_S);
        return -1;
    }
    if (q->step < 60 || q->step % 60 || (q->to - q->from + q->step - 1) / q->step > THREAT_VIEW_MAX_POINTS) {
        snprintf(err, errlen, "parameter \"step\": expected a multiple of 60 giving at most %d points",
                 THREAT_VIEW_MAX_POINTS);
        return -1;
    }
    return 0;
}

static uint32_t utc_stamp(int64_t unix_s, bool with_hour) {
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    uint32_t day = (uint32_t)((tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
    return with_hour ? day * 100 + (uint32_t)tm.tm_hour : day;
}

/* The groups to show: those asked for, or every group that exists. */
static int list_groups(rstore *r, threat_query *q, char *err, size_t errlen) {
    if (q->n_groups) return 0;
    redisReply *rep = rstore_command(r, "SMEMBERS %s", PA_RKEY_GROUPS);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "reading the groups: %s", !rep ? rstore_error(r) : rep->str ? rep->str : "bad reply");
        if (rep) freeReplyObject(rep);
        return -1;
    }
    for (size_t i = 0; i < rep->elements && q->n_groups < THREAT_VIEW_MAX_GROUPS; i++) {
        int64_t id;
        if (rep->element[i]->type == REDIS_REPLY_STRING && parse_i64(rep->element[i]->str, 0, UINT32_MAX, &id))
            q->groups[q->n_groups++] = (uint32_t)id;
    }
    freeReplyObject(rep);
    return 0;
}

/* Adds one day hash (HGETALL reply) of the day starting at day_s. */
static void add_day(const threat_query *q, const redisReply *h, int64_t day_s, uint64_t (*buckets)[N_KINDS]) {
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        unsigned minute;
        char kind;
        if (sscanf(h->element[i]->str, "%u:%c", &minute, &kind) != 2 || minute >= 1440) continue;
        int64_t t = day_s + (int64_t)minute * 60;
        if (t < q->from || t >= q->to) continue;
        const char *k = memchr(kind_letters, kind, N_KINDS);
        if (k) buckets[(t - q->from) / q->step][k - kind_letters] += strtoull(h->element[i + 1]->str, NULL, 10);
    }
}

static json_t *series_json(const threat_query *q, uint64_t (*b)[N_KINDS], size_t n) {
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *pt = json_pack("{s:I}", "t", (json_int_t)(q->from + (int64_t)i * q->step));
        for (int k = 0; k < N_KINDS; k++) json_object_set_new(pt, kind_names[k], json_integer((json_int_t)b[i][k]));
        double rate = b[i][0] ? (double)b[i][1] / (double)b[i][0] : 0.0;
        json_object_set_new(pt, "not_genuine_rate", json_real(rate));
        json_array_append_new(out, pt);
    }
    return out;
}

/* One group's series from its day hashes, read in one pipeline. */
static json_t *group_series(rstore *r, const threat_query *q, uint32_t group, char *err, size_t errlen) {
    size_t n = (size_t)((q->to - q->from + q->step - 1) / q->step);
    uint64_t(*b)[N_KINDS] = calloc(n, sizeof *b);
    int64_t first = q->from / DAY_S * DAY_S;
    int sent = 0, rc = 0;
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (int64_t d = first; d < q->to; d += DAY_S, sent++) {
        char rkey[PA_RKEY_MAX];
        pa_rkey_threat_group(rkey, sizeof rkey, group, utc_stamp(d, false));
        if (rstore_append_argv(r, 2, (const char *[]){"HGETALL", rkey}, NULL) != 0) rc = -1;
    }
    for (int i = 0; i < sent; i++) {
        redisReply *h = rstore_get_reply(r);
        if (!h || h->type != REDIS_REPLY_ARRAY) {
            if (rc == 0) snprintf(err, errlen, "reading threat counts: %s", !h ? rstore_error(r) : "bad reply");
            rc = -1;
        } else if (rc == 0) {
            add_day(q, h, first + (int64_t)i * DAY_S, b);
        }
        if (h) freeReplyObject(h);
    }
    json_t *s = rc == 0 ? series_json(q, b, n) : NULL;
    free(b);
    return s;
}

static int by_refusals(const void *a, const void *b) {
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "refusals"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "refusals"));
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Sums the hour sets of the range by address; the THREAT_VIEW_TOP highest. */
static json_t *top_addresses(rstore *r, const threat_query *q, char *err, size_t errlen) {
    json_t *sum = json_object();
    int sent = 0, rc = 0;
    for (int64_t h = q->from / 3600 * 3600; h < q->to; h += 3600, sent++) {
        char rkey[PA_RKEY_MAX];
        pa_rkey_threat_top(rkey, sizeof rkey, utc_stamp(h, true));
        if (rstore_append_argv(r, 5, (const char *[]){"ZRANGE", rkey, "0", "-1", "WITHSCORES"}, NULL) != 0) rc = -1;
    }
    for (int i = 0; i < sent; i++) {
        redisReply *z = rstore_get_reply(r);
        if (!z || z->type != REDIS_REPLY_ARRAY) {
            if (rc == 0) snprintf(err, errlen, "reading top addresses: %s", !z ? rstore_error(r) : "bad reply");
            rc = -1;
        }
        for (size_t j = 0; rc == 0 && j + 1 < z->elements; j += 2) {
            json_int_t before = json_integer_value(json_object_get(sum, z->element[j]->str));
            json_int_t add = (json_int_t)strtoll(z->element[j + 1]->str, NULL, 10);
            json_object_set_new(sum, z->element[j]->str, json_integer(before + add));
        }
        if (z) freeReplyObject(z);
    }
    json_t *list = rc == 0 ? json_array() : NULL;
    const char *addr;
    json_t *v;
    json_object_foreach(sum, addr, v) {
        if (list) json_array_append_new(list, json_pack("{s:s,s:O}", "address", addr, "refusals", v));
    }
    json_decref(sum);
    if (!list) return NULL;
    size_t n = json_array_size(list);
    json_t **items = calloc(n ? n : 1, sizeof *items);
    json_t *top = json_array();
    for (size_t i = 0; items && i < n; i++) items[i] = json_array_get(list, i);
    if (items) qsort(items, n, sizeof *items, by_refusals);
    for (size_t i = 0; items && i < n && i < THREAT_VIEW_TOP; i++) json_array_append(top, items[i]);
    free(items);
    json_decref(list);
    return top;
}

json_t *threat_view_read(rstore *r, const threat_query *query, char *err, size_t errlen) {
    threat_query q = *query;
    if (list_groups(r, &q, err, errlen) != 0) return NULL;
    json_t *groups = json_array();
    for (size_t i = 0; i < q.n_groups; i++) {
        json_t *s = group_series(r, &q, q.groups[i], err, errlen);
        if (!s) {
            json_decref(groups);
            return NULL;
        }
        json_array_append_new(groups, json_pack("{s:I,s:o}", "group", (json_int_t)q.groups[i], "series", s));
    }
    json_t *top = top_addresses(r, &q, err, errlen);
    if (!top) {
        json_decref(groups);
        return NULL;
    }
    return json_pack("{s:I,s:I,s:I,s:o,s:o}", "from", (json_int_t)q.from, "to", (json_int_t)q.to, "step",
                     (json_int_t)q.step, "groups", groups, "top_addresses", top);
}
