/* orders_config.c -- the order and revocation routes' options (orders_config.h). */
#include "orders_config.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "revocations.h"

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("admin-server: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

/* The raw Ed25519 public key of a PEM file. */
static int load_server_key(const char *path, uint8_t out[32]) {
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
    size_t len = 32;
    int ok = k && EVP_PKEY_id(k) == EVP_PKEY_ED25519 && EVP_PKEY_get_raw_public_key(k, out, &len) == 1 && len == 32;
    EVP_PKEY_free(k);
    if (f) fclose(f);
    return ok ? 0 : usage_error("--server-public-key %s: not an Ed25519 public key (PEM)", path);
}

int orders_config_load(orders_config *oc, const config *c) {
    const char *const *paths;
    size_t n = config_get_list(c, "order-public-key", &paths);
    char err[512];
    memset(oc, 0, sizeof *oc);
    if (!(oc->ring = order_keyring_new())) return usage_error("out of memory");
    for (size_t i = 0; i < n; i++)
        if (order_keyring_load(oc->ring, paths[i], err, sizeof err) != 0)
            return usage_error("--order-public-key: %s", err);
    if (n == 0)
        log_warn("admin.orders.no_keys", LOG_S("why", "no --order-public-key: every order import is refused"), LOG_END);
    oc->api.order_keys = oc->ring;
    oc->api.on_premises = config_get_bool(c, "on-premises");
    const char *server_key = config_get(c, "server-public-key");
    if (oc->api.on_premises && !server_key)
        return usage_error("--on-premises needs --server-public-key (the key orders delegate)");
    if (server_key && load_server_key(server_key, oc->api.server_key) != 0) return 2;
    const char *audit = config_get(c, "audit-address");
    if (audit && *audit) {
        if (oc->api.on_premises) return usage_error("--audit-address: on premises there is no audit server");
        oc->audit = audit_revoker_new(audit, config_get(c, "audit-ca"), config_get(c, "audit-cert"),
                                      config_get(c, "audit-key"), err, sizeof err);
        if (!oc->audit) return usage_error("%s", err);
    }
    orders_api_setup(&oc->api);
    revocations_setup(oc->audit);
    return 0;
}

void orders_config_free(orders_config *oc) {
    orders_api_setup(NULL);
    revocations_setup(NULL);
    audit_revoker_free(oc->audit);
    order_keyring_free(oc->ring);
    memset(oc, 0, sizeof *oc);
}
