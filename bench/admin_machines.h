/* admin_machines.h -- the made-up machines the admin benches load into a
 * directory (bench/admin_search, bench/admin_export --http,
 * bench/admin_api_search), so they measure the same fleet. */
#ifndef PA_BENCH_ADMIN_MACHINES_H
#define PA_BENCH_ADMIN_MACHINES_H

#include <stdint.h>

#include "fixture.h"
#include "redis_store.h"

#define BENCH_GROUPS 200 /* machine i is in group 1000 + i % BENCH_GROUPS, serial 1 + i / BENCH_GROUPS */

/* Machine i's log entry, as text (m is 16 raw bytes, not NUL-terminated). */
typedef struct bench_machine {
    char m[17];  /* the machine digest: a hash of i, then i, then padding */
    char g[24];  /* group */
    char s[24];  /* serial */
    char t[24];  /* last contact, within the last day */
    char ip[20]; /* 10.x.y.z from the hash: few machines share one */
    char h[40];  /* "ws-XXXXXX-D": hex of the hash, so "ws-XYZ*" matches ~1/4096 */
    char mac[24];
    char hs[16]; /* host serial */
    char e[24];  /* lease expiry, a day ahead */
} bench_machine;

/* A mixing hash: spreads the made-up names, so they are not in load order. */
uint32_t bench_mix(uint32_t x);

void bench_machine_make(long i, long now, bench_machine *x);

/* Loads machines [0, n) through machine_dir.lua's ingest, 500 entries per
 * call (the ingest task's batch: machine_ingest.c ENTRIES_PER_CALL), under
 * a log position of its own so no real log's position moves. Prints the
 * time taken and entries/s. 0, or -1 (why on stderr). */
int bench_machines_load(rstore *r, long n, long now);

/* Adds a measuring user (INFO needs @dangerous) to Redis `a` -- restarting
 * it, so do it before anything keeps a connection -- and turns AOF off
 * (the benches measure memory and time, not the disk). The user's
 * connection, or NULL (why on stderr). */
redisContext *bench_measure_connect(redis_fixture *a);

/* INFO memory's used_memory, or -1. */
long long bench_used_memory(redisContext *c);

#endif
