/* openapi.c -- the API document from the route table (openapi.h). The
 * route patterns are already OpenAPI path templates ({name} segments). */
#include "openapi.h"

#include <ctype.h>
#include <string.h>

#include "user_store.h"

/* [{"name":..,"in":"path","required":true,"schema":{"type":"string"}}...] */
static json_t *path_params(const char *pattern) {
    json_t *a = json_array();
    for (const char *p = strchr(pattern, '{'); a && p; p = strchr(p + 1, '{')) {
        const char *end = strchr(p, '}');
        if (!end) break;
        json_array_append_new(a, json_pack("{s:s%,s:s,s:b,s:{s:s}}", "name", p + 1, (size_t)(end - p - 1), "in", "path",
                                           "required", 1, "schema", "type", "string"));
    }
    return a;
}

static json_t *operation(const http_route *rt) {
    json_t *op =
        json_pack("{s:s,s:s,s:{s:{s:s},s:{s:s,s:{s:{s:{s:s}}}}}}", "summary", rt->summary ? rt->summary : "", "x-role",
                  user_role_name(rt->least), "responses", "200", "description", "success", "default", "description",
                  "an error", "content", "application/json", "schema", "$ref", "#/components/schemas/Error");
    json_t *params = path_params(rt->pattern);
    if (op && params && json_array_size(params)) json_object_set(op, "parameters", params);
    json_decref(params);
    if (op && rt->least > ROLE_NONE) json_object_set_new(op, "security", json_pack("[{s:[]}]", "session"));
    return op;
}

static json_t *components(void) {
    return json_pack("{s:{s:{s:s,s:[s],s:{s:{s:s,s:[s,s],s:{s:{s:s},s:{s:s}}}}}},s:{s:{s:s,s:s,s:s}}}", "schemas",
                     "Error", "type", "object", "required", "error", "properties", "error", "type", "object",
                     "required", "code", "message", "properties", "code", "type", "string", "message", "type", "string",
                     "securitySchemes", "session", "type", "apiKey", "in", "cookie", "name", "pa_session");
}

json_t *openapi_document(const http_route *routes, size_t n) {
    json_t *paths = json_object();
    for (size_t i = 0; paths && i < n; i++) {
        json_t *item = json_object_get(paths, routes[i].pattern);
        if (!item) json_object_set_new(paths, routes[i].pattern, item = json_object());
        char method[8] = "";
        for (size_t j = 0; routes[i].method[j] && j + 1 < sizeof method; j++)
            method[j] = (char)tolower((unsigned char)routes[i].method[j]), method[j + 1] = '\0';
        json_object_set_new(item, method, operation(&routes[i]));
    }
    return json_pack("{s:s,s:{s:s,s:s,s:s},s:o,s:o}", "openapi", "3.0.3", "info", "title",
                     "Product activation admin API", "version", "1", "description",
                     "x-role names the least role a route needs (viewer < operator < admin).", "paths", paths,
                     "components", components());
}

void openapi_get(const http_request *rq) {
    json_t *doc = openapi_document(admin_routes, admin_n_routes);
    if (!doc) http_reply_error(rq, 500, "out of memory");
    else http_reply_json(rq, 200, doc);
}
