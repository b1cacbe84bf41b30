/* audit_store.h -- the audit server's data in Redis B: the audit trail, the
 * revocation log, and the queue of submitted records.
 *
 * Every change that must be all-or-nothing is one Lua script, so a crash or
 * a lost connection can never leave half of it behind:
 *   - recording a verdict appends to the trail, and for a forged key also
 *     revokes it (INCR of the sequence + XADD to the log + index), marks the
 *     request done and acknowledges its queue entry -- one script, which
 *     takes a whole batch of queue entries at once (each record's writes
 *     are still complete before the next record's begin);
 *   - enqueueing a Submit batch marks each request_id seen (SET NX EX) and
 *     adds only the new ones to the queue -- one script, so a duplicate is
 *     counted once whatever the interleaving.
 *
 * Key names (ACL user `audit` on Redis B must be allowed these and
 * {g:*}:audit / groups for the second secrets):
 *   audit:trail            stream  every verdict: time, group, serial, machine,
 *                                  verdict, reason, source, request_id, ...
 *                                  (never the full key)
 *   audit:revocations      stream  the revocation log; entry ID "<seq>-0", fields
 *                                  group, serial, reason, revoked_at and a random
 *                                  entry_id
 *   audit:revocation_seq   string  last sequence handed out (INCR)
 *   audit:revocation_epoch string  the log's identity (random, 32 hex), made
 *                                  with its first entry and replaced when the
 *                                  log starts again from empty
 *   audit:revoked          hash    "group:serial" -> sequence (revoke once)
 *   audit:queue            stream  submitted records waiting to be audited;
 *                                  consumer group "auditors"
 *   audit:request:ID       string  "queued" | "done" per request_id
 *                                  (idempotency); expires after the
 *                                  retention (default 7 days), so the
 *                                  known ids never grow without bound
 *
 * One audit_store per thread: it owns a private rstore connection. */
#ifndef PA_AUDIT_STORE_H
#define PA_AUDIT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis_keys.h"
#include "redis_store.h"

#define AUDIT_REQUEST_ID_MAX 64    /* longest request_id accepted */
#define AUDIT_MACHINE_ID_MAX 64    /* longest machine_id accepted (bytes) */
#define AUDIT_TEXT_MAX 128         /* longest client/origin/reason text kept */
#define AUDIT_REQUEST_RETENTION_S (7 * 86400) /* default lifetime of a request id's key */
#define AUDIT_LOG_ID_LEN 32                   /* epoch and entry_id: 16 random bytes, lowercase hex */

typedef struct audit_store audit_store;

/* One verdict for the trail (and the revocation log when `revoke`). */
typedef struct audit_entry {
    const char *request_id;       /* "" when the caller gave none */
    const char *source;           /* "verify" | "queue" | "manual": which path judged it */
    uint32_t group;               /* the key, as group + serial (never the full key) */
    uint32_t serial;
    const char *verdict;          /* "genuine" | "forged" | "malformed" | "revoked" */
    const char *reason;           /* human-readable, no secret */
    const uint8_t *machine_id;    /* stored as hex; may be NULL */
    size_t machine_id_len;
    const char *client_address;   /* as the activation server saw it */
    const char *origin;           /* which activation server sent it */
    const char *peer;             /* CN of the mTLS client that delivered it */
    const char *sample_reason;    /* why the activation server sampled it */
    int64_t received_at;          /* when the activation server received it */
    bool revoke;                  /* also append (group, serial) to the revocation log */
    const char *revoke_reason;    /* text kept in the log entry */
} audit_entry;

/* What recording did. */
typedef struct audit_outcome {
    bool recorded;                /* false: the request was already done (redelivery) */
    uint64_t sequence;            /* revocation sequence of the key, 0 if not revoked */
    bool newly_revoked;           /* true when this call appended to the log */
} audit_outcome;

/* A submitted record as it waits in the queue: the key already decoded by
 * the Submit handler, so the full key text is never stored. */
typedef struct queued_record {
    char request_id[AUDIT_REQUEST_ID_MAX + 1]; /* idempotency key */
    char key_status[24];          /* pk_status_name of decoding; "ok" when usable */
    uint32_t group;               /* decoded fields, valid when key_status is "ok" */
    uint32_t serial;
    bool upgrade;
    uint32_t security_second;     /* the value under audit */
    uint8_t machine_id[AUDIT_MACHINE_ID_MAX]; /* as sent */
    size_t machine_id_len;
    char client_address[AUDIT_TEXT_MAX + 1];
    char origin[AUDIT_TEXT_MAX + 1];
    char peer[AUDIT_TEXT_MAX + 1];
    char sample_reason[AUDIT_TEXT_MAX + 1];
    int64_t received_at;
    char queue_id[48];            /* stream entry ID once read from the queue */
} queued_record;

/* One entry of the revocation log. */
typedef struct revocation_entry {
    uint64_t sequence;            /* strictly increasing from 1 */
    uint32_t group;
    uint32_t serial;
    int64_t revoked_at;           /* unix seconds */
    char reason[AUDIT_TEXT_MAX + 1];
    char entry_id[AUDIT_LOG_ID_LEN + 1]; /* "" for entries written before entry ids existed */
} revocation_entry;

/* A page of the revocation log as ListRevocations answers it. */
typedef struct revocation_page {
    revocation_entry *entries; /* malloc'd (free it), oldest first */
    size_t n;
    uint64_t last_sequence;                    /* highest sequence handed out */
    char epoch[AUDIT_LOG_ID_LEN + 1];          /* "" while the log has never had an epoch */
    bool after_found;                          /* the log holds an entry at the `after` asked for (> 0) */
    char after_entry_id[AUDIT_LOG_ID_LEN + 1]; /* that entry's entry_id */
} revocation_page;

/* Opens a store on `cfg` (lazy: connects on first use). NULL + err on failure. */
audit_store *audit_store_open(const rstore_config *cfg, bool lazy, char *err, size_t errlen);
void audit_store_close(audit_store *s);
rstore *audit_store_rstore(audit_store *s);
/* How long a request id is remembered (Submit idempotency), in seconds;
 * 0 or less: AUDIT_REQUEST_RETENTION_S. A record delivered again after that
 * is audited again (harmless: the trail shows it twice, a key is revoked
 * only once). */
void audit_store_set_retention(audit_store *s, int64_t seconds);

/* Records a verdict atomically (see the top of this file). When `queue_id`
 * is set, the queue entry is acknowledged and deleted in the same script,
 * and a request already marked done is not recorded again. Returns 0, or
 * -1 with err (store down or script error: nothing was written). */
int audit_store_record(audit_store *s, const audit_entry *e, const char *queue_id,
                       audit_outcome *out, char *err, size_t errlen);

/* Records n verdicts in order, with the outcome of recording them one by
 * one, but in one script call per RECORD_CHUNK (128) records: the queue
 * entries of a call (queue_ids[i], or none when queue_ids is NULL) are
 * acknowledged and deleted together. Returns how many records were recorded
 * (their outcomes are in out[]); fewer than n means err says why and the
 * rest were not touched. *queue_length (if not NULL) gets the queue's XLEN
 * after the last call that acknowledged entries, else -1. */
size_t audit_store_record_batch(audit_store *s, const audit_entry *e, const char *const *queue_ids,
                                size_t n, audit_outcome *out, long long *queue_length, char *err,
                                size_t errlen);

/* Stores a Submit batch: new request_ids go to the queue, known ones are
 * counted as duplicates. Returns 0 once every record is in Redis, or -1. */
int audit_store_enqueue(audit_store *s, const queued_record *recs, size_t n,
                        uint32_t *accepted, uint32_t *duplicates, char *err, size_t errlen);

/* Creates the queue's consumer group if missing. */
int audit_store_queue_prepare(audit_store *s, char *err, size_t errlen);

/* Reads up to `max` queue entries for `consumer`: first those already
 * delivered to it and not acknowledged (a previous run's, or a batch that
 * failed) when *own_pending says there can be some (cleared once none are
 * left), then entries idle longer than `claim_idle_ms` at other consumers
 * (skipped when claim_idle_ms is 0), then new ones, blocking up to
 * block_ms. Returns the count (0 when none), -1 on error. Entries that
 * cannot be parsed are acknowledged and logged. */
int audit_store_queue_read(audit_store *s, const char *consumer, queued_record *out, size_t max,
                           int block_ms, bool *own_pending, int claim_idle_ms, char *err,
                           size_t errlen);

/* XLEN of the queue, or -1. */
long long audit_store_queue_length(audit_store *s);

/* Revocation log after `after`, at most `limit` entries (oldest first),
 * with the highest sequence, the epoch and the check of the entry at
 * `after`, all read at one instant. Returns 0 or -1. */
int audit_store_list_revocations(audit_store *s, uint64_t after, uint32_t limit, revocation_page *out, char *err,
                                 size_t errlen);

#endif
