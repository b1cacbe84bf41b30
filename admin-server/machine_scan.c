/* machine_scan.c -- see machine_scan.h. */
#include "machine_scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "machine_search.h"
#include "redis_keys.h"

struct machine_scan {
    rstore *r;                                /* the caller's connection */
    machine_filters f;                        /* copied; a scan holds no text filters to own */
    redisReply *bucket[MACHINE_SCAN_BUCKETS]; /* the round trip's HGETALL answers */
    size_t n_buckets;                         /* how many of bucket[] are filled */
    size_t at_bucket, at_field;               /* the next field of bucket[at_bucket] to look at */
    unsigned next;                            /* the first bucket of the next round trip */
    machine_record rec;                       /* the record handed out */
    int64_t now;                              /* statuses are derived at this time */
    char error[160];                          /* why the last call failed */
};

static bool empty(const char *v) { return !v || !*v; }

bool machine_scan_fits(const machine_filters *f) {
    return !f->has_group && !f->has_serial && empty(f->order) && empty(f->hostname) && empty(f->ip) && empty(f->mac) &&
           empty(f->host_serial);
}

machine_scan *machine_scan_open(rstore *r, const machine_filters *f) {
    machine_scan *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->r = r;
    s->f = *f;
    s->now = (int64_t)time(NULL);
    return s;
}

static void drop_buckets(machine_scan *s) {
    for (size_t i = 0; i < s->n_buckets; i++)
        if (s->bucket[i]) freeReplyObject(s->bucket[i]);
    s->n_buckets = s->at_bucket = s->at_field = 0;
}

static int fail(machine_scan *s, const char *why) {
    snprintf(s->error, sizeof s->error, "machine directory scan: %s", why);
    drop_buckets(s);
    return -1;
}

/* The next MACHINE_SCAN_BUCKETS buckets, one pipelined round trip. */
static int fetch(machine_scan *s) {
    drop_buckets(s);
    size_t n = MD_REC_BUCKETS - s->next < MACHINE_SCAN_BUCKETS ? MD_REC_BUCKETS - s->next : MACHINE_SCAN_BUCKETS;
    for (size_t i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof key, PA_RKEY_MD_RECORD_PREFIX "%u", s->next + (unsigned)i);
        const char *argv[] = {"HGETALL", key};
        if (rstore_append_argv(s->r, 2, argv, NULL) != 0) return fail(s, rstore_error(s->r));
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *rep = rstore_get_reply(s->r);
        if (!rep || rep->type != REDIS_REPLY_ARRAY) {
            const char *why = !rep                             ? rstore_error(s->r)
                              : rep->type == REDIS_REPLY_ERROR ? rep->str
                                                               : "unexpected reply";
            snprintf(s->error, sizeof s->error, "machine directory scan: %s", why);
            if (rep) freeReplyObject(rep);
            for (size_t j = i + 1; j < n; j++) { /* read what is still owed, so the connection stays in step */
                redisReply *x = rstore_get_reply(s->r);
                if (!x) break;
                freeReplyObject(x);
            }
            drop_buckets(s);
            return -1;
        }
        s->bucket[s->n_buckets++] = rep;
    }
    s->next += (unsigned)n;
    return 0;
}

int machine_scan_next(machine_scan *s, const machine_record **rec) {
    for (;;) {
        if (s->at_bucket >= s->n_buckets) {
            if (s->next >= MD_REC_BUCKETS) return 0;
            if (fetch(s) != 0) return -1;
            continue;
        }
        const redisReply *b = s->bucket[s->at_bucket];
        if (s->at_field + 1 >= b->elements) {
            s->at_bucket++;
            s->at_field = 0;
            continue;
        }
        const redisReply *id = b->element[s->at_field], *v = b->element[s->at_field + 1];
        s->at_field += 2;
        if (id->type != REDIS_REPLY_STRING || id->len != MD_ID_LEN || v->type != REDIS_REPLY_STRING) continue;
        if (!machine_record_decode((const uint8_t *)id->str, v->str, v->len, s->now, &s->rec)) continue;
        if (!machine_filters_match(&s->f, &s->rec)) continue;
        *rec = &s->rec;
        return 1;
    }
}

const char *machine_scan_error(const machine_scan *s) { return s->error; }

void machine_scan_close(machine_scan *s) {
    if (!s) return;
    drop_buckets(s);
    free(s);
}
