/* mdns_browse.h -- (internal) on-premises activation servers found on the
 * LAN by DNS-SD over mDNS, through the Avahi daemon (docs/machines.md,
 * "Finding an on-premises server on the LAN"). */
#ifndef PA_MDNS_BROWSE_H
#define PA_MDNS_BROWSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc_methods.h" /* PA_MDNS_SERVICE_TYPE, PA_MDNS_TXT_VERSION */
/* At most this many services of one browse are resolved (the rest are ignored). */
#define MDNS_MAX_SERVICES 16
/* Room for the TXT order list: comma-separated 8-digit serials. */
#define MDNS_ORDERS_MAX 256

/* One resolved service. */
typedef struct mdns_service {
    char host[256];               /* the announced host name ("HOST.local"): the certificate names it */
    char address[64];             /* its address as the resolver gave it (IPv4 or IPv6 text): dialled */
    uint16_t port;                /* the installer port */
    char orders[MDNS_ORDERS_MAX]; /* TXT order: serials the server holds, comma-separated; "" if none */
} mdns_service;

/* Reads one service's TXT strings (`items[i]` of `lens[i]` bytes, not
 * NUL-terminated, as DNS carries them): "v" must be PA_MDNS_TXT_VERSION; "order", when
 * present, a comma-separated list of 8-digit serials, copied into `orders`;
 * other keys are ignored. Returns 0, or -1 with `why` naming what is wrong. */
int mdns_txt_read(const uint8_t *const *items, const size_t *lens, size_t n, char orders[MDNS_ORDERS_MAX], char *why,
                  size_t whylen);

/* Whether the TXT order list `orders` names `serial`. */
bool mdns_orders_have(const char *orders, const char *serial);

/* Moves the services whose order list names `serial` (the stored license's
 * order) to the front, keeping the order within each part: that server
 * holds this machine's seat. NULL or "": nothing moves. */
void mdns_prefer_order(mdns_service *s, size_t n, const char *serial);

/* Browses for PA_MDNS_SERVICE_TYPE in the local domain through the Avahi
 * daemon (its D-Bus system bus: DBUS_SYSTEM_BUS_ADDRESS or the default)
 * and resolves the answers that come within `timeout_ms`, stopping early
 * once Avahi says it has nothing more for now and every answer is
 * resolved. *out is malloc'd (free it); services are in the order they
 * resolved, each host/address/port once; link-local IPv6 addresses and
 * services whose TXT is not ours are skipped. Returns 0 with at least one
 * service, or -1 with `err` ("mDNS: ..."), e.g. "mDNS: the Avahi daemon is
 * not running". */
int mdns_browse(int timeout_ms, mdns_service **out, size_t *n, char *err, size_t errlen);

#endif
