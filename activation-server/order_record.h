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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORDER_SERIAL_LEN 8  /* decimal digits of a service serial number */
#define ORDER_GROUPS_MAX 16 /* volume groups one order may cover */
#define ORDER_LIST_MAX 16   /* OS versions, architectures, features */
#define ORDER_TEXT_MAX 64   /* product, edition, one list entry */
#define ORDER_CUSTOMER_MAX 128
#define ORDER_KEY_HASH_LEN 16 /* an accepted key's salted hash */
#define ORDER_KEY_SALT_LEN 16

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

/* Machine facts an order may collect (Order.collect_facts), as bits. */
enum {
    ORDER_FACT_HOSTNAME = 1 << 0,
    ORDER_FACT_IP = 1 << 1,
    ORDER_FACT_MAC = 1 << 2,
    ORDER_FACT_HOST_SERIAL = 1 << 3,
    ORDER_FACT_OS = 1 << 4,
    ORDER_FACT_ARCH = 1 << 5,
};

typedef struct order_record {
    char serial[ORDER_SERIAL_LEN + 1]; /* the service serial number */
    uint32_t revision;                 /* higher replaces lower, keeping the machines */
    uint64_t version;                  /* bumped by every import or retire; caches compare it */
    bool retired;                      /* the operator retired it: refuses, keeps its table */
    bool on_premises;                  /* delegated: licenses signed by this server's key */
    char customer[ORDER_CUSTOMER_MAX];
    char product[ORDER_TEXT_MAX];
    char edition[ORDER_TEXT_MAX];
    uint32_t groups[ORDER_GROUPS_MAX]; /* the volume groups it covers */
    size_t n_groups;
    char features[ORDER_LIST_MAX][ORDER_TEXT_MAX]; /* granted by its licenses */
    size_t n_features;
    seat_mode mode;
    uint32_t seats;      /* 0 only in SEAT_MODE_UNLIMITED */
    int64_t valid_from;  /* unix seconds */
    int64_t valid_until; /* 0: no end date */
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
    uint32_t threshold;                               /* KMS minimum count; 0: none */
    uint32_t seat_warning;                            /* warn below this many free seats; 0: never */
    bool auto_activation;                             /* false: designated devices only */
    bool deactivation_approval;                       /* deactivations wait for the operator */
    char os_versions[ORDER_LIST_MAX][ORDER_TEXT_MAX]; /* empty list: any */
    size_t n_os_versions;
    char architectures[ORDER_LIST_MAX][ORDER_TEXT_MAX];
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

/* "permanent", "timed-reclaim", "concurrent", "unlimited", "vendor"; the
 * same names on the command line, in VolumeStatus.mode and License.seat_mode. */
const char *seat_mode_name(seat_mode m);
int seat_mode_parse(const char *s); /* 0 if unknown */

/* Frees what the record owns (order_bytes, key_hashes) and zeroes it. */
void order_record_clear(order_record *o);

#endif
