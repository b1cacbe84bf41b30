/* audit_revoke.h -- the admin server's mTLS link to the audit server, for
 * revocations in the vendor-hosted deployment (docs/admin.md).
 *
 * A revocation made in the console goes to audit.v1.Audit/Revoke, which
 * appends it to the audit server's revocation log: the one log
 * ListRevocations serves and every activation server pulls, so a key is
 * revoked in one place whoever revoked it. The audit server accepts Revoke
 * only from certificates it lists with --allow-revoke-client. The channel is
 * shared by the connection threads (rpc_call is thread-safe). */
#ifndef PA_ADMIN_AUDIT_REVOKE_H
#define PA_ADMIN_AUDIT_REVOKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct audit_revoker audit_revoker;

/* --audit-address and the PEM files --audit-ca, --audit-cert, --audit-key.
 * NULL with err naming the option that failed. */
audit_revoker *audit_revoker_new(const char *address, const char *ca_file, const char *cert_file, const char *key_file,
                                 char *err, size_t errlen);
void audit_revoker_free(audit_revoker *a);

/* Revokes a key; `by` is the operator, for the audit trail. 0 done
 * (*sequence, *newly), 1 the audit server refused (err: its message;
 * *denied when it was PERMISSION_DENIED), -1 it could not be reached. */
int audit_revoker_revoke(audit_revoker *a, uint32_t group, uint32_t serial, const char *reason, const char *by,
                         uint64_t *sequence, bool *newly, bool *denied, char *err, size_t errlen);

/* One revocation of the log. */
typedef struct audit_log_entry {
    uint64_t sequence;  /* its place in the log */
    uint32_t group;     /* the key's group */
    uint32_t serial;    /* the key's serial */
    char reason[129];   /* why */
    int64_t revoked_at; /* unix seconds */
} audit_log_entry;

/* Up to `max` entries after `after`, oldest first, into out (*n); *last is
 * the log's highest sequence. 0, or -1 with err. */
int audit_revoker_list(audit_revoker *a, uint64_t after, uint32_t max, audit_log_entry *out, size_t *n, uint64_t *last,
                       char *err, size_t errlen);

#endif
