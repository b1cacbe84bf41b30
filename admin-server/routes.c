/* routes.c -- every route of the admin API, one line each, grouped by area
 * (docs/admin.md, "Routes"): method, path pattern, least role, handler,
 * summary. The server checks the role before the handler runs; the
 * OpenAPI document (openapi.c) is made from this table. */
#include "export_api.h"
#include "http_api.h"
#include "machines_api.h"
#include "machines_control.h"
#include "openapi.h"
#include "orders_api.h"
#include "organisations.h"
#include "revocations.h"
#include "session.h"
#include "threats_api.h"
#include "trail.h"
#include "users_api.h"
#include "webhooks_api.h"

const http_route admin_routes[] = {
    {"GET", "/api/v1/openapi.json", ROLE_NONE, openapi_get, "The OpenAPI 3.0 document of every route"},

    /* sessions */
    {"POST", "/api/v1/session", ROLE_NONE, session_login, "Log in: {user, password}; sets the pa_session cookie"},
    {"GET", "/api/v1/session", ROLE_NONE, session_get, "Who is logged in, the role and the CSRF token"},
    {"DELETE", "/api/v1/session", ROLE_VIEWER, session_logout, "Log out"},

    /* accounts */
    {"GET", "/api/v1/users", ROLE_ADMIN, users_list, "Operator accounts"},
    {"POST", "/api/v1/users", ROLE_ADMIN, users_create, "Create an account: {name, role, password}"},
    {"PATCH", "/api/v1/users/{name}", ROLE_ADMIN, users_update, "Change an account's role and/or password"},
    {"DELETE", "/api/v1/users/{name}", ROLE_ADMIN, users_remove, "Remove an account"},

    /* machines (a literal segment such as /api/v1/machines/export beats
     * /api/v1/machines/{id} wherever it stands in the table) */
    {"GET", "/api/v1/machines", ROLE_VIEWER, machines_search,
     "Search machines: group, serial, order, hostname, ip, mac, host_serial (exact, or prefix with a trailing *), "
     "status, from, to (last contact), limit, cursor"},
    {"GET", "/api/v1/machines/{id}", ROLE_VIEWER, machines_get, "One machine and its recent history"},

    /* orders and organisations (orders_api.h, organisations.h) */
    {"GET", "/api/v1/orders", ROLE_VIEWER, orders_list, "Orders; q: customer or serial prefix, organisation: its id"},
    {"POST", "/api/v1/orders", ROLE_OPERATOR, orders_import, "Import an order file (body: the .license bytes)"},
    {"GET", "/api/v1/orders/{serial}", ROLE_VIEWER, orders_get, "One order: terms, seats used and free, warning"},
    {"POST", "/api/v1/orders/{serial}/retire", ROLE_OPERATOR, orders_retire, "Retire an order"},
    {"PUT", "/api/v1/orders/{serial}/machine-match", ROLE_OPERATOR, orders_set_match,
     "Component matching of a volume order's machines: {machine_match: K 1-16, or 0 / \"exact\"}"},
    {"PUT", "/api/v1/orders/{serial}/organisation", ROLE_OPERATOR, organisations_assign,
     "Move an order: {organisation: id or null}"},
    {"GET", "/api/v1/organisations", ROLE_VIEWER, organisations_list, "Organisations"},
    {"POST", "/api/v1/organisations", ROLE_OPERATOR, organisations_create, "Create an organisation: {name}"},
    {"PATCH", "/api/v1/organisations/{id}", ROLE_OPERATOR, organisations_rename, "Rename an organisation: {name}"},

    /* seat controls of volume orders (machines_control.h) */
    {"POST", "/api/v1/machines/{id}/approve", ROLE_OPERATOR, machines_approve,
     "Approve a machine's deactivation request (id: ORDER-DIGEST)"},
    {"POST", "/api/v1/machines/{id}/deny", ROLE_OPERATOR, machines_deny, "Deny a machine's deactivation request"},
    {"POST", "/api/v1/machines/{id}/deactivate", ROLE_OPERATOR, machines_deactivate,
     "Deactivate a machine now (its seat frees)"},
    {"POST", "/api/v1/orders/{serial}/designated", ROLE_OPERATOR, designated_add,
     "Designate a device: {machine | serial | mac}"},
    {"DELETE", "/api/v1/orders/{serial}/designated", ROLE_OPERATOR, designated_remove,
     "Remove a designated device: {machine | serial | mac}"},
    {"GET", "/api/v1/approvals", ROLE_VIEWER, approvals_list, "Machines awaiting deactivation approval"},

    /* revocations (revocations.h) */
    {"POST", "/api/v1/revocations", ROLE_OPERATOR, revocations_create, "Revoke a key: {group, serial, reason}"},
    {"GET", "/api/v1/revocations", ROLE_VIEWER, revocations_list, "Revocations, newest first"},

    /* admin trail */
    {"GET", "/api/v1/trail", ROLE_VIEWER, trail_list, "The admin trail, newest first, filtered and paged"},

    /* threat view */
    {"GET", "/api/v1/threats", ROLE_VIEWER, threats_get,
     "Per group and time bucket: attempts, not genuine (and rate), rate-limited, grants, machine limit, revocations; "
     "the top refusing addresses"},

    /* webhooks */
    {"GET", "/api/v1/webhooks", ROLE_ADMIN, webhooks_list, "Webhook endpoints (without their secrets)"},
    {"POST", "/api/v1/webhooks", ROLE_ADMIN, webhooks_create,
     "Add an endpoint: {url, events}; the answer shows its secret, once"},
    {"DELETE", "/api/v1/webhooks/{id}", ROLE_ADMIN, webhooks_delete, "Remove an endpoint"},
    {"GET", "/api/v1/webhooks/deliveries", ROLE_ADMIN, webhooks_deliveries, "The delivery log, newest first, paged"},
    /* exports: every matching row as a download (export_api.h) */
    {"GET", "/api/v1/machines/export", ROLE_VIEWER, export_machines,
     "The machine search's result as a download: ?format=csv|json|xlsx and the search's filters"},
    {"GET", "/api/v1/trail/export", ROLE_VIEWER, export_trail,
     "The admin trail as a download: ?format=csv|json|xlsx and the trail's filters"},
};
const size_t admin_n_routes = sizeof admin_routes / sizeof *admin_routes;
