/* api_args.h -- the arguments several admin routes share, parsed one way:
 * a service serial in the path, the paging pair ?limit=&cursor= and the
 * opaque cursor itself (docs/admin.md, "HTTP conventions").
 *
 * A cursor is base64url (no padding) of the last item's sort key as text;
 * it is opaque to callers, so the key's form can change, and a cursor that
 * does not decode is refused (400), never read as "from the start". Each
 * parse function answers the request itself when it refuses. */
#ifndef PA_ADMIN_API_ARGS_H
#define PA_ADMIN_API_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "http_api.h"

#define API_LIMIT_DEFAULT 50
#define API_LIMIT_MAX 500
#define API_CURSOR_MAX 128 /* decoded cursor text, NUL included */

/* True when `s` is a service serial (ORDER_SERIAL_LEN digits). */
bool api_serial_text(const char *s);

/* True when `s` is a service serial (ORDER_SERIAL_LEN digits); otherwise
 * answers 400 naming `what` and returns false. */
bool api_serial(const http_request *rq, const char *what, const char *s);

/* ?limit= (1..API_LIMIT_MAX, default API_LIMIT_DEFAULT) and ?cursor=
 * decoded into `after` ("" when absent). False after answering 400. */
bool api_page(const http_request *rq, size_t *limit, char after[API_CURSOR_MAX]);

/* The cursor naming `after`, as a JSON string (NULL: out of memory). */
json_t *api_cursor(const char *after);

/* Answers 503 for a store that failed (`why` goes to the log only: it may
 * name keys), with a message fit for the caller. */
void api_unavailable(const http_request *rq, const char *what, const char *why);

#endif
