/* machines.c -- ListMachines and ReleaseMachine: self-service for a key
 * whose places are taken by machines that are dead or gone
 * (docs/machines.md "Self-service: listing and releasing machines").
 *
 * Both are authorised by the product key alone, so they check it exactly
 * as Activate does (activate_check_key): a key that is not genuine gets the
 * same PERMISSION_DENIED and costs the same failure tokens, so these calls
 * are no cheaper oracle for guessing keys than Activate. Then one policy.lua
 * call each (policy_machines.h) takes the address token and reads or frees
 * the place. A listing names places by handle, hostname and last seen,
 * never by anything derived from a machine id; a release counts against
 * the group's max_transfers and is logged (release.done) and counted
 * (pa_releases_total). Keys of volume orders are refused (ORDER_MANAGED):
 * their operator manages the machines. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "activation/v1/activation.pb-c.h"
#include "log.h"
#include "policy_machines.h"
#include "rate_hold.h"
#include "server.h"
#include "validate.h"

/* The product key of a request, decoded; on failure the reply is set. */
static bool request_key(rpc_reply *reply, const ProtobufCMessageDescriptor *d, const uint8_t *req, size_t len,
                        const char *text, pk_fields *key) {
    char msg[256];
    if (!validate_strings_have_no_nul(d, req, len, msg, sizeof msg)) {
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
        return false;
    }
    pk_error err;
    text = text ? text : "";
    if (pk_decode(text, strlen(text), key, &err) == PK_OK) return true;
    char why[224];
    rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "product_key: %s", pk_strerror(&err, why, sizeof why));
    return false;
}

/* The key checked as Activate checks it; a volume key is refused here.
 * True when the call may go on (the reply is set otherwise). */
static bool key_admitted(worker *w, rpc_ctx *ctx, rpc_reply *reply, const pk_fields *key, const char *text,
                         const caller *who, const char *event) {
    key_verdict v = activate_check_key(w, ctx, key, text, who, event, reply);
    if (v == KEY_GENUINE) return true;
    if (v == KEY_VOLUME) {
        rpc_reply_error(reply, GRPC_STATUS_FAILED_PRECONDITION,
                        "this key belongs to a volume order: the order's operator manages its machines");
        reply->reason = "ORDER_MANAGED";
    }
    return false;
}

static void refused(worker *w, rpc_ctx *ctx, rpc_reply *reply, const policy_result *p, const char *event,
                    const pk_fields *key) {
    reply_policy_refusal(reply, p);
    note_policy_refusal(&w->app->m, p);
    bool routine = p->status == POLICY_RATE_LIMITED || p->status == POLICY_NOT_FOUND;
    log_emit(p->status == POLICY_UNAVAILABLE ? LOG_LEVEL_WARN
             : routine                       ? LOG_LEVEL_DEBUG
                                             : LOG_LEVEL_INFO,
             event, LOG_S("reason", p->status == POLICY_UNAVAILABLE ? p->error : policy_status_name(p->status)),
             LOG_U("group", key->group), LOG_U("serial", key->serial), LOG_S("peer", rpc_ctx_peer(ctx)), LOG_END);
}

static void answer_list(rpc_reply *reply, const policy_list_result *l) {
    Activation__V1__MachineEntry entries[POLICY_LIST_MAX], *list[POLICY_LIST_MAX];
    for (size_t i = 0; i < l->n; i++) {
        Activation__V1__MachineEntry *e = &entries[i];
        activation__v1__machine_entry__init(e);
        e->handle = (char *)l->e[i].handle;
        e->hostname = (char *)l->e[i].hostname;
        e->last_seen = l->e[i].last_seen;
        e->expires_at = l->e[i].expires_at;
        e->this_machine = l->e[i].this_machine;
        list[i] = e;
    }
    Activation__V1__ListMachinesResponse resp = ACTIVATION__V1__LIST_MACHINES_RESPONSE__INIT;
    resp.n_machines = l->n;
    resp.machines = list;
    resp.max_machines = l->max_machines;
    resp.releases_left = l->releases_left;
    resp.next_release_at = l->next_release_at;
    (void)rpc_reply_message(reply, &resp.base);
}

void handle_list_machines(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    worker *w = rpc_ctx_worker(ctx);
    Activation__V1__ListMachinesRequest *rq = activation__v1__list_machines_request__unpack(NULL, len, req);
    if (!rq) {
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                        "request: not a valid activation.v1.ListMachinesRequest message");
        return;
    }
    pk_fields key;
    caller who;
    if (!request_key(reply, &activation__v1__list_machines_request__descriptor, req, len, rq->product_key, &key))
        goto done;
    if (rq->machine_id.len != 0 && rq->machine_id.len != MACHINE_ID_LEN) {
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "machine_id: must be empty or exactly %d bytes, got %zu",
                        MACHINE_ID_LEN, rq->machine_id.len);
        goto done;
    }
    caller_identify(w->app, ctx, &who);
    if (!key_admitted(w, ctx, reply, &key, rq->product_key, &who, "machines.refused")) goto done;
    static _Thread_local policy_list_result l; /* 11 KB: kept off the worker's stack */
    policy_list(w->redis, w->script, &w->app->limits, key.group, key.serial,
                rq->machine_id.len ? rq->machine_id.data : NULL, who.bucket, &l);
    rate_hold_note(w->holds, who.bucket, key.group, &l.r);
    if (l.r.status != POLICY_OK) {
        refused(w, ctx, reply, &l.r, "machines.refused", &key);
        goto done;
    }
    answer_list(reply, &l);
    log_debug("machines.listed", LOG_U("group", key.group), LOG_U("serial", key.serial), LOG_U("places", l.places),
              LOG_S("peer", rpc_ctx_peer(ctx)), LOG_END);
done:
    activation__v1__list_machines_request__free_unpacked(rq, NULL);
}

/* A handle as ListMachines gave it: 16 hex characters, lowercased here. */
static bool handle_ok(const char *in, char out[POLICY_HANDLE_LEN + 1]) {
    if (!in || strlen(in) != POLICY_HANDLE_LEN) return false;
    for (size_t i = 0; i < POLICY_HANDLE_LEN; i++) {
        if (!isxdigit((unsigned char)in[i])) return false;
        out[i] = (char)tolower((unsigned char)in[i]);
    }
    out[POLICY_HANDLE_LEN] = '\0';
    return true;
}

void handle_release_machine(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    worker *w = rpc_ctx_worker(ctx);
    Activation__V1__ReleaseMachineRequest *rq = activation__v1__release_machine_request__unpack(NULL, len, req);
    if (!rq) {
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                        "request: not a valid activation.v1.ReleaseMachineRequest message");
        return;
    }
    pk_fields key;
    caller who;
    char handle[POLICY_HANDLE_LEN + 1];
    if (!request_key(reply, &activation__v1__release_machine_request__descriptor, req, len, rq->product_key, &key))
        goto done;
    if (!handle_ok(rq->handle, handle)) {
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT,
                        "handle: want the %d hex characters ListMachines gave for the machine", POLICY_HANDLE_LEN);
        goto done;
    }
    caller_identify(w->app, ctx, &who);
    if (!key_admitted(w, ctx, reply, &key, rq->product_key, &who, "release.refused")) goto done;
    policy_result p;
    uint32_t left;
    policy_release(w->redis, w->script, &w->app->limits, key.group, key.serial, handle, who.bucket, who.ip, &p, &left);
    rate_hold_note(w->holds, who.bucket, key.group, &p);
    if (p.status != POLICY_OK) {
        refused(w, ctx, reply, &p, "release.refused", &key);
        goto done;
    }
    Activation__V1__ReleaseMachineResponse resp = ACTIVATION__V1__RELEASE_MACHINE_RESPONSE__INIT;
    resp.activation_count = p.count;
    resp.releases_left = left;
    metric_inc(w->app->m.releases);
    log_info("release.done", LOG_U("group", key.group), LOG_U("serial", key.serial), LOG_S("handle", handle),
             LOG_U("count", p.count), LOG_S("address", who.ip), LOG_END);
    (void)rpc_reply_message(reply, &resp.base);
done:
    activation__v1__release_machine_request__free_unpacked(rq, NULL);
}
