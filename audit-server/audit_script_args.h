/* audit_script_args.h -- the KEYS[] and ARGV[] positions of the audit
 * store's Lua scripts (the .lua files beside it), named once for C and Lua.
 *
 * The build prepends `local NAME = value` for every `#define NAME value`
 * line here to each script (cmake/embed_text.cmake), so audit_store.c fills
 * its argument list and the scripts read it by the same names. Positions
 * are Lua's, from 1: C puts KEYS[k] at keys[k - 1] and ARGV[a] at
 * args[a - 1]. Values must be plain integers. */
#ifndef PA_AUDIT_SCRIPT_ARGS_H
#define PA_AUDIT_SCRIPT_ARGS_H

/* ---- record_verdicts.lua: records a batch of verdicts ---- */
#define RECORD_KEY_TRAIL 1       /* PA_RKEY_AUDIT_TRAIL */
#define RECORD_KEY_REVOCATIONS 2 /* PA_RKEY_AUDIT_REVOCATIONS */
#define RECORD_KEY_SEQ 3         /* PA_RKEY_AUDIT_REVOCATION_SEQ */
#define RECORD_KEY_REVOKED 4     /* PA_RKEY_AUDIT_REVOKED */
#define RECORD_KEY_QUEUE 5       /* PA_RKEY_AUDIT_QUEUE */
#define RECORD_KEY_EPOCH 6       /* PA_RKEY_AUDIT_REVOCATION_EPOCH */
/* After the fixed keys: one PA_RKEY_AUDIT_REQUEST_FMT key per record, in
 * order (for a record without request_id, a name nothing writes). */
#define RECORD_KEYS 6
#define RECORD_ARG_NOW 1         /* unix seconds, for the trail and the log */
#define RECORD_ARG_QUEUE_GROUP 2 /* PA_AUDIT_QUEUE_GROUP, for XACK */
#define RECORD_ARG_RETENTION 3   /* seconds a request key is kept after "done" */
#define RECORD_ARG_EPOCH 4       /* a fresh random epoch, used if the log starts (again) */
#define RECORD_ARG_FIRST 5       /* where the first record's arguments start */
/* Each record's arguments, as offsets from where it starts: */
#define RECORD_REQUEST_ID 0 /* "" when the caller gave none */
#define RECORD_QUEUE_ID 1   /* queue entry to acknowledge, "" if none */
#define RECORD_GROUP 2
#define RECORD_SERIAL 3
#define RECORD_VERDICT 4
#define RECORD_REASON 5
#define RECORD_MACHINE 6 /* machine id, hex */
#define RECORD_CLIENT 7
#define RECORD_ORIGIN 8
#define RECORD_PEER 9
#define RECORD_SAMPLE_REASON 10
#define RECORD_RECEIVED_AT 11
#define RECORD_SOURCE 12
#define RECORD_REVOKE 13 /* "1": also revoke the key */
#define RECORD_REVOKE_REASON 14
#define RECORD_REVOKED_MEMBER 15 /* the key's field in PA_RKEY_AUDIT_REVOKED */
#define RECORD_ENTRY_ID 16       /* random id of the log entry, if one is appended */
#define RECORD_ARGS 17           /* arguments per record */

/* ---- enqueue.lua: stores a Submit batch ---- */
#define ENQUEUE_KEY_QUEUE 1 /* PA_RKEY_AUDIT_QUEUE */
/* After the fixed keys: one PA_RKEY_AUDIT_REQUEST_FMT key per record, in order. */
#define ENQUEUE_KEYS 1
#define ENQUEUE_ARG_PAIRS 1     /* field/value pairs per record */
#define ENQUEUE_ARG_RETENTION 2 /* seconds a request key is kept */
#define ENQUEUE_ARG_FIRST 3     /* first record: request_id, then its pairs */

/* ---- list_revocations.lua: a page of the revocation log ---- */
#define LIST_KEY_REVOCATIONS 1 /* PA_RKEY_AUDIT_REVOCATIONS */
#define LIST_KEY_SEQ 2         /* PA_RKEY_AUDIT_REVOCATION_SEQ */
#define LIST_KEY_EPOCH 3       /* PA_RKEY_AUDIT_REVOCATION_EPOCH */
#define LIST_KEYS 3
#define LIST_ARG_START 1 /* first entry ID to return */
#define LIST_ARG_COUNT 2 /* at most this many */
#define LIST_ARG_AFTER 3 /* the caller's last sequence, whose entry_id is returned; "0": none */
#define LIST_ARGS 3

#endif
