/* order_describe.h -- a stored order as JSON: its signed terms, its state
 * in the store and its counters. `activation-server order show --json` and
 * the admin server's GET /api/v1/orders/{serial} print the same object, so
 * the two can never describe an order differently. */
#ifndef PA_ACTIVATION_ORDER_DESCRIBE_H
#define PA_ACTIVATION_ORDER_DESCRIBE_H

#include <jansson.h>

#include "order_record.h"
#include "redis_store.h"

/* The order's counters ({o:S}:n) as volume.lua keeps them, an object of
 * integers; empty before the first activation, NULL when out of memory. */
json_t *order_counters(rstore *r, const order_record *rec);

/* The whole description: order_json's terms plus accepted_keys
 * (on-premises), retired, version, imported_at and counters. NULL when the
 * stored bytes no longer decode or out of memory. */
json_t *order_describe(rstore *r, const order_record *rec);

#endif
