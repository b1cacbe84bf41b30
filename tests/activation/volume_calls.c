/* volume_calls.c -- see volume_calls.h. */
#include "volume_calls.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "clock.h"
#include "hex.h"
#include "rpc_methods.h"

static act_env *env_;
static order_env *oe_;

void volume_calls_init(act_env *e, order_env *o) {
    env_ = e;
    oe_ = o;
}

void order(const char *serial, unsigned group, const char *mode, const char *seats, const char *const *extra) {
    char g[16], name[64], path[300];
    snprintf(g, sizeof g, "%u", group);
    snprintf(name, sizeof name, "%s.license", serial);
    const char *args[64] = {"--serial",  serial,   "--customer", "Example Corp", "--group",      g,
                            "--product", "Office", "--edition",  "Enterprise",   "--features",   "editor,mail",
                            "--mode",    mode,     "--seats",    seats,          "--valid-from", "2020-01-01"};
    int n = 18;
    bool until = false;
    for (int i = 0; extra && extra[i]; i++) {
        until |= strcmp(extra[i], "--valid-until") == 0;
        args[n++] = extra[i];
    }
    if (!until) {
        args[n++] = "--valid-until";
        args[n++] = "2099-12-31";
    }
    args[n] = NULL;
    assert_int_equal(order_env_create(oe_, NULL, name, args, path, sizeof path), 0);
    char *out = NULL, *err = NULL;
    int st = order_env_import(oe_, path, NULL, &out, &err);
    if (st != 0) fprintf(stderr, "import: %s\n", err ? err : "");
    assert_int_equal(st, 0);
    free(out);
    free(err);
    usleep(400 * 1000); /* the workers' order caches read `orders` every 300 ms */
}

/* `activation-server order ARGS...` as the server's own user; returns the exit status. */
int order_cmd(const char *const *args, char **out) {
    char *err = NULL;
    int st = order_env_cli(oe_, "activation", args, out, &err);
    if (st != 0) fprintf(stderr, "order %s: %s\n", args[0], err ? err : "");
    free(err);
    return st;
}

void grant_free(grant *g) {
    if (g->lic) activation__v1__license__free_unpacked(g->lic, NULL);
    if (g->resp) activation__v1__activate_response__free_unpacked(g->resp, NULL);
    memset(g, 0, sizeof *g);
}

/* The trailing metadata of a refusal. */
static void trailers(const rpc_result *res, char reason[64], int *retry) {
    snprintf(reason, 64, "%s", res->reason);
    *retry = res->retry_after_s;
}

/* Activate machine n with key `key` and place key k over channel `ch`. */
grant activate_on(rpc_channel *ch, const char *key, unsigned n, unsigned k, const machine_ask *ask) {
    uint8_t m[32], buf[2048], pub[32];
    size_t publen = sizeof pub;
    env_machine(m, n);
    EVP_PKEY *pk = env_place_key(k);
    assert_int_equal(EVP_PKEY_get_raw_public_key(pk, pub, &publen), 1);
    EVP_PKEY_free(pk);
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    char host[32];
    snprintf(host, sizeof host, "host-%u", n);
    rq.product_key = (char *)key;
    rq.machine_id = (ProtobufCBinaryData){.len = 32, .data = m};
    rq.place_key = (ProtobufCBinaryData){.len = 32, .data = pub};
    rq.hostname = host;
    char *macs[1];
    Activation__V1__MachineComponent comp[16], *comps[16];
    uint8_t digests[16][SHA256_DIGEST_LENGTH];
    char names[16][33];
    for (size_t i = 0; ask && ask->components && ask->components[i] && i < 16; i++) {
        const char *text = ask->components[i], *eq = strchr(text, '=');
        assert_non_null(eq);
        snprintf(names[i], sizeof names[i], "%.*s", (int)(eq - text), text);
        SHA256((const uint8_t *)text, strlen(text), digests[i]);
        activation__v1__machine_component__init(&comp[i]);
        comp[i].name = names[i];
        comp[i].digest = (ProtobufCBinaryData){.len = SHA256_DIGEST_LENGTH, .data = digests[i]};
        comps[i] = &comp[i];
        rq.components = comps;
        rq.n_components = i + 1;
    }
    if (ask) {
        rq.os = (char *)(ask->os ? ask->os : "");
        rq.arch = (char *)(ask->arch ? ask->arch : "");
        rq.host_serial = (char *)(ask->host_serial ? ask->host_serial : "");
        if (ask->mac) {
            macs[0] = (char *)ask->mac;
            rq.mac_addresses = macs;
            rq.n_mac_addresses = 1;
        }
    }
    size_t len = activation__v1__activate_request__pack(&rq, buf);
    rpc_result res;
    grant g = {0};
    g.status = rpc_call(ch, rpc_channel_method(ch, PA_RPC_ACTIVATE), buf, len, 10000, &res);
    if (g.status == GRPC_STATUS_OK) {
        g.resp = activation__v1__activate_response__unpack(NULL, res.body_len, res.body);
        assert_non_null(g.resp);
        if (g.resp->license.len) {
            g.lic = env_open_answer(env_, g.resp);
            assert_non_null(g.lic);
            snprintf(g.license_id, sizeof g.license_id, "%s", g.lic->license_id);
        }
    } else {
        trailers(&res, g.reason, &g.retry_after);
    }
    rpc_result_clear(&res);
    return g;
}

grant activate(const char *key, unsigned n) { return activate_on(env_->ch, key, n, n, NULL); }

/* Renew or Deactivate of machine n's license, proven with place key k. */

license_call by_license(const char *path, const char *license_id, unsigned n, unsigned k) {
    uint8_t m[32], buf[512];
    env_machine(m, n);
    EVP_PKEY *pk = env_place_key(k);
    bool renew = strcmp(path, PA_RPC_RENEW) == 0;
    size_t len =
        env_license_request(license_id, m, pk, renew ? PLACE_OP_RENEW : PLACE_OP_DEACTIVATE, 0, buf, sizeof buf);
    EVP_PKEY_free(pk);
    rpc_result res;
    license_call c = {0};
    c.status = env_call(env_, path, buf, len, 10000, &res);
    int retry;
    if (c.status != GRPC_STATUS_OK) trailers(&res, c.reason, &retry);
    else if (renew) c.renew = activation__v1__renew_response__unpack(NULL, res.body_len, res.body);
    else c.deact = activation__v1__deactivate_response__unpack(NULL, res.body_len, res.body);
    rpc_result_clear(&res);
    return c;
}

void license_call_free(license_call *c) {
    if (c->renew) activation__v1__renew_response__free_unpacked(c->renew, NULL);
    if (c->deact) activation__v1__deactivate_response__free_unpacked(c->deact, NULL);
}

grpc_status_code renew_status(const char *license_id, unsigned n, unsigned k, char reason[64], int deactivation[1]) {
    license_call c = by_license(PA_RPC_RENEW, license_id, n, k);
    if (reason) snprintf(reason, 64, "%s", c.reason);
    if (deactivation) *deactivation = c.renew && c.renew->volume ? (int)c.renew->volume->deactivation : -1;
    grpc_status_code st = c.status;
    license_call_free(&c);
    return st;
}

double gauge(const char *name, const char *serial) {
    char series[96];
    snprintf(series, sizeof series, "%s{order=\"%s\"}", name, serial);
    return env_metric(env_, series);
}

void digest_hex(unsigned n, char hex[2 * VOLUME_DIGEST_LEN + 1]) {
    uint8_t m[32], d[VOLUME_DIGEST_LEN];
    env_machine(m, n);
    volume_machine_digest(m, d);
    pa_hex_encode(d, sizeof d, hex);
}

double gauge_wait(const char *name, const char *serial, double want, int ms) {
    int64_t until = pa_mono_ms() + ms;
    double v = gauge(name, serial);
    while (v != want && pa_mono_ms() < until) {
        usleep(50 * 1000);
        v = gauge(name, serial);
    }
    return v;
}
