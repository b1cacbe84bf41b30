/* activate.c -- the Activate call (DESIGN.md §4 steps 3 and 6).
 *
 * The handler reads like the flow it implements:
 *   0. skip calls whose deadline already passed;
 *   1. decode the request and the key again (never trust the client);
 *   2. find the group's verification record in this worker's cache;
 *   3. check the first security value in process, in constant time, BEFORE
 *      touching Redis: an unknown group and a wrong value read the same and
 *      both cost the client address failure tokens (one script call);
 *   4. one Redis round trip (policy.lua): rate limits, revocation, the
 *      group's policy applied to the key's record, the optional audit record;
 *   5. reload the cached group if the script saw a newer record version;
 *   6. build and sign the license.
 * Granted calls add their time per stage to pa_activate_stage_nanoseconds_total
 * so the benchmark can show where an activation's server time goes. */
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "activation/v1/activation.pb-c.h"
#include "log.h"
#include "server.h"
#include "validate.h"

static uint64_t mono_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

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

/* A refusal decided by the script (or by Redis being away). */
static void refuse_by_policy(worker *w, rpc_ctx *ctx, rpc_reply *reply, const policy_result *p,
                             const pk_fields *key) {
    reply_policy_refusal(reply, p);
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

/* Offline audit, when enabled: a sampled activation, or the key's first use
 * if the group asks for it, goes to audit:outbox inside the same script call.
 * Returns NULL when this call is not audited. */
static const policy_audit *choose_audit(worker *w, rpc_ctx *ctx, const group_entry *g,
                                        const pk_fields *key, uint32_t dice,
                                        policy_audit *a, char request_id[33]) {
    const group_policy *pol = &g->rec.policy;
    if (!w->app->audit_sampling) return NULL;
    bool sampled = dice % 1000000u < pol->audit_rate_ppm;
    if (!sampled && !pol->audit_first_activation) return NULL;
    uint8_t id[16];
    if (RAND_bytes(id, sizeof id) != 1) return NULL;
    for (int i = 0; i < 16; i++) snprintf(request_id + 2 * i, 3, "%02x", id[i]);
    *a = (policy_audit){
        .mode = sampled ? 1 : 2,
        .request_id = request_id,
        .upgrade = key->upgrade,
        .security_first = key->security_first,
        .security_second = key->security_second,
        .client_address = rpc_ctx_peer_ip(ctx),
        .received_at = (int64_t)time(NULL),
        .sample_reason = sampled ? "sample" : "first_activation",
    };
    return a;
}

static void count_stages(activation_metrics *m, const uint64_t t[5]) {
    metric_add(m->stage_ns[STAGE_DECODE_MAC], t[1] - t[0]);
    metric_add(m->stage_ns[STAGE_REDIS], t[2] - t[1]);
    metric_add(m->stage_ns[STAGE_SIGN], t[4] - t[3]);
    metric_add(m->stage_ns[STAGE_TOTAL], mono_ns() - t[0]);
    metric_inc(m->stage_calls);
}

void handle_activate(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    worker *w = rpc_ctx_worker(ctx);
    activation_metrics *m = &w->app->m;
    uint64_t t[5];   /* stage boundaries */
    t[0] = mono_ns();

    /* 0. The caller has given up: do no work for it. */
    if (rpc_ctx_remaining_ms(ctx) <= 0) {
        refuse(w, reply, REFUSED_DEADLINE, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
        return;
    }

    /* 1. Decode the request and the key. */
    Activation__V1__ActivateRequest *rq = activation__v1__activate_request__unpack(NULL, len, req);
    if (!rq) {
        refuse(w, reply, REFUSED_INVALID_REQUEST, GRPC_STATUS_INVALID_ARGUMENT,
               "request: not a valid activation.v1.ActivateRequest message");
        return;
    }
    pk_fields key;
    pk_status key_status;
    char msg[256];
    if (!validate_activate(rq, &key, &key_status, msg, sizeof msg)) {
        refuse(w, reply, key_status == PK_OK ? REFUSED_INVALID_REQUEST : REFUSED_INVALID_KEY,
               GRPC_STATUS_INVALID_ARGUMENT, msg);
        goto done;
    }

    /* 2. The group's verification record, cached per worker. */
    const group_entry *g = NULL;
    group_lookup found = group_cache_get(w->groups, key.group, &g);
    if (found == GROUP_UNAVAILABLE) {
        policy_result down = {.status = POLICY_UNAVAILABLE};
        snprintf(down.error, sizeof down.error, "group record: %s", rstore_error(w->redis));
        refuse_by_policy(w, ctx, reply, &down, &key);
        goto done;
    }

    /* 3. First security value, constant-time, before Redis. */
    char address_key[96];
    policy_address_key(rpc_ctx_peer_ip(ctx), address_key, sizeof address_key);
    bool genuine = found == GROUP_FOUND && (!key.upgrade || g->rec.upgrade_allowed) &&
                   mac_security_check(g->first, MAC_ROLE_FIRST, key.group, key.serial,
                                      key.upgrade, key.security_first);
    if (!genuine) {
        policy_result p;
        policy_reject(w->redis, w->script, &w->app->limits, address_key, &p);
        refuse_by_policy(w, ctx, reply, &p, &key);
        goto done;
    }
    t[1] = mono_ns();

    /* 4. One round trip: rate limits, revocation, policy, record, audit.
     *    A slow group load may have outlived the caller: then stop here. */
    if (rpc_ctx_remaining_ms(ctx) <= 0) {
        refuse(w, reply, REFUSED_DEADLINE, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
        goto done;
    }
    struct { uint8_t license[LICENSE_RANDOM_LEN]; uint32_t dice; } rnd;
    if (RAND_bytes((uint8_t *)&rnd, sizeof rnd) != 1) {
        refuse(w, reply, REFUSED_INTERNAL, GRPC_STATUS_INTERNAL, "no randomness available");
        goto done;
    }
    policy_audit audit_buf;
    char request_id[33];
    const policy_audit *audit = choose_audit(w, ctx, g, &key, rnd.dice, &audit_buf, request_id);
    policy_result p;
    policy_activate(w->redis, w->script, &w->app->limits, g, key.serial, rq->machine_id.data,
                    rnd.license, address_key, audit, &p);
    t[2] = mono_ns();
    metric_observe(m->redis_seconds, (double)(t[2] - t[1]) / 1e9);
    if (p.status != POLICY_OK) {
        if (p.status == POLICY_UNKNOWN_GROUP) group_cache_forget(w->groups, key.group);
        refuse_by_policy(w, ctx, reply, &p, &key);
        goto done;
    }
    if (audit) metric_inc(m->audit_sampled);

    /* 5. The group record changed since it was cached: reload it. */
    if (p.version != g->rec.version &&
        group_cache_check_version(w->groups, key.group, p.version, &g) != GROUP_FOUND) {
        p.status = POLICY_UNAVAILABLE;
        snprintf(p.error, sizeof p.error, "group record reload failed");
        refuse_by_policy(w, ctx, reply, &p, &key);
        goto done;
    }
    t[3] = mono_ns();

    /* 6. The signed license. */
    char license_id[LICENSE_ID_LEN + 1];
    license_id_format(license_id, key.group, key.serial, p.random);
    license_terms terms = {
        .license_id = license_id,
        .product = g->rec.product,
        .edition = g->rec.edition,
        .channel = (int)g->rec.channel,
        .features = (char **)g->features,
        .n_features = g->n_features,
        .machine_id = rq->machine_id.data,
        .group = key.group,
        .serial = key.serial,
        .issued_at = p.now,
        .renew_after = p.renew_after,
        .expires_at = p.expires_at,
    };
    signed_license sl;
    if (license_issue(w->signer, &terms, &sl) != 0) {
        refuse(w, reply, REFUSED_INTERNAL, GRPC_STATUS_INTERNAL, "license signing failed");
        log_error("activate.sign_failed", LOG_U("group", key.group), LOG_U("serial", key.serial),
                  LOG_END);
        goto done;
    }
    t[4] = mono_ns();
    Activation__V1__ActivateResponse resp = ACTIVATION__V1__ACTIVATE_RESPONSE__INIT;
    resp.license = (ProtobufCBinaryData){.len = sl.body_len, .data = sl.body};
    resp.signature = (ProtobufCBinaryData){.len = sizeof sl.sig, .data = sl.sig};
    resp.key_id = (char *)license_signer_key_id(w->signer);
    resp.activation_count = p.count;
    resp.renew_after = p.renew_after;
    resp.expires_at = p.expires_at;
    if (rpc_reply_message(reply, &resp.base) != 0) goto done;

    metric_inc(p.again ? m->granted_again : m->granted_new);
    log_info("activate.granted", LOG_U("group", key.group), LOG_U("serial", key.serial),
             LOG_U("count", p.count), LOG_B("again", p.again),
             LOG_S("peer", rpc_ctx_peer(ctx)), LOG_END);
    count_stages(m, t);
done:
    activation__v1__activate_request__free_unpacked(rq, NULL);
}
