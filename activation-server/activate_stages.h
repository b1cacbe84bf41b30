/* activate_stages.h -- the Activate call cut into the stages a batch of
 * calls goes through together (docs/batching.md, activate_batch.c).
 *
 * The single call (handle_activate) and the batch run the same code:
 *   activate_front   steps 0-4 of activate.c: decode, rate hold, key check,
 *                    audit plan (a volume key: also the order's dates,
 *                    state and platform); true when the call now waits for
 *                    its script: policy.lua, or volume.lua for a volume key
 *                    (c->volume; on-premises keys too), or, its first value
 *                    wrong, its reject call. Every other call is answered
 *                    (or deferred to the online-audit pool) inside, exactly
 *                    as a single call;
 *   activate_script  the script call by itself (one round trip), or
 *   activate_append  the same call appended to the worker's pipeline, its
 *                    reply then read by activate_read (false: NOSCRIPT). A
 *                    key whose first value is wrong waits too: its script
 *                    is the reject call that spends the failure tokens
 *                    (c->rejecting), answered by the back stage;
 *   activate_batch_add  a retail call's script (activate or reject) added
 *                    to the batch's one policy.lua call instead
 *                    (policy_batch, single node; -1: a volume call, or it
 *                    could not be added: run it by itself);
 *   activate_back    steps 5-7 on the script's answer in c->p: refusals,
 *                    group reload, the signed license, the answer; or, to
 *                    sign a batch's licenses together, in four parts:
 *     activate_back_check  steps 5-6 without the WAIT (false: answered; a
 *                          volume key's seat first, activate_volume.h),
 *     activate_wait_replicas  one WAIT for the calls still granted (a
 *                          shortfall answers them all UNAVAILABLE),
 *     activate_terms       the license's terms (false: the group is gone),
 *     activate_answer      the answer with the license signed in the batch
 *                          (NULL: signing failed, INTERNAL);
 *   activate_call_end  frees what the call holds (always, once). */
#ifndef PA_ACTIVATION_ACTIVATE_STAGES_H
#define PA_ACTIVATION_ACTIVATE_STAGES_H

#include <stdbool.h>
#include <stdint.h>

#include "activate_volume.h"
#include "activation/v1/activation.pb-c.h"
#include "license.h"
#include "server.h"

/* What auditing does to one activation (step 4). */
typedef struct audit_plan {
    audit_decision d;    /* the sampler's; mode NONE when audit is off */
    const char *how;     /* for the log: "none", "online", "offline", "offline-fallback" */
    audit_record rec;    /* the request as the audit server sees it, when sampled */
    policy_audit outbox; /* the script's outbox arguments; points at rec */
    bool to_outbox;      /* hand `outbox` to the script */
} audit_plan;

typedef enum audit_step {
    AUDIT_STEP_GO,        /* on to the script */
    AUDIT_STEP_FORGED,    /* online: the second value is wrong (now revoked) */
    AUDIT_STEP_DOWN,      /* online: no answer, and the group fails closed */
    AUDIT_STEP_NO_RANDOM, /* no randomness for the request id */
    AUDIT_STEP_VERIFY,    /* online: the audit server must be asked first */
} audit_step;

/* Stage boundaries of a granted call, in the order they are passed. */
enum { MARK_START, MARK_MAC, MARK_AUDIT, MARK_REDIS, MARK_RELOAD, MARK_SIGN, MARK_N };

/* One Activate between its stages. Must not move once activate_front has
 * run: the plan's outbox arguments point into it. */
typedef struct activate_call {
    worker *w;                                  /* the worker running it */
    rpc_ctx *ctx;                               /* the call */
    rpc_reply *reply;                           /* its answer */
    Activation__V1__ActivateRequest *rq;        /* decoded request; NULL when it did not decode */
    pk_fields key;                              /* the product key's fields */
    caller who;                                 /* client address and its rate-limit bucket */
    volume_ask ask;                             /* what the request says of the machine (the machine log) */
    const group_entry *g;                       /* the group's cached record (valid until the cache moves) */
    audit_plan plan;                            /* step 4's decision, with the outbox record */
    uint8_t holder[PLACE_KEY_DIGEST_LEN];       /* the place key's digest, when bound */
    const uint8_t *bound;                       /* holder, or NULL when the request sent no place key */
    uint8_t license_random[LICENSE_RANDOM_LEN]; /* the license id's random part, offered to the script */
    uint64_t t[MARK_N];                         /* stage marks, for pa_activate_stage_nanoseconds_total */
    policy_result p;                            /* the script's answer */
    char license_id[LICENSE_ID_LEN + 1];        /* activate_back_check's, for the terms */
    volume_seat seat;                           /* a volume key's seat between its stages */
    bool volume;                                /* a volume key: volume.lua in place of policy.lua */
    bool decided;                               /* volume: c->p was decided without the script */
    group_lookup found;                         /* step 2's lookup, for a reject's second look at the group */
    bool in_order;                              /* step 1 found the key's order: the volume way after the key check */
    bool rejecting;                             /* a wrong first value: its script is the reject call */
    bool waiting;                               /* batch: activate_front left it waiting for its script */
    bool again;                                 /* batch: its script must run by itself (NOSCRIPT, not written) */
    bool address_taken; /* Redis Cluster batch: address_take granted; the script runs without it */
    bool by_address;    /* Redis Cluster batch: address_take refused; c->p is the answer */
} activate_call;

bool activate_front(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply, activate_call *c);
void activate_script(activate_call *c);
int activate_append(activate_call *c);
bool activate_read(activate_call *c);
int activate_batch_add(activate_call *c, policy_batch *b);
void activate_back(activate_call *c);
bool activate_back_check(activate_call *c);
void activate_wait_replicas(activate_call *c, size_t n);
bool activate_terms(activate_call *c, license_terms *t);
void activate_answer(activate_call *c, signed_license *sl);
void activate_call_end(activate_call *c);

#endif
