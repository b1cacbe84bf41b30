/* fault_audit.h -- the audit-server binary for the fault tests, with an
 * act_env's certificates (env_make_certs) and Redis B: optionally inside a
 * network namespace (netns_link), listening on any address there. */
#ifndef TEST_FAULT_AUDIT_H
#define TEST_FAULT_AUDIT_H

#include <stddef.h>
#include <sys/types.h>

#include "act_env.h"

/* Starts it listening on listen_ip (a free port), reaching Redis B at
 * redis_ip; `prefix` (4 entries, or NULL) runs it through `ip netns exec`.
 * Waits until it accepts; its "host:port" goes to target. Returns the pid,
 * or -1. Its log is e->dir/audit-server.log. */
pid_t fault_audit_start(act_env *e, const char *const *prefix, const char *listen_ip, const char *redis_ip,
                        char target[64]);
/* The activation server's flags for auditing against `target` (with
 * e->certs; the certificate is checked against "localhost"), followed by
 * `more` (NULL-terminated). In `out`, which has room for `cap` entries. */
void fault_audit_flags(act_env *e, const char *target, const char *const *more, const char **out, size_t cap);

#endif
