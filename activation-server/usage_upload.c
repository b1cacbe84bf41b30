/* usage_upload.c -- the upload loop (usage_upload.h). */
#include "usage_upload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "order_store.h"
#include "rpc_client.h"
#include "rpc_methods.h"
#include "task.h"
#include "usage_report.h"
#include "usage_store.h"

#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS (5 * 60 * 1000)

struct usage_upload {
    usage_upload_config cfg; /* strings point into the copies below */
    char *target, *ca_pem, *url, *password_file;
    rstore *redis;   /* the task's own connection */
    rpc_channel *ch; /* to the vendor; replaced after a failed round */
    rpc_client_method *report;
    task *t;
};

static void count(const usage_upload *u, int failed) {
    if (u->cfg.uploads[failed]) metric_inc(u->cfg.uploads[failed]);
}

static int open_channel(usage_upload *u) {
    rpc_channel_free(u->ch);
    rpc_client_tls tls = {.ca_pem = u->ca_pem};
    u->ch = rpc_channel_new(u->target, &tls);
    u->report = u->ch ? rpc_channel_method(u->ch, PA_RPC_USAGE_REPORT) : NULL;
    return u->report ? 0 : -1;
}

/* One order: make, sign, send, record. 0 done (also: nothing to report), -1 retry later. */
static int upload_one(usage_upload *u, const char *serial) {
    order_record rec;
    usage_report rep = {0};
    char err[512];
    int rc = order_store_load(u->redis, serial, &rec, err, sizeof err);
    if (rc == 1 || (rc == 0 && !rec.on_premises)) return order_record_clear(&rec), 0;
    if (rc == 0 && usage_report_make(u->redis, &rec, u->cfg.key, (int64_t)time(NULL), &rep, err, sizeof err) != 0)
        rc = strncmp(err, "wrong server", 12) == 0 ? 1 : -1; /* not ours to report: skip, do not retry */
    if (rc != 0) {
        log_warn("usage.upload_skipped", LOG_S("order", serial), LOG_S("error", err), LOG_END);
        order_record_clear(&rec);
        usage_report_clear(&rep);
        return rc > 0 ? 0 : -1;
    }
    Volume__V1__UsageReport msg;
    usage_report_message(&rec, &rep, &msg);
    rpc_result res;
    grpc_status_code st = rpc_call_message(u->ch, u->report, &msg.base, u->cfg.timeout_ms, &res);
    if (st == GRPC_STATUS_OK) {
        Volume__V1__UsageAck *ack = volume__v1__usage_ack__unpack(NULL, res.body_len, res.body);
        log_info("usage.uploaded", LOG_S("order", serial), LOG_I("generated_at", rep.generated_at),
                 LOG_I("stored", ack && ack->stored), LOG_S("target", u->target), LOG_END);
        if (ack) volume__v1__usage_ack__free_unpacked(ack, NULL);
        if (usage_store_uploaded(u->redis, serial, rep.generated_at, (int64_t)time(NULL), err, sizeof err) != 0)
            log_warn("usage.upload_unrecorded", LOG_S("order", serial), LOG_S("error", err), LOG_END);
        count(u, 0);
    } else {
        log_warn("usage.upload_failed", LOG_S("order", serial), LOG_S("target", u->target), LOG_I("code", st),
                 LOG_S("error", res.message), LOG_END);
        count(u, 1);
    }
    rpc_result_clear(&res);
    usage_report_clear(&rep);
    order_record_clear(&rec);
    return st == GRPC_STATUS_OK ? 0 : -1;
}

/* Every order once. 0 when all went (or there was nothing), -1 when one must be retried. */
static int round_once(usage_upload *u) {
    char(*serials)[ORDER_SERIAL_LEN + 1] = NULL, err[512];
    size_t n = 0;
    if (order_store_list(u->redis, &serials, &n, err, sizeof err) != 0) {
        log_warn("usage.upload_failed", LOG_S("order", "*"), LOG_S("error", err), LOG_END);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) rc |= upload_one(u, serials[i]);
    free(serials);
    return rc;
}

static void loop(task *t, void *arg) {
    usage_upload *u = arg;
    int64_t interval_ms = (int64_t)u->cfg.interval_s * 1000, backoff = RETRY_FIRST_MS;
    int64_t cap = interval_ms < RETRY_MAX_MS ? interval_ms : RETRY_MAX_MS;
    while (!task_stopping(t)) {
        bool ok = (u->ch || open_channel(u) == 0) && round_once(u) == 0;
        int64_t wait = ok ? interval_ms : backoff;
        if (!ok) {
            backoff = backoff * 2 < cap ? backoff * 2 : cap;
            open_channel(u); /* a fresh connection: no transport backoff left over from the outage */
        } else {
            backoff = RETRY_FIRST_MS;
        }
        while (wait > 0 && !task_stopping(t)) { /* task_sleep takes an int of milliseconds */
            int step = wait > 3600000 ? 3600000 : (int)wait;
            if (!task_sleep(t, step)) break;
            wait -= step;
        }
    }
}

static void upload_free(usage_upload *u) {
    rpc_channel_free(u->ch);
    rstore_free(u->redis);
    free(u->target);
    free(u->ca_pem);
    free(u->url);
    free(u->password_file);
    free(u);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

usage_upload *usage_upload_start(const usage_upload_config *cfg, char *err, size_t errlen) {
    usage_upload *u = calloc(1, sizeof *u);
    if (!u) return snprintf(err, errlen, "out of memory"), NULL;
    u->cfg = *cfg;
    if (u->cfg.timeout_ms <= 0) u->cfg.timeout_ms = 30000;
    if (u->cfg.interval_s <= 0) u->cfg.interval_s = 86400;
    u->target = dup_or_null(cfg->target);
    u->ca_pem = dup_or_null(cfg->ca_pem);
    u->url = dup_or_null(cfg->store.url);
    u->password_file = dup_or_null(cfg->store.password_file);
    u->cfg.store.url = u->url;
    u->cfg.store.password_file = u->password_file;
    if (!u->target || (cfg->ca_pem && !u->ca_pem) || (cfg->store.url && !u->url)) {
        snprintf(err, errlen, "out of memory");
        return upload_free(u), NULL;
    }
    if (!(u->redis = rstore_new(&u->cfg.store, true, err, errlen))) return upload_free(u), NULL;
    if (!(u->t = task_start("usage-upload", loop, u, err, errlen))) return upload_free(u), NULL;
    return u;
}

void usage_upload_stop(usage_upload *u) {
    if (!u) return;
    task_stop(u->t);
    upload_free(u);
}
