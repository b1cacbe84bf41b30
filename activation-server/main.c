/* main.c -- the activation server daemon: configuration, start-up work done
 * once, and a drain on SIGTERM.
 *
 * Everything that can be done once happens here before the first call: the
 * signing key is loaded and its key_id computed, the KEK is read, the
 * token-bucket limits are formatted, metrics are registered. Workers then
 * connect to Redis lazily (worker.c), so the server starts even while Redis
 * is away and heals by itself when it comes back.
 *
 * Auditing (docs/activation-flow.md, "Audit sampling") is on when --audit-target names the audit
 * server: then the server samples activations (audit_sampler, raised by the
 * threat signals), verifies online groups' samples before granting, runs the
 * outbox forwarder (offline samples to the audit server) and the revocation
 * puller (the audit server's revocations into Redis A). Without it nothing
 * is sampled or pulled and a warning says so at start-up: that suits a
 * development box, never production.
 *
 * Installers reach this server over the internet, so it serves TLS only:
 * --tls-cert and --tls-key are required, and plain text takes the explicit
 * --insecure-plaintext (development only; logged at warn level).
 *
 * Volume orders (docs/volume.md): --order-public-key names the vendor's
 * order keys; --on-premises makes this a customer's own server, which
 * signs with the key its orders delegate and needs no KEK or audit
 * server. `activation-server order ...` (order_cli.c) is the operator's
 * command set, dispatched before the daemon starts anything.
 *
 * The daemon frame (common/daemon.h) owns options, logs, signals, metrics
 * and the drain: on SIGTERM or SIGINT the server stops accepting, lets
 * in-flight calls finish (up to --drain-ms), flushes the outbox to the
 * audit server (up to --audit-flush-ms), and exits 0. */
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "mdns_announce.h"
#include "mdns_orders.h"
#include "order_cli.h"
#include "order_gauges.h"
#include "order_sweep.h"
#include "outbox_forwarder.h"
#include "revocation_puller.h"
#include "rpc_client.h"
#include "rpc_methods.h"
#include "server.h"
#include "usage_upload.h"

/* One option a line or two, as --help shows them; not reflowed. */
/* clang-format off */
static const config_option options[] = {
    {"redis-url", "URL", "activation store (Redis A), as its `activation` ACL user",
     "redis://activation@127.0.0.1:6379"},
    {"redis-password-file", "FILE", "read the Redis password from FILE instead of the URL", NULL},
    {"redis-sentinel-password-file", "FILE", "with a redis-sentinel:// URL: the sentinels' password (their requirepass)", NULL},
    {"redis-timeout-ms", "MS", "Redis connect and command timeout", "1000"},
    {"redis-wait-replicas", "N", "answer a grant only once N replicas hold it (WAIT), else UNAVAILABLE; 0 = off", "0"},
    {"redis-wait-timeout-ms", "MS", "how long a grant may wait for its replicas", "100"},
    {"batch-script", "on|off",
     "on: the policy scripts of a batch of Activates run as one script call (single Redis node; docs/batching.md); "
     "off: one call each",
     "on"},
    {"kek", "FILE", "activation key-encryption key: unwraps groups' first secrets (required, but not "
     "with --on-premises)", NULL},
    {"signing-key", "FILE", "Ed25519 private key (PEM) that signs licenses (required); on-premises: the "
     "key the orders delegate", NULL},
    {"order-public-key", "FILE",
     "the vendor's order-verification key(s), PEM (one or more keys; repeatable): orders and usage "
     "reports are checked against them", NULL},
    {"on-premises", NULL,
     "an on-premises server: accepts only orders that delegate --signing-key, checks volume keys by "
     "their salted hashes; no --kek, no audit server", NULL},
    {"usage-upload-to", "HOST:PORT",
     "on-premises: upload each order's usage report to the vendor's activation service there (TLS)", NULL},
    {"usage-upload-ca", "FILE", "CA certificate(s) the vendor's server certificate must chain to (PEM); "
     "default: the system's trust roots", NULL},
    {"usage-upload-interval-s", "S", "seconds between two uploads of every order's report (a failed upload is "
     "retried sooner, with backoff)", "86400"},
    {"workers", "N", "gRPC worker threads, each with its own Redis connection; 0 = two per core", "0"},
    {"tls-cert", "FILE", "serve TLS to installers with this certificate chain (PEM; required)", NULL},
    {"tls-key", "FILE", "private key of --tls-cert (PEM)", NULL},
    {"insecure-plaintext", NULL,
     "DEVELOPMENT ONLY: serve installers in plain text, without --tls-cert; never in production", NULL},
    {"rate-address-per-s", "N", "calls per second per client address (IPv6: per /64); 0 = off", "10"},
    {"rate-address-burst", "N", "calls a client address may make at once", "50"},
    {"rate-group-per-s", "N", "activations per second per product group; 0 = off", "1000"},
    {"rate-group-burst", "N", "activations a group may take at once", "5000"},
    {"rate-failure-cost", "N", "address tokens taken by a key that is not genuine", "5"},
    {"rate-group-failures-per-s", "N",
     "keys of one group refused as not genuine per second, from all addresses together; "
     "once spent, the group takes no activation until it refills; 0 = off", "100"},
    {"rate-group-failures-burst", "N", "such refusals a group may take at once", "1000"},
    {"refusal-hold-ms", "MS",
     "answer a key that is not genuine, a refused proof or a rate limit this long after the call "
     "arrived, which slows a flood to its calls in flight per hold; 0 = at once", "100"},
    {"negative-cache-ms", "MS", "how long a worker remembers that a group record is unusable", "5000"},
    {"place-retention-s", "S",
     "forget a place this long after nothing depends on it (a lease lapsed, or a permanent "
     "place of an unlimited key not seen); 0 = keep for ever", "2592000"},
    {"group-refresh-ms", "MS",
     "how often the set of existing groups is read again (a new group is also found at its "
     "first activation); 0 = only then", "10000"},
    {"order-sweep-ms", "MS",
     "how often every volume order's machine table is aged (lapsed leases freed, machines past the "
     "retention window removed); 0 = only by the calls themselves", "1000"},
    {"threat-flush-ms", "MS",
     "how often the threat view's counts (per group and minute, refusing addresses) are added to "
     "Redis A; 0 = not counted", "10000"},
    {"trusted-proxy", "CIDR",
     "believe the client address that a proxy at this address or network forwards in "
     "x-forwarded-for; repeat for several", NULL},
    {"audit-target", "ADDR", "audit server host:port (mutual TLS); unset: no auditing at all", NULL},
    {"audit-ca", "FILE", "CA that signed the audit server's certificate (PEM)", NULL},
    {"audit-cert", "FILE", "this server's client certificate for the audit server (PEM)", NULL},
    {"audit-key", "FILE", "private key of --audit-cert (PEM)", NULL},
    {"audit-server-name", "NAME",
     "name the audit server's certificate is checked against (default: the host of --audit-target)", NULL},
    {"audit-verify-threads", "N",
     "threads that wait for online audits, so gRPC workers never do; 0 = as many as --workers", "0"},
    {"audit-verify-timeout-ms", "MS", "deadline of an online audit (Verify) while a customer waits", "300"},
    {"threat-window-s", "S", "sliding window of the threat signals, 1-15 s", "10"},
    {"threat-group-min-requests", "N", "a group's failure ratio counts from this many requests", "20"},
    {"threat-group-failure-ratio", "R",
     "keys refused as not genuine at or above this share raise the group's sampling to 100 %", "0.5"},
    {"threat-address-requests", "N", "more requests than this per window from one address raise its sampling to 100 %",
     "200"},
    {"audit-outbox-max", "N",
     "most offline-audit records waiting in Redis A; at the cap the group's audit_outbox_full applies", "1000000"},
    {"audit-reconcile-s", "S",
     "every S seconds, check Redis A's revoked sets against the whole revocation log and put back what is missing",
     "60"},
    {"audit-flush-ms", "MS", "on SIGTERM, how long to keep forwarding the outbox (the rest stays in Redis A)", "5000"},
    {"audit-consumer", "NAME", "stable name of this replica for the outbox and audit records (default: host:port)",
     NULL},
    {"mdns-announce", "NAME",
     "announce this server on the LAN as DNS-SD service NAME through the Avahi daemon (_pa-activation._tcp "
     "on the port of the first --listen address that is not a loopback one, TXT v=1 and order=SERIALS); for "
     "on-premises servers", NULL},
};
/* clang-format on */

static const daemon_spec spec = {
    .name = "activation-server",
    .usage = "activation-server [OPTIONS]",
    .env_prefix = "PA_ACTIVATION_",
    .options = options,
    .n_options = sizeof options / sizeof *options,
    .listen_default = "127.0.0.1:50051,[::1]:50051",
    .metrics_default = "127.0.0.1:9464",
    .drain_ms_default = "10000",
};

static const rpc_method methods[] = {
    {PA_RPC_ACTIVATE, handle_activate, ACTIVATION_MAX_REQUEST_BYTES, handle_activate_batch},
    {PA_RPC_RENEW, handle_renew, ACTIVATION_MAX_REQUEST_BYTES, handle_renew_batch},
    {PA_RPC_DEACTIVATE, handle_deactivate, ACTIVATION_MAX_REQUEST_BYTES, handle_deactivate_batch},
    {PA_RPC_LIST_MACHINES, handle_list_machines, ACTIVATION_MAX_REQUEST_BYTES, NULL},
    {PA_RPC_RELEASE_MACHINE, handle_release_machine, ACTIVATION_MAX_REQUEST_BYTES, NULL},
    {PA_RPC_USAGE_REPORT, handle_usage_report, USAGE_MAX_REQUEST_BYTES, NULL},
};

static const char *const health_services[] = {PA_RPC_ACTIVATION_SERVICE, PA_RPC_USAGE_SERVICE};

/* Everything main owns, freed in one place. */
typedef struct daemon_state {
    daemon_frame frame;             /* options, signals, metrics, drain */
    config *cfg;                    /* frame.cfg */
    app app;
    char *tls_cert;                 /* PEM text */
    char *tls_key;
    rpc_tls_config tls;
    int flush_ms;                   /* after the drain, for forwarding the outbox */
    int group_refresh_ms;           /* --group-refresh-ms (group_ids.h) */
    int refusal_hold_ms;            /* --refusal-hold-ms (rpc_server_config) */
    char audit_name[160];           /* --audit-consumer or host:port */
    outbox_forwarder *forwarder;    /* NULL when audit is off */
    revocation_puller *puller;
    usage_upload *uploader;   /* --usage-upload-to (on-premises); NULL when off */
    int order_sweep_ms;       /* --order-sweep-ms */
    order_sweep *sweep;       /* ages every order's machine table; NULL when off */
    int threat_flush_ms;      /* --threat-flush-ms */
    const char *mdns_name;    /* --mdns-announce; NULL when off */
    mdns_orders *mdns_orders; /* the orders the announcement names (on-premises); NULL otherwise */
    mdns_announce *mdns;      /* the announcement; NULL when off */
} daemon_state;

static int fail(const char *event, const char *detail) {
    log_error(event, LOG_S("error", detail), LOG_END);
    return -1;
}

/* The deployment (docs/volume.md, "Two deployments, one binary"): a
 * vendor-hosted server needs --kek for the groups' first secrets; an
 * on-premises one holds no group secret and talks to no audit server, so
 * --kek and --audit-* are refused there rather than silently ignored.
 * Both load the vendor's order keys. Returns 0 or -1 (reason printed). */
static int load_volume(daemon_state *d) {
    config *c = d->cfg;
    app *a = &d->app;
    char err[512];
    a->on_premises = config_get_bool(c, "on-premises");
    const char *kek = config_get(c, "kek"), *audit = config_get(c, "audit-target");
    if (a->on_premises && ((kek && *kek) || (audit && *audit))) {
        fprintf(stderr,
                "activation-server: error: --on-premises holds no group secret and uses no audit server; "
                "drop --%s\n",
                kek && *kek ? "kek" : "audit-target");
        return -1;
    }
    if (!a->on_premises && !daemon_require(&d->frame, "kek")) return -1;
    if (!a->on_premises && kek_load_file(kek, a->kek, err, sizeof err) != 0) return fail("config.kek", err);
    const char *const *paths;
    size_t n = config_get_list(c, "order-public-key", &paths);
    if (!(a->order_keys = order_keyring_new())) return fail("config.order_public_key", "out of memory");
    for (size_t i = 0; i < n; i++)
        if (order_keyring_load(a->order_keys, paths[i], err, sizeof err) != 0)
            return fail("config.order_public_key", err);
    return 0;
}

/* Reads every option into the app; returns 0 or -1 (reason printed). */
static int load_app(daemon_state *d) {
    config *c = d->cfg;
    app *a = &d->app;
    char err[256];
    bool ok = true;   /* config_get_* clear it on a bad value */
    int volume = load_volume(d); /* --kek first: the message order operators know */
    const char *sk = daemon_require(&d->frame, "signing-key");
    if (volume != 0 || !sk) return -1;
    if (license_key_load(&a->signing, sk, err, sizeof err) != 0)
        return fail("config.signing_key", err);
    int timeout = (int)config_get_int(c, "redis-timeout-ms", 10, 60000, &ok);
    a->redis = (rstore_config){
        .url = config_get(c, "redis-url"),
        .password_file = config_get(c, "redis-password-file"),
        .sentinel_password_file = config_get(c, "redis-sentinel-password-file"),
        .connect_timeout_ms = timeout,
        .command_timeout_ms = timeout,
    };
    replica_wait_init(&a->wait, (int)config_get_int(c, "redis-wait-replicas", 0, 16, &ok),
                      (int)config_get_int(c, "redis-wait-timeout-ms", 1, 60000, &ok));
    if (ok && a->wait.replicas > 0 && a->wait.timeout_ms >= timeout)
        return fail("config.redis_wait",
                    "--redis-wait-timeout-ms must be below --redis-timeout-ms (WAIT blocks "
                    "the connection)");
    policy_limits_set(&a->limits, config_get_double(c, "rate-address-per-s", 0, 1e12, &ok),
                      config_get_double(c, "rate-address-burst", 1, 1e12, &ok),
                      config_get_double(c, "rate-group-per-s", 0, 1e12, &ok),
                      config_get_double(c, "rate-group-burst", 1, 1e12, &ok),
                      config_get_double(c, "rate-failure-cost", 1, 1e6, &ok));
    policy_limits_set_retention(&a->limits, config_get_int(c, "place-retention-s", 0, 100LL * 365 * 86400, &ok));
    policy_limits_set_group_failures(&a->limits, config_get_double(c, "rate-group-failures-per-s", 0, 1e12, &ok),
                                     config_get_double(c, "rate-group-failures-burst", 1, 1e12, &ok));
    const char *bs = config_get(c, "batch-script");
    if (strcmp(bs, "on") != 0 && strcmp(bs, "off") != 0) {
        snprintf(err, sizeof err, "--batch-script must be on or off, not '%.64s'", bs);
        return fail("config.batch_script", err);
    }
    a->batch_script = strcmp(bs, "on") == 0;
    a->negative_ttl_ms = (int)config_get_int(c, "negative-cache-ms", 0, 3600000, &ok);
    d->group_refresh_ms = (int)config_get_int(c, "group-refresh-ms", 0, 3600000, &ok);
    d->order_sweep_ms = (int)config_get_int(c, "order-sweep-ms", 0, 3600000, &ok);
    d->threat_flush_ms = (int)config_get_int(c, "threat-flush-ms", 0, 3600000, &ok);
    d->refusal_hold_ms = (int)config_get_int(c, "refusal-hold-ms", 0, 10000, &ok);
    a->order_refresh_ms = d->group_refresh_ms;
    const char *const *proxies;
    size_t n_proxies = config_get_list(c, "trusted-proxy", &proxies);
    a->proxies = trusted_proxies_new(proxies, n_proxies, err, sizeof err);
    if (!a->proxies) return fail("config.trusted_proxy", err);
    return ok ? 0 : -1;
}

/* Installers reach this server over the internet: TLS, unless a developer
 * says --insecure-plaintext, which the log then says at warn level. */
static int load_tls(daemon_state *d) {
    bool plain = config_get_bool(d->cfg, "insecure-plaintext");
    const char *cert = config_get(d->cfg, "tls-cert"), *key = config_get(d->cfg, "tls-key");
    bool have_cert = cert && *cert, have_key = key && *key;
    if (plain && (have_cert || have_key)) {
        fprintf(stderr,
                "activation-server: error: --insecure-plaintext and --tls-cert/--tls-key contradict "
                "each other; drop one\n");
        return -1;
    }
    if (plain) {
        log_warn("server.insecure_plaintext",
                 LOG_S("why",
                       "--insecure-plaintext: installers' traffic, product "
                       "keys included, is not encrypted; development only"),
                 LOG_END);
        return 0;
    }
    if (!have_cert || !have_key) {
        fprintf(stderr,
                "activation-server: error: --tls-cert and --tls-key are required: installers send "
                "product keys over the internet (--insecure-plaintext serves plain text, for "
                "development only)\n");
        return -1;
    }
    if (daemon_read_pem(&d->frame, "tls-cert", true, &d->tls_cert) != 0 ||
        daemon_read_pem(&d->frame, "tls-key", true, &d->tls_key) != 0)
        return -1;
    d->tls = (rpc_tls_config){.cert_pem = d->tls_cert, .key_pem = d->tls_key};
    return 0;
}

/* --mdns-announce: a bad name is a usage error, found before anything starts. */
static int load_mdns(daemon_state *d) {
    const char *name = config_get(d->cfg, "mdns-announce");
    if (!name || !*name) return 0;
    if (!mdns_announce_name_valid(name)) {
        fprintf(stderr,
                "activation-server: error: --mdns-announce \"%.100s\" is not a DNS-SD service name: want 1 to 63 "
                "bytes of UTF-8 text\n",
                name);
        return -1;
    }
    d->mdns_name = name;
    return 0;
}

/* The index of the first --listen address that is not a loopback one: the
 * port installers on the LAN can reach. -1 when all are loopback. */
static int lan_listen_index(const daemon_state *d) {
    const char *const *listen;
    size_t n = config_get_list(d->cfg, "listen", &listen);
    for (size_t i = 0; i < n; i++)
        if (strncmp(listen[i], "127.", 4) != 0 && strncmp(listen[i], "[::1]", 5) != 0 &&
            strncmp(listen[i], "localhost:", 10) != 0)
            return (int)i;
    return -1;
}

/* The announcement (mdns_announce.h), on the port of the first --listen
 * address that is not a loopback one (as bound, so port 0 works too).
 * Nothing here stops the server: Avahi's absence, or even an announcement
 * that cannot start, is logged. */
static void start_mdns(daemon_state *d, rpc_server *s) {
    if (!d->mdns_name) return;
    int lan = lan_listen_index(d);
    if (lan < 0)
        log_warn("config.mdns_announce",
                 LOG_S("error",
                       "every --listen address is a loopback one: installers on the LAN cannot reach "
                       "the announced port"),
                 LOG_END);
    if (d->app.on_premises && !(d->mdns_orders = mdns_orders_new(&d->app.redis))) {
        log_warn("server.mdns_failed", LOG_S("name", d->mdns_name), LOG_S("error", "out of memory"), LOG_END);
        return;
    }
    char err[160];
    d->mdns =
        mdns_announce_start(&(mdns_announce_config){.name = d->mdns_name,
                                                    .port = (uint16_t)rpc_server_port(s, lan < 0 ? 0 : (size_t)lan),
                                                    .read_orders = d->mdns_orders ? mdns_orders_read : NULL,
                                                    .arg = d->mdns_orders,
                                                    .refresh_ms = d->group_refresh_ms},
                            err, sizeof err);
    if (!d->mdns) log_warn("server.mdns_failed", LOG_S("name", d->mdns_name), LOG_S("error", err), LOG_END);
}

/* Withdraws the announcement: installers stop finding a server that drains. */
static void stop_mdns(daemon_state *d) {
    mdns_announce_stop(d->mdns);
    d->mdns = NULL;
    mdns_orders_free(d->mdns_orders);
    d->mdns_orders = NULL;
}

/* Tells the operator at once if Redis is away or refuses our user; the
 * server starts anyway and the workers keep retrying. */
static void probe_redis(const app *a) {
    char err[256] = "";
    rstore *r = rstore_new(&a->redis, false, err, sizeof err);
    if (!r) {
        log_warn("redis.unreachable", LOG_S("error", err), LOG_END);
        return;
    }
    int script = policy_register(r);
    redisReply *rep = rstore_command(r, "PING");
    if (script < 0 || !rep || rep->type == REDIS_REPLY_ERROR)
        log_warn("redis.unusable", LOG_S("error", rep && rep->str ? rep->str : rstore_error(r)),
                 LOG_END);
    if (rep) freeReplyObject(rep);
    rstore_free(r);
}

/* --workers, 0 meaning two per core; -1 for a bad value (printed). */
static int worker_count(daemon_state *d) {
    bool ok = true;   /* config_get_* clear it on a bad value */
    /* A handler waits on Redis once per call: with only one worker per core
     * the cores idle during those waits (measured: 2 workers 5.8k calls/s,
     * 4 workers 8.0k, 8 workers 7.5k on 2 cores, client and Redis included). */
    int workers = (int)config_get_int(d->cfg, "workers", 0, 256, &ok);
    if (!ok) return -1;
    return workers ? workers : 2 * (int)sysconf(_SC_NPROCESSORS_ONLN);
}

static rpc_server *start_server(daemon_state *d) {
    int workers = worker_count(d);
    if (workers < 0) return NULL;
    rpc_server_config sc = {
        .workers = workers,
        .refusal_hold_ms = d->refusal_hold_ms,
        .tls = d->tls_cert ? &d->tls : NULL,
        .app = &d->app,
        .worker_init = worker_new,
        .worker_free = worker_free,
        .health_services = health_services,
        .n_health_services = sizeof health_services / sizeof *health_services,
    };
    return daemon_serve(&d->frame, &sc, methods, sizeof methods / sizeof *methods);
}

/* "host:port" of the first --listen address: stable across restarts, and
 * different for two replicas on one host. */
static void default_audit_name(daemon_state *d) {
    const char *name = config_get(d->cfg, "audit-consumer");
    if (name && *name) {
        snprintf(d->audit_name, sizeof d->audit_name, "%s", name);
        return;
    }
    char host[128] = "activation";
    if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "activation");
    host[sizeof host - 1] = '\0';
    const char *const *listen;
    const char *port = NULL;
    if (config_get_list(d->cfg, "listen", &listen) > 0 && (port = strrchr(listen[0], ':')))
        port++;
    snprintf(d->audit_name, sizeof d->audit_name, "%s:%s", host, port ? port : "0");
}

/* A pool thread's state: a worker of its own, numbered after the gRPC
 * workers' in logs. */
static void *verify_thread_new(int index, void *app_state) { return worker_new(1000 + index, app_state); }

/* The audit client, sampler and threat signals, forwarder and puller; all
 * or nothing. Needs grpc_init. Returns 0 (also when audit is off) or -1. */
static int start_audit(daemon_state *d) {
    config *c = d->cfg;
    app *a = &d->app;
    const char *target = config_get(c, "audit-target");
    if (!target || !*target) {
        log_warn("audit.disabled", LOG_S("why", "no --audit-target: activations are not audited "
                                                "and revocations are not pulled"), LOG_END);
        return 0;
    }
    bool ok = true;   /* config_get_* clear it on a bad value */
    int verify_ms = (int)config_get_int(c, "audit-verify-timeout-ms", 10, 60000, &ok);
    d->flush_ms = (int)config_get_int(c, "audit-flush-ms", 0, 600000, &ok);
    int reconcile_s = (int)config_get_int(c, "audit-reconcile-s", 1, 3600, &ok);
    long long outbox_max = config_get_int(c, "audit-outbox-max", 1, 1000000000, &ok);
    if (!ok) return -1;
    snprintf(a->outbox_max, sizeof a->outbox_max, "%lld", outbox_max);
    default_audit_name(d);
    char err[320];
    a->audit = audit_client_new(&(audit_client_config){
        .target = target,
        .ca_file = config_get(c, "audit-ca"),
        .cert_file = config_get(c, "audit-cert"),
        .key_file = config_get(c, "audit-key"),
        .target_name_override = config_get(c, "audit-server-name"),
        .origin = d->audit_name,
        .verify_timeout_ms = verify_ms,
    }, err, sizeof err);
    if (!a->audit) return fail("config.audit", err);
    threat_config tc = {
        .window_s = (int)config_get_int(c, "threat-window-s", 1, THREAT_BUCKETS - 1, &ok),
        .group_min_requests = (uint32_t)config_get_int(c, "threat-group-min-requests", 1,
                                                       UINT32_MAX, &ok),
        .group_failure_ratio = config_get_double(c, "threat-group-failure-ratio", 0.01, 1, &ok),
        .address_max_requests = (uint32_t)config_get_int(c, "threat-address-requests", 1,
                                                         UINT32_MAX, &ok),
    };
    if (!ok) return -1;
    a->threats = threat_signal_new(&tc);
    a->sampler = a->threats ? audit_sampler_new(NULL, a->threats) : NULL;
    if (!a->sampler) return fail("audit.start", "out of memory");
    d->forwarder = outbox_forwarder_start(
        &(outbox_forwarder_config){.store = a->redis, .client = a->audit, .consumer = d->audit_name, .max = outbox_max},
        err, sizeof err);
    if (!d->forwarder) return fail("audit.forwarder", err);
    int threads = (int)config_get_int(c, "audit-verify-threads", 0, 256, &ok);
    if (threads == 0) threads = worker_count(d);
    if (!ok || threads < 0) return -1;
    a->verifier = verify_pool_start(&(verify_pool_config){.threads = threads,
                                                          .thread_init = verify_thread_new,
                                                          .thread_free = worker_free,
                                                          .arg = a,
                                                          .run = activate_online_job},
                                    err, sizeof err);
    if (!a->verifier) return fail("audit.verify_pool", err);
    d->puller = revocation_puller_start(
        &(revocation_puller_config){.store = a->redis, .client = a->audit, .reconcile_ms = reconcile_s * 1000}, err,
        sizeof err);
    if (!d->puller) return fail("audit.puller", err);
    log_info("audit.enabled", LOG_S("target", target), LOG_S("server_name", audit_client_server_name(a->audit)),
             LOG_S("name", d->audit_name), LOG_I("verify_timeout_ms", verify_ms), LOG_I("verify_threads", threads),
             LOG_END);
    return 0;
}

/* On-premises: the usage return to the vendor (usage_upload.h). Needs
 * grpc_init. 0 (also when off) or -1 (reason logged or printed). */
static int start_usage_upload(daemon_state *d) {
    config *c = d->cfg;
    const char *to = config_get(c, "usage-upload-to");
    if (!to || !*to) return 0;
    if (!d->app.on_premises) {
        fprintf(stderr,
                "activation-server: error: --usage-upload-to is for on-premises servers (--on-premises): "
                "a vendor-hosted server's usage is in the vendor's own store\n");
        return -1;
    }
    bool ok = true;
    int interval = (int)config_get_int(c, "usage-upload-interval-s", 1, 365 * 86400, &ok);
    char *ca = NULL, err[320];
    if (!ok || daemon_read_pem(&d->frame, "usage-upload-ca", false, &ca) != 0) return -1;
    d->uploader =
        usage_upload_start(&(usage_upload_config){.store = d->app.redis,
                                                  .key = &d->app.signing,
                                                  .target = to,
                                                  .ca_pem = ca,
                                                  .interval_s = interval,
                                                  .uploads = {d->app.m.usage_uploads[0], d->app.m.usage_uploads[1]}},
                           err, sizeof err);
    free(ca);
    if (!d->uploader) return fail("usage.upload", err);
    log_info("usage.upload_enabled", LOG_S("target", to), LOG_I("interval_s", interval), LOG_END);
    return 0;
}

/* After the last call: flush the outbox (up to drain_ms), stop pulling,
 * free the rest. */
static void stop_audit(daemon_state *d, int drain_ms) {
    verify_pool_stop(d->app.verifier); /* the server is down: every deferred call was answered */
    d->app.verifier = NULL;
    if (d->forwarder) {
        long long left = outbox_forwarder_stop(d->forwarder, drain_ms);
        if (left != 0) log_warn("audit.outbox.left", LOG_I("records", left), LOG_END);
    }
    revocation_puller_stop(d->puller);
    audit_client_free(d->app.audit);
    audit_sampler_free(d->app.sampler);
    threat_signal_free(d->app.threats);
    d->forwarder = NULL;
    d->puller = NULL;
    d->app.audit = NULL;
    d->app.sampler = NULL;
    d->app.threats = NULL;
}

static void free_state(daemon_state *d) {
    license_key_free(&d->app.signing);
    order_keyring_free(d->app.order_keys);
    d->app.order_keys = NULL;
    trusted_proxies_free(d->app.proxies);
    d->app.proxies = NULL;
    OPENSSL_cleanse(d->app.kek, sizeof d->app.kek);
    order_gauges_free(d->app.order_gauges);
    d->app.order_gauges = NULL;
    free(d->tls_cert);
    daemon_free_pem(d->tls_key);
}

/* Everything started after grpc_init, stopped in reverse order; the outbox
 * gets flush_ms to drain. Then the frame (metrics, configuration). */
static void stop_runtime(daemon_state *d, int flush_ms, int cancelled) {
    stop_mdns(d);
    usage_upload_stop(d->uploader);
    d->uploader = NULL;
    order_sweep_stop(d->sweep);
    d->sweep = NULL;
    stop_audit(d, flush_ms);
    threat_counters_stop(d->app.threat_counts); /* after the workers: their last counts too */
    d->app.threat_counts = NULL;
    group_ids_stop(d->app.groups);
    d->app.groups = NULL;
    rpc_client_thread_done();
    grpc_shutdown();
    free_state(d);
    daemon_finish(&d->frame, cancelled);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "order") == 0) return order_cli_main(argc - 1, argv + 1, &spec);
    daemon_state d = {0};
    int code;
    if (!daemon_init(&d.frame, &spec, argc, argv, &code)) return code;
    d.cfg = d.frame.cfg;
    if (load_app(&d) != 0 || load_tls(&d) != 0 || load_mdns(&d) != 0) {
        free_state(&d);
        daemon_finish(&d.frame, -1);
        return 2;
    }
    activation_metrics_init(&d.app.m);
    if (daemon_start_metrics(&d.frame) != 0) {
        free_state(&d);
        daemon_finish(&d.frame, -1);
        return 1;
    }
    probe_redis(&d.app);

    grpc_init();
    if (start_audit(&d) != 0 || start_usage_upload(&d) != 0) {
        stop_runtime(&d, 0, -1);
        return 2;
    }
    char err[256];
    d.app.groups = group_ids_start(&d.app.redis, d.group_refresh_ms, d.app.m.group_id_loads, err, sizeof err);
    if (!d.app.groups) {
        fail("group_ids.start", err);
        stop_runtime(&d, 0, -1);
        return 1;
    }
    if (!(d.app.order_gauges = order_gauges_new())) {
        fail("order_gauges", "out of memory");
        stop_runtime(&d, 0, -1);
        return 1;
    }
    if (d.order_sweep_ms > 0 &&
        !(d.sweep = order_sweep_start(&(order_sweep_config){.redis = &d.app.redis,
                                                            .interval_ms = d.order_sweep_ms,
                                                            .refresh_ms = d.app.order_refresh_ms,
                                                            .gauges = d.app.order_gauges},
                                      err, sizeof err))) {
        fail("order_sweep.start", err);
        stop_runtime(&d, 0, -1);
        return 1;
    }
    if (d.threat_flush_ms > 0 &&
        !(d.app.threat_counts = threat_counters_start(
              &(threat_counters_config){.store = d.app.redis, .flush_ms = d.threat_flush_ms}, err, sizeof err))) {
        fail("threat_counters.start", err);
        stop_runtime(&d, 0, -1);
        return 1;
    }
    rpc_server *s = start_server(&d);
    if (!s) {
        stop_runtime(&d, 0, -1);
        return 1;
    }
    log_info("server.started", LOG_S("key_id", d.app.signing.key_id),
             LOG_S("deployment", d.app.on_premises ? "on-premises" : "vendor-hosted"),
             LOG_I("order_keys", (long long)order_keyring_size(d.app.order_keys)), LOG_END);
    start_mdns(&d, s);

    daemon_wait(&d.frame);
    stop_mdns(&d);
    int cancelled = daemon_drain(&d.frame, s);
    stop_runtime(&d, d.flush_ms, cancelled);
    return 0;
}
