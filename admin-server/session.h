/* session.h -- logins and sessions (docs/admin.md, "Accounts, sessions,
 * roles"): the /api/v1/session routes, and the lookup the server does for
 * every request that carries the pa_session cookie.
 *
 * The cookie holds 32 random bytes (base64url); Redis holds only the
 * SHA-256 of the cookie's text, so a copy of the store opens no session.
 * A session remembers the account's `gen`; the account's role is read
 * again on every request, so a role change or a removal applies at once
 * and a new password ends the old sessions. */
#ifndef PA_ADMIN_SESSION_H
#define PA_ADMIN_SESSION_H

#include "admin_app.h"
#include "http_api.h"
#include "redis_keys.h"
#include "user_store.h"

#define SESSION_COOKIE "pa_session"

typedef struct session_info {
    char user[USER_NAME_MAX + 1]; /* the account logged in */
    admin_role role;              /* its role now (read from the account, not the session) */
    char csrf[48];                /* the token changes must carry in X-CSRF-Token */
    long long expires_at;         /* unix seconds: now + --session-ttl-s, as pushed forward */
    char key[PA_RKEY_MAX];        /* admin:session:HEX, for logout */
} session_info;

/* The login bucket script (admin_app.c registers it). */
extern const char session_bucket_lua[];

/* Finds the session of the cookie value and pushes its expiry forward.
 * Returns 1 (found, *out filled), 0 (none, expired, or its account is
 * gone or has a new password), -1 (Redis failed). */
int session_lookup(rstore *r, const admin_app *app, const char *cookie, session_info *out);

/* Sends the cookie again with a fresh Max-Age (every logged-in answer). */
void session_refresh_cookie(const http_request *rq, const char *cookie);

/* The routes: POST (log in), GET (who am I), DELETE (log out). */
void session_login(const http_request *rq);
void session_get(const http_request *rq);
void session_logout(const http_request *rq);

#endif
