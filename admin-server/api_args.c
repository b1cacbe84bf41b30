/* api_args.c -- serials, paging and cursors (api_args.h). */
#include "api_args.h"

#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "log.h"
#include "order_file.h"

bool api_serial_text(const char *s) {
    bool ok = s && strlen(s) == ORDER_SERIAL_LEN;
    for (size_t i = 0; ok && i < ORDER_SERIAL_LEN; i++) ok = s[i] >= '0' && s[i] <= '9';
    return ok;
}

bool api_serial(const http_request *rq, const char *what, const char *s) {
    bool ok = api_serial_text(s);
    if (!ok) http_reply_error(rq, 400, "%s: expected a service serial of %d digits", what, ORDER_SERIAL_LEN);
    return ok;
}

/* The cursor's text; false when it is not base64url of text. */
static bool cursor_decode(const char *in, char out[API_CURSOR_MAX]) {
    long len = *in ? b64url_decode(in, (uint8_t *)out, API_CURSOR_MAX - 1) : -1;
    if (len <= 0 || memchr(out, '\0', (size_t)len)) return false;
    out[len] = '\0';
    return true;
}

bool api_page(const http_request *rq, size_t *limit, char after[API_CURSOR_MAX]) {
    const char *c = http_query(rq, "cursor");
    long long n;
    after[0] = '\0';
    if (!http_query_int(rq, "limit", 1, API_LIMIT_MAX, API_LIMIT_DEFAULT, &n)) return false;
    *limit = (size_t)n;
    if (c && !cursor_decode(c, after)) {
        http_reply_error(rq, 400, "cursor: not a cursor this API handed out");
        return false;
    }
    return true;
}

json_t *api_cursor(const char *after) {
    size_t n = strlen(after);
    char out[B64URL_LEN(API_CURSOR_MAX)];
    if (n >= API_CURSOR_MAX) return NULL;
    b64url_encode(after, n, out);
    return json_string(out);
}

void api_unavailable(const http_request *rq, const char *what, const char *why) {
    log_error("admin.store.unavailable", LOG_S("what", what), LOG_S("error", why), LOG_END);
    http_reply_error(rq, 503, "%s: the store is unavailable, try again", what);
}
