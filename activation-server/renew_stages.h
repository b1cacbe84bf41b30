/* renew_stages.h -- the Renew call cut into the stages a batch of calls
 * goes through together (docs/batching.md, renew_batch.c), as
 * activate_stages.h cuts Activate; Deactivate below.
 *
 * The single call (handle_renew) and the batch run the same code:
 *   renew_front       decode, license reference, rate hold, proof of the
 *                     place key, volume order; true when the call now
 *                     waits for its policy script -- or, its proof
 *                     refused, for the reject call that charges the
 *                     caller failure tokens (c->bad_proof). A volume key
 *                     waits for volume.lua the same way (c->volume: a
 *                     concurrent order's heartbeat, activate_volume.h).
 *                     Every other call is answered inside;
 *   renew_script      the script call by itself (one round trip), or
 *   renew_append      the same call appended to the worker's pipeline, its
 *                     reply then read by renew_read into c->p;
 *   renew_back        the rest on the script's answer, or in three parts
 *                     to sign a batch's licenses together:
 *     renew_back_check  refusals (a refused proof's too), deadline, group
 *                       record (false: answered),
 *     renew_terms       the license's terms (false: the group is gone),
 *     renew_answer      the answer with the license signed in the batch
 *                       (NULL: signing failed, INTERNAL);
 *   renew_call_end    frees what the call holds (always, once). */
#ifndef PA_ACTIVATION_RENEW_STAGES_H
#define PA_ACTIVATION_RENEW_STAGES_H

#include <stdbool.h>
#include <stdint.h>

#include "activate_volume.h"
#include "activation/v1/activation.pb-c.h"
#include "license.h"
#include "proof_check.h"
#include "server.h"

/* The place a Renew or Deactivate names, once it is let in. */
typedef struct place_call {
    uint32_t group, serial;               /* from the license id */
    uint8_t random[LICENSE_RANDOM_LEN];   /* the license id's random part */
    uint8_t holder[PLACE_KEY_DIGEST_LEN]; /* the proven place key's digest */
    caller who;                           /* the client address and its bucket */
    const order_record *order;            /* a volume key's order; NULL for other keys */
} place_call;

/* A proof proof_check refused, waiting for the reject call that charges
 * the caller failure tokens (renew.c, "proven"). */
typedef struct proof_refusal {
    bool pending;    /* the reject call is still to make */
    proof_verdict v; /* why the proof was refused */
    char msg[256];   /* the error the caller gets */
} proof_refusal;

/* One Renew between its stages. */
typedef struct renew_call {
    worker *w;                        /* the worker running it */
    rpc_ctx *ctx;                     /* the call */
    rpc_reply *reply;                 /* its answer */
    Activation__V1__RenewRequest *rq; /* decoded request; NULL when it did not decode */
    place_call pc;                    /* the place it names, once admitted */
    proof_refusal bad_proof;          /* a refused proof, its reject call still to make */
    policy_result p;                  /* the script's answer */
    const group_entry *g;             /* the group's cached record (valid until the cache moves) */
    volume_renewal vol;               /* a volume key's renewal (a heartbeat) between its stages */
    bool volume;                      /* a volume key: volume.lua in place of policy.lua */
    bool waiting;                     /* batch: renew_front left it waiting for its script */
    bool again;                       /* batch: its script must run by itself (NOSCRIPT, not written) */
    bool address_taken;               /* Redis Cluster batch: address_take granted; the script runs without it */
    bool by_address;                  /* Redis Cluster batch: address_take refused; c->p is the answer */
} renew_call;

bool renew_front(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply, renew_call *c);
void renew_script(renew_call *c);
int renew_append(renew_call *c);
bool renew_read(renew_call *c);
void renew_back(renew_call *c);
bool renew_back_check(renew_call *c);
bool renew_terms(renew_call *c, license_terms *t);
void renew_answer(renew_call *c, signed_license *sl);
void renew_call_end(renew_call *c);

/* Deactivate is cut the same way (deactivate_batch.c), with one stage
 * less: no license to sign, so the script's answer is the whole answer.
 *   deactivate_front   decode, license reference, rate hold, proof of the
 *                      place key, volume order; true when the call waits
 *                      for its script (policy.lua's deactivate, or reject
 *                      for a refused proof; volume.lua's deactivate for a
 *                      volume key); every other call is answered inside;
 *   deactivate_script  the script by itself, or
 *   deactivate_append  the same appended to the worker's pipeline, its
 *                      reply read by deactivate_read;
 *   deactivate_back    the answer on the script's reply (the freed place,
 *                      or the refusal), with its log line;
 *   deactivate_call_end  frees what the call holds (always, once). */
typedef struct deactivate_call {
    worker *w;                             /* the worker running it */
    rpc_ctx *ctx;                          /* the call */
    rpc_reply *reply;                      /* its answer */
    Activation__V1__DeactivateRequest *rq; /* decoded request; NULL when it did not decode */
    place_call pc;                         /* the place it names, once admitted */
    proof_refusal bad_proof;               /* a refused proof, its reject call still to make */
    policy_result p;                       /* the script's answer */
    volume_deactivating vol;               /* a volume key's Deactivate between its stages */
    bool volume;                           /* a volume key: volume.lua in place of policy.lua */
    bool waiting;                          /* batch: deactivate_front left it waiting for its script */
    bool again;                            /* batch: its script must run by itself (NOSCRIPT, not written) */
    bool address_taken;                    /* Redis Cluster batch: address_take granted; the script runs without it */
    bool by_address;                       /* Redis Cluster batch: address_take refused; c->p is the answer */
} deactivate_call;

bool deactivate_front(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply, deactivate_call *c);
void deactivate_script(deactivate_call *c);
int deactivate_append(deactivate_call *c);
bool deactivate_read(deactivate_call *c);
void deactivate_back(deactivate_call *c);
void deactivate_call_end(deactivate_call *c);

#endif
