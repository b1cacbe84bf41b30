/* order_cli.h -- `activation-server order COMMAND`: the operator's order
 * commands (docs/volume.md, "Import" and "Operator controls").
 *
 * They run from the server's own binary with the server's configuration
 * (the same file, PA_ACTIVATION_* variables and flags), so they reach the
 * same Redis A and know the same keys as the daemon; the `order` options
 * are added on top. Exit codes are the keystore's: 0 done, 1 failed or
 * refused, 2 usage error. */
#ifndef PA_ACTIVATION_ORDER_CLI_H
#define PA_ACTIVATION_ORDER_CLI_H

#include "daemon.h"

/* argv[0] is "order", argv[1] the command. `spec` is the daemon's, whose
 * options are accepted too. Returns the exit code. */
int order_cli_main(int argc, char **argv, const daemon_spec *spec);

#endif
