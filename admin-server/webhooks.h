/* webhooks.h -- webhook endpoints and the events they receive (docs/admin.md,
 * "Events and webhooks"): the endpoint records in Redis A, and the one call
 * that turns an event into pending deliveries.
 *
 * An endpoint is admin:webhook:ID (url, events, secret, created_at) listed
 * in admin:webhooks. Its secret is made here (32 random bytes, as 64 hex
 * characters), returned once by webhook_create and never again: lists show
 * the rest. An event becomes one delivery per subscribed endpoint, each an
 * admin:delivery:ID hash plus its due time in admin:delivery:due, written
 * together (MULTI), so a restart loses none and webhook_delivery.c sends
 * them. The HTTP handlers are webhooks_api.c; this file needs no HTTP. */
#ifndef PA_ADMIN_WEBHOOKS_H
#define PA_ADMIN_WEBHOOKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "redis_store.h"

#define WEBHOOK_ID_LEN 16     /* hex characters of an endpoint, event or delivery ID */
#define WEBHOOK_SECRET_LEN 64 /* hex characters of a secret */
#define WEBHOOK_URL_MAX 2048

/* The event names, NULL-terminated. */
extern const char *const webhook_event_names[];

/* Fresh random ID (WEBHOOK_ID_LEN hex + NUL). 0, or -1 without randomness. */
int webhook_new_id(char id[WEBHOOK_ID_LEN + 1]);

/* Checks and stores an endpoint. `url` must be https://..., or
 * http://127.0.0.1[:port]/... (a receiver on this host, for tests);
 * `events` a non-empty array of known event names. On success *out is
 * {"id","url","events","created_at","secret"}: the only time the secret is
 * shown. Returns 0; -1 for bad input (err names the field); -2 when Redis
 * failed (err says why). */
int webhook_create(rstore *r, const char *url, const json_t *events, json_t **out, char *err, size_t errlen);

/* Every endpoint without its secret, ordered by created_at. NULL on a
 * Redis failure (err). */
json_t *webhook_list(rstore *r, char *err, size_t errlen);

/* 1 removed, 0 no such endpoint, -1 Redis failed. Its pending deliveries
 * are dropped when they come due. */
int webhook_delete(rstore *r, const char *id, char *err, size_t errlen);

/* Logs the event (log event "event.fired") and queues one delivery of
 *   {"event": NAME, "id": EVENT_ID, "at": UNIX_S, "data": DATA}
 * to each endpoint subscribed to `event`, due at once. Takes `data`'s
 * reference. Returns the deliveries queued, or -1 (err). */
int webhook_emit(rstore *r, const char *event, json_t *data, char *err, size_t errlen);

#endif
