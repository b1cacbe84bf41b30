/* mdns_announce.c -- the DNS-SD announcement of an on-premises activation
 * server, through the Avahi daemon (mdns_announce.h).
 *
 * Avahi owns mDNS on the machine (port 5353, probing, conflict rules,
 * answering queries), so the server only registers an entry group with it
 * over D-Bus. Everything runs on one Avahi threaded poll: the client's and
 * the group's callbacks and the two timers (the order refresh, and the
 * retry of a client that could not even be made), so no state is shared
 * with the server's own threads but the configuration read at start.
 *
 * The daemon may be away or come and go (package upgrade, restart): the
 * client is made with AVAHI_CLIENT_NO_FAIL, so it waits for the daemon to
 * appear instead of failing; when a running daemon goes away the client
 * fails with AVAHI_ERR_DISCONNECTED and is made again, waiting likewise.
 * Only when no client can be made at all (no D-Bus system bus) is it
 * retried on a timer. Each of these is logged once as server.mdns_failed,
 * and the announcement comes back without the operator.
 *
 * Names: a service name someone else on the LAN already announces is
 * given up for Avahi's alternative ("NAME #2", then "#3"), as DNS-SD asks;
 * a host name collision (Avahi renames the host) withdraws the group until
 * the daemon runs again under its new name, then announces again. */
#include "mdns_announce.h"

#include <avahi-client/client.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/domain.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/strlst.h>
#include <avahi-common/thread-watch.h>
#include <avahi-common/timeval.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rpc_methods.h"

#define ORDERS_MAX 256 /* one TXT string holds at most 255 bytes */
#define RETRY_MS 5000  /* a client that could not be made is tried again this often */
#define MAX_RENAMES 16 /* alternatives tried at one go before giving up until the next event */

struct mdns_announce {
    AvahiThreadedPoll *poll;    /* the announcement's thread and event loop */
    const AvahiPoll *api;       /* its poll API, for clients and timers */
    AvahiClient *client;        /* NULL while none could be made */
    AvahiEntryGroup *group;     /* the registered service; NULL until the daemon runs */
    char *name;                 /* the service name in use (avahi_malloc'd): renamed on collisions */
    uint16_t port;              /* the installer port */
    char orders[ORDERS_MAX];    /* TXT order value; "" for none */
    mdns_orders_fn read_orders; /* where the orders come from; NULL: none */
    void *arg;
    int refresh_ms;        /* read_orders period; 0: at start only */
    AvahiTimeout *refresh; /* that period's timer; NULL when off */
    AvahiTimeout *retry;   /* makes the client again after RETRY_MS; armed only while there is none */
    char last_error[200];  /* the failure last logged, so a lasting one is logged once */
};

int mdns_announce_name_valid(const char *name) { return name && *name && avahi_is_valid_service_name(name); }

/* Logs server.mdns_failed unless the same failure was the last one logged. */
static void failed(mdns_announce *m, const char *error) {
    if (strcmp(m->last_error, error) == 0) return;
    snprintf(m->last_error, sizeof m->last_error, "%s", error);
    log_warn("server.mdns_failed", LOG_S("name", m->name), LOG_S("error", error), LOG_END);
}

static void failed_avahi(mdns_announce *m, const char *what, int error) {
    char msg[200];
    snprintf(msg, sizeof msg, "%s: %s", what, avahi_strerror(error));
    failed(m, msg);
}

static AvahiStringList *txt_record(const mdns_announce *m) {
    AvahiStringList *txt = avahi_string_list_new("v=" PA_MDNS_TXT_VERSION, NULL);
    if (txt && m->orders[0]) txt = avahi_string_list_add_pair(txt, "order", m->orders);
    return txt;
}

/* Takes Avahi's alternative to a name in use. */
static void rename_service(mdns_announce *m) {
    char *alt = avahi_alternative_service_name(m->name);
    if (!alt) return;
    log_warn("server.mdns_failed", LOG_S("name", m->name), LOG_S("error", "the name is taken on the LAN"),
             LOG_S("retry_as", alt), LOG_END);
    avahi_free(m->name);
    m->name = alt;
}

/* Adds the service to the (empty) group and commits it. */
static void add_service(mdns_announce *m) {
    for (int i = 0; i < MAX_RENAMES; i++) {
        AvahiStringList *txt = txt_record(m);
        if (!txt) {
            failed(m, "out of memory");
            return;
        }
        int r = avahi_entry_group_add_service_strlst(m->group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, 0, m->name,
                                                     PA_MDNS_SERVICE_TYPE, NULL, NULL, m->port, txt);
        avahi_string_list_free(txt);
        if (r == AVAHI_ERR_COLLISION) {
            rename_service(m);
            avahi_entry_group_reset(m->group);
            continue;
        }
        if (r < 0) failed_avahi(m, "cannot add the service", r);
        else if ((r = avahi_entry_group_commit(m->group)) < 0) failed_avahi(m, "cannot register the service", r);
        return;
    }
    failed(m, "every alternative name is taken on the LAN");
}

static void on_group(AvahiEntryGroup *g, AvahiEntryGroupState state, void *arg);

/* The daemon runs: registers the service unless it is registered. */
static void announce(mdns_announce *m) {
    if (!m->group && !(m->group = avahi_entry_group_new(m->client, on_group, m))) {
        failed_avahi(m, "cannot make an entry group", avahi_client_errno(m->client));
        return;
    }
    if (avahi_entry_group_is_empty(m->group)) add_service(m);
}

static void on_group(AvahiEntryGroup *g, AvahiEntryGroupState state, void *arg) {
    mdns_announce *m = arg;
    m->group = g; /* also while avahi_entry_group_new has not returned yet */
    switch (state) {
    case AVAHI_ENTRY_GROUP_ESTABLISHED:
        m->last_error[0] = '\0';
        log_info("server.mdns_announced", LOG_S("name", m->name), LOG_S("type", PA_MDNS_SERVICE_TYPE),
                 LOG_I("port", m->port), LOG_S("orders", m->orders), LOG_END);
        return;
    case AVAHI_ENTRY_GROUP_COLLISION:
        rename_service(m);
        avahi_entry_group_reset(g);
        add_service(m);
        return;
    case AVAHI_ENTRY_GROUP_FAILURE:
        failed_avahi(m, "the announcement failed", avahi_client_errno(avahi_entry_group_get_client(g)));
        return;
    case AVAHI_ENTRY_GROUP_UNCOMMITED:
    case AVAHI_ENTRY_GROUP_REGISTERING: return;
    }
}

static void on_client(AvahiClient *c, AvahiClientState state, void *arg);

/* A new client that waits for the daemon; when none can be made at all,
 * the retry timer tries again. */
static void make_client(mdns_announce *m) {
    int error = 0;
    m->group = NULL;
    m->client = avahi_client_new(m->api, AVAHI_CLIENT_NO_FAIL, on_client, m, &error);
    if (m->client) return;
    failed_avahi(m, "cannot reach the Avahi daemon (retrying)", error);
    struct timeval tv;
    m->api->timeout_update(m->retry, avahi_elapse_time(&tv, RETRY_MS, 0));
}

static void on_retry(AvahiTimeout *t, void *arg) {
    mdns_announce *m = arg;
    m->api->timeout_update(t, NULL);
    if (!m->client) make_client(m);
}

/* The daemon went away (or the connection broke): start over. */
static void reconnect(mdns_announce *m, AvahiClient *c) {
    failed_avahi(m, "lost the Avahi daemon; announcing again once it is back", avahi_client_errno(c));
    avahi_client_free(c); /* frees the group with it */
    m->client = NULL;
    make_client(m);
}

static void on_client(AvahiClient *c, AvahiClientState state, void *arg) {
    mdns_announce *m = arg;
    m->client = c; /* also while avahi_client_new has not returned yet */
    switch (state) {
    case AVAHI_CLIENT_S_RUNNING: announce(m); return;
    case AVAHI_CLIENT_S_COLLISION:
    case AVAHI_CLIENT_S_REGISTERING:
        /* The host is being (re)named: withdraw until it runs again. */
        if (m->group) avahi_entry_group_reset(m->group);
        return;
    case AVAHI_CLIENT_CONNECTING: failed(m, "the Avahi daemon is not running; announcing once it starts"); return;
    case AVAHI_CLIENT_FAILURE: reconnect(m, c); return;
    }
}

/* Reads the orders; true when they changed. */
static bool refresh_orders(mdns_announce *m) {
    char now[ORDERS_MAX];
    if (!m->read_orders || m->read_orders(m->arg, now, sizeof now) != 0 || strcmp(now, m->orders) == 0) return false;
    snprintf(m->orders, sizeof m->orders, "%s", now);
    return true;
}

static void on_refresh(AvahiTimeout *t, void *arg) {
    mdns_announce *m = arg;
    struct timeval tv;
    m->api->timeout_update(t, avahi_elapse_time(&tv, (unsigned)m->refresh_ms, 0));
    if (!refresh_orders(m) || !m->group || avahi_entry_group_is_empty(m->group)) return;
    AvahiStringList *txt = txt_record(m);
    int r = txt ? avahi_entry_group_update_service_txt_strlst(m->group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, 0, m->name,
                                                              PA_MDNS_SERVICE_TYPE, NULL, txt)
                : AVAHI_ERR_NO_MEMORY;
    avahi_string_list_free(txt);
    if (r < 0) {
        failed_avahi(m, "cannot update the TXT record", r);
        return;
    }
    log_info("server.mdns_announced", LOG_S("name", m->name), LOG_S("type", PA_MDNS_SERVICE_TYPE),
             LOG_I("port", m->port), LOG_S("orders", m->orders), LOG_END);
}

static void free_announce(mdns_announce *m) {
    if (m->client) avahi_client_free(m->client);
    if (m->refresh) m->api->timeout_free(m->refresh);
    if (m->retry) m->api->timeout_free(m->retry);
    if (m->poll) avahi_threaded_poll_free(m->poll);
    avahi_free(m->name);
    free(m);
}

mdns_announce *mdns_announce_start(const mdns_announce_config *c, char *err, size_t errlen) {
    mdns_announce *m = calloc(1, sizeof *m);
    if (!m || !(m->name = avahi_strdup(c->name)) || !(m->poll = avahi_threaded_poll_new())) {
        if (m) free_announce(m);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->api = avahi_threaded_poll_get(m->poll);
    m->port = c->port;
    m->read_orders = c->read_orders;
    m->arg = c->arg;
    m->refresh_ms = c->refresh_ms;
    (void)refresh_orders(m); /* before the first announcement, so it names them */
    struct timeval tv;
    m->retry = m->api->timeout_new(m->api, NULL, on_retry, m);
    if (m->read_orders && m->refresh_ms > 0)
        m->refresh = m->api->timeout_new(m->api, avahi_elapse_time(&tv, (unsigned)m->refresh_ms, 0), on_refresh, m);
    if (!m->retry || (m->read_orders && m->refresh_ms > 0 && !m->refresh)) {
        free_announce(m);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    make_client(m);
    if (avahi_threaded_poll_start(m->poll) < 0) {
        free_announce(m);
        snprintf(err, errlen, "cannot start the announcement's thread");
        return NULL;
    }
    return m;
}

void mdns_announce_stop(mdns_announce *m) {
    if (!m) return;
    avahi_threaded_poll_stop(m->poll);
    free_announce(m); /* freeing the client withdraws the service */
}
