/* admin_machines.c -- see admin_machines.h. The entries go straight into
 * the directory through machine_dir.lua's ingest, as the admin server's
 * ingest task passes log entries: the activation servers and the logs are
 * not what the admin benches measure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_machines.h"
#include "clock.h"
#include "machine_dir.h"
#include "redis_keys.h"

#define BATCH 500 /* log entries per ingest call: machine_ingest.c ENTRIES_PER_CALL */

uint32_t bench_mix(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

void bench_machine_make(long i, long now, bench_machine *x) {
    uint32_t h = bench_mix((uint32_t)i);
    memcpy(x->m, &h, 4);
    uint32_t k = (uint32_t)i;
    memcpy(x->m + 4, &k, 4);
    memset(x->m + 8, 'm', 8);
    x->m[16] = 0;
    snprintf(x->g, sizeof x->g, "%ld", 1000 + i % BENCH_GROUPS);
    snprintf(x->s, sizeof x->s, "%ld", 1 + i / BENCH_GROUPS);
    snprintf(x->t, sizeof x->t, "%ld", now - (long)(h % 86400));
    snprintf(x->ip, sizeof x->ip, "10.%u.%u.%u", (h >> 16) & 255, (h >> 8) & 255, h & 255);
    snprintf(x->h, sizeof x->h, "ws-%06x-%ld", h & 0xffffff, i % 10);
    snprintf(x->mac, sizeof x->mac, "02:00:%02x:%02x:%02x:%02x", (h >> 24) & 255, (h >> 16) & 255, (h >> 8) & 255,
             (unsigned)(i & 255));
    snprintf(x->hs, sizeof x->hs, "PF%08X", bench_mix(h));
    snprintf(x->e, sizeof x->e, "%ld", now + 86400);
}

/* One ingest call of machines [from, to). */
static int load_batch(rstore *r, long from, long to, long now) {
    static bench_machine x[BATCH];
    static const char *argv[3 + BATCH * MD_ENTRY_FIELDS];
    static size_t lens[3 + BATCH * MD_ENTRY_FIELDS];
    size_t k = 0;
    argv[k++] = PA_RKEY_MLOG_POS;
    argv[k++] = "{g:0}:mlog";
    argv[k++] = "0-1";
    for (long j = from; j < to; j++) {
        bench_machine *e = &x[j - from];
        bench_machine_make(j, now, e);
        const char *v[MD_ENTRY_FIELDS] = {"a", e->m, e->g, e->s, "", e->t, e->ip, e->h, e->mac, e->hs, "linux", e->e};
        for (int f = 0; f < MD_ENTRY_FIELDS; f++, k++) {
            argv[k] = v[f];
            lens[k] = f == 1 ? 16 : strlen(v[f]); /* the digest is raw bytes */
        }
    }
    for (size_t a = 0; a < 3; a++) lens[a] = strlen(argv[a]);
    redisReply *rep = machine_dir_call(r, "ingest", k, argv, lens);
    int ok = rep && rep->type == REDIS_REPLY_INTEGER;
    if (!ok) fprintf(stderr, "ingest: %s\n", rep && rep->type == REDIS_REPLY_ERROR ? rep->str : rstore_error(r));
    if (rep) freeReplyObject(rep);
    return ok ? 0 : -1;
}

int bench_machines_load(rstore *r, long n, long now) {
    double t0 = pa_mono_s();
    for (long i = 0; i < n; i += BATCH) {
        if (load_batch(r, i, i + BATCH < n ? i + BATCH : n, now) != 0) return -1;
        if ((i / BATCH) % 200 == 199) {
            fprintf(stderr, "\r  loaded %ld", i + BATCH);
            fflush(stderr);
        }
    }
    double dt = pa_mono_s() - t0;
    printf("\rloaded %ld machines in %.1f s: ingest %.0f entries/s (%d per machine_dir.lua call)\n", n, dt, n / dt,
           BATCH);
    return 0;
}

#define MEASURE_PW "bench-measure-pw"

redisContext *bench_measure_connect(redis_fixture *a) {
    char acl[512];
    snprintf(acl, sizeof acl, "%s/users.acl", a->dir);
    FILE *fa;
    if (redis_fixture_pause(a) != 0 || !(fa = fopen(acl, "a"))) {
        fprintf(stderr, "bench: cannot add the measuring user to %s\n", acl);
        return NULL;
    }
    int bad = fprintf(fa, "user measure on >%s ~* &* +@all\n", MEASURE_PW) < 0;
    bad |= fclose(fa) != 0;
    if (bad || redis_fixture_resume(a) != 0) {
        fprintf(stderr, "bench: cannot restart redis with the measuring user\n");
        return NULL;
    }
    redisContext *m = redis_fixture_connect(a, "measure", MEASURE_PW);
    if (!m) return NULL;
    redisReply *r = redisCommand(m, "CONFIG SET appendonly no");
    if (!r || r->type == REDIS_REPLY_ERROR) fprintf(stderr, "bench: CONFIG SET appendonly no failed\n");
    if (r) freeReplyObject(r);
    return m;
}

long long bench_used_memory(redisContext *c) {
    redisReply *r = redisCommand(c, "INFO memory");
    const char *p = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "used_memory:") : NULL;
    long long v = p ? atoll(p + 12) : -1;
    if (r) freeReplyObject(r);
    return v;
}
