/* worker.c -- per-worker state, the server's metrics, and how a policy
 * decision becomes a gRPC status.
 *
 * A worker connects to Redis lazily: the server starts (and answers health
 * checks) while Redis is still away, and each call fails fast with
 * UNAVAILABLE until the connection heals by itself (redis_store.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "rate_hold.h"
#include "server.h"
#include "volume_policy.h"

void *worker_new(int index, void *app_ptr) {
    app *a = app_ptr;
    worker *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->index = index;
    w->app = a;
    char err[256] = "";
    w->redis = rstore_new(&a->redis, true, err, sizeof err);
    if (!w->redis) {
        log_error("worker.redis", LOG_I("worker", index), LOG_S("error", err), LOG_END);
        worker_free(w);
        return NULL;
    }
    w->script = policy_register(w->redis);
    w->volume_script = volume_register(w->redis);
    w->groups = group_cache_new(w->redis, a->kek, a->groups, a->negative_ttl_ms, a->m.group_loads);
    w->orders = order_cache_new(w->redis, a->order_refresh_ms);
    w->signer = license_signer_new(&a->signing);
    w->holds = rate_hold_new();
    w->tally = threat_tally_claim(a->threat_counts);
    if (w->script < 0 || w->volume_script < 0 || !w->groups || !w->orders || !w->signer || !w->holds ||
        (a->threat_counts && !w->tally)) {
        log_error("worker.init", LOG_I("worker", index), LOG_END);
        worker_free(w);
        return NULL;
    }
    return w;
}

void worker_free(void *ptr) {
    worker *w = ptr;
    if (!w) return;
    group_cache_free(w->groups);
    order_cache_free(w->orders);
    license_signer_free(w->signer);
    rate_hold_free(w->holds);
    threat_tally_release(w->tally);
    rstore_free(w->redis);
    activate_batch_free(w->batch);
    random_pool_wipe(&w->random);
    free(w);
}

void caller_identify(const app *a, rpc_ctx *ctx, caller *c) {
    client_address(a->proxies, ctx, c->ip);
    policy_address_key(c->ip, c->bucket, sizeof c->bucket);
}

static const char *refusal_names[REFUSED_N] = {
    [REFUSED_INVALID_REQUEST] = "invalid_request",
    [REFUSED_INVALID_KEY] = "invalid_key",
    [REFUSED_NOT_GENUINE] = "not_genuine",
    [REFUSED_REVOKED] = "revoked",
    [REFUSED_NO_PLACE] = "no_place",
    [REFUSED_RATE_LIMITED] = "rate_limited",
    [REFUSED_UNAVAILABLE] = "unavailable",
    [REFUSED_DEADLINE] = "deadline_expired",
    [REFUSED_INTERNAL] = "internal",
    [REFUSED_AUDIT_UNAVAILABLE] = "audit_unavailable",
    [REFUSED_NOT_FOUND] = "not_found",
    [REFUSED_LEASE_EXPIRED] = "lease_expired",
    [REFUSED_BAD_PROOF] = "bad_proof",
    [REFUSED_NO_SEAT] = "no_seat",
    [REFUSED_ORDER_NOT_STARTED] = "order_not_started",
    [REFUSED_ORDER_ENDED] = "order_ended",
    [REFUSED_ORDER_RETIRED] = "order_retired",
    [REFUSED_PLATFORM] = "platform_not_allowed",
    [REFUSED_DEACTIVATED] = "deactivated",
};

/* The reasons each call can give; the others are not registered, so no
 * series stays at zero forever. */
static bool activate_refuses(refusal r) {
    return r != REFUSED_NOT_FOUND && r != REFUSED_LEASE_EXPIRED && r != REFUSED_BAD_PROOF && r != REFUSED_DEACTIVATED;
}
static bool renew_refuses(refusal r) {
    return r != REFUSED_INVALID_KEY && r != REFUSED_NOT_GENUINE && r != REFUSED_NO_PLACE &&
           r != REFUSED_AUDIT_UNAVAILABLE && r != REFUSED_NO_SEAT && r != REFUSED_PLATFORM;
}

static const char *stage_names[STAGE_N] = {
    [STAGE_DECODE_MAC] = "decode_mac", [STAGE_AUDIT] = "audit", [STAGE_REDIS] = "redis",
    [STAGE_SIGN] = "sign",             [STAGE_TOTAL] = "total",
};

void activation_metrics_init(activation_metrics *m) {
    char labels[64];
    const char *granted = "Activations granted; kind=again when the machine already held a place";
    m->granted_new = metric_counter("pa_activations_granted_total", granted, "kind=\"new\"");
    m->granted_again = metric_counter("pa_activations_granted_total", granted, "kind=\"again\"");
    m->rebound = metric_counter("pa_activations_rebound_total",
                                "Activations that moved a place to a new machine_id, found by its components", "");
    for (int i = 0; i < REFUSED_N; i++) {
        snprintf(labels, sizeof labels, "reason=\"%s\"", refusal_names[i]);
        if (activate_refuses(i))
            m->refused[i] = metric_counter("pa_activations_refused_total", "Activations refused, by reason", labels);
        if (renew_refuses(i))
            m->renew_refused[i] = metric_counter("pa_renewals_refused_total", "Renewals refused, by reason", labels);
    }
    const char *rl = "Calls refused by a token bucket, by scope";
    m->rate_limited[0] = metric_counter("pa_rate_limited_total", rl, "scope=\"address\"");
    m->rate_limited[1] = metric_counter("pa_rate_limited_total", rl, "scope=\"group\"");
    m->redis_errors = metric_counter("pa_redis_errors_total",
                                     "Redis calls that failed: unreachable, timeout or error reply",
                                     "");
    static const double bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                    0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
    m->redis_seconds = metric_histogram("pa_activate_redis_seconds",
                                        "Activate's one Redis round trip (policy.lua), seconds", "",
                                        bounds, sizeof bounds / sizeof *bounds);
    for (int i = 0; i < STAGE_N; i++) {
        snprintf(labels, sizeof labels, "stage=\"%s\"", stage_names[i]);
        m->stage_ns[i] = metric_counter("pa_activate_stage_nanoseconds_total",
                                        "Server time of granted Activate calls, by stage", labels);
    }
    m->stage_calls = metric_counter("pa_activate_stage_calls_total",
                                    "Granted Activate calls timed into the stage counters", "");
    m->group_loads = metric_counter("pa_group_cache_loads_total",
                                    "Group records read from Redis (cache misses and refreshes)",
                                    "");
    m->group_id_loads =
        metric_counter("pa_group_ids_loads_total", "Reads of the set of existing groups (start-up and refreshes)", "");
    m->audit_sampled = metric_counter("pa_audit_sampled_total",
                                      "Activations written to the offline-audit outbox", "");
    static const char *const verdicts[3] = {
        [AUDIT_ONLINE_GENUINE] = "genuine", [AUDIT_ONLINE_FORGED] = "forged",
        [AUDIT_ONLINE_UNAVAILABLE] = "unavailable"};
    for (int i = 0; i < 3; i++) {
        snprintf(labels, sizeof labels, "result=\"%s\"", verdicts[i]);
        m->audit_online[i] = metric_counter("pa_audit_online_total",
                                            "Online audits (Verify) of activations, by answer",
                                            labels);
    }
    m->audit_fallback = metric_counter("pa_audit_online_fallback_total",
                                       "Online audits left unanswered that fell back to the outbox",
                                       "");
    const char *full = "Sampled activations while the outbox was at its cap, by what the group said to do";
    m->audit_outbox_full[0] = metric_counter("pa_audit_outbox_full_total", full, "then=\"refused\"");
    m->audit_outbox_full[1] = metric_counter("pa_audit_outbox_full_total", full, "then=\"granted\"");
    const char *usage = "Usage reports received (volume.v1.Usage/Report), by what became of them";
    m->usage_reports[USAGE_RESULT_STORED] = metric_counter("pa_usage_reports_total", usage, "result=\"stored\"");
    m->usage_reports[USAGE_RESULT_KEPT] = metric_counter("pa_usage_reports_total", usage, "result=\"kept\"");
    m->usage_reports[USAGE_RESULT_REFUSED] = metric_counter("pa_usage_reports_total", usage, "result=\"refused\"");
    const char *up = "Usage reports this on-premises server uploaded to the vendor, one per order and round";
    m->usage_uploads[0] = metric_counter("pa_usage_uploads_total", up, "result=\"ok\"");
    m->usage_uploads[1] = metric_counter("pa_usage_uploads_total", up, "result=\"failed\"");
    const char *pending = "Activations of volume keys answered pending (no license yet), by why";
    m->volume_pending[0] = metric_counter("pa_activations_pending_total", pending, "reason=\"threshold\"");
    m->volume_pending[1] = metric_counter("pa_activations_pending_total", pending, "reason=\"not_designated\"");
    const char *churn = "Deactivate and ReleaseMachine calls refused for the key's churn budget, by which";
    m->churn_refused[CHURN_DEACTIVATION] = metric_counter("pa_churn_refused_total", churn, "limit=\"deactivation\"");
    m->churn_refused[CHURN_TRANSFER] = metric_counter("pa_churn_refused_total", churn, "limit=\"transfer\"");
    m->releases = metric_counter("pa_releases_total", "Places freed by ReleaseMachine (self-service)", "");
}

void note_policy_refusal(activation_metrics *m, const policy_result *p) {
    if (p->status == POLICY_UNAVAILABLE) metric_inc(m->redis_errors);
    if (p->status == POLICY_RATE_LIMITED)
        metric_inc(m->rate_limited[p->scope && p->scope[0] == 'g' ? 1 : 0]);
    if (p->status == POLICY_CHURN_LIMITED) metric_inc(m->churn_refused[churn_limit_of(p)]);
}

churn_limit churn_limit_of(const policy_result *p) {
    return p->limit && strcmp(p->limit, "transfer") == 0 ? CHURN_TRANSFER : CHURN_DEACTIVATION;
}

/* A churn budget used up: when the next call is allowed, in UTC, since
 * the user waits for a date, not a number of seconds. */
static void reply_churn_limited(rpc_reply *reply, const policy_result *p) {
    bool transfer = churn_limit_of(p) == CHURN_TRANSFER;
    char when[32] = "the end of the period";
    time_t t = (time_t)p->next_allowed_at;
    struct tm tm;
    if (t > 0 && gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    reply->retry_after_s = p->retry_after_s;
    reply->reason = transfer ? "TRANSFER_LIMIT" : "DEACTIVATION_LIMIT";
    rpc_reply_error(reply, GRPC_STATUS_RESOURCE_EXHAUSTED,
                    "this product key's %s for the period are used up; next %s allowed at %s",
                    transfer ? "releases" : "deactivations", transfer ? "release" : "deactivation", when);
}

void reply_policy_refusal(rpc_reply *reply, const policy_result *p) {
    /* refusals of abuse wait out the refusal hold (--refusal-hold-ms) */
    reply->hold =
        p->status == POLICY_RATE_LIMITED || p->status == POLICY_UNKNOWN_GROUP || p->status == POLICY_NOT_GENUINE;
    switch (p->status) {
    case POLICY_RATE_LIMITED:
        reply->retry_after_s = p->retry_after_s;
        rpc_reply_error(reply, GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "too many requests %s; retry after %d s",
                        p->scope && p->scope[0] == 'g' ? "for this product" : "from this address",
                        p->retry_after_s);
        break;
    case POLICY_UNKNOWN_GROUP:
    case POLICY_NOT_GENUINE:
        rpc_reply_error(reply, GRPC_STATUS_PERMISSION_DENIED, "the product key is not genuine");
        break;
    case POLICY_REVOKED:
        rpc_reply_error(reply, GRPC_STATUS_FAILED_PRECONDITION, "the product key has been revoked");
        reply->reason = "KEY_REVOKED";
        break;
    case POLICY_NO_PLACE:
        rpc_reply_error(reply, GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "the product key is already activated on its maximum number of "
                        "machines (%u); deactivate one first", p->count);
        break;
    case POLICY_NOT_FOUND:
        rpc_reply_error(reply, GRPC_STATUS_NOT_FOUND,
                        "no license with this license_id is held for this machine");
        break;
    case POLICY_EXPIRED:
        rpc_reply_error(reply, GRPC_STATUS_FAILED_PRECONDITION,
                        "the license's lease has expired; activate again");
        reply->reason = "LEASE_EXPIRED"; /* unlike KEY_REVOKED, activating again helps */
        break;
    case POLICY_WRONG_KEY:
        rpc_reply_error(reply, GRPC_STATUS_UNAUTHENTICATED,
                        "proof: the place is bound to another place key (this license was "
                        "activated elsewhere, or its key was lost); activate again with the "
                        "product key");
        reply->reason = "PROOF_WRONG_KEY";
        break;
    case POLICY_CHURN_LIMITED: reply_churn_limited(reply, p); break;
    case POLICY_UNAVAILABLE:
        rpc_reply_error(reply, GRPC_STATUS_UNAVAILABLE,
                        "the activation store is unavailable; retry later");
        break;
    default:
        rpc_reply_error(reply, GRPC_STATUS_INTERNAL, "unexpected policy result");
        break;
    }
}
