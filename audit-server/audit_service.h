/* audit_service.h -- the audit.v1.Audit methods on the shared rpc runtime.
 *
 * Each rpc worker thread owns an audit_store connection and a secret cache
 * (worker_init), so handlers take no locks. The handlers never trust the
 * caller: every call is first checked against the client allow-list and CRL
 * (PERMISSION_DENIED before any work), Verify and Submit decode the key text
 * themselves, and the caller's identity in the trail is the CN of its client
 * certificate, not anything it says about itself. */
#ifndef PA_AUDIT_SERVICE_H
#define PA_AUDIT_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "client_auth.h"
#include "redis_store.h"
#include "rpc_server.h"
#include "secret_wrap.h"

#define AUDIT_SUBMIT_MAX_RECORDS 1000    /* records per Submit call */
#define AUDIT_LIST_DEFAULT 1000          /* ListRevocations entries when limit is 0 */
#define AUDIT_LIST_MAX 10000             /* ListRevocations cap */

/* Shared, read-only configuration every worker starts from. */
typedef struct audit_service {
    rstore_config store;          /* Redis B as user `audit` */
    uint8_t kek[KEK_LEN];         /* the audit side's key-encryption key */
    uint32_t list_default;        /* entries when the caller asks for 0 */
    uint32_t list_max;            /* entries at most, whatever the caller asks */
    const client_auth *clients;   /* who may call: allow-list and CRL (client_auth.h) */
    const client_auth *revokers;  /* who may also call Revoke (--allow-revoke-client); NULL: nobody */
    int64_t request_retention_s;  /* how long a request id is remembered (Submit idempotency) */
} audit_service;

/* rpc_server_config.worker_init / worker_free for an audit_service app. */
void *audit_service_worker_init(int worker_index, void *app);
void audit_service_worker_free(void *worker_state);

/* The method table: Verify, Submit, ListRevocations, Revoke. */
const rpc_method *audit_service_methods(size_t *n);

#endif
