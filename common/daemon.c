/* daemon.c -- the daemon frame (daemon.h).
 *
 * The frame's options are appended to the daemon's own table, so --help
 * lists them once, with the daemon's defaults, and the config layers (file,
 * environment, flags) treat both alike.
 *
 * Before anything else the process gives up core dumps: a daemon holds a
 * KEK, a signing key or Redis passwords in memory, and a core file (or a
 * same-user debugger attaching, which PR_SET_DUMPABLE 0 also stops) would
 * carry them out. It also raises its descriptor limit to the hard limit:
 * every connection is a descriptor, and the per-address cap and timeouts
 * (rpc_server_limits) bound how many, not a soft limit of 1024. */
#include "daemon.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "log.h"
#include "metrics.h"
#include "rpc_client.h"

/* The transport limits (rpc_server_limits), option by option: name, help,
 * default, range and where the value goes. */
typedef struct limit_option {
    const char *name, *metavar, *help, *dflt;
    int min, max;
    size_t offset; /* of the int in rpc_server_limits */
} limit_option;

#define LIMIT(field) offsetof(rpc_server_limits, field)
#define TEXT_(x) #x
#define TEXT(x) TEXT_(x) /* a default as option text, from rpc_server.h */
static const limit_option LIMIT_OPTIONS[] = {
    {"max-connections-per-address", "N",
     "open connections one client address (IPv6: one /64) may hold; more are reset at once",
     TEXT(RPC_DEFAULT_MAX_CONNECTIONS_PER_ADDRESS), 1, 1000000, LIMIT(max_connections_per_address)},
    {"max-concurrent-streams", "N", "calls in flight on one connection", TEXT(RPC_DEFAULT_MAX_CONCURRENT_STREAMS), 1,
     100000, LIMIT(max_concurrent_streams)},
    {"handshake-timeout-ms", "MS", "a new connection must finish TLS and HTTP/2 set-up within this",
     TEXT(RPC_DEFAULT_HANDSHAKE_TIMEOUT_MS), 100, 600000, LIMIT(handshake_timeout_ms)},
    {"max-connection-idle-ms", "MS", "close a connection that has had no call for this long",
     TEXT(RPC_DEFAULT_MAX_CONNECTION_IDLE_MS), 100, INT32_MAX, LIMIT(max_connection_idle_ms)},
    {"max-connection-age-ms", "MS", "close every connection after this long (clients reconnect)",
     TEXT(RPC_DEFAULT_MAX_CONNECTION_AGE_MS), 1000, INT32_MAX, LIMIT(max_connection_age_ms)},
    {"max-connection-age-grace-ms", "MS", "calls in flight on a connection closed for its age get this long",
     TEXT(RPC_DEFAULT_MAX_CONNECTION_AGE_GRACE_MS), 1, INT32_MAX, LIMIT(max_connection_age_grace_ms)},
    {"min-ping-interval-ms", "MS",
     "a client ping sooner than this after the last, with no call between, "
     "is a strike",
     TEXT(RPC_DEFAULT_MIN_PING_INTERVAL_MS), 1000, INT32_MAX, LIMIT(min_ping_interval_ms)},
    {"max-ping-strikes", "N", "strikes before the connection is closed (GOAWAY too_many_pings)",
     TEXT(RPC_DEFAULT_MAX_PING_STRIKES), 1, 1000, LIMIT(max_ping_strikes)},
    {"memory-limit-mb", "MB", "memory gRPC may use for connections; new ones are dropped near it",
     TEXT(RPC_DEFAULT_MEMORY_LIMIT_MB), 16, 1048576, LIMIT(memory_limit_mb)},
    {"batch-max", "N",
     "calls a worker takes from its queue at once for a method that answers them together; 1 disables batching",
     TEXT(RPC_DEFAULT_BATCH_MAX), 1, 1024, LIMIT(batch_max)},
};
#undef LIMIT
#undef TEXT
#undef TEXT_
#define N_LIMIT_OPTIONS (sizeof LIMIT_OPTIONS / sizeof *LIMIT_OPTIONS)

enum { BASIC_OPTIONS = 4, FRAME_OPTIONS = BASIC_OPTIONS + (int)N_LIMIT_OPTIONS };

/* The frame's options for this daemon into `out`; returns how many. */
static size_t frame_options(const daemon_spec *spec, config_option out[FRAME_OPTIONS]) {
    const char *listen_help = spec->listen_help ? spec->listen_help : "host:port to serve gRPC on; repeat for several";
    out[0] = (config_option){"listen", "ADDR", listen_help, spec->listen_default};
    out[1] = (config_option){"metrics-listen", "ADDR",
                             "host:port of the Prometheus /metrics endpoint; \"off\" or empty disables",
                             spec->metrics_default};
    out[2] = (config_option){"drain-ms", "MS", "on SIGTERM, how long in-flight calls may take to finish",
                             spec->drain_ms_default};
    out[3] = (config_option){"log-level", "LEVEL", "debug, info, warn or error", "info"};
    if (spec->serves_http) return BASIC_OPTIONS;
    for (size_t i = 0; i < N_LIMIT_OPTIONS; i++) {
        const limit_option *l = &LIMIT_OPTIONS[i];
        out[BASIC_OPTIONS + i] = (config_option){l->name, l->metavar, l->help, l->dflt};
    }
    return FRAME_OPTIONS;
}

/* No core file, no same-user ptrace, and as many descriptors as allowed.
 * Failures are reported but not fatal: a locked-down environment may
 * already forbid what we ask. */
static void harden_process(const daemon_spec *spec) {
    struct rlimit none = {0, 0}, files;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || setrlimit(RLIMIT_CORE, &none) != 0)
        fprintf(stderr, "%s: warning: cannot turn core dumps off\n", spec->name);
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &files);
    }
}

static void block_signals(daemon_frame *d) {
    sigemptyset(&d->signals);
    sigaddset(&d->signals, SIGTERM);
    sigaddset(&d->signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &d->signals, NULL);
}

/* Positional arguments, the log level and --drain-ms; false after printing why. */
static bool check_frame_options(daemon_frame *d) {
    char *const *args;
    if (config_args(d->cfg, &args) > 0) {
        fprintf(stderr, "%s: error: unexpected argument '%s' (see --help)\n", d->spec->name, args[0]);
        return false;
    }
    int level = log_level_parse(config_get(d->cfg, "log-level"));
    if (level < 0) {
        fprintf(stderr, "%s: error: bad --log-level (debug, info, warn or error)\n", d->spec->name);
        return false;
    }
    log_set_level((log_level)level);
    bool ok = true; /* config_get_int clears it and prints the reason */
    d->drain_ms = (int)config_get_int(d->cfg, "drain-ms", 0, 600000, &ok);
    for (size_t i = 0; !d->spec->serves_http && i < N_LIMIT_OPTIONS; i++) {
        const limit_option *l = &LIMIT_OPTIONS[i];
        int v = (int)config_get_int(d->cfg, l->name, l->min, l->max, &ok);
        memcpy((char *)&d->limits + l->offset, &v, sizeof v);
    }
    return ok;
}

config_option *daemon_options(const daemon_spec *spec, size_t *n) {
    config_option *t = calloc(spec->n_options + FRAME_OPTIONS, sizeof *t);
    if (!t) return NULL;
    memcpy(t, spec->options, spec->n_options * sizeof *t);
    *n = spec->n_options + frame_options(spec, t + spec->n_options);
    return t;
}

bool daemon_init(daemon_frame *d, const daemon_spec *spec, int argc, char **argv, int *exit_code) {
    memset(d, 0, sizeof *d);
    d->spec = spec;
    harden_process(spec);
    block_signals(d);
    log_set_component(spec->name);
    size_t n;
    d->table = daemon_options(spec, &n);
    if (!d->table) {
        fprintf(stderr, "%s: error: out of memory\n", spec->name);
        *exit_code = 1;
        return false;
    }
    d->cfg = config_load(spec->usage, d->table, n, spec->env_prefix, argc, argv, exit_code);
    if (d->cfg && check_frame_options(d)) return true;
    if (d->cfg) *exit_code = 2;
    config_free(d->cfg);
    free(d->table);
    d->cfg = NULL;
    d->table = NULL;
    return false;
}

const char *daemon_require(const daemon_frame *d, const char *option) {
    const char *v = config_get(d->cfg, option);
    if (v && *v) return v;
    fprintf(stderr, "%s: error: --%s is required (see --help)\n", d->spec->name, option);
    return NULL;
}

int daemon_read_pem(const daemon_frame *d, const char *option, bool required, char **pem) {
    *pem = NULL;
    const char *path = config_get(d->cfg, option);
    if (!path || !*path) {
        if (!required) return 0;
        return daemon_require(d, option) ? 0 : -1;
    }
    char err[256];
    *pem = rpc_read_pem(path, err, sizeof err);
    if (*pem) return 0;
    fprintf(stderr, "%s: error: --%s %s: %s\n", d->spec->name, option, path, err);
    return -1;
}

void daemon_free_pem(char *pem) {
    if (pem) OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
}

/* "127.0.0.1:9464" or "[::1]:9464" into host and port; false if neither. */
static bool split_host_port(const char *addr, char *host, size_t n, int *port) {
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= n) return false;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || p < 0 || p > 65535) return false;
    snprintf(host, n, "%.*s", (int)(colon - addr), addr);
    *port = (int)p;
    return true;
}

int daemon_start_metrics(daemon_frame *d) {
    const char *addr = config_get(d->cfg, "metrics-listen");
    if (!addr || !*addr || strcmp(addr, "off") == 0) return 0;
    char host[128];
    int port;
    if (!split_host_port(addr, host, sizeof host, &port)) {
        log_error("metrics.listen", LOG_S("error", "--metrics-listen: expected host:port or \"off\""),
                  LOG_S("metrics_listen", addr), LOG_END);
        return -1;
    }
    int bound = metrics_http_start(host, port);
    if (bound < 0) {
        log_error("metrics.listen", LOG_S("error", "cannot listen"), LOG_S("metrics_listen", addr), LOG_END);
        return -1;
    }
    d->metrics_on = true;
    log_info("metrics.listening", LOG_S("host", host), LOG_I("port", bound), LOG_END);
    return 0;
}

rpc_server *daemon_serve(daemon_frame *d, rpc_server_config *sc, const rpc_method *methods, size_t n_methods) {
    sc->n_listen = config_get_list(d->cfg, "listen", &sc->listen);
    sc->limits = d->limits;
    char err[256];
    rpc_server *s = rpc_server_start(sc, methods, n_methods, err, sizeof err);
    if (!s) {
        log_error("server.start", LOG_S("error", err), LOG_END);
        return NULL;
    }
    const char *tls = !sc->tls ? "off" : sc->tls->client_ca_pem ? "mutual" : "on";
    for (size_t i = 0; i < sc->n_listen; i++)
        log_info("server.listening", LOG_S("listen", sc->listen[i]), LOG_I("port", rpc_server_port(s, i)),
                 LOG_S("tls", tls), LOG_I("workers", sc->workers), LOG_END);
    return s;
}

int daemon_wait(daemon_frame *d) {
    int sig = 0;
    while (sigwait(&d->signals, &sig) != 0) {
    }
    log_info("server.draining", LOG_S("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"), LOG_END);
    return sig;
}

int daemon_drain(daemon_frame *d, rpc_server *s) {
    rpc_server_set_serving(s, false);
    return rpc_server_shutdown(s, d->drain_ms);
}

void daemon_finish(daemon_frame *d, int cancelled) {
    if (cancelled >= 0) log_info("server.stopped", LOG_I("cancelled_calls", cancelled), LOG_END);
    if (d->metrics_on) metrics_http_stop();
    d->metrics_on = false;
    config_free(d->cfg);
    free(d->table);
    d->cfg = NULL;
    d->table = NULL;
}
