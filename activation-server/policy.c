/* policy.c -- argument packing and reply decoding for policy.lua.
 *
 * Arguments go to EVALSHA as binary-safe (pointer, length) pairs straight
 * from the caller's buffers; only the per-key record name, the machine's
 * place digest and a few numbers are made per call. */
#include "policy.h"
#include "redis_keys.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char policy_lua[];   /* policy.lua, embedded at build time */

int policy_register(rstore *r) {
    return rstore_script_add(r, policy_lua);
}

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
#define PLACE_FIELD_LEN 16
#define PLACE_ARG_MAX (PLACE_FIELD_LEN + PLACE_KEY_DIGEST_LEN)
static size_t place_arg(const uint8_t *machine_id, const uint8_t *holder, uint8_t out[PLACE_ARG_MAX]) {
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(machine_id, MACHINE_ID_LEN, digest);
    memcpy(out, digest, PLACE_FIELD_LEN);
    if (!holder) return PLACE_FIELD_LEN;
    memcpy(out + PLACE_FIELD_LEN, holder, PLACE_KEY_DIGEST_LEN);
    return PLACE_ARG_MAX;
}

/* A growing (pointer, length) argument list for one EVALSHA. */
typedef struct args {
    const char *v[32];
    size_t len[32];
    int n;
} args;

static void add(args *a, const void *p, size_t len) {
    a->v[a->n] = p;
    a->len[a->n++] = len;
}

static void add_str(args *a, const char *s) {
    add(a, s, strlen(s));
}

/* Element i as a number (0 when absent); a string that is not a whole
 * number sets *bad, so a damaged record never reads as version 0. */
static int64_t int_at(const redisReply *r, size_t i, bool *bad) {
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

static void decode(redisReply *r, const char *what, policy_result *out) {
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
        out->retry_after_s = (int)int_at(r, 1, &bad);
        const redisReply *s = r->elements > 2 ? r->element[2] : NULL;
        out->scope = s && s->type == REDIS_REPLY_STRING && strcmp(s->str, "group") == 0
                         ? "group" : "address";
    } else if (out->status == POLICY_NOT_GENUINE) {
        out->group_exists = int_at(r, 1, &bad) == 1;
    } else {
        out->version = (uint64_t)int_at(r, 1, &bad);
        out->count = (uint32_t)int_at(r, 2, &bad);
    }
    if (!bad && out->status == POLICY_OK && r->elements >= 8) {
        out->expires_at = int_at(r, 3, &bad);
        out->renew_after = int_at(r, 4, &bad);
        out->now = int_at(r, 5, &bad);
        const redisReply *rnd = r->element[6];
        if (rnd->type == REDIS_REPLY_STRING && rnd->len == LICENSE_RANDOM_LEN)
            memcpy(out->random, rnd->str, LICENSE_RANDOM_LEN);
        out->again = int_at(r, 7, &bad) != 0;
        int64_t audited = int_at(r, 8, &bad);
        out->audited = audited == 1;
        out->unaudited = audited == 2;
    }
    if (bad) {
        memset(out, 0, sizeof *out);
        out->status = POLICY_UNAVAILABLE;
        out->redis_error = true; /* Redis answered, with something policy.lua did not write */
        snprintf(out->error, sizeof out->error, "%s: a number in the reply does not parse", what);
    }
}

static void run(rstore *r, int script, int nkeys, args *a, const char *what, policy_result *out) {
    redisReply *reply = rstore_eval(r, script, nkeys, a->n - nkeys, a->v, a->len);
    if (!reply) {
        memset(out, 0, sizeof *out);
        out->status = POLICY_UNAVAILABLE;
        snprintf(out->error, sizeof out->error, "%s: %s", what, rstore_error(r));
        return;
    }
    decode(reply, what, out);
    freeReplyObject(reply);
}

void policy_activate(rstore *r, int script, const policy_limits *l, const group_entry *g, uint32_t serial,
                     const uint8_t *machine_id, const uint8_t *holder, const uint8_t random[LICENSE_RANDOM_LEN],
                     const char *address_key, const policy_audit *audit, policy_result *out) {
    char record[PA_RKEY_MAX], index[PA_RKEY_MAX], serial_s[16];
    uint8_t place[PLACE_ARG_MAX];
    size_t place_len = place_arg(machine_id, holder, place);
    pa_rkey_record(record, sizeof record, g->rec.id, serial);
    pa_rkey_record_index(index, sizeof index, g->rec.id, serial);
    snprintf(serial_s, sizeof serial_s, "%u", serial);
    args a = {.n = 0};
    add_str(&a, g->key_revoked);
    add_str(&a, record);
    add_str(&a, g->key_bucket);
    add_str(&a, address_key);
    add_str(&a, PA_RKEY_OUTBOX);
    add_str(&a, g->key_failures);
    add_str(&a, index);
    int nkeys = a.n;
    add_str(&a, "activate");
    add_str(&a, g->key_group); /* read only: ARGV, see policy.lua */
    add_str(&a, serial_s);
    add(&a, place, place_len);
    add(&a, random, LICENSE_RANDOM_LEN);
    add_str(&a, l->address_rate);
    add_str(&a, l->address_burst);
    add_str(&a, l->group_rate);
    add_str(&a, l->group_burst);
    add_str(&a, l->failure_rate);
    add_str(&a, l->failure_burst);
    add_str(&a, l->retention);
    audit_record_args ra;   /* must live until the call: `a` points into it */
    if (!audit) {
        add_str(&a, "0");
    } else {
        audit_record_script_args(audit->rec, &ra);
        add_str(&a, audit->mode == 2 ? "2" : "1");
        for (size_t i = 0; i < ra.n; i++) add(&a, ra.argv[i], ra.len[i]);
        add(&a, audit->rec->machine_id, AUDIT_MACHINE_ID_LEN);   /* the outbox keeps the whole id */
        add_str(&a, audit->outbox_max && *audit->outbox_max ? audit->outbox_max : "1000000000");
        add_str(&a, audit->grant_when_full ? "1" : "0");
    }
    run(r, script, nkeys, &a, "activate", out);
}

/* Renew and Deactivate share their arguments; only the keys differ. */
static void by_license(rstore *r, int script, const policy_limits *l, const char *op, uint32_t group, uint32_t serial,
                       const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                       const uint8_t random[LICENSE_RANDOM_LEN], const char *address_key, policy_result *out) {
    char key_group[PA_RKEY_MAX], key_revoked[PA_RKEY_MAX], record[PA_RKEY_MAX], index[PA_RKEY_MAX], serial_s[16];
    uint8_t place[PLACE_ARG_MAX];
    size_t place_len = place_arg(machine_id, holder, place);
    pa_rkey_group(key_group, sizeof key_group, group);
    pa_rkey_revoked(key_revoked, sizeof key_revoked, group);
    pa_rkey_record(record, sizeof record, group, serial);
    pa_rkey_record_index(index, sizeof index, group, serial);
    snprintf(serial_s, sizeof serial_s, "%u", serial);
    bool renew = strcmp(op, "renew") == 0;
    args a = {.n = 0};
    if (renew) add_str(&a, key_revoked);
    add_str(&a, record);
    add_str(&a, address_key);
    add_str(&a, index);
    int nkeys = a.n;
    add_str(&a, op);
    add_str(&a, key_group); /* read only: ARGV, see policy.lua */
    add_str(&a, serial_s);
    add(&a, place, place_len);
    add(&a, random, LICENSE_RANDOM_LEN);
    add_str(&a, l->address_rate);
    add_str(&a, l->address_burst);
    add_str(&a, l->retention);
    run(r, script, nkeys, &a, op, out);
}

void policy_renew(rstore *r, int script, const policy_limits *l, uint32_t group, uint32_t serial,
                  const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                  const uint8_t random[LICENSE_RANDOM_LEN], const char *address_key, policy_result *out) {
    by_license(r, script, l, "renew", group, serial, machine_id, holder, random, address_key, out);
}

void policy_deactivate(rstore *r, int script, const policy_limits *l, uint32_t group, uint32_t serial,
                       const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                       const uint8_t random[LICENSE_RANDOM_LEN], const char *address_key, policy_result *out) {
    by_license(r, script, l, "deactivate", group, serial, machine_id, holder, random, address_key, out);
}

void policy_reject(rstore *r, int script, const policy_limits *l, const char *address_key, uint32_t group,
                   policy_result *out) {
    char group_s[16], failures[PA_RKEY_MAX];
    snprintf(group_s, sizeof group_s, "%u", group);
    pa_rkey_group_failure_bucket(failures, sizeof failures, group);
    args a = {.n = 0};
    add_str(&a, address_key);
    add_str(&a, failures);
    add_str(&a, "reject");
    add_str(&a, l->address_rate);
    add_str(&a, l->address_burst);
    add_str(&a, l->failure_cost);
    add_str(&a, PA_RKEY_GROUPS); /* read only: ARGV, see policy.lua */
    add_str(&a, group_s);
    add_str(&a, l->failure_rate);
    add_str(&a, l->failure_burst);
    run(r, script, 2, &a, "reject", out);
}

const char *policy_status_name(policy_status s) {
    static const char *names[] = {"ok",      "rate_limited", "unknown_group", "revoked",   "no_place",   "not_found",
                                  "expired", "not_genuine",  "unavailable",   "wrong_key", "outbox_full"};
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "unknown";
}
