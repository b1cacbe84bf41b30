/* orders_api.h -- the order routes of the admin API (docs/admin.md,
 * "Routes"): import an order file, list and search, one order, retire, and
 * the order's component matching (machine-match, order_controls.h).
 *
 * Every route calls the code `activation-server order ...` runs (library
 * pa_order_admin: order_store.h, order_describe.h), so the console and the
 * command line check, store and describe an order alike. The import takes
 * the `.license` file's bytes as the body and refuses with the reason words
 * of `order import`: malformed, foreign vendor, tampered, expired and wrong
 * server answer 400, older revision and conflict 409; a refusal writes
 * nothing. Changes are written to the admin trail as order.import,
 * order.retire and order.machine_match. */
#ifndef PA_ADMIN_ORDERS_API_H
#define PA_ADMIN_ORDERS_API_H

#include <stdbool.h>
#include <stdint.h>

#include "http_api.h"
#include "order_keyring.h"

/* What the import trusts; set once at start, read-only afterwards. */
typedef struct admin_orders_config {
    const order_keyring *order_keys; /* --order-public-key: the vendor's order-signing keys */
    bool on_premises;                /* --on-premises: orders must delegate server_key */
    uint8_t server_key[32];          /* --server-public-key: the on-premises server's signing key (raw Ed25519) */
} admin_orders_config;

/* Sets the configuration the handlers read (kept by pointer). */
void orders_api_setup(const admin_orders_config *cfg);

void orders_import(const http_request *rq);    /* POST /api/v1/orders */
void orders_list(const http_request *rq);      /* GET /api/v1/orders?q=&organisation=&limit=&cursor= */
void orders_get(const http_request *rq);       /* GET /api/v1/orders/{serial} */
void orders_retire(const http_request *rq);    /* POST /api/v1/orders/{serial}/retire */
void orders_set_match(const http_request *rq); /* PUT /api/v1/orders/{serial}/machine-match {"machine_match": K} */

#endif
