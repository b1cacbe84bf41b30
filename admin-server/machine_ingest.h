/* machine_ingest.h -- the task that keeps the machine directory up to date
 * from the activation servers' machine logs (docs/admin.md "The machine
 * directory").
 *
 * Each step takes (or extends) the ingest lease, so of several admin
 * servers one ingests at a time; lists the logs (one per group in `groups`,
 * one per order in `orders`); reads each past its saved position with
 * XREAD (many logs per call); and hands the entries to machine_dir.lua,
 * which upserts the records and saves the new position in the same call:
 * a crash between two calls reads no entry twice and skips none. */
#ifndef PA_ADMIN_MACHINE_INGEST_H
#define PA_ADMIN_MACHINE_INGEST_H

#include <stdbool.h>
#include <stddef.h>

#include "redis_store.h"

typedef struct machine_ingest machine_ingest;

/* An ingest through `r` (user admin; the caller keeps it) holding the
 * lease for `lease_ms` per step. NULL when out of memory. */
machine_ingest *machine_ingest_new(rstore *r, int lease_ms);
void machine_ingest_free(machine_ingest *in);

/* One step: at most `per_log` entries of each log. Returns the entries
 * taken in (0: nothing new, or another server holds the lease), or -1 on a
 * store error (machine_ingest_error). */
long machine_ingest_step(machine_ingest *in, size_t per_log);

/* Steps until a step takes nothing in; returns the total or -1. */
long machine_ingest_drain(machine_ingest *in, size_t per_log);

/* Whether the last step held the lease. */
bool machine_ingest_holds(const machine_ingest *in);
const char *machine_ingest_error(const machine_ingest *in);

/* The task as a thread of the server: a step every `interval_ms` on its
 * own connection (`cfg`), until machine_ingest_stop. NULL with a message
 * in err when it cannot start. */
#define MACHINE_INGEST_INTERVAL_MS 1000 /* the server's pause between steps with nothing new */
typedef struct machine_ingest_task machine_ingest_task;
machine_ingest_task *machine_ingest_start(const rstore_config *cfg, int interval_ms, char *err, size_t errlen);
void machine_ingest_stop(machine_ingest_task *t);

#endif
