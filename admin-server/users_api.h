/* users_api.h -- the accounts routes (admin role), on the same code as the
 * `user` commands (user_store.h):
 *   GET    /api/v1/users              every account: name, role, created_at
 *   POST   /api/v1/users              {"name","role","password"}
 *   PATCH  /api/v1/users/{name}       {"role"} and/or {"password"}
 *   DELETE /api/v1/users/{name}
 * An admin cannot remove or demote their own account (the last admin could
 * lock everyone out). */
#ifndef PA_ADMIN_USERS_API_H
#define PA_ADMIN_USERS_API_H

#include "http_api.h"

void users_list(const http_request *rq);
void users_create(const http_request *rq);
void users_update(const http_request *rq);
void users_remove(const http_request *rq);

#endif
