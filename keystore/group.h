/* group.h -- a product group: its verification record, its policy defaults,
 * and where both live in the two stores.
 *
 * A group owns two independent random secrets. The first goes to the
 * activation store (Redis A), the second to the audit store (Redis B), each
 * wrapped under that side's own KEK and written through that side's own
 * Redis ACL user. Nothing here ever holds a connection to both stores with
 * one user.
 *
 * Its Redis keys (common/redis_keys.h): {g:ID}:group on Redis A, the record
 * below + `secret` (wrapped first secret); {g:ID}:serial on Redis A, the
 * serial counter; {g:ID}:audit on Redis B, alg, created_at and `secret`
 * (wrapped second secret); the `groups` set of IDs on both.
 * Field names of {g:ID}:group are the GROUP_F_* strings below. */
#ifndef PA_GROUP_H
#define PA_GROUP_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>

#include "mac_registry.h"
#include "secret_wrap.h"

typedef enum group_channel {
    GROUP_CHANNEL_RETAIL = 1,
    GROUP_CHANNEL_OEM = 2,
    GROUP_CHANNEL_VOLUME = 3,
} group_channel;

typedef enum audit_mode {
    AUDIT_MODE_OFFLINE = 0,  /* grant now, audit later through the outbox */
    AUDIT_MODE_ONLINE = 1,   /* ask the audit server before granting */
} audit_mode;

typedef enum audit_unreachable {
    AUDIT_UNREACHABLE_FAIL_CLOSED = 0,  /* online audit down: refuse with UNAVAILABLE */
    AUDIT_UNREACHABLE_OFFLINE = 1,      /* online audit down: grant, audit offline */
} audit_unreachable;

typedef enum audit_outbox_full {
    AUDIT_OUTBOX_FULL_FAIL_CLOSED = 0, /* outbox at its cap: refuse a sampled activation with UNAVAILABLE */
    AUDIT_OUTBOX_FULL_GRANT = 1,       /* outbox at its cap: grant it unaudited (logged, counted) */
} audit_outbox_full;

/* Defaults applied to every key of the group; the activation server's
 * policy script reads them from Redis on every call. */
typedef struct group_policy {
    uint32_t max_machines;        /* places per key; 0 = unlimited */
    uint32_t lease_seconds;       /* license lifetime; 0 = permanent */
    uint32_t renew_seconds;       /* renew-after interval for leased licenses */
    uint32_t audit_rate_ppm;      /* base audit sample rate, parts per million */
    audit_mode audit;             /* online or offline audit of samples */
    audit_unreachable on_audit_down; /* what online audit does when the audit server is down */
    audit_outbox_full on_outbox_full; /* what a sampled activation does when the outbox is full */
    bool audit_first_activation;  /* always audit a key's first activation */
    uint32_t machine_match;       /* components a place must share to follow a machine; 0 = by machine_id only */
    uint32_t grace_seconds;       /* past expires_at, an offline copy keeps working and may still renew */
    uint32_t max_deactivations;   /* Deactivate calls per key and churn period; 0 = unlimited */
    uint32_t max_transfers;       /* ReleaseMachine calls per key and churn period; 0 = unlimited */
    uint32_t churn_period_seconds; /* the period both churn budgets count over */
    char features[256];           /* comma-separated feature names for licenses */
} group_policy;

typedef struct group_record {
    uint32_t id;                  /* the 20-bit group ID keys carry */
    char product[64];
    char edition[64];
    group_channel channel;
    bool upgrade_allowed;         /* keys with the upgrade bit are accepted */
    int alg_first;                /* mac_alg of the first security value */
    int alg_second;               /* mac_alg of the second (audit store only) */
    int64_t created_at;           /* unix seconds */
    uint64_t version;             /* bumped on every change; caches compare it */
    group_policy policy;
} group_record;

#define GROUP_F_PRODUCT "product"
#define GROUP_F_EDITION "edition"
#define GROUP_F_CHANNEL "channel"            /* "retail" | "oem" | "volume" */
#define GROUP_F_UPGRADE "upgrade_allowed"    /* "0" | "1" */
#define GROUP_F_ALG "alg"                    /* mac_alg number */
#define GROUP_F_CREATED "created_at"
#define GROUP_F_VERSION "version"
#define GROUP_F_MAX_MACHINES "max_machines"
#define GROUP_F_LEASE "lease_seconds"
#define GROUP_F_RENEW "renew_seconds"
#define GROUP_F_AUDIT_RATE "audit_rate_ppm"
#define GROUP_F_AUDIT_MODE "audit_mode"      /* "offline" | "online" */
#define GROUP_F_AUDIT_DOWN "audit_unreachable" /* "fail-closed" | "offline" */
#define GROUP_F_OUTBOX_FULL "audit_outbox_full" /* "fail-closed" | "grant" */
#define GROUP_F_AUDIT_FIRST "audit_first_activation"
#define GROUP_F_FEATURES "features"
#define GROUP_F_MACHINE_MATCH "machine_match" /* 0 (exact) .. GROUP_MACHINE_MATCH_MAX */
#define GROUP_F_GRACE "grace_seconds"
#define GROUP_F_MAX_DEACT "max_deactivations"
#define GROUP_F_MAX_TRANSFERS "max_transfers"
#define GROUP_F_CHURN_PERIOD "churn_period_seconds"
#define GROUP_F_SECRET "secret"              /* wrapped blob, binary */

/* The most components a request may carry, hence the largest machine_match. */
#define GROUP_MACHINE_MATCH_MAX 16
/* Defaults of the churn budgets (docs/machines.md "Seat churn"), also for
 * records written before the fields existed. */
#define GROUP_MAX_TRANSFERS_DEFAULT 3
#define GROUP_CHURN_PERIOD_DEFAULT 2592000u

/* Fills `rec` with the documented defaults (retail, HMAC-SHA256 for both,
 * max_machines 1, permanent, 5 % offline audit, exact machine matching, no
 * grace, unlimited deactivations, 3 releases per 30 days). */
void group_record_defaults(group_record *rec);
/* The checks group_create applies, for callers that want to refuse a bad
 * record before they touch a store. 0, or -1 with the reason in err. */
int group_record_validate(const group_record *rec, char *err, size_t errlen);

const char *group_channel_name(group_channel c);
int group_channel_parse(const char *s);   /* 0 if unknown */

/* Parses a {g:ID}:group HGETALL reply (activation side). `wrapped_secret`
 * may be NULL; otherwise it receives the blob. Returns 0 or -1 with `err`. */
int group_record_from_reply(const redisReply *r, uint32_t id, group_record *rec,
                            uint8_t wrapped_secret[WRAP_BLOB_LEN], char *err, size_t errlen);

/* Creates group rec->id in both stores: fresh random secrets, wrapped under
 * each side's KEK. Refuses (returns -1, "exists") if either store already
 * holds the ID. Writes the audit part first, so a failure halfway leaves no
 * activatable group without its audit record. */
int group_create(redisContext *activation, const uint8_t kek_activation[KEK_LEN],
                 redisContext *audit, const uint8_t kek_audit[KEK_LEN],
                 group_record *rec, char *err, size_t errlen);

/* Where one store's part of a group goes: on a single node both are the
 * same connection; on Redis Cluster the record and the `groups` index live
 * in different slots, so each names the master that owns it. */
typedef struct group_conns {
    redisContext *record; /* owns the group's record ({g:ID}:group or audit:group:ID) */
    redisContext *index;  /* owns the store's `groups` set */
} group_conns;

/* group_create with each store's record and index on their own
 * connections (group_create passes the same one twice). */
int group_create_at(const group_conns *activation, const uint8_t kek_activation[KEK_LEN], const group_conns *audit,
                    const uint8_t kek_audit[KEK_LEN], group_record *rec, char *err, size_t errlen);

/* Loads the activation-side record (and, if `first` is not NULL, a mac_key
 * for the first secret). Returns 0, 1 if not found, -1 on error. */
int group_load(redisContext *activation, const uint8_t kek_activation[KEK_LEN], uint32_t id,
               group_record *rec, mac_key **first, char *err, size_t errlen);

/* Loads the audit-side secret as a mac_key. Returns 0, 1 if not found, -1. */
int group_load_audit(redisContext *audit, const uint8_t kek_audit[KEK_LEN], uint32_t id,
                     int *alg_second, mac_key **second, char *err, size_t errlen);

/* Lists group IDs (sorted) from the activation store. Caller frees *ids. */
int group_list(redisContext *activation, uint32_t **ids, size_t *count, char *err, size_t errlen);

#endif
