/* threats_api.c -- GET /api/v1/threats: checks the query (threat_view.h
 * names what was wrong) and answers the series, or 503 when Redis A does
 * not answer. Reading only: nothing for the trail. */
#include "threats_api.h"

#include <time.h>

#include "threat_view.h"

void threats_get(const http_request *rq) {
    static const char *const allowed[] = {"group", "from", "to", "step", NULL};
    if (!http_query_only(rq, allowed)) return;
    threat_query q;
    char err[256];
    if (threat_query_parse(&q, http_query(rq, "group"), http_query(rq, "from"), http_query(rq, "to"),
                           http_query(rq, "step"), (int64_t)time(NULL), err, sizeof err) != 0) {
        http_reply_error(rq, 400, "%s", err);
        return;
    }
    json_t *view = threat_view_read(rq->redis, &q, err, sizeof err);
    if (!view) {
        http_reply_error(rq, 503, "%s", err);
        return;
    }
    http_reply_json(rq, 200, view);
}
