/* export_machines.c -- GET /api/v1/machines/export: the machine search's
 * result as a download.
 *
 * The filters are the search's own (machines_api.h parses them for both),
 * without its paging: an export is every matching row. The rows are
 * machine_rows' walk turned into export cells; a volume machine has no key,
 * so its group and serial are no value, and a lease that never ends has no
 * expiry. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "export_api.h"
#include "machine_rows.h"
#include "machines_api.h"

static const char *const machine_columns[] = {"id",         "group",     "serial",      "order", "hostname",
                                              "ip",         "macs",      "host_serial", "os",    "status",
                                              "first_seen", "last_seen", "expires_at"};

static export_cell text(const char *s) { return (export_cell){EXPORT_STRING, s, 0}; }
static export_cell number_or_none(int64_t n) { return n ? (export_cell){EXPORT_INT, NULL, n} : (export_cell){0}; }
static export_cell time_or_none(int64_t t) { return t ? (export_cell){EXPORT_TIME, NULL, t} : (export_cell){0}; }

static int machine_next(void *state, export_cell *c, char *err, size_t errlen) {
    const machine_row *m;
    int r = machine_rows_next(state, &m);
    if (r < 0) snprintf(err, errlen, "%s", machine_rows_error(state));
    if (r <= 0) return r;
    c[0] = text(m->id);
    c[1] = number_or_none(m->group);
    c[2] = number_or_none(m->group ? m->serial : 0);
    c[3] = text(m->order);
    c[4] = text(m->hostname);
    c[5] = text(m->ip);
    c[6] = (export_cell){EXPORT_LIST, m->macs, 0};
    c[7] = text(m->host_serial);
    c[8] = text(m->os);
    c[9] = text(machine_status_name(m->status));
    c[10] = time_or_none(m->first_seen);
    c[11] = time_or_none(m->last_seen);
    c[12] = time_or_none(m->expires_at);
    return 1;
}

static void machine_close(void *state) { machine_rows_close(state); }

/* The search's parameters without its paging, and the format; made once,
 * before any thread reads it. */
static const char *params[32];
static pthread_once_t params_once = PTHREAD_ONCE_INIT;

static void make_params(void) {
    size_t n = 0;
    for (size_t i = 0; machine_filter_params[i] && n + 2 < sizeof params / sizeof params[0]; i++) {
        const char *p = machine_filter_params[i];
        if (strcmp(p, "limit") != 0 && strcmp(p, "cursor") != 0) params[n++] = p;
    }
    params[n++] = "format";
    params[n] = NULL;
}

static const char *const *export_params(void) {
    (void)pthread_once(&params_once, make_params);
    return params;
}

void export_machines(const http_request *rq) {
    export_format f;
    machine_filters filters;
    if (!http_query_only(rq, export_params()) || !export_format_from_query(rq, &f) ||
        !machine_filters_from_query(rq, &filters))
        return;
    char err[256];
    machine_rows *it = machine_rows_open(rq->redis, &filters, err, sizeof err);
    if (!it) {
        http_reply_error(rq, 400, "%s", err);
        return;
    }
    export_source src = {.name = "machines",
                         .columns = machine_columns,
                         .n_columns = sizeof machine_columns / sizeof machine_columns[0],
                         .next = machine_next,
                         .close = machine_close,
                         .state = it};
    export_reply(rq, f, &src);
}
