/* script_args.c -- see script_args.h. */
#include "script_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void script_args_add(script_args *a, const void *p, size_t len) {
    if (a->n >= SCRIPT_ARGS_MAX) {
        a->overflow = true;
        return;
    }
    a->v[a->n] = p;
    a->len[a->n++] = len;
}

void script_args_add_str(script_args *a, const char *s) { script_args_add(a, s, strlen(s)); }

int64_t script_reply_int(const redisReply *r, size_t i, bool *bad) {
    if (i >= r->elements) return 0;
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER) return e->integer;
    if (e->type != REDIS_REPLY_STRING) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(e->str, &end, 10);
    if (end == e->str || *end || errno) *bad = true;
    return v;
}

size_t script_join_macs(const char *const *macs, size_t n_macs, char *out, size_t n) {
    size_t len = 0;
    out[0] = 0;
    for (size_t i = 0; i < n_macs; i++) {
        int w = snprintf(out + len, n - len, "%s%s", i ? "," : "", macs[i] ? macs[i] : "");
        if (w < 0 || (size_t)w >= n - len) {
            out[len] = 0; /* cut at the last whole address */
            break;
        }
        len += (size_t)w;
    }
    return len;
}
