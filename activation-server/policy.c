/* policy.c -- argument packing and reply decoding for policy.lua.
 *
 * Arguments go to EVALSHA as binary-safe (pointer, length) pairs straight
 * from the caller's buffers (script_args.h); only the per-key record name,
 * the group's machine log name, the machine's place digest, its MACs joined
 * for the log and a few numbers are made per call. */
#include "policy.h"
#include "component_tokens.h"
#include "outbox_shards.h"
#include "redis_keys.h"
#include "script_args.h"

#include <arpa/inet.h>
#include <openssl/sha.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char policy_lua[];       /* policy.lua, embedded at build time */
extern const char address_take_lua[]; /* address_take.lua, the address step alone (Redis Cluster) */

int policy_register(rstore *r) {
    int script = rstore_script_add(r, policy_lua);
    if (script < 0 || rstore_script_add(r, address_take_lua) != policy_address_script(script)) return -1;
    return script;
}

int policy_address_script(int script) { return script + 1; }

bool policy_split(const rstore *r) { return rstore_is_cluster(r); }

void policy_limits_set(policy_limits *l, double address_rate, double address_burst,
                       double group_rate, double group_burst, double failure_cost) {
    snprintf(l->address_rate, sizeof l->address_rate, "%.17g", address_rate);
    snprintf(l->address_burst, sizeof l->address_burst, "%.17g", address_burst);
    snprintf(l->group_rate, sizeof l->group_rate, "%.17g", group_rate);
    snprintf(l->group_burst, sizeof l->group_burst, "%.17g", group_burst);
    snprintf(l->failure_cost, sizeof l->failure_cost, "%.17g", failure_cost);
    if (!l->failure_rate[0]) policy_limits_set_group_failures(l, 0, 1);
    if (!l->retention[0]) policy_limits_set_retention(l, 0);
}

void policy_limits_set_retention(policy_limits *l, long long seconds) {
    snprintf(l->retention, sizeof l->retention, "%lld", seconds);
}

void policy_limits_set_group_failures(policy_limits *l, double rate, double burst) {
    snprintf(l->failure_rate, sizeof l->failure_rate, "%.17g", rate);
    snprintf(l->failure_burst, sizeof l->failure_burst, "%.17g", burst);
}

void policy_address_key(const char *ip, char *out, size_t n) {
    struct in6_addr a6;
    char text[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET6, ip, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            inet_ntop(AF_INET, &a6.s6_addr[12], text, sizeof text);
            pa_rkey_address_bucket(out, n, text);
            return;
        }
        /* One subscriber usually holds a whole /64: limit it as one address. */
        memset(&a6.s6_addr[8], 0, 8);
        char net[INET6_ADDRSTRLEN + 3];
        inet_ntop(AF_INET6, &a6, text, sizeof text);
        snprintf(net, sizeof net, "%s/64", text);
        pa_rkey_address_bucket(out, n, net);
        return;
    }
    pa_rkey_address_bucket(out, n, ip);
}

/* The script's place argument: the machine's field in the key's record (the
 * first 16 bytes of SHA-256(machine_id), half the size of the id), then the
 * place-key digest when there is one (policy.lua, place_arg). Returns its
 * length. */
#define PLACE_ARG_MAX (PLACE_FIELD_LEN + PLACE_KEY_DIGEST_LEN)
static size_t place_arg(const uint8_t *machine_id, const uint8_t *holder, uint8_t out[PLACE_ARG_MAX]) {
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(machine_id, MACHINE_ID_LEN, digest);
    memcpy(out, digest, PLACE_FIELD_LEN);
    if (!holder) return PLACE_FIELD_LEN;
    memcpy(out + PLACE_FIELD_LEN, holder, PLACE_KEY_DIGEST_LEN);
    return PLACE_ARG_MAX;
}

/* Activate's elements 10-12: whether a place was re-bound, and from where. */
static void decode_rebound(const redisReply *r, policy_result *out, bool *bad) {
    if (r->elements < 12 || script_reply_int(r, 9, bad) != 1) return;
    const redisReply *was = r->element[11];
    if (was->type != REDIS_REPLY_STRING || was->len != PLACE_FIELD_LEN) {
        *bad = true;
        return;
    }
    out->rebound = true;
    out->shared = (uint32_t)script_reply_int(r, 10, bad);
    memcpy(out->was, was->str, PLACE_FIELD_LEN);
}

void policy_decode(redisReply *r, const char *what, policy_result *out) {
    bool bad = false;
    memset(out, 0, sizeof *out);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
        out->status = POLICY_UNAVAILABLE;
        out->redis_error = r != NULL;
        snprintf(out->error, sizeof out->error, "%s: %s", what,
                 r && r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        return;
    }
    out->status = (policy_status)r->element[0]->integer;
    if (out->status == POLICY_RATE_LIMITED) {
        out->retry_after_s = (int)script_reply_int(r, 1, &bad);
        const redisReply *s = r->elements > 2 ? r->element[2] : NULL;
        out->scope = s && s->type == REDIS_REPLY_STRING && strcmp(s->str, "group") == 0
                         ? "group" : "address";
    } else if (out->status == POLICY_NOT_GENUINE) {
        out->group_exists = script_reply_int(r, 1, &bad) == 1;
    } else if (out->status == POLICY_CHURN_LIMITED) {
        out->version = (uint64_t)script_reply_int(r, 1, &bad);
        out->retry_after_s = (int)script_reply_int(r, 2, &bad);
        const redisReply *s = r->elements > 3 ? r->element[3] : NULL;
        out->limit =
            s && s->type == REDIS_REPLY_STRING && strcmp(s->str, "transfer") == 0 ? "transfer" : "deactivation";
        out->next_allowed_at = script_reply_int(r, 4, &bad);
    } else {
        out->version = (uint64_t)script_reply_int(r, 1, &bad);
        out->count = (uint32_t)script_reply_int(r, 2, &bad);
    }
    if (!bad && out->status == POLICY_OK && r->elements >= 8) {
        out->expires_at = script_reply_int(r, 3, &bad);
        out->renew_after = script_reply_int(r, 4, &bad);
        out->now = script_reply_int(r, 5, &bad);
        const redisReply *rnd = r->element[6];
        if (rnd->type == REDIS_REPLY_STRING && rnd->len == LICENSE_RANDOM_LEN)
            memcpy(out->random, rnd->str, LICENSE_RANDOM_LEN);
        out->again = script_reply_int(r, 7, &bad) != 0;
        int64_t audited = script_reply_int(r, 8, &bad);
        out->audited = audited == 1;
        out->unaudited = audited == 2;
        decode_rebound(r, out, &bad);
    }
    if (bad) {
        memset(out, 0, sizeof *out);
        out->status = POLICY_UNAVAILABLE;
        out->redis_error = true; /* Redis answered, with something policy.lua did not write */
        snprintf(out->error, sizeof out->error, "%s: a number in the reply does not parse", what);
    }
}

redisReply *policy_eval(rstore *r, int script, int nkeys, script_args *a, const char *what, policy_result *out) {
    redisReply *reply = a->overflow ? NULL : rstore_eval(r, script, nkeys, a->n - nkeys, a->v, a->len);
    if (!reply) {
        memset(out, 0, sizeof *out);
        out->status = POLICY_UNAVAILABLE;
        snprintf(out->error, sizeof out->error, "%s: %s", what,
                 a->overflow ? "too many script arguments" : rstore_error(r));
    }
    return reply;
}

static void run(rstore *r, int script, int nkeys, script_args *a, const char *what, policy_result *out) {
    redisReply *reply = policy_eval(r, script, nkeys, a, what, out);
    if (!reply) return;
    policy_decode(reply, what, out);
    freeReplyObject(reply);
}

#define MLOG_MACS_MAX 160 /* 8 addresses of 17 characters and their commas */

static const char *or_empty(const char *s) { return s ? s : ""; }

/* Activate's EVALSHA arguments and the buffers they point into. */
typedef struct activate_argv {
    char record[PA_RKEY_MAX], index[PA_RKEY_MAX], mlog[PA_RKEY_MAX], serial_s[16], macs[MLOG_MACS_MAX];
    char outbox[PA_RKEY_MAX]; /* the group's outbox shard (Redis Cluster), else PA_RKEY_OUTBOX */
    uint8_t place[PLACE_ARG_MAX];
    audit_record_args ra; /* the outbox record's fields, when sampled */
    script_args a;
    int nkeys;
} activate_argv;

/* `split`: Redis Cluster's form (the outbox shard of the group's slot);
 * `address_key` NULL: the address tokens were taken already. */
static void activate_args(activate_argv *v, bool split, const policy_limits *l, const group_entry *g, uint32_t serial,
                          const uint8_t *machine_id, const uint8_t *holder, const uint8_t random[LICENSE_RANDOM_LEN],
                          const char *address_key, const policy_machine *seen, const policy_audit *audit) {
    size_t place_len = place_arg(machine_id, holder, v->place);
    if (!split || outbox_shard_for_key(g->key_group, v->outbox, sizeof v->outbox) != 0)
        snprintf(v->outbox, sizeof v->outbox, "%s", PA_RKEY_OUTBOX); /* a cluster store then refuses the call */
    pa_rkey_record(v->record, sizeof v->record, g->rec.id, serial);
    pa_rkey_record_index(v->index, sizeof v->index, g->rec.id, serial);
    pa_rkey_group_mlog(v->mlog, sizeof v->mlog, g->rec.id);
    snprintf(v->serial_s, sizeof v->serial_s, "%u", serial);
    script_join_macs(seen ? seen->macs : NULL, seen ? seen->n_macs : 0, v->macs, sizeof v->macs);
    script_args *a = &v->a;
    a->n = 0;
    a->overflow = false;
    script_args_add_str(a, g->key_revoked);
    script_args_add_str(a, v->record);
    script_args_add_str(a, g->key_bucket);
    script_args_add_str(a, v->outbox);
    script_args_add_str(a, g->key_failures);
    script_args_add_str(a, v->index);
    script_args_add_str(a, v->mlog);
    if (address_key) script_args_add_str(a, address_key); /* last, and optional (policy.lua) */
    v->nkeys = a->n;
    script_args_add_str(a, "activate");
    script_args_add_str(a, g->key_group); /* read only: ARGV, see policy.lua */
    script_args_add_str(a, v->serial_s);
    script_args_add(a, v->place, place_len);
    script_args_add(a, random, LICENSE_RANDOM_LEN);
    script_args_add_str(a, l->address_rate);
    script_args_add_str(a, l->address_burst);
    script_args_add_str(a, l->group_rate);
    script_args_add_str(a, l->group_burst);
    script_args_add_str(a, l->failure_rate);
    script_args_add_str(a, l->failure_burst);
    script_args_add_str(a, l->retention);
    script_args_add_str(a, seen ? or_empty(seen->ip) : "");
    script_args_add_str(a, seen ? or_empty(seen->hostname) : "");
    script_args_add_str(a, seen ? or_empty(seen->os) : "");
    script_args_add_str(a, seen ? or_empty(seen->host_serial) : "");
    script_args_add_str(a, v->macs);
    script_args_add(a, seen && seen->tokens ? seen->tokens : (const uint8_t *)"",
                    seen ? seen->n_tokens * COMPONENT_TOKEN_LEN : 0);
    if (!audit) {
        script_args_add_str(a, "0");
        return;
    }
    audit_record_script_args(audit->rec, &v->ra);
    script_args_add_str(a, audit->mode == 2 ? "2" : "1");
    for (size_t i = 0; i < v->ra.n; i++) script_args_add(a, v->ra.argv[i], v->ra.len[i]);
    script_args_add(a, audit->rec->machine_id, AUDIT_MACHINE_ID_LEN); /* the outbox keeps the whole id */
    script_args_add_str(a, audit->outbox_max && *audit->outbox_max ? audit->outbox_max : "1000000000");
    script_args_add_str(a, audit->grant_when_full ? "1" : "0");
}

void policy_activate(rstore *r, int script, const policy_limits *l, const group_entry *g, uint32_t serial,
                     const uint8_t *machine_id, const uint8_t *holder, const uint8_t random[LICENSE_RANDOM_LEN],
                     const char *address_key, const policy_machine *seen, const policy_audit *audit,
                     policy_result *out) {
    if (!policy_address_first(r, script, l, &address_key, false, out)) return;
    activate_argv v;
    activate_args(&v, policy_split(r), l, g, serial, machine_id, holder, random, address_key, seen, audit);
    run(r, script, v.nkeys, &v.a, "activate", out);
}

int policy_activate_append(rstore *r, int script, const policy_limits *l, const group_entry *g, uint32_t serial,
                           const uint8_t *machine_id, const uint8_t *holder, const uint8_t random[LICENSE_RANDOM_LEN],
                           const char *address_key, const policy_machine *seen, const policy_audit *audit) {
    activate_argv v;
    activate_args(&v, policy_split(r), l, g, serial, machine_id, holder, random, address_key, seen, audit);
    if (v.a.overflow) return -1;
    return rstore_eval_append(r, script, v.nkeys, v.a.n - v.nkeys, v.a.v, v.a.len);
}

/* The next reply of a pipeline; false on NOSCRIPT (policy_activate_read). */
static bool read_one(rstore *r, const char *what, policy_result *out) {
    redisReply *reply = rstore_get_reply(r);
    if (rstore_reply_noscript(reply)) {
        freeReplyObject(reply);
        return false;
    }
    if (!reply) {
        memset(out, 0, sizeof *out);
        out->status = POLICY_UNAVAILABLE;
        snprintf(out->error, sizeof out->error, "%s: %s", what, rstore_error(r));
        return true;
    }
    policy_decode(reply, what, out);
    freeReplyObject(reply);
    return true;
}

bool policy_activate_read(rstore *r, policy_result *out) { return read_one(r, "activate", out); }

/* The arguments of a Renew or Deactivate, and the strings they point into. */
typedef struct license_argv {
    char key_group[PA_RKEY_MAX], key_revoked[PA_RKEY_MAX], record[PA_RKEY_MAX], index[PA_RKEY_MAX],
        mlog[PA_RKEY_MAX];        /* the keys' names */
    char serial_s[16];            /* the serial as text */
    uint8_t place[PLACE_ARG_MAX]; /* machine id and place key digest */
    script_args a;                /* the arguments, pointing into the above */
    int nkeys;                    /* how many of them are KEYS */
} license_argv;

/* Renew and Deactivate share their arguments; only the keys differ. */
static void license_args(license_argv *v, const policy_limits *l, const char *op, uint32_t group, uint32_t serial,
                         const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                         const uint8_t random[LICENSE_RANDOM_LEN], const char *address_key, const char *ip) {
    size_t place_len = place_arg(machine_id, holder, v->place);
    pa_rkey_group(v->key_group, sizeof v->key_group, group);
    pa_rkey_revoked(v->key_revoked, sizeof v->key_revoked, group);
    pa_rkey_record(v->record, sizeof v->record, group, serial);
    pa_rkey_record_index(v->index, sizeof v->index, group, serial);
    pa_rkey_group_mlog(v->mlog, sizeof v->mlog, group);
    snprintf(v->serial_s, sizeof v->serial_s, "%u", serial);
    bool renew = strcmp(op, "renew") == 0;
    script_args *a = &v->a;
    a->n = 0;
    a->overflow = false;
    if (renew) script_args_add_str(a, v->key_revoked);
    script_args_add_str(a, v->record);
    script_args_add_str(a, v->index);
    script_args_add_str(a, v->mlog);
    if (address_key) script_args_add_str(a, address_key); /* last, and optional (policy.lua) */
    v->nkeys = a->n;
    script_args_add_str(a, op);
    script_args_add_str(a, v->key_group); /* read only: ARGV, see policy.lua */
    script_args_add_str(a, v->serial_s);
    script_args_add(a, v->place, place_len);
    script_args_add(a, random, LICENSE_RANDOM_LEN);
    script_args_add_str(a, l->address_rate);
    script_args_add_str(a, l->address_burst);
    script_args_add_str(a, l->retention);
    script_args_add_str(a, or_empty(ip));
}

static void by_license(rstore *r, int script, const policy_limits *l, const char *op, uint32_t group, uint32_t serial,
                       const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                       const uint8_t random[LICENSE_RANDOM_LEN], const char *address_key, const char *ip,
                       policy_result *out) {
    if (!policy_address_first(r, script, l, &address_key, false, out)) return;
    license_argv v;
    license_args(&v, l, op, group, serial, machine_id, holder, random, address_key, ip);
    run(r, script, v.nkeys, &v.a, op, out);
}

/* Renew's or Deactivate's call appended to the pipeline (-1: it could not be). */
static int by_license_append(rstore *r, int script, const policy_limits *l, const char *op, uint32_t group,
                             uint32_t serial, const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                             const uint8_t random[LICENSE_RANDOM_LEN], const char *address_key, const char *ip) {
    license_argv v;
    license_args(&v, l, op, group, serial, machine_id, holder, random, address_key, ip);
    if (v.a.overflow) return -1;
    return rstore_eval_append(r, script, v.nkeys, v.a.n - v.nkeys, v.a.v, v.a.len);
}

int policy_renew_append(rstore *r, int script, const policy_limits *l, uint32_t group, uint32_t serial,
                        const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                        const uint8_t random[LICENSE_RANDOM_LEN], const char *address_key, const char *ip) {
    return by_license_append(r, script, l, "renew", group, serial, machine_id, holder, random, address_key, ip);
}

bool policy_renew_read(rstore *r, policy_result *out) { return read_one(r, "renew", out); }

void policy_renew(rstore *r, int script, const policy_limits *l, uint32_t group, uint32_t serial,
                  const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                  const uint8_t random[LICENSE_RANDOM_LEN], const char *address_key, const char *ip,
                  policy_result *out) {
    by_license(r, script, l, "renew", group, serial, machine_id, holder, random, address_key, ip, out);
}

void policy_deactivate(rstore *r, int script, const policy_limits *l, uint32_t group, uint32_t serial,
                       const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                       const uint8_t random[LICENSE_RANDOM_LEN], const char *address_key, const char *ip,
                       policy_result *out) {
    by_license(r, script, l, "deactivate", group, serial, machine_id, holder, random, address_key, ip, out);
}

int policy_deactivate_append(rstore *r, int script, const policy_limits *l, uint32_t group, uint32_t serial,
                             const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                             const uint8_t random[LICENSE_RANDOM_LEN], const char *address_key, const char *ip) {
    return by_license_append(r, script, l, "deactivate", group, serial, machine_id, holder, random, address_key, ip);
}

bool policy_deactivate_read(rstore *r, policy_result *out) { return read_one(r, "deactivate", out); }

/* The arguments of a reject, and the strings they point into. */
typedef struct reject_argv {
    char group_s[16], failures[PA_RKEY_MAX]; /* the group as text, its failure bucket's key */
    char record[PA_RKEY_MAX];                /* split: the group record, asked in place of `groups` */
    script_args a;                           /* the arguments, pointing into the above */
    int nkeys;                               /* how many of them are KEYS */
} reject_argv;

/* `split`: Redis Cluster's form, where `groups` (another slot) cannot be
 * read by the script: whether the group exists is asked of its record. */
static void reject_args(reject_argv *v, bool split, const policy_limits *l, const char *address_key, uint32_t group) {
    v->group_s[0] = '\0';
    if (!split) snprintf(v->group_s, sizeof v->group_s, "%u", group);
    pa_rkey_group(v->record, sizeof v->record, group);
    pa_rkey_group_failure_bucket(v->failures, sizeof v->failures, group);
    script_args *a = &v->a;
    a->n = 0;
    a->overflow = false;
    script_args_add_str(a, v->failures);
    if (address_key) script_args_add_str(a, address_key); /* last, and optional (policy.lua) */
    v->nkeys = a->n;
    script_args_add_str(a, "reject");
    script_args_add_str(a, l->address_rate);
    script_args_add_str(a, l->address_burst);
    script_args_add_str(a, l->failure_cost);
    script_args_add_str(a, split ? v->record : PA_RKEY_GROUPS); /* read only: ARGV, see policy.lua */
    script_args_add_str(a, v->group_s);
    script_args_add_str(a, l->failure_rate);
    script_args_add_str(a, l->failure_burst);
}

void policy_reject(rstore *r, int script, const policy_limits *l, const char *address_key, uint32_t group,
                   policy_result *out) {
    if (!policy_address_first(r, script, l, &address_key, true, out)) return;
    reject_argv v;
    reject_args(&v, policy_split(r), l, address_key, group);
    run(r, script, v.nkeys, &v.a, "reject", out);
}

int policy_reject_append(rstore *r, int script, const policy_limits *l, const char *address_key, uint32_t group) {
    reject_argv v;
    reject_args(&v, policy_split(r), l, address_key, group);
    if (v.a.overflow) return -1;
    return rstore_eval_append(r, script, v.nkeys, v.a.n - v.nkeys, v.a.v, v.a.len);
}

bool policy_reject_read(rstore *r, policy_result *out) { return read_one(r, "reject", out); }

/* ---- several calls in one EVALSHA (docs/batching.md, "One script call per batch") ---- */

/* One call of a batch: its single call's arguments, built in place (they
 * point into the entry itself, so an entry never moves once made). */
typedef struct batch_entry {
    union {
        activate_argv act; /* an activate's */
        reject_argv rej;   /* a reject's */
    } u;
    const script_args *a; /* u's arguments */
    int nkeys;            /* how many of them are KEYS */
    const char *what;     /* its operation, for errors */
    char counts[2][12];   /* its key and argument counts, decimal: the batch's layout */
} batch_entry;

struct policy_batch {
    batch_entry **e;   /* the entries, each allocated once and kept */
    size_t n, cap;     /* entries in use, entries allocated */
    const char **v;    /* the EVALSHA's KEYS and ARGV, made by policy_batch_append */
    size_t *l;         /* their lengths */
    size_t v_cap;      /* room in v and l */
    redisReply *reply; /* policy_batch_read's reply; NULL: none (or the connection failed) */
    char error[160];   /* the reply's failure when it holds no entry's answer */
};

policy_batch *policy_batch_new(void) { return calloc(1, sizeof(policy_batch)); }

void policy_batch_clear(policy_batch *b) {
    b->n = 0;
    if (b->reply) freeReplyObject(b->reply);
    b->reply = NULL;
    b->error[0] = '\0';
}

void policy_batch_free(policy_batch *b) {
    if (!b) return;
    policy_batch_clear(b);
    for (size_t i = 0; i < b->cap; i++) free(b->e[i]);
    free(b->e);
    free(b->v);
    free(b->l);
    free(b);
}

size_t policy_batch_size(const policy_batch *b) { return b->n; }

/* The next entry's room (not yet counted), or NULL when out of memory. */
static batch_entry *next_entry(policy_batch *b) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 32;
        batch_entry **e = realloc(b->e, cap * sizeof *e);
        if (!e) return NULL;
        b->e = e;
        for (size_t i = b->cap; i < cap; i++) e[i] = NULL;
        b->cap = cap;
    }
    if (!b->e[b->n] && !(b->e[b->n] = malloc(sizeof(batch_entry)))) return NULL;
    return b->e[b->n];
}

/* Counts the entry whose arguments were just made; -1 when they overflowed. */
static int add_entry(policy_batch *b, batch_entry *e, const script_args *a, int nkeys, const char *what) {
    if (a->overflow) return -1;
    e->a = a;
    e->nkeys = nkeys;
    e->what = what;
    snprintf(e->counts[0], sizeof e->counts[0], "%d", nkeys);
    snprintf(e->counts[1], sizeof e->counts[1], "%d", a->n - nkeys);
    b->n++;
    return 0;
}

int policy_batch_add_activate(policy_batch *b, const policy_limits *l, const group_entry *g, uint32_t serial,
                              const uint8_t *machine_id, const uint8_t *holder,
                              const uint8_t random[LICENSE_RANDOM_LEN], const char *address_key,
                              const policy_machine *seen, const policy_audit *audit) {
    batch_entry *e = next_entry(b);
    if (!e) return -1;
    activate_args(&e->u.act, false, l, g, serial, machine_id, holder, random, address_key, seen, audit);
    return add_entry(b, e, &e->u.act.a, e->u.act.nkeys, "activate");
}

int policy_batch_add_reject(policy_batch *b, const policy_limits *l, const char *address_key, uint32_t group) {
    batch_entry *e = next_entry(b);
    if (!e) return -1;
    reject_args(&e->u.rej, false, l, address_key, group);
    return add_entry(b, e, &e->u.rej.a, e->u.rej.nkeys, "reject");
}

/* Room for m arguments in v and l. */
static int batch_room(policy_batch *b, size_t m) {
    if (m <= b->v_cap) return 0;
    const char **v = realloc(b->v, m * sizeof *v);
    if (v) b->v = v;
    size_t *l = v ? realloc(b->l, m * sizeof *l) : NULL;
    if (l) b->l = l;
    if (!v || !l) return -1;
    b->v_cap = m;
    return 0;
}

static void batch_put(policy_batch *b, size_t *k, const char *p, size_t len) {
    b->v[*k] = p;
    b->l[(*k)++] = len;
}

/* The layout of policy.lua's batch: every entry's KEYS; then "batch", the
 * count, each entry's two counts, every entry's ARGV. */
int policy_batch_append(rstore *r, int script, policy_batch *b) {
    static const char op[] = "batch";
    char count[12];
    size_t nkeys = 0, total = 2 + 2 * b->n, k = 0;
    for (size_t i = 0; i < b->n; i++) nkeys += (size_t)b->e[i]->nkeys, total += (size_t)b->e[i]->a->n;
    if (b->n == 0 || total > INT_MAX || batch_room(b, total) != 0) return -1;
    for (size_t i = 0; i < b->n; i++)
        for (int j = 0; j < b->e[i]->nkeys; j++) batch_put(b, &k, b->e[i]->a->v[j], b->e[i]->a->len[j]);
    snprintf(count, sizeof count, "%zu", b->n);
    batch_put(b, &k, op, sizeof op - 1);
    batch_put(b, &k, count, strlen(count));
    for (size_t i = 0; i < b->n; i++)
        for (int j = 0; j < 2; j++) batch_put(b, &k, b->e[i]->counts[j], strlen(b->e[i]->counts[j]));
    for (size_t i = 0; i < b->n; i++)
        for (int j = b->e[i]->nkeys; j < b->e[i]->a->n; j++) batch_put(b, &k, b->e[i]->a->v[j], b->e[i]->a->len[j]);
    return rstore_eval_append(r, script, (int)nkeys, (int)(total - nkeys), b->v, b->l);
}

bool policy_batch_read(rstore *r, policy_batch *b) {
    redisReply *reply = rstore_get_reply(r);
    if (rstore_reply_noscript(reply)) {
        freeReplyObject(reply);
        return false;
    }
    b->reply = reply;
    if (!reply) snprintf(b->error, sizeof b->error, "batch: %s", rstore_error(r));
    else if (reply->type == REDIS_REPLY_ARRAY && reply->elements != b->n)
        snprintf(b->error, sizeof b->error, "batch: %zu replies for %zu calls", reply->elements, b->n);
    return true;
}

void policy_batch_result(const policy_batch *b, size_t i, policy_result *out) {
    const redisReply *r = b->reply;
    const char *what = i < b->n ? b->e[i]->what : "batch";
    if (r && !b->error[0] && r->type == REDIS_REPLY_ARRAY) {
        policy_decode(r->element[i], what, out); /* as its single call's reply */
        return;
    }
    if (r && !b->error[0]) { /* an error reply (or one policy.lua does not write): every entry's */
        policy_decode(b->reply, what, out);
        return;
    }
    memset(out, 0, sizeof *out);
    out->status = POLICY_UNAVAILABLE;
    out->redis_error = r != NULL;
    snprintf(out->error, sizeof out->error, "%s", b->error);
}

/* ---- the address step alone (Redis Cluster, docs/cluster.md) ------------- */

/* address_take.lua's arguments: a failed genuineness check spends the
 * failure cost, every other call one token; each needs one. */
typedef struct take_argv {
    script_args a; /* the bucket key, then rate, burst, need, take */
} take_argv;

static void take_args(take_argv *v, const policy_limits *l, const char *address_key, bool failure) {
    v->a.n = 0;
    v->a.overflow = false;
    script_args_add_str(&v->a, address_key);
    script_args_add_str(&v->a, l->address_rate);
    script_args_add_str(&v->a, l->address_burst);
    script_args_add_str(&v->a, "1");
    script_args_add_str(&v->a, failure ? l->failure_cost : "1");
}

void policy_address_take(rstore *r, int script, const policy_limits *l, const char *address_key, bool failure,
                         policy_result *out) {
    take_argv v;
    take_args(&v, l, address_key, failure);
    run(r, policy_address_script(script), 1, &v.a, "address take", out);
}

int policy_address_take_append(rstore *r, int script, const policy_limits *l, const char *address_key, bool failure) {
    take_argv v;
    take_args(&v, l, address_key, failure);
    return rstore_eval_append(r, policy_address_script(script), 1, v.a.n - 1, v.a.v, v.a.len);
}

bool policy_address_take_read(rstore *r, policy_result *out) { return read_one(r, "address take", out); }

bool policy_address_first(rstore *r, int script, const policy_limits *l, const char **address_key, bool failure,
                          policy_result *out) {
    if (!*address_key || !policy_split(r)) return true;
    policy_address_take(r, script, l, *address_key, failure, out);
    if (out->status != POLICY_OK) return false;
    *address_key = NULL; /* taken: the group's script runs without the bucket */
    return true;
}

/* ---- the keys of each call, for the slot test ------------------------------ */

/* The keys, and the key read through ARGV at `read_at` (-1: none). */
static void keys_copy(const script_args *a, int nkeys, int read_at, policy_keys *out) {
    out->n = 0;
    out->read[0] = '\0';
    if (read_at >= 0 && read_at < a->n)
        snprintf(out->read, sizeof out->read, "%.*s", (int)a->len[read_at], (const char *)a->v[read_at]);
    for (int i = 0; i < nkeys && out->n < POLICY_KEYS_MAX; i++) {
        size_t len = a->len[i] < PA_RKEY_MAX - 1 ? a->len[i] : PA_RKEY_MAX - 1;
        memcpy(out->name[out->n], a->v[i], len);
        out->name[out->n++][len] = '\0';
    }
}

void policy_call_keys(policy_call op, bool split, const group_entry *g, uint32_t serial, const char *address_key,
                      policy_keys *out) {
    static const policy_limits none = {"0", "1", "0", "1", "1", "0", "1", "0"};
    static const uint8_t id[MACHINE_ID_LEN], random[LICENSE_RANDOM_LEN], holder[PLACE_KEY_DIGEST_LEN];
    const char *addr = split ? NULL : address_key; /* split: the address goes to its own call */
    if (op == POLICY_CALL_ACTIVATE) {
        activate_argv v;
        activate_args(&v, split, &none, g, serial, id, NULL, random, addr, NULL, NULL);
        keys_copy(&v.a, v.nkeys, v.nkeys + 1, out);
    } else if (op == POLICY_CALL_RENEW || op == POLICY_CALL_DEACTIVATE) {
        license_argv v;
        license_args(&v, &none, op == POLICY_CALL_RENEW ? "renew" : "deactivate", g->rec.id, serial, id, holder, random,
                     addr, NULL);
        keys_copy(&v.a, v.nkeys, v.nkeys + 1, out);
    } else if (op == POLICY_CALL_REJECT) {
        reject_argv v;
        reject_args(&v, split, &none, addr, g->rec.id);
        keys_copy(&v.a, v.nkeys, v.nkeys + 4, out);
    } else {
        take_argv v;
        take_args(&v, &none, address_key, false);
        keys_copy(&v.a, 1, -1, out);
    }
}

const char *policy_status_name(policy_status s) {
    static const char *names[] = {"ok",          "rate_limited", "unknown_group", "revoked",
                                  "no_place",    "not_found",    "expired",       "not_genuine",
                                  "unavailable", "wrong_key",    "outbox_full",   "churn_limited"};
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "unknown";
}
