/* http_server.h -- the admin server's HTTP(S) server (libmicrohttpd), and
 * the few request details only the server's own routes (session.c) need
 * beyond http_api.h.
 *
 * http_server.c reads a request, checks what http_api.h promises (body
 * size, session, least role, CSRF) and calls the route's handler on one
 * of --http-threads connection threads. */
#ifndef PA_ADMIN_HTTP_SERVER_H
#define PA_ADMIN_HTTP_SERVER_H

#include <stddef.h>

#include "admin_app.h"
#include "http_api.h"

typedef struct http_server http_server;

/* Serves on `listen` ("127.0.0.1:8443", "[::1]:8443"): HTTPS with the PEM
 * texts, or plain HTTP when both are NULL. NULL with a message in err. */
http_server *http_server_start(const admin_app *app, const char *listen, const char *cert_pem, const char *key_pem,
                               char *err, size_t errlen);
/* The port it listens on (useful with port 0). */
int http_server_port(const http_server *s);
/* Stops accepting, gives requests in flight up to drain_ms to finish,
 * then stops. Returns how many were still running (cut short). */
int http_server_stop(http_server *s, int drain_ms);

/* A request header's value, or NULL. */
const char *http_header(const http_request *rq, const char *name);
/* Adds a Set-Cookie header to the reply the handler is about to make. */
void http_set_cookie(const http_request *rq, const char *cookie);
/* The session's CSRF token, NULL when not logged in. */
const char *http_session_csrf(const http_request *rq);
/* The Redis key of the request's session, NULL when not logged in. */
const char *http_session_key(const http_request *rq);

#endif
