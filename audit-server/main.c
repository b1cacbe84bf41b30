/* main.c -- the audit server: the isolated authority for second security
 * values and the source of the revocation log (docs/trust-boundaries.md).
 *
 * It accepts only mutual TLS from clients whose certificate chains to the
 * configured CA, and of those only the ones on the allow-list and not in the
 * CRL (client_auth.h); there is deliberately no plaintext mode. Start-up order:
 * configuration and secrets first (a bad KEK or certificate stops the
 * process before it listens), then signals are blocked so gRPC's threads
 * inherit the mask, then metrics, the queue worker and the rpc server; the
 * daemon frame (common/daemon.h) owns options, signals, metrics and the
 * drain, as in every daemon. SIGTERM/SIGINT drain: Health turns NOT_SERVING, the server stops
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
#include "client_auth.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "queue_worker.h"
#include "rpc_client.h"
#include "rpc_methods.h"
#include "rpc_server.h"
#include "secret_wrap.h"

static const config_option OPTIONS[] = {
    {"redis-url", "URL", "audit store (Redis B) as user audit", "redis://audit@127.0.0.1:6380"},
    {"redis-password-file", "FILE", "read the Redis password from FILE", NULL},
    {"redis-sentinel-password-file", "FILE",
     "with a redis-sentinel:// URL: the sentinels' password (their requirepass)", NULL},
    {"kek", "FILE", "key-encryption key of the audit store (32 bytes or 64 hex; mode 0600)", NULL},
    {"tls-cert", "FILE", "server certificate chain (PEM)", NULL},
    {"tls-key", "FILE", "server private key (PEM)", NULL},
    {"tls-client-ca", "FILE", "CA that client certificates must chain to (PEM)", NULL},
    {"allow-client", "NAME",
     "only clients whose certificate names NAME (SAN DNS or URI, or CN) may call; repeat for several", NULL},
    {"allow-client-spki", "PIN",
     "also allow the client key whose SubjectPublicKeyInfo has this base64 SHA-256; repeatable", NULL},
    {"allow-revoke-client", "NAME",
     "clients whose certificate names NAME (SAN DNS or URI, or CN) may also call Revoke (the admin server); "
     "repeatable; none: Revoke is refused",
     NULL},
    {"tls-client-crl", "FILE", "refuse client certificates this CRL lists (PEM, signed by a --tls-client-ca CA)", NULL},
    {"workers", "N", "gRPC worker threads (0 = one per core)", "0"},
    {"queue-workers", "N", "threads auditing submitted records", "1"},
    {"consumer", "NAME", "name of this server in the queue's consumer group (default: host name)", NULL},
    {"list-limit", "N", "most revocations one ListRevocations call returns", "10000"},
    {"request-retention-s", "S",
     "how long a submitted request id is remembered, so a record sent again is not audited again", "604800"},
};

static const daemon_spec spec = {
    .name = "audit-server",
    .usage =
        "audit-server [OPTIONS]\n"
        "       audit-server revoke|revocations|trail [OPTIONS]   (operator commands; --help each)\n\n"
        "Serves audit.v1.Audit (Verify, Submit, ListRevocations, Revoke) and grpc.health.v1.Health over\n"
        "mutual TLS only. Make certificates with scripts/make-certs.sh DIR.",
    .env_prefix = "PA_AUDIT_",
    .options = OPTIONS,
    .n_options = sizeof OPTIONS / sizeof *OPTIONS,
    .listen_default = "[::]:50052",
    .metrics_default = "127.0.0.1:9102",
    .drain_ms_default = "5000",
};

/* Everything loaded at start-up, freed at exit. */
typedef struct setup {
    audit_service svc;            /* rpc app: store config, KEK, limits */
    char *cert, *key, *ca;        /* PEM texts */
    client_auth *clients;         /* allow-list and CRL */
    client_auth *revokers;        /* --allow-revoke-client: who may call Revoke; NULL: nobody */
    int workers, queue_workers;
    char consumer[128];           /* queue consumer name prefix */
} setup;

/* Who may call Revoke: certificates naming one of --allow-revoke-client
 * (checked after the allow-list and CRL every call passes). Without the
 * option nobody may. Returns 0 or -1 (printed). */
static int load_revokers(const daemon_frame *d, setup *s) {
    const char *const *names;
    size_t n = config_get_list(d->cfg, "allow-revoke-client", &names);
    char err[256];
    bool stale = false;
    if (n == 0) return 0;
    if (!(s->revokers = client_auth_new(names, n, NULL, 0, NULL, s->ca, &stale, err, sizeof err))) {
        fprintf(stderr, "audit-server: error: --allow-revoke-client: %s\n", err);
        return -1;
    }
    s->svc.revokers = s->revokers;
    log_info("audit.revoke_clients", LOG_U("names", n), LOG_END);
    return 0;
}

/* The client allow-list and CRL (client_auth.h). Returns 0 or -1 (printed). */
static int load_clients(const daemon_frame *d, setup *s) {
    const char *const *names, *const *pins;
    size_t n_names = config_get_list(d->cfg, "allow-client", &names);
    size_t n_pins = config_get_list(d->cfg, "allow-client-spki", &pins);
    char *crl = NULL, err[256];
    if (daemon_read_pem(d, "tls-client-crl", false, &crl) != 0) return -1;
    bool stale = false;
    s->clients = client_auth_new(names, n_names, pins, n_pins, crl, s->ca, &stale, err, sizeof err);
    free(crl);
    if (!s->clients) {
        fprintf(stderr, "audit-server: error: %s\n", err);
        return -1;
    }
    s->svc.clients = s->clients;
    if (!client_auth_restricted(s->clients))
        log_warn("audit.clients.unrestricted",
                 LOG_S("why", "no --allow-client or --allow-client-spki: every certificate the CA signed may call"),
                 LOG_END);
    if (stale)
        log_warn("audit.crl.stale", LOG_S("why", "a --tls-client-crl is past its nextUpdate; it still applies"),
                 LOG_END);
    log_info("audit.clients", LOG_U("names", n_names), LOG_U("pins", n_pins),
             LOG_U("crls", client_auth_crls(s->clients)), LOG_END);
    return load_revokers(d, s);
}

/* Reads options, KEK and certificates. Returns 0, or the exit status. */
static int load_setup(const daemon_frame *d, setup *s) {
    const config *c = d->cfg;
    bool ok = true;
    char err[256];
    s->workers = (int)config_get_int(c, "workers", 0, 256, &ok);
    s->queue_workers = (int)config_get_int(c, "queue-workers", 1, 64, &ok);
    s->svc.list_max = (uint32_t)config_get_int(c, "list-limit", 1, AUDIT_LIST_MAX, &ok);
    s->svc.request_retention_s = config_get_int(c, "request-retention-s", 1, 366LL * 86400, &ok);
    if (!ok) return 2;
    s->svc.list_default = s->svc.list_max < AUDIT_LIST_DEFAULT ? s->svc.list_max : AUDIT_LIST_DEFAULT;
    s->svc.store.url = config_get(c, "redis-url");
    s->svc.store.password_file = config_get(c, "redis-password-file");
    s->svc.store.sentinel_password_file = config_get(c, "redis-sentinel-password-file");
    const char *kek = daemon_require(d, "kek");
    if (!kek) return 2;
    if (kek_load_file(kek, s->svc.kek, err, sizeof err) != 0) {
        fprintf(stderr, "audit-server: error: --kek %s: %s\n", kek, err);
        return 2;
    }
    /* Mutual TLS is the only mode: all three are required. */
    if (daemon_read_pem(d, "tls-cert", true, &s->cert) != 0 || daemon_read_pem(d, "tls-key", true, &s->key) != 0 ||
        daemon_read_pem(d, "tls-client-ca", true, &s->ca) != 0)
        return 2;
    if (load_clients(d, s) != 0) return 2;
    const char *consumer = config_get(c, "consumer");
    if (consumer && *consumer) snprintf(s->consumer, sizeof s->consumer, "%s", consumer);
    else if (gethostname(s->consumer, sizeof s->consumer - 1) != 0) snprintf(s->consumer, sizeof s->consumer, "audit");
    return 0;
}

static void free_setup(setup *s) {
    daemon_free_pem(s->key);
    free(s->cert), free(s->ca);
    client_auth_free(s->clients);
    client_auth_free(s->revokers);
    OPENSSL_cleanse(s->svc.kek, sizeof s->svc.kek);
}

/* Metrics, the queue worker, the gRPC server; then waits for a signal and
 * drains in reverse order. Returns the exit status; *cancelled counts the
 * calls the drain cut short. */
static int serve(daemon_frame *d, setup *s, int *cancelled) {
    char err[256];
    audit_metrics_get();
    if (daemon_start_metrics(d) != 0) return 1;
    queue_worker_config qc = {.store = s->svc.store,
                              .kek = s->svc.kek,
                              .consumer = s->consumer,
                              .threads = s->queue_workers,
                              .request_retention_s = s->svc.request_retention_s};
    queue_worker *qw = queue_worker_start(&qc, err, sizeof err);
    if (!qw) {
        log_error("server.start", LOG_S("error", err), LOG_END);
        return 1;
    }
    rpc_tls_config tls = {.cert_pem = s->cert, .key_pem = s->key, .client_ca_pem = s->ca};
    static const char *const health[] = {PA_RPC_AUDIT_SERVICE};
    rpc_server_config rc = {.workers = s->workers, .tls = &tls, .app = &s->svc,
                            .worker_init = audit_service_worker_init,
                            .worker_free = audit_service_worker_free, .health_services = health,
                            .n_health_services = 1};
    size_t n_methods;
    const rpc_method *methods = audit_service_methods(&n_methods);
    rpc_server *srv = daemon_serve(d, &rc, methods, n_methods);
    if (!srv) {
        queue_worker_stop(qw);
        return 1;
    }
    daemon_wait(d);
    *cancelled = daemon_drain(d, srv);
    queue_worker_stop(qw);
    return 0;
}

int main(int argc, char **argv) {
    log_set_component("audit-server");
    if (argc > 1 && audit_admin_is_command(argv[1])) return audit_admin_main(argc - 1, argv + 1);
    daemon_frame d;
    int rc;
    if (!daemon_init(&d, &spec, argc, argv, &rc)) return rc;
    setup s = {0};
    int cancelled = -1;
    rc = load_setup(&d, &s);
    if (rc == 0) rc = serve(&d, &s, &cancelled);
    free_setup(&s);
    daemon_finish(&d, cancelled);
    return rc;
}
