/* policy.h -- the C side of policy.lua: one EVALSHA per Activate, Renew,
 * Deactivate or failed genuineness check, with its reply decoded into a
 * policy_result; or several of them in one EVALSHA (policy_batch, the
 * batch handler's). The script itself documents the Redis keys and the
 * rules. */
#ifndef PA_ACTIVATION_POLICY_H
#define PA_ACTIVATION_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "audit_record.h"
#include "group_cache.h"
#include "place_proof.h"
#include "redis_keys.h"
#include "redis_store.h"
#include "script_args.h"
#include "validate.h"

/* A place's field in the key's record: the first 16 bytes of SHA-256(machine_id). */
#define PLACE_FIELD_LEN 16

/* The script's statuses, plus UNAVAILABLE when Redis could not answer. */
typedef enum policy_status {
    POLICY_OK = 0,
    POLICY_RATE_LIMITED = 1,
    POLICY_UNKNOWN_GROUP = 2,
    POLICY_REVOKED = 3,
    POLICY_NO_PLACE = 4,
    POLICY_NOT_FOUND = 5,
    POLICY_EXPIRED = 6,
    POLICY_NOT_GENUINE = 7,
    POLICY_UNAVAILABLE = 8,
    POLICY_WRONG_KEY = 9,      /* renew, deactivate: the place is bound to another place key */
    POLICY_OUTBOX_FULL = 10,   /* activate: sampled, the outbox is at its cap, the group fails closed */
    POLICY_CHURN_LIMITED = 11, /* deactivate, release: the key's budget for the period is used up */
} policy_status;

typedef struct policy_result {
    policy_status status;
    uint64_t version;            /* the group record's version the script read */
    uint32_t count;              /* places held on the key after the call */
    int64_t now;                 /* Redis clock, unix seconds: the license's issued_at */
    int64_t expires_at;          /* 0: permanent */
    int64_t renew_after;         /* 0: no renewal needed */
    uint8_t random[LICENSE_RANDOM_LEN]; /* the place's license id random part */
    bool again;                  /* the machine already held a place on the key */
    bool audited;                /* activate: the script wrote the audit:outbox record */
    bool group_exists;           /* reject (NOT_GENUINE): the group is in `groups` */
    bool unaudited;              /* activate: sampled, but granted without it (the outbox is full) */
    bool rebound;                /* activate: a place found by components moved to this machine */
    uint32_t shared;             /* rebound: component tokens the place had in common with the request */
    uint8_t was[PLACE_FIELD_LEN]; /* rebound: the place's earlier field (a machine digest) */
    int retry_after_s;           /* RATE_LIMITED: seconds to wait */
    const char *scope;           /* RATE_LIMITED: "address" or "group" */
    const char *limit;           /* CHURN_LIMITED: "deactivation" or "transfer" */
    int64_t next_allowed_at;     /* CHURN_LIMITED: unix time the period ends (also retry_after_s) */
    bool redis_error;            /* UNAVAILABLE came with an error reply (logged) */
    char error[160];             /* UNAVAILABLE: why, for the log */
} policy_result;

/* Token-bucket settings, formatted once for the script's ARGV. A rate of 0
 * disables a bucket. */
typedef struct policy_limits {
    char address_rate[24];       /* tokens per second per client address */
    char address_burst[24];
    char group_rate[24];         /* tokens per second per group */
    char group_burst[24];
    char failure_cost[24];       /* tokens a failed genuineness check takes */
    char failure_rate[24];       /* keys of one group refused as not genuine, per second */
    char failure_burst[24];
    char retention[24]; /* seconds an idle place is kept (policy.lua "Retention"); 0: for ever */
} policy_limits;

void policy_limits_set(policy_limits *l, double address_rate, double address_burst,
                       double group_rate, double group_burst, double failure_cost);
/* The per-group failure bucket (default off until set: rate 0). */
void policy_limits_set_group_failures(policy_limits *l, double rate, double burst);
/* How long a place nothing depends on is kept (default 0 until set: for ever). */
void policy_limits_set_retention(policy_limits *l, long long seconds);

/* An offline-audit record for audit:outbox, written by the script in the
 * same round trip as the activation. */
typedef struct policy_audit {
    int mode;                    /* audit_sample_mode: 1 always, 2 only if this is the key's first use */
    const audit_record *rec;     /* the entry's fields (audit_record.h knows their shape) */
    const char *outbox_max;      /* the outbox's cap, decimal (--audit-outbox-max) */
    bool grant_when_full;        /* at the cap: grant unaudited (else POLICY_OUTBOX_FULL) */
} policy_audit;

/* What the machine log (docs/admin.md) says about the caller: the client
 * address, and on an Activate what the request says of the machine. */
typedef struct policy_machine {
    const char *ip;          /* the client address (client_address.c); NULL: unknown */
    const char *hostname;    /* ActivateRequest.hostname; NULL: none */
    const char *os;          /* ActivateRequest.os */
    const char *host_serial; /* ActivateRequest.host_serial */
    const char *const *macs; /* ActivateRequest.mac_addresses (validated) */
    size_t n_macs;           /* at most MACS_MAX */
    const uint8_t *tokens;   /* the components' tokens, sorted (machine_components.h): stored, matched */
    size_t n_tokens;         /* at most COMPONENTS_MAX */
} policy_machine;

/* Registers policy.lua on the connection, and address_take.lua right
 * after it (policy_address_script); returns policy.lua's index or -1. */
int policy_register(rstore *r);

/* ---- Redis Cluster: the address step as a call of its own ----------------
 * The address bucket rl:a:ADDR lies outside the group's slot, so on Redis
 * Cluster (policy_split) every call below first takes the address tokens
 * with address_take.lua and runs policy.lua without the bucket only if
 * that granted (docs/cluster.md, "The address bucket"): an address token is
 * then spent even when the group refuses. On a single node nothing changes:
 * one call, the address bucket inside it. The single-call functions
 * (policy_activate, _renew, _deactivate, _reject, policy_list, _release) do
 * this by themselves; the pipelined ones (_append) take the address key
 * as given, so a batch takes its addresses first (policy_address_take_append)
 * and passes NULL. A NULL address key always means "already taken". */
bool policy_split(const rstore *r);
/* address_take.lua's index, given policy.lua's. */
int policy_address_script(int script);
/* The address step alone: OK (the tokens are spent), or RATE_LIMITED with
 * the scope "address" as policy.lua answers it, or UNAVAILABLE. `failure`:
 * a failed genuineness check (spends the failure cost, not one token). */
void policy_address_take(rstore *r, int script, const policy_limits *l, const char *address_key, bool failure,
                         policy_result *out);
int policy_address_take_append(rstore *r, int script, const policy_limits *l, const char *address_key, bool failure);
/* Its pipelined reply, as policy_activate_read reads one. */
bool policy_address_take_read(rstore *r, policy_result *out);
/* On Redis Cluster with an address key: the address step now; false when it
 * refused (*out set), else *address_key becomes NULL for the group's call.
 * Elsewhere, true and nothing done. */
bool policy_address_first(rstore *r, int script, const policy_limits *l, const char **address_key, bool failure,
                          policy_result *out);

/* The KEYS of one script call, built by the code that builds the call (the
 * test that every call stays inside one hash slot on Redis Cluster). */
#define POLICY_KEYS_MAX 10
typedef struct policy_keys {
    char name[POLICY_KEYS_MAX][PA_RKEY_MAX]; /* the keys, in KEYS order */
    int n;                                   /* how many */
    char read[PA_RKEY_MAX]; /* a key the script reads through ARGV (must share the slot too); "" none */
} policy_keys;
typedef enum policy_call {
    POLICY_CALL_ACTIVATE,
    POLICY_CALL_RENEW,
    POLICY_CALL_DEACTIVATE,
    POLICY_CALL_REJECT,
    POLICY_CALL_ADDRESS_TAKE,
} policy_call;
/* `split`: Redis Cluster's form (no address bucket in a group's call, the
 * outbox shard of the group's slot). */
void policy_call_keys(policy_call op, bool split, const group_entry *g, uint32_t serial, const char *address_key,
                      policy_keys *out);

/* The rate-limit key of a client address: "rl:a:IP", IPv6 by its /64. */
void policy_address_key(const char *ip, char *out, size_t n);

/* `holder`: the digest of the request's place key (place_key_digest), or
 * NULL when it sent none (the machine's place then keeps any key it has). */
void policy_activate(rstore *r, int script, const policy_limits *l, const group_entry *g, uint32_t serial,
                     const uint8_t *machine_id, const uint8_t *holder, const uint8_t random[LICENSE_RANDOM_LEN],
                     const char *address_key, const policy_machine *seen, const policy_audit *audit,
                     policy_result *out);

/* The same script call, pipelined (docs/batching.md): appended to the
 * connection's pipeline (0, or -1 when it could not be: the call is then
 * UNAVAILABLE), and its reply read in order. policy_activate_read returns
 * false when Redis did not know the script (NOSCRIPT): once every reply of
 * the pipeline is read, run that call again with policy_activate, which
 * loads the script first. A Redis that went away fails each call whose
 * reply it took (UNAVAILABLE in *out). */
int policy_activate_append(rstore *r, int script, const policy_limits *l, const group_entry *g, uint32_t serial,
                           const uint8_t *machine_id, const uint8_t *holder, const uint8_t random[LICENSE_RANDOM_LEN],
                           const char *address_key, const policy_machine *seen, const policy_audit *audit);
bool policy_activate_read(rstore *r, policy_result *out);

/* Renew and Deactivate: the place named by (serial, machine_id, random),
 * held by the place key whose digest is `holder` (proven by proof_check).
 * WRONG_KEY when the place is bound to another key; a place with no key yet
 * is bound to this one. */
/* `ip`: the client address, for the machine log (NULL: unknown). */
void policy_renew(rstore *r, int script, const policy_limits *l, uint32_t group, uint32_t serial,
                  const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                  const uint8_t random[LICENSE_RANDOM_LEN], const char *address_key, const char *ip,
                  policy_result *out);
/* Renew pipelined, as policy_activate_append and policy_activate_read. */
int policy_renew_append(rstore *r, int script, const policy_limits *l, uint32_t group, uint32_t serial,
                        const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                        const uint8_t random[LICENSE_RANDOM_LEN], const char *address_key, const char *ip);
bool policy_renew_read(rstore *r, policy_result *out);
void policy_deactivate(rstore *r, int script, const policy_limits *l, uint32_t group, uint32_t serial,
                       const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                       const uint8_t random[LICENSE_RANDOM_LEN], const char *address_key, const char *ip,
                       policy_result *out);
/* Deactivate pipelined, as policy_renew_append and policy_renew_read. */
int policy_deactivate_append(rstore *r, int script, const policy_limits *l, uint32_t group, uint32_t serial,
                             const uint8_t *machine_id, const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                             const uint8_t random[LICENSE_RANDOM_LEN], const char *address_key, const char *ip);
bool policy_deactivate_read(rstore *r, policy_result *out);

/* A failed genuineness check from `address_key` of a key of `group`
 * (which may not exist): takes failure tokens. NOT_GENUINE, with whether
 * the group is in `groups` (asked whether or not the caller knew: same
 * work), or RATE_LIMITED once the address has none left. */
void policy_reject(rstore *r, int script, const policy_limits *l, const char *address_key, uint32_t group,
                   policy_result *out);

/* A reject pipelined, as policy_activate_append and policy_activate_read. */
int policy_reject_append(rstore *r, int script, const policy_limits *l, const char *address_key, uint32_t group);
bool policy_reject_read(rstore *r, policy_result *out);

/* ---- several calls in one EVALSHA (docs/batching.md, "One script call per batch")
 * policy.lua's batch operation: activates and rejects, each with exactly
 * its single call's KEYS and ARGV, sent as one EVALSHA whose reply holds
 * each call's reply in order -- the script's fixed cost paid once. Single
 * node only: the entries' keys lie in many slots. The address key is
 * passed (never NULL: nothing is taken first on a single node). */
typedef struct policy_batch policy_batch;
policy_batch *policy_batch_new(void); /* NULL: out of memory */
void policy_batch_free(policy_batch *b);
/* Empties it for the next batch (its room is kept; the reply is freed). */
void policy_batch_clear(policy_batch *b);
size_t policy_batch_size(const policy_batch *b);
/* Adds a call, as policy_activate_append / policy_reject_append would
 * append it: 0, or -1 (out of memory, too many arguments) with the batch
 * unchanged -- that call then runs by itself. */
int policy_batch_add_activate(policy_batch *b, const policy_limits *l, const group_entry *g, uint32_t serial,
                              const uint8_t *machine_id, const uint8_t *holder,
                              const uint8_t random[LICENSE_RANDOM_LEN], const char *address_key,
                              const policy_machine *seen, const policy_audit *audit);
int policy_batch_add_reject(policy_batch *b, const policy_limits *l, const char *address_key, uint32_t group);
/* Appends the one EVALSHA to the pipeline: 0, or -1 (nothing sent). The
 * buffers the calls were added from need to live only until it returns. */
int policy_batch_append(rstore *r, int script, policy_batch *b);
/* Reads its reply; false on NOSCRIPT (run every call again by itself, as
 * policy_activate_read's callers do). */
bool policy_batch_read(rstore *r, policy_batch *b);
/* Call i's answer, decoded exactly as its own reply would be (an entry
 * whose call raised an error is UNAVAILABLE with Redis's error); a batch
 * call that failed whole (a Redis error, a lost connection) answers every
 * call UNAVAILABLE. */
void policy_batch_result(const policy_batch *b, size_t i, policy_result *out);

const char *policy_status_name(policy_status s);

/* Decodes a reply of policy.lua whose shape every operation shares (the
 * refusals, and an OK's version and count); `what` names the call in an
 * error. For the callers of operations with replies of their own
 * (policy_machines.c). */
void policy_decode(redisReply *r, const char *what, policy_result *out);

/* Runs policy.lua with the arguments in `a` (its first `nkeys` are KEYS):
 * the reply (caller frees), or NULL with `out` set to UNAVAILABLE and the
 * reason (the store, or too many arguments). */
redisReply *policy_eval(rstore *r, int script, int nkeys, script_args *a, const char *what, policy_result *out);

#endif
