/* trail.h -- the admin trail (docs/admin.md, "Admin trail"): one entry of
 * the stream admin:trail per change, allowed or refused, with fields user,
 * action, target, addr, result and t (unix seconds).
 *
 * http_trail (http_api.h) appends for a handler; trail_append is the same
 * for callers that know the user themselves (a login). The route
 * GET /api/v1/trail pages through it newest first, and trail_rows reads it
 * row by row for an export. */
#ifndef PA_ADMIN_TRAIL_H
#define PA_ADMIN_TRAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "http_api.h"
#include "redis_store.h"

#define TRAIL_MAXLEN "1000000"

/* Appends one entry. Returns 0, or -1 (logged: a trail that cannot be
 * written does not undo the change it describes). */
int trail_append(rstore *r, const char *user, const char *action, const char *target, const char *addr,
                 const char *result);

/* GET /api/v1/trail?user=&action=&from=&to=&limit=&cursor= */
void trail_list(const http_request *rq);

/* The columns of a row, in this order. */
enum {
    TRAIL_COL_T,
    TRAIL_COL_USER,
    TRAIL_COL_ACTION,
    TRAIL_COL_TARGET,
    TRAIL_COL_ADDR,
    TRAIL_COL_RESULT,
    TRAIL_N_COLS
};
extern const char *const trail_columns[TRAIL_N_COLS]; /* "t", "user", "action", ... */

typedef struct trail_filter {
    const char *user;   /* exact match; NULL: any */
    const char *action; /* exact, or a prefix when it ends in '*'; NULL: any */
    long long from, to; /* unix seconds, both included; 0: unbounded */
    const char *after;  /* continue after this entry id (rows come newest first); NULL: from the newest */
    size_t max_scan;    /* stop after examining this many entries; 0: no bound */
} trail_filter;

typedef struct trail_rows trail_rows;

/* Starts reading (nothing is read yet). The filter's strings must outlive
 * the reader. NULL when out of memory. */
trail_rows *trail_rows_open(rstore *r, const trail_filter *f);
/* The next matching row: 1 and row[] set (valid until the next call), 0 at
 * the end (or at max_scan), -1 when Redis failed. */
int trail_rows_next(trail_rows *it, const char *row[TRAIL_N_COLS]);
/* After 0 from next: whether entries remain (max_scan stopped it). */
bool trail_rows_more(const trail_rows *it);
/* The id of the last entry examined, "" before any. */
const char *trail_rows_last_id(const trail_rows *it);
void trail_rows_close(trail_rows *it);

#endif
