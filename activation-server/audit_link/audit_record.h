/* audit_record.h -- one sampled activation request, as the activation side
 * hands it to the audit server.
 *
 * It travels three ways and this file is the one place that knows all three
 * shapes, so they cannot drift apart:
 *   1. as arguments of the policy script, which writes it to the Redis A
 *      outbox in the same round trip as the activation (offline audit);
 *   2. as an `audit:outbox` stream entry (fields in docs/data-model.md:
 *      request_id, group, serial, upgrade, security_first, security_second,
 *      machine_id (32 raw bytes), client_address, received_at, sample_reason);
 *   3. as an audit.v1.AuditRecord, whose key text is re-encoded here with
 *      pk_encode -- the full key is never stored, only its fields.
 * Building one costs no allocation: the hot path fills a stack struct. */
#ifndef PA_AUDIT_RECORD_H
#define PA_AUDIT_RECORD_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/v1/audit.pb-c.h"
#include "keycodec.h"

#define AUDIT_REQUEST_ID_LEN 32   /* lowercase hex characters */
#define AUDIT_MACHINE_ID_LEN 32   /* bytes */
#define AUDIT_ADDRESS_MAX 64      /* longest client address kept */
#define AUDIT_REASON_MAX 24       /* longest sample reason kept */
#define AUDIT_OUTBOX_FIELDS 10    /* field/value pairs of an outbox entry */
#define AUDIT_SCRIPT_ARGS 8       /* outbox arguments the policy script takes */

typedef struct audit_record {
    char request_id[AUDIT_REQUEST_ID_LEN + 1]; /* random; the audit server's idempotency key */
    pk_fields key;                /* the decoded key; re-encoded only when sent */
    uint8_t machine_id[AUDIT_MACHINE_ID_LEN];
    char client_address[AUDIT_ADDRESS_MAX + 1]; /* as the activation server saw it */
    int64_t received_at;          /* unix seconds */
    char sample_reason[AUDIT_REASON_MAX + 1];   /* "base-rate", "threat-group", ... */
} audit_record;

/* Fills `r` for a request now: a fresh request_id, received_at = now. The
 * strings are truncated to their buffers. Returns 0, or -1 if the random
 * generator failed. */
int audit_record_init(audit_record *r, const pk_fields *key, const uint8_t machine_id[AUDIT_MACHINE_ID_LEN],
                      const char *client_address, const char *sample_reason);

/* Formatted numbers and pointers for the two Redis shapes; lives on the
 * caller's stack next to the record it was made from. */
typedef struct audit_record_args {
    const char *argv[2 * AUDIT_OUTBOX_FIELDS]; /* field, value, field, value, ... or script args */
    size_t len[2 * AUDIT_OUTBOX_FIELDS];
    size_t n;                     /* used entries of argv/len */
    char group[12], serial[12], upgrade[2], first[24], second[12], received[24];
} audit_record_args;

/* The outbox entry as field/value pairs (argv for XADD after "*"). */
void audit_record_outbox_fields(const audit_record *r, audit_record_args *a);

/* The policy script's outbox arguments, in its order: request_id, group,
 * upgrade, security_first, security_second, client_address, received_at,
 * sample_reason (serial and machine_id are the script's own arguments). */
void audit_record_script_args(const audit_record *r, audit_record_args *a);

/* Parses an outbox entry's field list (the array after the entry ID).
 * Returns 0, or -1 naming the bad field in err. Refuses what the audit
 * server would refuse in a Submit (a request_id that is not 32 lowercase
 * hex, texts that are not printable ASCII), so the forwarder drops such an
 * entry instead of failing every batch it is in. */
int audit_record_from_outbox(const redisReply *fields, audit_record *r, char *err, size_t errlen);

/* Points `out` at the record's data for sending; `key_text` receives the
 * re-encoded key and must outlive `out`. Returns 0, or -1 if the key
 * fields are out of range. */
int audit_record_to_proto(const audit_record *r, const char *origin, char key_text[PK_TEXT_LEN + 1],
                          Audit__V1__AuditRecord *out);

#endif
