/* webhook_delivery.h -- sends the queued deliveries (webhooks.h) with
 * libcurl: POST of the event's JSON with X-PA-Event, X-PA-Delivery and
 * X-PA-Signature: sha256=HEX (HMAC-SHA256 over the body, keyed with the
 * endpoint's secret as its 64 characters).
 *
 * A try succeeds on a 2xx answer within the timeout (5 s). Otherwise the
 * delivery is due again after the backoff: base, 2 x base, 4 x base ...
 * capped at max (1 s ... 300 s), and dropped after max_tries (8) tries.
 * Each try is logged (webhook.delivery: delivery, webhook, event, try,
 * status, outcome; never the secret or the body) and appended to
 * admin:deliveries (MAXLEN ~ 10000).
 *
 * Several admin servers may run: a sender claims a due delivery with one
 * script that also pushes its due time forward by the claim's lease, so no
 * other sender takes it while it is being sent. A sender that dies during
 * a try leaves the delivery due again when the lease ends: at least once,
 * and exactly once while the senders live. */
#ifndef PA_ADMIN_WEBHOOK_DELIVERY_H
#define PA_ADMIN_WEBHOOK_DELIVERY_H

#include <stddef.h>

#include "redis_store.h"

typedef struct webhook_delivery_config {
    rstore_config store; /* Redis A as user `admin` */
    int poll_ms;         /* how often to look for due deliveries (default 200) */
    int timeout_ms;      /* one try's deadline (default 5000) */
    int backoff_ms;      /* wait after the first failed try (default 1000), doubled after each */
    int backoff_max_ms;  /* the longest wait (default 300000) */
    int max_tries;       /* tries before a delivery is dropped (default 8) */
    int lease_ms;        /* a claim's hold on a delivery (default timeout_ms + 25000) */
} webhook_delivery_config;

typedef struct webhook_delivery webhook_delivery;

/* Starts the sender task (zero fields take the defaults). NULL with a
 * message in err. */
webhook_delivery *webhook_delivery_start(const webhook_delivery_config *cfg, char *err, size_t errlen);
/* Stops it after the try in progress. NULL is ignored. */
void webhook_delivery_stop(webhook_delivery *d);

/* The header value "sha256=HEX" for `body` under `secret` into out
 * (at least 72 bytes). Receivers compute the same to check a delivery. */
void webhook_signature(const char *secret, const char *body, size_t body_len, char out[72]);

#endif
