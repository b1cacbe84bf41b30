/* orders_config.h -- what the order and revocation routes are started with,
 * read from the admin server's options: the vendor's order keys
 * (--order-public-key, as activation-server takes them), on premises the
 * activation server's public key the orders must delegate
 * (--on-premises, --server-public-key), and the audit server link for
 * revocations (--audit-address, --audit-ca, --audit-cert, --audit-key;
 * without an address revocations are local). Loaded once before the
 * server listens, so a bad file stops the start; read-only afterwards. */
#ifndef PA_ADMIN_ORDERS_CONFIG_H
#define PA_ADMIN_ORDERS_CONFIG_H

#include "audit_revoke.h"
#include "config.h"
#include "order_keyring.h"
#include "orders_api.h"

typedef struct orders_config {
    order_keyring *ring;     /* --order-public-key, owned */
    admin_orders_config api; /* what orders_api reads (borrows ring) */
    audit_revoker *audit;    /* --audit-address; NULL: revocations on premises */
} orders_config;

/* Loads the options and hands them to orders_api_setup and
 * revocations_setup. 0, or 2 after printing which option is wrong. */
int orders_config_load(orders_config *oc, const config *c);
void orders_config_free(orders_config *oc);

#endif
