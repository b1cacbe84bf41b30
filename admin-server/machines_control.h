/* machines_control.h -- the seat controls of volume orders in the admin API
 * (docs/admin.md, "Routes"; docs/volume.md, "Operator controls"): approve,
 * deny and force a machine's deactivation, designate devices, and the queue
 * of machines awaiting approval.
 *
 * They run the code `activation-server order approve|deny|deactivate|
 * designate|undesignate` runs: volume_decide (one volume.lua call, atomic
 * with the seats) and order_designate (pa_order_admin).
 *
 * A machine is named in the path as ORDER-DIGEST: the order's service
 * serial, '-', the machine digest in hex (32 digits, as `order machines`
 * prints it), e.g. /api/v1/machines/20261201-0f1e.../approve; or by the
 * machine directory's id (16 characters, as GET /api/v1/machines answers
 * it): its order comes from the directory (machine_ref.h, given with
 * machines_control_setup) and its digest from the order's table, whose
 * machines' ids are derived as the directory derives them. The path may
 * also hold "-" and the body {"order": SERIAL, "machine": HEX}. */
#ifndef PA_ADMIN_MACHINES_CONTROL_H
#define PA_ADMIN_MACHINES_CONTROL_H

#include <stddef.h>

#include "http_api.h"

/* The order serial of a directory id: 1 found, 0 none, 2 a retail
 * machine, -1 with err (machine_ref_order). */
typedef int (*machine_order_fn)(rstore *r, const char *id, char *serial, size_t cap, char *err, size_t errlen);

/* How directory ids are looked up (NULL: they are not accepted). */
void machines_control_setup(machine_order_fn lookup);

void machines_approve(const http_request *rq);    /* POST /api/v1/machines/{id}/approve */
void machines_deny(const http_request *rq);       /* POST /api/v1/machines/{id}/deny */
void machines_deactivate(const http_request *rq); /* POST /api/v1/machines/{id}/deactivate */
void designated_add(const http_request *rq);      /* POST /api/v1/orders/{serial}/designated */
void designated_remove(const http_request *rq);   /* DELETE /api/v1/orders/{serial}/designated */
void approvals_list(const http_request *rq);      /* GET /api/v1/approvals?limit=&cursor= */

#endif
