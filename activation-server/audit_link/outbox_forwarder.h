/* outbox_forwarder.h -- moves offline-audit records from the Redis A outbox
 * (`audit:outbox`) to the audit server, losing none.
 *
 * The outbox is read through a consumer group ("forwarders"), so several
 * activation servers share the work and an entry stays *pending* until it
 * is acknowledged. An entry is acknowledged and deleted (one script: XACK +
 * XDEL) only after the audit server answered Submit, i.e. stored it. So:
 *   - audit server down: entries stay, the outbox grows, Submit is retried
 *     with backoff; when it returns the outbox drains;
 *   - forwarder killed mid-batch: its entries stay pending; after restart it
 *     reads its own pending entries first (stable consumer name), and a
 *     forwarder that never comes back has its entries claimed by another
 *     (XAUTOCLAIM after claim_idle_ms);
 *   - a batch delivered twice (stored, then killed before XACK) is absorbed
 *     by the audit server's request_id idempotency.
 * The outbox has a cap (--audit-outbox-max): the policy script refuses or
 * grants unaudited a sampled activation that finds it full (the group's
 * audit_outbox_full), so an audit server that is down or slow for long
 * cannot fill Redis A's memory. The forwarder exports the length and the
 * cap (pa_audit_outbox_length, pa_audit_outbox_max) and logs
 * audit.outbox.high above 80 % of the cap. */
#ifndef PA_OUTBOX_FORWARDER_H
#define PA_OUTBOX_FORWARDER_H

#include <stdint.h>

#include "audit_client.h"
#include "redis_keys.h"
#include "redis_store.h"

#define OUTBOX_MAX_DEFAULT 1000000 /* records; about 150 MB of Redis A (144 bytes each, measured) */

typedef struct outbox_forwarder_config {
    rstore_config store;              /* Redis A as user `activation` */
    audit_client *client;             /* borrowed; must outlive the forwarder */
    const char *consumer;             /* stable name of this server (e.g. host name) */
    int batch;                        /* records per Submit (default 100) */
    int claim_idle_ms;                /* take over others' entries idle this long (default 30000) */
    int block_ms;                     /* longest wait for new entries (default 500) */
    int linger_ms;                    /* after a partial batch, let more gather this long
                                       * (default 200; < 0: none) */
    long long max;                    /* the outbox's cap, for the gauge and the warning
                                       * (default OUTBOX_MAX_DEFAULT) */
} outbox_forwarder_config;

typedef struct outbox_forwarder outbox_forwarder;

/* Starts the background thread. NULL + err on bad configuration. */
outbox_forwarder *outbox_forwarder_start(const outbox_forwarder_config *cfg, char *err, size_t errlen);

/* Stops the thread. With drain_ms > 0 it first keeps forwarding until the
 * outbox is empty or drain_ms passed (SIGTERM: "flush the outbox").
 * Returns the outbox length left (-1 if unknown). */
long long outbox_forwarder_stop(outbox_forwarder *f, int drain_ms);

/* Records the audit server acknowledged through this forwarder. */
uint64_t outbox_forwarder_forwarded(const outbox_forwarder *f);

#endif
