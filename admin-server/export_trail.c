/* export_trail.c -- GET /api/v1/trail/export: the admin trail as a
 * download, newest first, with the filters of GET /api/v1/trail (user,
 * action, from, to; not its paging: an export is every matching entry).
 *
 * The rows are trail_rows' (trail.h), its columns its own: t (a time),
 * user, action, target, addr, result. */
#include <stdio.h>
#include <stdlib.h>

#include "export_api.h"
#include "trail.h"

/* The reader and the filter it points into (the filter must outlive it). */
typedef struct trail_source {
    trail_filter f; /* what to keep */
    trail_rows *it; /* the walk */
    rstore *r;      /* its connection, for the store's error */
} trail_source;

static int trail_next(void *state, export_cell *c, char *err, size_t errlen) {
    trail_source *s = state;
    const char *row[TRAIL_N_COLS];
    int r = trail_rows_next(s->it, row);
    if (r < 0) snprintf(err, errlen, "reading the trail: %s", rstore_error(s->r));
    if (r <= 0) return r;
    for (int i = 0; i < TRAIL_N_COLS; i++) c[i] = (export_cell){EXPORT_STRING, row[i], 0};
    c[TRAIL_COL_T] = (export_cell){EXPORT_TIME, NULL, atoll(row[TRAIL_COL_T])};
    return 1;
}

static void trail_source_close(void *state) {
    trail_source *s = state;
    trail_rows_close(s->it);
    free(s);
}

void export_trail(const http_request *rq) {
    static const char *const known[] = {"user", "action", "from", "to", "format", NULL};
    long long from, to;
    export_format f;
    if (!http_query_only(rq, known) || !export_format_from_query(rq, &f) ||
        !http_query_int(rq, "from", 0, 1LL << 40, 0, &from) || !http_query_int(rq, "to", 0, 1LL << 40, 0, &to))
        return;
    trail_source *s = calloc(1, sizeof *s);
    if (s) {
        s->f =
            (trail_filter){.user = http_query(rq, "user"), .action = http_query(rq, "action"), .from = from, .to = to};
        s->r = rq->redis;
        s->it = trail_rows_open(rq->redis, &s->f);
    }
    if (!s || !s->it) {
        free(s);
        http_reply_error(rq, 500, "out of memory");
        return;
    }
    export_source src = {.name = "trail",
                         .columns = trail_columns,
                         .n_columns = TRAIL_N_COLS,
                         .next = trail_next,
                         .close = trail_source_close,
                         .state = s};
    export_reply(rq, f, &src);
}
