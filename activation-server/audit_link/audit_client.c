/* audit_client.c -- Verify, Submit and ListRevocations over mutual TLS
 * (see audit_client.h). */
#include "audit_client.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "rpc_client.h"
#include "rpc_methods.h"

/* One channel and its registered methods. A channel is replaced when it is
 * stuck in TRANSIENT_FAILURE: gRPC's own reconnect backoff grows to two
 * minutes, so after a long audit-server outage an old channel would keep
 * failing calls long after the server is back, while a fresh channel tries
 * at once. Calls hold a reference, so a replaced channel is freed only when
 * its last call returns. */
typedef struct chan {
    rpc_channel *ch;                  /* one mTLS connection to the audit server */
    rpc_client_method *verify;        /* registered once per channel */
    rpc_client_method *submit;
    rpc_client_method *list;
    int refs;                         /* the client's own + calls in flight (under mu) */
    int64_t created_ms;               /* replacements are at most one per second */
} chan;

struct audit_client {
    pthread_mutex_t mu;               /* guards `cur` and every chan's refs */
    chan *cur;                        /* the channel new calls use */
    char *target;                     /* copied from the config */
    char *ca, *cert, *key;            /* PEM texts, kept to build replacement channels */
    char *name_override;              /* may be NULL */
    char *origin;                     /* sent in every record */
    int verify_ms, submit_ms, list_ms;/* deadlines */
};

static char *load_pem(const char *what, const char *path, char *err, size_t errlen) {
    char why[200];
    if (!path || !*path) {
        snprintf(err, errlen, "audit client: %s file is required (mutual TLS)", what);
        return NULL;
    }
    char *pem = rpc_read_pem(path, why, sizeof why);
    if (!pem) snprintf(err, errlen, "audit client: %s %s: %s", what, path, why);
    return pem;
}

static void free_secret(char *p) {
    if (p) OPENSSL_cleanse(p, strlen(p));
    free(p);
}

static void chan_free(chan *k) {
    if (!k) return;
    if (k->ch) rpc_channel_free(k->ch);
    free(k);
}

static chan *chan_new(const audit_client *c) {
    chan *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    rpc_client_tls tls = {.ca_pem = c->ca, .cert_pem = c->cert, .key_pem = c->key,
                          .target_name_override = c->name_override};
    k->ch = rpc_channel_new(c->target, &tls);
    if (k->ch) {
        k->verify = rpc_channel_method(k->ch, PA_RPC_AUDIT_VERIFY);
        k->submit = rpc_channel_method(k->ch, PA_RPC_AUDIT_SUBMIT);
        k->list = rpc_channel_method(k->ch, PA_RPC_AUDIT_LIST_REVOCATIONS);
    }
    if (!k->ch || !k->verify || !k->submit || !k->list) {
        chan_free(k);
        return NULL;
    }
    k->refs = 1;
    k->created_ms = pa_mono_ms();
    return k;
}

static chan *acquire(audit_client *c) {
    pthread_mutex_lock(&c->mu);
    chan *k = c->cur;
    k->refs++;
    pthread_mutex_unlock(&c->mu);
    return k;
}

/* Drops a call's reference; after a failed call, swaps in a fresh channel
 * if this one is the current one and gRPC reports it failing. */
static void release(audit_client *c, chan *k, grpc_status_code st) {
    bool stuck = st != GRPC_STATUS_OK &&
                 grpc_channel_check_connectivity_state(rpc_channel_grpc(k->ch), 0) == GRPC_CHANNEL_TRANSIENT_FAILURE;
    chan *fresh = NULL, *dead = NULL;
    if (stuck && pa_mono_ms() - k->created_ms >= 1000) fresh = chan_new(c);
    pthread_mutex_lock(&c->mu);
    if (fresh && c->cur == k) {
        c->cur = fresh;
        fresh = NULL;
        k->refs--;                    /* the client's own reference */
    }
    if (--k->refs == 0) dead = k;
    pthread_mutex_unlock(&c->mu);
    chan_free(fresh);                 /* another thread replaced it first */
    chan_free(dead);
}

/* ":digits" or nothing: the port after a target's host. */
static bool port_ok(const char *p) {
    if (*p == '\0') return true;
    if (*p++ != ':' || !*p) return false;
    for (size_t i = 0; p[i]; i++)
        if (p[i] < '0' || p[i] > '9' || i >= 5) return false;
    return true;
}

int audit_target_host(const char *target, char *out, size_t n) {
    static const char *const schemes[] = {"dns:///", "dns:", "ipv4:", "ipv6:"};
    const char *p = target ? target : "";
    for (size_t i = 0; i < sizeof schemes / sizeof *schemes; i++)
        if (strncmp(p, schemes[i], strlen(schemes[i])) == 0) {
            p += strlen(schemes[i]);
            break;
        }
    const char *start = p, *end;
    if (*p == '[') {
        start = p + 1;
        end = strchr(start, ']');
        if (!end || !port_ok(end + 1)) return -1;
    } else {
        end = strchr(p, ':');
        if (!end) end = p + strlen(p);
        if (!port_ok(end)) return -1; /* "unix:/x", a bare IPv6 address */
    }
    size_t len = (size_t)(end - start);
    if (len == 0 || len >= n) return -1;
    memcpy(out, start, len);
    out[len] = '\0';
    return 0;
}

audit_client *audit_client_new(const audit_client_config *cfg, char *err, size_t errlen) {
    if (!cfg->target || !*cfg->target) {
        snprintf(err, errlen, "audit client: no audit server address");
        return NULL;
    }
    audit_client *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        snprintf(err, errlen, "audit client: cannot create its lock");
        free(c);
        return NULL;
    }
    /* The certificate must name the host we dial unless told otherwise;
     * gRPC would check the same, but only for targets it can parse, and
     * this way the log says which name is checked. */
    char host[256];
    const char *name = cfg->target_name_override && *cfg->target_name_override ? cfg->target_name_override : NULL;
    if (!name && audit_target_host(cfg->target, host, sizeof host) == 0) name = host;
    c->target = strdup(cfg->target);
    c->origin = strdup(cfg->origin ? cfg->origin : "");
    c->name_override = name ? strdup(name) : NULL;
    if (!name) {
        snprintf(err, errlen,
                 "audit client: the target %s has no host name to check the audit server's certificate "
                 "against; give the name (--audit-server-name)",
                 cfg->target);
    } else if (!c->target || !c->origin || !c->name_override) {
        snprintf(err, errlen, "out of memory");
    } else if ((c->ca = load_pem("CA", cfg->ca_file, err, errlen)) &&
               (c->cert = load_pem("certificate", cfg->cert_file, err, errlen)) &&
               (c->key = load_pem("private key", cfg->key_file, err, errlen)) && !(c->cur = chan_new(c))) {
        snprintf(err, errlen, "audit client: cannot create a channel to %s (bad certificate or key?)",
                 cfg->target);
    }
    if (!c->cur) {
        audit_client_free(c);
        return NULL;
    }
    c->verify_ms = cfg->verify_timeout_ms > 0 ? cfg->verify_timeout_ms : 300;
    c->submit_ms = cfg->submit_timeout_ms > 0 ? cfg->submit_timeout_ms : 5000;
    c->list_ms = cfg->list_timeout_ms > 0 ? cfg->list_timeout_ms : 2000;
    return c;
}

const char *audit_client_server_name(const audit_client *c) { return c->name_override; }

void audit_client_free(audit_client *c) {
    if (!c) return;
    chan_free(c->cur);                /* callers are gone: only our reference is left */
    pthread_mutex_destroy(&c->mu);
    free(c->target), free(c->origin), free(c->name_override);
    free_secret(c->ca), free_secret(c->cert), free_secret(c->key);
    free(c);
}

static void failed(const rpc_result *res, const char *what, char *err, size_t errlen) {
    if (err) snprintf(err, errlen, "%s: status %d: %s", what, (int)res->status, res->message);
}

int audit_client_verify_timeout_ms(const audit_client *c) { return c->verify_ms; }

audit_verify_result audit_client_verify(audit_client *c, const audit_record *r, char *detail,
                                        size_t detail_len) {
    return audit_client_verify_within(c, r, c->verify_ms, detail, detail_len);
}

audit_verify_result audit_client_verify_within(audit_client *c, const audit_record *r, int timeout_ms, char *detail,
                                               size_t detail_len) {
    char key_text[PK_TEXT_LEN + 1];
    Audit__V1__AuditRecord rec;
    Audit__V1__VerifyRequest req = AUDIT__V1__VERIFY_REQUEST__INIT;
    if (audit_record_to_proto(r, c->origin, key_text, &rec) != 0) {
        if (detail) snprintf(detail, detail_len, "key fields out of range");
        return AUDIT_VERIFY_UNAVAILABLE;
    }
    req.record = &rec;
    rpc_result res;
    audit_verify_result out = AUDIT_VERIFY_UNAVAILABLE;
    chan *k = acquire(c);
    grpc_status_code st = rpc_call_message(k->ch, k->verify, &req.base, timeout_ms > 0 ? timeout_ms : 1, &res);
    release(c, k, st);
    if (st != GRPC_STATUS_OK) {
        failed(&res, "Verify", detail, detail_len);
    } else {
        Audit__V1__VerifyResponse *vr = audit__v1__verify_response__unpack(NULL, res.body_len, res.body);
        if (!vr) {
            if (detail) snprintf(detail, detail_len, "Verify: malformed response");
        } else {
            if (vr->verdict == AUDIT__V1__VERDICT__VERDICT_GENUINE) out = AUDIT_VERIFY_GENUINE;
            else if (vr->verdict == AUDIT__V1__VERDICT__VERDICT_FORGED) out = AUDIT_VERIFY_FORGED;
            if (detail) snprintf(detail, detail_len, "%s", vr->reason ? vr->reason : "");
            audit__v1__verify_response__free_unpacked(vr, NULL);
        }
    }
    OPENSSL_cleanse(key_text, sizeof key_text);
    rpc_result_clear(&res);
    return out;
}

int audit_client_submit(audit_client *c, const audit_record *recs, size_t n, uint32_t *accepted,
                        uint32_t *duplicates, char *err, size_t errlen) {
    Audit__V1__AuditRecord *items = calloc(n ? n : 1, sizeof *items);
    Audit__V1__AuditRecord **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    char (*keys)[PK_TEXT_LEN + 1] = calloc(n ? n : 1, sizeof *keys);
    int rc = -1;
    if (!items || !ptrs || !keys) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (audit_record_to_proto(&recs[i], c->origin, keys[i], &items[i]) != 0) {
            snprintf(err, errlen, "record %s: key fields out of range", recs[i].request_id);
            goto out;
        }
        ptrs[i] = &items[i];
    }
    Audit__V1__SubmitRequest req = AUDIT__V1__SUBMIT_REQUEST__INIT;
    req.n_records = n;
    req.records = ptrs;
    rpc_result res;
    chan *k = acquire(c);
    grpc_status_code st = rpc_call_message(k->ch, k->submit, &req.base, c->submit_ms, &res);
    release(c, k, st);
    if (st != GRPC_STATUS_OK) {
        failed(&res, "Submit", err, errlen);
    } else {
        Audit__V1__SubmitResponse *sr = audit__v1__submit_response__unpack(NULL, res.body_len, res.body);
        if (!sr) {
            snprintf(err, errlen, "Submit: malformed response");
        } else {
            *accepted = sr->accepted;
            *duplicates = sr->duplicates;
            audit__v1__submit_response__free_unpacked(sr, NULL);
            rc = 0;
        }
    }
    rpc_result_clear(&res);
out:
    if (keys) OPENSSL_cleanse(keys, (n ? n : 1) * sizeof *keys);
    free(items), free(ptrs), free(keys);
    return rc;
}

/* Copies a log id from the server; false when it is too long to be one. */
static bool copy_log_id(char out[AUDIT_LOG_ID_MAX + 1], const char *in) {
    size_t n = in ? strlen(in) : 0;
    if (n > AUDIT_LOG_ID_MAX) return false;
    memcpy(out, in ? in : "", n);
    out[n] = '\0';
    return true;
}

void audit_revocation_page_free(audit_revocation_page *p) {
    if (!p) return;
    free(p->entries);
    p->entries = NULL;
    p->n = 0;
}

int audit_client_list_revocations(audit_client *c, uint64_t after, uint32_t limit, audit_revocation_page *out,
                                  char *err, size_t errlen) {
    Audit__V1__ListRevocationsRequest req = AUDIT__V1__LIST_REVOCATIONS_REQUEST__INIT;
    req.after_sequence = after;
    req.limit = limit;
    memset(out, 0, sizeof *out);
    rpc_result res;
    chan *k = acquire(c);
    grpc_status_code st = rpc_call_message(k->ch, k->list, &req.base, c->list_ms, &res);
    release(c, k, st);
    if (st != GRPC_STATUS_OK) {
        failed(&res, "ListRevocations", err, errlen);
        rpc_result_clear(&res);
        return -1;
    }
    int rc = audit_revocations_decode(res.body, res.body_len, out, err, errlen);
    rpc_result_clear(&res);
    if (rc == 0 && (rc = audit_revocation_page_check(out, after, err, errlen)) != 0) audit_revocation_page_free(out);
    return rc;
}

int audit_revocation_page_check(const audit_revocation_page *p, uint64_t after, char *err, size_t errlen) {
    uint64_t prev = after;
    for (size_t i = 0; i < p->n; i++) {
        if (p->entries[i].sequence <= prev) {
            snprintf(err, errlen,
                     "ListRevocations: sequence %" PRIu64 " follows %" PRIu64 " (asked for entries after %" PRIu64
                     "): the log must increase",
                     p->entries[i].sequence, prev, after);
            return -1;
        }
        prev = p->entries[i].sequence;
    }
    if (p->n > 0 && prev > p->last_sequence) {
        snprintf(err, errlen, "ListRevocations: entry %" PRIu64 " is past the log's last sequence %" PRIu64, prev,
                 p->last_sequence);
        return -1;
    }
    return 0;
}

int audit_revocations_decode(const uint8_t *body, size_t len, audit_revocation_page *out, char *err, size_t errlen) {
    int rc = -1;
    memset(out, 0, sizeof *out);
    Audit__V1__ListRevocationsResponse *lr = audit__v1__list_revocations_response__unpack(NULL, len, body);
    if (!lr) {
        snprintf(err, errlen, "ListRevocations: malformed response");
        return -1;
    }
    out->last_sequence = lr->last_sequence;
    out->after_found = lr->after_found;
    bool ids_ok = copy_log_id(out->epoch, lr->epoch) && copy_log_id(out->after_entry_id, lr->after_entry_id);
    if (lr->n_revocations > 0 && !(out->entries = calloc(lr->n_revocations, sizeof *out->entries))) {
        snprintf(err, errlen, "out of memory");
    } else {
        for (size_t i = 0; i < lr->n_revocations && ids_ok; i++) {
            const Audit__V1__Revocation *r = lr->revocations[i];
            out->entries[i].sequence = r->sequence;
            out->entries[i].group = r->group;
            out->entries[i].serial = r->serial;
            ids_ok = copy_log_id(out->entries[i].entry_id, r->entry_id);
        }
        if (ids_ok) {
            out->n = lr->n_revocations;
            rc = 0;
        } else {
            snprintf(err, errlen, "ListRevocations: an epoch or entry_id longer than %d characters", AUDIT_LOG_ID_MAX);
            audit_revocation_page_free(out);
        }
    }
    audit__v1__list_revocations_response__free_unpacked(lr, NULL);
    return rc;
}
