/* order_record.h -- a volume order as the activation server holds it
 * (docs/volume.md).
 *
 * The vendor signs a volume.v1.Order; `order import` verifies it and stores
 * it in Redis A as the hash {o:SERIAL}:order: the signed bytes (so answers
 * can carry them to installers, and the cache can verify them again) plus
 * the terms volume.lua reads, flattened into the ORDER_F_* fields below.
 * Every activation server builds an order_record per order from that hash
 * (order_cache.h); the terms are the Order's with the documented defaults
 * applied, so no caller ever sees a 0 that means "default". */
#ifndef PA_ACTIVATION_ORDER_RECORD_H
#define PA_ACTIVATION_ORDER_RECORD_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The limits (ORDER_SERIAL_LEN, ORDER_GROUPS_MAX, ORDER_LIST_MAX,
 * ORDER_TEXT_MAX, ORDER_CUSTOMER_MAX, ORDER_KEY_HASH_LEN,
 * ORDER_KEY_SALT_LEN), the ORDER_FACT_* bits and the term defaults are the
 * signed order's (keystore/order_file.h): defined once, there. */
#include "order_file.h"
#include "redis_keys.h"

/* The numbers are volume.v1.SeatMode's. */
typedef enum seat_mode {
    SEAT_MODE_PERMANENT = 1,
    SEAT_MODE_TIMED_RECLAIM = 2,
    SEAT_MODE_CONCURRENT = 3,
    SEAT_MODE_UNLIMITED = 4,
    SEAT_MODE_VENDOR = 5,
} seat_mode;

/* The numbers are volume.v1.AfterEnd's. */
typedef enum after_end {
    AFTER_END_STOP = 1,
    AFTER_END_CONTINUE_COUNTED = 2,
} after_end;

/* Room for a text of ORDER_TEXT_MAX / ORDER_CUSTOMER_MAX characters of up
 * to 4 UTF-8 bytes each, and its NUL. */
#define ORDER_TEXT_BYTES (4 * ORDER_TEXT_MAX + 1)
#define ORDER_CUSTOMER_BYTES (4 * ORDER_CUSTOMER_MAX + 1)

typedef struct order_record {
    char serial[ORDER_SERIAL_LEN + 1]; /* the service serial number */
    uint32_t revision;                 /* higher replaces lower, keeping the machines */
    uint64_t version;                  /* bumped by every import or retire; caches compare it */
    bool retired;                      /* the operator retired it: refuses, keeps its table */
    uint32_t machine_match;            /* the operator's component matching: K 1..16, 0 exact */
    bool on_premises;                  /* delegated: licenses signed by this server's key */
    char customer[ORDER_CUSTOMER_BYTES];
    char vendor[ORDER_TEXT_BYTES];
    char product[ORDER_TEXT_BYTES];
    char edition[ORDER_TEXT_BYTES];
    uint32_t groups[ORDER_GROUPS_MAX]; /* the volume groups it covers */
    size_t n_groups;
    char features[ORDER_LIST_MAX][ORDER_TEXT_BYTES]; /* granted by its licenses */
    size_t n_features;
    seat_mode mode;
    uint32_t seats;      /* 0 only in SEAT_MODE_UNLIMITED */
    int64_t valid_from;  /* unix seconds */
    int64_t valid_until; /* 0: no end date */
    int64_t issued_at;   /* when the vendor signed it */
    int64_t imported_at; /* when `order import` stored this revision */
    after_end after_end; /* unlimited mode, after valid_until */
    /* Terms with defaults applied (docs/volume.md, "The order"). */
    uint32_t renew_seconds;
    uint32_t reclaim_seconds;
    uint32_t heartbeat_seconds;
    uint32_t missed_heartbeats;
    uint32_t license_seconds;
    uint32_t machine_validity_seconds;
    uint32_t retention_seconds; /* machine table window */
    uint32_t pending_retry_seconds;
    uint32_t threshold;                                 /* KMS minimum count; 0: none */
    uint32_t seat_warning;                              /* warn below this many free seats; 0: never */
    bool auto_activation;                               /* false: designated devices only */
    bool deactivation_approval;                         /* deactivations wait for the operator */
    char os_versions[ORDER_LIST_MAX][ORDER_TEXT_BYTES]; /* empty list: any */
    size_t n_os_versions;
    char architectures[ORDER_LIST_MAX][ORDER_TEXT_BYTES];
    size_t n_architectures;
    unsigned collect_facts; /* ORDER_FACT_* bits */
    /* The signed order, as answers carry it to installers. */
    uint8_t *order_bytes; /* SignedOrder.order (malloc'd) */
    size_t order_len;
    uint8_t order_signature[64]; /* SignedOrder.signature */
    char order_key_id[17];       /* SignedOrder.key_id */
    /* On-premises: the accepted keys, sorted for bsearch. */
    uint8_t key_salt[ORDER_KEY_SALT_LEN];
    uint8_t (*key_hashes)[ORDER_KEY_HASH_LEN]; /* malloc'd, n_key_hashes entries */
    size_t n_key_hashes;
    uint8_t delegated_key[32]; /* on-premises: this server's public key */
    /* Redis key names of this order, built once (common/redis_keys.h). */
    char key_order[PA_RKEY_MAX];        /* {o:S}:order */
    char key_machines[PA_RKEY_MAX];     /* {o:S}:m */
    char key_facts[PA_RKEY_MAX];        /* {o:S}:facts */
    char key_counts[PA_RKEY_MAX];       /* {o:S}:n */
    char key_wheel[PA_RKEY_MAX];        /* {o:S}:wheel */
    char key_wheel_prefix[PA_RKEY_MAX]; /* {o:S}:w: (volume.lua appends the bucket name) */
    char key_designated[PA_RKEY_MAX];   /* {o:S}:designated */
    char key_usage[PA_RKEY_MAX];        /* {o:S}:usage */
} order_record;

/* Field names of {o:SERIAL}:order. The terms are decimal text; `signed` is
 * the SignedOrder bytes without `keys` (those are in {o:SERIAL}:keys). */
#define ORDER_F_SIGNED "signed"
#define ORDER_F_REVISION "revision"
#define ORDER_F_VERSION "version"
#define ORDER_F_RETIRED "retired" /* "0" | "1" */
#define ORDER_F_MODE "mode"       /* seat_mode number */
#define ORDER_F_SEATS "seats"
#define ORDER_F_VALID_FROM "valid_from"
#define ORDER_F_VALID_UNTIL "valid_until"
#define ORDER_F_AFTER_END "after_end" /* after_end number */
#define ORDER_F_RENEW "renew_seconds"
#define ORDER_F_RECLAIM "reclaim_seconds"
#define ORDER_F_HEARTBEAT "heartbeat_seconds"
#define ORDER_F_MISSED "missed_heartbeats"
#define ORDER_F_LICENSE "license_seconds"
#define ORDER_F_MACHINE_VALIDITY "machine_validity_seconds"
#define ORDER_F_RETENTION "retention_seconds"
#define ORDER_F_PENDING_RETRY "pending_retry_seconds"
#define ORDER_F_THRESHOLD "threshold"
#define ORDER_F_SEAT_WARNING "seat_warning"
#define ORDER_F_AUTO "auto_activation"           /* "0" | "1" */
#define ORDER_F_APPROVAL "deactivation_approval" /* "0" | "1" */
#define ORDER_F_COLLECT "collect_facts"          /* ORDER_FACT_* bits */
#define ORDER_F_IMPORTED "imported_at"           /* unix seconds */
/* Set by the operator (order set-match), not by import, so a new revision
 * keeps it: how a new machine digest finds its machine's record
 * (docs/machines.md, "Matching a machine to a place"). "0" or missing: exact. */
#define ORDER_F_MACHINE_MATCH "machine_match" /* "0".."ORDER_MATCH_MAX" */
#define ORDER_MATCH_MAX 16                    /* K at most: ActivateRequest.components holds 16 */
/* Added with order import (not read by volume.lua): */
#define ORDER_F_GROUPS "groups"           /* comma-separated group IDs: import's conflict check */
#define ORDER_F_ON_PREMISES "on_premises" /* "0" | "1" */
#define ORDER_F_KEY_SALT "key_salt"       /* on-premises: OrderKeys.salt, 16 raw bytes */
#define ORDER_F_KEY_COUNT "key_count"     /* on-premises: members {o:S}:keys must have */

/* "permanent", "timed-reclaim", "concurrent", "unlimited", "vendor"; the
 * same names on the command line, in VolumeStatus.mode and License.seat_mode. */
const char *seat_mode_name(seat_mode m);
int seat_mode_parse(const char *s); /* 0 if unknown */

/* Frees what the record owns (order_bytes, key_hashes) and zeroes it. */
void order_record_clear(order_record *o);

/* Fills `r` from a decoded, validated order (order_file.h): every term with
 * its default applied, the signed bytes copied, the key hashes sorted, the
 * key names built. revision and the store's own fields (version, retired,
 * imported_at) are left for the caller. 0, or -1 (out of memory). */
int order_record_from_file(order_record *r, const order_file *f);

/* Fills `r` from the replies of HGETALL {o:S}:order and SMEMBERS {o:S}:keys
 * (keys may be NULL for a vendor-hosted order): `signed` is decoded again
 * (not verified: import did that), then version, retired and imported_at
 * come from the hash. 1 when the hash is empty (no such order), 0, or -1
 * with the reason in err. */
int order_record_from_hash(order_record *r, const char *serial, const redisReply *hash, const redisReply *keys,
                           char *err, size_t errlen);

/* The hash fields import writes for `r` (all but version, which the import
 * script sets): *n name/value pairs into names/values/lens, which must hold
 * ORDER_RECORD_FIELDS entries each; number text goes into `nums`
 * (ORDER_RECORD_FIELDS entries). The `signed` value is `signed_bytes`. */
#define ORDER_RECORD_FIELDS 32
#define ORDER_RECORD_NUM (8 * ORDER_GROUPS_MAX + 8) /* the longest value text: the group list */
size_t order_record_fields(const order_record *r, const uint8_t *signed_bytes, size_t signed_len, const char **names,
                           const char **values, size_t *lens, char (*nums)[ORDER_RECORD_NUM]);

#endif
