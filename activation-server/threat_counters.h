/* threat_counters.h -- the threat view's counts (docs/admin.md, "Threat
 * view"): per existing group and UTC minute the Activate attempts,
 * not-genuine refusals, rate-limit refusals and grants, and per client
 * address the refusals of the hour; added to Redis A every --threat-flush-ms.
 *
 * The hot path must not notice it. Each worker thread (gRPC worker or
 * online-audit pool thread) claims a tally of its own: a small
 * open-addressing table of (group, minute) cells and a space-saving table
 * of the most refusing addresses, behind a mutex only the flusher ever
 * contends, once per flush. Counting is a hash, a probe and an add; nothing
 * is allocated after start-up, nothing waits on Redis.
 *
 * Bounded by construction: a tally holds THREAT_TALLY_CELLS cells between
 * two flushes (a count that finds no room is dropped and counted in
 * pa_threat_counts_dropped_total) and THREAT_TALLY_ADDRESSES addresses
 * (space-saving: a new address takes the place of the least counted one
 * and inherits its count, so the heavy hitters stay, over-counted by at
 * most that minimum). Only groups known to exist are counted, so made-up
 * group IDs cannot make keys in Redis.
 *
 * A flush that Redis refuses is logged (threat.flush_failed) and its
 * counts are lost: these are statistics, and holding them back would make
 * memory depend on how long Redis is away. */
#ifndef PA_THREAT_COUNTERS_H
#define PA_THREAT_COUNTERS_H

#include <stdint.h>

#include "redis_store.h"

#define THREAT_TALLY_CELLS 1024   /* (group, minute) cells per tally and flush */
#define THREAT_TALLY_ADDRESSES 32 /* refusing addresses kept per tally and flush */
#define THREAT_ADDRESS_MAX 64     /* an address as text (IPv6 /64 included) */

typedef enum threat_kind {
    THREAT_ATTEMPT,       /* an Activate with a well-formed key of an existing group */
    THREAT_NOT_GENUINE,   /* refused as not genuine */
    THREAT_RATE_LIMITED,  /* refused by a rate limit */
    THREAT_GRANT,         /* granted */
    THREAT_MACHINE_LIMIT, /* refused: every place of the key is taken */
    THREAT_KINDS
} threat_kind;

typedef struct threat_counters threat_counters;
typedef struct threat_tally threat_tally;

typedef struct threat_counters_config {
    rstore_config store; /* Redis A, as the activation user */
    int flush_ms;        /* how often to add the counts to Redis; 0: never (no task) */
} threat_counters_config;

/* Starts the flush task (when flush_ms > 0). NULL with a message in err. */
threat_counters *threat_counters_start(const threat_counters_config *cfg, char *err, size_t errlen);

/* Stops the task, flushes what is left once, frees everything. Every
 * tally must have been released. NULL is ignored. */
void threat_counters_stop(threat_counters *tc);

/* Adds every tally's counts to Redis now. 0, or -1 when Redis failed. */
int threat_counters_flush(threat_counters *tc);

/* A tally for one thread (reused after a release); NULL if out of memory.
 * NULL `tc` gives NULL, and counting into a NULL tally does nothing. */
threat_tally *threat_tally_claim(threat_counters *tc);
void threat_tally_release(threat_tally *t);

/* Hot path: one `kind` for `group` now. `address` (the client address,
 * IPv6 as its /64; NULL for none) is counted as a refusal too when `kind`
 * is a refusal. */
void threat_count(threat_tally *t, uint32_t group, threat_kind kind, const char *address);

#endif
