/* activate.c -- the Activate call (docs/activation-flow.md, "Activate").
 *
 * The handler reads like the flow it implements:
 *   0. skip calls whose deadline already passed;
 *   1. decode the request and the key again (never trust the client);
 *   1a. refuse at once a caller Redis has just rate-limited (rate_hold.h);
 *   2. whether the group exists is known in memory (group_ids.h); an existing
 *      group's verification record is in this worker's cache;
 *   3. check the first security value in process, in constant time, BEFORE
 *      touching Redis: an unknown group and a wrong value read the same,
 *      take the same time (a stand-in MAC for the unknown group, no Redis
 *      read) and both cost the client address failure tokens (one script
 *      call); a group created since the set was read is found by that call
 *      and the key checked again;
 *   4. decide whether to audit (audit_sampler: the group's base rate, raised
 *      by the threat signals) and, for a group with ONLINE audit, ask the
 *      audit server now, within --audit-verify-timeout-ms. That wait happens
 *      on a thread of the online-audit pool (verify_pool.h), not on this
 *      gRPC worker: the call is deferred, the pool thread finishes steps
 *      4-7 with its own worker state and answers, and this worker goes on
 *      with the next call, so a slow audit server never stalls groups that
 *      do not audit online. A forged key reads exactly like a wrong first
 *      value (same status, message and failure tokens: no oracle); the
 *      audit server has already revoked it. No answer in time (or no pool
 *      thread free): the group's audit_unreachable policy refuses with
 *      UNAVAILABLE (fail-closed) or falls back to the offline outbox;
 *   5. one Redis round trip (policy.lua): rate limits, revocation, the
 *      group's policy applied to the key's record (the place bound to the
 *      installer's place key, when it sent one; a place found by the
 *      machine's components re-bound to it, docs/machines.md), the optional offline-audit
 *      outbox record -- unless the outbox is at its cap, when the group's
 *      audit_outbox_full refuses (UNAVAILABLE) or grants unaudited;
 *   6. reload the cached group if the script saw a newer record version;
 *   7. build and sign the license (license_grant.c, shared with Renew).
 *
 * First activations on ONLINE groups are audited offline. Whether a call is
 * the key's first activation is known only inside the script (step 5), after
 * the point where an online verdict could still refuse it; asking the audit
 * server on every call that *might* be first would put a network call in
 * front of every activation of such a group. So a first-activation sample
 * (AUDIT_SAMPLE_IF_FIRST) always goes to the outbox, and a forged key found
 * that way is revoked within seconds instead of refused at once. Samples
 * drawn by the rate (base or raised) on online groups are verified online.
 *
 * Threat signals: every request counts for its client address; a request
 * for an existing group counts for that group, as a failure when its key is
 * not genuine or the online audit found it forged.
 *
 * Volume keys (a group that belongs to an imported order, docs/volume.md)
 * take these same steps to check the key -- on-premises the order's key
 * hashes instead of steps 2-4 -- and then the volume way
 * (activate_volume.h) in place of policy.lua in step 5, and the order's
 * terms in the license.
 *
 * Granted calls add their time per stage to pa_activate_stage_nanoseconds_total
 * so the benchmark can show where an activation's server time goes. */
#include <openssl/sha.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "activate_volume.h"
#include "activation/v1/activation.pb-c.h"
#include "clock.h"
#include "group_ids.h"
#include "hex.h"
#include "license_grant.h"
#include "log.h"
#include "rate_hold.h"
#include "redis_keys.h"
#include "server.h"
#include "validate.h"
#include "activate_stages.h"

/* A refusal decided before Redis: status, message, metric and a debug log
 * (the message names a field or a character, never the key). */
static void refuse(worker *w, rpc_reply *reply, refusal why, grpc_status_code code,
                   const char *msg) {
    rpc_reply_error(reply, code, "%s", msg);
    metric_inc(w->app->m.refused[why]);
    log_debug("activate.refused", LOG_S("reason", msg), LOG_END);
}

static refusal refusal_of(policy_status s) {
    switch (s) {
    case POLICY_RATE_LIMITED: return REFUSED_RATE_LIMITED;
    case POLICY_UNKNOWN_GROUP:
    case POLICY_NOT_GENUINE: return REFUSED_NOT_GENUINE;
    case POLICY_REVOKED: return REFUSED_REVOKED;
    case POLICY_NO_PLACE: return REFUSED_NO_PLACE;
    case POLICY_UNAVAILABLE: return REFUSED_UNAVAILABLE;
    default: return REFUSED_INTERNAL;
    }
}

/* The threat view's count (threat_counters.h), for groups that exist only:
 * made-up group IDs must not become keys. `address_key` is the caller's
 * rate-limit bucket; the count takes the address inside it. */
static void count_threat(worker *w, uint32_t group, threat_kind kind, const char *address_key) {
    if (!w->tally || !w->app->groups || !group_ids_known(w->app->groups, group)) return;
    char none[PA_RKEY_MAX];
    int prefix = address_key ? pa_rkey_address_bucket(none, sizeof none, "") : -1;
    bool inside = prefix >= 0 && strncmp(address_key, none, (size_t)prefix) == 0;
    threat_count(w->tally, group, kind, inside ? address_key + prefix : NULL);
}

/* A refusal decided by the script (or by Redis being away). */
static void refuse_by_policy(worker *w, rpc_ctx *ctx, rpc_reply *reply, const policy_result *p, const pk_fields *key,
                             const char *address_key) {
    reply_policy_refusal(reply, p);
    if (p->status == POLICY_NOT_GENUINE || p->status == POLICY_UNKNOWN_GROUP)
        count_threat(w, key->group, THREAT_NOT_GENUINE, address_key);
    else if (p->status == POLICY_RATE_LIMITED) count_threat(w, key->group, THREAT_RATE_LIMITED, address_key);
    else if (p->status == POLICY_NO_PLACE) count_threat(w, key->group, THREAT_MACHINE_LIMIT, NULL);
    metric_inc(w->app->m.refused[refusal_of(p->status)]);
    note_policy_refusal(&w->app->m, p);
    if (p->status == POLICY_UNAVAILABLE) {
        log_warn("activate.unavailable", LOG_U("group", key->group), LOG_U("serial", key->serial),
                 LOG_S("reason", p->error), LOG_END);
        return;
    }
    bool routine = p->status == POLICY_NOT_GENUINE || p->status == POLICY_RATE_LIMITED;
    log_emit(routine ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, "activate.refused",
             LOG_S("reason", policy_status_name(p->status)), LOG_U("group", key->group),
             LOG_U("serial", key->serial), LOG_S("peer", rpc_ctx_peer(ctx)), LOG_END);
}

/* Not genuine: an unknown group, a wrong first value, or a key the online
 * audit found forged. All read the same and take the client address's
 * failure tokens (one script call), so no answer tells them apart. The
 * script's answer is in *p (it also says whether the group exists). */
static void reject(worker *w, const char *address_key, const pk_fields *key, policy_result *p) {
    policy_reject(w->redis, w->script, &w->app->limits, address_key, key->group, p);
    rate_hold_note(w->holds, address_key, key->group, p);
}

static void refuse_not_genuine(worker *w, rpc_ctx *ctx, rpc_reply *reply, const char *address_key,
                               const pk_fields *key) {
    policy_result p;
    reject(w, address_key, key, &p);
    refuse_by_policy(w, ctx, reply, &p, key, address_key);
}

/* The caller's deadline passed, before we began or while we worked (a slow
 * group load, a slow audit server): stop before granting a place nobody
 * would receive. */
static bool caller_gone(worker *w, rpc_ctx *ctx, rpc_reply *reply) {
    if (rpc_ctx_remaining_ms(ctx) > 0) return false;
    refuse(w, reply, REFUSED_DEADLINE, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
    return true;
}

/* One online Verify within timeout_ms (none when it is used up), counted and logged. */
static audit_verify_result verify_online(worker *w, const group_entry *g, const audit_plan *plan, int timeout_ms) {
    activation_metrics *m = &w->app->m;
    const pk_fields *key = &plan->rec.key;
    char detail[200] = "no online-audit thread was free within --audit-verify-timeout-ms";
    audit_verify_result v =
        timeout_ms > 0 ? audit_client_verify_within(w->app->audit, &plan->rec, timeout_ms, detail, sizeof detail)
                       : AUDIT_VERIFY_UNAVAILABLE;
    if (v == AUDIT_VERIFY_GENUINE) {
        metric_inc(m->audit_online[AUDIT_ONLINE_GENUINE]);
    } else if (v == AUDIT_VERIFY_FORGED) {
        metric_inc(m->audit_online[AUDIT_ONLINE_FORGED]);
        log_warn("activate.forged", LOG_U("group", key->group), LOG_U("serial", key->serial),
                 LOG_S("audit_reason", plan->rec.sample_reason),
                 LOG_S("audit_request_id", plan->rec.request_id),
                 LOG_S("peer", plan->rec.client_address), LOG_END);
    } else {
        metric_inc(m->audit_online[AUDIT_ONLINE_UNAVAILABLE]);
        bool fallback = g->rec.policy.on_audit_down == AUDIT_UNREACHABLE_OFFLINE;
        log_warn("activate.audit_unavailable", LOG_U("group", key->group),
                 LOG_U("serial", key->serial), LOG_S("error", detail),
                 LOG_S("then", fallback ? "offline-fallback" : "fail-closed"), LOG_END);
    }
    return v;
}

/* A sample goes to the outbox with the script. Call this on the plan where
 * it stays: the script's arguments point into it. */
static void plan_outbox(const app *a, const group_entry *g, audit_plan *plan) {
    plan->outbox = (policy_audit){.mode = (int)plan->d.mode,
                                  .rec = &plan->rec,
                                  .outbox_max = a->outbox_max,
                                  .grant_when_full = g->rec.policy.on_outbox_full == AUDIT_OUTBOX_FULL_GRANT};
    plan->to_outbox = true;
}

/* Step 4: is this activation audited, and how? Online groups verify a
 * sample first (AUDIT_STEP_VERIFY, then verdict_step); everything else
 * sampled goes to the outbox with the script. */
static audit_step plan_audit(worker *w, const group_entry *g, const pk_fields *key, const uint8_t *machine_id,
                             const caller *who, audit_plan *plan) {
    app *a = w->app;
    plan->d = (audit_decision){AUDIT_SAMPLE_NONE, AUDIT_REASON_NONE, 0};
    plan->how = "none";
    plan->to_outbox = false;
    if (!a->sampler) return AUDIT_STEP_GO;
    plan->d = audit_sampler_decide(a->sampler, key->group, &g->rec.policy, who->bucket);
    if (plan->d.mode == AUDIT_SAMPLE_NONE) return AUDIT_STEP_GO;
    if (audit_record_init(&plan->rec, key, machine_id, who->ip, audit_reason_name(plan->d.reason)) != 0)
        return AUDIT_STEP_NO_RANDOM;
    plan->how = "offline";
    /* First-activation samples stay offline, even on online groups (see the top). */
    if (g->rec.policy.audit == AUDIT_MODE_ONLINE && plan->d.mode == AUDIT_SAMPLE_ALWAYS) return AUDIT_STEP_VERIFY;
    plan_outbox(a, g, plan);
    return AUDIT_STEP_GO;
}

/* The online verdict as a step: genuine goes on, forged is refused, no
 * answer is the group's audit_unreachable (fail closed, or the outbox). */
static audit_step verdict_step(worker *w, const group_entry *g, audit_plan *plan, audit_verify_result v) {
    if (v == AUDIT_VERIFY_GENUINE) {
        plan->how = "online";
        return AUDIT_STEP_GO;
    }
    if (v == AUDIT_VERIFY_FORGED) return AUDIT_STEP_FORGED;
    if (g->rec.policy.on_audit_down != AUDIT_UNREACHABLE_OFFLINE) return AUDIT_STEP_DOWN;
    metric_inc(w->app->m.audit_fallback);
    plan->how = "offline-fallback";
    plan_outbox(w->app, g, plan);
    return AUDIT_STEP_GO;
}

/* A sample that met the outbox at its cap (--audit-outbox-max): refused
 * (the group fails closed) or granted unaudited; counted and logged either
 * way, since an unaudited grant is exactly what an attacker who can slow
 * the audit server would be after. */
static void note_outbox_full(worker *w, const pk_fields *key, const audit_plan *plan, bool granted) {
    metric_inc(w->app->m.audit_outbox_full[granted ? 1 : 0]);
    log_warn(granted ? "activate.unaudited" : "activate.audit_outbox_full", LOG_U("group", key->group),
             LOG_U("serial", key->serial), LOG_S("audit_reason", audit_reason_name(plan->d.reason)),
             LOG_S("why", "the offline-audit outbox is at its cap (--audit-outbox-max)"),
             LOG_S("then", granted ? "granted unaudited" : "refused"), LOG_END);
}

static void count_stages(activation_metrics *m, const uint64_t t[MARK_N]) {
    metric_add(m->stage_ns[STAGE_DECODE_MAC], t[MARK_MAC] - t[MARK_START]);
    metric_add(m->stage_ns[STAGE_AUDIT], t[MARK_AUDIT] - t[MARK_MAC]);
    metric_add(m->stage_ns[STAGE_REDIS], t[MARK_REDIS] - t[MARK_AUDIT]);
    metric_add(m->stage_ns[STAGE_SIGN], t[MARK_SIGN] - t[MARK_RELOAD]);
    metric_add(m->stage_ns[STAGE_TOTAL], pa_mono_ns() - t[MARK_START]);
    metric_inc(m->stage_calls);
}

/* Step 1: the request and its key, decoded and validated. NULL when either
 * is bad, with the reply set (and the request freed). */
static Activation__V1__ActivateRequest *decode_request(worker *w, rpc_reply *reply,
                                                       const uint8_t *req, size_t len,
                                                       pk_fields *key) {
    Activation__V1__ActivateRequest *rq = activation__v1__activate_request__unpack(NULL, len, req);
    if (!rq) {
        refuse(w, reply, REFUSED_INVALID_REQUEST, GRPC_STATUS_INVALID_ARGUMENT,
               "request: not a valid activation.v1.ActivateRequest message");
        return NULL;
    }
    pk_status key_status = PK_OK;
    char msg[256];
    if (validate_strings_have_no_nul(&activation__v1__activate_request__descriptor, req, len, msg, sizeof msg) &&
        validate_activate(rq, key, &key_status, msg, sizeof msg))
        return rq;
    refuse(w, reply, key_status == PK_OK ? REFUSED_INVALID_REQUEST : REFUSED_INVALID_KEY,
           GRPC_STATUS_INVALID_ARGUMENT, msg);
    activation__v1__activate_request__free_unpacked(rq, NULL);
    return NULL;
}

/* Step 3: the group exists, allows the key's kind, and the first security
 * value matches (constant time). The MAC is computed in every case, with a
 * random-secret stand-in for a group that does not exist, so a made-up
 * group costs the time of a real one. */
static bool first_value_genuine(worker *w, group_lookup found, const group_entry *g, const pk_fields *key) {
    bool known = found == GROUP_FOUND;
    bool mac_ok = mac_security_check(known ? g->first : group_cache_decoy(w->groups), MAC_ROLE_FIRST, key->group,
                                     key->serial, key->upgrade, key->security_first);
    return known && (!key->upgrade || g->rec.upgrade_allowed) && mac_ok;
}

/* A key refused as not genuine although its group exists in Redis: the
 * group was created after this process last read the list of groups
 * (group_ids.h). Learn it and check the key again. True (with *g) when the
 * key is genuine after all; otherwise *p stays the refusal to send, or
 * becomes UNAVAILABLE when the new group's record cannot be read. */
static bool genuine_in_new_group(worker *w, const pk_fields *key, group_lookup found, policy_result *p,
                                 const group_entry **g) {
    if (found == GROUP_FOUND || p->status != POLICY_NOT_GENUINE || !p->group_exists) return false;
    group_lookup again = group_cache_learn(w->groups, key->group, g);
    if (again == GROUP_UNAVAILABLE) {
        p->status = POLICY_UNAVAILABLE;
        snprintf(p->error, sizeof p->error, "group record: %s", rstore_error(w->redis));
        return false;
    }
    return first_value_genuine(w, again, *g, key);
}

/* Step 4's outcomes other than GO, as refusals. Returns true when refused. */
static bool refuse_audit_step(worker *w, rpc_ctx *ctx, rpc_reply *reply, audit_step step,
                              const char *address_key, const pk_fields *key) {
    switch (step) {
    case AUDIT_STEP_GO: return false;
    case AUDIT_STEP_FORGED: refuse_not_genuine(w, ctx, reply, address_key, key); return true;
    case AUDIT_STEP_DOWN:
        refuse(w, reply, REFUSED_AUDIT_UNAVAILABLE, GRPC_STATUS_UNAVAILABLE,
               "the audit server is unavailable; retry later");
        return true;
    default:
        refuse(w, reply, REFUSED_INTERNAL, GRPC_STATUS_INTERNAL, "no randomness available");
        return true;
    }
}

/* The granted call, counted and logged with its audit decision. */
static void note_granted(worker *w, rpc_ctx *ctx, const pk_fields *key, const policy_result *p,
                         const audit_plan *plan) {
    /* An if-first sample that was not the first activation was not audited. */
    bool audited = plan->to_outbox ? p->audited : plan->d.mode != AUDIT_SAMPLE_NONE;
    metric_inc(p->again ? w->app->m.granted_again : w->app->m.granted_new);
    count_threat(w, key->group, THREAT_GRANT, NULL);
    log_info("activate.granted", LOG_U("group", key->group), LOG_U("serial", key->serial),
             LOG_U("count", p->count), LOG_B("again", p->again),
             LOG_S("audit", audited ? plan->how : "none"),
             LOG_S("audit_reason", audit_reason_name(audited ? plan->d.reason : AUDIT_REASON_NONE)),
             LOG_S("audit_request_id", audited ? plan->rec.request_id : ""),
             LOG_S("peer", rpc_ctx_peer(ctx)), LOG_END);
}

/* A place found by its components moved to this machine (policy.lua): the
 * log names both places by their digests' first 4 bytes, nothing secret. */
static void note_rebound(worker *w, const pk_fields *key, const policy_result *p, const uint8_t *machine_id) {
    uint8_t d[SHA256_DIGEST_LENGTH];
    char was[9], now[9];
    SHA256(machine_id, MACHINE_ID_LEN, d); /* the place's field: policy.c's place_arg */
    pa_hex_encode(p->was, 4, was);
    pa_hex_encode(d, 4, now);
    metric_inc(w->app->m.rebound);
    log_info("activate.rebound", LOG_U("group", key->group), LOG_U("serial", key->serial), LOG_U("shared", p->shared),
             LOG_S("was", was), LOG_S("machine", now), LOG_END);
}

/* Step 4's outcome, and what step 5 needs before it may start; false
 * when the call is answered. */
static bool finish_front(worker *w, rpc_ctx *ctx, const pk_fields *key, const char *address_key, audit_step step,
                         uint64_t t[MARK_N], uint8_t license_random[LICENSE_RANDOM_LEN], rpc_reply *reply) {
    app *a = w->app;
    if (a->threats) threat_record_group(a->threats, key->group, step == AUDIT_STEP_FORGED);
    if (refuse_audit_step(w, ctx, reply, step, address_key, key)) return false;
    t[MARK_AUDIT] = pa_mono_ns();

    /* 5. One round trip: rate limits, revocation, policy, record, outbox.
     *    A slow group load or audit answer may have outlived the caller. */
    if (caller_gone(w, ctx, reply)) return false;
    if (random_pool_take(&w->random, license_random, LICENSE_RANDOM_LEN) != 0) {
        refuse(w, reply, REFUSED_INTERNAL, GRPC_STATUS_INTERNAL, "no randomness available");
        return false;
    }
    return true;
}

/* The machine log's view of the request (policy_machine); `macs` holds
 * the pointers pm refers to. */
static void machine_view(const volume_ask *seen, const char *macs[MACS_MAX], policy_machine *pm) {
    for (size_t i = 0; i < seen->n_macs; i++) macs[i] = seen->macs[i];
    *pm = (policy_machine){.ip = seen->ip,
                           .hostname = seen->hostname,
                           .os = seen->os,
                           .host_serial = seen->host_serial,
                           .macs = macs,
                           .n_macs = seen->n_macs,
                           .tokens = seen->tokens,
                           .n_tokens = seen->n_tokens};
}

/* Steps 5 (the script's answer) and 6: refusals, and the group reload
 * when its record moved; false when the call is answered. *g becomes the
 * current entry (another call of a batch may have reloaded it meanwhile). */
static bool back_check(worker *w, rpc_ctx *ctx, const group_entry **g, const pk_fields *key, const char *address_key,
                       const audit_plan *plan, const volume_ask *vol, bool wait, policy_result *p, uint64_t t[MARK_N],
                       rpc_reply *reply) {
    activation_metrics *m = &w->app->m;
    t[MARK_REDIS] = pa_mono_ns();
    metric_observe(m->redis_seconds, (double)(t[MARK_REDIS] - t[MARK_AUDIT]) / 1e9);
    rate_hold_note(w->holds, address_key, key->group, p);
    if (p->status == POLICY_OUTBOX_FULL || p->unaudited) note_outbox_full(w, key, plan, p->unaudited);
    if (p->status == POLICY_OUTBOX_FULL) {
        refuse(w, reply, REFUSED_AUDIT_UNAVAILABLE, GRPC_STATUS_UNAVAILABLE, "the audit server is behind; retry later");
        return false;
    }
    if (p->status != POLICY_OK) {
        if (p->status == POLICY_UNKNOWN_GROUP) group_cache_forget(w->groups, key->group);
        refuse_by_policy(w, ctx, reply, p, key, address_key);
        return false;
    }
    if (p->audited) metric_inc(m->audit_sampled);
    if (wait && !replica_wait_grant(&w->app->wait, w->redis, vol ? -1 : (int64_t)key->group, p)) {
        refuse_by_policy(w, ctx, reply, p, key, address_key);
        return false;
    }

    /* 6. The group record changed since it was cached: reload it (a volume
     *    key's order was settled by volume_activate_seat). */
    if (!vol && group_cache_check_version(w->groups, key->group, p->version, g) != GROUP_FOUND) {
        p->status = POLICY_UNAVAILABLE;
        snprintf(p->error, sizeof p->error, "group record reload failed");
        refuse_by_policy(w, ctx, reply, p, key, address_key);
        return false;
    }
    t[MARK_RELOAD] = pa_mono_ns();
    return true;
}

static void sign_failed(worker *w, const pk_fields *key, rpc_reply *reply) {
    refuse(w, reply, REFUSED_INTERNAL, GRPC_STATUS_INTERNAL, "license signing failed");
    log_error("activate.sign_failed", LOG_U("group", key->group), LOG_U("serial", key->serial), LOG_END);
}

/* Step 7's end: the signed license `sl` answered, counted and logged. */
static void back_answer(worker *w, rpc_ctx *ctx, const pk_fields *key, const uint8_t *machine_id,
                        const audit_plan *plan, const volume_ask *vol, volume_grant *vg, const policy_result *p,
                        signed_license *sl, uint64_t t[MARK_N], rpc_reply *reply) {
    t[MARK_SIGN] = pa_mono_ns();
    Activation__V1__ActivateResponse resp = ACTIVATION__V1__ACTIVATE_RESPONSE__INIT;
    LICENSE_GRANT_FILL(&resp, sl, w->signer, p);
    if (vol) VOLUME_GRANT_FILL(&resp, vg, w->app->on_premises);
    resp.rebound = p->rebound;
    if (rpc_reply_message(reply, &resp.base) != 0) return;
    if (p->rebound) note_rebound(w, key, p, machine_id);
    note_granted(w, ctx, key, p, plan);
    count_stages(&w->app->m, t);
}

/* Steps 5 (the script's answer) to 7 for one call: its license signed by itself. */
static void finish_back(worker *w, rpc_ctx *ctx, const group_entry *g, const pk_fields *key, const uint8_t *machine_id,
                        const char *address_key, const audit_plan *plan, const volume_ask *vol, volume_grant *vg,
                        policy_result *p, uint64_t t[MARK_N], rpc_reply *reply) {
    if (!back_check(w, ctx, &g, key, address_key, plan, vol, true, p, t, reply)) return;
    char license_id[LICENSE_ID_LEN + 1];
    license_id_format(license_id, key->group, key->serial, p->random);
    signed_license sl;
    if ((vol ? volume_activate_sign(w, vg, license_id, machine_id, key, p, &sl)
             : license_grant_sign(w->signer, g, license_id, machine_id, key->group, key->serial, p, &sl)) != 0) {
        sign_failed(w, key, reply);
        return;
    }
    back_answer(w, ctx, key, machine_id, plan, vol, vg, p, &sl, t, reply);
}

/* Steps 4 (the audit's outcome) to 7, on the gRPC worker or on the pool
 * thread that waited for the online audit; `reply` is answered either way. */
static void finish_activate(worker *w, rpc_ctx *ctx, const group_entry *g, const pk_fields *key,
                            const uint8_t *machine_id, const uint8_t *holder, const char *address_key, audit_plan *plan,
                            audit_step step, const volume_ask *seen, const volume_ask *vol, uint64_t t[MARK_N],
                            rpc_reply *reply) {
    uint8_t license_random[LICENSE_RANDOM_LEN];
    if (!finish_front(w, ctx, key, address_key, step, t, license_random, reply)) return;
    policy_result p;
    const policy_audit *outbox = plan->to_outbox ? &plan->outbox : NULL;
    volume_seat seat = {.ask = vol, /* a volume key's seat, order and VolumeStatus */
                        .key = key,
                        .machine_id = machine_id,
                        .holder = holder,
                        .address_key = address_key,
                        .outbox = outbox,
                        .random = license_random};
    if (!vol) {
        const char *macs[MACS_MAX];
        policy_machine pm;
        machine_view(seen, macs, &pm);
        policy_activate(w->redis, w->script, &w->app->limits, g, key->serial, machine_id, holder, license_random,
                        address_key, &pm, outbox, &p);
    } else if (!volume_activate_seat(w, ctx, &seat, &p, reply)) {
        volume_seat_free(&seat);
        return; /* answered: a refusal only volume keys have, or pending */
    }
    volume_seat_free(&seat);
    finish_back(w, ctx, g, key, machine_id, address_key, plan, vol, &seat.vg, &p, t, reply);
}

/* What a pool thread needs to finish an activation after its online audit:
 * the request's fields are copied, the request itself is gone. */
typedef struct online_job {
    rpc_deferred *call;
    pk_fields key;
    uint8_t machine_id[AUDIT_MACHINE_ID_LEN];
    uint8_t holder[PLACE_KEY_DIGEST_LEN]; /* the place key's digest, when has_holder */
    bool has_holder;
    char address_key[96];
    audit_plan plan;
    volume_ask vol; /* the request's machine facts (the machine log; a volume key's seat when has_vol) */
    bool has_vol;
    uint64_t t[MARK_N];
    int64_t queued_ms; /* the online audit's time starts here */
} online_job;

/* Defers the call to the online-audit pool; false when there is no place
 * (the caller answers itself). */
static bool hand_to_pool(worker *w, rpc_ctx *ctx, const pk_fields *key, const uint8_t *machine_id,
                         const uint8_t *holder, const char *address_key, const audit_plan *plan, const volume_ask *seen,
                         const volume_ask *vol, const uint64_t t[MARK_N]) {
    verify_pool *pool = w->app->verifier;
    if (!pool || !verify_pool_reserve(pool)) return false;
    online_job *j = malloc(sizeof *j);
    if (!j || !(j->call = rpc_ctx_defer(ctx))) {
        free(j);
        verify_pool_release(pool);
        return false;
    }
    j->key = *key;
    memcpy(j->machine_id, machine_id, sizeof j->machine_id);
    j->has_holder = holder != NULL;
    if (holder) memcpy(j->holder, holder, sizeof j->holder);
    snprintf(j->address_key, sizeof j->address_key, "%s", address_key);
    j->plan = *plan;
    j->has_vol = vol != NULL;
    j->vol = *seen;
    memcpy(j->t, t, sizeof j->t);
    j->queued_ms = pa_mono_ms();
    verify_pool_push(pool, j);
    return true;
}

void activate_online_job(void *worker_state, void *job) {
    worker *w = worker_state;
    online_job *j = job;
    rpc_ctx *ctx = rpc_deferred_ctx(j->call);
    rpc_reply reply = {.status = GRPC_STATUS_OK};
    const group_entry *g = NULL;
    group_lookup found = group_cache_get(w->groups, j->key.group, &g);
    if (found == GROUP_FOUND) {
        /* What is left of the timeout after the wait for a thread. */
        int64_t left = audit_client_verify_timeout_ms(w->app->audit) - (pa_mono_ms() - j->queued_ms);
        audit_step step = verdict_step(w, g, &j->plan, verify_online(w, g, &j->plan, left > 0 ? (int)left : 0));
        finish_activate(w, ctx, g, &j->key, j->machine_id, j->has_holder ? j->holder : NULL, j->address_key, &j->plan,
                        step, &j->vol, j->has_vol ? &j->vol : NULL, j->t, &reply);
    } else if (found == GROUP_UNAVAILABLE) {
        policy_result down = {.status = POLICY_UNAVAILABLE};
        snprintf(down.error, sizeof down.error, "group record: %s", rstore_error(w->redis));
        refuse_by_policy(w, ctx, &reply, &down, &j->key, j->address_key);
    } else {
        refuse_not_genuine(w, ctx, &reply, j->address_key, &j->key); /* gone since the worker saw it */
    }
    rpc_deferred_reply(j->call, &reply);
    free(reply.body);
    free(j);
}

static const policy_audit *outbox_of(const activate_call *c) { return c->plan.to_outbox ? &c->plan.outbox : NULL; }

/* A volume key after step 4: its outcome, then the order in memory
 * (activate_volume.h); true when the call waits for volume.lua (or goes on
 * with c->p decided without it). */
static bool volume_front(activate_call *c, audit_step step) {
    if (!finish_front(c->w, c->ctx, &c->key, c->who.bucket, step, c->t, c->license_random, c->reply)) return false;
    c->volume = true;
    c->seat = (volume_seat){.ask = &c->ask,
                            .key = &c->key,
                            .machine_id = c->rq->machine_id.data,
                            .holder = c->bound,
                            .address_key = c->who.bucket,
                            .outbox = outbox_of(c),
                            .random = c->license_random};
    volume_seat_step s = volume_seat_begin(c->w, c->ctx, &c->seat, &c->p, c->reply);
    c->decided = s == VOLUME_SEAT_DECIDED;
    return s != VOLUME_SEAT_ANSWERED;
}

/* On-premises (docs/volume.md): no group secrets, no audit. A key is
 * genuine when its salted hash is in its order's key set; any other key,
 * a retail one included, is refused as not genuine, at the same cost. */
static bool activate_on_premises(activate_call *c, const volume_ask *vol, const order_record *order) {
    const Activation__V1__ActivateRequest *rq = c->rq;
    if (!vol || !volume_key_accepted(order, rq->product_key)) {
        refuse_not_genuine(c->w, c->ctx, c->reply, c->who.bucket, &c->key);
        return false;
    }
    c->t[MARK_MAC] = pa_mono_ns();
    c->plan = (audit_plan){.d = {AUDIT_SAMPLE_NONE, AUDIT_REASON_NONE, 0}, .how = "none"};
    if (rq->place_key.len) place_key_digest(rq->place_key.data, c->holder);
    c->bound = rq->place_key.len ? c->holder : NULL;
    c->g = NULL;
    return volume_front(c, AUDIT_STEP_GO);
}

static bool front_rest(activate_call *c);

bool activate_front(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply, activate_call *c) {
    worker *w = rpc_ctx_worker(ctx);
    app *a = w->app;
    c->w = w;
    c->ctx = ctx;
    c->reply = reply;
    c->rq = NULL;
    c->volume = false;
    c->seat.facts = NULL;
    c->address_taken = c->by_address = false;
    uint64_t *t = c->t;
    t[MARK_START] = pa_mono_ns();

    /* 0. The caller has given up: do no work for it. */
    if (caller_gone(w, ctx, reply)) return false;

    /* 1. Decode the request and the key. */
    pk_fields *key = &c->key;
    Activation__V1__ActivateRequest *rq = c->rq = decode_request(w, reply, req, len, key);
    if (!rq) return false;

    /* A caller Redis has just rate-limited (its address, or the key's
     * product) is refused before anything is looked up for it. */
    caller_identify(a, ctx, &c->who);
    const char *address_key = c->who.bucket;
    count_threat(w, key->group, THREAT_ATTEMPT, NULL);
    policy_result held;
    if (rate_hold_check(w->holds, address_key, true, key->group, &held)) {
        refuse_by_policy(w, ctx, reply, &held, key, address_key);
        return false;
    }

    /* A volume key? Its group belongs to an order (in memory). On-premises
     * the order's key hashes are the whole key check (steps 2-4). */
    volume_ask *vol = NULL;
    const order_record *order = NULL;
    order_lookup in_order = order_cache_for_group(w->orders, key->group, &order);
    if (in_order == ORDER_UNAVAILABLE) {
        policy_result down = {.status = POLICY_UNAVAILABLE};
        snprintf(down.error, sizeof down.error, "order of group %u: unreadable", (unsigned)key->group);
        refuse_by_policy(w, ctx, reply, &down, key, address_key);
        return false;
    }
    volume_ask_from(&c->ask, rq, c->who.ip); /* for the machine log, and a volume key's seat */
    if (in_order == ORDER_FOUND) vol = &c->ask;
    if (a->on_premises) return activate_on_premises(c, vol, order);

    /* 2. The group's verification record, cached per worker. */
    group_lookup found = group_cache_get(w->groups, key->group, &c->g);
    if (found == GROUP_UNAVAILABLE) {
        policy_result down = {.status = POLICY_UNAVAILABLE};
        snprintf(down.error, sizeof down.error, "group record: %s", rstore_error(w->redis));
        refuse_by_policy(w, ctx, reply, &down, key, address_key);
        return false;
    }

    /* 3. First security value, constant-time, before Redis. Every request
     *    counts for its address's threat signal; a refused key counts as a
     *    failure of its group once the group is known to exist. */
    if (a->threats) threat_record_address(a->threats, address_key);
    c->found = found;
    c->in_order = vol != NULL;
    c->rejecting = !first_value_genuine(w, found, c->g, key);
    if (c->rejecting) { /* its reject call is the script it waits for (activate_script / activate_append) */
        if (a->threats && found == GROUP_FOUND) threat_record_group(a->threats, key->group, true);
        return true;
    }
    return front_rest(c);
}

/* Steps 4 on, once the key is genuine; true when the call now waits for
 * its policy script, as activate_front. */
static bool front_rest(activate_call *c) {
    worker *w = c->w;
    rpc_ctx *ctx = c->ctx;
    rpc_reply *reply = c->reply;
    const Activation__V1__ActivateRequest *rq = c->rq;
    const pk_fields *key = &c->key;
    const char *address_key = c->who.bucket;
    volume_ask *vol = c->in_order ? &c->ask : NULL;
    uint64_t *t = c->t;
    t[MARK_MAC] = pa_mono_ns();

    /* 4. Audit: sampled or not; online groups ask the audit server first,
     *    on a pool thread that also finishes the call. */
    audit_plan *plan = &c->plan;
    audit_step step = plan_audit(w, c->g, key, rq->machine_id.data, &c->who, plan);
    if (rq->place_key.len) place_key_digest(rq->place_key.data, c->holder); /* binds the place to the place key */
    c->bound = rq->place_key.len ? c->holder : NULL;
    if (step == AUDIT_STEP_VERIFY) {
        if (hand_to_pool(w, ctx, key, rq->machine_id.data, c->bound, address_key, plan, &c->ask, vol, t)) return false;
        /* No pool (or it is full): no thread to wait on, so no answer. */
        step = verdict_step(w, c->g, plan, verify_online(w, c->g, plan, 0));
    }
    if (vol) return volume_front(c, step); /* the volume way: volume.lua in place of policy.lua */
    return finish_front(w, ctx, key, address_key, step, t, c->license_random, reply);
}

void activate_script(activate_call *c) {
    worker *w = c->w;
    if (c->rejecting) {
        policy_reject(w->redis, w->script, &w->app->limits, c->address_taken ? NULL : c->who.bucket, c->key.group,
                      &c->p);
        return;
    }
    if (c->volume) {
        if (!c->decided) volume_seat_script(w, &c->seat);
        return;
    }
    const char *macs[MACS_MAX];
    policy_machine pm;
    machine_view(&c->ask, macs, &pm);
    policy_activate(w->redis, w->script, &w->app->limits, c->g, c->key.serial, c->rq->machine_id.data, c->bound,
                    c->license_random, c->address_taken ? NULL : c->who.bucket, &pm, outbox_of(c), &c->p);
}

int activate_append(activate_call *c) {
    worker *w = c->w;
    if (c->rejecting)
        return policy_reject_append(w->redis, w->script, &w->app->limits, c->address_taken ? NULL : c->who.bucket,
                                    c->key.group);
    if (c->volume) return c->decided ? 0 : volume_seat_append(w, &c->seat); /* decided: nothing to send */
    const char *macs[MACS_MAX];
    policy_machine pm;
    machine_view(&c->ask, macs, &pm);
    return policy_activate_append(w->redis, w->script, &w->app->limits, c->g, c->key.serial, c->rq->machine_id.data,
                                  c->bound, c->license_random, c->address_taken ? NULL : c->who.bucket, &pm,
                                  outbox_of(c));
}

int activate_batch_add(activate_call *c, policy_batch *b) {
    worker *w = c->w;
    if (c->volume) return -1; /* volume.lua: its own call */
    if (c->rejecting) return policy_batch_add_reject(b, &w->app->limits, c->who.bucket, c->key.group);
    const char *macs[MACS_MAX];
    policy_machine pm;
    machine_view(&c->ask, macs, &pm);
    return policy_batch_add_activate(b, &w->app->limits, c->g, c->key.serial, c->rq->machine_id.data, c->bound,
                                     c->license_random, c->who.bucket, &pm, outbox_of(c));
}

bool activate_read(activate_call *c) {
    if (c->rejecting) return policy_reject_read(c->w->redis, &c->p);
    if (c->volume) return c->decided || volume_seat_read(c->w, &c->seat);
    return policy_activate_read(c->w->redis, &c->p);
}

/* A wrong first value's reject call has answered c->p: the refusal; or,
 * the group created since the set was read and the key genuine there, the
 * rest of the call by itself (its own script, WAIT and signature). */
static void rejected(activate_call *c) {
    worker *w = c->w;
    c->rejecting = false;
    rate_hold_note(w->holds, c->who.bucket, c->key.group, &c->p);
    if (!genuine_in_new_group(w, &c->key, c->found, &c->p, &c->g)) {
        refuse_by_policy(w, c->ctx, c->reply, &c->p, &c->key, c->who.bucket);
        return;
    }
    if (front_rest(c)) {
        activate_script(c);
        activate_back(c);
    }
}

bool activate_back_check(activate_call *c) {
    if (c->rejecting) {
        rejected(c);
        return false;
    }
    const volume_ask *vol = c->volume ? &c->ask : NULL;
    if (vol && !c->decided && !volume_seat_end(c->w, c->ctx, &c->seat, &c->p, c->reply)) return false;
    if (!back_check(c->w, c->ctx, &c->g, &c->key, c->who.bucket, &c->plan, vol, false, &c->p, c->t, c->reply))
        return false;
    license_id_format(c->license_id, c->key.group, c->key.serial, c->p.random);
    return true;
}

void activate_wait_replicas(activate_call *c, size_t n) {
    worker *w = c->w;
    size_t granted = 0;
    for (size_t i = 0; i < n; i++) granted += c[i].waiting;
    policy_result short_of = {.status = POLICY_OK};
    bool cluster = rstore_is_cluster(w->redis); /* grants on several masters: WAIT on each grant's */
    if (!cluster && replica_wait_grants(&w->app->wait, w->redis, -1, granted, &short_of)) return;
    for (size_t i = 0; i < n; i++) {
        if (!c[i].waiting) continue;
        if (cluster &&
            replica_wait_grant(&w->app->wait, w->redis, c[i].volume ? -1 : (int64_t)c[i].key.group, &short_of))
            continue;
        c[i].waiting = false;
        c[i].p.status = short_of.status;
        snprintf(c[i].p.error, sizeof c[i].p.error, "%s", short_of.error);
        refuse_by_policy(w, c[i].ctx, c[i].reply, &c[i].p, &c[i].key, c[i].who.bucket);
    }
}

bool activate_terms(activate_call *c, license_terms *t) {
    if (c->volume) return volume_seat_terms(c->w, &c->seat, c->license_id, &c->p, t);
    if (group_cache_get(c->w->groups, c->key.group, &c->g) != GROUP_FOUND) return false;
    license_grant_terms(c->g, c->license_id, c->rq->machine_id.data, c->key.group, c->key.serial, &c->p, t);
    return true;
}

void activate_answer(activate_call *c, signed_license *sl) {
    if (!sl) {
        sign_failed(c->w, &c->key, c->reply);
        return;
    }
    const volume_ask *vol = c->volume ? &c->ask : NULL;
    back_answer(c->w, c->ctx, &c->key, c->rq->machine_id.data, &c->plan, vol, vol ? &c->seat.vg : NULL, &c->p, sl, c->t,
                c->reply);
}

void activate_back(activate_call *c) {
    if (c->rejecting) {
        rejected(c);
        return;
    }
    const volume_ask *vol = c->volume ? &c->ask : NULL;
    if (vol && !c->decided && !volume_seat_end(c->w, c->ctx, &c->seat, &c->p, c->reply)) return;
    finish_back(c->w, c->ctx, c->g, &c->key, c->rq->machine_id.data, c->who.bucket, &c->plan, vol,
                vol ? &c->seat.vg : NULL, &c->p, c->t, c->reply);
}

void activate_call_end(activate_call *c) {
    if (c->volume) volume_seat_free(&c->seat);
    if (c->rq) activation__v1__activate_request__free_unpacked(c->rq, NULL);
    c->rq = NULL;
}

void handle_activate(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    activate_call c;
    if (activate_front(ctx, req, len, reply, &c)) {
        activate_script(&c);
        activate_back(&c);
    }
    activate_call_end(&c);
}

/* ---- the key check, for calls authorised by the product key alone ---------- */

/* A refusal of activate_check_key: the status Activate would give, counted
 * and logged under `event`. */
static void refuse_key(worker *w, rpc_ctx *ctx, rpc_reply *reply, const policy_result *p, const pk_fields *key,
                       const char *address_key, const char *event) {
    reply_policy_refusal(reply, p);
    note_policy_refusal(&w->app->m, p);
    if (p->status == POLICY_NOT_GENUINE || p->status == POLICY_UNKNOWN_GROUP)
        count_threat(w, key->group, THREAT_NOT_GENUINE, address_key);
    else if (p->status == POLICY_RATE_LIMITED) count_threat(w, key->group, THREAT_RATE_LIMITED, address_key);
    bool routine = p->status == POLICY_NOT_GENUINE || p->status == POLICY_RATE_LIMITED;
    log_emit(routine ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN, event, LOG_S("reason", policy_status_name(p->status)),
             LOG_U("group", key->group), LOG_U("serial", key->serial), LOG_S("peer", rpc_ctx_peer(ctx)), LOG_END);
}

static key_verdict key_refused(worker *w, rpc_ctx *ctx, rpc_reply *reply, const pk_fields *key, const char *address_key,
                               const char *event, bool charge, const char *down) {
    policy_result p = {.status = POLICY_UNAVAILABLE};
    if (charge) reject(w, address_key, key, &p);
    else snprintf(p.error, sizeof p.error, "%s", down);
    refuse_key(w, ctx, reply, &p, key, address_key, event);
    return KEY_REFUSED;
}

key_verdict activate_check_key(worker *w, rpc_ctx *ctx, const pk_fields *key, const char *product_key,
                               const caller *who, const char *event, rpc_reply *reply) {
    app *a = w->app;
    const char *address_key = who->bucket;
    count_threat(w, key->group, THREAT_ATTEMPT, NULL);
    policy_result held;
    if (rate_hold_check(w->holds, address_key, true, key->group, &held)) {
        refuse_key(w, ctx, reply, &held, key, address_key, event);
        return KEY_REFUSED;
    }
    const order_record *order = NULL;
    order_lookup in_order = order_cache_for_group(w->orders, key->group, &order);
    if (in_order == ORDER_UNAVAILABLE) return key_refused(w, ctx, reply, key, address_key, event, false, "orders");
    if (a->on_premises) { /* the order's key hashes are the whole check */
        if (in_order != ORDER_FOUND || !volume_key_accepted(order, product_key))
            return key_refused(w, ctx, reply, key, address_key, event, true, NULL);
        return KEY_VOLUME;
    }
    const group_entry *g = NULL;
    group_lookup found = group_cache_get(w->groups, key->group, &g);
    if (found == GROUP_UNAVAILABLE) return key_refused(w, ctx, reply, key, address_key, event, false, "group record");
    if (a->threats) threat_record_address(a->threats, address_key);
    if (!first_value_genuine(w, found, g, key)) {
        if (a->threats && found == GROUP_FOUND) threat_record_group(a->threats, key->group, true);
        policy_result no;
        reject(w, address_key, key, &no);
        if (!genuine_in_new_group(w, key, found, &no, &g)) {
            refuse_key(w, ctx, reply, &no, key, address_key, event);
            return KEY_REFUSED;
        }
    }
    return in_order == ORDER_FOUND ? KEY_VOLUME : KEY_GENUINE;
}
