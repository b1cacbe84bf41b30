/* order_controls.c -- designation, component matching and the machine
 * table walk (order_controls.h). set-match is one script call, so the
 * field and the version that makes caches reload change together. */
#include "order_controls.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "redis_keys.h"

static const char *reply_error(rstore *r, const redisReply *rep) {
    return rep && rep->type == REDIS_REPLY_ERROR ? rep->str : rstore_error(r);
}

int order_designate(rstore *r, const char *serial, const char *name, bool add, bool *changed, char *err,
                    size_t errlen) {
    char ko[PA_RKEY_MAX], kd[PA_RKEY_MAX];
    if (pa_rkey_order(ko, sizeof ko, serial) < 0 || pa_rkey_order_designated(kd, sizeof kd, serial) < 0)
        return err_set(err, errlen, "'%s' is not a service serial", serial);
    redisReply *e = rstore_command(r, "EXISTS %s", ko);
    int rc = 0;
    if (!e || e->type != REDIS_REPLY_INTEGER) rc = err_set(err, errlen, "%s: %s", ko, reply_error(r, e));
    else if (e->integer == 0) rc = 1;
    if (e) freeReplyObject(e);
    if (rc != 0) return rc;
    redisReply *rep = rstore_command(r, add ? "SADD %s %s" : "SREM %s %s", kd, name);
    if (!rep || rep->type != REDIS_REPLY_INTEGER) rc = err_set(err, errlen, "%s: %s", kd, reply_error(r, rep));
    else *changed = rep->integer == 1;
    if (rep) freeReplyObject(rep);
    return rc;
}

int order_match_parse(const char *text, unsigned *k) {
    if (!text) return -1;
    if (strcmp(text, "exact") == 0) return *k = 0, 0;
    size_t len = strlen(text);
    if (len == 0 || len > 2 || !isdigit((unsigned char)text[0]) || (len == 2 && !isdigit((unsigned char)text[1])))
        return -1;
    unsigned v = (unsigned)atoi(text);
    if (v > ORDER_MATCH_MAX) return -1;
    *k = v;
    return 0;
}

/* KEYS[1] {o:S}:order, ARGV[1] K. {'none'}, {'same', version} or {'set', version}. */
static const char SET_MATCH_SCRIPT[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return {'none'} end\n"
    "if (redis.call('HGET', KEYS[1], '" ORDER_F_MACHINE_MATCH
    "') or '0') == ARGV[1] then\n"
    "  return {'same', redis.call('HGET', KEYS[1], '" ORDER_F_VERSION
    "') or '0'}\n"
    "end\n"
    "redis.call('HSET', KEYS[1], '" ORDER_F_MACHINE_MATCH
    "', ARGV[1])\n"
    "return {'set', tostring(redis.call('HINCRBY', KEYS[1], '" ORDER_F_VERSION "', 1))}\n";

int order_set_match(rstore *r, const char *serial, unsigned k, uint64_t *version, char *err, size_t errlen) {
    char ko[PA_RKEY_MAX], kt[8];
    if (k > ORDER_MATCH_MAX) return err_set(err, errlen, "machine_match %u: at most %d", k, ORDER_MATCH_MAX);
    if (pa_rkey_order(ko, sizeof ko, serial) < 0) return err_set(err, errlen, "'%s' is not a service serial", serial);
    snprintf(kt, sizeof kt, "%u", k);
    redisReply *rep = rstore_command(r, "EVAL %s 1 %s %s", SET_MATCH_SCRIPT, ko, kt);
    int rc = -1;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 || rep->element[0]->type != REDIS_REPLY_STRING)
        err_set(err, errlen, "%s: %s", ko, reply_error(r, rep));
    else if (strcmp(rep->element[0]->str, "none") == 0) rc = 1;
    else if (rep->elements == 2 && rep->element[1]->type == REDIS_REPLY_STRING) {
        rc = strcmp(rep->element[0]->str, "same") == 0 ? 2 : 0;
        *version = strtoull(rep->element[1]->str, NULL, 10);
    } else err_set(err, errlen, "%s: unexpected reply", ko);
    if (rep) freeReplyObject(rep);
    return rc;
}

/* One HSCAN page: machine digest / record pairs. */
static int each_page(rstore *r, const order_record *rec, const redisReply *page, bool with_facts, order_machine_fn fn,
                     void *arg) {
    for (size_t i = 0; i + 1 < page->elements; i += 2) {
        const redisReply *d = page->element[i], *v = page->element[i + 1];
        volume_record m;
        if (d->len != VOLUME_DIGEST_LEN || !volume_record_decode(v->str, v->len, &m)) continue;
        redisReply *facts = with_facts ? rstore_commandargv(r, 3, (const char *[]){"HGET", rec->key_facts, d->str},
                                                            (const size_t[]){4, strlen(rec->key_facts), d->len})
                                       : NULL;
        int rc = fn(arg, (const uint8_t *)d->str, &m, facts && facts->type == REDIS_REPLY_STRING ? facts : NULL);
        if (facts) freeReplyObject(facts);
        if (rc != 0) return rc;
    }
    return 0;
}

int order_machines_each(rstore *r, const order_record *rec, bool with_facts, order_machine_fn fn, void *arg, char *err,
                        size_t errlen) {
    char cursor[32] = "0";
    int rc = 0;
    do {
        redisReply *p = rstore_command(r, "HSCAN %s %s COUNT 1000", rec->key_machines, cursor);
        if (!p || p->type != REDIS_REPLY_ARRAY || p->elements != 2) {
            rc = err_set(err, errlen, "reading %s: %s", rec->key_machines, reply_error(r, p));
        } else {
            snprintf(cursor, sizeof cursor, "%s", p->element[0]->str);
            rc = each_page(r, rec, p->element[1], with_facts, fn, arg);
        }
        if (p) freeReplyObject(p);
    } while (rc == 0 && strcmp(cursor, "0") != 0);
    return rc;
}
