/* webhooks_api.h -- the webhook routes (docs/admin.md, "Events and
 * webhooks"), all for the admin role:
 *   GET    /api/v1/webhooks              endpoints, without their secrets
 *   POST   /api/v1/webhooks {"url","events"}  a new endpoint; the answer
 *                                        shows its secret, once
 *   DELETE /api/v1/webhooks/{id}
 *   GET    /api/v1/webhooks/deliveries?limit=&cursor=  the delivery log,
 *                                        newest first */
#ifndef PA_ADMIN_WEBHOOKS_API_H
#define PA_ADMIN_WEBHOOKS_API_H

#include "http_api.h"

void webhooks_list(const http_request *rq);
void webhooks_create(const http_request *rq);
void webhooks_delete(const http_request *rq);
void webhooks_deliveries(const http_request *rq);

#endif
