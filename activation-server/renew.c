/* renew.c -- Renew and Deactivate: calls that name an existing place by its
 * license id (group + serial + random, so no index is needed) and the
 * machine that holds it. Each is one policy.lua call, made before anything
 * else is looked at: the script takes the address token first, so a license
 * id of a group that does not exist, one with the wrong random part and one
 * the server never issued all read the same (NOT_FOUND, same cost) and are
 * all rate-limited alike; ids cannot be guessed from a group and serial, and
 * groups cannot be discovered through these calls. Only a granted Renew
 * reads the group record (for the license), from the worker's cache.
 *
 * The ids are not secret, though: they are in the license file. So each
 * call must also prove it holds the place key the place was bound to at
 * Activate (activation.proto, "Proof of possession"): the signature and its
 * timestamp are checked here before Redis (proof_check.c), and the script
 * checks that the key is the place's. A copied license file without the
 * installer's private key gets UNAUTHENTICATED.
 *
 * A license of a volume key (its group belongs to an imported order) is
 * renewed or deactivated the volume way (activate_volume.h), after the
 * same rate hold and proof check; its Renew (a concurrent order's
 * heartbeat) goes through the same stages as a retail one, volume.lua in
 * place of policy.lua, so a batch pipelines and signs both together.
 *
 * Both are cut into stages (renew_stages.h) that a batch of calls goes
 * through together (renew_batch.c, deactivate_batch.c).
 *
 * Renew's refusals are counted by reason in pa_renewals_refused_total, with
 * the labels of pa_activations_refused_total (worker.c); a lapsed lease
 * (lease_expired) and a revoked key (revoked) are told apart there as on the
 * wire. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "activate_volume.h"
#include "activation/v1/activation.pb-c.h"
#include "license_grant.h"
#include "log.h"
#include "proof_check.h"
#include "rate_hold.h"
#include "renew_stages.h"
#include "server.h"
#include "validate.h"

/* Counts a refusal in `family` (pa_renewals_refused_total's counters), or
 * nowhere when NULL (Deactivate). */
static void count(metric *const *family, refusal why) {
    if (family && family[why]) metric_inc(family[why]);
}

/* Parses the request's license reference; on failure the reply is set. */
static bool license_ref(rpc_reply *reply, metric *const *family, const ProtobufCMessageDescriptor *d,
                        const uint8_t *req, size_t len, const char *license_id, const ProtobufCBinaryData *machine_id,
                        uint32_t *group, uint32_t *serial, uint8_t random[LICENSE_RANDOM_LEN]) {
    char msg[200];
    if (validate_strings_have_no_nul(d, req, len, msg, sizeof msg) &&
        validate_license_ref(license_id, machine_id, group, serial, random, msg, sizeof msg))
        return true;
    rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
    count(family, REFUSED_INVALID_REQUEST);
    return false;
}

static refusal refusal_of(policy_status s) {
    switch (s) {
    case POLICY_RATE_LIMITED: return REFUSED_RATE_LIMITED;
    case POLICY_REVOKED: return REFUSED_REVOKED;
    case POLICY_UNKNOWN_GROUP:
    case POLICY_NOT_FOUND: return REFUSED_NOT_FOUND;
    case POLICY_EXPIRED: return REFUSED_LEASE_EXPIRED;
    case POLICY_WRONG_KEY: return REFUSED_BAD_PROOF;
    case POLICY_UNAVAILABLE: return REFUSED_UNAVAILABLE;
    default: return REFUSED_INTERNAL;
    }
}

static void refused(worker *w, rpc_reply *reply, metric *const *family, const char *event, const policy_result *p,
                    uint32_t group, uint32_t serial) {
    reply_policy_refusal(reply, p);
    note_policy_refusal(&w->app->m, p);
    count(family, refusal_of(p->status));
    if (p->status == POLICY_UNAVAILABLE) {
        log_warn(event, LOG_U("group", group), LOG_U("serial", serial), LOG_S("reason", p->error),
                 LOG_END);
        return;
    }
    /* Anyone can make these up by the thousand: a throttled caller, or a
     * license id of a group that does not exist (version 0), is routine. */
    bool routine = p->status == POLICY_RATE_LIMITED || (p->status == POLICY_NOT_FOUND && p->version == 0);
    log_emit(routine ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, event, LOG_U("group", group), LOG_U("serial", serial),
             LOG_S("reason", policy_status_name(p->status)), LOG_END);
}

/* A refused proof, once the reject call has answered `p`: a caller out
 * of failure tokens is RATE_LIMITED; otherwise (charged, or Redis away) the
 * proof is refused all the same. */
static void proof_refused(worker *w, rpc_ctx *ctx, rpc_reply *reply, metric *const *family, const char *event,
                          const proof_refusal *pr, const policy_result *p, uint32_t group, uint32_t serial) {
    if (p->status == POLICY_RATE_LIMITED) {
        refused(w, reply, family, event, p, group, serial);
        return;
    }
    rpc_reply_error(reply, GRPC_STATUS_UNAUTHENTICATED, "%s", pr->msg);
    reply->reason = proof_reason(pr->v);
    reply->hold = true; /* charged as not genuine, held as one */
    count(family, REFUSED_BAD_PROOF);
    log_info(event, LOG_U("group", group), LOG_U("serial", serial),
             LOG_S("reason", pr->v == PROOF_STALE ? "proof_stale" : "proof_invalid"), LOG_S("peer", rpc_ctx_peer(ctx)),
             LOG_END);
}

/* The request's proof that it holds the place key, checked without Redis;
 * `holder` gets the key's digest for the script. A refused proof costs the
 * client address failure tokens, as a key that is not genuine does
 * (policy_reject): a flood of bad signatures slows to the refill rate.
 * With `defer`, a refused proof is left there (pending) for the caller to
 * make the reject call, pipelined with others; without, the reject call is
 * made here and the reply set. False when refused. */
static bool proven(worker *w, rpc_ctx *ctx, rpc_reply *reply, metric *const *family, const char *event,
                   const caller *who, const Activation__V1__PlaceProof *proof, place_op op, const char *license_id,
                   const uint8_t *machine_id, uint32_t group, uint32_t serial, uint8_t holder[PLACE_KEY_DIGEST_LEN],
                   proof_refusal *defer) {
    proof_refusal local;
    proof_refusal *pr = defer ? defer : &local;
    pr->v = proof_check(proof, op, license_id, machine_id, (int64_t)time(NULL), holder, pr->msg, sizeof pr->msg);
    if (pr->v == PROOF_OK) return true;
    pr->pending = defer != NULL;
    if (defer) return false;
    policy_result p;
    policy_reject(w->redis, w->script, &w->app->limits, who->bucket, group, &p);
    rate_hold_note(w->holds, who->bucket, group, &p);
    proof_refused(w, ctx, reply, family, event, pr, &p, group, serial);
    return false;
}

/* The license's key is a volume key: its order, or NULL for a retail key.
 * False when the orders cannot be read (the reply is set). */
static bool order_of(worker *w, rpc_reply *reply, metric *const *family, const char *event, uint32_t group,
                     uint32_t serial, const order_record **o) {
    *o = NULL;
    order_lookup found = order_cache_for_group(w->orders, group, o);
    if (found == ORDER_FOUND) return true;
    *o = NULL;
    if (found == ORDER_NONE) return true;
    policy_result p = {.status = POLICY_UNAVAILABLE};
    snprintf(p.error, sizeof p.error, "order of group %u: unreadable", (unsigned)group);
    refused(w, reply, family, event, &p, group, serial);
    return false;
}

/* The caller's deadline passed, before we began or while we waited (on
 * Redis): do no more work for it. */
static bool deadline_passed(rpc_ctx *ctx, rpc_reply *reply, metric *const *family) {
    if (rpc_ctx_remaining_ms(ctx) > 0) return false;
    rpc_reply_error(reply, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
    count(family, REFUSED_DEADLINE);
    return true;
}

/* Rate limits come first: a caller Redis has just throttled is refused
 * before anything else is done for it (rate_hold.h); otherwise the script
 * takes the address token before it looks at the group or the place. A
 * group that does not exist and a place that does not answer the same. */
static bool held(worker *w, rpc_reply *reply, metric *const *family, const char *event, const caller *who,
                 uint32_t group, uint32_t serial) {
    policy_result p;
    if (!rate_hold_check(w->holds, who->bucket, false, 0, &p)) return false;
    refused(w, reply, family, event, &p, group, serial);
    return true;
}

/* What Renew and Deactivate check alike before the place is touched: the
 * license reference, a hold on the caller, the proof of the place key and
 * whether the key belongs to a volume order. False when refused (the reply
 * is set). */
static bool admit(worker *w, rpc_ctx *ctx, rpc_reply *reply, metric *const *family, const char *event,
                  const ProtobufCMessageDescriptor *d, const uint8_t *req, size_t len, const char *license_id,
                  const ProtobufCBinaryData *machine_id, const Activation__V1__PlaceProof *proof, place_op op,
                  place_call *pc, proof_refusal *defer) {
    if (!license_ref(reply, family, d, req, len, license_id, machine_id, &pc->group, &pc->serial, pc->random))
        return false;
    caller_identify(w->app, ctx, &pc->who);
    return !held(w, reply, family, event, &pc->who, pc->group, pc->serial) &&
           proven(w, ctx, reply, family, event, &pc->who, proof, op, license_id, machine_id->data, pc->group,
                  pc->serial, pc->holder, defer) &&
           order_of(w, reply, family, event, pc->group, pc->serial, &pc->order);
}

bool renew_front(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply, renew_call *c) {
    worker *w = rpc_ctx_worker(ctx);
    *c = (renew_call){.w = w, .ctx = ctx, .reply = reply};
    metric *const *counted = w->app->m.renew_refused;
    if (deadline_passed(ctx, reply, counted)) return false;

    /* 1. Decode the request and its license reference. */
    c->rq = activation__v1__renew_request__unpack(NULL, len, req);
    if (!c->rq) {
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                        "request: not a valid activation.v1.RenewRequest message");
        count(counted, REFUSED_INVALID_REQUEST);
        return false;
    }
    Activation__V1__RenewRequest *rq = c->rq;
    place_call *pc = &c->pc;
    if (!admit(w, ctx, reply, counted, "renew.refused", &activation__v1__renew_request__descriptor, req, len,
               rq->license_id, &rq->machine_id, rq->proof, PLACE_OP_RENEW, pc, &c->bad_proof))
        return c->bad_proof.pending; /* its reject call is still to make */
    if (pc->order) {                 /* the volume way: volume.lua in place of policy.lua */
        c->volume = true;
        c->vol = (volume_renewal){.license_id = rq->license_id,
                                  .machine_id = rq->machine_id.data,
                                  .group = pc->group,
                                  .serial = pc->serial,
                                  .random = pc->random,
                                  .holder = pc->holder,
                                  .who = &pc->who};
        volume_renewal_begin(&c->vol, pc->order);
    }
    return true;
}

/* 2. One round trip: rate limit, group, revocation, lease, the place and
 *    its key; or, for a refused proof, the reject call that charges it. */
void renew_script(renew_call *c) {
    worker *w = c->w;
    const place_call *pc = &c->pc;
    if (c->volume) {
        volume_renewal_script(w, &c->vol);
        return;
    }
    const char *bucket = c->address_taken ? NULL : pc->who.bucket;
    if (c->bad_proof.pending) {
        policy_reject(w->redis, w->script, &w->app->limits, bucket, pc->group, &c->p);
        return;
    }
    policy_renew(w->redis, w->script, &w->app->limits, pc->group, pc->serial, c->rq->machine_id.data, pc->holder,
                 pc->random, bucket, pc->who.ip, &c->p);
}

int renew_append(renew_call *c) {
    worker *w = c->w;
    const place_call *pc = &c->pc;
    if (c->volume) return volume_renewal_append(w, &c->vol);
    const char *bucket = c->address_taken ? NULL : pc->who.bucket;
    if (c->bad_proof.pending) return policy_reject_append(w->redis, w->script, &w->app->limits, bucket, pc->group);
    return policy_renew_append(w->redis, w->script, &w->app->limits, pc->group, pc->serial, c->rq->machine_id.data,
                               pc->holder, pc->random, bucket, pc->who.ip);
}

bool renew_read(renew_call *c) {
    if (c->volume) return volume_renewal_read(c->w, &c->vol);
    return c->bad_proof.pending ? policy_reject_read(c->w->redis, &c->p) : policy_renew_read(c->w->redis, &c->p);
}

bool renew_back_check(renew_call *c) {
    worker *w = c->w;
    if (c->volume) return volume_renewal_check(w, c->ctx, &c->vol, c->reply);
    metric *const *counted = w->app->m.renew_refused;
    uint32_t group = c->pc.group, serial = c->pc.serial;
    rate_hold_note(w->holds, c->pc.who.bucket, group, &c->p);
    if (c->bad_proof.pending) {
        proof_refused(w, c->ctx, c->reply, counted, "renew.refused", &c->bad_proof, &c->p, group, serial);
        return false;
    }
    if (c->p.status != POLICY_OK) {
        refused(w, c->reply, counted, "renew.refused", &c->p, group, serial);
        return false;
    }
    /* The renewal is recorded; a caller that gave up meanwhile renews again
     * (the same place, a fresh lease). */
    if (deadline_passed(c->ctx, c->reply, counted)) return false;

    /* 3. The group's record for the license's product fields: cached, or
     *    read once if this worker has none of this version. */
    if (group_cache_check_version(w->groups, group, c->p.version, &c->g) != GROUP_FOUND) {
        c->p.status = POLICY_UNAVAILABLE;
        snprintf(c->p.error, sizeof c->p.error, "group record: %s", rstore_error(w->redis));
        refused(w, c->reply, counted, "renew.refused", &c->p, group, serial);
        return false;
    }
    return true;
}

bool renew_terms(renew_call *c, license_terms *t) {
    if (c->volume) return volume_renewal_terms(c->w, &c->vol, t);
    if (group_cache_get(c->w->groups, c->pc.group, &c->g) != GROUP_FOUND) return false;
    license_grant_terms(c->g, c->rq->license_id, c->rq->machine_id.data, c->pc.group, c->pc.serial, &c->p, t);
    return true;
}

/* 4. A fresh signed license with the new lease. */
void renew_answer(renew_call *c, signed_license *sl) {
    if (!sl) {
        rpc_reply_error(c->reply, GRPC_STATUS_INTERNAL, "license signing failed");
        count(c->w->app->m.renew_refused, REFUSED_INTERNAL);
        return;
    }
    if (c->volume) {
        volume_renewal_answer(c->w, c->ctx, &c->vol, sl, c->reply);
        return;
    }
    Activation__V1__RenewResponse resp = ACTIVATION__V1__RENEW_RESPONSE__INIT;
    LICENSE_GRANT_FILL(&resp, sl, c->w->signer, &c->p);
    if (rpc_reply_message(c->reply, &resp.base) == 0)
        log_info("renew.granted", LOG_U("group", c->pc.group), LOG_U("serial", c->pc.serial),
                 LOG_I("expires_at", c->p.expires_at), LOG_S("peer", rpc_ctx_peer(c->ctx)), LOG_END);
}

void renew_back(renew_call *c) {
    if (!renew_back_check(c)) return;
    signed_license sl;
    license_terms t; /* a volume license: the order's terms */
    bool ok = c->volume ? renew_terms(c, &t) && license_issue(c->w->signer, &t, &sl) == 0
                        : license_grant_sign(c->w->signer, c->g, c->rq->license_id, c->rq->machine_id.data, c->pc.group,
                                             c->pc.serial, &c->p, &sl) == 0;
    renew_answer(c, ok ? &sl : NULL);
}

void renew_call_end(renew_call *c) {
    if (c->rq) activation__v1__renew_request__free_unpacked(c->rq, NULL);
    c->rq = NULL;
}

void handle_renew(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    renew_call c;
    if (renew_front(ctx, req, len, reply, &c)) {
        renew_script(&c);
        renew_back(&c);
    }
    renew_call_end(&c);
}

bool deactivate_front(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply, deactivate_call *c) {
    worker *w = rpc_ctx_worker(ctx);
    *c = (deactivate_call){.w = w, .ctx = ctx, .reply = reply};
    if (deadline_passed(ctx, reply, NULL)) return false;

    /* 1. Decode the request and its license reference. */
    c->rq = activation__v1__deactivate_request__unpack(NULL, len, req);
    if (!c->rq) {
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                        "request: not a valid activation.v1.DeactivateRequest message");
        return false;
    }
    Activation__V1__DeactivateRequest *rq = c->rq;
    place_call *pc = &c->pc;
    if (!admit(w, ctx, reply, NULL, "deactivate.refused", &activation__v1__deactivate_request__descriptor, req, len,
               rq->license_id, &rq->machine_id, rq->proof, PLACE_OP_DEACTIVATE, pc, &c->bad_proof))
        return c->bad_proof.pending; /* its reject call is still to make */
    if (pc->order) {                 /* the volume way: volume.lua in place of policy.lua */
        c->volume = true;
        c->vol = (volume_deactivating){.machine_id = rq->machine_id.data,
                                       .group = pc->group,
                                       .serial = pc->serial,
                                       .random = pc->random,
                                       .holder = pc->holder,
                                       .who = &pc->who};
        volume_deactivating_begin(&c->vol, pc->order);
    }
    return true;
}

/* 2. One round trip: rate limit, then free the place if it and its key
 *    match; or, for a refused proof, the reject call that charges it. */
void deactivate_script(deactivate_call *c) {
    worker *w = c->w;
    const place_call *pc = &c->pc;
    if (c->volume) {
        volume_deactivating_script(w, &c->vol);
        return;
    }
    const char *bucket = c->address_taken ? NULL : pc->who.bucket;
    if (c->bad_proof.pending) {
        policy_reject(w->redis, w->script, &w->app->limits, bucket, pc->group, &c->p);
        return;
    }
    policy_deactivate(w->redis, w->script, &w->app->limits, pc->group, pc->serial, c->rq->machine_id.data, pc->holder,
                      pc->random, bucket, pc->who.ip, &c->p);
}

int deactivate_append(deactivate_call *c) {
    worker *w = c->w;
    const place_call *pc = &c->pc;
    if (c->volume) return volume_deactivating_append(w, &c->vol);
    const char *bucket = c->address_taken ? NULL : pc->who.bucket;
    if (c->bad_proof.pending) return policy_reject_append(w->redis, w->script, &w->app->limits, bucket, pc->group);
    return policy_deactivate_append(w->redis, w->script, &w->app->limits, pc->group, pc->serial, c->rq->machine_id.data,
                                    pc->holder, pc->random, bucket, pc->who.ip);
}

bool deactivate_read(deactivate_call *c) {
    if (c->volume) return volume_deactivating_read(c->w, &c->vol);
    return c->bad_proof.pending ? policy_reject_read(c->w->redis, &c->p) : policy_deactivate_read(c->w->redis, &c->p);
}

/* 3. The answer: the place freed (and how many machines now count), or why not. */
void deactivate_back(deactivate_call *c) {
    worker *w = c->w;
    if (c->volume) {
        volume_deactivating_answer(w, c->ctx, &c->vol, c->reply);
        return;
    }
    uint32_t group = c->pc.group, serial = c->pc.serial;
    rate_hold_note(w->holds, c->pc.who.bucket, group, &c->p);
    if (c->bad_proof.pending) {
        proof_refused(w, c->ctx, c->reply, NULL, "deactivate.refused", &c->bad_proof, &c->p, group, serial);
        return;
    }
    if (c->p.status != POLICY_OK) {
        refused(w, c->reply, NULL, "deactivate.refused", &c->p, group, serial);
        return;
    }
    Activation__V1__DeactivateResponse resp = ACTIVATION__V1__DEACTIVATE_RESPONSE__INIT;
    resp.activation_count = c->p.count;
    if (rpc_reply_message(c->reply, &resp.base) == 0)
        log_info("deactivate.done", LOG_U("group", group), LOG_U("serial", serial), LOG_U("count", c->p.count),
                 LOG_S("peer", rpc_ctx_peer(c->ctx)), LOG_END);
}

void deactivate_call_end(deactivate_call *c) {
    if (c->rq) activation__v1__deactivate_request__free_unpacked(c->rq, NULL);
    c->rq = NULL;
}

void handle_deactivate(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    deactivate_call c;
    if (deactivate_front(ctx, req, len, reply, &c)) {
        deactivate_script(&c);
        deactivate_back(&c);
    }
    deactivate_call_end(&c);
}
