/* http_args.c -- the request arguments every route reads the same way: an
 * integer query parameter and the body's media type (http_api.h).
 *
 * Kept apart from http_server.c so that the handler libraries and their
 * tests (tests/admin/api_stub.c stands in for the server) share one parser
 * instead of each route writing its own. */
#include "http_api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool http_query_int(const http_request *rq, const char *name, long long min, long long max, long long dflt,
                    long long *out) {
    const char *v = http_query(rq, name);
    *out = dflt;
    if (!v) return true;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < min || n > max) {
        http_reply_error(rq, 400, "query parameter \"%s\": expected an integer from %lld to %lld", name, min, max);
        return false;
    }
    *out = n;
    return true;
}

bool http_type_is(const char *content_type, const char *type) {
    size_t n = strlen(type);
    if (!content_type || strncasecmp(content_type, type, n) != 0) return false;
    const char *rest = content_type + n;
    return *rest == '\0' || *rest == ';' || *rest == ' ';
}
