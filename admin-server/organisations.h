/* organisations.h -- organisations: named groups of orders, so operators
 * find a customer's orders together (docs/admin.md, "Routes").
 *
 * An organisation is admin:org:ID (name, its folded form, created_at), its
 * ID in admin:orgs, its folded name in admin:org:names (lower-cased ASCII,
 * so "Example" and "example" are one name); an order's organisation is
 * admin:org:of:SERIAL. A name is 1..80 characters (code points) of UTF-8
 * without control characters. Create and rename check the name and write
 * in one script call, so two callers racing for a name cannot both get it.
 * IDs come from INCR admin:org:next and are never reused. */
#ifndef PA_ADMIN_ORGANISATIONS_H
#define PA_ADMIN_ORGANISATIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_api.h"

#define ORGANISATION_NAME_MAX 80 /* characters */

/* `text` as an organisation ID (decimal, 1..UINT32_MAX). */
bool organisation_parse_id(const char *text, uint32_t *id);

/* The organisation of an order: *id = 0 when it has none. 0, or -1 with err. */
int organisation_of(rstore *r, const char *serial, uint32_t *id, char *err, size_t errlen);

void organisations_create(const http_request *rq); /* POST /api/v1/organisations {"name"} */
void organisations_list(const http_request *rq);   /* GET /api/v1/organisations?limit=&cursor= */
void organisations_rename(const http_request *rq); /* PATCH /api/v1/organisations/{id} {"name"} */
void organisations_assign(const http_request *rq); /* PUT /api/v1/orders/{serial}/organisation {"organisation"} */

#endif
