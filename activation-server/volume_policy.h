/* volume_policy.h -- the C side of volume.lua: one EVALSHA per Activate,
 * Renew or Deactivate of a volume key, per operator decision on a machine,
 * and per sweep of an order's wheel, with the reply decoded into a
 * volume_result. The script documents the machine table and the rules; the
 * design is docs/volume.md. */
#ifndef PA_ACTIVATION_VOLUME_POLICY_H
#define PA_ACTIVATION_VOLUME_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "component_tokens.h"
#include "place_proof.h"
#include "policy.h"
#include "redis_store.h"
#include "validate.h"

#define VOLUME_DIGEST_LEN 16      /* a machine's name in the table: SHA-256(machine id), first 16 bytes */
#define VOLUME_HOLDER_LEN 11      /* the place-key digest kept in a machine record */
#define VOLUME_AGE_PER_CALL 64    /* wheel members an Activate, Renew or Deactivate ages at most */
#define VOLUME_SWEEP_MAX 1000     /* and one sweep call (about 10 ms of Redis for 1000 stale machines) */
#define VOLUME_DESIGNATION_MAX 96 /* "m:" + 32 hex, "s:" + host serial, "mac:" + MAC */
#define VOLUME_MACS_MAX MACS_MAX  /* ActivateRequest.mac_addresses (validate.h) */

/* The script's statuses (volume.lua documents each), plus UNAVAILABLE when
 * Redis could not answer. Where policy.lua has the same meaning, the number
 * is the same. */
typedef enum volume_status {
    VOLUME_OK = 0,
    VOLUME_RATE_LIMITED = 1,
    VOLUME_UNKNOWN_ORDER = 2,
    VOLUME_REVOKED = 3,
    VOLUME_NO_SEAT = 4,
    VOLUME_NOT_FOUND = 5,
    VOLUME_EXPIRED = 6,
    VOLUME_UNAVAILABLE = 8,
    VOLUME_WRONG_KEY = 9,
    VOLUME_OUTBOX_FULL = 10,
    VOLUME_NOT_STARTED = 11,
    VOLUME_ENDED = 12,
    VOLUME_RETIRED = 13,
    VOLUME_DEACTIVATED = 14,
    VOLUME_NOT_REQUESTED = 15,
    VOLUME_MACHINE_ENDED = 16,
} volume_status;

/* activation.v1.VolumeStatus.Pending's numbers. */
typedef enum volume_pending {
    VOLUME_PENDING_NONE = 0,
    VOLUME_PENDING_THRESHOLD = 1,
    VOLUME_PENDING_NOT_DESIGNATED = 2,
} volume_pending;

/* activation.v1.VolumeStatus.Deactivation's numbers. */
typedef enum volume_deactivation {
    VOLUME_DEACTIVATION_NONE = 0,
    VOLUME_DEACTIVATION_AWAITING = 1,
    VOLUME_DEACTIVATION_DENIED = 2,
} volume_deactivation;

typedef struct volume_result {
    volume_status status;
    uint64_t version;                   /* the order hash's version the script read (0: none) */
    int64_t now;                        /* Redis clock, unix seconds: a license's issued_at */
    uint32_t count;                     /* machines in the window: the KMS activation count */
    uint32_t seats_used;                /* seats held after the call */
    uint32_t over_term;                 /* machines counted after the end date */
    uint64_t changes;                   /* the counters' write count: a higher one saw later counters */
    volume_pending pending;             /* OK without a license: why */
    int64_t check_in_at;                /* when to call again; 0: no need */
    int64_t expires_at;                 /* the license's; 0: never */
    int64_t renew_after;                /* the license's; 0: no renewal */
    uint8_t random[LICENSE_RANDOM_LEN]; /* the license id's random part */
    bool again;                         /* the machine held its grant already */
    bool audited;                       /* activate: the script wrote the audit:outbox record */
    bool unaudited;                     /* activate: sampled, but granted without it (the outbox is full) */
    volume_deactivation deactivation;
    int retry_after_s; /* RATE_LIMITED, or NO_SEAT of a concurrent order; 0: none */
    uint32_t aged;     /* wheel members this call's ageing took */
    bool more;         /* sweep: due buckets are left */
    /* activate: the record of another digest was re-bound to this machine by components */
    bool rebound;
    uint32_t rebound_shared;                 /* ... sharing this many component tokens */
    uint8_t rebound_from[VOLUME_DIGEST_LEN]; /* ... the digest it moved from */
    bool redis_error;                        /* UNAVAILABLE came with an error reply (logged) */
    char error[160];                         /* UNAVAILABLE: why, for the log */
} volume_result;

/* Who asks, for the caller's operations: the volume key and the client
 * address whose token bucket the call takes from (policy_address_key). */
typedef struct volume_caller {
    uint32_t group;              /* the key's group: its revoked set */
    uint32_t serial;             /* the key's serial */
    const char *address_key;     /* "rl:a:..."; NULL: taken already (none is then taken) */
    int address_script;          /* address_take.lua's index (policy_address_script): first on Redis Cluster */
    const char *revoked;         /* Redis Cluster batch: "1"/"0" as read in its first round trip; NULL: not read */
    const policy_limits *limits; /* the address rate and burst */
    const char *ip;              /* the client address, for the machine log; NULL: unknown */
} volume_caller;

/* What an Activate says about the machine. */
typedef struct volume_machine {
    const uint8_t *machine_id; /* MACHINE_ID_LEN bytes */
    const uint8_t *holder;     /* place_key_digest of the request's place key; NULL: none sent */
    const char *facts_json;    /* the facts the order collects, a JSON object; NULL: none */
    const char *hostname;      /* the machine log: ActivateRequest.hostname; NULL: none */
    const char *os;            /* the machine log: ActivateRequest.os; NULL: none */
    const char *host_serial;   /* designation; NULL or "": none */
    const char *const *macs;   /* designation, "aa:bb:cc:dd:ee:ff" (any case) */
    size_t n_macs;             /* at most VOLUME_MACS_MAX are looked at */
    const uint8_t *tokens;     /* component tokens, sorted (n_tokens * COMPONENT_TOKEN_LEN bytes): matching */
    size_t n_tokens;           /* at most COMPONENTS_MAX */
    const policy_audit *audit; /* an offline-audit record to write with a grant; NULL: none */
} volume_machine;

/* Redis Cluster (policy_split, docs/cluster.md "volume.lua"): a call by
 * itself (volume_activate, _renew, _deactivate) first takes the address's
 * tokens with address_take.lua and, activate and renew, reads the key's
 * revocation, then runs volume.lua on the order's slot alone. A batch
 * does those first for all its calls in one round trip (the address takes
 * with policy_address_take_append, the revocations with
 * volume_revoked_append) and then appends its volume calls with no address
 * key and `revoked` set; an _append without them returns -1 there (run it
 * by itself). On a single node every call is one round trip. */
int volume_revoked_append(rstore *r, uint32_t group, uint32_t serial);
/* Its reply: "1" or "0" in *revoked; false with UNAVAILABLE in *out. */
bool volume_revoked_read(rstore *r, const char **revoked, volume_result *out);
/* The address take's refusal (RATE_LIMITED or UNAVAILABLE) as volume.lua
 * would have answered it. */
void volume_result_of_take(const policy_result *take, volume_result *out);

/* The KEYS of a call as the code above builds it (the slot test).
 * `split`: Redis Cluster's form. `op`: activate, renew, deactivate, or an
 * operator call's or the sweep's name. */
void volume_call_keys(const char *op, bool split, const char *order_serial, const volume_caller *c, policy_keys *out);

/* Registers volume.lua on the connection; returns the script index or -1. */
int volume_register(rstore *r);

/* The machine digest of a machine id (MACHINE_ID_LEN bytes). */
void volume_machine_digest(const uint8_t *machine_id, uint8_t out[VOLUME_DIGEST_LEN]);

/* The designated set's member for a device: kind 'm' (value: a machine
 * digest in hex, either case), 's' (a host serial) or 'a' (a MAC address,
 * either case). Written lowercase where case does not matter, so the
 * operator's command and the server name a device the same way. Returns the
 * length, or -1 when the value is empty, too long or not of its kind. */
int volume_designation_name(char kind, const char *value, char out[VOLUME_DESIGNATION_MAX]);

/* `random`: 8 fresh random bytes (the generation of a machine that has none). */
void volume_activate(rstore *r, int script, const char *order_serial, const volume_caller *c, const volume_machine *m,
                     const uint8_t random[LICENSE_RANDOM_LEN], volume_result *out);

/* The same call, pipelined (docs/batching.md): appended to the
 * connection's pipeline (0, or -1 when it could not be: run it by itself
 * then), its reply read in order by volume_read (`what`: "activate",
 * "renew" or "deactivate", for errors). volume_read returns false when Redis did not know
 * the script (NOSCRIPT): once every reply of the pipeline is read, run
 * that call again by itself, which loads the script. A Redis that went
 * away fails each call whose reply it took (UNAVAILABLE in *out). */
int volume_activate_append(rstore *r, int script, const char *order_serial, const volume_caller *c,
                           const volume_machine *m, const uint8_t random[LICENSE_RANDOM_LEN]);
int volume_renew_append(rstore *r, int script, const char *order_serial, const volume_caller *c,
                        const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                        const uint8_t random[LICENSE_RANDOM_LEN]);
int volume_deactivate_append(rstore *r, int script, const char *order_serial, const volume_caller *c,
                             const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                             const uint8_t random[LICENSE_RANDOM_LEN]);
bool volume_read(rstore *r, const char *what, volume_result *out);

/* Renew and Deactivate: the machine named by the license id's random part
 * and the machine id, proven by the place key whose digest is `holder`. */
void volume_renew(rstore *r, int script, const char *order_serial, const volume_caller *c, const uint8_t *machine_id,
                  const uint8_t holder[PLACE_KEY_DIGEST_LEN], const uint8_t random[LICENSE_RANDOM_LEN],
                  volume_result *out);
void volume_deactivate(rstore *r, int script, const char *order_serial, const volume_caller *c,
                       const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                       const uint8_t random[LICENSE_RANDOM_LEN], volume_result *out);

/* Ages the order's due wheel buckets, `budget` members at most (clamped to
 * 1..VOLUME_SWEEP_MAX); `more` says whether to call again. */
void volume_sweep(rstore *r, int script, const char *order_serial, int budget, volume_result *out);

/* The operator's decisions on one machine (by digest). */
typedef enum volume_decision {
    VOLUME_APPROVE, /* a deactivation request: the seat frees, the next Renew answers DEACTIVATED */
    VOLUME_DENY,    /* ... refused: reported at the machine's next Renew */
    VOLUME_FORCE,   /* forced deactivation of a machine, request or not */
} volume_decision;

void volume_decide(rstore *r, int script, const char *order_serial, volume_decision d,
                   const uint8_t digest[VOLUME_DIGEST_LEN], volume_result *out);

/* A machine record of {o:S}:m as volume.lua writes it (docs/volume.md,
 * "The machine record"), for the operator's commands: 28 bytes, then on
 * orders that match by components a tail of re-binds (1), n (1) and n
 * tokens. */
#define VOLUME_RECORD_LEN 28
enum {
    VOLUME_F_SEAT = 1,    /* holds a seat */
    VOLUME_F_PENDING = 2, /* asked, not granted (threshold, designation) */
    VOLUME_F_ASKED = 4,   /* asked to be deactivated, awaiting approval */
    VOLUME_F_DENIED = 8,  /* its request was denied (not reported yet) */
    VOLUME_F_GONE = 16,   /* deactivated: a tombstone */
    VOLUME_F_OVER = 32,   /* granted after the order's end date (continue-counted) */
    VOLUME_F_OUT = 64,    /* out of the window, keeps its seat */
};
typedef struct volume_record {
    unsigned flags;        /* VOLUME_F_* */
    uint32_t first_seen;   /* unix seconds */
    uint32_t last_contact; /* unix seconds */
    uint32_t lease_until;  /* 0: none; a tombstone: when it goes */
    unsigned rebinds;      /* times a new machine digest took it over by components (saturates at 255) */
    unsigned n_tokens;     /* component tokens kept for matching */
} volume_record;

/* False when `v` is not a record (wrong length, or a tail that does not add up). */
bool volume_record_decode(const void *v, size_t len, volume_record *out);
/* "active", "pending", "lapsed" (a lease that ran out) or "deactivated";
 * `counted`: the order counts seats (not unlimited). */
const char *volume_record_status(const volume_record *r, bool counted);

const char *volume_status_name(volume_status s);
const char *volume_decision_name(volume_decision d); /* "approve", "deny", "force" */

#endif
