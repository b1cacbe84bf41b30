/* test_volume_answers.c -- what the installer does with each answer a
 * volume order's server can give, against a scripted activation server in
 * this process (common/rpc_server on loopback, one worker) that signs like
 * an on-premises server: licenses by its own key, with the vendor-signed
 * order that delegates it (client_testutil's tu_chain).
 *
 * Checked: the chain is accepted and stored, a rogue server's license is
 * not; the machine facts (host serial, MACs) reach the server; pending
 * answers (below the threshold, not designated) store nothing, say why and
 * schedule the check-in; heartbeats stay inside the lease; a deactivation
 * awaiting approval keeps the license and is recorded, then denied or
 * approved by a later renewal; a forced deactivation removes the license and
 * the daemon step does not activate again; order refusals are not final.
 * Also the `activate` CLI's exit codes and `activate status` for a volume
 * license, and the two clients written from the .proto files alone
 * (tests/activation/interop_activate.py with Debian's python3-grpcio,
 * tests/client/node/activate.js with npm's @grpc/grpc-js) verifying the same
 * chain and refusing the same rogue. The server talks TLS with the
 * certificates of scripts/make-certs.sh, as installers require. The real
 * servers are exercised by client.volume. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "activate.h"
#include "client_env.h"
#include "client_testutil.h"
#include "fixture.h"
#include "rpc_client.h"
#include "rpc_server.h"
#include "state.h"

#define KEY "QPM6N-7J2WJ-P88HH-P3YRH-YY74H"
#define ACTIVATE_PATH "/activation.v1.Activation/Activate"
#define RENEW_PATH "/activation.v1.Activation/Renew"
#define DEACTIVATE_PATH "/activation.v1.Activation/Deactivate"

/* The scripted server: what it answers next, and what it was sent. */
static struct {
    pthread_mutex_t mu;
    tu_chain chain;       /* signs every license */
    int pending;          /* Activate: VolumeStatus.pending (no license) */
    const char *refuse;   /* non-NULL: Activate and Renew refused FAILED_PRECONDITION with this reason */
    bool refuse_activate; /* ... Activate too (else Renew only) */
    int deactivation;     /* VolumeStatus.deactivation in Renew answers */
    bool approval;        /* Deactivate answers DEACTIVATION_AWAITING_APPROVAL */
    int64_t check_in_at;  /* VolumeStatus.check_in_at of pending answers */
    unsigned activates, renews, deactivates; /* calls received */
    char host_serial[80];                    /* the last ActivateRequest's facts */
    char macs[8][24];
    size_t n_macs;
} fake = {.mu = PTHREAD_MUTEX_INITIALIZER};

typedef struct env {
    char dir[256], root[300], state[300];
    char bundle_path[300];             /* the vendor's public keys, as the C client takes them */
    char license_pub[300];             /* the vendor's license key alone, and its order key alone, */
    char order_pub[300];               /* as the Python and Node.js clients take them */
    char ca[300];                      /* the CA of the server's TLS certificate */
    char *ca_pem, *cert_pem, *key_pem; /* TLS material as text */
    char server[64];                   /* "127.0.0.1:PORT" */
    EVP_PKEY *order_key;               /* the vendor's order key */
    EVP_PKEY *server_key;              /* the on-premises server's key */
    char *bundle;                      /* the vendor's public keys (license and order key) */
    rpc_server *rpc;
    pa_client *c;
} env;

static env *the_env;

static void status_of(Activation__V1__VolumeStatus *v, int64_t check_in_at) {
    v->order_serial = "12345678";
    v->order_revision = 1;
    v->mode = "concurrent";
    v->activation_count = fake.pending == 1 ? 2 : 17;
    v->threshold = 5;
    v->seats = 500;
    v->seats_used = fake.pending ? 0 : 17;
    v->check_in_at = check_in_at;
}

/* A license for `machine` in an answer (Activate and Renew answers have the
 * same fields under the same numbers, activation.proto). */
static void grant(rpc_reply *reply, const uint8_t *machine, int deactivation) {
    memcpy(fake.chain.machine_id, machine, 32);
    signed_license s;
    tu_chain_sign(&fake.chain, &s);
    Activation__V1__VolumeStatus v = ACTIVATION__V1__VOLUME_STATUS__INIT;
    status_of(&v, fake.chain.license.renew_after);
    v.deactivation = deactivation;
    Activation__V1__ActivateResponse r = ACTIVATION__V1__ACTIVATE_RESPONSE__INIT;
    r.license = (ProtobufCBinaryData){s.license_len, s.license};
    r.signature = (ProtobufCBinaryData){s.signature_len, s.signature};
    r.key_id = s.key_id;
    r.activation_count = 1;
    r.renew_after = fake.chain.license.renew_after;
    r.expires_at = fake.chain.license.expires_at;
    r.volume = &v;
    r.order = (ProtobufCBinaryData){s.order_len, s.order};
    r.order_signature = (ProtobufCBinaryData){s.order_signature_len, s.order_signature};
    r.order_key_id = s.order_key_id;
    ProtobufCBinaryData path[MERKLE_MAX_PATH]; /* the license's place in its signed tree */
    for (size_t i = 0; i < s.tree_path_len; i++) path[i] = (ProtobufCBinaryData){MERKLE_HASH_LEN, s.tree_path[i]};
    r.tree_index = s.tree_index;
    r.tree_size = s.tree_size;
    r.n_tree_path = s.tree_path_len;
    r.tree_path = path;
    rpc_reply_message(reply, &r.base);
    signed_license_clear(&s);
}

static void refuse(rpc_reply *reply) {
    rpc_reply_error(reply, GRPC_STATUS_FAILED_PRECONDITION, "refused: %s", fake.refuse);
    reply->reason = fake.refuse;
}

static void on_activate(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    Activation__V1__ActivateRequest *r = activation__v1__activate_request__unpack(NULL, len, req);
    if (!r || r->machine_id.len != 32) {
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "bad request");
        if (r) activation__v1__activate_request__free_unpacked(r, NULL);
        return;
    }
    pthread_mutex_lock(&fake.mu);
    fake.activates++;
    snprintf(fake.host_serial, sizeof fake.host_serial, "%s", r->host_serial);
    fake.n_macs = r->n_mac_addresses < 8 ? r->n_mac_addresses : 8;
    for (size_t i = 0; i < fake.n_macs; i++) snprintf(fake.macs[i], sizeof fake.macs[i], "%s", r->mac_addresses[i]);
    if (fake.refuse && fake.refuse_activate) {
        refuse(reply);
    } else if (fake.pending) {
        Activation__V1__VolumeStatus v = ACTIVATION__V1__VOLUME_STATUS__INIT;
        status_of(&v, fake.check_in_at);
        v.pending = fake.pending;
        Activation__V1__ActivateResponse a = ACTIVATION__V1__ACTIVATE_RESPONSE__INIT;
        a.volume = &v;
        rpc_reply_message(reply, &a.base);
    } else {
        grant(reply, r->machine_id.data, 0);
    }
    pthread_mutex_unlock(&fake.mu);
    activation__v1__activate_request__free_unpacked(r, NULL);
}

static void on_renew(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    Activation__V1__RenewRequest *r = activation__v1__renew_request__unpack(NULL, len, req);
    if (!r || r->machine_id.len != 32 || !r->proof) {
        rpc_reply_error(reply, GRPC_STATUS_INVALID_ARGUMENT, "bad request");
        if (r) activation__v1__renew_request__free_unpacked(r, NULL);
        return;
    }
    pthread_mutex_lock(&fake.mu);
    fake.renews++;
    if (fake.refuse) refuse(reply);
    else grant(reply, r->machine_id.data, fake.deactivation);
    pthread_mutex_unlock(&fake.mu);
    activation__v1__renew_request__free_unpacked(r, NULL);
}

static void on_deactivate(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    pthread_mutex_lock(&fake.mu);
    fake.deactivates++;
    Activation__V1__VolumeStatus v = ACTIVATION__V1__VOLUME_STATUS__INIT;
    status_of(&v, 0);
    if (fake.approval) v.deactivation = ACTIVATION__V1__VOLUME_STATUS__DEACTIVATION__DEACTIVATION_AWAITING_APPROVAL;
    Activation__V1__DeactivateResponse d = ACTIVATION__V1__DEACTIVATE_RESPONSE__INIT;
    d.activation_count = fake.approval ? 1 : 0;
    d.volume = &v;
    rpc_reply_message(reply, &d.base);
    pthread_mutex_unlock(&fake.mu);
}

static const rpc_method METHODS[] = {
    {ACTIVATE_PATH, on_activate, 0, NULL},
    {RENEW_PATH, on_renew, 0, NULL},
    {DEACTIVATE_PATH, on_deactivate, 0, NULL},
};

static int worker_state;
static void *worker_init(int index, void *app) { return &worker_state; }

static pa_client *client_for(env *e) {
    pa_options o;
    pa_options_init(&o);
    const char *servers[] = {e->server};
    o.servers = servers;
    o.n_servers = 1;
    o.tls_ca_pem = e->ca_pem;
    o.state_dir = e->state;
    o.facts_root = e->root;
    o.public_key_pem = e->bundle;
    o.vendor_salt = "test-salt";
    o.timeout_ms = 5000;
    char err[256];
    pa_client *c = pa_client_new(&o, err, sizeof err);
    if (!c) fprintf(stderr, "pa_client_new: %s\n", err);
    return c;
}

/* scripts/make-certs.sh: the server certificate names 127.0.0.1. */
static int make_certs(env *e) {
    char certs[280], script[600], path[400], err[256];
    snprintf(certs, sizeof certs, "%s/certs", e->dir);
    snprintf(script, sizeof script, "%s/scripts/make-certs.sh", env_source_dir());
    const char *mk[] = {"/bin/bash", script, certs, NULL};
    if (fixture_run((char *const *)mk, NULL, NULL) != 0) return -1;
    snprintf(e->ca, sizeof e->ca, "%s/ca.pem", certs);
    e->ca_pem = rpc_read_pem(e->ca, err, sizeof err);
    snprintf(path, sizeof path, "%s/audit-server.pem", certs);
    e->cert_pem = rpc_read_pem(path, err, sizeof err);
    snprintf(path, sizeof path, "%s/audit-server.key", certs);
    e->key_pem = rpc_read_pem(path, err, sizeof err);
    return e->ca_pem && e->cert_pem && e->key_pem ? 0 : -1;
}

static int setup(void **state) {
    static env e;
    the_env = &e;
    if (fixture_tmpdir(e.dir, sizeof e.dir, "volume-answers") != 0) return -1;
    snprintf(e.root, sizeof e.root, "%s/machine", e.dir);
    snprintf(e.state, sizeof e.state, "%s/state", e.dir);
    snprintf(e.bundle_path, sizeof e.bundle_path, "%s/vendor.pub.pem", e.dir);
    tu_fake_machine(e.root, "4c4c4544-0035-4a10-8051-b3c04f4a4e32", "CN1234", NULL, NULL);
    tu_write(e.root, "sys/class/dmi/id/product_serial", "SN-4711");
    tu_add_nic(e.root, "lo", "00:00:00:00:00:00", 0, 0, 0);
    tu_add_nic(e.root, "eth0", "3c:ec:ef:10:20:30", 1, 0, 0);
    tu_add_nic(e.root, "wlan0", "3C:EC:EF:10:20:2F", 1, 0, 0);
    char *license_pub, *order_pub, *server_pub;
    EVP_PKEY *license_key = tu_vendor_key(&license_pub);
    EVP_PKEY_free(license_key); /* the vendor's license key signs nothing here */
    e.order_key = tu_vendor_key(&order_pub);
    e.server_key = tu_vendor_key(&server_pub);
    free(server_pub);
    size_t n = strlen(license_pub) + strlen(order_pub) + 1;
    e.bundle = malloc(n);
    snprintf(e.bundle, n, "%s%s", license_pub, order_pub);
    tu_write(e.dir, "vendor.pub.pem", e.bundle);
    tu_write(e.dir, "license.pub.pem", license_pub);
    tu_write(e.dir, "order.pub.pem", order_pub);
    snprintf(e.license_pub, sizeof e.license_pub, "%s/license.pub.pem", e.dir);
    snprintf(e.order_pub, sizeof e.order_pub, "%s/order.pub.pem", e.dir);
    free(license_pub);
    free(order_pub);
    if (make_certs(&e) != 0) return -1;
    const char *listen[] = {"127.0.0.1:0"};
    rpc_tls_config tls = {e.cert_pem, e.key_pem, NULL};
    rpc_server_config cfg = {.listen = listen, .n_listen = 1, .workers = 1, .worker_init = worker_init, .tls = &tls};
    char err[256];
    e.rpc = rpc_server_start(&cfg, METHODS, sizeof METHODS / sizeof METHODS[0], err, sizeof err);
    if (!e.rpc) {
        fprintf(stderr, "rpc_server_start: %s\n", err);
        return -1;
    }
    snprintf(e.server, sizeof e.server, "127.0.0.1:%d", rpc_server_port(e.rpc, 0));
    *state = &e;
    return 0;
}

static int teardown(void **state) {
    env *e = *state;
    rpc_server_shutdown(e->rpc, 1000);
    EVP_PKEY_free(e->order_key);
    EVP_PKEY_free(e->server_key);
    free(e->bundle);
    free(e->ca_pem);
    free(e->cert_pem);
    free(e->key_pem);
    fixture_rmtree(e->dir);
    return 0;
}

/* Each test: a fresh state directory, a fresh client and a server that grants. */
static int fresh(void **state) {
    env *e = *state;
    fixture_rmtree(e->state);
    pa_client_free(e->c);
    e->c = client_for(e);
    pthread_mutex_lock(&fake.mu);
    tu_chain_init(&fake.chain, e->order_key, e->server_key, pa_machine_id(e->c));
    fake.pending = 0;
    fake.refuse = NULL;
    fake.refuse_activate = false;
    fake.deactivation = 0;
    fake.approval = false;
    fake.check_in_at = 0;
    fake.activates = fake.renews = fake.deactivates = 0;
    pthread_mutex_unlock(&fake.mu);
    return e->c ? 0 : -1;
}

static int last(void **state) {
    env *e = *state;
    pa_client_free(e->c);
    e->c = NULL;
    return 0;
}

static unsigned calls(unsigned *counter) {
    pthread_mutex_lock(&fake.mu);
    unsigned n = *counter;
    pthread_mutex_unlock(&fake.mu);
    return n;
}

static bool state_file(env *e, const char *name) {
    char path[400];
    snprintf(path, sizeof path, "%s/%s", e->state, name);
    return access(path, F_OK) == 0;
}

static void expect(pa_err got, pa_err want, const pa_client *c, const char *text) {
    if (got != want || (text && !strstr(pa_error(c), text)))
        fail_msg("want %s%s%s; got %s: %s", pa_err_name(want), text ? " with " : "", text ? text : "", pa_err_name(got),
                 pa_error(c));
}

/* ---- granted ------------------------------------------------------------- */

static void on_premises_license_is_accepted_and_facts_sent(void **state) {
    env *e = *state;
    expect(pa_activate(e->c, KEY), PA_OK, e->c, NULL);
    assert_string_equal(pa_order_serial(e->c), "12345678");
    assert_string_equal(pa_seat_mode(e->c), "concurrent");
    assert_int_equal(pa_volume_count(e->c), 17);
    assert_int_equal(pa_volume_threshold(e->c), 5);
    assert_int_equal(pa_volume_seats_used(e->c), 17);
    pthread_mutex_lock(&fake.mu);
    assert_string_equal(fake.host_serial, "SN-4711");
    assert_int_equal(fake.n_macs, 2); /* lo left out; lower case, lowest first */
    assert_string_equal(fake.macs[0], "3c:ec:ef:10:20:2f");
    assert_string_equal(fake.macs[1], "3c:ec:ef:10:20:30");
    pthread_mutex_unlock(&fake.mu);
    pa_client *other = client_for(e);
    assert_int_equal(pa_status(other), PA_OK);
    assert_int_equal(pa_volume_seats(other), 500);
    pa_client_free(other);
}

/* A server with a key of its own, serving an order that delegates another. */
static void rogue_server_license_is_refused(void **state) {
    env *e = *state;
    char *pub;
    EVP_PKEY *rogue = tu_vendor_key(&pub);
    free(pub);
    pthread_mutex_lock(&fake.mu);
    fake.chain.signer = rogue;
    pthread_mutex_unlock(&fake.mu);
    expect(pa_activate(e->c, KEY), PA_ERR_BAD_LICENSE, e->c,
           "the license is not signed by the order's delegated server key");
    assert_false(state_file(e, "license"));
    EVP_PKEY_free(rogue);
}

/* Heartbeats: the daemon's next step is the heartbeat, inside the lease. */
static void heartbeat_is_scheduled_inside_the_lease(void **state) {
    env *e = *state;
    expect(pa_activate(e->c, KEY), PA_OK, e->c, NULL);
    int64_t now = (int64_t)time(NULL), renew = pa_renew_after(e->c), expires = pa_expires_at(e->c);
    int64_t next = pa_next_check(e->c, now);
    assert_true(next >= renew && next <= renew + (expires - renew) / 4);
    expect(pa_renew(e->c), PA_OK, e->c, NULL);
    assert_int_equal(calls(&fake.renews), 1);
    /* Not due yet: maintain does nothing. */
    expect(pa_maintain(e->c, KEY), PA_OK, e->c, NULL);
    assert_int_equal(calls(&fake.renews), 1);
}

/* ---- pending ----------------------------------------------------------------- */

static void pending_below_threshold_then_granted(void **state) {
    env *e = *state;
    int64_t check_in = (int64_t)time(NULL) + 7200;
    pthread_mutex_lock(&fake.mu);
    fake.pending = ACTIVATION__V1__VOLUME_STATUS__PENDING__PENDING_THRESHOLD;
    fake.check_in_at = check_in;
    pthread_mutex_unlock(&fake.mu);
    expect(pa_activate(e->c, KEY), PA_ERR_PENDING, e->c, "once 5 machines have asked, and 2 have so far");
    assert_int_equal(PA_ERR_PENDING, 20);
    assert_string_equal(pa_err_name(PA_ERR_PENDING), "pending");
    assert_false(pa_is_licensed(e->c));
    assert_int_equal(pa_volume_count(e->c), 2);
    assert_int_equal(pa_volume_threshold(e->c), 5);
    assert_string_equal(pa_order_serial(e->c), "12345678");
    assert_false(state_file(e, "license"));
    assert_true(pa_next_check(e->c, (int64_t)time(NULL)) == check_in);
    /* The daemon's step at the check-in: still pending, then granted. */
    expect(pa_maintain(e->c, KEY), PA_ERR_PENDING, e->c, "2 have so far");
    pthread_mutex_lock(&fake.mu);
    fake.pending = 0;
    pthread_mutex_unlock(&fake.mu);
    expect(pa_maintain(e->c, KEY), PA_OK, e->c, NULL);
    assert_true(pa_is_licensed(e->c));
    assert_int_equal(calls(&fake.activates), 3);
}

static void pending_until_designated(void **state) {
    env *e = *state;
    pthread_mutex_lock(&fake.mu);
    fake.pending = ACTIVATION__V1__VOLUME_STATUS__PENDING__PENDING_NOT_DESIGNATED;
    fake.check_in_at = (int64_t)time(NULL) + 3;
    pthread_mutex_unlock(&fake.mu);
    expect(pa_activate(e->c, KEY), PA_ERR_PENDING, e->c, "waiting to be designated by the operator of order 12345678");
    assert_non_null(strstr(pa_error(e->c), pa_machine_digest(e->c)));
}

/* ---- deactivation ----------------------------------------------------------- */

static void deactivation_awaits_approval_then_denied(void **state) {
    env *e = *state;
    expect(pa_activate(e->c, KEY), PA_OK, e->c, NULL);
    pthread_mutex_lock(&fake.mu);
    fake.approval = true;
    pthread_mutex_unlock(&fake.mu);
    expect(pa_deactivate(e->c), PA_ERR_PENDING, e->c, "waits for the approval");
    assert_true(pa_deactivation_requested(e->c));
    assert_true(state_file(e, "deactivation-requested"));
    expect(pa_status(e->c), PA_OK, e->c, NULL); /* the license stays */
    assert_true(pa_deactivation_requested(e->c));
    pthread_mutex_lock(&fake.mu);
    fake.deactivation = ACTIVATION__V1__VOLUME_STATUS__DEACTIVATION__DEACTIVATION_DENIED;
    pthread_mutex_unlock(&fake.mu);
    expect(pa_renew(e->c), PA_OK, e->c, "denied this machine's deactivation request");
    assert_false(pa_deactivation_requested(e->c));
    assert_false(state_file(e, "deactivation-requested"));
    expect(pa_status(e->c), PA_OK, e->c, NULL);
}

static void deactivation_approved_and_not_activated_again(void **state) {
    env *e = *state;
    expect(pa_activate(e->c, KEY), PA_OK, e->c, NULL);
    pthread_mutex_lock(&fake.mu);
    fake.approval = true;
    pthread_mutex_unlock(&fake.mu);
    expect(pa_deactivate(e->c), PA_ERR_PENDING, e->c, NULL);
    pthread_mutex_lock(&fake.mu);
    fake.refuse = "DEACTIVATED";
    pthread_mutex_unlock(&fake.mu);
    expect(pa_renew(e->c), PA_ERR_DEACTIVATED, e->c, "approved this machine's deactivation request");
    assert_int_equal(PA_ERR_DEACTIVATED, 21);
    assert_false(state_file(e, "license"));
    assert_false(state_file(e, "place-key.pem"));
    assert_false(state_file(e, "deactivation-requested"));
    assert_true(state_file(e, "deactivated"));
    /* The daemon's step has the key, and still does not activate. */
    expect(pa_maintain(e->c, KEY), PA_ERR_DEACTIVATED, e->c, "activated again only when someone runs");
    assert_int_equal(calls(&fake.activates), 1);
    assert_true(pa_next_check(e->c, (int64_t)time(NULL)) == INT64_MAX);
    expect(pa_status(e->c), PA_ERR_NOT_ACTIVATED, e->c, "deactivated it");
    /* A person activates: that ends it. */
    pthread_mutex_lock(&fake.mu);
    fake.refuse = NULL;
    pthread_mutex_unlock(&fake.mu);
    expect(pa_activate(e->c, KEY), PA_OK, e->c, NULL);
    assert_false(state_file(e, "deactivated"));
    assert_true(pa_next_check(e->c, (int64_t)time(NULL)) < INT64_MAX);
}

static void forced_deactivation_removes_the_license(void **state) {
    env *e = *state;
    expect(pa_activate(e->c, KEY), PA_OK, e->c, NULL);
    pthread_mutex_lock(&fake.mu);
    fake.refuse = "DEACTIVATED";
    pthread_mutex_unlock(&fake.mu);
    expect(pa_renew(e->c), PA_ERR_DEACTIVATED, e->c, "the operator deactivated this machine");
    assert_false(pa_is_licensed(e->c));
    assert_false(state_file(e, "license"));
    /* A person tries again, and the server still says so: it stays recorded. */
    pthread_mutex_lock(&fake.mu);
    fake.refuse_activate = true;
    pthread_mutex_unlock(&fake.mu);
    fixture_rmtree(e->state);
    expect(pa_activate(e->c, KEY), PA_ERR_DEACTIVATED, e->c, "the operator deactivated this machine");
    assert_true(state_file(e, "deactivated"));
    expect(pa_maintain(e->c, KEY), PA_ERR_DEACTIVATED, e->c, NULL);
    assert_int_equal(calls(&fake.activates), 2);
}

/* Without approval a deactivation is done at once, as for any key. */
static void deactivation_without_approval_is_immediate(void **state) {
    env *e = *state;
    expect(pa_activate(e->c, KEY), PA_OK, e->c, NULL);
    expect(pa_deactivate(e->c), PA_OK, e->c, NULL);
    assert_false(state_file(e, "license"));
    assert_false(state_file(e, "deactivated")); /* the machine's own choice: it may activate again */
}

/* ---- order refusals ------------------------------------------------------------- */

static void order_refusals_are_not_final(void **state) {
    env *e = *state;
    expect(pa_activate(e->c, KEY), PA_OK, e->c, NULL);
    const char *reasons[] = {"ORDER_ENDED", "ORDER_RETIRED", "ORDER_NOT_STARTED", "PLATFORM_NOT_ALLOWED"};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        pthread_mutex_lock(&fake.mu);
        fake.refuse = reasons[i];
        pthread_mutex_unlock(&fake.mu);
        expect(pa_renew(e->c), PA_ERR_ORDER, e->c, reasons[i]);
        expect(pa_status(e->c), PA_OK, e->c, NULL); /* the license stays until it expires */
    }
    assert_int_equal(PA_ERR_ORDER, 22);
    /* Retried before the heartbeat's lease lapses, not in two hours. */
    int64_t now = (int64_t)time(NULL);
    assert_true(pa_next_check(e->c, now) < pa_expires_at(e->c));
    /* At Activate as well; the key is not revoked: activating later works. */
    fixture_rmtree(e->state);
    pthread_mutex_lock(&fake.mu);
    fake.refuse = "PLATFORM_NOT_ALLOWED";
    fake.refuse_activate = true;
    pthread_mutex_unlock(&fake.mu);
    expect(pa_activate(e->c, KEY), PA_ERR_ORDER, e->c, "PLATFORM_NOT_ALLOWED");
    pthread_mutex_lock(&fake.mu);
    fake.refuse = NULL;
    pthread_mutex_unlock(&fake.mu);
    expect(pa_maintain(e->c, KEY), PA_OK, e->c, NULL);
}

/* ---- the CLI ------------------------------------------------------------------------ */

static int cli(env *e, const char *const *args, char **out) {
    const char *argv[32] = {fixture_bin("client/activate"),
                            "--state-dir",
                            e->state,
                            "--facts-root",
                            e->root,
                            "--public-key",
                            e->bundle_path,
                            "--server",
                            e->server,
                            "--tls-ca",
                            e->ca};
    size_t n = 11;
    while (*args && n < 31) argv[n++] = *args++;
    argv[n] = NULL;
    char *err = NULL;
    int rc = fixture_run((char *const *)argv, out, &err);
    fprintf(stderr, "$ activate ... %s -> %d\n%s%s", argv[11], rc, out && *out ? *out : "", err ? err : "");
    free(err);
    return rc;
}

/* The exit codes and `activate status` of a volume license. The CLI's
 * vendor salt is the compiled one, so it is its own machine here. */
static void cli_exit_codes_and_status(void **state) {
    env *e = *state;
    char *out = NULL;
    pthread_mutex_lock(&fake.mu);
    fake.pending = ACTIVATION__V1__VOLUME_STATUS__PENDING__PENDING_THRESHOLD;
    fake.check_in_at = (int64_t)time(NULL) + 7200;
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(cli(e, (const char *[]){KEY, NULL}, NULL), 20);
    assert_int_equal(cli(e, (const char *[]){"--json", KEY, NULL}, &out), 20);
    assert_non_null(strstr(out, "\"result\":\"pending\""));
    assert_non_null(strstr(out, "\"activation_count\":2,\"threshold\":5"));
    free(out);
    pthread_mutex_lock(&fake.mu);
    fake.pending = 0;
    fake.approval = true;
    pthread_mutex_unlock(&fake.mu);
    /* The CLI's machine id differs (compiled salt): the server signs for whatever machine asks. */
    assert_int_equal(cli(e, (const char *[]){KEY, NULL}, NULL), 0);
    assert_int_equal(cli(e, (const char *[]){"deactivate", NULL}, NULL), 20);
    assert_int_equal(cli(e, (const char *[]){"status", NULL}, &out), 0);
    assert_non_null(strstr(out, "  order        12345678 revision 1, concurrent seats\n"));
    assert_non_null(strstr(out, "  activations  17 machines asked (threshold 5)\n"));
    assert_non_null(strstr(out, "  seats        17 of 500 in use\n"));
    assert_non_null(strstr(out, "(machine digest)\n"));
    assert_non_null(strstr(out, "  deactivation requested, awaiting the operator's approval\n"));
    free(out);
    assert_int_equal(cli(e, (const char *[]){"status", "--json", NULL}, &out), 0);
    assert_non_null(strstr(out, "\"machine_digest\":\""));
    assert_non_null(
        strstr(out, "\"volume\":{\"order_serial\":\"12345678\",\"order_revision\":1,\"mode\":\"concurrent\""));
    assert_non_null(strstr(out, "\"seats\":500,\"seats_used\":17,\"deactivation_requested\":true}"));
    free(out);
    pthread_mutex_lock(&fake.mu);
    fake.refuse = "DEACTIVATED";
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(cli(e, (const char *[]){"renew", NULL}, NULL), 21);
    tu_write(e->state, "product-key", KEY); /* the daemon's key is at hand, and stays unused */
    assert_int_equal(cli(e, (const char *[]){"maintain", NULL}, NULL), 21);
    pthread_mutex_lock(&fake.mu);
    fake.refuse = "ORDER_RETIRED";
    fake.refuse_activate = true;
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(cli(e, (const char *[]){KEY, NULL}, NULL), 22);
    assert_int_equal(cli(e, (const char *[]){"--help", NULL}, &out), 0);
    assert_non_null(strstr(out, "20 pending on a volume order"));
    assert_non_null(strstr(out, "22 the volume order refuses"));
    free(out);
}

/* ---- the clients from the .proto alone ------------------------------------------------ */

/* interop_activate.py --volume; its exit status, *out stdout + stderr. */
static int python(env *e, char **out) {
    char script[600], protos[600];
    snprintf(script, sizeof script, "%s/tests/activation/interop_activate.py", env_source_dir());
    snprintf(protos, sizeof protos, "%s/protos", env_source_dir());
    const char *argv[] = {"/usr/bin/python3",
                          script,
                          "--server",
                          e->server,
                          "--ca",
                          e->ca,
                          "--key",
                          KEY,
                          "--protos",
                          protos,
                          "--public-key",
                          e->license_pub,
                          "--group",
                          "7",
                          "--serial",
                          "11",
                          "--volume",
                          "--order-public-key",
                          e->order_pub,
                          NULL};
    char *o = NULL, *err = NULL;
    int rc = fixture_run((char *const *)argv, &o, &err);
    size_t n = strlen(o ? o : "") + strlen(err ? err : "") + 1;
    *out = malloc(n);
    assert_non_null(*out);
    snprintf(*out, n, "%s%s", o ? o : "", err ? err : "");
    fprintf(stderr, "python interop_activate.py --volume -> %d\n%s", rc, *out);
    free(o);
    free(err);
    return rc;
}

/* activate.js; -1 when node is not installed; *out its JSON line. */
static int node(env *e, char **out) {
    static char node_bin[512], npm[512], node_dir[512];
    *out = NULL;
    if (!env_find_program("node", node_bin, sizeof node_bin) || !env_find_program("npm", npm, sizeof npm)) {
        fprintf(stderr, "SKIPPED (the Node.js part): node and npm are not installed (Debian package nodejs)\n");
        return -1;
    }
    snprintf(node_dir, sizeof node_dir, "%s/tests/client/node", env_build_dir());
    if (env_npm_ci(npm, node_dir) != 0) fail_msg("npm ci failed");
    char script[600], protos[600];
    snprintf(script, sizeof script, "%s/activate.js", node_dir);
    snprintf(protos, sizeof protos, "%s/protos", env_source_dir());
    const char *argv[] = {
        node_bin,       script,         "--target",           e->server,    "--ca",  e->ca, "--proto-dir", protos,
        "--public-key", e->license_pub, "--order-public-key", e->order_pub, "--key", KEY,   NULL};
    char *err = NULL;
    int rc = fixture_run((char *const *)argv, out, &err);
    fprintf(stderr, "node activate.js -> %d\n%s%s", rc, *out ? *out : "", err ? err : "");
    free(err);
    return rc;
}

static void interop_clients_verify_the_chain(void **state) {
    env *e = *state;
    char *out;
    assert_int_equal(python(e, &out), 0);
    assert_non_null(strstr(out, "interop ok order=12345678 revision=1 mode=concurrent count=17 threshold=5"));
    free(out);
    if (node(e, &out) == -1) return;
    assert_non_null(strstr(out, "\"result\":\"ok\""));
    assert_non_null(strstr(out, "\"order_chain\":true"));
    assert_non_null(strstr(out, "\"order_serial\":\"12345678\""));
    free(out);
}

/* Both refuse what the C client refuses, in the same words. */
static void interop_clients_refuse(env *e, const char *why) {
    char *out;
    assert_int_equal(python(e, &out), 1);
    assert_non_null(strstr(out, why));
    free(out);
    int rc = node(e, &out);
    if (rc == -1) return;
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "\"result\":\"error\""));
    assert_non_null(strstr(out, why));
    free(out);
}

static void interop_clients_refuse_a_rogue_server(void **state) {
    env *e = *state;
    char *pub;
    EVP_PKEY *rogue = tu_vendor_key(&pub);
    free(pub);
    pthread_mutex_lock(&fake.mu);
    fake.chain.signer = rogue;
    pthread_mutex_unlock(&fake.mu);
    interop_clients_refuse(e, "not signed by the order's delegated server key");
    /* An order another vendor (or nobody) signed. */
    pthread_mutex_lock(&fake.mu);
    fake.chain.signer = e->server_key;
    fake.chain.order_key = rogue;
    pthread_mutex_unlock(&fake.mu);
    interop_clients_refuse(e, "the order is not signed by the vendor");
    pthread_mutex_lock(&fake.mu);
    fake.chain.order_key = e->order_key;
    pthread_mutex_unlock(&fake.mu);
    EVP_PKEY_free(rogue);
}

static void interop_clients_see_pending(void **state) {
    env *e = *state;
    pthread_mutex_lock(&fake.mu);
    fake.pending = ACTIVATION__V1__VOLUME_STATUS__PENDING__PENDING_THRESHOLD;
    pthread_mutex_unlock(&fake.mu);
    char *out;
    assert_int_equal(python(e, &out), 0);
    assert_non_null(strstr(out, "interop pending order=12345678 count=2 threshold=5"));
    free(out);
    if (node(e, &out) == -1) return;
    assert_non_null(strstr(out, "\"result\":\"pending\""));
    assert_non_null(strstr(out, "\"pending\":\"PENDING_THRESHOLD\""));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(on_premises_license_is_accepted_and_facts_sent, fresh),
        cmocka_unit_test_setup(rogue_server_license_is_refused, fresh),
        cmocka_unit_test_setup(heartbeat_is_scheduled_inside_the_lease, fresh),
        cmocka_unit_test_setup(pending_below_threshold_then_granted, fresh),
        cmocka_unit_test_setup(pending_until_designated, fresh),
        cmocka_unit_test_setup(deactivation_awaits_approval_then_denied, fresh),
        cmocka_unit_test_setup(deactivation_approved_and_not_activated_again, fresh),
        cmocka_unit_test_setup(forced_deactivation_removes_the_license, fresh),
        cmocka_unit_test_setup(deactivation_without_approval_is_immediate, fresh),
        cmocka_unit_test_setup(order_refusals_are_not_final, fresh),
        cmocka_unit_test_setup(cli_exit_codes_and_status, fresh),
        cmocka_unit_test_setup(interop_clients_verify_the_chain, fresh),
        cmocka_unit_test_setup(interop_clients_refuse_a_rogue_server, fresh),
        cmocka_unit_test_setup_teardown(interop_clients_see_pending, fresh, last),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
