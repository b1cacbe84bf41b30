/* main.c -- the audit server: the isolated authority for second security
 * values and the source of the revocation log (DESIGN.md §2, §4.4-4.5).
 *
 * It accepts only mutual TLS from clients whose certificate chains to the
 * configured CA; there is deliberately no plaintext mode. Start-up order:
 * configuration and secrets first (a bad KEK or certificate stops the
 * process before it listens), then signals are blocked so gRPC's threads
 * inherit the mask, then metrics, the queue worker and the rpc server.
 * SIGTERM/SIGINT drain: Health turns NOT_SERVING, the server stops
 * accepting and finishes in-flight calls, the queue worker finishes its
 * batch, and the process exits 0. Records still queued stay in Redis B and
 * are audited after the next start. */
#include <openssl/crypto.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "audit_metrics.h"
#include "audit_service.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "queue_worker.h"
#include "rpc_client.h"
#include "rpc_methods.h"
#include "rpc_server.h"
#include "secret_wrap.h"

static const config_option OPTIONS[] = {
    {"listen", "ADDR", "address:port for gRPC with mutual TLS (repeatable)", "[::]:50052"},
    {"redis-url", "URL", "audit store (Redis B) as user audit", "redis://audit@127.0.0.1:6380"},
    {"redis-password-file", "FILE", "read the Redis password from FILE", NULL},
    {"kek", "FILE", "key-encryption key of the audit store (32 bytes or 64 hex; mode 0600)", NULL},
    {"tls-cert", "FILE", "server certificate chain (PEM)", NULL},
    {"tls-key", "FILE", "server private key (PEM)", NULL},
    {"tls-client-ca", "FILE", "CA that client certificates must chain to (PEM)", NULL},
    {"workers", "N", "gRPC worker threads (0 = one per core)", "0"},
    {"queue-workers", "N", "threads auditing submitted records", "1"},
    {"consumer", "NAME", "name of this server in the queue's consumer group (default: host name)", NULL},
    {"metrics-listen", "ADDR", "address:port for Prometheus /metrics (empty = off)", "127.0.0.1:9102"},
    {"list-limit", "N", "most revocations one ListRevocations call returns", "10000"},
    {"grace-ms", "MS", "on SIGTERM, how long in-flight calls may take", "5000"},
    {"log-level", "LEVEL", "debug, info, warn or error", "info"},
};

#define USAGE                                                                                    \
    "audit-server [OPTIONS]\n"                                                               \
    "       audit-server revoke|revocations|trail [OPTIONS]   (operator commands; --help each)\n\n" \
    "Serves audit.v1.Audit (Verify, Submit, ListRevocations) and grpc.health.v1.Health over\n"   \
    "mutual TLS only. Make certificates with scripts/make-certs.sh DIR."

/* Everything loaded at start-up, freed at exit. */
typedef struct setup {
    audit_service svc;            /* rpc app: store config, KEK, limits */
    char *cert, *key, *ca;        /* PEM texts */
    const char *const *listen;    /* from config */
    size_t n_listen;
    int workers, queue_workers, grace_ms;
    char consumer[128];           /* queue consumer name prefix */
} setup;

static char *read_pem(const config *c, const char *opt) {
    const char *path = config_get(c, opt);
    char err[256];
    if (!path || !*path) {
        fprintf(stderr, "audit-server: --%s is required (mutual TLS is the only mode)\n", opt);
        return NULL;
    }
    char *pem = rpc_read_pem(path, err, sizeof err);
    if (!pem) fprintf(stderr, "audit-server: --%s %s: %s\n", opt, path, err);
    return pem;
}

/* Reads options, KEK and certificates. Returns 0, or the exit status. */
static int load_setup(const config *c, setup *s) {
    bool ok = true;
    char err[256];
    s->workers = (int)config_get_int(c, "workers", 0, 256, &ok);
    s->queue_workers = (int)config_get_int(c, "queue-workers", 1, 64, &ok);
    s->grace_ms = (int)config_get_int(c, "grace-ms", 0, 600000, &ok);
    s->svc.list_max = (uint32_t)config_get_int(c, "list-limit", 1, AUDIT_LIST_MAX, &ok);
    if (!ok) return 2;
    s->svc.list_default = s->svc.list_max < AUDIT_LIST_DEFAULT ? s->svc.list_max : AUDIT_LIST_DEFAULT;
    int lvl = log_level_parse(config_get(c, "log-level"));
    if (lvl < 0) {
        fprintf(stderr, "audit-server: --log-level must be debug, info, warn or error\n");
        return 2;
    }
    log_set_level((log_level)lvl);
    s->svc.store.url = config_get(c, "redis-url");
    s->svc.store.password_file = config_get(c, "redis-password-file");
    const char *kek = config_get(c, "kek");
    if (!kek || !*kek) {
        fprintf(stderr, "audit-server: --kek is required (the audit store's key-encryption key)\n");
        return 2;
    }
    if (kek_load_file(kek, s->svc.kek, err, sizeof err) != 0) {
        fprintf(stderr, "audit-server: --kek %s: %s\n", kek, err);
        return 2;
    }
    if (!(s->cert = read_pem(c, "tls-cert")) || !(s->key = read_pem(c, "tls-key")) ||
        !(s->ca = read_pem(c, "tls-client-ca")))
        return 2;
    s->n_listen = config_get_list(c, "listen", &s->listen);
    const char *consumer = config_get(c, "consumer");
    if (consumer && *consumer) snprintf(s->consumer, sizeof s->consumer, "%s", consumer);
    else if (gethostname(s->consumer, sizeof s->consumer - 1) != 0) snprintf(s->consumer, sizeof s->consumer, "audit");
    return 0;
}

static void free_setup(setup *s) {
    if (s->key) OPENSSL_cleanse(s->key, strlen(s->key));
    free(s->cert), free(s->key), free(s->ca);
    OPENSSL_cleanse(s->svc.kek, sizeof s->svc.kek);
}

/* "HOST:PORT" or "[V6]:PORT" -> metrics_http_start. Empty = off. */
static int start_metrics(const char *addr) {
    if (!addr || !*addr) return 0;
    const char *colon = strrchr(addr, ':');
    char host[128];
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host) return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) return -1;
    int bound = metrics_http_start(host, (int)port);
    if (bound < 0) return -1;
    log_info("audit.metrics", LOG_S("addr", host), LOG_I("port", bound), LOG_END);
    return 0;
}

static int wait_for_signal(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    return sig;
}

static int serve(setup *s, const char *metrics_addr) {
    char err[256];
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    audit_metrics_get();
    if (start_metrics(metrics_addr) != 0) {
        log_error("audit.start", LOG_S("error", "cannot serve metrics"), LOG_S("metrics_listen", metrics_addr), LOG_END);
        return 1;
    }
    queue_worker_config qc = {.store = s->svc.store, .kek = s->svc.kek, .consumer = s->consumer,
                              .threads = s->queue_workers};
    queue_worker *qw = queue_worker_start(&qc, err, sizeof err);
    if (!qw) {
        log_error("audit.start", LOG_S("error", err), LOG_END);
        metrics_http_stop();
        return 1;
    }
    rpc_tls_config tls = {.cert_pem = s->cert, .key_pem = s->key, .client_ca_pem = s->ca};
    static const char *const health[] = {PA_RPC_AUDIT_SERVICE};
    rpc_server_config rc = {.listen = s->listen, .n_listen = s->n_listen, .workers = s->workers,
                            .tls = &tls, .app = &s->svc, .worker_init = audit_service_worker_init,
                            .worker_free = audit_service_worker_free, .health_services = health,
                            .n_health_services = 1};
    size_t n_methods;
    const rpc_method *methods = audit_service_methods(&n_methods);
    rpc_server *srv = rpc_server_start(&rc, methods, n_methods, err, sizeof err);
    if (!srv) {
        log_error("audit.start", LOG_S("error", err), LOG_END);
        queue_worker_stop(qw);
        metrics_http_stop();
        return 1;
    }
    for (size_t i = 0; i < s->n_listen; i++)
        log_info("audit.listening", LOG_S("addr", s->listen[i]), LOG_I("port", rpc_server_port(srv, i)),
                 LOG_S("tls", "mutual"), LOG_END);
    int sig = wait_for_signal();
    log_info("audit.draining", LOG_I("signal", sig), LOG_END);
    rpc_server_set_serving(srv, false);
    int cancelled = rpc_server_shutdown(srv, s->grace_ms);
    queue_worker_stop(qw);
    metrics_http_stop();
    log_info("audit.stopped", LOG_I("cancelled_calls", cancelled), LOG_END);
    return 0;
}

int main(int argc, char **argv) {
    log_set_component("audit-server");
    if (argc > 1 && audit_admin_is_command(argv[1])) return audit_admin_main(argc - 1, argv + 1);
    int exit_code;
    config *c = config_load(USAGE, OPTIONS, sizeof OPTIONS / sizeof *OPTIONS, "PA_AUDIT_", argc, argv,
                            &exit_code);
    if (!c) return exit_code;
    char *const *args;
    if (config_args(c, &args) > 0) {
        fprintf(stderr, "audit-server: unexpected argument '%s' (see --help)\n", args[0]);
        config_free(c);
        return 2;
    }
    setup s = {0};
    int rc = load_setup(c, &s);
    if (rc == 0) rc = serve(&s, config_get(c, "metrics-listen"));
    free_setup(&s);
    config_free(c);
    return rc;
}
