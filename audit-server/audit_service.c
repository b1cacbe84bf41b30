/* audit_service.c -- Verify, Submit, ListRevocations and Revoke.
 *
 * Verify costs one Redis round trip (the record script) plus a MAC, and a
 * second round trip only the first time a worker meets a group. Submit costs
 * one round trip per batch: the whole batch goes to Redis in one script, so
 * "stored before answering" holds for every record or for none. */
#include "audit_service.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/v1/audit.pb-c.h"
#include "audit_metrics.h"
#include "audit_store.h"
#include "client_auth.h"
#include "keycodec.h"
#include "log.h"
#include "rpc_methods.h"
#include "secret_cache.h"
#include "verdict.h"

typedef struct audit_worker {
    audit_store *store;           /* this worker's Redis B connection */
    secret_cache *cache;          /* this worker's prepared second secrets */
    client_auth_cache *clients;   /* this worker's decisions about client certificates */
    client_auth_cache *revokers;  /* ... and about who may call Revoke */
    const audit_service *svc;     /* shared configuration */
} audit_worker;

void *audit_service_worker_init(int worker_index, void *app) {
    const audit_service *svc = app;
    char err[256];
    audit_worker *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->svc = svc;
    w->store = audit_store_open(&svc->store, true, err, sizeof err);
    if (w->store) audit_store_set_retention(w->store, svc->request_retention_s);
    w->cache = secret_cache_new(svc->kek);
    w->clients = svc->clients ? client_auth_cache_new(svc->clients) : NULL;
    w->revokers = svc->revokers ? client_auth_cache_new(svc->revokers) : NULL;
    if (!w->store || !w->cache || (svc->clients && !w->clients) || (svc->revokers && !w->revokers)) {
        log_error("audit.worker.init", LOG_I("worker", worker_index), LOG_S("error", err), LOG_END);
        audit_service_worker_free(w);
        return NULL;
    }
    return w;
}

void audit_service_worker_free(void *worker_state) {
    audit_worker *w = worker_state;
    if (!w) return;
    audit_store_close(w->store);
    secret_cache_free(w->cache);
    client_auth_cache_free(w->clients);
    client_auth_cache_free(w->revokers);
    free(w);
}

static const char *or_empty(const char *s) { return s ? s : ""; }

static const char *peer_cn(rpc_ctx *ctx) {
    const char *cn = rpc_ctx_peer_identity(ctx);
    return cn ? cn : "";
}

/* The client allow-list and CRL, before any work: a refused caller gets
 * PERMISSION_DENIED, a count, and a log line (warn the first time this
 * worker meets the certificate, debug after, so a client retrying every
 * half second does not flood the log). */
static bool caller_allowed(rpc_ctx *ctx, audit_worker *w, const char *method, rpc_reply *reply) {
    if (!w->clients) return true;
    char who[160];
    bool first;
    client_verdict v = client_auth_check(w->clients, ctx, who, sizeof who, &first);
    if (v == CLIENT_ALLOWED) return true;
    metric_inc(audit_metrics_get()->clients_refused[v]);
    log_emit(first ? LOG_LEVEL_WARN : LOG_LEVEL_DEBUG, "audit.client.refused", LOG_S("reason", client_verdict_name(v)),
             LOG_S("method", method), LOG_S("client", who), LOG_S("peer", rpc_ctx_peer(ctx)), LOG_END);
    rpc_reply_error(reply, GRPC_STATUS_PERMISSION_DENIED,
                    v == CLIENT_REVOKED ? "client certificate revoked" : "client certificate not allowed");
    return false;
}

/* Printable ASCII of at most `max` characters (empty allowed). */
static bool text_ok(const char *s, size_t max) {
    size_t n = 0;
    for (; s && s[n]; n++)
        if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e || n >= max) return false;
    return true;
}

static bool request_id_ok(const char *s, bool required) {
    size_t n = strlen(or_empty(s));
    if (n == 0) return !required;
    if (n > AUDIT_REQUEST_ID_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '-' || c == '_' || c == '.' || c == ':';
        if (!ok) return false;
    }
    return true;
}

/* Checks one record's fields; on failure names the field (prefixed by
 * `where`, e.g. "records[3]") in err. The key itself is checked later. */
static bool record_ok(const Audit__V1__AuditRecord *r, bool id_required, const char *where,
                      char *err, size_t errlen) {
    const char *bad = NULL;
    if (!request_id_ok(r->request_id, id_required))
        bad = id_required ? "request_id: required, 1-64 characters of [A-Za-z0-9._:-]"
                          : "request_id: at most 64 characters of [A-Za-z0-9._:-]";
    else if (r->machine_id.len > AUDIT_MACHINE_ID_MAX)
        bad = "machine_id: at most 64 bytes";
    else if (!text_ok(r->client_address, AUDIT_TEXT_MAX))
        bad = "client_address: at most 128 printable characters";
    else if (!text_ok(r->origin, AUDIT_TEXT_MAX))
        bad = "origin: at most 128 printable characters";
    else if (!text_ok(r->sample_reason, AUDIT_TEXT_MAX))
        bad = "sample_reason: at most 128 printable characters";
    if (!bad) return true;
    snprintf(err, errlen, "%s.%s", where, bad);
    return false;
}

/* ------------------------------------------------------------------ Verify */

static void reply_verify(rpc_reply *reply, const verdict *v) {
    Audit__V1__VerifyResponse resp = AUDIT__V1__VERIFY_RESPONSE__INIT;
    resp.verdict = v->kind == VERDICT_KIND_GENUINE ? AUDIT__V1__VERDICT__VERDICT_GENUINE
                                                   : AUDIT__V1__VERDICT__VERDICT_FORGED;
    resp.reason = (char *)v->reason;
    rpc_reply_message(reply, &resp.base);
}

static void verify_key(rpc_ctx *ctx, audit_worker *w, const Audit__V1__AuditRecord *r,
                       const pk_fields *key, rpc_reply *reply) {
    const audit_metrics *m = audit_metrics_get();
    char err[256];
    verdict v;
    audit_outcome out = {0};
    int rc = verdict_judge(w->cache, audit_store_rstore(w->store), PK_OK, key, &v, err, sizeof err);
    if (rc == 0) {
        audit_entry e = {
            .request_id = r->request_id, .source = "verify", .group = key->group,
            .serial = key->serial, .verdict = verdict_name(v.kind), .reason = v.reason,
            .machine_id = r->machine_id.data, .machine_id_len = r->machine_id.len,
            .client_address = r->client_address, .origin = r->origin, .peer = peer_cn(ctx),
            .sample_reason = r->sample_reason, .received_at = r->received_at,
            .revoke = v.revoke, .revoke_reason = v.reason,
        };
        rc = audit_store_record(w->store, &e, NULL, &out, err, sizeof err);
    }
    if (rc != 0) {
        metric_inc(m->store_errors);
        log_error("audit.verify.unavailable", LOG_U("group", key->group), LOG_U("serial", key->serial),
                  LOG_S("peer_cn", peer_cn(ctx)), LOG_S("error", err), LOG_END);
        rpc_reply_error(reply, GRPC_STATUS_UNAVAILABLE, "audit store unavailable, try again");
        return;
    }
    metric_inc(m->verdicts[AUDIT_SOURCE_VERIFY][v.kind]);
    if (out.newly_revoked) metric_inc(m->revocations);
    log_info("audit.verify", LOG_U("group", key->group), LOG_U("serial", key->serial),
             LOG_S("verdict", verdict_name(v.kind)), LOG_S("reason", v.reason),
             LOG_U("revocation_sequence", out.sequence), LOG_S("request_id", or_empty(r->request_id)),
             LOG_S("peer_cn", peer_cn(ctx)), LOG_END);
    reply_verify(reply, &v);
}

static void handle_verify(rpc_ctx *ctx, const uint8_t *req, size_t req_len, rpc_reply *reply) {
    audit_worker *w = rpc_ctx_worker(ctx);
    char err[256];
    if (!caller_allowed(ctx, w, "Verify", reply)) return;
    Audit__V1__VerifyRequest *vr = audit__v1__verify_request__unpack(NULL, req_len, req);
    if (!vr) {
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "malformed VerifyRequest");
        return;
    }
    const Audit__V1__AuditRecord *r = vr->record;
    pk_fields key;
    pk_error perr;
    if (!r) {
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "record: required");
    } else if (!record_ok(r, false, "record", err, sizeof err)) {
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "%s", err);
    } else if (pk_decode(or_empty(r->product_key), strlen(or_empty(r->product_key)), &key, &perr) != PK_OK) {
        char why[160];
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "record.product_key: %s",
                        pk_strerror(&perr, why, sizeof why));
    } else {
        verify_key(ctx, w, r, &key, reply);
    }
    audit__v1__verify_request__free_unpacked(vr, NULL);
}

/* ------------------------------------------------------------------ Submit */

/* Fills a queue record from a proto record; the key is decoded here so the
 * queue never holds key text. */
static void to_queued(const Audit__V1__AuditRecord *r, const char *peer, queued_record *q) {
    memset(q, 0, sizeof *q);
    snprintf(q->request_id, sizeof q->request_id, "%s", r->request_id);
    pk_fields key;
    pk_status st = pk_decode(or_empty(r->product_key), strlen(or_empty(r->product_key)), &key, NULL);
    snprintf(q->key_status, sizeof q->key_status, "%s", st == PK_OK ? "ok" : pk_status_name(st));
    if (st == PK_OK) {
        q->group = key.group;
        q->serial = key.serial;
        q->upgrade = key.upgrade;
        q->security_second = key.security_second;
    }
    memcpy(q->machine_id, r->machine_id.data, r->machine_id.len);
    q->machine_id_len = r->machine_id.len;
    snprintf(q->client_address, sizeof q->client_address, "%s", or_empty(r->client_address));
    snprintf(q->origin, sizeof q->origin, "%s", or_empty(r->origin));
    snprintf(q->peer, sizeof q->peer, "%s", peer);
    snprintf(q->sample_reason, sizeof q->sample_reason, "%s", or_empty(r->sample_reason));
    q->received_at = r->received_at;
}

static void submit_batch(rpc_ctx *ctx, audit_worker *w, const Audit__V1__SubmitRequest *sr,
                         rpc_reply *reply) {
    const audit_metrics *m = audit_metrics_get();
    char err[256], where[32];
    for (size_t i = 0; i < sr->n_records; i++) {
        snprintf(where, sizeof where, "records[%zu]", i);
        if (!record_ok(sr->records[i], true, where, err, sizeof err)) {
            rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "%s", err);
            return;
        }
    }
    queued_record *q = calloc(sr->n_records ? sr->n_records : 1, sizeof *q);
    if (!q) {
        rpc_reply_error(reply, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    for (size_t i = 0; i < sr->n_records; i++) to_queued(sr->records[i], peer_cn(ctx), &q[i]);
    uint32_t accepted = 0, duplicates = 0;
    int rc = audit_store_enqueue(w->store, q, sr->n_records, &accepted, &duplicates, err, sizeof err);
    free(q);
    if (rc != 0) {
        metric_inc(m->store_errors);
        log_error("audit.submit.unavailable", LOG_U("records", sr->n_records),
                  LOG_S("peer_cn", peer_cn(ctx)), LOG_S("error", err), LOG_END);
        rpc_reply_error(reply, GRPC_STATUS_UNAVAILABLE, "audit store unavailable, nothing stored; try again");
        return;
    }
    metric_add(m->submitted_accepted, accepted);
    metric_add(m->submitted_duplicate, duplicates);
    log_info("audit.submit", LOG_U("records", sr->n_records), LOG_U("accepted", accepted),
             LOG_U("duplicates", duplicates), LOG_S("peer_cn", peer_cn(ctx)), LOG_END);
    Audit__V1__SubmitResponse resp = AUDIT__V1__SUBMIT_RESPONSE__INIT;
    resp.accepted = accepted;
    resp.duplicates = duplicates;
    rpc_reply_message(reply, &resp.base);
}

static void handle_submit(rpc_ctx *ctx, const uint8_t *req, size_t req_len, rpc_reply *reply) {
    if (!caller_allowed(ctx, rpc_ctx_worker(ctx), "Submit", reply)) return;
    Audit__V1__SubmitRequest *sr = audit__v1__submit_request__unpack(NULL, req_len, req);
    if (!sr) {
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "malformed SubmitRequest");
        return;
    }
    if (sr->n_records > AUDIT_SUBMIT_MAX_RECORDS)
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "records: at most %d per call, got %zu",
                        AUDIT_SUBMIT_MAX_RECORDS, sr->n_records);
    else
        submit_batch(ctx, rpc_ctx_worker(ctx), sr, reply);
    audit__v1__submit_request__free_unpacked(sr, NULL);
}

/* --------------------------------------------------------- ListRevocations */

static void reply_revocations(rpc_reply *reply, const revocation_page *page) {
    Audit__V1__ListRevocationsResponse resp = AUDIT__V1__LIST_REVOCATIONS_RESPONSE__INIT;
    size_t n = page->n;
    Audit__V1__Revocation *items = calloc(n ? n : 1, sizeof *items);
    Audit__V1__Revocation **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    if (!items || !ptrs) {
        free(items), free(ptrs);
        rpc_reply_error(reply, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const revocation_entry *e = &page->entries[i];
        audit__v1__revocation__init(&items[i]);
        items[i].sequence = e->sequence;
        items[i].group = e->group;
        items[i].serial = e->serial;
        items[i].reason = (char *)e->reason;
        items[i].revoked_at = e->revoked_at;
        items[i].entry_id = (char *)e->entry_id;
        ptrs[i] = &items[i];
    }
    resp.n_revocations = n;
    resp.revocations = ptrs;
    resp.last_sequence = page->last_sequence;
    resp.epoch = (char *)page->epoch;
    resp.after_found = page->after_found;
    resp.after_entry_id = (char *)page->after_entry_id;
    rpc_reply_message(reply, &resp.base);
    free(items), free(ptrs);
}

static void handle_list(rpc_ctx *ctx, const uint8_t *req, size_t req_len, rpc_reply *reply) {
    audit_worker *w = rpc_ctx_worker(ctx);
    if (!caller_allowed(ctx, w, "ListRevocations", reply)) return;
    Audit__V1__ListRevocationsRequest *lr = audit__v1__list_revocations_request__unpack(NULL, req_len, req);
    if (!lr) {
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "malformed ListRevocationsRequest");
        return;
    }
    uint32_t limit = lr->limit == 0 ? w->svc->list_default
                                    : (lr->limit > w->svc->list_max ? w->svc->list_max : lr->limit);
    uint64_t after = lr->after_sequence;
    audit__v1__list_revocations_request__free_unpacked(lr, NULL);
    revocation_page page;
    char err[256];
    if (audit_store_list_revocations(w->store, after, limit, &page, err, sizeof err) != 0) {
        metric_inc(audit_metrics_get()->store_errors);
        log_error("audit.list.unavailable", LOG_S("peer_cn", peer_cn(ctx)), LOG_S("error", err), LOG_END);
        rpc_reply_error(reply, GRPC_STATUS_UNAVAILABLE, "audit store unavailable, try again");
        return;
    }
    /* Activation servers poll every half second: an empty answer is routine. */
    log_emit(page.n ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG, "audit.list_revocations", LOG_U("after", after),
             LOG_U("returned", page.n), LOG_U("last_sequence", page.last_sequence), LOG_S("epoch", page.epoch),
             LOG_S("peer_cn", peer_cn(ctx)), LOG_END);
    reply_revocations(reply, &page);
    free(page.entries);
}

/* ------------------------------------------------------------------ Revoke */

/* Revoke needs more than the allow-list: the certificate must also be one
 * --allow-revoke-client names. Refused callers are logged and counted as
 * any refused client. */
static bool revoker_allowed(rpc_ctx *ctx, audit_worker *w, rpc_reply *reply) {
    char who[160];
    bool first = true;
    client_verdict v = w->revokers ? client_auth_check(w->revokers, ctx, who, sizeof who, &first) : CLIENT_NOT_ALLOWED;
    if (v == CLIENT_ALLOWED) return true;
    if (!w->revokers) snprintf(who, sizeof who, "%s", peer_cn(ctx));
    metric_inc(audit_metrics_get()->clients_refused[v]);
    log_emit(first ? LOG_LEVEL_WARN : LOG_LEVEL_DEBUG, "audit.client.refused", LOG_S("reason", client_verdict_name(v)),
             LOG_S("method", "Revoke"), LOG_S("client", who), LOG_S("peer", rpc_ctx_peer(ctx)), LOG_END);
    rpc_reply_error(reply, GRPC_STATUS_PERMISSION_DENIED,
                    w->revokers ? "client certificate not allowed to revoke (--allow-revoke-client)"
                                : "Revoke is not enabled on this audit server (--allow-revoke-client)");
    return false;
}

static void revoke_key(rpc_ctx *ctx, audit_worker *w, const Audit__V1__RevokeRequest *rr, rpc_reply *reply) {
    char err[256], origin[AUDIT_TEXT_MAX + 1];
    snprintf(origin, sizeof origin, "%s", rr->requested_by && *rr->requested_by ? rr->requested_by : "admin");
    audit_entry e = {.request_id = "",
                     .source = "manual",
                     .group = rr->group,
                     .serial = rr->serial,
                     .verdict = "revoked",
                     .reason = rr->reason,
                     .origin = origin,
                     .peer = peer_cn(ctx),
                     .revoke = true,
                     .revoke_reason = rr->reason};
    audit_outcome out = {0};
    if (audit_store_record(w->store, &e, NULL, &out, err, sizeof err) != 0) {
        metric_inc(audit_metrics_get()->store_errors);
        log_error("audit.revoke.unavailable", LOG_U("group", rr->group), LOG_U("serial", rr->serial),
                  LOG_S("peer_cn", peer_cn(ctx)), LOG_S("error", err), LOG_END);
        rpc_reply_error(reply, GRPC_STATUS_UNAVAILABLE, "audit store unavailable, nothing revoked; try again");
        return;
    }
    if (out.newly_revoked) metric_inc(audit_metrics_get()->revocations);
    log_info("audit.revoke", LOG_U("group", rr->group), LOG_U("serial", rr->serial), LOG_S("reason", rr->reason),
             LOG_U("revocation_sequence", out.sequence), LOG_S("new", out.newly_revoked ? "1" : "0"),
             LOG_S("requested_by", origin), LOG_S("peer_cn", peer_cn(ctx)), LOG_END);
    Audit__V1__RevokeResponse resp = AUDIT__V1__REVOKE_RESPONSE__INIT;
    resp.sequence = out.sequence;
    resp.newly_revoked = out.newly_revoked;
    rpc_reply_message(reply, &resp.base);
}

static void handle_revoke(rpc_ctx *ctx, const uint8_t *req, size_t req_len, rpc_reply *reply) {
    audit_worker *w = rpc_ctx_worker(ctx);
    if (!caller_allowed(ctx, w, "Revoke", reply) || !revoker_allowed(ctx, w, reply)) return;
    Audit__V1__RevokeRequest *rr = audit__v1__revoke_request__unpack(NULL, req_len, req);
    if (!rr) {
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "malformed RevokeRequest");
        return;
    }
    if (rr->group > PK_GROUP_MAX)
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "group: at most %u", PK_GROUP_MAX);
    else if (rr->serial > PK_SERIAL_MAX)
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "serial: at most %u", PK_SERIAL_MAX);
    else if (!rr->reason || !*rr->reason || !text_ok(rr->reason, AUDIT_TEXT_MAX))
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "reason: required, 1-128 printable characters");
    else if (!text_ok(rr->requested_by, AUDIT_TEXT_MAX))
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "requested_by: at most 128 printable characters");
    else revoke_key(ctx, w, rr, reply);
    audit__v1__revoke_request__free_unpacked(rr, NULL);
}

static const rpc_method METHODS[] = {
    {PA_RPC_AUDIT_VERIFY, handle_verify, 16 * 1024, NULL},
    {PA_RPC_AUDIT_SUBMIT, handle_submit, 4 * 1024 * 1024, NULL},
    {PA_RPC_AUDIT_LIST_REVOCATIONS, handle_list, 1024, NULL},
    {PA_RPC_AUDIT_REVOKE, handle_revoke, 1024, NULL},
};

const rpc_method *audit_service_methods(size_t *n) {
    *n = sizeof METHODS / sizeof *METHODS;
    return METHODS;
}
