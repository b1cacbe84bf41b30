/* cli_client.c -- pa-activate-once: one Activate call from the command line,
 * for the README demo and for tests. (The installer client with server
 * discovery, retries and license storage is a separate program.)
 *
 *   pa-activate-once --server 127.0.0.1:50051 --public-key license.pub KEY
 *
 * The machine id is SHA-256 over a fixed label and /etc/machine-id, so one
 * machine always presents the same 32 bytes (--machine-id overrides it).
 * With --public-key the license signature is verified before the license is
 * parsed, exactly as an installed copy must do. Exit: 0 activated, 1 refused
 * or failed, 2 usage. */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "activation/v1/activation.pb-c.h"
#include "config.h"
#include "grpc_status_name.h"
#include "hex.h"
#include "license.h"
#include "rpc_client.h"
#include "rpc_methods.h"
#include "validate.h"

static const config_option options[] = {
    {"server", "HOST:PORT", "activation server", "127.0.0.1:50051"},
    {"machine-id", "HEX", "64 hex characters instead of the id derived from /etc/machine-id",
     NULL},
    {"public-key", "FILE", "vendor public key (PEM) to verify the license signature", NULL},
    {"hostname", "NAME", "hostname to report (default: this machine's)", NULL},
    {"tls-ca", "FILE", "use TLS and trust server certificates from this CA (PEM)", NULL},
    {"timeout-ms", "MS", "deadline of the call", "5000"},
};

/* SHA-256("pa-machine-id-v1\n" || /etc/machine-id). */
static int machine_id_derive(uint8_t out[MACHINE_ID_LEN]) {
    const char *paths[] = {"/etc/machine-id", "/var/lib/dbus/machine-id"};
    for (size_t i = 0; i < 2; i++) {
        FILE *f = fopen(paths[i], "r");
        if (!f) continue;
        char line[128] = "";
        char *ok = fgets(line, sizeof line, f);
        fclose(f);
        line[strcspn(line, "\r\n")] = '\0';
        if (!ok || !line[0]) continue;
        char labelled[160];
        int n = snprintf(labelled, sizeof labelled, "pa-machine-id-v1\n%s", line);
        SHA256((const uint8_t *)labelled, (size_t)n, out);
        return 0;
    }
    return -1;
}

static void print_time(const char *label, int64_t t, const char *zero) {
    if (t == 0) {
        printf("%-17s %s\n", label, zero);
        return;
    }
    char buf[32];
    time_t tt = (time_t)t;
    struct tm tm;
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
    printf("%-17s %s (%lld)\n", label, buf, (long long)t);
}

static const char *channel_name(Activation__V1__Channel c) {
    switch (c) {
    case ACTIVATION__V1__CHANNEL__CHANNEL_RETAIL: return "retail";
    case ACTIVATION__V1__CHANNEL__CHANNEL_OEM: return "oem";
    case ACTIVATION__V1__CHANNEL__CHANNEL_VOLUME: return "volume";
    default: return "unspecified";
    }
}

/* Prints the license; returns 0, or 1 if it does not parse. */
static int print_license(const Activation__V1__ActivateResponse *r, const char *verified) {
    Activation__V1__License *l =
        activation__v1__license__unpack(NULL, r->license.len, r->license.data);
    if (!l) {
        fprintf(stderr, "pa-activate-once: error: the license does not parse\n");
        return 1;
    }
    printf("%-17s %s\n", "license_id", l->license_id);
    printf("%-17s %s\n", "product", l->product);
    printf("%-17s %s\n", "edition", l->edition);
    printf("%-17s %s\n", "channel", channel_name(l->channel));
    printf("%-17s ", "features");
    for (size_t i = 0; i < l->n_features; i++) printf("%s%s", i ? "," : "", l->features[i]);
    printf("\n%-17s group %u, serial %u\n", "key", l->key_group, l->key_serial);
    printf("%-17s ", "machine_id");
    for (size_t i = 0; i < l->machine_id.len; i++) printf("%02x", l->machine_id.data[i]);
    printf("\n");
    print_time("issued_at", l->issued_at, "-");
    print_time("renew_after", l->renew_after, "never (no renewal needed)");
    print_time("expires_at", l->expires_at, "never");
    printf("%-17s %u\n", "activation_count", r->activation_count);
    printf("%-17s %s\n", "signing_key_id", l->signing_key_id);
    printf("%-17s %s\n", "signature", verified);
    activation__v1__license__free_unpacked(l, NULL);
    return 0;
}

/* Checks the signature (when a key is given) before anything is trusted. */
static int check_signature(const config *c, const Activation__V1__ActivateResponse *r,
                           const char **verified) {
    const char *path = config_get(c, "public-key");
    *verified = "not checked (no --public-key)";
    if (!path) return 0;
    char err[256], id[LICENSE_KEY_ID_LEN + 1];
    EVP_PKEY *pub = license_public_key_load(path, err, sizeof err);
    if (!pub) {
        fprintf(stderr, "pa-activate-once: error: %s\n", err);
        return 1;
    }
    bool ok = signing_key_id(pub, id) == 0 && strcmp(id, r->key_id) == 0 &&
              license_verify(pub, r->license.data, r->license.len, r->signature.data,
                             r->signature.len);
    EVP_PKEY_free(pub);
    if (!ok) {
        fprintf(stderr, "pa-activate-once: error: the license signature does not verify with %s "
                "(server key_id %s)\n", path, r->key_id);
        return 1;
    }
    *verified = "verified";
    return 0;
}

static int activate(const config *c, const char *key, const uint8_t machine[MACHINE_ID_LEN]) {
    char host[256] = "";
    const char *hostname = config_get(c, "hostname");
    if (!hostname) {
        gethostname(host, sizeof host - 1);
        hostname = host;
    }
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = (char *)key;
    rq.machine_id = (ProtobufCBinaryData){.len = MACHINE_ID_LEN, .data = (uint8_t *)machine};
    rq.hostname = (char *)hostname;
    rq.os = "linux";
    rq.client_version = "pa-activate-once/1";

    char err[256];
    char *ca = NULL;
    const char *ca_path = config_get(c, "tls-ca");
    if (ca_path && !(ca = rpc_read_pem(ca_path, err, sizeof err))) {
        fprintf(stderr, "pa-activate-once: error: %s\n", err);
        return 2;
    }
    bool timeout_ok = true;   /* config_get_int prints the error and clears it */
    int timeout = (int)config_get_int(c, "timeout-ms", 1, 600000, &timeout_ok);
    if (!timeout_ok) {
        free(ca);
        return 2;
    }
    rpc_client_tls tls = {.ca_pem = ca};
    rpc_channel *ch = rpc_channel_new(config_get(c, "server"), ca ? &tls : NULL);
    if (!ch) {
        free(ca);
        fprintf(stderr, "pa-activate-once: error: bad --server\n");
        return 2;
    }
    rpc_result res;
    rpc_call_message(ch, rpc_channel_method(ch, PA_RPC_ACTIVATE), &rq.base,
                     timeout, &res);
    int rc = 1;
    if (res.status != GRPC_STATUS_OK) {
        fprintf(stderr, "pa-activate-once: refused: %s: %s\n", pa_grpc_status_name(res.status), res.message);
        if (res.retry_after_s > 0) fprintf(stderr, "retry after %d s\n", res.retry_after_s);
    } else {
        Activation__V1__ActivateResponse *r =
            activation__v1__activate_response__unpack(NULL, res.body_len, res.body);
        const char *verified;
        if (!r) fprintf(stderr, "pa-activate-once: error: the response does not parse\n");
        else if (check_signature(c, r, &verified) == 0) rc = print_license(r, verified);
        activation__v1__activate_response__free_unpacked(r, NULL);
    }
    rpc_result_clear(&res);
    rpc_channel_free(ch);
    free(ca);
    return rc;
}

int main(int argc, char **argv) {
    int code;
    config *c = config_load("pa-activate-once [OPTIONS] PRODUCT-KEY", options,
                            sizeof options / sizeof *options, "PA_ACTIVATE_", argc, argv, &code);
    if (!c) return code;
    char *const *args;
    uint8_t machine[MACHINE_ID_LEN];
    const char *hex = config_get(c, "machine-id");
    int rc = 2;
    if (config_args(c, &args) != 1) {
        fprintf(stderr, "pa-activate-once: error: give exactly one product key (see --help)\n");
    } else if (hex ? pa_hex_decode(hex, strlen(hex), machine, sizeof machine) != (long)sizeof machine
                   : machine_id_derive(machine) != 0) {
        fprintf(stderr, "pa-activate-once: error: %s\n",
                hex ? "--machine-id needs 64 hex characters"
                    : "no /etc/machine-id; give --machine-id");
    } else {
        grpc_init();
        rc = activate(c, args[0], machine);
        rpc_client_thread_done();
        grpc_shutdown();
    }
    config_free(c);
    return rc;
}
