/* audit_link_tool.c -- runs the activation side's background audit work
 * (outbox forwarder, revocation puller) as its own process, exactly as the
 * activation server will run them, so tests can SIGKILL it mid-batch and
 * start it again. It serves /metrics, whose port is also what the test
 * waits on to know it is up. SIGTERM drains the outbox (up to 3 s), then
 * exits 0. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "audit_client.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "outbox_forwarder.h"
#include "revocation_puller.h"
#include "rpc_client.h"

static const config_option OPTIONS[] = {
    {"redis-url", "URL", "Redis A as user activation", NULL},
    {"audit-target", "ADDR", "audit server host:port", NULL},
    {"ca", "FILE", "CA of the audit server (PEM)", NULL},
    {"cert", "FILE", "client certificate (PEM)", NULL},
    {"key", "FILE", "client key (PEM)", NULL},
    {"consumer", "NAME", "consumer name in the outbox group", "tool"},
    {"batch", "N", "records per Submit", "100"},
    {"claim-idle-ms", "MS", "claim other consumers' entries idle this long", "30000"},
    {"pull-interval-ms", "MS", "revocation poll period", "500"},
    {"reconcile-ms", "MS", "full reconciliation of the revoked sets", "60000"},
    {"metrics-port", "PORT", "serve /metrics on 127.0.0.1:PORT", NULL},
    {"forward", NULL, "run the outbox forwarder", NULL},
    {"pull", NULL, "run the revocation puller", NULL},
};

int main(int argc, char **argv) {
    int exit_code;
    config *c = config_load("audit_link_tool [OPTIONS]", OPTIONS, sizeof OPTIONS / sizeof *OPTIONS,
                            "PA_AUDIT_LINK_", argc, argv, &exit_code);
    if (!c) return exit_code;
    log_set_component("audit-link-tool");
    bool ok = true;
    int batch = (int)config_get_int(c, "batch", 1, 1000, &ok);
    int claim = (int)config_get_int(c, "claim-idle-ms", 1, 600000, &ok);
    int interval = (int)config_get_int(c, "pull-interval-ms", 10, 60000, &ok);
    int reconcile = (int)config_get_int(c, "reconcile-ms", 10, 3600000, &ok);
    int mport = (int)config_get_int(c, "metrics-port", 1, 65535, &ok);
    if (!ok || !config_get(c, "redis-url") || !config_get(c, "audit-target")) {
        fprintf(stderr, "audit_link_tool: --redis-url, --audit-target and --metrics-port are required\n");
        config_free(c);
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    char err[300];
    audit_client_config ac = {.target = config_get(c, "audit-target"), .ca_file = config_get(c, "ca"),
                              .cert_file = config_get(c, "cert"), .key_file = config_get(c, "key"),
                              .target_name_override = "localhost", .origin = config_get(c, "consumer")};
    audit_client *client = audit_client_new(&ac, err, sizeof err);
    if (!client) {
        fprintf(stderr, "audit_link_tool: %s\n", err);
        config_free(c);
        return 1;
    }
    rstore_config store = {.url = config_get(c, "redis-url")};
    outbox_forwarder *fw = NULL;
    revocation_puller *pl = NULL;
    if (config_get_bool(c, "forward")) {
        outbox_forwarder_config fc = {.store = store, .client = client, .consumer = config_get(c, "consumer"),
                                      .batch = batch, .claim_idle_ms = claim};
        if (!(fw = outbox_forwarder_start(&fc, err, sizeof err))) fprintf(stderr, "audit_link_tool: %s\n", err);
    }
    if (config_get_bool(c, "pull")) {
        revocation_puller_config pc = {
            .store = store, .client = client, .interval_ms = interval, .reconcile_ms = reconcile};
        if (!(pl = revocation_puller_start(&pc, err, sizeof err))) fprintf(stderr, "audit_link_tool: %s\n", err);
    }
    int rc = 0;
    if ((config_get_bool(c, "forward") && !fw) || (config_get_bool(c, "pull") && !pl) ||
        metrics_http_start("127.0.0.1", mport) < 0) {
        rc = 1;
    } else {
        int sig;
        sigwait(&set, &sig);
        log_info("tool.draining", LOG_I("signal", sig), LOG_END);
    }
    long long left = fw ? outbox_forwarder_stop(fw, 3000) : 0;
    revocation_puller_stop(pl);
    metrics_http_stop();
    audit_client_free(client);
    rpc_client_thread_done();
    log_info("tool.stopped", LOG_I("outbox_left", left), LOG_END);
    config_free(c);
    return rc;
}
