/* synth_rows.c -- the made-up machine rows (synth_rows.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "synth_rows.h"

static const char *const columns[] = {"id",          "group", "serial", "order",      "hostname",  "ip",        "macs",
                                      "host_serial", "os",    "status", "first_seen", "last_seen", "expires_at"};

typedef struct synth {
    uint64_t n;           /* rows to give */
    uint64_t i;           /* the next row's number */
    char id[24];          /* this row's text, valid until the next row */
    char hostname[24];    /* ... */
    char ip[24];          /* ... */
    char macs[40];        /* ... */
    char host_serial[16]; /* ... */
} synth;

void synth_hostname(uint64_t i, char *buf, size_t n) { snprintf(buf, n, "ws-%07" PRIu64, i); }

static int synth_next(void *state, export_cell *c, char *err, size_t errlen) {
    synth *s = state;
    if (s->i == s->n) return 0;
    uint64_t i = s->i++;
    snprintf(s->id, sizeof s->id, "AAAAAAAA%08" PRIx64, i);
    synth_hostname(i, s->hostname, sizeof s->hostname);
    snprintf(s->ip, sizeof s->ip, "10.%u.%u.%u", (unsigned)(i >> 16 & 255), (unsigned)(i >> 8 & 255),
             (unsigned)(i & 255));
    snprintf(s->macs, sizeof s->macs, "02:00:00:%02x:%02x:%02x 06:00:00:00:00:01", (unsigned)(i >> 16 & 255),
             (unsigned)(i >> 8 & 255), (unsigned)(i & 255));
    snprintf(s->host_serial, sizeof s->host_serial, "PF%08" PRIu64, i);
    int64_t t = SYNTH_T0 + (int64_t)i;
    c[0] = (export_cell){EXPORT_STRING, s->id, 0};
    c[1] = (export_cell){EXPORT_INT, NULL, 4343};
    c[2] = (export_cell){EXPORT_INT, NULL, (int64_t)i};
    c[3] = (export_cell){EXPORT_STRING, "20261201", 0};
    c[4] = (export_cell){EXPORT_STRING, s->hostname, 0};
    c[5] = (export_cell){EXPORT_STRING, s->ip, 0};
    c[6] = (export_cell){EXPORT_LIST, s->macs, 0};
    c[7] = (export_cell){EXPORT_STRING, s->host_serial, 0};
    c[8] = (export_cell){EXPORT_STRING, "linux", 0};
    c[9] = (export_cell){EXPORT_STRING, "active", 0};
    c[10] = (export_cell){EXPORT_TIME, NULL, t};
    c[11] = (export_cell){EXPORT_TIME, NULL, t + 3600};
    c[12] = (export_cell){EXPORT_TIME, NULL, t + 86400};
    return 1;
}

export_source synth_machine_rows(uint64_t n) {
    synth *s = calloc(1, sizeof *s);
    if (s) s->n = n;
    return (export_source){.name = "machines",
                           .columns = columns,
                           .n_columns = sizeof columns / sizeof columns[0],
                           .next = s ? synth_next : NULL,
                           .close = free,
                           .state = s};
}
