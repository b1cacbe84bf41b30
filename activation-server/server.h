/* server.h -- the activation server's shared state and its handlers.
 *
 * `app` is built once in main() before the workers start and is read-only
 * afterwards; `worker` is one per gRPC worker thread (rpc_server
 * worker_init), so the hot path takes no locks: each worker has its own
 * Redis connection, group cache and signing context. */
#ifndef PA_ACTIVATION_SERVER_H
#define PA_ACTIVATION_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "audit_client.h"
#include "audit_sampler.h"
#include "client_address.h"
#include "group_cache.h"
#include "license.h"
#include "metrics.h"
#include "order_cache.h"
#include "random_pool.h"
#include "order_keyring.h"
#include "policy.h"
#include "redis_store.h"
#include "replica_wait.h"
#include "rpc_server.h"
#include "secret_wrap.h"
#include "threat_counters.h"
#include "usage_file.h"
#include "verify_pool.h"

#define ACTIVATION_MAX_REQUEST_BYTES 4096   /* far above any valid request */
/* A usage report of an order of some 200 000 machines (usage_file.h). */
#define USAGE_MAX_REQUEST_BYTES (USAGE_REPORT_MAX + 65536)

/* Why an Activate or a Renew was refused: one metric label each, in
 * pa_activations_refused_total and pa_renewals_refused_total (each family
 * has the reasons its call can give; see worker.c). */
typedef enum refusal {
    REFUSED_INVALID_REQUEST, /* malformed protobuf or a bad field */
    REFUSED_INVALID_KEY,     /* key text malformed, legacy, or bad checksum */
    REFUSED_NOT_GENUINE,     /* unknown group, wrong first value, or forged (online audit) */
    REFUSED_REVOKED,
    REFUSED_NO_PLACE,
    REFUSED_RATE_LIMITED,
    REFUSED_UNAVAILABLE,       /* Redis down or failing */
    REFUSED_AUDIT_UNAVAILABLE, /* online audit without an answer, group fails closed */
    REFUSED_DEADLINE,          /* the caller's deadline passed before work began */
    REFUSED_INTERNAL,          /* signing or packing failed */
    REFUSED_NOT_FOUND,         /* Renew: no such place (or group) for this license id */
    REFUSED_LEASE_EXPIRED,     /* Renew: the lease lapsed before the renewal */
    REFUSED_BAD_PROOF,         /* Renew: no valid proof of holding the place's key */
    /* Volume keys (docs/volume.md): */
    REFUSED_NO_SEAT,           /* every seat of the order is held */
    REFUSED_ORDER_NOT_STARTED, /* before the order's valid_from */
    REFUSED_ORDER_ENDED,       /* after its valid_until (or the machine's own validity, vendor mode) */
    REFUSED_ORDER_RETIRED,
    REFUSED_PLATFORM,    /* Activate: OS version or architecture not in the order */
    REFUSED_DEACTIVATED, /* Renew: the operator deactivated the machine */
    REFUSED_N
} refusal;

/* Stages of an Activate, timed for the benchmark's breakdown. */
typedef enum stage {
    STAGE_DECODE_MAC,               /* decode, group lookup, first value */
    STAGE_AUDIT,                    /* sampling decision and the online Verify, if any */
    STAGE_REDIS,                    /* the policy script's round trip */
    STAGE_SIGN,                     /* the license */
    STAGE_TOTAL,
    STAGE_N
} stage;

typedef struct activation_metrics {
    metric *granted_new;            /* first place for this machine on the key */
    metric *granted_again;          /* the machine already held a place */
    metric *refused[REFUSED_N];     /* Activate, by reason; NULL for reasons it never gives */
    metric *renew_refused[REFUSED_N]; /* Renew, by reason; NULL likewise */
    metric *rate_limited[2];        /* by scope: address, group */
    metric *redis_errors;           /* unreachable, timed out, or an error reply */
    metric *redis_seconds;          /* histogram: Activate's policy round trip */
    metric *stage_ns[STAGE_N];      /* nanoseconds spent per stage, granted calls */
    metric *stage_calls;            /* granted calls timed into stage_ns */
    metric *group_loads;            /* group records read from Redis (cache misses) */
    metric *group_id_loads;         /* reads of the `groups` set (group_ids.h) */
    metric *audit_sampled;          /* activations given to the offline-audit outbox */
    metric *audit_online[3];        /* online Verify answers: genuine, forged, unavailable */
    metric *audit_fallback;         /* online audits that fell back to the outbox */
    metric *audit_outbox_full[2];   /* sampled activations at the outbox cap: refused, granted unaudited */
    metric *usage_reports[3];       /* Usage/Report calls: stored, kept (not newer), refused */
    metric *usage_uploads[2];       /* on-premises uploads of one order's report: ok, failed */
    metric *rebound;                /* Activates that moved a place or seat to a new machine_id by components */
    metric *volume_pending[2];      /* volume Activates answered pending: below the threshold, not designated */
    metric *churn_refused[2];       /* calls over a key's churn budget: deactivation, transfer */
    metric *releases;               /* places freed by ReleaseMachine */
} activation_metrics;

/* The churn budgets (docs/machines.md "Seat churn"), the index of churn_refused. */
typedef enum churn_limit { CHURN_DEACTIVATION, CHURN_TRANSFER } churn_limit;
/* Which budget a CHURN_LIMITED result is about. */
churn_limit churn_limit_of(const policy_result *p);

/* The index of usage_reports. */
enum { USAGE_RESULT_STORED, USAGE_RESULT_KEPT, USAGE_RESULT_REFUSED };

/* Online Verify answers, the index of audit_online. */
enum { AUDIT_ONLINE_GENUINE, AUDIT_ONLINE_FORGED, AUDIT_ONLINE_UNAVAILABLE };

typedef struct app {
    license_key signing;            /* Ed25519 key and its key_id, loaded once */
    uint8_t kek[KEK_LEN];           /* unwraps groups' first secrets */
    rstore_config redis;            /* each worker connects with it */
    policy_limits limits;           /* token buckets, formatted for the script */
    int negative_ttl_ms;            /* how long unusable group records stay cached */
    trusted_proxies *proxies;       /* --trusted-proxy: whose x-forwarded-for is believed */
    group_ids *groups;              /* which groups exist (group_ids.h); shared by the workers */
    audit_client *audit;            /* mTLS channel to the audit server; NULL: audit is off */
    threat_signal *threats;         /* failure ratio per group, rate per address; NULL if off */
    audit_sampler *sampler;         /* which activations are audited; NULL if off */
    char outbox_max[24];            /* --audit-outbox-max, formatted for the policy script */
    verify_pool *verifier;          /* threads that wait for online audits; NULL if audit is off */
    order_keyring *order_keys;      /* --order-public-key: the vendor's order keys (may be empty) */
    bool on_premises;               /* --on-premises: licenses signed by the key orders delegate */
    int order_refresh_ms;           /* --group-refresh-ms, for each worker's order cache */
    struct order_gauges *order_gauges; /* pa_order_* gauges and seat warnings, shared (order_gauges.h) */
    threat_counters *threat_counts;    /* the threat view's counts (threat_counters.h); NULL when off */
    replica_wait wait;                 /* --redis-wait-replicas: grants on replicas before the answer */
    bool batch_script; /* --batch-script: a batch's retail calls as one policy.lua call (activate_batch.c) */
    activation_metrics m;
} app;

typedef struct worker {
    int index;                      /* for logs */
    app *app;                       /* shared, read-only */
    rstore *redis;                  /* this worker's own connection */
    int script;                     /* policy.lua's index on that connection */
    int volume_script;              /* volume.lua's (volume_policy.h) */
    group_cache *groups;            /* groups this worker has seen */
    order_cache *orders;            /* the imported volume orders (order_cache.h) */
    struct rate_hold *holds;        /* callers Redis just rate-limited (rate_hold.h) */
    license_signer *signer;         /* this worker's signing context */
    threat_tally *tally;            /* this thread's threat counts; NULL when off */
    struct activate_batch *batch;   /* activate_batch.c's room for a batch, kept between batches */
    random_pool random;             /* the license ids' random parts, one RAND_bytes per pool */
} worker;

/* Who is calling: the client address (client_address.h) and its
 * rate-limit bucket key, worked out once per call. */
typedef struct caller {
    char ip[CLIENT_ADDRESS_MAX];
    char bucket[PA_RKEY_MAX];
} caller;

void caller_identify(const app *a, rpc_ctx *ctx, caller *c);

/* Registers every metric; call once before the server starts. */
void activation_metrics_init(activation_metrics *m);

void *worker_new(int index, void *app);
void worker_free(void *w);

void handle_activate(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply);
/* The calls of one batch (activate_batch.c, docs/batching.md). */
void handle_activate_batch(rpc_batch_call *calls, size_t n);
void activate_batch_free(struct activate_batch *b);
void handle_renew_batch(rpc_batch_call *calls, size_t n);
void handle_deactivate_batch(rpc_batch_call *calls, size_t n);
/* verify_pool_config.run: finishes an Activate deferred for its online
 * audit, on a pool thread whose state is a worker of its own. */
void activate_online_job(void *worker_state, void *job);
void handle_renew(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply);
void handle_deactivate(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply);
/* ListMachines and ReleaseMachine: self-service for a full key (machines.c). */
void handle_list_machines(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply);
void handle_release_machine(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply);

/* What checking a product key as Activate does (activate.c) says of it. */
typedef enum key_verdict {
    KEY_GENUINE, /* a retail or OEM key whose group exists and whose first value matches */
    KEY_VOLUME,  /* a genuine key of a volume order's group (the order manages its machines) */
    KEY_REFUSED, /* not genuine, held, or a store is away: the reply is set */
} key_verdict;
/* Checks `key` (decoded from `product_key`) from `who` exactly as Activate
 * does before its script (a rate hold, the group, the first security value
 * in constant time; a key that is not genuine costs the same failure
 * tokens), for calls authorised by the product key alone. `event` names
 * the log line of a refusal. */
key_verdict activate_check_key(worker *w, rpc_ctx *ctx, const pk_fields *key, const char *product_key,
                               const caller *who, const char *event, rpc_reply *reply);

/* volume.v1.Usage/Report (usage_service.c). */
void handle_usage_report(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply);

/* Counts a refusal's Redis error or rate limit in the metrics. */
void note_policy_refusal(activation_metrics *m, const policy_result *p);

/* The status and message for a policy result that is not OK. */
void reply_policy_refusal(rpc_reply *reply, const policy_result *p);

#endif
