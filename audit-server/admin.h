/* admin.h -- the operator's side of the audit server, as subcommands of the
 * same binary so they share its configuration (file, PA_AUDIT_* env, flags):
 *
 *   audit-server revoke --group G --serial S --reason TEXT
 *   audit-server revocations [--after SEQ] [--limit N]
 *   audit-server trail [--group G] [--serial S] [--count N]
 *
 * They talk to Redis B directly as the audit user, through the same
 * audit_store scripts the server uses, so a manual revocation gets its
 * sequence number from the same counter and lands in the same log that
 * activation servers pull. Output is one JSON object per line. */
#ifndef PA_AUDIT_ADMIN_H
#define PA_AUDIT_ADMIN_H

#include <stdbool.h>

/* True when argv[1] names a subcommand. */
bool audit_admin_is_command(const char *arg);

/* Runs the subcommand argv[0] with its flags; returns the exit status. */
int audit_admin_main(int argc, char **argv);

#endif
