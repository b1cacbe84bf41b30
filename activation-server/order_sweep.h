/* order_sweep.h -- the background ageing of every order's machine table
 * (docs/volume.md, "Ageing without scanning: the wheel").
 *
 * Every script call of an order ages the wheel buckets that fell due, a
 * few members at a time; this task makes sure it happens when nobody calls:
 * every interval it reads the list of orders (`orders`) and sweeps each one
 * (volume.lua sweep) until no due bucket is left, at most a bounded number
 * of calls per order per round so one huge backlog does not hold up the
 * others. Its answers also keep the order gauges fresh (order_gauges.h).
 * Several replicas sweeping one store is harmless: each call takes what is
 * due at that moment, atomically. The task has its own Redis connection
 * and order cache, so it never touches a gRPC worker's. */
#ifndef PA_ACTIVATION_ORDER_SWEEP_H
#define PA_ACTIVATION_ORDER_SWEEP_H

#include <stddef.h>

#include "order_gauges.h"
#include "redis_store.h"

typedef struct order_sweep order_sweep;

typedef struct order_sweep_config {
    const rstore_config *redis; /* the server's store (its own connection is made) */
    int interval_ms;            /* --order-sweep-ms; 0: no background loop, order_sweep_round only */
    int refresh_ms;             /* its order cache's refresh (--group-refresh-ms) */
    order_gauges *gauges;       /* may be NULL */
} order_sweep_config;

/* Connects (lazily, so a store that is away does not stop the server) and
 * starts the loop. NULL with err set on failure. */
order_sweep *order_sweep_start(const order_sweep_config *cfg, char *err, size_t errlen);

/* One round now, on the caller's thread (tests, benchmarks): every order
 * swept until nothing is due. Returns the wheel members aged, or -1 when
 * the store could not be read. */
long long order_sweep_round(order_sweep *s);

void order_sweep_stop(order_sweep *s);

#endif
