/* audit_store.c -- Redis B access for the audit server (see audit_store.h).
 *
 * Scripts read everything they need before their first write, because Redis
 * does not roll a script back when a command in it fails: checking first
 * keeps "all or nothing" true even for the unexpected cases (a revocation
 * stream whose last ID is ahead of the counter after a partial restore). */
#include "audit_store.h"

#include <errno.h>
#include <openssl/rand.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit_script_args.h"
#include "hex.h"
#include "log.h"

struct audit_store {
    rstore *rs;                   /* private connection of the owning thread */
    int script_record;            /* index of record_verdicts.lua */
    int script_enqueue;           /* index of enqueue.lua */
    int script_list;              /* index of list_revocations.lua */
    char retention[24];           /* request keys' lifetime in seconds, for the scripts */
};

/* The scripts (the .lua files of this folder, embedded at build time with the
 * positions of audit_script_args.h defined in front of them). */
extern const char record_verdicts_lua[], enqueue_lua[], list_revocations_lua[];

/* Records per script call (bounds the argument list and the unpack() of
 * queue IDs). */
enum { RECORD_CHUNK = 128 };

audit_store *audit_store_open(const rstore_config *cfg, bool lazy, char *err, size_t errlen) {
    audit_store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->rs = rstore_new(cfg, lazy, err, errlen);
    if (!s->rs) {
        free(s);
        return NULL;
    }
    audit_store_set_retention(s, AUDIT_REQUEST_RETENTION_S);
    s->script_record = rstore_script_add(s->rs, record_verdicts_lua);
    s->script_enqueue = rstore_script_add(s->rs, enqueue_lua);
    s->script_list = rstore_script_add(s->rs, list_revocations_lua);
    if (s->script_record < 0 || s->script_enqueue < 0 || s->script_list < 0) {
        snprintf(err, errlen, "cannot register the audit store's scripts");
        audit_store_close(s);
        return NULL;
    }
    return s;
}

void audit_store_close(audit_store *s) {
    if (!s) return;
    rstore_free(s->rs);
    free(s);
}

rstore *audit_store_rstore(audit_store *s) { return s->rs; }

void audit_store_set_retention(audit_store *s, int64_t seconds) {
    snprintf(s->retention, sizeof s->retention, "%lld", (long long)(seconds > 0 ? seconds : AUDIT_REQUEST_RETENTION_S));
}

/* Turns a NULL or error reply into a message; returns true when usable. */
static bool reply_ok(audit_store *s, const redisReply *r, const char *what, char *err,
                     size_t errlen) {
    if (!r) {
        snprintf(err, errlen, "%s: audit store unavailable: %s", what, rstore_error(s->rs));
        return false;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s: audit store refused: %.*s", what, (int)r->len, r->str);
        return false;
    }
    return true;
}

/* One record's script arguments, formatted; argv points into it. */
typedef struct record_args {
    char group[16], serial[16], received[24], member[32], entry_id[AUDIT_LOG_ID_LEN + 1];
    char request_key[PA_RKEY_MAX];
    char machine[2 * AUDIT_MACHINE_ID_MAX + 1];
} record_args;

/* 16 random bytes as 32 lowercase hex characters; -1 if the generator failed. */
static int random_id(char out[AUDIT_LOG_ID_LEN + 1]) {
    uint8_t b[AUDIT_LOG_ID_LEN / 2];
    if (RAND_bytes(b, sizeof b) != 1) return -1;
    pa_hex_encode(b, sizeof b, out);
    return 0;
}

#define OR_EMPTY(x) ((x) ? (x) : "")
static void record_argv(const audit_entry *e, const char *queue_id, record_args *b,
                        const char **argv) {
    snprintf(b->group, sizeof b->group, "%" PRIu32, e->group);
    snprintf(b->serial, sizeof b->serial, "%" PRIu32, e->serial);
    snprintf(b->received, sizeof b->received, "%lld", (long long)e->received_at);
    pa_audit_revoked_member(b->member, sizeof b->member, e->group, e->serial);
    pa_rkey_audit_request(b->request_key, sizeof b->request_key, OR_EMPTY(e->request_id));
    b->machine[0] = '\0';
    if (e->machine_id)
        pa_hex_encode(e->machine_id,
                      e->machine_id_len > AUDIT_MACHINE_ID_MAX ? AUDIT_MACHINE_ID_MAX : e->machine_id_len, b->machine);
    const char *v[RECORD_ARGS] = {
        [RECORD_REQUEST_ID] = OR_EMPTY(e->request_id),
        [RECORD_QUEUE_ID] = OR_EMPTY(queue_id),
        [RECORD_GROUP] = b->group,
        [RECORD_SERIAL] = b->serial,
        [RECORD_VERDICT] = OR_EMPTY(e->verdict),
        [RECORD_REASON] = OR_EMPTY(e->reason),
        [RECORD_MACHINE] = b->machine,
        [RECORD_CLIENT] = OR_EMPTY(e->client_address),
        [RECORD_ORIGIN] = OR_EMPTY(e->origin),
        [RECORD_PEER] = OR_EMPTY(e->peer),
        [RECORD_SAMPLE_REASON] = OR_EMPTY(e->sample_reason),
        [RECORD_RECEIVED_AT] = b->received,
        [RECORD_SOURCE] = OR_EMPTY(e->source),
        [RECORD_REVOKE] = e->revoke ? "1" : "0",
        [RECORD_REVOKE_REASON] = OR_EMPTY(e->revoke_reason),
        [RECORD_REVOKED_MEMBER] = b->member,
        [RECORD_ENTRY_ID] = b->entry_id,
    };
    memcpy(argv, v, sizeof v);
}
#undef OR_EMPTY

/* Reads the script's reply {length, (recorded, sequence, new) x n}. */
static int record_reply(const redisReply *r, size_t n, audit_outcome *out, long long *queue_length) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 + 3 * n) return -1;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_INTEGER) return -1;
    *queue_length = r->element[0]->integer;
    for (size_t i = 0; i < n; i++) {
        redisReply **v = r->element + 1 + 3 * i;
        out[i].recorded = v[0]->integer == 1;
        out[i].sequence = (uint64_t)v[1]->integer;
        out[i].newly_revoked = v[2]->integer == 1;
    }
    return 0;
}

/* One script call for at most RECORD_CHUNK records. */
static int record_chunk(audit_store *s, const audit_entry *e, const char *const *queue_ids,
                        size_t n, audit_outcome *out, long long *queue_length, char *err,
                        size_t errlen) {
    size_t nkeys = RECORD_KEYS + n, nargs = RECORD_ARG_FIRST - 1 + n * RECORD_ARGS, argc = nkeys + nargs;
    const char **argv = malloc(argc * sizeof *argv);
    size_t *lens = malloc(argc * sizeof *lens);
    record_args *bufs = malloc(n * sizeof *bufs);
    if (!argv || !lens || !bufs) {
        free(argv), free(lens), free(bufs);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char now[24], epoch[AUDIT_LOG_ID_LEN + 1];
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    bool random_ok = random_id(epoch) == 0;
    for (size_t i = 0; i < n && random_ok; i++)
        if (e[i].revoke) random_ok = random_id(bufs[i].entry_id) == 0;
        else bufs[i].entry_id[0] = '\0';
    if (!random_ok) {
        free(argv), free(lens), free(bufs);
        snprintf(err, errlen, "record verdict: no randomness for the revocation log's ids");
        return -1;
    }
    const char **keys = argv, **args = argv + nkeys;
    keys[RECORD_KEY_TRAIL - 1] = PA_RKEY_AUDIT_TRAIL;
    keys[RECORD_KEY_REVOCATIONS - 1] = PA_RKEY_AUDIT_REVOCATIONS;
    keys[RECORD_KEY_SEQ - 1] = PA_RKEY_AUDIT_REVOCATION_SEQ;
    keys[RECORD_KEY_REVOKED - 1] = PA_RKEY_AUDIT_REVOKED;
    keys[RECORD_KEY_QUEUE - 1] = PA_RKEY_AUDIT_QUEUE;
    keys[RECORD_KEY_EPOCH - 1] = PA_RKEY_AUDIT_REVOCATION_EPOCH;
    args[RECORD_ARG_NOW - 1] = now;
    args[RECORD_ARG_EPOCH - 1] = epoch;
    args[RECORD_ARG_QUEUE_GROUP - 1] = PA_AUDIT_QUEUE_GROUP;
    args[RECORD_ARG_RETENTION - 1] = s->retention;
    for (size_t i = 0; i < n; i++) {
        record_argv(&e[i], queue_ids ? queue_ids[i] : NULL, &bufs[i], args + RECORD_ARG_FIRST - 1 + i * RECORD_ARGS);
        keys[RECORD_KEYS + i] = bufs[i].request_key;
    }
    for (size_t i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    redisReply *r = rstore_eval(s->rs, s->script_record, (int)nkeys, (int)nargs, argv, lens);
    free(argv), free(lens), free(bufs);
    int rc = -1;
    if (reply_ok(s, r, "record verdict", err, errlen)) {
        rc = record_reply(r, n, out, queue_length);
        if (rc != 0) snprintf(err, errlen, "record verdict: unexpected reply from the audit store");
    }
    freeReplyObject(r);
    return rc;
}

size_t audit_store_record_batch(audit_store *s, const audit_entry *e, const char *const *queue_ids,
                                size_t n, audit_outcome *out, long long *queue_length, char *err,
                                size_t errlen) {
    long long len = -1;
    size_t done = 0;
    while (done < n) {
        size_t k = n - done < RECORD_CHUNK ? n - done : RECORD_CHUNK;
        if (record_chunk(s, e + done, queue_ids ? queue_ids + done : NULL, k, out + done, &len,
                         err, errlen) != 0)
            break;
        done += k;
    }
    if (queue_length) *queue_length = len;
    return done;
}

int audit_store_record(audit_store *s, const audit_entry *e, const char *queue_id,
                       audit_outcome *out, char *err, size_t errlen) {
    return audit_store_record_batch(s, e, queue_id ? &queue_id : NULL, 1, out, NULL, err, errlen) == 1
               ? 0 : -1;
}

/* Field/value pairs stored per queued record (besides request_id). */
enum { QUEUE_PAIRS = 11 };

/* Formats one record's ARGV (request_id + QUEUE_PAIRS pairs) into `buf`,
 * pointing argv[] into it. */
typedef struct queue_args {
    char group[16], serial[16], upgrade[2], second[16], received[24];
    char request_key[PA_RKEY_MAX];
    char machine[2 * AUDIT_MACHINE_ID_MAX + 1];
} queue_args;

static void queue_argv(const queued_record *q, queue_args *b, const char **argv) {
    snprintf(b->group, sizeof b->group, "%" PRIu32, q->group);
    snprintf(b->serial, sizeof b->serial, "%" PRIu32, q->serial);
    snprintf(b->upgrade, sizeof b->upgrade, "%d", q->upgrade ? 1 : 0);
    snprintf(b->second, sizeof b->second, "%" PRIu32, q->security_second);
    snprintf(b->received, sizeof b->received, "%lld", (long long)q->received_at);
    pa_hex_encode(q->machine_id, q->machine_id_len, b->machine);
    pa_rkey_audit_request(b->request_key, sizeof b->request_key, q->request_id);
    const char *v[] = {
        q->request_id,
        "key_status", q->key_status, "group", b->group, "serial", b->serial,
        "upgrade", b->upgrade, "second", b->second, "machine", b->machine,
        "client", q->client_address, "origin", q->origin, "peer", q->peer,
        "sample_reason", q->sample_reason, "received_at", b->received,
    };
    memcpy(argv, v, sizeof v);
}

int audit_store_enqueue(audit_store *s, const queued_record *recs, size_t n,
                        uint32_t *accepted, uint32_t *duplicates, char *err, size_t errlen) {
    *accepted = *duplicates = 0;
    if (n == 0) return 0;
    const size_t per = 1 + 2 * QUEUE_PAIRS;
    size_t nkeys = ENQUEUE_KEYS + n, nargs = ENQUEUE_ARG_FIRST - 1 + n * per, argc = nkeys + nargs;
    const char **argv = malloc(argc * sizeof *argv);
    size_t *lens = malloc(argc * sizeof *lens);
    queue_args *bufs = malloc(n * sizeof *bufs);
    if (!argv || !lens || !bufs) {
        free(argv), free(lens), free(bufs);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char pairs[8];
    snprintf(pairs, sizeof pairs, "%d", QUEUE_PAIRS);
    const char **args = argv + nkeys;
    argv[ENQUEUE_KEY_QUEUE - 1] = PA_RKEY_AUDIT_QUEUE;
    args[ENQUEUE_ARG_PAIRS - 1] = pairs;
    args[ENQUEUE_ARG_RETENTION - 1] = s->retention;
    for (size_t i = 0; i < n; i++) {
        queue_argv(&recs[i], &bufs[i], args + ENQUEUE_ARG_FIRST - 1 + i * per);
        argv[ENQUEUE_KEYS + i] = bufs[i].request_key;
    }
    for (size_t i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    redisReply *r = rstore_eval(s->rs, s->script_enqueue, (int)nkeys, (int)nargs, argv, lens);
    free(argv), free(lens), free(bufs);
    int rc = -1;
    if (reply_ok(s, r, "enqueue", err, errlen)) {
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
            *accepted = (uint32_t)r->element[0]->integer;
            *duplicates = (uint32_t)r->element[1]->integer;
            rc = 0;
        } else {
            snprintf(err, errlen, "enqueue: unexpected reply from the audit store");
        }
    }
    freeReplyObject(r);
    return rc;
}

int audit_store_queue_prepare(audit_store *s, char *err, size_t errlen) {
    redisReply *r = rstore_command(s->rs, "XGROUP CREATE %s %s 0 MKSTREAM", PA_RKEY_AUDIT_QUEUE, PA_AUDIT_QUEUE_GROUP);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) == 0) {
        freeReplyObject(r);
        return 0;
    }
    bool ok = reply_ok(s, r, "create queue group", err, errlen);
    freeReplyObject(r);
    return ok ? 0 : -1;
}

/* Copies a reply string into a bounded buffer; false if it does not fit. */
static bool copy_str(char *dst, size_t cap, const redisReply *v) {
    if (!v || v->type != REDIS_REPLY_STRING || v->len >= cap) return false;
    memcpy(dst, v->str, v->len);
    dst[v->len] = '\0';
    return true;
}

static bool parse_u64(const redisReply *v, uint64_t max, uint64_t *out) {
    if (!v || v->type != REDIS_REPLY_STRING || v->len == 0 || v->len > 20) return false;
    char buf[24], *end;
    memcpy(buf, v->str, v->len);
    buf[v->len] = '\0';
    errno = 0;
    unsigned long long x = strtoull(buf, &end, 10);
    if (*end || buf[0] < '0' || buf[0] > '9' || errno || x > max) return false;
    *out = x;
    return true;
}

static const redisReply *field(const redisReply *fields, const char *name) {
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        if (k->type == REDIS_REPLY_STRING && strlen(name) == k->len &&
            memcmp(k->str, name, k->len) == 0)
            return fields->element[i + 1];
    }
    return NULL;
}

/* Parses one stream entry [id, [f, v, ...]] into `q`; false if malformed. */
static bool parse_entry(const redisReply *fields, queued_record *q) {
    uint64_t group, serial, upgrade, second, received;
    const redisReply *m = field(fields, "machine");
    if (!copy_str(q->request_id, sizeof q->request_id, field(fields, "request_id")) ||
        !copy_str(q->key_status, sizeof q->key_status, field(fields, "key_status")) ||
        !parse_u64(field(fields, "group"), UINT32_MAX, &group) ||
        !parse_u64(field(fields, "serial"), UINT32_MAX, &serial) ||
        !parse_u64(field(fields, "upgrade"), 1, &upgrade) ||
        !parse_u64(field(fields, "second"), UINT32_MAX, &second) ||
        !parse_u64(field(fields, "received_at"), INT64_MAX, &received) ||
        !copy_str(q->client_address, sizeof q->client_address, field(fields, "client")) ||
        !copy_str(q->origin, sizeof q->origin, field(fields, "origin")) ||
        !copy_str(q->peer, sizeof q->peer, field(fields, "peer")) ||
        !copy_str(q->sample_reason, sizeof q->sample_reason, field(fields, "sample_reason")) ||
        !m || m->type != REDIS_REPLY_STRING)
        return false;
    long len = pa_hex_decode(m->str, m->len, q->machine_id, sizeof q->machine_id);
    if (len < 0) return false;
    q->machine_id_len = (size_t)len;
    q->group = (uint32_t)group;
    q->serial = (uint32_t)serial;
    q->upgrade = upgrade == 1;
    q->security_second = (uint32_t)second;
    q->received_at = (int64_t)received;
    return true;
}

static void drop_entry(audit_store *s, const char *id, const char *why) {
    log_error("audit.queue.drop", LOG_S("entry", id), LOG_S("reason", why), LOG_END);
    redisReply *r = rstore_command(s->rs, "XACK %s %s %s", PA_RKEY_AUDIT_QUEUE, PA_AUDIT_QUEUE_GROUP, id);
    freeReplyObject(r);
    r = rstore_command(s->rs, "XDEL %s %s", PA_RKEY_AUDIT_QUEUE, id);
    freeReplyObject(r);
}

/* Parses an array of entries into out[]; returns how many were usable. */
static size_t parse_entries(audit_store *s, const redisReply *entries, queued_record *out,
                            size_t max) {
    size_t n = 0;
    for (size_t i = 0; i < entries->elements && n < max; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        char id[48];
        if (!copy_str(id, sizeof id, e->element[0])) continue;
        const redisReply *fields = e->element[1];
        if (fields->type != REDIS_REPLY_ARRAY) {  /* deleted while pending */
            drop_entry(s, id, "entry deleted while pending");
            continue;
        }
        memset(&out[n], 0, sizeof out[n]);
        if (!parse_entry(fields, &out[n])) {
            drop_entry(s, id, "malformed queue entry");
            continue;
        }
        snprintf(out[n].queue_id, sizeof out[n].queue_id, "%s", id);
        n++;
    }
    return n;
}

/* XREADGROUP reply: [[stream, entries]] or nil. */
static const redisReply *stream_entries(const redisReply *r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) return NULL;
    const redisReply *st = r->element[0];
    if (st->type != REDIS_REPLY_ARRAY || st->elements != 2) return NULL;
    return st->element[1]->type == REDIS_REPLY_ARRAY ? st->element[1] : NULL;
}

static int read_group(audit_store *s, const char *consumer, const char *from, int block_ms,
                      queued_record *out, size_t max, char *err, size_t errlen) {
    redisReply *r = block_ms > 0
                        ? rstore_command(s->rs, "XREADGROUP GROUP %s %s COUNT %d BLOCK %d STREAMS %s %s",
                                         PA_AUDIT_QUEUE_GROUP, consumer, (int)max, block_ms, PA_RKEY_AUDIT_QUEUE, from)
                        : rstore_command(s->rs, "XREADGROUP GROUP %s %s COUNT %d STREAMS %s %s", PA_AUDIT_QUEUE_GROUP,
                                         consumer, (int)max, PA_RKEY_AUDIT_QUEUE, from);
    if (!reply_ok(s, r, "read queue", err, errlen)) {
        freeReplyObject(r);
        return -1;
    }
    const redisReply *entries = stream_entries(r);
    size_t n = entries ? parse_entries(s, entries, out, max) : 0;
    freeReplyObject(r);
    return (int)n;
}

static int claim_idle(audit_store *s, const char *consumer, int idle_ms, queued_record *out,
                      size_t max, char *err, size_t errlen) {
    redisReply *r = rstore_command(s->rs, "XAUTOCLAIM %s %s %s %d 0-0 COUNT %d", PA_RKEY_AUDIT_QUEUE,
                                   PA_AUDIT_QUEUE_GROUP, consumer, idle_ms, (int)max);
    if (!reply_ok(s, r, "claim idle entries", err, errlen)) {
        freeReplyObject(r);
        return -1;
    }
    size_t n = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && r->element[1]->type == REDIS_REPLY_ARRAY)
        n = parse_entries(s, r->element[1], out, max);
    freeReplyObject(r);
    return (int)n;
}

int audit_store_queue_read(audit_store *s, const char *consumer, queued_record *out, size_t max,
                           int block_ms, bool *own_pending, int claim_idle_ms, char *err,
                           size_t errlen) {
    int n = 0;
    if (*own_pending && (n = read_group(s, consumer, "0", 0, out, max, err, errlen)) == 0)
        *own_pending = false;
    if (n == 0 && claim_idle_ms > 0) n = claim_idle(s, consumer, claim_idle_ms, out, max, err, errlen);
    if (n != 0) return n;
    return read_group(s, consumer, ">", block_ms, out, max, err, errlen);
}

long long audit_store_queue_length(audit_store *s) {
    redisReply *r = rstore_command(s->rs, "XLEN %s", PA_RKEY_AUDIT_QUEUE);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

/* A log id ("" or up to AUDIT_LOG_ID_LEN characters) from a reply string. */
static bool copy_id(char out[AUDIT_LOG_ID_LEN + 1], const redisReply *v) {
    out[0] = '\0';
    return !v || copy_str(out, AUDIT_LOG_ID_LEN + 1, v);
}

static bool parse_revocation(const redisReply *e, revocation_entry *out) {
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
        return false;
    const redisReply *f = e->element[1];
    uint64_t group, serial, at;
    memset(out, 0, sizeof *out);
    /* Entries are added as "SEQ-0" (RECORD_LUA); any other ID is not ours. */
    const char *id = e->element[0]->str;
    char *end;
    errno = 0;
    out->sequence = strtoull(id, &end, 10);
    if (id[0] < '0' || id[0] > '9' || errno || strcmp(end, "-0") != 0) return false;
    if (!parse_u64(field(f, "group"), UINT32_MAX, &group) || !parse_u64(field(f, "serial"), UINT32_MAX, &serial) ||
        !parse_u64(field(f, "revoked_at"), INT64_MAX, &at) || out->sequence == 0 ||
        !copy_id(out->entry_id, field(f, "entry_id")))
        return false;
    const redisReply *reason = field(f, "reason");
    if (reason && reason->type == REDIS_REPLY_STRING)
        snprintf(out->reason, sizeof out->reason, "%.*s", (int)reason->len, reason->str);
    out->group = (uint32_t)group;
    out->serial = (uint32_t)serial;
    out->revoked_at = (int64_t)at;
    return true;
}

int audit_store_list_revocations(audit_store *s, uint64_t after, uint32_t limit, revocation_page *out, char *err,
                                 size_t errlen) {
    char start[32], count[16], after_s[24];
    snprintf(start, sizeof start, "%" PRIu64 "-0", after + 1);
    snprintf(count, sizeof count, "%" PRIu32, limit ? limit : 1);
    snprintf(after_s, sizeof after_s, "%" PRIu64, after);
    const char *argv[LIST_KEYS + LIST_ARGS];
    argv[LIST_KEY_REVOCATIONS - 1] = PA_RKEY_AUDIT_REVOCATIONS;
    argv[LIST_KEY_SEQ - 1] = PA_RKEY_AUDIT_REVOCATION_SEQ;
    argv[LIST_KEY_EPOCH - 1] = PA_RKEY_AUDIT_REVOCATION_EPOCH;
    argv[LIST_KEYS + LIST_ARG_START - 1] = start;
    argv[LIST_KEYS + LIST_ARG_COUNT - 1] = count;
    argv[LIST_KEYS + LIST_ARG_AFTER - 1] = after_s;
    size_t lens[LIST_KEYS + LIST_ARGS];
    for (size_t i = 0; i < LIST_KEYS + LIST_ARGS; i++) lens[i] = strlen(argv[i]);
    memset(out, 0, sizeof *out);
    redisReply *r = rstore_eval(s->rs, s->script_list, LIST_KEYS, LIST_ARGS, argv, lens);
    if (!reply_ok(s, r, "list revocations", err, errlen)) {
        freeReplyObject(r);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5 || r->element[2]->type != REDIS_REPLY_INTEGER ||
        r->element[4]->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "list revocations: unexpected reply from the audit store");
        freeReplyObject(r);
        return -1;
    }
    const redisReply *entries = r->element[4];
    if (!parse_u64(r->element[0], UINT64_MAX, &out->last_sequence)) {
        snprintf(err, errlen, "list revocations: the revocation sequence in the audit store is not a number");
        freeReplyObject(r);
        return -1;
    }
    if (!copy_id(out->epoch, r->element[1]) || !copy_id(out->after_entry_id, r->element[3])) {
        snprintf(err, errlen, "list revocations: the log's epoch or an entry_id in the audit store is malformed");
        freeReplyObject(r);
        return -1;
    }
    out->after_found = r->element[2]->integer == 1;
    if (entries->elements > 0) {
        out->entries = calloc(entries->elements, sizeof *out->entries);
        if (!out->entries) {
            snprintf(err, errlen, "out of memory");
            freeReplyObject(r);
            return -1;
        }
    }
    for (size_t i = 0; i < entries->elements; i++) {
        if (parse_revocation(entries->element[i], &out->entries[out->n])) out->n++;
        else
            log_error("audit.revocations.malformed", LOG_U("index", i), LOG_END);
    }
    freeReplyObject(r);
    return 0;
}
