/* user_cli.h -- `admin-server user COMMAND`: operator accounts from the
 * command line (docs/admin.md, "Process and options"), with the daemon's
 * configuration (file, PA_ADMIN_* variables, flags), so they reach the
 * same Redis A. Exit codes: 0 done, 1 failed (no such account, name taken,
 * store down), 2 usage error (a bad name, role or password included). */
#ifndef PA_ADMIN_USER_CLI_H
#define PA_ADMIN_USER_CLI_H

#include "daemon.h"

/* argv[0] is "user", argv[1] the command. Returns the exit code. */
int user_cli_main(int argc, char **argv, const daemon_spec *spec);

#endif
