/* volume_policy.c -- argument packing and reply decoding for volume.lua.
 *
 * Activate and Renew build their arguments once for either way of sending
 * them: by themselves (rstore_eval, one round trip) or appended to the
 * worker's pipeline with the other calls of a batch (docs/batching.md),
 * whose replies volume_read takes in order.
 *
 * The order's key names are made per call from its serial (nine short
 * snprintfs, far below the cost of the round trip); the positions are
 * volume_script_args.h's, shared with the script.
 *
 * On Redis Cluster (rstore_is_cluster, policy_split) the script sees the order's slot only
 * (docs/cluster.md, "volume.lua"): a caller's call by itself first takes
 * the address's tokens (address_take.lua) and reads the key's revocation
 * (SISMEMBER on its group's set), each in its own slot, and passes what it
 * read as an argument; the outbox is the order's slot's shard. A batch
 * does that first round for all its calls and pipelines the rest. */
#include "volume_policy.h"

#include <ctype.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "hex.h"
#include "outbox_shards.h"
#include "redis_keys.h"
#include "script_args.h"
#include "volume_script_args.h"

extern const char volume_lua[]; /* volume.lua, embedded at build time */

int volume_register(rstore *r) { return rstore_script_add(r, volume_lua); }

void volume_machine_digest(const uint8_t *machine_id, uint8_t out[VOLUME_DIGEST_LEN]) {
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256(machine_id, MACHINE_ID_LEN, d);
    memcpy(out, d, VOLUME_DIGEST_LEN);
}

/* Printable ASCII (spaces only if `spaces`), as validate.c allows in facts. */
static bool printable(const char *s, bool spaces) {
    for (; *s; s++)
        if (*s < ' ' || *s > '~' || (*s == ' ' && !spaces)) return false;
    return true;
}

static bool is_mac(const char *s) {
    if (strlen(s) != MAC_TEXT_LEN) return false;
    for (int i = 0; i < MAC_TEXT_LEN; i++)
        if (i % 3 == 2 ? s[i] != ':' : pa_hex_digit((unsigned char)s[i]) < 0) return false;
    return true;
}

int volume_designation_name(char kind, const char *value, char out[VOLUME_DESIGNATION_MAX]) {
    if (!value || !*value || !printable(value, kind == 's')) return -1;
    size_t len = strlen(value);
    const char *prefix;
    bool lower = true;
    if (kind == 'm') {
        uint8_t d[VOLUME_DIGEST_LEN];
        if (pa_hex_decode(value, len, d, sizeof d) != VOLUME_DIGEST_LEN) return -1;
        prefix = "m:";
    } else if (kind == 's') {
        if (len > FACT_MAX) return -1;
        prefix = "s:";
        lower = false; /* a serial is the vendor's text, case and all */
    } else if (kind == 'a') {
        if (!is_mac(value)) return -1;
        prefix = "mac:";
    } else {
        return -1;
    }
    int n = snprintf(out, VOLUME_DESIGNATION_MAX, "%s%s", prefix, value);
    if (n < 0 || n >= VOLUME_DESIGNATION_MAX) return -1;
    for (char *p = out + strlen(prefix); lower && *p; p++) *p = (char)tolower((unsigned char)*p);
    return n;
}

/* The order's key names, for one call. */
typedef struct order_names {
    char machines[PA_RKEY_MAX], counts[PA_RKEY_MAX], wheel[PA_RKEY_MAX], designated[PA_RKEY_MAX];
    char facts[PA_RKEY_MAX], mlog[PA_RKEY_MAX], seen[PA_RKEY_MAX], order[PA_RKEY_MAX], prefix[PA_RKEY_MAX];
} order_names;

static bool names_of(const char *serial, order_names *k) {
    return pa_rkey_order_machines(k->machines, sizeof k->machines, serial) > 0 &&
           pa_rkey_order_counts(k->counts, sizeof k->counts, serial) > 0 &&
           pa_rkey_order_wheel(k->wheel, sizeof k->wheel, serial) > 0 &&
           pa_rkey_order_designated(k->designated, sizeof k->designated, serial) > 0 &&
           pa_rkey_order_facts(k->facts, sizeof k->facts, serial) > 0 &&
           pa_rkey_order_mlog(k->mlog, sizeof k->mlog, serial) > 0 &&
           pa_rkey_order_seen(k->seen, sizeof k->seen, serial) > 0 &&
           pa_rkey_order(k->order, sizeof k->order, serial) > 0 &&
           pa_rkey_order_wheel_prefix(k->prefix, sizeof k->prefix, serial) > 0;
}

/* The first keys of every call: the order's seven. */
static void add_order_keys(script_args *a, const order_names *k) {
    script_args_add_str(a, k->machines);
    script_args_add_str(a, k->counts);
    script_args_add_str(a, k->wheel);
    script_args_add_str(a, k->designated);
    script_args_add_str(a, k->facts);
    script_args_add_str(a, k->mlog);
    script_args_add_str(a, k->seen);
}

/* The first arguments of every call: op, order hash, wheel prefix and the
 * ageing budget (`budget` must outlive the call). */
static void add_order_args(script_args *a, const order_names *k, const char *op, const char *budget) {
    script_args_add_str(a, op);
    script_args_add_str(a, k->order); /* read only: ARGV, see volume.lua */
    script_args_add_str(a, k->prefix);
    script_args_add_str(a, budget);
}

static void fail(volume_result *out, bool redis_error, const char *what, const char *why) {
    memset(out, 0, sizeof *out);
    out->status = VOLUME_UNAVAILABLE;
    out->redis_error = redis_error;
    snprintf(out->error, sizeof out->error, "%s: %s", what, why);
}

static void decode(const redisReply *r, const char *what, volume_result *out) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < VOL_R_N || r->element[0]->type != REDIS_REPLY_INTEGER) {
        fail(out, true, what, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        return;
    }
    bool bad = false;
    memset(out, 0, sizeof *out);
#define AT(pos) script_reply_int(r, (pos)-1, &bad)
    out->status = (volume_status)AT(VOL_R_STATUS);
    out->version = (uint64_t)AT(VOL_R_VERSION);
    out->now = AT(VOL_R_NOW);
    out->count = (uint32_t)AT(VOL_R_COUNT);
    out->seats_used = (uint32_t)AT(VOL_R_SEATS);
    out->over_term = (uint32_t)AT(VOL_R_OVER_TERM);
    out->changes = (uint64_t)AT(VOL_R_CHANGES);
    out->pending = (volume_pending)AT(VOL_R_PENDING);
    out->check_in_at = AT(VOL_R_CHECK_IN);
    out->expires_at = AT(VOL_R_EXPIRES);
    out->renew_after = AT(VOL_R_RENEW);
    out->again = AT(VOL_R_AGAIN) != 0;
    out->deactivation = (volume_deactivation)AT(VOL_R_DEACT);
    out->retry_after_s = (int)AT(VOL_R_RETRY);
    out->aged = (uint32_t)AT(VOL_R_AGED);
    out->more = AT(VOL_R_MORE) != 0;
    int64_t audited = AT(VOL_R_AUDITED);
    out->audited = audited == 1;
    out->unaudited = audited == 2;
    uint32_t shared = (uint32_t)AT(VOL_R_REBOUND);
    const redisReply *was = r->element[VOL_R_WAS - 1];
    if (shared && was->type == REDIS_REPLY_STRING && was->len == VOLUME_DIGEST_LEN) {
        out->rebound = true;
        out->rebound_shared = shared;
        memcpy(out->rebound_from, was->str, VOLUME_DIGEST_LEN);
    }
#undef AT
    const redisReply *rnd = r->element[VOL_R_RANDOM - 1];
    if (rnd->type == REDIS_REPLY_STRING && rnd->len == LICENSE_RANDOM_LEN)
        memcpy(out->random, rnd->str, LICENSE_RANDOM_LEN);
    if (bad) fail(out, true, what, "a number in the reply does not parse");
}

static void run(rstore *r, int script, int nkeys, script_args *a, const char *what, volume_result *out) {
    if (a->overflow) {
        fail(out, false, what, "too many script arguments");
        return;
    }
    redisReply *reply = rstore_eval(r, script, nkeys, a->n - nkeys, a->v, a->len);
    if (!reply) {
        fail(out, false, what, rstore_error(r));
        return;
    }
    decode(reply, what, out);
    freeReplyObject(reply);
}

#define TEXT_OF(x) #x
#define TEXT(x) TEXT_OF(x)
#define AGE_PER_CALL_S TEXT(VOLUME_AGE_PER_CALL)

/* activate, renew, deactivate: everything up to the caller's arguments. */
typedef struct caller_call {
    order_names k;
    char revoked[PA_RKEY_MAX], serial[16], group[16];
    char outbox[PA_RKEY_MAX];          /* activate: PA_RKEY_OUTBOX, or the order's slot's shard */
    const char *revoked_read;          /* "" on a single node; Redis Cluster: "1"/"0", read before */
    uint8_t digest[VOLUME_DIGEST_LEN]; /* the machine's name in the table */
    int nkeys;                         /* KEYS in a (the caller's keys vary, volume_script_args.h) */
    script_args a;
} caller_call;

/* `revoked`: on a single node NULL (the script reads the set); on Redis
 * Cluster "1" or "0" as read, and then no address key may be given (the
 * caller took it first). */
static bool caller_begin(caller_call *cc, const char *order_serial, const char *op, const volume_caller *c,
                         const uint8_t *machine_id, const uint8_t *holder, const char *revoked) {
    if (!names_of(order_serial, &cc->k) || pa_rkey_revoked(cc->revoked, sizeof cc->revoked, c->group) < 0) return false;
    bool activate = strcmp(op, "activate") == 0;
    if (activate && (revoked ? outbox_shard_for_key(cc->k.machines, cc->outbox, sizeof cc->outbox)
                             : snprintf(cc->outbox, sizeof cc->outbox, "%s", PA_RKEY_OUTBOX)) < 0)
        return false;
    snprintf(cc->serial, sizeof cc->serial, "%u", (unsigned)c->serial);
    snprintf(cc->group, sizeof cc->group, "%u", (unsigned)c->group);
    cc->revoked_read = revoked ? revoked : "";
    volume_machine_digest(machine_id, cc->digest);
    cc->a = (script_args){.n = 0};
    add_order_keys(&cc->a, &cc->k);
    if (activate) script_args_add_str(&cc->a, cc->outbox);
    if (!revoked) script_args_add_str(&cc->a, cc->revoked);
    if (c->address_key) script_args_add_str(&cc->a, c->address_key);
    cc->nkeys = (int)cc->a.n;
    add_order_args(&cc->a, &cc->k, op, AGE_PER_CALL_S);
    script_args_add(&cc->a, cc->digest, sizeof cc->digest);
    script_args_add(&cc->a, holder ? (const char *)holder : "", holder ? VOLUME_HOLDER_LEN : 0);
    return true;
}

static void caller_end(caller_call *cc, const volume_caller *c, const uint8_t random[LICENSE_RANDOM_LEN]) {
    script_args_add(&cc->a, random, LICENSE_RANDOM_LEN);
    script_args_add_str(&cc->a, cc->serial);
    script_args_add_str(&cc->a, c->limits->address_rate);
    script_args_add_str(&cc->a, c->limits->address_burst);
    script_args_add_str(&cc->a, c->ip ? c->ip : "");
    script_args_add_str(&cc->a, cc->group);
    script_args_add_str(&cc->a, cc->revoked_read);
}

/* ---- Redis Cluster: the address take and the revocation first -------------- */

void volume_result_of_take(const policy_result *take, volume_result *out) {
    if (take->status != POLICY_RATE_LIMITED) { /* UNAVAILABLE: its error names the address take */
        fail(out, take->redis_error, "address take", "");
        snprintf(out->error, sizeof out->error, "%.150s", take->error);
        return;
    }
    memset(out, 0, sizeof *out); /* as the script's RATE_LIMITED: version 0, nothing else known */
    out->status = VOLUME_RATE_LIMITED;
    out->retry_after_s = take->retry_after_s;
}

/* The address take by itself (address_take.lua, one token; its reply is
 * {0} or {1, wait, "address"}); true when the call may go on. Run here,
 * not through policy.c, which this library does not link. */
static bool address_first(rstore *r, const volume_caller *c, volume_result *out) {
    if (!c->address_key) return true;
    const char *argv[] = {c->address_key, c->limits->address_rate, c->limits->address_burst, "1", "1"};
    size_t len[5];
    for (int i = 0; i < 5; i++) len[i] = strlen(argv[i]);
    redisReply *reply = rstore_eval(r, c->address_script, 1, 4, argv, len);
    bool bad =
        !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        (reply->element[0]->integer != 0 && (reply->elements < 2 || reply->element[1]->type != REDIS_REPLY_INTEGER));
    if (bad) {
        fail(out, reply != NULL, "address take",
             !reply                             ? rstore_error(r)
             : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                : "unexpected reply");
    } else if (reply->element[0]->integer != 0) {
        memset(out, 0, sizeof *out); /* as the script's RATE_LIMITED: version 0, nothing else known */
        out->status = VOLUME_RATE_LIMITED;
        out->retry_after_s = (int)reply->element[1]->integer;
    }
    bool granted = !bad && reply->element[0]->integer == 0;
    if (reply) freeReplyObject(reply);
    return granted;
}

int volume_revoked_append(rstore *r, uint32_t group, uint32_t serial) {
    char key[PA_RKEY_MAX], text[16];
    if (pa_rkey_revoked(key, sizeof key, group) < 0) return -1;
    snprintf(text, sizeof text, "%u", (unsigned)serial);
    const char *argv[] = {"SISMEMBER", key, text};
    return rstore_append_argv(r, 3, argv, NULL);
}

/* SISMEMBER's reply (freed here): "1" or "0" in *revoked, or false with
 * UNAVAILABLE in *out. */
static bool revoked_of(rstore *r, redisReply *reply, const char **revoked, volume_result *out) {
    if (!reply || reply->type != REDIS_REPLY_INTEGER) {
        fail(out, reply != NULL, "revocation",
             !reply                             ? rstore_error(r)
             : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                : "unexpected reply");
        if (reply) freeReplyObject(reply);
        return false;
    }
    *revoked = reply->integer ? "1" : "0";
    freeReplyObject(reply);
    return true;
}

bool volume_revoked_read(rstore *r, const char **revoked, volume_result *out) {
    return revoked_of(r, rstore_get_reply(r), revoked, out);
}

/* SISMEMBER on the key's group's set by itself. */
static bool revoked_first(rstore *r, const volume_caller *c, const char **revoked, volume_result *out) {
    char key[PA_RKEY_MAX], serial[16];
    if (pa_rkey_revoked(key, sizeof key, c->group) < 0) {
        fail(out, false, "revocation", "revoked set name too long");
        return false;
    }
    snprintf(serial, sizeof serial, "%u", (unsigned)c->serial);
    return revoked_of(r, rstore_command(r, "SISMEMBER %s %s", key, serial), revoked, out);
}

/* Before a caller's call by itself: on a single node nothing (*revoked
 * NULL, *c as given); on Redis Cluster the address take, then (unless
 * `reads_revoked` is false) the revocation, *c left without its address
 * key. False when the call ends there (*out set). */
static bool split_first(rstore *r, bool reads_revoked, volume_caller *c, const char **revoked, volume_result *out) {
    *revoked = NULL;
    if (!rstore_is_cluster(r)) return true;
    if (!address_first(r, c, out)) return false;
    c->address_key = NULL;
    *revoked = c->revoked ? c->revoked : "0"; /* read already by the batch's first round trip */
    return !reads_revoked || c->revoked || revoked_first(r, c, revoked, out);
}

/* An Activate's arguments and the strings they point into (so one builder
 * serves the call by itself and the pipelined one). Must not move once
 * built. */
typedef struct activate_argv {
    caller_call cc;
    char macs[VOLUME_MACS_MAX * 18];
    audit_record_args ra; /* the outbox entry's fields */
    char n_fields[8];
    char names[2 + VOLUME_MACS_MAX][VOLUME_DESIGNATION_MAX]; /* designation names */
    char hex[2 * VOLUME_DIGEST_LEN + 1];
} activate_argv;

static bool activate_args(activate_argv *v, const char *order_serial, const volume_caller *c, const volume_machine *m,
                          const uint8_t random[LICENSE_RANDOM_LEN], const char *revoked) {
    caller_call *cc = &v->cc;
    if (!caller_begin(cc, order_serial, "activate", c, m->machine_id, m->holder, revoked)) return false;
    caller_end(cc, c, random);
    script_join_macs(m->macs, m->n_macs < VOLUME_MACS_MAX ? m->n_macs : VOLUME_MACS_MAX, v->macs, sizeof v->macs);
    script_args_add_str(&cc->a, m->hostname ? m->hostname : "");
    script_args_add_str(&cc->a, m->os ? m->os : "");
    script_args_add_str(&cc->a, m->host_serial ? m->host_serial : "");
    script_args_add_str(&cc->a, v->macs);
    script_args_add_str(&cc->a, m->facts_json ? m->facts_json : "");
    /* The offline audit: the outbox entry's fields, as audit_record.h shapes them. */
    const policy_audit *au = m->audit;
    script_args_add_str(&cc->a, !au ? "0" : au->mode == 2 ? "2" : "1");
    script_args_add_str(&cc->a, au && au->outbox_max && *au->outbox_max ? au->outbox_max : "1000000000");
    script_args_add_str(&cc->a, au && au->grant_when_full ? "1" : "0");
    size_t n_tokens = m->tokens && m->n_tokens <= COMPONENTS_MAX ? m->n_tokens : 0;
    script_args_add(&cc->a, n_tokens ? (const char *)m->tokens : "", n_tokens * COMPONENT_TOKEN_LEN);
    v->ra.n = 0;
    if (au) audit_record_outbox_fields(au->rec, &v->ra);
    snprintf(v->n_fields, sizeof v->n_fields, "%zu", v->ra.n);
    script_args_add_str(&cc->a, v->n_fields);
    for (size_t i = 0; i < v->ra.n; i++) script_args_add(&cc->a, v->ra.argv[i], v->ra.len[i]);
    /* Designation names: the machine, its host serial, its MACs. */
    int n = 0;
    pa_hex_encode(cc->digest, sizeof cc->digest, v->hex);
    if (volume_designation_name('m', v->hex, v->names[n]) > 0) n++;
    if (m->host_serial && volume_designation_name('s', m->host_serial, v->names[n]) > 0) n++;
    for (size_t i = 0; i < m->n_macs && i < VOLUME_MACS_MAX; i++)
        if (volume_designation_name('a', m->macs[i], v->names[n]) > 0) n++;
    for (int i = 0; i < n; i++) script_args_add_str(&cc->a, v->names[i]);
    return true;
}

void volume_activate(rstore *r, int script, const char *order_serial, const volume_caller *c, const volume_machine *m,
                     const uint8_t random[LICENSE_RANDOM_LEN], volume_result *out) {
    volume_caller own = *c;
    const char *revoked;
    if (!split_first(r, true, &own, &revoked, out)) return;
    activate_argv v;
    if (!activate_args(&v, order_serial, &own, m, random, revoked)) {
        fail(out, false, "activate", "order serial too long for a key name");
        return;
    }
    run(r, script, v.cc.nkeys, &v.cc.a, "activate", out);
}

/* Appends a built call to the pipeline; -1 when it cannot be (the caller
 * then runs it by itself, which reports why). */
static int append(rstore *r, int script, int nkeys, script_args *a) {
    if (a->overflow) return -1;
    return rstore_eval_append(r, script, nkeys, a->n - nkeys, a->v, a->len);
}

int volume_activate_append(rstore *r, int script, const char *order_serial, const volume_caller *c,
                           const volume_machine *m, const uint8_t random[LICENSE_RANDOM_LEN]) {
    activate_argv v;
    const char *revoked = rstore_is_cluster(r) ? c->revoked : NULL;
    if ((revoked && c->address_key) || (rstore_is_cluster(r) && !revoked) ||
        !activate_args(&v, order_serial, c, m, random, revoked))
        return -1; /* Redis Cluster without its first round trip: by itself */
    return append(r, script, v.cc.nkeys, &v.cc.a);
}

bool volume_read(rstore *r, const char *what, volume_result *out) {
    redisReply *reply = rstore_get_reply(r);
    if (rstore_reply_noscript(reply)) {
        freeReplyObject(reply);
        return false;
    }
    if (!reply) {
        fail(out, false, what, rstore_error(r));
        return true;
    }
    decode(reply, what, out);
    freeReplyObject(reply);
    return true;
}

static void by_license(rstore *r, int script, const char *op, const char *order_serial, const volume_caller *c,
                       const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                       const uint8_t random[LICENSE_RANDOM_LEN], volume_result *out) {
    volume_caller own = *c;
    const char *revoked;
    if (!split_first(r, strcmp(op, "renew") == 0, &own, &revoked, out)) return;
    caller_call cc;
    if (!caller_begin(&cc, order_serial, op, &own, machine_id, holder, revoked)) {
        fail(out, false, op, "order serial too long for a key name");
        return;
    }
    caller_end(&cc, &own, random);
    run(r, script, cc.nkeys, &cc.a, op, out);
}

void volume_renew(rstore *r, int script, const char *order_serial, const volume_caller *c, const uint8_t *machine_id,
                  const uint8_t holder[PLACE_KEY_DIGEST_LEN], const uint8_t random[LICENSE_RANDOM_LEN],
                  volume_result *out) {
    by_license(r, script, "renew", order_serial, c, machine_id, holder, random, out);
}

int volume_renew_append(rstore *r, int script, const char *order_serial, const volume_caller *c,
                        const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                        const uint8_t random[LICENSE_RANDOM_LEN]) {
    caller_call cc;
    const char *revoked = rstore_is_cluster(r) ? c->revoked : NULL;
    if ((revoked && c->address_key) || (rstore_is_cluster(r) && !revoked) ||
        !caller_begin(&cc, order_serial, "renew", c, machine_id, holder, revoked))
        return -1; /* Redis Cluster without its first round trip: by itself */
    caller_end(&cc, c, random);
    return append(r, script, cc.nkeys, &cc.a);
}

void volume_deactivate(rstore *r, int script, const char *order_serial, const volume_caller *c,
                       const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                       const uint8_t random[LICENSE_RANDOM_LEN], volume_result *out) {
    by_license(r, script, "deactivate", order_serial, c, machine_id, holder, random, out);
}

int volume_deactivate_append(rstore *r, int script, const char *order_serial, const volume_caller *c,
                             const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                             const uint8_t random[LICENSE_RANDOM_LEN]) {
    caller_call cc;
    bool cluster = rstore_is_cluster(r); /* deactivate reads no revocation: "0" there, as by itself */
    if ((cluster && c->address_key) ||
        !caller_begin(&cc, order_serial, "deactivate", c, machine_id, holder, cluster ? "0" : NULL))
        return -1; /* Redis Cluster without its address take: by itself */
    caller_end(&cc, c, random);
    return append(r, script, cc.nkeys, &cc.a);
}

/* sweep and the decisions: the order's keys only. */
static void order_call(rstore *r, int script, const char *order_serial, const char *op, const char *budget,
                       const uint8_t *digest, volume_result *out) {
    order_names k;
    if (!names_of(order_serial, &k)) {
        fail(out, false, op, "order serial too long for a key name");
        return;
    }
    script_args a = {.n = 0};
    add_order_keys(&a, &k);
    add_order_args(&a, &k, op, budget);
    if (digest) script_args_add(&a, digest, VOLUME_DIGEST_LEN);
    run(r, script, VOL_ORDER_KEYS, &a, op, out);
}

void volume_sweep(rstore *r, int script, const char *order_serial, int budget, volume_result *out) {
    char b[16];
    snprintf(b, sizeof b, "%d", budget < 1 ? 1 : budget > VOLUME_SWEEP_MAX ? VOLUME_SWEEP_MAX : budget);
    order_call(r, script, order_serial, "sweep", b, NULL, out);
}

void volume_decide(rstore *r, int script, const char *order_serial, volume_decision d,
                   const uint8_t digest[VOLUME_DIGEST_LEN], volume_result *out) {
    order_call(r, script, order_serial, volume_decision_name(d), AGE_PER_CALL_S, digest, out);
}

void volume_call_keys(const char *op, bool split, const char *order_serial, const volume_caller *c, policy_keys *out) {
    static const uint8_t id[MACHINE_ID_LEN];
    memset(out, 0, sizeof *out);
    volume_caller own = *c;
    if (split) own.address_key = NULL; /* taken first (address_take.lua) */
    caller_call cc;
    int n = VOL_ORDER_KEYS;
    if (strcmp(op, "activate") == 0 || strcmp(op, "renew") == 0 || strcmp(op, "deactivate") == 0) {
        if (!caller_begin(&cc, order_serial, op, &own, id, NULL, split ? "0" : NULL)) return;
        n = cc.nkeys;
    } else { /* sweep and the operator's decisions: order_call's keys */
        if (!names_of(order_serial, &cc.k)) return;
        cc.a = (script_args){.n = 0};
        add_order_keys(&cc.a, &cc.k);
    }
    for (int i = 0; i < n && i < POLICY_KEYS_MAX; i++, out->n++)
        snprintf(out->name[i], sizeof out->name[i], "%.*s", (int)cc.a.len[i], cc.a.v[i]);
    snprintf(out->read, sizeof out->read, "%s", cc.k.order); /* read through ARGV: must share the slot */
}

const char *volume_decision_name(volume_decision d) {
    switch (d) {
    case VOLUME_APPROVE: return "approve";
    case VOLUME_DENY: return "deny";
    default: return "force";
    }
}

const char *volume_status_name(volume_status s) {
    static const char *names[] = {
        [VOLUME_OK] = "ok",
        [VOLUME_RATE_LIMITED] = "rate_limited",
        [VOLUME_UNKNOWN_ORDER] = "unknown_order",
        [VOLUME_REVOKED] = "revoked",
        [VOLUME_NO_SEAT] = "no_seat",
        [VOLUME_NOT_FOUND] = "not_found",
        [VOLUME_EXPIRED] = "expired",
        [VOLUME_UNAVAILABLE] = "unavailable",
        [VOLUME_WRONG_KEY] = "wrong_key",
        [VOLUME_OUTBOX_FULL] = "outbox_full",
        [VOLUME_NOT_STARTED] = "order_not_started",
        [VOLUME_ENDED] = "order_ended",
        [VOLUME_RETIRED] = "order_retired",
        [VOLUME_DEACTIVATED] = "deactivated",
        [VOLUME_NOT_REQUESTED] = "not_requested",
        [VOLUME_MACHINE_ENDED] = "machine_ended",
    };
    return (unsigned)s < sizeof names / sizeof *names && names[s] ? names[s] : "unknown";
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

bool volume_record_decode(const void *v, size_t len, volume_record *out) {
    const uint8_t *p = v;
    if (len != VOLUME_RECORD_LEN &&
        (len < VOLUME_RECORD_LEN + 2 || p[VOLUME_RECORD_LEN + 1] > COMPONENTS_MAX ||
         len != VOLUME_RECORD_LEN + 2 + (size_t)p[VOLUME_RECORD_LEN + 1] * COMPONENT_TOKEN_LEN))
        return false;
    bool tail = len > VOLUME_RECORD_LEN;
    *out = (volume_record){.flags = p[0],
                           .first_seen = le32(p + 1),
                           .last_contact = le32(p + 5),
                           .lease_until = le32(p + 9),
                           .rebinds = tail ? p[VOLUME_RECORD_LEN] : 0,
                           .n_tokens = tail ? p[VOLUME_RECORD_LEN + 1] : 0};
    return true;
}

const char *volume_record_status(const volume_record *r, bool counted) {
    if (r->flags & VOLUME_F_GONE) return "deactivated";
    if (r->flags & VOLUME_F_PENDING) return "pending";
    if (counted && !(r->flags & VOLUME_F_SEAT)) return "lapsed";
    return "active";
}
