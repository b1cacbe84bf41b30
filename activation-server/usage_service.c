/* usage_service.c -- volume.v1.Usage/Report on the vendor's activation
 * servers (docs/volume.md, "Usage return").
 *
 * An on-premises server uploads each order's signed report here. The
 * handler checks vendor key -> order -> report (usage_file.h) against
 * --order-public-key and keeps the newest report per order in
 * {o:S}:usage (usage_store.h). A report that does not verify is
 * INVALID_ARGUMENT naming what failed; an older or equal one is
 * acknowledged with stored = false, so an uploader's retries are safe. An
 * on-premises server receives no reports: it answers FAILED_PRECONDITION. */
#include <time.h>

#include "log.h"
#include "server.h"
#include "usage_file.h"
#include "usage_store.h"
#include "volume/v1/usage.pb-c.h"

void handle_usage_report(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    worker *w = rpc_ctx_worker(ctx);
    activation_metrics *m = &w->app->m;
    if (w->app->on_premises) {
        rpc_reply_error(reply, GRPC_STATUS_FAILED_PRECONDITION,
                        "this is an on-premises server: usage reports go to the vendor");
        return;
    }
    Volume__V1__UsageReport *u = volume__v1__usage_report__unpack(NULL, len, req);
    usage_summary s;
    char err[512];
    usage_status st = usage_verify(u, w->app->order_keys, &s, err, sizeof err);
    if (st != USAGE_OK) {
        metric_inc(m->usage_reports[USAGE_RESULT_REFUSED]);
        log_warn("usage.refused", LOG_S("reason", usage_status_reason(st)), LOG_S("error", err),
                 LOG_S("peer", rpc_ctx_peer(ctx)), LOG_END);
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "%s: %s", usage_status_reason(st), err);
        if (u) volume__v1__usage_report__free_unpacked(u, NULL);
        return;
    }
    int stored = usage_store_report(w->redis, u, &s, (int64_t)time(NULL), err, sizeof err);
    volume__v1__usage_report__free_unpacked(u, NULL);
    if (stored < 0) {
        metric_inc(m->redis_errors);
        log_error("usage.store_failed", LOG_S("order", s.serial), LOG_S("error", err), LOG_END);
        rpc_reply_error(reply, GRPC_STATUS_UNAVAILABLE, "the activation store is unavailable; retry later");
        return;
    }
    metric_inc(m->usage_reports[stored ? USAGE_RESULT_STORED : USAGE_RESULT_KEPT]);
    log_info("usage.received", LOG_S("order", s.serial), LOG_U("revision", s.revision),
             LOG_I("generated_at", s.generated_at), LOG_U("seats_held", s.seats_held), LOG_U("machines", s.machines),
             LOG_I("stored", stored), LOG_END);
    Volume__V1__UsageAck ack = VOLUME__V1__USAGE_ACK__INIT;
    ack.stored = stored == 1;
    if (rpc_reply_message(reply, &ack.base) != 0)
        rpc_reply_error(reply, GRPC_STATUS_INTERNAL, "cannot pack the acknowledgement");
}
