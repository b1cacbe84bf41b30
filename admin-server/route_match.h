/* route_match.h -- which route of the table answers a request.
 *
 * A pattern is a path whose segments are literal or {name}; a {name}
 * takes exactly one non-empty segment (already percent-decoded by the
 * server, so an encoded '/' never joins two). Of the routes whose pattern
 * matches the path and whose method is the request's, the one with the
 * fewest {params} wins, ties to the first in the table: a literal segment
 * beats a parameter (/api/v1/machines/export before /api/v1/machines/{id})
 * whatever order the table lists them in. */
#ifndef PA_ADMIN_ROUTE_MATCH_H
#define PA_ADMIN_ROUTE_MATCH_H

#include <stddef.h>

#include "http_api.h"

#define ROUTE_MAX_PARAMS 4 /* http_request.params has this many */

/* Matches `path` against `pattern`; each {param}'s value is copied into
 * `values` (room for strlen(path) + 1 bytes) and pointed to from params.
 * Returns the number of params, or -1 when it does not match. */
int route_match(const char *pattern, const char *path, char *values, const char *params[ROUTE_MAX_PARAMS]);

/* The route of (method, path) among routes[0..n), with its params set;
 * NULL when none, and then `allow` lists the methods the path has
 * ("GET, POST"; empty: no route has the path). */
const http_route *route_find(const http_route *routes, size_t n, const char *method, const char *path, char *values,
                             const char *params[ROUTE_MAX_PARAMS], char *allow, size_t allow_len);

#endif
