/* events.h -- the admin server's event detection (docs/admin.md, "Events
 * and webhooks"): every interval it looks at Redis A and fires, through
 * webhook_emit, what changed:
 *
 *   seats.below_threshold  an order's free seats fell below its seat_warning
 *                          (once per crossing; again only after they were
 *                          back at or above it)
 *   order.expiring         an order ends within the warning days (once per
 *                          order revision: a renewed order warns again)
 *   deactivation.awaiting_approval  a machine of an order with deactivation
 *                          approval asked to be deactivated (flag 4 of its
 *                          machine record; once per request)
 *   key.revoked            a serial joined a group's {g:ID}:revoked set
 *                          (the revocations the activation servers pulled);
 *                          revocations older than the first look at a group
 *                          are its baseline, not events
 *   key.machine_limit      a group's keys were refused for their machine
 *                          limit in a minute (the threat counters' 'l'
 *                          kind; once per group and minute)
 *
 * What was announced is kept in admin:event:state (and the announced
 * revocations in admin:event:revoked:ID), so a restart or another admin
 * server does not fire again. Several admin servers: the detection takes
 * the lease admin:event:lease, so one detects at a time. */
#ifndef PA_ADMIN_EVENTS_H
#define PA_ADMIN_EVENTS_H

#include <stdint.h>

#include "redis_store.h"

typedef struct events_config {
    rstore_config store;      /* Redis A as user `admin` */
    int interval_ms;          /* --webhook-interval-ms (default 1000) */
    int expiry_warning_days;  /* --order-expiry-warning-days (default 30) */
    int64_t expiry_warning_s; /* the same in seconds; set instead of days by tests */
} events_config;

typedef struct events_task events_task;

/* Starts the detection task. NULL with a message in err. */
events_task *events_start(const events_config *cfg, char *err, size_t errlen);
void events_stop(events_task *e);

/* One detection round on `r` at unix time `now`, without the lease (the
 * task calls it while holding the lease; tests call it directly). Returns
 * the events fired, or -1 when Redis failed. */
int events_detect(rstore *r, const events_config *cfg, int64_t now);

#endif
