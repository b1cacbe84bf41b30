/* openapi.h -- GET /api/v1/openapi.json: the OpenAPI 3.0 document, made
 * from the route table itself (paths, methods, summaries, each route's
 * least role as x-role, its path parameters), so it cannot fall behind. */
#ifndef PA_ADMIN_OPENAPI_H
#define PA_ADMIN_OPENAPI_H

#include <jansson.h>

#include "http_api.h"

/* The document of `routes` (a new reference), NULL when out of memory. */
json_t *openapi_document(const http_route *routes, size_t n);

/* The route. */
void openapi_get(const http_request *rq);

#endif
