/* threats_api.h -- GET /api/v1/threats (docs/admin.md, "Threat view"): the
 * route's handler; the reading itself is threat_view.h. */
#ifndef PA_ADMIN_THREATS_API_H
#define PA_ADMIN_THREATS_API_H

#include "http_api.h"

/* GET /api/v1/threats?group=&from=&to=&step= (viewer). */
void threats_get(const http_request *rq);

#endif
