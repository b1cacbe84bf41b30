/* order_store.c -- import, list, show, retire (order_store.h).
 *
 * The checks that need only the file (malformed, foreign vendor, tampered,
 * expired, wrong server) run here first; the ones that depend on what is
 * stored (older revision, conflict) run in IMPORT_SCRIPT, which writes
 * only when both pass. The key hashes go to the script as one string of
 * 16-byte hashes, added in batches (Lua's unpack is bounded), so an order
 * of a million keys is still one call. */
#include "order_store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "order_armour.h"

/* KEYS[1] {o:S}:order, KEYS[2] {o:S}:keys, then on a single node KEYS[3]
 * orders and KEYS[3+i] the other orders' hashes. ARGV[1] serial, [2]
 * revision, [3] signed, [4] the groups as ",7,9,", [5] the key hashes (16
 * bytes each), [6] N others, [6+i] their serials, [6+N+i] their groups
 * (on Redis Cluster, read by the caller; "" on a single node, where the
 * script reads them), then the hash's field/value pairs. Replies
 * {'new'|'replaced'|'same', version, previous revision}, {'older', stored
 * revision}, {'conflict', other serial, group} or {'retry'} (`orders` is
 * not what the caller read). On Redis Cluster `orders` and the other
 * orders lie in other slots (docs/cluster.md): the script then writes the
 * order alone and the caller adds it to `orders` after (the index never
 * names a missing order), and the check against the others is as of the
 * caller's reading, not atomic with the write. */
static const char IMPORT_SCRIPT[] =
    "local serial, rev, signed, groups, hashes = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]\n"
    "local others = tonumber(ARGV[6])\n"
    "local indexed = #KEYS > 2\n"
    "if indexed then\n"
    "  local self = redis.call('SISMEMBER', KEYS[3], serial)\n"
    "  if redis.call('SCARD', KEYS[3]) ~= others + self then return {'retry'} end\n"
    "  for i = 1, others do\n"
    "    if redis.call('SISMEMBER', KEYS[3], ARGV[6 + i]) == 0 then return {'retry'} end\n"
    "  end\n"
    "end\n"
    "local cur = redis.call('HMGET', KEYS[1], 'revision', 'signed', 'version')\n"
    "if cur[1] then\n"
    "  local stored = tonumber(cur[1])\n"
    "  if stored > rev or (stored == rev and cur[2] ~= signed) then return {'older', cur[1]} end\n"
    "  if stored == rev then return {'same', cur[3] or '0', cur[1]} end\n"
    "end\n"
    "for i = 1, others do\n"
    "  local g = ARGV[6 + others + i]\n"
    "  if indexed then g = redis.call('HGET', KEYS[3 + i], 'groups') end\n"
    "  for id in string.gmatch(g or '', '%d+') do\n"
    "    if string.find(groups, ',' .. id .. ',', 1, true) then return {'conflict', ARGV[6 + i], id} end\n"
    "  end\n"
    "end\n"
    "local version = (tonumber(cur[3]) or 0) + 1\n"
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('HSET', KEYS[1], unpack(ARGV, 7 + 2 * others))\n"
    "redis.call('HSET', KEYS[1], 'version', version)\n"
    "if not cur[1] then redis.call('HSET', KEYS[1], 'retired', '0') end\n"
    "local step = 16 * 4000\n"
    "for off = 1, #hashes, step do\n"
    "  local batch = {}\n"
    "  for p = off, math.min(off + step, #hashes + 1) - 1, 16 do batch[#batch + 1] = string.sub(hashes, p, p + 15) "
    "end\n"
    "  redis.call('SADD', KEYS[2], unpack(batch))\n"
    "end\n"
    "if indexed then redis.call('SADD', KEYS[3], serial) end\n"
    "return {cur[1] and 'replaced' or 'new', tostring(version), cur[1] or '0'}\n";

/* KEYS[1] {o:S}:order. {'none'}, {'already', version} or {'retired', version}. */
static const char RETIRE_SCRIPT[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return {'none'} end\n"
    "if redis.call('HGET', KEYS[1], 'retired') == '1' then\n"
    "  return {'already', redis.call('HGET', KEYS[1], 'version') or '0'}\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'retired', '1')\n"
    "return {'retired', tostring(redis.call('HINCRBY', KEYS[1], 'version', 1))}\n";

const char *order_refusal_reason(order_refusal r) {
    switch (r) {
    case ORDER_REFUSED_NONE: return "none";
    case ORDER_REFUSED_MALFORMED: return "malformed";
    case ORDER_REFUSED_FOREIGN_VENDOR: return "foreign vendor";
    case ORDER_REFUSED_TAMPERED: return "tampered";
    case ORDER_REFUSED_EXPIRED: return "expired";
    case ORDER_REFUSED_WRONG_SERVER: return "wrong server";
    case ORDER_REFUSED_OLDER_REVISION: return "older revision";
    case ORDER_REFUSED_CONFLICT: return "conflict";
    }
    return "malformed";
}

/* Sets the refusal and its message ("REASON: detail"); returns REFUSED. */
__attribute__((format(printf, 5, 6))) static order_import_result refuse(order_import_outcome *out, order_refusal r,
                                                                        char *err, size_t errlen, const char *fmt,
                                                                        ...) {
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    out->result = ORDER_IMPORT_REFUSED;
    out->refusal = r;
    err_set(err, errlen, "%s: %s", order_refusal_reason(r), detail);
    return ORDER_IMPORT_REFUSED;
}

static order_import_result failed(order_import_outcome *out, char *err, size_t errlen, const char *what,
                                  const char *why) {
    out->result = ORDER_IMPORT_FAILED;
    err_set(err, errlen, "%s: %s", what, why);
    return ORDER_IMPORT_FAILED;
}

/* The checks of the file alone, after the signature: dates and deployment. */
static order_import_result check_fit(const order_file *f, const order_server *srv, int64_t now,
                                     order_import_outcome *out, char *err, size_t errlen) {
    const Volume__V1__Order *o = f->o;
    bool counted = o->after_end == VOLUME__V1__AFTER_END__AFTER_END_CONTINUE_COUNTED;
    if (o->valid_until && o->valid_until <= now && !counted) {
        char until[40];
        order_armour_time(o->valid_until, until, sizeof until);
        return refuse(out, ORDER_REFUSED_EXPIRED, err, errlen, "the order ended on %s", until);
    }
    bool on_prem = order_is_on_premises(o);
    if (srv->on_premises && !on_prem)
        return refuse(out, ORDER_REFUSED_WRONG_SERVER, err, errlen,
                      "a vendor-hosted order (no delegated key) on an on-premises server");
    if (!srv->on_premises && on_prem)
        return refuse(out, ORDER_REFUSED_WRONG_SERVER, err, errlen,
                      "an on-premises order on a vendor-hosted server (start it with --on-premises)");
    if (on_prem && (!srv->signing_key || memcmp(srv->signing_key, o->delegated_key.data, TAGGED_KEY_LEN) != 0))
        return refuse(out, ORDER_REFUSED_WRONG_SERVER, err, errlen,
                      "the order delegates another server's key, not this server's --signing-key");
    return ORDER_IMPORT_NEW;
}

static const char *elem(const redisReply *r, size_t i) {
    return r->type == REDIS_REPLY_ARRAY && i < r->elements && r->element[i]->type == REDIS_REPLY_STRING
               ? r->element[i]->str
               : "";
}

/* Redis Cluster: the order, once written (or found the same), goes into
 * `orders` by a second call; false when that failed (the import then
 * fails, and running it again adds it: the order reads as the same). */
static bool index_order(rstore *r, const char *serial, const char *what) {
    if (strcmp(what, "new") != 0 && strcmp(what, "replaced") != 0 && strcmp(what, "same") != 0) return true;
    redisReply *rep = rstore_command(r, "SADD %s %s", PA_RKEY_ORDERS, serial);
    bool ok = rep && rep->type == REDIS_REPLY_INTEGER;
    if (rep) freeReplyObject(rep);
    return ok;
}

/* A growing argv for the import EVAL. */
typedef struct args {
    const char **v;
    size_t *len;
    size_t n, cap;
} args;

static int arg(args *a, const char *s, size_t len) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        const char **v = realloc(a->v, cap * sizeof *v);
        if (v) a->v = v;
        size_t *l = v ? realloc(a->len, cap * sizeof *l) : NULL;
        if (!l) return -1;
        a->len = l;
        a->cap = cap;
    }
    a->v[a->n] = s;
    a->len[a->n++] = len;
    return 0;
}
#define ARG_S(a, s) arg(a, s, strlen(s))

typedef struct import_data {
    order_record rec;      /* built from the file */
    uint8_t *signed_bytes; /* SignedOrder without keys, for `signed` */
    size_t signed_len;
    char groups[ORDER_RECORD_NUM]; /* ",7,9," */
    char revision[16];
    const char *names[ORDER_RECORD_FIELDS];
    const char *values[ORDER_RECORD_FIELDS];
    size_t lens[ORDER_RECORD_FIELDS];
    char nums[ORDER_RECORD_FIELDS][ORDER_RECORD_NUM];
    size_t n_fields;
} import_data;

/* Redis Cluster: the other orders' `groups` fields, read by one pipelined
 * HGET each (they lie in other slots than the order imported): a reply
 * array of their values in the order of `other`, or NULL. */
static redisReply **read_groups(rstore *r, char (*other)[PA_RKEY_MAX], size_t n) {
    redisReply **g = calloc(n + 1, sizeof *g);
    size_t sent = 0;
    for (; g && sent < n; sent++) {
        const char *argv[] = {"HGET", other[sent], ORDER_F_GROUPS};
        if (rstore_append_argv(r, 3, argv, NULL) != 0) break;
    }
    bool ok = g && sent == n;
    for (size_t i = 0; g && i < sent; i++) {
        g[i] = rstore_get_reply(r);
        ok = ok && g[i] && (g[i]->type == REDIS_REPLY_STRING || g[i]->type == REDIS_REPLY_NIL);
        if (!g[i]) break;
    }
    if (ok) return g;
    for (size_t i = 0; g && i < sent; i++)
        if (g[i]) freeReplyObject(g[i]);
    free(g);
    return NULL;
}

static void free_groups(redisReply **g, size_t n) {
    for (size_t i = 0; g && i < n; i++) freeReplyObject(g[i]);
    free(g);
}

/* Runs the script once against the `orders` just read. The reply, or NULL. */
static redisReply *run_import(rstore *r, import_data *d, const redisReply *orders) {
    char keys[3][PA_RKEY_MAX], (*other)[PA_RKEY_MAX] = calloc(orders->elements + 1, PA_RKEY_MAX);
    args a = {0};
    bool split = rstore_is_cluster(r);
    if (!other) return NULL;
    size_t n_other = 0;
    for (size_t i = 0; i < orders->elements; i++)
        if (orders->element[i]->type == REDIS_REPLY_STRING && strcmp(orders->element[i]->str, d->rec.serial) != 0)
            pa_rkey_order(other[n_other++], PA_RKEY_MAX, orders->element[i]->str);
    redisReply **their = split ? read_groups(r, other, n_other) : NULL;
    if (split && !their) {
        free(other);
        return NULL;
    }
    char n_keys[16], n_others[16];
    snprintf(n_keys, sizeof n_keys, "%zu", split ? 2 : 3 + n_other);
    snprintf(n_others, sizeof n_others, "%zu", n_other);
    pa_rkey_order(keys[0], sizeof keys[0], d->rec.serial);
    pa_rkey_order_keys(keys[1], sizeof keys[1], d->rec.serial);
    snprintf(keys[2], sizeof keys[2], "%s", PA_RKEY_ORDERS);
    int rc = ARG_S(&a, "EVAL") | ARG_S(&a, IMPORT_SCRIPT) | ARG_S(&a, n_keys);
    for (int i = 0; i < (split ? 2 : 3); i++) rc |= ARG_S(&a, keys[i]);
    for (size_t i = 0; i < n_other && !split; i++) rc |= ARG_S(&a, other[i]);
    rc |= ARG_S(&a, d->rec.serial) | ARG_S(&a, d->revision) | arg(&a, (const char *)d->signed_bytes, d->signed_len);
    rc |= ARG_S(&a, d->groups) | arg(&a, (const char *)d->rec.key_hashes, d->rec.n_key_hashes * ORDER_KEY_HASH_LEN);
    rc |= ARG_S(&a, n_others);
    for (size_t i = 0; i < orders->elements; i++) /* the other serials, in the same order as their keys */
        if (orders->element[i]->type == REDIS_REPLY_STRING && strcmp(orders->element[i]->str, d->rec.serial) != 0)
            rc |= ARG_S(&a, orders->element[i]->str);
    for (size_t i = 0; i < n_other; i++) /* their groups, read here on Redis Cluster */
        rc |= their && their[i]->type == REDIS_REPLY_STRING ? arg(&a, their[i]->str, their[i]->len) : ARG_S(&a, "");
    for (size_t i = 0; i < d->n_fields; i++) rc |= ARG_S(&a, d->names[i]) | arg(&a, d->values[i], d->lens[i]);
    redisReply *rep = rc == 0 ? rstore_commandargv(r, (int)a.n, a.v, a.len) : NULL;
    free(a.v);
    free(a.len);
    free(other);
    free_groups(their, n_other);
    if (split && rep && rep->type == REDIS_REPLY_ARRAY && !index_order(r, d->rec.serial, elem(rep, 0))) {
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* Reads the script's answer into out. */
static order_import_result judge(const redisReply *rep, import_data *d, order_import_outcome *out, char *err,
                                 size_t errlen) {
    const char *what = elem(rep, 0);
    if (strcmp(what, "older") == 0)
        return refuse(out, ORDER_REFUSED_OLDER_REVISION, err, errlen,
                      "revision %s of order %s is imported; this file is revision %u%s", elem(rep, 1), d->rec.serial,
                      d->rec.revision, strtoul(elem(rep, 1), NULL, 10) == d->rec.revision ? " with other content" : "");
    if (strcmp(what, "conflict") == 0)
        return refuse(out, ORDER_REFUSED_CONFLICT, err, errlen, "group %s belongs to order %s", elem(rep, 2),
                      elem(rep, 1));
    out->result = strcmp(what, "new") == 0        ? ORDER_IMPORT_NEW
                  : strcmp(what, "replaced") == 0 ? ORDER_IMPORT_REPLACED
                  : strcmp(what, "same") == 0     ? ORDER_IMPORT_UNCHANGED
                                                  : ORDER_IMPORT_FAILED;
    if (out->result == ORDER_IMPORT_FAILED) return failed(out, err, errlen, "the import script", "unexpected answer");
    out->version = strtoull(elem(rep, 1), NULL, 10);
    out->previous_revision = (uint32_t)strtoul(elem(rep, 2), NULL, 10);
    return out->result;
}

static order_import_result store(rstore *r, import_data *d, order_import_outcome *out, char *err, size_t errlen) {
    for (int attempt = 0; attempt < 10; attempt++) {
        redisReply *orders = rstore_command(r, "SMEMBERS %s", PA_RKEY_ORDERS), *rep = NULL;
        if (orders && orders->type == REDIS_REPLY_ARRAY) rep = run_import(r, d, orders);
        const redisReply *bad = !orders || orders->type != REDIS_REPLY_ARRAY ? orders : rep;
        order_import_result res = ORDER_IMPORT_FAILED;
        if (!bad || bad->type == REDIS_REPLY_ERROR)
            failed(out, err, errlen, "the activation store",
                   bad ? bad->str : rstore_error(r)); /* unreachable, or the user may not write orders */
        else if (strcmp(elem(rep, 0), "retry") != 0) res = judge(rep, d, out, err, errlen);
        bool retry = rep && rep->type == REDIS_REPLY_ARRAY && strcmp(elem(rep, 0), "retry") == 0;
        if (orders) freeReplyObject(orders);
        if (rep) freeReplyObject(rep);
        if (!retry) return res;
    }
    return failed(out, err, errlen, "the activation store", "the set of orders kept changing during the import");
}

static int prepare(import_data *d, const order_file *f, int64_t now) {
    if (order_record_from_file(&d->rec, f) != 0) return -1;
    d->rec.imported_at = now;
    if (!(d->signed_bytes = order_file_pack(f, false, &d->signed_len))) return -1;
    size_t len = (size_t)snprintf(d->groups, sizeof d->groups, ",");
    for (size_t i = 0; i < d->rec.n_groups; i++)
        len += (size_t)snprintf(d->groups + len, sizeof d->groups - len, "%u,", d->rec.groups[i]);
    snprintf(d->revision, sizeof d->revision, "%u", d->rec.revision);
    d->n_fields = order_record_fields(&d->rec, d->signed_bytes, d->signed_len, d->names, d->values, d->lens, d->nums);
    return 0;
}

order_import_result order_import(rstore *r, const order_server *srv, const char *text, size_t len, int64_t now,
                                 order_import_outcome *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    order_file f;
    char why[512];
    order_status st = order_armour_read(&f, text, len, why, sizeof why);
    order_import_result res = ORDER_IMPORT_NEW;
    if (st == ORDER_OK) {
        snprintf(out->serial, sizeof out->serial, "%s", f.o->service_serial);
        out->revision = f.o->revision;
        st = order_file_verify(&f, srv->order_keys, why, sizeof why);
    }
    if (st != ORDER_OK)
        res = refuse(out,
                     st == ORDER_FOREIGN_VENDOR ? ORDER_REFUSED_FOREIGN_VENDOR
                     : st == ORDER_TAMPERED     ? ORDER_REFUSED_TAMPERED
                                                : ORDER_REFUSED_MALFORMED,
                     err, errlen, "%s", why);
    if (res == ORDER_IMPORT_NEW) res = check_fit(&f, srv, now, out, err, errlen);
    import_data *d = res == ORDER_IMPORT_NEW ? calloc(1, sizeof *d) : NULL;
    if (res == ORDER_IMPORT_NEW && (!d || prepare(d, &f, now) != 0))
        res = failed(out, err, errlen, "import", "out of memory");
    else if (res == ORDER_IMPORT_NEW) res = store(r, d, out, err, errlen);
    if (d) {
        order_record_clear(&d->rec);
        free(d->signed_bytes);
        free(d);
    }
    order_file_clear(&f);
    return res;
}

/* ---- list, show, retire ---- */

static int serial_cmp(const void *a, const void *b) { return strcmp(a, b); }

int order_store_list(rstore *r, char (**serials)[ORDER_SERIAL_LEN + 1], size_t *n, char *err, size_t errlen) {
    *serials = NULL;
    *n = 0;
    redisReply *rep = rstore_command(r, "SMEMBERS %s", PA_RKEY_ORDERS);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        int rc = err_set(err, errlen, "reading %s: %s", PA_RKEY_ORDERS, rep && rep->str ? rep->str : rstore_error(r));
        if (rep) freeReplyObject(rep);
        return rc;
    }
    *serials = calloc(rep->elements + 1, sizeof **serials);
    if (!*serials) return freeReplyObject(rep), err_set(err, errlen, "out of memory");
    for (size_t i = 0; i < rep->elements; i++)
        if (rep->element[i]->type == REDIS_REPLY_STRING && rep->element[i]->len == ORDER_SERIAL_LEN)
            memcpy((*serials)[(*n)++], rep->element[i]->str, ORDER_SERIAL_LEN + 1);
    freeReplyObject(rep);
    qsort(*serials, *n, sizeof **serials, serial_cmp);
    return 0;
}

int order_store_load(rstore *r, const char *serial, order_record *rec, char *err, size_t errlen) {
    char ko[PA_RKEY_MAX], kk[PA_RKEY_MAX];
    memset(rec, 0, sizeof *rec);
    if (pa_rkey_order(ko, sizeof ko, serial) < 0 || pa_rkey_order_keys(kk, sizeof kk, serial) < 0)
        return err_set(err, errlen, "'%s' is not a service serial", serial);
    redisReply *h = rstore_command(r, "HGETALL %s", ko), *k = h ? rstore_command(r, "SMEMBERS %s", kk) : NULL;
    int rc;
    if (!h || !k || h->type != REDIS_REPLY_ARRAY || k->type != REDIS_REPLY_ARRAY) {
        const redisReply *bad = h && h->type == REDIS_REPLY_ERROR ? h : k;
        rc = err_set(err, errlen, "reading order %s: %s", serial,
                     bad && bad->type == REDIS_REPLY_ERROR ? bad->str : rstore_error(r));
    } else {
        rc = order_record_from_hash(rec, serial, h, k, err, errlen);
    }
    if (h) freeReplyObject(h);
    if (k) freeReplyObject(k);
    return rc;
}

int order_store_retire(rstore *r, const char *serial, uint64_t *version, char *err, size_t errlen) {
    char ko[PA_RKEY_MAX];
    if (pa_rkey_order(ko, sizeof ko, serial) < 0) return err_set(err, errlen, "'%s' is not a service serial", serial);
    redisReply *rep = rstore_command(r, "EVAL %s 1 %s", RETIRE_SCRIPT, ko);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        int rc = err_set(err, errlen, "retiring order %s: %s", serial, rep && rep->str ? rep->str : rstore_error(r));
        if (rep) freeReplyObject(rep);
        return rc;
    }
    const char *what = elem(rep, 0);
    int rc = strcmp(what, "none") == 0 ? 1 : strcmp(what, "already") == 0 ? 2 : 0;
    *version = strtoull(elem(rep, 1), NULL, 10);
    freeReplyObject(rep);
    return rc;
}
