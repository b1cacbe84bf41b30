/* group.c -- a product group's record in the two stores.
 *
 * Design: a group is written as two hashes, one per store, each created by
 * a small Lua script that checks the key is absent and writes every field
 * in one atomic step, then added to the store's `groups` index by a second
 * command. So a store holds either the whole record or none of it, and two
 * operators creating the same ID at once cannot both succeed: the second
 * script sees the key and refuses. The index is a second command because
 * `groups` and {g:ID}:group lie in different hash slots, and on Redis
 * Cluster no call may span two (docs/cluster.md); record first, index
 * after, so the index never names a missing record. A crash between the
 * two leaves a record the index does not name: the error says so and how
 * to add it.
 *
 * Order matters between the stores, which no transaction spans: the audit
 * part goes first. If the activation part then fails, the audit part is
 * removed again; if we cannot tell whether the activation write happened
 * (the connection broke before the reply), the audit part is kept, because
 * an activatable group without its audit record is the one state that must
 * never exist. The operator is told which store holds what.
 *
 * Secrets exist in clear only in this process, on the stack, and are wiped
 * with OPENSSL_cleanse as soon as they are wrapped or turned into a
 * mac_key. */
#include "group.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "errbuf.h"
#include "keycodec.h"
#include "redis_keys.h"

/* KEYS[1] the hash; ARGV field/value pairs. Refuses an existing hash. */
static const char CREATE_SCRIPT[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then\n"
    "  return redis.error_reply('EXISTS group already exists')\n"
    "end\n"
    "redis.call('HSET', KEYS[1], unpack(ARGV))\n"
    "return 1\n";

void group_record_defaults(group_record *rec) {
    memset(rec, 0, sizeof *rec);
    rec->channel = GROUP_CHANNEL_RETAIL;
    rec->alg_first = MAC_ALG_HMAC_SHA256;
    rec->alg_second = MAC_ALG_HMAC_SHA256;
    rec->version = 1;
    rec->policy.max_machines = 1;
    rec->policy.lease_seconds = 0;
    rec->policy.renew_seconds = 0;
    rec->policy.audit_rate_ppm = 50000;
    rec->policy.audit = AUDIT_MODE_OFFLINE;
    rec->policy.on_audit_down = AUDIT_UNREACHABLE_FAIL_CLOSED;
    rec->policy.on_outbox_full = AUDIT_OUTBOX_FULL_FAIL_CLOSED;
    rec->policy.max_transfers = GROUP_MAX_TRANSFERS_DEFAULT;
    rec->policy.churn_period_seconds = GROUP_CHURN_PERIOD_DEFAULT;
}

const char *group_channel_name(group_channel c) {
    switch (c) {
    case GROUP_CHANNEL_RETAIL: return "retail";
    case GROUP_CHANNEL_OEM: return "oem";
    case GROUP_CHANNEL_VOLUME: return "volume";
    }
    return "unknown";
}

int group_channel_parse(const char *s) {
    if (!s) return 0;
    if (strcasecmp(s, "retail") == 0) return GROUP_CHANNEL_RETAIL;
    if (strcasecmp(s, "oem") == 0) return GROUP_CHANNEL_OEM;
    if (strcasecmp(s, "volume") == 0) return GROUP_CHANNEL_VOLUME;
    return 0;
}

/* ---- validation ---- */

static int valid_text(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 0;
    return 1;
}

static int valid_features(const char *s) {
    for (; *s; s++)
        if (!(*s == ',' || *s == '-' || *s == '_' || *s == '.' || (*s >= '0' && *s <= '9') ||
              (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
            return 0;
    return 1;
}

static int validate(const group_record *r, char *err, size_t errlen) {
    if (r->id > PK_GROUP_MAX) return err_set(err, errlen, "group ID %u is above the 20-bit limit %u", r->id, PK_GROUP_MAX);
    if (!r->product[0]) return err_set(err, errlen, "group %u: product name is empty", r->id);
    if (!valid_text(r->product) || !valid_text(r->edition))
        return err_set(err, errlen, "group %u: product and edition may not contain control characters", r->id);
    if (!group_channel_parse(group_channel_name(r->channel)))
        return err_set(err, errlen, "group %u: channel %d is not retail, oem or volume", r->id, (int)r->channel);
    if (!mac_alg_known(r->alg_first)) return err_set(err, errlen, "group %u: unknown first MAC algorithm %d", r->id, r->alg_first);
    if (!mac_alg_known(r->alg_second)) return err_set(err, errlen, "group %u: unknown second MAC algorithm %d", r->id, r->alg_second);
    if (r->policy.audit_rate_ppm > 1000000)
        return err_set(err, errlen, "group %u: audit rate %u ppm is above 100 %%", r->id, r->policy.audit_rate_ppm);
    if (r->policy.lease_seconds && r->policy.renew_seconds > r->policy.lease_seconds)
        return err_set(err, errlen, "group %u: renew interval (%u s) is longer than the lease (%u s)", r->id,
                       r->policy.renew_seconds, r->policy.lease_seconds);
    if (r->policy.machine_match > GROUP_MACHINE_MATCH_MAX)
        return err_set(err, errlen, "group %u: machine_match %u is above %d (the most components a request carries)",
                       r->id, r->policy.machine_match, GROUP_MACHINE_MATCH_MAX);
    if (r->policy.churn_period_seconds == 0)
        return err_set(err, errlen, "group %u: the churn period must be at least 1 second", r->id);
    if (!valid_features(r->policy.features))
        return err_set(err, errlen, "group %u: features must be comma-separated names of letters, digits, '-', '_' and '.'", r->id);
    return 0;
}

int group_record_validate(const group_record *rec, char *err, size_t errlen) { return validate(rec, err, errlen); }

/* ---- writing ---- */

/* A growing argv for one EVAL: numbers are formatted into `nums`. */
typedef struct eval_args {
    const char *v[64]; /* argument pointers */
    size_t l[64];      /* argument lengths (binary-safe) */
    char nums[24][24]; /* storage for formatted numbers */
    int n, nn;
} eval_args;

static void arg(eval_args *a, const void *p, size_t len) {
    a->v[a->n] = p;
    a->l[a->n++] = len;
}
static void arg_s(eval_args *a, const char *s) { arg(a, s, strlen(s)); }
static void arg_u(eval_args *a, unsigned long long x) {
    char *b = a->nums[a->nn++];
    snprintf(b, sizeof a->nums[0], "%llu", x);
    arg_s(a, b);
}
static void field_s(eval_args *a, const char *k, const char *v) { arg_s(a, k), arg_s(a, v); }
static void field_u(eval_args *a, const char *k, unsigned long long v) { arg_s(a, k), arg_u(a, v); }

/* Adds the written record's ID to the store's `groups`; 0, or -3 (the
 * record is there, the index does not name it: err says how to add it). */
static int index_group(redisContext *c, uint32_t id, const char *store, char *err, size_t errlen) {
    redisReply *r = redisCommand(c, "SADD " PA_RKEY_GROUPS " %u", (unsigned)id);
    int ok = r && r->type == REDIS_REPLY_INTEGER;
    if (!ok)
        err_set(err, errlen,
                "group %u: its record is written to the %s store but not added to its `%s` index (%s); "
                "add it with SADD %s %u",
                id, store, PA_RKEY_GROUPS, r ? (r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply") : c->errstr,
                PA_RKEY_GROUPS, (unsigned)id);
    if (r) freeReplyObject(r);
    return ok ? 0 : -3;
}

/* Runs the create script, then indexes the group; 0 written, 1 exists, -1
 * refused or failed, -2 outcome unknown (no reply), -3 written but not
 * indexed. */
static int run_create(redisContext *c, redisContext *index, eval_args *a, uint32_t id, const char *store, char *err,
                      size_t errlen) {
    redisReply *r = redisCommandArgv(c, a->n, a->v, a->l);
    if (!r) {
        err_set(err, errlen, "%s store: %s", store, c->errstr[0] ? c->errstr : "no reply");
        return -2;
    }
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "EXISTS", 6) == 0) rc = 1;
    else if (r->type == REDIS_REPLY_ERROR) rc = err_set(err, errlen, "%s store refused the write: %s", store, r->str);
    freeReplyObject(r);
    return rc == 0 ? index_group(index, id, store, err, errlen) : rc;
}

static void eval_head(eval_args *a, const char *hash) {
    a->n = a->nn = 0;
    arg_s(a, "EVAL");
    arg_s(a, CREATE_SCRIPT);
    arg_s(a, "1");
    arg_s(a, hash);
}

static void activation_fields(eval_args *a, const group_record *r, const uint8_t *blob) {
    const group_policy *p = &r->policy;
    field_s(a, GROUP_F_PRODUCT, r->product);
    field_s(a, GROUP_F_EDITION, r->edition);
    field_s(a, GROUP_F_CHANNEL, group_channel_name(r->channel));
    field_u(a, GROUP_F_UPGRADE, r->upgrade_allowed);
    field_u(a, GROUP_F_ALG, (unsigned)r->alg_first);
    field_u(a, GROUP_F_CREATED, (unsigned long long)r->created_at);
    field_u(a, GROUP_F_VERSION, r->version);
    field_u(a, GROUP_F_MAX_MACHINES, p->max_machines);
    field_u(a, GROUP_F_LEASE, p->lease_seconds);
    field_u(a, GROUP_F_RENEW, p->renew_seconds);
    field_u(a, GROUP_F_AUDIT_RATE, p->audit_rate_ppm);
    field_s(a, GROUP_F_AUDIT_MODE, p->audit == AUDIT_MODE_ONLINE ? "online" : "offline");
    field_s(a, GROUP_F_AUDIT_DOWN, p->on_audit_down == AUDIT_UNREACHABLE_OFFLINE ? "offline" : "fail-closed");
    field_s(a, GROUP_F_OUTBOX_FULL, p->on_outbox_full == AUDIT_OUTBOX_FULL_GRANT ? "grant" : "fail-closed");
    field_u(a, GROUP_F_AUDIT_FIRST, p->audit_first_activation);
    field_s(a, GROUP_F_FEATURES, p->features);
    field_u(a, GROUP_F_MACHINE_MATCH, p->machine_match);
    field_u(a, GROUP_F_GRACE, p->grace_seconds);
    field_u(a, GROUP_F_MAX_DEACT, p->max_deactivations);
    field_u(a, GROUP_F_MAX_TRANSFERS, p->max_transfers);
    field_u(a, GROUP_F_CHURN_PERIOD, p->churn_period_seconds);
    arg_s(a, GROUP_F_SECRET);
    arg(a, blob, WRAP_BLOB_LEN);
}

/* 1 if `key` exists, 0 if not, -1 on error. */
static int key_exists(redisContext *c, const char *key, const char *store, char *err, size_t errlen) {
    redisReply *r = redisCommand(c, "EXISTS %s", key);
    if (!r) return err_set(err, errlen, "%s store: %s", store, c->errstr[0] ? c->errstr : "no reply");
    int rc = r->type == REDIS_REPLY_INTEGER ? r->integer > 0
                                             : err_set(err, errlen, "%s store: EXISTS %s: %s", store, key,
                                                       r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    return rc;
}

/* Fresh secret for `role`, wrapped under `kek`; the clear secret is wiped. */
static int new_wrapped_secret(const uint8_t kek[KEK_LEN], int role, uint32_t id, uint8_t blob[WRAP_BLOB_LEN]) {
    uint8_t secret[MAC_SECRET_LEN];
    int rc = RAND_bytes(secret, sizeof secret) == 1 ? secret_wrap(kek, role, id, secret, blob) : -1;
    OPENSSL_cleanse(secret, sizeof secret);
    return rc;
}

/* Removes the audit part again after the activation part was refused. */
static int undo_audit(redisContext *audit, redisContext *index, const char *akey, uint32_t id) {
    redisReply *r = redisCommand(audit, "DEL %s", akey);
    int ok = r && r->type == REDIS_REPLY_INTEGER;
    if (r) freeReplyObject(r);
    r = ok ? redisCommand(index, "SREM " PA_RKEY_GROUPS " %u", (unsigned)id) : NULL;
    ok = r && r->type == REDIS_REPLY_INTEGER;
    if (r) freeReplyObject(r);
    return ok ? 0 : -1;
}

static int precheck(redisContext *activation, redisContext *audit, uint32_t id, const char *gkey,
                    const char *akey, char *err, size_t errlen) {
    int e = key_exists(activation, gkey, "activation", err, errlen);
    if (e < 0) return -1;
    if (e) return err_set(err, errlen, "group %u already exists in the activation store", id);
    e = key_exists(audit, akey, "audit", err, errlen);
    if (e < 0) return -1;
    if (e)
        return err_set(err, errlen, "group %u already exists in the audit store but not in the activation "
                                 "store (an earlier create stopped halfway?); choose another ID or remove "
                                 "%s from the audit store", id, akey);
    return 0;
}

int group_create(redisContext *activation, const uint8_t kek_activation[KEK_LEN],
                 redisContext *audit, const uint8_t kek_audit[KEK_LEN],
                 group_record *rec, char *err, size_t errlen) {
    const group_conns a = {activation, activation}, b = {audit, audit};
    return group_create_at(&a, kek_activation, &b, kek_audit, rec, err, errlen);
}

int group_create_at(const group_conns *activation_at, const uint8_t kek_activation[KEK_LEN],
                    const group_conns *audit_at, const uint8_t kek_audit[KEK_LEN], group_record *rec, char *err,
                    size_t errlen) {
    redisContext *activation = activation_at->record, *audit = audit_at->record;
    char gkey[PA_RKEY_MAX], akey[PA_RKEY_MAX];
    uint8_t blob_first[WRAP_BLOB_LEN], blob_second[WRAP_BLOB_LEN];
    eval_args a;
    if (validate(rec, err, errlen) != 0) return -1;
    pa_rkey_group(gkey, sizeof gkey, rec->id);
    pa_rkey_audit(akey, sizeof akey, rec->id);
    if (precheck(activation, audit, rec->id, gkey, akey, err, errlen) != 0) return -1;
    if (!rec->created_at) rec->created_at = (int64_t)time(NULL);
    if (!rec->version) rec->version = 1;
    if (new_wrapped_secret(kek_audit, MAC_ROLE_SECOND, rec->id, blob_second) != 0 ||
        new_wrapped_secret(kek_activation, MAC_ROLE_FIRST, rec->id, blob_first) != 0)
        return err_set(err, errlen, "group %u: cannot generate and wrap the secrets (OpenSSL failure)", rec->id);

    eval_head(&a, akey);
    field_u(&a, GROUP_F_ALG, (unsigned)rec->alg_second);
    field_u(&a, GROUP_F_CREATED, (unsigned long long)rec->created_at);
    arg_s(&a, GROUP_F_SECRET);
    arg(&a, blob_second, WRAP_BLOB_LEN);
    char why[256];
    int rc = run_create(audit, audit_at->index, &a, rec->id, "audit", why, sizeof why);
    if (rc == 1) return err_set(err, errlen, "group %u already exists in the audit store", rec->id);
    if (rc == -2)
        return err_set(err, errlen, "group %u: audit store write outcome unknown (%s); nothing was written "
                                 "to the activation store", rec->id, why);
    if (rc < 0) return err_set(err, errlen, "%s", why);

    eval_head(&a, gkey);
    activation_fields(&a, rec, blob_first);
    rc = run_create(activation, activation_at->index, &a, rec->id, "activation", why, sizeof why);
    if (rc == 0) return 0;
    if (rc == -3) return err_set(err, errlen, "%s", why); /* both records are there: nothing to undo */
    if (rc == -2)
        return err_set(err, errlen, "group %u: written to the audit store, but the activation store write "
                                 "outcome is unknown (%s); check with `keystore group show`", rec->id, why);
    if (rc == 1) snprintf(why, sizeof why, "group %u already exists in the activation store", rec->id);
    if (undo_audit(audit, audit_at->index, akey, rec->id) != 0)
        return err_set(err, errlen, "%s; removing the audit part failed too: delete %s from the audit store "
                                 "by hand", why, akey);
    return err_set(err, errlen, "%s", why);
}

/* ---- reading ---- */

static const redisReply *hget(const redisReply *r, const char *name) {
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0)
            return r->element[i + 1]->type == REDIS_REPLY_STRING ? r->element[i + 1] : NULL;
    return NULL;
}

/* Parses field `name` as an unsigned number <= max into *out; a missing
 * field keeps *out when `required` is 0. */
static int hget_u(const redisReply *r, const char *name, unsigned long long max, int required,
                  unsigned long long *out, uint32_t id, char *err, size_t errlen) {
    const redisReply *v = hget(r, name);
    if (!v) return required ? err_set(err, errlen, "group %u: record has no '%s' field", id, name) : 0;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v->str, &end, 10);
    if (v->str[0] < '0' || v->str[0] > '9' || *end || errno || x > max) /* no sign, no blanks */
        return err_set(err, errlen, "group %u: field '%s' = '%.40s' is not a valid number", id, name, v->str);
    *out = x;
    return 0;
}

static int hget_text(const redisReply *r, const char *name, char *out, size_t n) {
    const redisReply *v = hget(r, name);
    if (!v) return 0;
    if (v->len >= n) return -1;
    memcpy(out, v->str, v->len + 1);
    return 0;
}

static int parse_policy_enums(const redisReply *r, group_record *rec, char *err, size_t errlen) {
    const redisReply *v = hget(r, GROUP_F_CHANNEL);
    int ch = v ? group_channel_parse(v->str) : 0;
    if (!ch) return err_set(err, errlen, "group %u: missing or unknown channel", rec->id);
    rec->channel = (group_channel)ch;
    if ((v = hget(r, GROUP_F_AUDIT_MODE))) {
        if (strcmp(v->str, "online") && strcmp(v->str, "offline"))
            return err_set(err, errlen, "group %u: unknown audit_mode '%.20s'", rec->id, v->str);
        rec->policy.audit = strcmp(v->str, "online") == 0 ? AUDIT_MODE_ONLINE : AUDIT_MODE_OFFLINE;
    }
    if ((v = hget(r, GROUP_F_AUDIT_DOWN))) {
        if (strcmp(v->str, "offline") && strcmp(v->str, "fail-closed"))
            return err_set(err, errlen, "group %u: unknown audit_unreachable '%.20s'", rec->id, v->str);
        rec->policy.on_audit_down = strcmp(v->str, "offline") == 0 ? AUDIT_UNREACHABLE_OFFLINE
                                                                   : AUDIT_UNREACHABLE_FAIL_CLOSED;
    }
    /* Absent in records made before the outbox had a cap: the default. */
    if ((v = hget(r, GROUP_F_OUTBOX_FULL))) {
        if (strcmp(v->str, "grant") && strcmp(v->str, "fail-closed"))
            return err_set(err, errlen, "group %u: unknown audit_outbox_full '%.20s'", rec->id, v->str);
        rec->policy.on_outbox_full =
            strcmp(v->str, "grant") == 0 ? AUDIT_OUTBOX_FULL_GRANT : AUDIT_OUTBOX_FULL_FAIL_CLOSED;
    }
    return 0;
}

int group_record_from_reply(const redisReply *r, uint32_t id, group_record *rec,
                            uint8_t wrapped_secret[WRAP_BLOB_LEN], char *err, size_t errlen) {
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements % 2)
        return err_set(err, errlen, "group %u: unexpected reply to HGETALL", id);
    group_record_defaults(rec);
    rec->id = id;
    /* Numeric fields in the order they are stored into rec below. */
    static const struct {
        const char *name;
        unsigned long long max;
        int required;
    } f[] = {{GROUP_F_UPGRADE, 1, 0},
             {GROUP_F_ALG, 255, 1},
             {GROUP_F_CREATED, INT64_MAX, 0},
             {GROUP_F_VERSION, UINT64_MAX, 0},
             {GROUP_F_MAX_MACHINES, UINT32_MAX, 0},
             {GROUP_F_LEASE, UINT32_MAX, 0},
             {GROUP_F_RENEW, UINT32_MAX, 0},
             {GROUP_F_AUDIT_RATE, 1000000, 0},
             {GROUP_F_AUDIT_FIRST, 1, 0},
             {GROUP_F_MACHINE_MATCH, GROUP_MACHINE_MATCH_MAX, 0},
             {GROUP_F_GRACE, UINT32_MAX, 0},
             {GROUP_F_MAX_DEACT, UINT32_MAX, 0},
             {GROUP_F_MAX_TRANSFERS, UINT32_MAX, 0},
             {GROUP_F_CHURN_PERIOD, UINT32_MAX, 0}};
    /* Absent fields (records older than the field) keep these defaults. */
    unsigned long long v[14] = {0,
                                0,
                                0,
                                1,
                                rec->policy.max_machines,
                                0,
                                0,
                                rec->policy.audit_rate_ppm,
                                0,
                                0,
                                0,
                                0,
                                rec->policy.max_transfers,
                                rec->policy.churn_period_seconds};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (hget_u(r, f[i].name, f[i].max, f[i].required, &v[i], id, err, errlen) != 0) return -1;
    rec->upgrade_allowed = v[0];
    rec->alg_first = (int)v[1];
    rec->created_at = (int64_t)v[2];
    rec->version = v[3];
    rec->policy.max_machines = (uint32_t)v[4];
    rec->policy.lease_seconds = (uint32_t)v[5];
    rec->policy.renew_seconds = (uint32_t)v[6];
    rec->policy.audit_rate_ppm = (uint32_t)v[7];
    rec->policy.audit_first_activation = v[8];
    rec->policy.machine_match = (uint32_t)v[9];
    rec->policy.grace_seconds = (uint32_t)v[10];
    rec->policy.max_deactivations = (uint32_t)v[11];
    rec->policy.max_transfers = (uint32_t)v[12];
    rec->policy.churn_period_seconds = (uint32_t)v[13];
    rec->alg_second = 0;   /* lives in the audit store only */
    if (hget_text(r, GROUP_F_PRODUCT, rec->product, sizeof rec->product) ||
        hget_text(r, GROUP_F_EDITION, rec->edition, sizeof rec->edition) ||
        hget_text(r, GROUP_F_FEATURES, rec->policy.features, sizeof rec->policy.features))
        return err_set(err, errlen, "group %u: a text field is too long", id);
    if (parse_policy_enums(r, rec, err, errlen) != 0) return -1;
    if (wrapped_secret) {
        const redisReply *s = hget(r, GROUP_F_SECRET);
        if (!s || s->len != WRAP_BLOB_LEN)
            return err_set(err, errlen, "group %u: record has no valid wrapped secret", id);
        memcpy(wrapped_secret, s->str, WRAP_BLOB_LEN);
    }
    return 0;
}

/* HGETALL of `key`: 0 with *out, 1 if absent, -1 on error. */
static int hgetall(redisContext *c, const char *key, const char *store, redisReply **out, char *err, size_t errlen) {
    redisReply *r = redisCommand(c, "HGETALL %s", key);
    if (!r) return err_set(err, errlen, "%s store: %s", store, c->errstr[0] ? c->errstr : "no reply");
    if (r->type == REDIS_REPLY_ERROR) {
        err_set(err, errlen, "%s store: HGETALL %s: %s", store, key, r->str);
        freeReplyObject(r);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        freeReplyObject(r);
        return 1;
    }
    *out = r;
    return 0;
}

/* Unwraps `blob` and prepares it for `alg`. */
static mac_key *unwrap_key(const uint8_t kek[KEK_LEN], int role, uint32_t id, int alg, const uint8_t *blob,
                           size_t len, char *err, size_t errlen) {
    uint8_t secret[MAC_SECRET_LEN];
    if (secret_unwrap(kek, role, id, blob, len, secret) != 0) {
        err_set(err, errlen, "group %u: cannot unwrap the %s secret: wrong %s KEK, or the record was "
                          "tampered with", id, role == MAC_ROLE_FIRST ? "first" : "second",
                role == MAC_ROLE_FIRST ? "activation" : "audit");
        return NULL;
    }
    mac_key *k = mac_key_new(alg, secret, sizeof secret);
    OPENSSL_cleanse(secret, sizeof secret);
    if (!k) err_set(err, errlen, "group %u: cannot prepare MAC algorithm %d", id, alg);
    return k;
}

int group_load(redisContext *activation, const uint8_t kek_activation[KEK_LEN], uint32_t id,
               group_record *rec, mac_key **first, char *err, size_t errlen) {
    char key[PA_RKEY_MAX];
    uint8_t blob[WRAP_BLOB_LEN];
    redisReply *r = NULL;
    pa_rkey_group(key, sizeof key, id);
    int rc = hgetall(activation, key, "activation", &r, err, errlen);
    if (rc != 0) return rc;
    rc = group_record_from_reply(r, id, rec, first ? blob : NULL, err, errlen);
    freeReplyObject(r);
    if (rc != 0) return -1;
    if (first && !(*first = unwrap_key(kek_activation, MAC_ROLE_FIRST, id, rec->alg_first, blob,
                                       sizeof blob, err, errlen)))
        return -1;
    return 0;
}

int group_load_audit(redisContext *audit, const uint8_t kek_audit[KEK_LEN], uint32_t id,
                     int *alg_second, mac_key **second, char *err, size_t errlen) {
    char key[PA_RKEY_MAX];
    redisReply *r = NULL;
    pa_rkey_audit(key, sizeof key, id);
    int rc = hgetall(audit, key, "audit", &r, err, errlen);
    if (rc != 0) return rc;
    unsigned long long alg = 0;
    const redisReply *s = hget(r, GROUP_F_SECRET);
    rc = hget_u(r, GROUP_F_ALG, 255, 1, &alg, id, err, errlen);
    if (rc == 0 && (!s || s->len != WRAP_BLOB_LEN))
        rc = err_set(err, errlen, "group %u: audit record has no valid wrapped secret", id);
    if (rc == 0 && alg_second) *alg_second = (int)alg;
    if (rc == 0 && second &&
        !(*second = unwrap_key(kek_audit, MAC_ROLE_SECOND, id, (int)alg, (const uint8_t *)s->str,
                               s->len, err, errlen)))
        rc = -1;
    freeReplyObject(r);
    return rc;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int group_list(redisContext *activation, uint32_t **ids, size_t *count, char *err, size_t errlen) {
    *ids = NULL;
    *count = 0;
    redisReply *r = redisCommand(activation, "SMEMBERS " PA_RKEY_GROUPS);
    if (!r) return err_set(err, errlen, "activation store: %s", activation->errstr[0] ? activation->errstr : "no reply");
    if (r->type != REDIS_REPLY_ARRAY) {
        err_set(err, errlen, "activation store: SMEMBERS " PA_RKEY_GROUPS ": %s",
                r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return -1;
    }
    uint32_t *out = malloc((r->elements ? r->elements : 1) * sizeof *out);
    if (!out) {
        freeReplyObject(r);
        return err_set(err, errlen, "out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        char *end;
        unsigned long v = strtoul(r->element[i]->str ? r->element[i]->str : "", &end, 10);
        if (r->element[i]->type == REDIS_REPLY_STRING && end != r->element[i]->str && !*end && v <= PK_GROUP_MAX)
            out[n++] = (uint32_t)v;
    }
    freeReplyObject(r);
    qsort(out, n, sizeof *out, cmp_u32);
    *ids = out;
    *count = n;
    return 0;
}
