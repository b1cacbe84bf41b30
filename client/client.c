/* client.c -- the pa_client handle: activate, renew, deactivate, status,
 * and the maintenance step the daemon runs.
 *
 * Every operation follows the same shape: check locally what can be
 * checked (key checksum, machine id, vendor key), take the state lock,
 * talk to a server through the transport (which fails over), verify what
 * came back as if it came from an attacker, and only then replace the
 * stored license atomically. A failure at any step leaves the stored
 * license as it was.
 *
 * Renew and Deactivate sign a proof with the place key the activation made
 * (place_key.c), so the server knows the call comes from the installation
 * that activated and not from a copy of its license file. Activating again
 * makes a new place key, and the server rebinds the place to it: that is
 * the way back when the key is lost, and pa_maintain takes it when the
 * server says the place is bound to another key.
 *
 * The handle remembers the license the last call handled (for the
 * accessors), the server that answered (written to the state directory so
 * the next run starts there) and the outcome of the last attempt (for the
 * schedule). Errors carry a message for people in c->error and a stable
 * pa_err for programs. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "client_build.h"
#include "client_internal.h"
#include "discovery.h"
#include "hex.h"
#include "machine_id.h"
#include "place_key.h"
#include "rpc_methods.h"
#include "state.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_CONNECT_TIMEOUT_MS 3000
#define REDISCOVER_S 300  /* SRV answers are re-read at most this often */
#define DEFAULT_MDNS_TIMEOUT_MS 2000

const char *pa_err_name(pa_err e) {
    switch (e) {
    case PA_OK: return "ok";
    case PA_ERR_INTERNAL: return "internal";
    case PA_ERR_KEY: return "key";
    case PA_ERR_NOT_ACTIVATED: return "not_activated";
    case PA_ERR_STATE: return "state";
    case PA_ERR_EXPIRED: return "expired";
    case PA_ERR_DENIED: return "denied";
    case PA_ERR_REVOKED: return "revoked";
    case PA_ERR_EXHAUSTED: return "exhausted";
    case PA_ERR_REJECTED: return "rejected";
    case PA_ERR_NOT_FOUND: return "not_found";
    case PA_ERR_UNAVAILABLE: return "unavailable";
    case PA_ERR_BAD_LICENSE: return "bad_license";
    case PA_ERR_CONFIG: return "config";
    case PA_ERR_IO: return "io";
    case PA_ERR_MACHINE: return "machine";
    case PA_ERR_LEASE_EXPIRED: return "lease_expired";
    case PA_ERR_PROOF: return "proof";
    case PA_ERR_PRODUCT: return "product";
    case PA_ERR_PENDING: return "pending";
    case PA_ERR_DEACTIVATED: return "deactivated";
    case PA_ERR_ORDER: return "order";
    }
    return "unknown";
}

pa_err client_fail(pa_client *c, pa_err e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    return e;
}

uint32_t client_random(pa_client *c) {
    /* xorshift64*: plenty for jitter and SRV weights; seeded from OpenSSL. */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return (uint32_t)((c->rng * UINT64_C(2685821657736338717)) >> 32);
}

static uint32_t rand_cb(void *arg) { return client_random(arg); }

void pa_options_init(pa_options *o) {
    memset(o, 0, sizeof *o);
    o->state_dir = PA_DEFAULT_STATE_DIR;
    o->timeout_ms = DEFAULT_TIMEOUT_MS;
    o->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    o->mdns_timeout_ms = DEFAULT_MDNS_TIMEOUT_MS;
}

/* ---- construction ------------------------------------------------------ */

static int copy_options(pa_client *c, const pa_options *o, char *err, size_t errlen) {
    const char *dir = o->state_dir && *o->state_dir ? o->state_dir : PA_DEFAULT_STATE_DIR;
    if (snprintf(c->state_dir, sizeof c->state_dir, "%s", dir) >= (int)sizeof c->state_dir) {
        snprintf(err, errlen, "state directory path too long");
        return -1;
    }
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    c->insecure = o->insecure;
    c->mdns = o->mdns;
    c->mdns_timeout_ms = o->mdns_timeout_ms > 0 ? o->mdns_timeout_ms : DEFAULT_MDNS_TIMEOUT_MS;
    if (o->insecure && o->tls_ca_pem) {
        snprintf(err, errlen, "plain text (insecure) and a TLS CA contradict each other: drop one");
        return -1;
    }
    if (o->srv_domain && *o->srv_domain && !host_name_valid(o->srv_domain)) {
        snprintf(err, errlen, "bad SRV domain \"%.200s\": want a DNS name such as example.com", o->srv_domain);
        return -1;
    }
    snprintf(c->client_version, sizeof c->client_version, "%s",
             o->client_version ? o->client_version : "activate-c/" PA_CLIENT_VERSION);
    if (o->n_servers) {
        endpoint *probe;
        size_t n;
        if (endpoints_from_list(o->servers, o->n_servers, &probe, &n, err, errlen) != 0) return -1;
        free(probe);
        c->servers = calloc(o->n_servers, sizeof *c->servers);
        if (!c->servers) goto oom;
        for (size_t i = 0; i < o->n_servers; i++)
            if (!(c->servers[c->n_servers++] = strdup(o->servers[i]))) goto oom;
    }
    if (o->srv_domain && *o->srv_domain && !(c->srv_domain = strdup(o->srv_domain))) goto oom;
    if (o->dns_server && *o->dns_server && !(c->dns_server = strdup(o->dns_server))) goto oom;
    if (o->tls_ca_pem && !(c->tls_ca_pem = strdup(o->tls_ca_pem))) goto oom;
    if (o->tls_target_name && !(c->tls_target_name = strdup(o->tls_target_name))) goto oom;
    if (o->product && *o->product && !(c->product = strdup(o->product))) goto oom;
    if (o->edition && *o->edition && !(c->edition = strdup(o->edition))) goto oom;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int load_keys(pa_client *c, const pa_options *o, char *err, size_t errlen) {
    const char *pem = o->public_key_pem;
    if (!pem || !*pem) pem = PA_COMPILED_PUBLIC_KEY_PEM;
    if (!*pem) return 0;  /* none: calls that need one say so */
    char why[256];
    if (vendor_keys_load(&c->keys, pem, why, sizeof why) != 0) {
        snprintf(err, errlen, "vendor public key: %s", why);
        return -1;
    }
    return 0;
}

static void identify_machine(pa_client *c, const pa_options *o) {
    machine_facts f;
    c->machine_source = "";
    if (machine_facts_read(o->facts_root, &f, c->machine_err, sizeof c->machine_err) != 0) return;
    const char *salt = o->vendor_salt && *o->vendor_salt ? o->vendor_salt : PA_COMPILED_VENDOR_SALT;
    if (machine_id_derive(&f, salt, c->machine_id) != 0) {
        snprintf(c->machine_err, sizeof c->machine_err, "cannot hash the machine facts");
        return;
    }
    pa_hex_encode(c->machine_id, PA_MACHINE_ID_LEN, c->machine_id_hex);
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256(c->machine_id, PA_MACHINE_ID_LEN, d);
    pa_hex_encode(d, 16, c->machine_digest); /* docs/volume.md: the machine digest */
    c->machine_source = f.source;
    host_facts_read(o->facts_root, &c->facts);
    /* Optional: without them (hashing failed: n is 0) the server matches
     * by machine id only. */
    (void)components_read(o->facts_root, salt, &c->comps);
}

pa_client *pa_client_new(const pa_options *o, char *err, size_t errlen) {
    pa_options defaults;
    if (!o) {
        pa_options_init(&defaults);
        o = &defaults;
    }
    pa_client *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (copy_options(c, o, err, errlen) != 0 || load_keys(c, o, err, errlen) != 0) {
        pa_client_free(c);
        return NULL;
    }
    if (RAND_bytes((unsigned char *)&c->rng, sizeof c->rng) != 1 || c->rng == 0) c->rng = (uint64_t)time(NULL) | 1;
    c->jitter = client_random(c);
    identify_machine(c, o);
    return c;
}

void pa_client_free(pa_client *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_servers; i++) free(c->servers[i]);
    free(c->servers);
    free(c->srv_domain);
    free(c->dns_server);
    free(c->tls_ca_pem);
    free(c->tls_target_name);
    free(c->product);
    free(c->edition);
    vendor_keys_clear(&c->keys);
    transport_free(c->net);
    if (c->lic) activation__v1__license__free_unpacked(c->lic, NULL);
    free(c);
}

const char *pa_error(const pa_client *c) { return c->error; }

pa_err client_need_machine(pa_client *c) {
    if (c->machine_source[0]) return PA_OK;
    return client_fail(c, PA_ERR_MACHINE, "%s", c->machine_err);
}

pa_err client_need_keys(pa_client *c) {
    if (c->keys.n) return PA_OK;
    return client_fail(c, PA_ERR_CONFIG,
                       "no vendor public key: configure one (activate --public-key FILE) or build the client "
                       "with -DPA_CLIENT_PUBLIC_KEY=FILE");
}

/* ---- what we tell the server about the machine -------------------------- */

static void printable_copy(char *dst, size_t n, const char *src) {
    size_t k = 0;
    for (; *src && k + 1 < n; src++)
        if ((unsigned char)*src >= 0x20 && (unsigned char)*src < 0x7f) dst[k++] = *src;
    dst[k] = '\0';
}

void client_describe_machine(char host[PA_HOSTNAME_MAX + 1], char os[PA_FACT_MAX + 1],
                             char arch[PA_FACT_MAX + 1]) {
    char name[256] = "";
    if (gethostname(name, sizeof name) != 0) name[0] = '\0';
    name[sizeof name - 1] = '\0';
    printable_copy(host, PA_HOSTNAME_MAX + 1, name);
    struct utsname u;
    if (uname(&u) != 0) memset(&u, 0, sizeof u);
    char text[2 * sizeof u.release];
    snprintf(text, sizeof text, "%s %s", u.sysname, u.release);
    printable_copy(os, PA_FACT_MAX + 1, text);
    printable_copy(arch, PA_FACT_MAX + 1, u.machine);
}

/* ---- servers and calls ---------------------------------------------------- */

static void read_last_server(pa_client *c, char *out, size_t n) {
    char path[PATH_MAX], *text = NULL, err[64];
    size_t len;
    out[0] = '\0';
    if (state_path(path, sizeof path, c->state_dir, STATE_LAST_SERVER) != 0) return;
    if (state_read_file(path, &text, &len, err, sizeof err) != 0) return;
    printable_copy(out, n, text);
    free(text);
}

static void remember_server(pa_client *c, const char *name) {
    char path[PATH_MAX], last[300], err[256];
    read_last_server(c, last, sizeof last);
    if (strcmp(last, name) == 0 || state_path(path, sizeof path, c->state_dir, STATE_LAST_SERVER) != 0) return;
    /* Best effort: a read-only state dir must not fail an activation. */
    if (state_dir_ensure(c->state_dir, err, sizeof err) == 0)
        (void)state_write_atomic(path, name, strlen(name), 0600, err, sizeof err);
}

/* DNS SRV: the servers of c->srv_domain, in RFC 2782 order. 0, or -1 with err. */
static int srv_servers(pa_client *c, endpoint **eps, size_t *n, char *err, size_t errlen) {
    srv_record *recs;
    size_t nrec;
    if (srv_lookup(c->srv_domain, c->dns_server, c->timeout_ms, &recs, &nrec, err, errlen) != 0) return -1;
    srv_order(recs, nrec, rand_cb, c);
    int rc = endpoints_from_srv(recs, nrec, c->srv_domain, c->dns_server, eps, n, err, errlen);
    free(recs);
    return rc;
}

/* mDNS: the on-premises servers on the LAN, the one announcing this
 * machine's order first. 0, or -1 with err. */
static int mdns_servers(pa_client *c, endpoint **eps, size_t *n, char *err, size_t errlen) {
    mdns_service *svc;
    size_t nsvc;
    if (mdns_browse(c->mdns_timeout_ms, &svc, &nsvc, err, errlen) != 0) return -1;
    mdns_prefer_order(svc, nsvc, pa_order_serial(c));
    int rc = endpoints_from_mdns(svc, nsvc, eps, n, err, errlen);
    free(svc);
    return rc;
}

/* Explicit servers when given; else DNS SRV, then mDNS when SRV found
 * nothing (or is not configured) and mDNS is on (docs/machines.md). */
static pa_err find_servers(pa_client *c, endpoint **eps, size_t *n) {
    char err[256], srv_err[256] = "";
    if (c->n_servers) {
        if (endpoints_from_list((const char *const *)c->servers, c->n_servers, eps, n, err, sizeof err) != 0)
            return client_fail(c, PA_ERR_CONFIG, "%s", err);
        return PA_OK;
    }
    if (!c->srv_domain && !c->mdns)
        return client_fail(c, PA_ERR_CONFIG,
                           "no activation server configured: give --server HOST:PORT, --srv-domain DOMAIN or --mdns");
    if (c->srv_domain && srv_servers(c, eps, n, srv_err, sizeof srv_err) == 0) return PA_OK;
    if (!c->mdns) return client_fail(c, PA_ERR_UNAVAILABLE, "%s", srv_err);
    if (mdns_servers(c, eps, n, err, sizeof err) == 0) return PA_OK;
    return client_fail(c, PA_ERR_UNAVAILABLE, "%s%s%s", srv_err, srv_err[0] ? "; " : "", err);
}

static pa_err ensure_transport(pa_client *c) {
    int64_t now = (int64_t)time(NULL);
    bool fresh = c->net && transport_endpoint_count(c->net) > 0 &&
                 (c->n_servers || now - c->discovered_at < REDISCOVER_S);
    if (fresh) return PA_OK;
    if (!c->insecure && !c->tls_ca_pem)
        return client_fail(c, PA_ERR_CONFIG,
                           "TLS to the activation servers needs the CA that signed their certificates: give "
                           "--tls-ca FILE (--insecure talks plain text, to development servers only)");
    endpoint *eps;
    size_t n;
    pa_err e = find_servers(c, &eps, &n);
    if (e != PA_OK) return e;
    char last[300];
    read_last_server(c, last, sizeof last);
    endpoints_prefer(eps, n, last);
    if (!c->net) {
        rpc_client_tls tls = {c->tls_ca_pem, NULL, NULL, c->tls_target_name};
        c->net = transport_new(c->insecure ? NULL : &tls, c->timeout_ms, c->connect_timeout_ms);
        if (!c->net) {
            free(eps);
            return client_fail(c, PA_ERR_INTERNAL, "out of memory");
        }
    }
    transport_set_endpoints(c->net, eps, n);
    c->discovered_at = now;
    return PA_OK;
}

/* A FAILED_PRECONDITION's "error-reason" (activation.proto): only
 * LEASE_EXPIRED may be cured by activating again; DEACTIVATED is the
 * operator's; an order's dates, state or platform are not final, nor is
 * ORDER_MANAGED (self-service refused for a volume key); anything
 * else, or no reason from an older server, reads as revoked. */
static pa_err from_reason(const char *reason) {
    static const char *const order[] = {"ORDER_NOT_STARTED", "ORDER_ENDED", "ORDER_RETIRED", "PLATFORM_NOT_ALLOWED",
                                        "ORDER_MANAGED"};
    if (strcmp(reason, "LEASE_EXPIRED") == 0) return PA_ERR_LEASE_EXPIRED;
    if (strcmp(reason, "DEACTIVATED") == 0) return PA_ERR_DEACTIVATED;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (strcmp(reason, order[i]) == 0) return PA_ERR_ORDER;
    return PA_ERR_REVOKED;
}

/* The pa_err of a gRPC status and its "error-reason" trailer. */
static pa_err from_status(grpc_status_code s, const char *reason) {
    switch (s) {
    case GRPC_STATUS_OK: return PA_OK;
    case GRPC_STATUS_INVALID_ARGUMENT: return PA_ERR_REJECTED;
    case GRPC_STATUS_PERMISSION_DENIED: return PA_ERR_DENIED;
    case GRPC_STATUS_FAILED_PRECONDITION: return from_reason(reason);
    case GRPC_STATUS_RESOURCE_EXHAUSTED: return PA_ERR_EXHAUSTED;
    case GRPC_STATUS_NOT_FOUND: return PA_ERR_NOT_FOUND;
    case GRPC_STATUS_UNAUTHENTICATED: return PA_ERR_PROOF;
    default: return PA_ERR_UNAVAILABLE;  /* down, deadline, or a server fault: try again later */
    }
}

/* One call with failover; maps the status and keeps the server and
 * retry-after for the caller. */
static pa_err call(pa_client *c, const char *path, const ProtobufCMessage *msg, rpc_result *res) {
    memset(res, 0, sizeof *res);
    c->server[0] = '\0';
    c->retry_after_s = 0;
    c->reason[0] = '\0';
    pa_err e = ensure_transport(c);
    if (e != PA_OK) return e;
    const char *who;
    grpc_status_code s = transport_call(c->net, path, msg, res, &who);
    snprintf(c->server, sizeof c->server, "%s", who);
    c->retry_after_s = res->retry_after_s;
    snprintf(c->reason, sizeof c->reason, "%s", res->reason);
    if (who[0]) remember_server(c, who);
    e = from_status(s, res->reason);
    if (e == PA_OK) return PA_OK;
    if (!who[0]) return client_fail(c, e, "no activation server answered (%s)", res->message);
    if (e == PA_ERR_EXHAUSTED && res->retry_after_s > 0)
        return client_fail(c, e, "%s (server %s; retry after %d s)", res->message, who, res->retry_after_s);
    if (e == PA_ERR_ORDER)
        return client_fail(c, e, "the volume order refuses (%s): %s (server %s; tried again at the next check)",
                           res->reason, res->message, who);
    return client_fail(c, e, "%s (server %s)", res->message, who);
}

pa_err client_call(pa_client *c, const char *path, const ProtobufCMessage *msg, rpc_result *res) {
    return call(c, path, msg, res);
}

/* What Activate and Renew answers share (the same fields, two C types). */
typedef struct answer {
    ProtobufCBinaryData license, signature;     /* the signed License */
    const char *key_id;                         /* who signed it */
    uint32_t activation_count;                  /* machines on the key */
    const Activation__V1__VolumeStatus *volume; /* volume keys only */
    ProtobufCBinaryData order, order_signature; /* on-premises: the vendor-signed order */
    const char *order_key_id;
    uint32_t tree_index, tree_size;       /* the license's leaf in the signed tree */
    const ProtobufCBinaryData *tree_path; /* its sibling hashes, leaf up */
    size_t n_tree_path;
} answer;

static pa_err copy_bytes(pa_client *c, ProtobufCBinaryData b, uint8_t **out, size_t *len) {
    *out = malloc(b.len ? b.len : 1);
    if (!*out) return client_fail(c, PA_ERR_INTERNAL, "out of memory");
    if (b.len) memcpy(*out, b.data, b.len);
    *len = b.len;
    return PA_OK;
}

/* The license's place in the signed tree (merkle.h): copied as sent, only
 * its shape checked here (client_accept verifies it). */
static pa_err take_tree(pa_client *c, const answer *a, signed_license *out) {
    if (a->tree_size == 0)
        return client_fail(c, PA_ERR_BAD_LICENSE,
                           "server %s sent a license without its signed tree (tree_size 0): a server older than "
                           "batch signatures?",
                           c->server);
    if (a->n_tree_path > MERKLE_MAX_PATH)
        return client_fail(c, PA_ERR_BAD_LICENSE, "server %s sent a tree path of %zu hashes (at most %d)", c->server,
                           a->n_tree_path, MERKLE_MAX_PATH);
    for (size_t i = 0; i < a->n_tree_path; i++) {
        if (a->tree_path[i].len != MERKLE_HASH_LEN)
            return client_fail(c, PA_ERR_BAD_LICENSE, "server %s sent tree path hash %zu of %zu bytes (want %d)",
                               c->server, i, a->tree_path[i].len, MERKLE_HASH_LEN);
        memcpy(out->tree_path[i], a->tree_path[i].data, MERKLE_HASH_LEN);
    }
    out->tree_path_len = a->n_tree_path;
    out->tree_index = a->tree_index;
    out->tree_size = a->tree_size;
    return PA_OK;
}

/* Copies the license part of an answer, and the order that came with it
 * (nothing is trusted yet: client_accept verifies). */
static pa_err take_answer(pa_client *c, const answer *a, signed_license *out) {
    memset(out, 0, sizeof *out);
    volume_take(c, a->volume);
    pa_err e = volume_pending(c);
    if (e != PA_OK) return e;
    if (a->signature.len != SIGNATURE_LEN || !a->key_id || strlen(a->key_id) != KEY_ID_LEN || a->license.len == 0)
        return client_fail(c, PA_ERR_BAD_LICENSE, "server %s sent an incomplete license", c->server);
    bool order = a->order.len > 0;
    if (order && (a->order_signature.len != SIGNATURE_LEN || !a->order_key_id || strlen(a->order_key_id) != KEY_ID_LEN))
        return client_fail(c, PA_ERR_BAD_LICENSE, "server %s sent an incomplete order with its license", c->server);
    if ((e = take_tree(c, a, out)) != PA_OK) return e;
    if ((e = copy_bytes(c, a->license, &out->license, &out->license_len)) != PA_OK) return e;
    memcpy(out->signature, a->signature.data, a->signature.len);
    out->signature_len = a->signature.len;
    snprintf(out->key_id, sizeof out->key_id, "%s", a->key_id);
    out->activation_count = a->activation_count;
    out->volume = c->vol.counts;
    if (!order) return PA_OK;
    if ((e = copy_bytes(c, a->order, &out->order, &out->order_len)) != PA_OK) {
        signed_license_clear(out);
        return e;
    }
    memcpy(out->order_signature, a->order_signature.data, a->order_signature.len);
    out->order_signature_len = a->order_signature.len;
    snprintf(out->order_key_id, sizeof out->order_key_id, "%s", a->order_key_id);
    return PA_OK;
}

static pa_err take_activate(pa_client *c, const Activation__V1__ActivateResponse *r, signed_license *out) {
    answer a = {r->license,         r->signature,    r->key_id,     r->activation_count, r->volume,    r->order,
                r->order_signature, r->order_key_id, r->tree_index, r->tree_size,        r->tree_path, r->n_tree_path};
    return take_answer(c, &a, out);
}

static pa_err take_renew(pa_client *c, const Activation__V1__RenewResponse *r, signed_license *out) {
    answer a = {r->license,         r->signature,    r->key_id,     r->activation_count, r->volume,    r->order,
                r->order_signature, r->order_key_id, r->tree_index, r->tree_size,        r->tree_path, r->n_tree_path};
    return take_answer(c, &a, out);
}

/* ActivateRequest.components pointing into `comps` (which must outlive
 * the call); the count. */
static size_t request_components(const components *comps, Activation__V1__MachineComponent items[COMPONENTS_MAX],
                                 Activation__V1__MachineComponent *ptrs[COMPONENTS_MAX]) {
    size_t n = comps ? comps->n : 0;
    for (size_t i = 0; i < n; i++) {
        Activation__V1__MachineComponent init = ACTIVATION__V1__MACHINE_COMPONENT__INIT;
        items[i] = init;
        items[i].name = (char *)comps->item[i].name;
        items[i].digest.data = (uint8_t *)comps->item[i].digest;
        items[i].digest.len = COMPONENT_DIGEST_LEN;
        ptrs[i] = &items[i];
    }
    return n;
}

pa_err client_call_activate(pa_client *c, const char *key, const uint8_t machine_id[PA_MACHINE_ID_LEN],
                            const uint8_t *place_key, const char *hostname, const char *os, const char *arch,
                            const char *client_version, const host_facts *facts, const components *comps,
                            signed_license *out) {
    Activation__V1__ActivateRequest req = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    req.product_key = (char *)key;
    req.machine_id.data = (uint8_t *)machine_id;
    req.machine_id.len = PA_MACHINE_ID_LEN;
    req.place_key.data = (uint8_t *)place_key;
    req.place_key.len = PLACE_KEY_LEN;
    req.hostname = (char *)hostname;
    req.os = (char *)os;
    req.arch = (char *)arch;
    req.client_version = (char *)client_version;
    char *macs[HOST_MACS_MAX];
    if (facts) {
        req.host_serial = (char *)facts->serial;
        for (size_t i = 0; i < facts->n_macs; i++) macs[i] = (char *)facts->macs[i];
        req.n_mac_addresses = facts->n_macs;
        req.mac_addresses = macs;
    }
    Activation__V1__MachineComponent items[COMPONENTS_MAX], *ptrs[COMPONENTS_MAX];
    req.n_components = request_components(comps, items, ptrs);
    req.components = ptrs;
    c->rebound = false;
    rpc_result res;
    pa_err e = call(c, PA_RPC_ACTIVATE, &req.base, &res);
    if (e == PA_OK) {
        Activation__V1__ActivateResponse *r = activation__v1__activate_response__unpack(NULL, res.body_len, res.body);
        if (!r) e = client_fail(c, PA_ERR_BAD_LICENSE, "server %s sent an unreadable answer", c->server);
        else e = take_activate(c, r, out);
        if (r && e == PA_OK) c->rebound = r->rebound;
        if (r) activation__v1__activate_response__free_unpacked(r, NULL);
    }
    rpc_result_clear(&res);
    return e;
}

/* ---- the license ---------------------------------------------------------- */

static void drop_license(pa_client *c) {
    if (c->lic) activation__v1__license__free_unpacked(c->lic, NULL);
    c->lic = NULL;
    c->activation_count = 0;
}

pa_err client_accept(pa_client *c, const signed_license *s, const uint8_t machine_id[PA_MACHINE_ID_LEN],
                     const char *what) {
    drop_license(c);
    char why[256];
    Activation__V1__License *l;
    if (license_verify(&c->keys, s, machine_id, &l, why, sizeof why) != VERIFY_OK)
        return client_fail(c, PA_ERR_BAD_LICENSE, "%s was refused: %s", what, why);
    /* Genuine, but is it ours? A key of another product of the same vendor
     * activates as well as one of ours. */
    const char *product = l->product ? l->product : "", *edition = l->edition ? l->edition : "";
    if ((c->product && strcmp(product, c->product) != 0) || (c->edition && strcmp(edition, c->edition) != 0)) {
        client_fail(c, PA_ERR_PRODUCT, "%s is for \"%s\" edition \"%s\", but this installer is for \"%s\"%s%s%s", what,
                    product, edition, c->product ? c->product : product, c->edition ? " edition \"" : "",
                    c->edition ? c->edition : "", c->edition ? "\"" : "");
        activation__v1__license__free_unpacked(l, NULL);
        return PA_ERR_PRODUCT;
    }
    c->lic = l;
    c->activation_count = s->activation_count;
    c->vol.counts = s->volume;
    return PA_OK;
}

pa_err client_store(pa_client *c, const signed_license *s) {
    char path[PATH_MAX], err[256];
    char *text = license_file_format(s);
    if (!text) return client_fail(c, PA_ERR_INTERNAL, "out of memory");
    int rc = state_dir_ensure(c->state_dir, err, sizeof err);
    if (rc == 0 && state_path(path, sizeof path, c->state_dir, STATE_LICENSE) != 0) {
        snprintf(err, sizeof err, "state directory path too long");
        rc = -1;
    }
    if (rc == 0) rc = state_write_atomic(path, text, strlen(text), 0600, err, sizeof err);
    free(text);
    return rc == 0 ? PA_OK : client_fail(c, PA_ERR_IO, "%s", err);
}

/* Loads and verifies the stored license into c->lic. */
static pa_err load_stored(pa_client *c) {
    drop_license(c);
    memset(&c->vol, 0, sizeof c->vol);
    c->vol.deactivation_requested = volume_record_exists(c, STATE_DEACTIVATION_REQUESTED);
    pa_err e = client_need_machine(c);
    if (e == PA_OK) e = client_need_keys(c);
    if (e != PA_OK) return e;
    char path[PATH_MAX], *text, err[256];
    size_t len;
    if (state_path(path, sizeof path, c->state_dir, STATE_LICENSE) != 0)
        return client_fail(c, PA_ERR_CONFIG, "state directory path too long");
    int rc = state_read_file(path, &text, &len, err, sizeof err);
    if (rc == 1 && volume_record_exists(c, STATE_DEACTIVATED))
        return client_fail(c, PA_ERR_NOT_ACTIVATED,
                           "this machine is not activated: the operator of its volume order deactivated it (no "
                           "license in %s)",
                           c->state_dir);
    if (rc == 1) return client_fail(c, PA_ERR_NOT_ACTIVATED, "this machine is not activated (no license in %s)", c->state_dir);
    if (rc != 0) return client_fail(c, PA_ERR_IO, "%s", err);
    signed_license s;
    rc = license_file_parse(text, &s, err, sizeof err);
    free(text);
    if (rc == LICENSE_FILE_OLDER)
        return client_fail(c, PA_ERR_STATE, "the license %s is stored in an older format: activate again (%s)", path,
                           err);
    if (rc != 0)
        return client_fail(c, PA_ERR_STATE, "the stored license %s is damaged (%s); it is not trusted: activate again",
                           path, err);
    e = client_accept(c, &s, c->machine_id, "the stored license");
    signed_license_clear(&s);
    if (e != PA_OK) {
        char why[sizeof c->error];
        memcpy(why, c->error, sizeof why);
        return client_fail(c, PA_ERR_STATE, "%s; it is not trusted: activate again", why);
    }
    int64_t exp = c->lic->expires_at;
    if (exp > 0 && exp <= (int64_t)time(NULL))
        return client_fail(c, PA_ERR_EXPIRED, "the license expired at %lld; renew or activate again", (long long)exp);
    return PA_OK;
}

pa_err pa_status(pa_client *c) {
    c->error[0] = '\0';
    return load_stored(c);
}

/* ---- activate / renew / deactivate ------------------------------------------ */

static void record_attempt(pa_client *c, pa_err e) {
    c->sched.last_attempt = (int64_t)time(NULL);
    c->sched.last_failed = e != PA_OK;
    c->sched.retry_after_s = e != PA_OK ? c->retry_after_s : 0;
    c->sched.check_in_at = e == PA_ERR_PENDING ? c->vol.check_in_at : 0;
    c->jitter = client_random(c);
}

/* The place key a call binds with (place_key.h): the pending one, made now
 * if there is none; `pub` gets its public half. */
static pa_err pending_key(pa_client *c, EVP_PKEY **key, uint8_t pub[PLACE_KEY_LEN]) {
    char err[256];
    int rc = place_key_pending(c->state_dir, key, err, sizeof err);
    if (rc != 0) return client_fail(c, PA_ERR_IO, "%s", err);
    if (place_key_public(*key, pub) == 0) return PA_OK;
    EVP_PKEY_free(*key);
    *key = NULL;
    return client_fail(c, PA_ERR_INTERNAL, "cannot read the place key's public half");
}

static pa_err confirm_key(pa_client *c) {
    char err[256];
    return place_key_confirm(c->state_dir, err, sizeof err) == 0 ? PA_OK : client_fail(c, PA_ERR_IO, "%s", err);
}

static pa_err remove_license(pa_client *c) {
    char path[PATH_MAX];
    if (state_path(path, sizeof path, c->state_dir, STATE_LICENSE) != 0)
        return client_fail(c, PA_ERR_CONFIG, "state directory path too long");
    if (unlink(path) != 0 && errno != ENOENT)
        return client_fail(c, PA_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    return PA_OK;
}

/* The place is gone on the server: so go the license, its place key and a
 * deactivation request. Then `then` says what happened (NULL: PA_OK). */
static pa_err forget_place(pa_client *c, pa_err (*then)(pa_client *)) {
    drop_license(c);
    pa_err e = remove_license(c);
    char err[256];
    if (e == PA_OK && place_key_remove(c->state_dir, err, sizeof err) != 0) e = client_fail(c, PA_ERR_IO, "%s", err);
    if (e == PA_OK && then) return then(c);
    if (e == PA_OK) e = volume_record_remove(c, STATE_DEACTIVATION_REQUESTED);
    if (e == PA_OK) c->vol.deactivation_requested = false;
    return e;
}

static pa_err activate_locked(pa_client *c, const char *key) {
    char host[PA_HOSTNAME_MAX + 1], os[PA_FACT_MAX + 1], arch[PA_FACT_MAX + 1];
    client_describe_machine(host, os, arch);
    EVP_PKEY *pk;
    uint8_t pub[PLACE_KEY_LEN];
    pa_err e = pending_key(c, &pk, pub);
    EVP_PKEY_free(pk); /* only its public half goes to the server */
    if (e != PA_OK) return e;
    signed_license s;
    e = client_call_activate(c, key, c->machine_id, pub, host, os, arch, c->client_version, &c->facts, &c->comps, &s);
    if (e == PA_ERR_DEACTIVATED) return forget_place(c, volume_deactivated); /* still: the operator said so */
    if (e != PA_OK) return e;
    char what[350];
    snprintf(what, sizeof what, "the license from server %s", c->server);
    e = client_accept(c, &s, c->machine_id, what);
    /* The key before the license: a license whose key is not where renew
     * looks for it could not be renewed. */
    if (e == PA_OK) e = confirm_key(c);
    if (e == PA_OK) e = client_store(c, &s);
    /* A person activated: whatever the operator ended before starts again. */
    if (e == PA_OK) e = volume_record_remove(c, STATE_DEACTIVATED);
    if (e == PA_OK) e = volume_after_grant(c);
    if (e != PA_OK) drop_license(c);
    signed_license_clear(&s);
    return e;
}

/* A proof for `op` on the handle's license. With no confirmed place key
 * (activated before place keys existed), the pending key goes along: the
 * server binds a place without a key to the first key that proves itself.
 * *pending tells the caller to confirm it once the server accepted. */
static pa_err prove(pa_client *c, place_op op, place_key_proof *proof, bool *pending) {
    char err[256];
    EVP_PKEY *k;
    uint8_t pub[PLACE_KEY_LEN];
    int rc = place_key_load(c->state_dir, &k, err, sizeof err);
    *pending = rc == PLACE_KEY_NONE;
    if (rc == PLACE_KEY_DAMAGED) return client_fail(c, PA_ERR_STATE, "%s", err);
    if (rc == PLACE_KEY_IO) return client_fail(c, PA_ERR_IO, "%s", err);
    if (*pending) {
        pa_err e = pending_key(c, &k, pub);
        if (e != PA_OK) return e;
    }
    rc = place_key_prove(k, op, c->lic->license_id, c->machine_id, proof);
    EVP_PKEY_free(k);
    return rc == 0 ? PA_OK : client_fail(c, PA_ERR_INTERNAL, "cannot sign the proof with the place key");
}

pa_err pa_activate(pa_client *c, const char *key) {
    c->error[0] = '\0';
    char canonical[PA_KEY_TEXT_LEN + 1];
    pa_key_problem p;
    if (pa_key_check(key, canonical, &p) != PA_OK) return client_fail(c, PA_ERR_KEY, "%s", p.message);
    pa_err e = client_need_machine(c);
    if (e == PA_OK) e = client_need_keys(c);
    if (e != PA_OK) return e;
    char err[256];
    int lock = state_lock(c->state_dir, err, sizeof err);
    if (lock < 0) return client_fail(c, PA_ERR_IO, "%s", err);
    e = activate_locked(c, canonical);
    state_unlock(lock);
    record_attempt(c, e);
    return e;
}

static pa_err renew_locked(pa_client *c) {
    pa_err e = load_stored(c);
    if (e != PA_OK && e != PA_ERR_EXPIRED) return e;
    place_key_proof proof;
    bool pending;
    e = prove(c, PLACE_OP_RENEW, &proof, &pending);
    if (e != PA_OK) return e;
    Activation__V1__RenewRequest req = ACTIVATION__V1__RENEW_REQUEST__INIT;
    req.license_id = c->lic->license_id;
    req.machine_id.data = c->machine_id;
    req.machine_id.len = PA_MACHINE_ID_LEN;
    req.proof = &proof.msg;
    rpc_result res;
    e = call(c, PA_RPC_RENEW, &req.base, &res);
    if (e == PA_OK && pending) e = confirm_key(c);
    signed_license s = {0};
    if (e == PA_OK) {
        Activation__V1__RenewResponse *r = activation__v1__renew_response__unpack(NULL, res.body_len, res.body);
        if (!r) e = client_fail(c, PA_ERR_BAD_LICENSE, "server %s sent an unreadable answer", c->server);
        else e = take_renew(c, r, &s);
        if (r) activation__v1__renew_response__free_unpacked(r, NULL);
    }
    rpc_result_clear(&res);
    if (e == PA_ERR_DEACTIVATED) return forget_place(c, volume_deactivated);
    if (e != PA_OK) return e;
    char what[350];
    snprintf(what, sizeof what, "the renewed license from server %s", c->server);
    e = client_accept(c, &s, c->machine_id, what);
    if (e == PA_OK) e = client_store(c, &s);
    if (e == PA_OK) e = volume_after_grant(c);
    signed_license_clear(&s);
    return e;
}

pa_err pa_renew(pa_client *c) {
    c->error[0] = '\0';
    char err[256];
    int lock = state_lock(c->state_dir, err, sizeof err);
    if (lock < 0) return client_fail(c, PA_ERR_IO, "%s", err);
    pa_err e = renew_locked(c);
    state_unlock(lock);
    if (e != PA_OK && e != PA_ERR_NOT_ACTIVATED && e != PA_ERR_STATE) {
        /* The stored license stays as it was; reload it for the accessors. */
        char saved[sizeof c->error];
        memcpy(saved, c->error, sizeof saved);
        (void)load_stored(c);
        memcpy(c->error, saved, sizeof saved);
    }
    record_attempt(c, e);
    return e;
}

static pa_err deactivate_locked(pa_client *c) {
    pa_err e = load_stored(c);
    if (e != PA_OK && e != PA_ERR_EXPIRED) return e;
    place_key_proof proof;
    bool pending;
    e = prove(c, PLACE_OP_DEACTIVATE, &proof, &pending);
    if (e != PA_OK) return e;
    Activation__V1__DeactivateRequest req = ACTIVATION__V1__DEACTIVATE_REQUEST__INIT;
    req.license_id = c->lic->license_id;
    req.machine_id.data = c->machine_id;
    req.machine_id.len = PA_MACHINE_ID_LEN;
    req.proof = &proof.msg;
    rpc_result res;
    e = call(c, PA_RPC_DEACTIVATE, &req.base, &res);
    bool gone_already = e == PA_ERR_NOT_FOUND, awaits = false;
    if (e == PA_OK) {
        Activation__V1__DeactivateResponse *r =
            activation__v1__deactivate_response__unpack(NULL, res.body_len, res.body);
        if (r) {
            c->activation_count = r->activation_count;
            volume_take(c, r->volume);
            awaits = r->volume && r->volume->deactivation ==
                                      ACTIVATION__V1__VOLUME_STATUS__DEACTIVATION__DEACTIVATION_AWAITING_APPROVAL;
            activation__v1__deactivate_response__free_unpacked(r, NULL);
        }
    }
    rpc_result_clear(&res);
    if (e == PA_OK && pending) e = confirm_key(c);
    if (e == PA_OK && awaits) return volume_deactivation_awaits(c); /* the license stays */
    if (e == PA_ERR_DEACTIVATED) return forget_place(c, volume_deactivated);
    if (e != PA_OK && !gone_already) return e;
    unsigned count = c->activation_count;
    e = forget_place(c, NULL);
    c->activation_count = gone_already ? 0 : count;
    if (e == PA_OK) {
        c->error[0] = '\0';
        if (gone_already)
            snprintf(c->error, sizeof c->error, "the server no longer held this machine's place; removed the local license");
    }
    return e;
}

pa_err pa_deactivate(pa_client *c) {
    c->error[0] = '\0';
    char err[256];
    int lock = state_lock(c->state_dir, err, sizeof err);
    if (lock < 0) return client_fail(c, PA_ERR_IO, "%s", err);
    pa_err e = deactivate_locked(c);
    state_unlock(lock);
    return e;
}

/* ---- the schedule --------------------------------------------------------- */

/* When the loaded license wants a Renew (0: never): at renew_after; now
 * while no place key is confirmed (a renewal binds one, place_key.h), even
 * for a license that needs no renewal; and every retry interval while a
 * deactivation request waits for the operator, since only a renewal brings
 * the decision. */
static int64_t renew_due(pa_client *c, int64_t now) {
    if (!place_key_confirmed(c->state_dir)) return now;
    int64_t t = c->lic->renew_after;
    if (c->vol.deactivation_requested) {
        int64_t poll = c->sched.last_attempt > 0 ? c->sched.last_attempt + SCHEDULE_RETRY_S : now;
        if (t <= 0 || poll < t) t = poll;
    }
    return t;
}

int64_t pa_next_check(pa_client *c, int64_t now) {
    pa_err e = load_stored(c);
    if (e == PA_ERR_NOT_ACTIVATED && volume_record_exists(c, STATE_DEACTIVATED)) return SCHEDULE_NEVER;
    c->sched.licensed = e == PA_OK;
    c->sched.renew_after = e == PA_OK ? renew_due(c, now) : 0;
    c->sched.expires_at = e == PA_OK ? c->lic->expires_at : 0;
    return schedule_next(&c->sched, now, c->jitter);
}

pa_err pa_maintain(pa_client *c, const char *key) {
    pa_err st = pa_status(c);
    int64_t now = (int64_t)time(NULL);
    pa_err e;
    if (st == PA_OK) {
        int64_t due = renew_due(c, now);
        if (due <= 0 || now < due) return PA_OK;
    }
    if (st == PA_OK || st == PA_ERR_EXPIRED) {
        e = pa_renew(c);
        /* The license id is dead -- the place was reclaimed, or its lease
         * lapsed -- but the key is not: take the place again. So too when
         * the place is bound to a place key this machine does not hold
         * (lost, or the license came from elsewhere): activating with the
         * product key binds a new one. A revoked key (PA_ERR_REVOKED) stays
         * refused. */
        bool wrong_key = e == PA_ERR_PROOF && strcmp(c->reason, "PROOF_WRONG_KEY") == 0;
        if ((e == PA_ERR_NOT_FOUND || e == PA_ERR_LEASE_EXPIRED || wrong_key) && key) {
            const char *why = e == PA_ERR_LEASE_EXPIRED ? "the lease had lapsed"
                              : wrong_key               ? "the place was bound to another place key"
                                                        : "the server no longer held this machine's place";
            e = pa_activate(c, key);
            if (e == PA_OK) snprintf(c->error, sizeof c->error, "%s; activated again with the product key", why);
        }
        return e;
    }
    if (st == PA_ERR_NOT_ACTIVATED && volume_record_exists(c, STATE_DEACTIVATED)) {
        client_fail(c, PA_ERR_DEACTIVATED,
                    "the operator of its volume order deactivated this machine; it is activated again only when "
                    "someone runs `activate KEY`");
        record_attempt(c, PA_ERR_DEACTIVATED);
        return PA_ERR_DEACTIVATED;
    }
    if (key && (st == PA_ERR_NOT_ACTIVATED || st == PA_ERR_STATE)) return pa_activate(c, key);
    if (st == PA_ERR_NOT_ACTIVATED)
        client_fail(c, st, "this machine is not activated and no product key was given to activate with");
    record_attempt(c, st);
    return st;
}

/* ---- accessors ------------------------------------------------------------ */

bool pa_is_licensed(const pa_client *c) { return c->lic != NULL; }
static const char *str_or_empty(const char *s) { return s ? s : ""; }
const char *pa_license_id(const pa_client *c) { return c->lic ? str_or_empty(c->lic->license_id) : ""; }
const char *pa_product(const pa_client *c) { return c->lic ? str_or_empty(c->lic->product) : ""; }
const char *pa_edition(const pa_client *c) { return c->lic ? str_or_empty(c->lic->edition) : ""; }
size_t pa_feature_count(const pa_client *c) { return c->lic ? c->lic->n_features : 0; }
const char *pa_feature(const pa_client *c, size_t i) {
    return c->lic && i < c->lic->n_features ? c->lic->features[i] : NULL;
}
bool pa_has_feature(const pa_client *c, const char *name) {
    for (size_t i = 0; i < pa_feature_count(c); i++)
        if (strcmp(c->lic->features[i], name) == 0) return true;
    return false;
}
int64_t pa_issued_at(const pa_client *c) { return c->lic ? c->lic->issued_at : 0; }
int64_t pa_renew_after(const pa_client *c) { return c->lic ? c->lic->renew_after : 0; }
int64_t pa_expires_at(const pa_client *c) { return c->lic ? c->lic->expires_at : 0; }
uint32_t pa_key_group(const pa_client *c) { return c->lic ? c->lic->key_group : 0; }
uint32_t pa_key_serial(const pa_client *c) { return c->lic ? c->lic->key_serial : 0; }
unsigned pa_activation_count(const pa_client *c) { return c->activation_count; }
bool pa_rebound(const pa_client *c) { return c->rebound; }
const uint8_t *pa_machine_id(const pa_client *c) { return c->machine_id; }
const char *pa_machine_id_hex(const pa_client *c) { return c->machine_id_hex; }
const char *pa_machine_id_source(const pa_client *c) { return c->machine_source; }
const char *pa_machine_digest(const pa_client *c) { return c->machine_source[0] ? c->machine_digest : ""; }
const char *pa_component_name(size_t i) { return i < COMPONENTS_KNOWN ? component_names[i] : NULL; }
bool pa_has_component(const pa_client *c, const char *name) { return components_find(&c->comps, name) != NULL; }

const char *pa_order_serial(const pa_client *c) {
    return c->lic && c->lic->order_serial && *c->lic->order_serial ? c->lic->order_serial : c->vol.order_serial;
}
uint32_t pa_order_revision(const pa_client *c) {
    return c->lic && c->lic->order_serial && *c->lic->order_serial ? c->lic->order_revision : c->vol.order_revision;
}
const char *pa_seat_mode(const pa_client *c) {
    return c->lic && c->lic->seat_mode && *c->lic->seat_mode ? c->lic->seat_mode : c->vol.mode;
}
unsigned pa_volume_count(const pa_client *c) { return c->vol.counts.count; }
unsigned pa_volume_threshold(const pa_client *c) { return c->vol.counts.threshold; }
unsigned pa_volume_seats(const pa_client *c) { return c->vol.counts.seats; }
unsigned pa_volume_seats_used(const pa_client *c) { return c->vol.counts.seats_used; }
bool pa_deactivation_requested(const pa_client *c) { return c->vol.deactivation_requested; }
const char *pa_server(const pa_client *c) { return c->server; }
const char *pa_request_fingerprint(const pa_client *c) { return c->request_fp; }
int pa_retry_after(const pa_client *c) { return c->retry_after_s; }

const char *pa_channel(const pa_client *c) {
    if (!c->lic) return "";
    switch (c->lic->channel) {
    case ACTIVATION__V1__CHANNEL__CHANNEL_RETAIL: return "retail";
    case ACTIVATION__V1__CHANNEL__CHANNEL_OEM: return "oem";
    case ACTIVATION__V1__CHANNEL__CHANNEL_VOLUME: return "volume";
    default: return "unspecified";
    }
}
