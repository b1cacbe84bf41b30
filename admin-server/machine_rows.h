/* machine_rows.h -- the machine search as a stream of rows, for the search
 * page and for exports (docs/admin.md, "Machine search").
 *
 * The directory (machine_dir.h) answers a search a page at a time; an
 * export wants every matching row without holding them all. This iterator
 * walks the search's most selective index in bounded steps and hands out
 * one row at a time, so a caller streams any number of rows in flat memory.
 * When no filter selects few rows (none, or only status and last contact)
 * it reads the record buckets instead (machine_scan.h): rows then come in
 * bucket order, not the index's.
 * The row's fields are the export columns of docs/admin.md, in that order:
 *   id group serial order hostname ip macs host_serial os status
 *   first_seen last_seen expires_at
 * A row is valid until the next machine_rows_next or machine_rows_close. */
#ifndef PA_ADMIN_MACHINE_ROWS_H
#define PA_ADMIN_MACHINE_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis_store.h"

/* A machine's status, derived when the row is read (docs/admin.md). */
typedef enum machine_status {
    MACHINE_STATUS_ANY = -1, /* a filter that takes every status */
    MACHINE_ACTIVE = 0,      /* holds a place whose lease has not passed */
    MACHINE_PENDING = 1,     /* volume: waiting for a seat */
    MACHINE_EXPIRED = 2,     /* its lease passed (or it was reclaimed) */
    MACHINE_DEACTIVATED = 3, /* gave its place back */
    MACHINE_AWAITING = 4,    /* volume: asked to deactivate, waiting for approval */
} machine_status;

/* "active", "pending", "expired", "deactivated", "awaiting_approval". */
const char *machine_status_name(machine_status s);
/* The status named `name`; false when it names none. */
bool machine_status_parse(const char *name, machine_status *out);

#define MACHINE_ID_TEXT_LEN 16 /* base64url of the 12-byte machine id, unpadded */
#define MACHINE_FIELD_MAX 256  /* longest hostname, host serial, os or address list kept */

/* The search's filters. A text filter is exact, or a prefix when it ends in
 * '*'; NULL or "" means no filter. machine_rows_open copies them. */
typedef struct machine_filters {
    bool has_group;          /* the group filter is set (retail keys) */
    uint32_t group;          /* group ID */
    bool has_serial;         /* the serial filter is set (needs the group) */
    uint32_t serial;         /* key serial within the group */
    const char *order;       /* service serial of a volume order */
    const char *hostname;    /* the machine's host name */
    const char *ip;          /* the client address it last came from */
    const char *mac;         /* one of its MAC addresses */
    const char *host_serial; /* its hardware serial */
    machine_status status;   /* MACHINE_STATUS_ANY for all */
    int64_t from;            /* last contact at or after (unix s), 0: no bound */
    int64_t to;              /* last contact at or before (unix s), 0: no bound */
} machine_filters;

/* One machine, the export columns in order. */
typedef struct machine_row {
    char id[MACHINE_ID_TEXT_LEN + 1];    /* the machine id, base64url */
    uint32_t group;                      /* retail: the key's group; 0 for volume */
    uint32_t serial;                     /* retail: the key's serial; 0 for volume */
    char order[16];                      /* volume: the order's service serial; "" for retail */
    char hostname[MACHINE_FIELD_MAX];    /* as the machine last reported it; "" if never */
    char ip[48];                         /* client address of its last contact */
    char macs[MACHINE_FIELD_MAX];        /* its MAC addresses, separated by single spaces */
    char host_serial[MACHINE_FIELD_MAX]; /* hardware serial; "" if never reported */
    char os[MACHINE_FIELD_MAX];          /* operating system as reported */
    machine_status status;               /* derived at read time (leases pass) */
    int64_t first_seen;                  /* unix s of its first logged event */
    int64_t last_seen;                   /* unix s of its last logged event */
    int64_t expires_at;                  /* unix s its lease ends, 0: never / none */
} machine_row;

typedef struct machine_rows machine_rows;

/* Starts a walk over the machines matching `f`, through connection `r`
 * (user admin). NULL with a message in err for filters that cannot be
 * searched (e.g. a serial without its group) or no memory. */
machine_rows *machine_rows_open(rstore *r, const machine_filters *f, char *err, size_t errlen);

/* The next row: 1 and *row set, 0 at the end, -1 on a store error (then
 * machine_rows_error says why; the walk cannot go on). */
int machine_rows_next(machine_rows *it, const machine_row **row);

/* Why the last machine_rows_next returned -1. */
const char *machine_rows_error(const machine_rows *it);

void machine_rows_close(machine_rows *it);

#endif
