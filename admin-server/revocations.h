/* revocations.h -- revoking keys from the admin API (docs/admin.md, "Routes").
 *
 * Two deployments, one route:
 *   - vendor-hosted (--audit-address given): the revocation goes to the audit
 *     server's Revoke (audit_revoke.h), appended to the revocation log every
 *     activation server pulls, so revocations keep one source; GET reads
 *     that log (ListRevocations).
 *   - on premises (no audit server): the serial is added to {g:ID}:revoked
 *     on Redis A, which volume.lua and policy.lua read, and the revocation is
 *     recorded in the stream admin:revocations, which GET reads.
 * Lists are newest first. Each revocation is written to the trail as
 * key.revoke, target "GROUP:SERIAL". */
#ifndef PA_ADMIN_REVOCATIONS_H
#define PA_ADMIN_REVOCATIONS_H

#include "audit_revoke.h"
#include "http_api.h"

/* The audit link, or NULL on premises; kept by pointer. */
void revocations_setup(audit_revoker *audit);

void revocations_create(const http_request *rq); /* POST /api/v1/revocations {"group","serial","reason"} */
void revocations_list(const http_request *rq);   /* GET /api/v1/revocations?limit=&cursor= */

#endif
