/* daemon.h -- the frame every daemon runs in: one way to start, configure,
 * serve, log, drain and stop (docs/operations.md, "Daemons").
 *
 * A daemon's main() reads like its life:
 *
 *   daemon_frame d;
 *   int code;
 *   if (!daemon_init(&d, &spec, argc, argv, &code)) return code;  // flags, logs, signals
 *   ... load secrets, start background tasks ...
 *   if (daemon_start_metrics(&d) != 0) ...
 *   rpc_server *s = daemon_serve(&d, &server_config, methods, n_methods);
 *   daemon_wait(&d);                    // SIGTERM or SIGINT
 *   int cancelled = daemon_drain(&d, s); // stop accepting, finish calls
 *   ... stop background tasks (they may still flush) ...
 *   daemon_finish(&d, cancelled);       // metrics off, config freed
 *
 * The frame owns the options every daemon has, with the same names, meaning
 * and events everywhere:
 *   --listen ADDR          gRPC addresses (repeatable); default per daemon
 *   --metrics-listen ADDR  Prometheus /metrics; "off" or empty disables
 *   --drain-ms MS          on SIGTERM, how long in-flight calls may take
 *   --log-level LEVEL      debug, info, warn or error
 * and the transport limits of rpc_server_limits, with its defaults:
 *   --max-connections-per-address N, --max-concurrent-streams N,
 *   --handshake-timeout-ms MS, --max-connection-idle-ms MS,
 *   --max-connection-age-ms MS, --max-connection-age-grace-ms MS,
 *   --min-ping-interval-ms MS, --max-ping-strikes N, --memory-limit-mb MB,
 *   and --batch-max N (calls taken at once for a batch handler, docs/batching.md)
 * A daemon that serves HTTP instead (the admin server) sets serves_http
 * and listen_help, skips daemon_serve and daemon_drain, and drains its own
 * server for d->drain_ms; it has no transport limit options (they are
 * gRPC's), so its --help does not offer settings that would do nothing.
 * Events: metrics.listening, server.listening (one per address),
 * server.draining, server.stopped.
 *
 * daemon_init also turns core dumps off (PR_SET_DUMPABLE 0, RLIMIT_CORE 0:
 * the daemons hold keys) and raises the descriptor limit to the hard one.
 *
 * Signals: SIGTERM and SIGINT are blocked in daemon_init, before any thread
 * exists, so every thread gRPC or a daemon starts inherits the mask and no
 * handler runs in a random thread; daemon_wait takes them with sigwait. */
#ifndef PA_DAEMON_H
#define PA_DAEMON_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "rpc_server.h"

typedef struct daemon_spec {
    const char *name;             /* program name: log component and message prefix */
    const char *usage;            /* first lines of --help */
    const char *env_prefix;       /* environment variables, e.g. "PA_ACTIVATION_" */
    const config_option *options; /* the daemon's own options (static storage) */
    size_t n_options;
    const char *listen_default;   /* default of --listen */
    const char *listen_help;      /* help of --listen for a daemon that serves no gRPC; NULL: gRPC's */
    bool serves_http;             /* serves HTTP, not gRPC: no transport limit options */
    const char *metrics_default;  /* default of --metrics-listen */
    const char *drain_ms_default; /* default of --drain-ms */
} daemon_spec;

typedef struct daemon_frame {
    const daemon_spec *spec;
    config *cfg;          /* every option, the frame's and the daemon's */
    config_option *table; /* the daemon's options followed by the frame's (cfg points here) */
    sigset_t signals;     /* SIGTERM, SIGINT: blocked, taken by daemon_wait */
    int drain_ms;         /* --drain-ms */
    bool metrics_on;      /* the metrics listener runs (daemon_finish stops it) */
    /* The transport limit options; daemon_serve applies them. */
    rpc_server_limits limits;
} daemon_frame;

/* Blocks the signals, loads the configuration (file, environment, flags)
 * and sets the log component and level. Returns false when the program
 * should exit with *exit_code: 0 after --help, 2 for a usage error (printed). */
bool daemon_init(daemon_frame *d, const daemon_spec *spec, int argc, char **argv, int *exit_code);

/* The daemon's whole option table (its own options, then the frame's), as
 * daemon_init loads it, in a malloc'd array; *n gets its length. For an
 * operator subcommand of the daemon's binary that must accept the
 * daemon's configuration file and environment. NULL when out of memory. */
config_option *daemon_options(const daemon_spec *spec, size_t *n);

/* The value of a required option, or NULL after printing "--NAME is required". */
const char *daemon_require(const daemon_frame *d, const char *option);

/* Reads the PEM file an option names into *pem (malloc'd). Unset: *pem =
 * NULL and 0, unless `required`. Returns 0, or -1 after printing why. */
int daemon_read_pem(const daemon_frame *d, const char *option, bool required, char **pem);

/* Frees a PEM text, wiping it first when it may hold a private key. */
void daemon_free_pem(char *pem);

/* Starts the /metrics listener of --metrics-listen. Returns 0 (also when
 * off), or -1 after logging why. */
int daemon_start_metrics(daemon_frame *d);

/* Starts the gRPC server on --listen (sc->listen and sc->limits are filled
 * in) and logs one server.listening per address. NULL after logging
 * server.start. */
rpc_server *daemon_serve(daemon_frame *d, rpc_server_config *sc, const rpc_method *methods, size_t n_methods);

/* Blocks until SIGTERM or SIGINT; logs server.draining; returns the signal. */
int daemon_wait(daemon_frame *d);

/* Health turns NOT_SERVING, the server stops accepting and in-flight calls
 * get --drain-ms to finish. Returns how many were cancelled. */
int daemon_drain(daemon_frame *d, rpc_server *s);

/* Logs server.stopped (when `cancelled` >= 0), stops metrics and frees the
 * configuration. */
void daemon_finish(daemon_frame *d, int cancelled);

#endif
