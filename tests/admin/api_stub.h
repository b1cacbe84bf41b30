/* api_stub.h -- calls an admin route handler directly, without the HTTP
 * server: the http_api.h functions a handler uses, implemented over a
 * captured answer (status, JSON body) and trail.
 *
 * It lets the tests of the order, organisation, machine and revocation
 * routes check each handler's answers against a real Redis A (as the admin
 * user) and real servers; sessions, roles and CSRF are the HTTP server's
 * and are tested through it. */
#ifndef PA_TEST_API_STUB_H
#define PA_TEST_API_STUB_H

#include <jansson.h>
#include <stddef.h>

#include "http_api.h"

typedef struct api_result {
    int status;      /* the answer's status; 0 when the handler gave none */
    int answers;     /* how many times it answered (must be 1) */
    json_t *body;    /* the JSON answered (an error's too) */
    int trails;      /* http_trail calls */
    char trail[512]; /* the last one: "ACTION TARGET RESULT" */
} api_result;

/* Calls `h` as user "tester" (operator) with `params` (path placeholders,
 * NULL-terminated, may be NULL), `query` ("a=1&b=2", NULL: none) and the
 * body (NULL: none). */
api_result api_call(http_handler h, rstore *r, const char *method, const char *const *params, const char *query,
                    const char *body, size_t body_len);

/* The same with a NUL-terminated body. */
api_result api_call_json(http_handler h, rstore *r, const char *method, const char *const *params, const char *query,
                         const char *body);

void api_result_clear(api_result *a);

/* The error message of an error answer ("" if none). */
const char *api_error(const api_result *a);

#endif
