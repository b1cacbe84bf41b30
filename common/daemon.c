/* daemon.c -- the daemon frame (daemon.h).
 *
 * The frame's options are appended to the daemon's own table, so --help
 * lists them once, with the daemon's defaults, and the config layers (file,
 * environment, flags) treat both alike. */
#include "daemon.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "rpc_client.h"

enum { FRAME_OPTIONS = 4 };

static void frame_options(const daemon_spec *spec, config_option out[FRAME_OPTIONS]) {
    out[0] = (config_option){"listen", "ADDR", "host:port to serve gRPC on; repeat for several", spec->listen_default};
    out[1] = (config_option){"metrics-listen", "ADDR",
                             "host:port of the Prometheus /metrics endpoint; \"off\" or empty disables",
                             spec->metrics_default};
    out[2] = (config_option){"drain-ms", "MS", "on SIGTERM, how long in-flight calls may take to finish",
                             spec->drain_ms_default};
    out[3] = (config_option){"log-level", "LEVEL", "debug, info, warn or error", "info"};
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
    return ok;
}

bool daemon_init(daemon_frame *d, const daemon_spec *spec, int argc, char **argv, int *exit_code) {
    memset(d, 0, sizeof *d);
    d->spec = spec;
    block_signals(d);
    log_set_component(spec->name);
    size_t n = spec->n_options + FRAME_OPTIONS;
    d->table = calloc(n, sizeof *d->table);
    if (!d->table) {
        fprintf(stderr, "%s: error: out of memory\n", spec->name);
        *exit_code = 1;
        return false;
    }
    memcpy(d->table, spec->options, spec->n_options * sizeof *d->table);
    frame_options(spec, d->table + spec->n_options);
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
