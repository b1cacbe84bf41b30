/* audit_revoke.c -- Revoke and ListRevocations over mTLS (audit_revoke.h). */
#include "audit_revoke.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/v1/audit.pb-c.h"
#include "errbuf.h"
#include "rpc_client.h"
#include "rpc_methods.h"

#define CALL_MS 5000 /* a revocation is one Redis script on the audit side */

struct audit_revoker {
    rpc_channel *ch;           /* the mTLS channel to --audit-address */
    rpc_client_method *revoke; /* audit.v1.Audit/Revoke */
    rpc_client_method *list;   /* audit.v1.Audit/ListRevocations */
};

audit_revoker *audit_revoker_new(const char *address, const char *ca_file, const char *cert_file, const char *key_file,
                                 char *err, size_t errlen) {
    char why[256];
    char *ca = NULL, *cert = NULL, *key = NULL;
    audit_revoker *a = NULL;
    if (!ca_file || !cert_file || !key_file) {
        err_set(err, errlen, "--audit-address needs --audit-ca, --audit-cert and --audit-key (mutual TLS)");
    } else if (!(ca = rpc_read_pem(ca_file, why, sizeof why))) {
        err_set(err, errlen, "--audit-ca: %s", why);
    } else if (!(cert = rpc_read_pem(cert_file, why, sizeof why))) {
        err_set(err, errlen, "--audit-cert: %s", why);
    } else if (!(key = rpc_read_pem(key_file, why, sizeof why))) {
        err_set(err, errlen, "--audit-key: %s", why);
    } else if (!(a = calloc(1, sizeof *a))) {
        err_set(err, errlen, "out of memory");
    } else {
        rpc_client_tls tls = {.ca_pem = ca, .cert_pem = cert, .key_pem = key};
        if (!(a->ch = rpc_channel_new(address, &tls)) ||
            !(a->revoke = rpc_channel_method(a->ch, PA_RPC_AUDIT_REVOKE)) ||
            !(a->list = rpc_channel_method(a->ch, PA_RPC_AUDIT_LIST_REVOCATIONS))) {
            err_set(err, errlen, "--audit-address '%s': cannot make a channel", address);
            audit_revoker_free(a), a = NULL;
        }
    }
    free(ca), free(cert);
    if (key) {
        memset(key, 0, strlen(key));
        free(key);
    }
    return a;
}

void audit_revoker_free(audit_revoker *a) {
    if (!a) return;
    rpc_channel_free(a->ch);
    free(a);
}

int audit_revoker_revoke(audit_revoker *a, uint32_t group, uint32_t serial, const char *reason, const char *by,
                         uint64_t *sequence, bool *newly, bool *denied, char *err, size_t errlen) {
    Audit__V1__RevokeRequest req = AUDIT__V1__REVOKE_REQUEST__INIT;
    req.group = group;
    req.serial = serial;
    req.reason = (char *)reason;
    req.requested_by = (char *)(by ? by : "");
    rpc_result res;
    grpc_status_code st = rpc_call_message(a->ch, a->revoke, &req.base, CALL_MS, &res);
    int rc = 0;
    *denied = st == GRPC_STATUS_PERMISSION_DENIED;
    if (st == GRPC_STATUS_OK) {
        Audit__V1__RevokeResponse *r = audit__v1__revoke_response__unpack(NULL, res.body_len, res.body);
        if (r) {
            *sequence = r->sequence;
            *newly = r->newly_revoked;
            audit__v1__revoke_response__free_unpacked(r, NULL);
        } else {
            rc = err_set(err, errlen, "the audit server's answer does not parse");
        }
    } else if (st == GRPC_STATUS_INVALID_ARGUMENT || st == GRPC_STATUS_PERMISSION_DENIED) {
        snprintf(err, errlen, "%s", res.message);
        rc = 1;
    } else {
        rc = err_set(err, errlen, "audit server: %s", res.message);
    }
    rpc_result_clear(&res);
    return rc;
}

int audit_revoker_list(audit_revoker *a, uint64_t after, uint32_t max, audit_log_entry *out, size_t *n, uint64_t *last,
                       char *err, size_t errlen) {
    Audit__V1__ListRevocationsRequest req = AUDIT__V1__LIST_REVOCATIONS_REQUEST__INIT;
    req.after_sequence = after;
    req.limit = max;
    rpc_result res;
    int rc = 0;
    *n = 0;
    if (rpc_call_message(a->ch, a->list, &req.base, CALL_MS, &res) != GRPC_STATUS_OK) {
        rc = err_set(err, errlen, "audit server: %s", res.message);
    } else {
        Audit__V1__ListRevocationsResponse *r =
            audit__v1__list_revocations_response__unpack(NULL, res.body_len, res.body);
        if (!r) rc = err_set(err, errlen, "the audit server's answer does not parse");
        for (size_t i = 0; r && i < r->n_revocations && *n < max; i++) {
            const Audit__V1__Revocation *v = r->revocations[i];
            out[*n] = (audit_log_entry){
                .sequence = v->sequence, .group = v->group, .serial = v->serial, .revoked_at = v->revoked_at};
            snprintf(out[*n].reason, sizeof out[*n].reason, "%s", v->reason ? v->reason : "");
            (*n)++;
        }
        if (r) *last = r->last_sequence;
        if (r) audit__v1__list_revocations_response__free_unpacked(r, NULL);
    }
    rpc_result_clear(&res);
    return rc;
}
