/* main.c -- the admin server: the operators' HTTPS JSON API and web
 * console (docs/admin.md).
 *
 * It runs in the daemon frame (common/daemon.h) like every daemon: the
 * frame owns the options, logs, signals, metrics and the drain time; the
 * server itself is HTTP (http_server.c), not gRPC, so daemon_serve is not
 * used and the drain is the HTTP server's. Start-up: configuration and
 * certificates first (a bad one stops the process before it listens),
 * then metrics and the HTTP server. Redis A is not needed to start: each
 * connection thread connects on first use and requests answer 503 while
 * it is down. SIGTERM/SIGINT: stop accepting, give requests in flight
 * --drain-ms, exit 0. `admin-server user ...` are the account commands
 * (user_cli.c). Beside the HTTP server run the event task (events.h, one
 * admin server at a time by lease) and the webhook sender
 * (webhook_delivery.h); what they have not sent stays queued in Redis. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_app.h"
#include "daemon.h"
#include "events.h"
#include "http_server.h"
#include "log.h"
#include "machine_ingest.h"
#include "machine_ref.h"
#include "machines_control.h"
#include "orders_config.h"
#include "user_cli.h"
#include "webhook_delivery.h"

static const daemon_spec spec = {
    .name = "admin-server",
    .usage =
        "admin-server [OPTIONS]\n"
        "       admin-server user add|list|passwd|role|remove ...   (accounts; user --help)\n\n"
        "Serves the admin API (/api/v1/...) and the web console over HTTPS (docs/admin.md).",
    .env_prefix = "PA_ADMIN_",
    .options = ADMIN_OPTIONS,
    .n_options = 0, /* set in main: ADMIN_N_OPTIONS is not a constant expression */
    .listen_default = "127.0.0.1:8443",
    .listen_help = "host:port to serve HTTPS on (HTTP with --insecure-http)",
    .serves_http = true,
    .metrics_default = "127.0.0.1:9103",
    .drain_ms_default = "5000",
};

/* The certificate and key, unless --insecure-http. 0, or 2 after printing why. */
static int load_tls(const daemon_frame *d, const admin_app *app, char **cert, char **key) {
    *cert = *key = NULL;
    if (app->insecure_http) {
        log_warn("admin.insecure_http", LOG_S("why", "--insecure-http: plain HTTP, for a TLS proxy in front only"),
                 LOG_END);
        return 0;
    }
    if (daemon_read_pem(d, "tls-cert", true, cert) != 0 || daemon_read_pem(d, "tls-key", true, key) != 0) {
        fprintf(stderr, "admin-server: (or --insecure-http behind a TLS proxy)\n");
        return 2;
    }
    return 0;
}

/* Says at start-up whether Redis A answers (the server starts either way). */
static void check_store(const admin_app *app) {
    char err[256];
    rstore *r = admin_store_open(app, false, err, sizeof err);
    if (!r) log_warn("admin.store.unavailable", LOG_S("error", err), LOG_END);
    rstore_free(r);
}

/* The event task and the webhook sender (docs/admin.md, "Events and
 * webhooks"); both connect to Redis lazily. 0, or -1 after logging why. */
static int start_webhooks(const admin_app *app, events_task **ev, webhook_delivery **wd) {
    char err[256];
    *ev = events_start(
        &(events_config){
            .store = app->store, .interval_ms = app->webhook_interval_ms, .expiry_warning_days = app->expiry_warn_days},
        err, sizeof err);
    if (*ev) *wd = webhook_delivery_start(&(webhook_delivery_config){.store = app->store}, err, sizeof err);
    if (*ev && *wd) return 0;
    log_error("webhooks.start", LOG_S("error", err), LOG_END);
    events_stop(*ev);
    *ev = NULL;
    return -1;
}

static int serve(daemon_frame *d, const admin_app *app, const char *cert, const char *key) {
    if (daemon_start_metrics(d) != 0) return 1;
    check_store(app);
    const char *listen = config_get(d->cfg, "listen");
    char err[256];
    http_server *s = http_server_start(app, listen, cert, key, err, sizeof err);
    if (!s) {
        log_error("server.start", LOG_S("error", err), LOG_END);
        return 1;
    }
    events_task *ev;
    webhook_delivery *wd;
    if (start_webhooks(app, &ev, &wd) != 0) {
        http_server_stop(s, 0);
        return 1;
    }
    log_info("server.listening", LOG_S("listen", listen), LOG_I("port", http_server_port(s)),
             LOG_S("tls", cert ? "on" : "off"), LOG_I("workers", app->http_threads), LOG_END);
    /* The machine directory follows the activation servers' logs. */
    machine_ingest_task *ingest = machine_ingest_start(&app->store, MACHINE_INGEST_INTERVAL_MS, err, sizeof err);
    if (!ingest) log_error("machine_ingest.start", LOG_S("error", err), LOG_END);
    daemon_wait(d);
    int cut = http_server_stop(s, d->drain_ms);
    machine_ingest_stop(ingest);
    events_stop(ev);
    webhook_delivery_stop(wd); /* after the try in progress; what is left stays queued in Redis */
    daemon_finish(d, cut);
    return 0;
}

int main(int argc, char **argv) {
    daemon_spec sp = spec;
    sp.n_options = ADMIN_N_OPTIONS;
    if (argc > 1 && strcmp(argv[1], "user") == 0) return user_cli_main(argc - 1, argv + 1, &sp);
    daemon_frame d;
    int code;
    if (!daemon_init(&d, &sp, argc, argv, &code)) return code;
    admin_app app;
    orders_config oc = {0};
    char *cert = NULL, *key = NULL;
    code = admin_app_configure(&app, d.cfg);
    if (code == 0) code = orders_config_load(&oc, d.cfg);
    if (code == 0) machines_control_setup(machine_ref_order);
    if (code == 0 && admin_app_make_dummy_hash(&app) != 0) code = 1;
    if (code == 0) code = load_tls(&d, &app, &cert, &key);
    if (code == 0) code = serve(&d, &app, cert, key);
    else daemon_finish(&d, -1);
    free(cert);
    daemon_free_pem(key);
    orders_config_free(&oc);
    return code;
}
