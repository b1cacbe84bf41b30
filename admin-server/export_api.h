/* export_api.h -- the export routes (docs/admin.md, "Export"):
 *
 *   GET /api/v1/machines/export?format=csv|json|xlsx&<the search's filters>
 *   GET /api/v1/trail/export?format=csv|json|xlsx&<the trail's filters>
 *
 * Each streams every matching row (no paging) as a download named after
 * what it holds and the day, e.g. machines-20261201.csv. The rows come from
 * the same iterators as the search pages (machine_rows.h, the trail's), so
 * an export holds exactly what the pages show. */
#ifndef PA_ADMIN_EXPORT_API_H
#define PA_ADMIN_EXPORT_API_H

#include <stdbool.h>

#include "export.h"
#include "http_api.h"

/* GET /api/v1/machines/export (viewer). */
void export_machines(const http_request *rq);

/* GET /api/v1/trail/export (viewer). */
void export_trail(const http_request *rq);

/* The request's format parameter into *f; false after answering 400 (the
 * parameter missing, or naming a format there is not). */
bool export_format_from_query(const http_request *rq, export_format *f);

/* Starts the download of src (taken over) as `what` ("machines"): opens the
 * export, then answers with the stream, or 503 naming why it could not. */
void export_reply(const http_request *rq, export_format f, const export_source *src);

#endif
