/* machines_api.h -- the machine search routes (docs/admin.md, "Machine
 * search"): GET /api/v1/machines and GET /api/v1/machines/{id}.
 *
 * The query parameters of the search are parsed here once, for the search
 * and for the export (which takes the same filters plus its format), so the
 * two never disagree on what a filter means. */
#ifndef PA_ADMIN_MACHINES_API_H
#define PA_ADMIN_MACHINES_API_H

#include <stdbool.h>

#include "http_api.h"
#include "machine_rows.h"

/* The search's query parameters, NULL-terminated (limit and cursor
 * included), for http_query_only; an export adds its own. */
extern const char *const machine_filter_params[];

/* Reads the filters of `rq` (group, serial, order, hostname, ip, mac,
 * host_serial, status, from, to) into f; its strings point into the
 * request. False after answering 400 naming the bad parameter. */
bool machine_filters_from_query(const http_request *rq, machine_filters *f);

/* A row as the API shows it (docs/admin.md): macs as an array. */
json_t *machine_row_json(const machine_row *row);

/* GET /api/v1/machines: {"items": [row...], "next_cursor": "..."}. */
void machines_search(const http_request *rq);

/* GET /api/v1/machines/{id}: the row plus "history": [{"op","t"}...], newest first. */
void machines_get(const http_request *rq);

#endif
