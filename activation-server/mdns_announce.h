/* mdns_announce.h -- an on-premises activation server announcing itself on
 * the LAN by DNS-SD over mDNS, through the Avahi daemon (--mdns-announce
 * NAME; docs/machines.md, "Finding an on-premises server on the LAN").
 *
 *   mdns_announce *m = mdns_announce_start(&(mdns_announce_config){
 *       .name = "Activation (Example Corp)", .port = 50051,
 *       .read_orders = fn, .arg = x, .refresh_ms = 10000}, err, sizeof err);
 *   ...
 *   mdns_announce_stop(m);
 *
 * Service PA_MDNS_SERVICE_TYPE on `port`, TXT "v=1" and, when the server
 * holds orders, "order=SERIAL[,SERIAL...]". The announcement runs on its
 * own thread (an Avahi threaded poll) and never stops the server: Avahi
 * away at start, or restarted later, is logged (server.mdns_failed) and the
 * service announced again once the daemon is back; a name taken on the LAN
 * is given up for Avahi's alternative ("NAME #2"). Each announcement that
 * holds is logged as server.mdns_announced with the name in use. */
#ifndef PA_MDNS_ANNOUNCE_H
#define PA_MDNS_ANNOUNCE_H

#include <stddef.h>
#include <stdint.h>

/* Writes the TXT order value (comma-separated serials; "" for none) into
 * buf. 0, or -1 when it cannot be told now (the last value is kept). Runs
 * on the announcement's thread. */
typedef int (*mdns_orders_fn)(void *arg, char *buf, size_t n);

typedef struct mdns_announce_config {
    const char *name;           /* the service instance name people see (--mdns-announce), copied */
    uint16_t port;              /* the installer port: where the announced host serves installers */
    mdns_orders_fn read_orders; /* the orders for TXT "order="; NULL: never named */
    void *arg;                  /* read_orders's argument; outlives the announcement */
    int refresh_ms;             /* read_orders again this often, updating the TXT on a change; 0: at start only */
} mdns_announce_config;

typedef struct mdns_announce mdns_announce;

/* Whether `name` can be announced (1-63 bytes of UTF-8, Avahi's rule). */
int mdns_announce_name_valid(const char *name);

/* Starts announcing. NULL with `err` only when the announcement cannot
 * run at all (out of memory, no thread); an absent Avahi daemon is not an
 * error. */
mdns_announce *mdns_announce_start(const mdns_announce_config *c, char *err, size_t errlen);

/* Withdraws the service and stops the thread. NULL is fine. */
void mdns_announce_stop(mdns_announce *m);

#endif
