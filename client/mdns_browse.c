/* mdns_browse.c -- finding on-premises activation servers on the LAN by
 * DNS-SD over mDNS (_pa-activation._tcp.local), through the Avahi daemon.
 *
 * mDNS is asked only when the caller enables it (pa_options.mdns): a
 * customer's own server in the customer's own network, found with no DNS
 * set up and no server name typed. Avahi is the machine's one mDNS stack
 * (it owns UDP port 5353 and the multicast cache), so the client talks to
 * it over D-Bus instead of speaking mDNS itself; this file is the only one
 * that includes Avahi's headers.
 *
 * One browse is a short, private event loop: an avahi_simple_poll, a
 * client, one service browser, and a resolver per answer, all bounded by
 * the caller's timeout. It ends early once Avahi reports "all for now" (its
 * cache is read and the first query round is over) and every answer is
 * resolved, so a LAN with a server costs about a second, not the whole
 * timeout. Nothing is kept between browses.
 *
 * mDNS answers are not authenticated: anyone on the LAN may announce.
 * They only ever become "ipv4:ADDR:PORT" / "ipv6:[ADDR]:PORT" targets
 * (discovery.c, endpoints_from_mdns), the announced host name must be a
 * valid name inside .local, and TLS checks the server's certificate
 * against that host name; a license is accepted only through the vendor's
 * keys in any case. The TXT record is checked too: "v=1" (a later,
 * incompatible announcement is skipped rather than misread) and "order=",
 * the serials of the orders the server holds (used to prefer the server
 * holding this machine's seat). */
#include "mdns_browse.h"

#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-common/address.h>
#include <avahi-common/error.h>
#include <avahi-common/simple-watch.h>
#include <avahi-common/strlst.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

/* ---- TXT ------------------------------------------------------------------- */

/* Whether `v` (len bytes) is a comma-separated list of 8-digit serials. */
static bool serial_list_valid(const uint8_t *v, size_t len) {
    size_t digits = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || v[i] == ',') {
            if (digits != 8) return false;
            digits = 0;
        } else if (isdigit(v[i])) {
            digits++;
        } else {
            return false;
        }
    }
    return true;
}

int mdns_txt_read(const uint8_t *const *items, const size_t *lens, size_t n, char orders[MDNS_ORDERS_MAX], char *why,
                  size_t whylen) {
    orders[0] = '\0';
    bool have_version = false;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *eq = memchr(items[i], '=', lens[i]);
        size_t klen = eq ? (size_t)(eq - items[i]) : lens[i];
        const uint8_t *v = eq ? eq + 1 : items[i] + lens[i];
        size_t vlen = lens[i] - klen - (eq ? 1 : 0);
        if (klen == 1 && items[i][0] == 'v') {
            have_version = true;
            if (vlen != strlen(PA_MDNS_TXT_VERSION) || memcmp(v, PA_MDNS_TXT_VERSION, vlen) != 0) {
                snprintf(why, whylen, "TXT version is not v=" PA_MDNS_TXT_VERSION);
                return -1;
            }
        } else if (klen == 5 && memcmp(items[i], "order", 5) == 0) {
            if (vlen >= MDNS_ORDERS_MAX || !serial_list_valid(v, vlen)) {
                snprintf(why, whylen, "TXT order is not a list of 8-digit serials");
                return -1;
            }
            memcpy(orders, v, vlen);
            orders[vlen] = '\0';
        }
    }
    if (!have_version) {
        snprintf(why, whylen, "TXT has no v=" PA_MDNS_TXT_VERSION);
        return -1;
    }
    return 0;
}

bool mdns_orders_have(const char *orders, const char *serial) {
    size_t len = strlen(serial);
    if (len == 0) return false;
    for (const char *p = orders; *p;) {
        const char *end = strchr(p, ',');
        size_t item = end ? (size_t)(end - p) : strlen(p);
        if (item == len && memcmp(p, serial, len) == 0) return true;
        if (!end) break;
        p = end + 1;
    }
    return false;
}

void mdns_prefer_order(mdns_service *s, size_t n, const char *serial) {
    if (!serial || !*serial) return;
    size_t front = 0;
    for (size_t k = 0; k < n; k++) {
        if (!mdns_orders_have(s[k].orders, serial)) continue;
        mdns_service t = s[k];
        memmove(&s[front + 1], &s[front], (k - front) * sizeof *s);
        s[front++] = t;
    }
}

/* ---- The browse ------------------------------------------------------------ */

typedef struct browse {
    AvahiSimplePoll *poll; /* the private event loop */
    mdns_service *found;   /* resolved, deduplicated services */
    size_t n;
    int pending;       /* resolvers started and not yet answered */
    int started;       /* resolvers started in all (bounded by MDNS_MAX_SERVICES) */
    bool all_for_now;  /* the browser said nothing more is known for now */
    bool failed;       /* the daemon went away or the browser failed */
    char failure[160]; /* ... why */
    char skipped[200]; /* why the first skipped answer was skipped, for the message */
} browse;

static void note_skip(browse *b, const char *name, const char *why) {
    if (!b->skipped[0]) snprintf(b->skipped, sizeof b->skipped, "\"%.60s\": %s", name, why);
}

/* Whether the service (host, port) is already among the found ones. */
static bool already_found(const browse *b, const char *host, uint16_t port) {
    for (size_t i = 0; i < b->n; i++)
        if (b->found[i].port == port && strcmp(b->found[i].host, host) == 0) return true;
    return false;
}

static bool link_local_v6(const AvahiAddress *a) {
    return a->proto == AVAHI_PROTO_INET6 && a->data.ipv6.address[0] == 0xfe && (a->data.ipv6.address[1] & 0xc0) == 0x80;
}

/* The TXT list as mdns_txt_read takes it. */
static int read_txt(AvahiStringList *txt, char orders[MDNS_ORDERS_MAX], char *why, size_t whylen) {
    enum { TXT_MAX = 32 };
    const uint8_t *items[TXT_MAX];
    size_t lens[TXT_MAX], n = 0;
    for (AvahiStringList *s = txt; s && n < TXT_MAX; s = s->next, n++) {
        items[n] = s->text;
        lens[n] = s->size;
    }
    return mdns_txt_read(items, lens, n, orders, why, whylen);
}

/* Keeps one resolved answer when it is usable; NULL, or why it is not. */
static const char *keep_answer(browse *b, const char *host, const AvahiAddress *a, uint16_t port, AvahiStringList *txt,
                               char *why, size_t whylen) {
    mdns_service s = {.port = port};
    if (read_txt(txt, s.orders, why, whylen) != 0) return why;
    if (port == 0) return "port 0";
    if (link_local_v6(a)) return "only a link-local IPv6 address";
    if (strlen(host) >= sizeof s.host) return "host name too long";
    snprintf(s.host, sizeof s.host, "%s", host);
    if (!avahi_address_snprint(s.address, sizeof s.address, a)) return "unreadable address";
    if (!already_found(b, s.host, port) && b->n < MDNS_MAX_SERVICES) b->found[b->n++] = s;
    return NULL;
}

static void on_resolved(AvahiServiceResolver *r, AvahiIfIndex interface, AvahiProtocol protocol,
                        AvahiResolverEvent event, const char *name, const char *type, const char *domain,
                        const char *host_name, const AvahiAddress *a, uint16_t port, AvahiStringList *txt,
                        AvahiLookupResultFlags flags, void *arg) {
    (void)interface, (void)protocol, (void)type, (void)domain, (void)flags;
    browse *b = arg;
    char why[120];
    const char *skip =
        event == AVAHI_RESOLVER_FOUND ? keep_answer(b, host_name, a, port, txt, why, sizeof why) : "not resolved";
    if (skip) note_skip(b, name, skip);
    b->pending--;
    avahi_service_resolver_free(r);
}

static void on_browse(AvahiServiceBrowser *sb, AvahiIfIndex interface, AvahiProtocol protocol, AvahiBrowserEvent event,
                      const char *name, const char *type, const char *domain, AvahiLookupResultFlags flags, void *arg) {
    (void)flags;
    browse *b = arg;
    switch (event) {
    case AVAHI_BROWSER_NEW:
        if (b->started == MDNS_MAX_SERVICES) return;
        /* The address of the family the answer came over: an IPv4 LAN
         * gives an IPv4 address, never a link-local IPv6 one first. */
        if (!avahi_service_resolver_new(avahi_service_browser_get_client(sb), interface, protocol, name, type, domain,
                                        protocol, 0, on_resolved, b)) {
            note_skip(b, name, "no resolver");
            return;
        }
        b->started++;
        b->pending++;
        return;
    case AVAHI_BROWSER_ALL_FOR_NOW: b->all_for_now = true; return;
    case AVAHI_BROWSER_FAILURE:
        b->failed = true;
        snprintf(b->failure, sizeof b->failure, "mDNS: browsing failed: %s",
                 avahi_strerror(avahi_client_errno(avahi_service_browser_get_client(sb))));
        return;
    case AVAHI_BROWSER_REMOVE:
    case AVAHI_BROWSER_CACHE_EXHAUSTED: return;
    }
}

static void on_client(AvahiClient *c, AvahiClientState state, void *arg) {
    browse *b = arg;
    if (state != AVAHI_CLIENT_FAILURE) return;
    b->failed = true;
    snprintf(b->failure, sizeof b->failure, "mDNS: lost the Avahi daemon: %s", avahi_strerror(avahi_client_errno(c)));
}

/* Runs the loop until every answer is in, or the deadline. */
static void run_browse(browse *b, int timeout_ms) {
    int64_t deadline = pa_mono_ms() + timeout_ms;
    while (!b->failed && !(b->all_for_now && b->pending == 0) && b->n < MDNS_MAX_SERVICES) {
        int64_t left = deadline - pa_mono_ms();
        if (left <= 0 || avahi_simple_poll_iterate(b->poll, (int)left) != 0) return;
    }
}

static int connect_error(int error, char *err, size_t errlen) {
    /* No daemon on the bus, or no system bus at all: either way no Avahi. */
    if (error == AVAHI_ERR_NO_DAEMON || error == AVAHI_ERR_DBUS_ERROR || error == AVAHI_ERR_DISCONNECTED)
        snprintf(err, errlen, "mDNS: the Avahi daemon is not running");
    else snprintf(err, errlen, "mDNS: cannot use the Avahi daemon: %s", avahi_strerror(error));
    return -1;
}

/* The result of a finished browse: the services, or why there are none. */
static int browse_result(browse *b, int timeout_ms, mdns_service **out, size_t *n, char *err, size_t errlen) {
    if (b->n > 0) {
        *out = b->found;
        *n = b->n;
        return 0;
    }
    free(b->found);
    if (b->failed) snprintf(err, errlen, "%s", b->failure);
    else
        snprintf(err, errlen, "mDNS: no activation server (" PA_MDNS_SERVICE_TYPE ") answered within %d ms%s%s%s",
                 timeout_ms, b->skipped[0] ? " (skipped " : "", b->skipped, b->skipped[0] ? ")" : "");
    return -1;
}

int mdns_browse(int timeout_ms, mdns_service **out, size_t *n, char *err, size_t errlen) {
    *out = NULL;
    *n = 0;
    browse b = {.found = calloc(MDNS_MAX_SERVICES, sizeof *b.found)};
    if (!b.found || !(b.poll = avahi_simple_poll_new())) {
        free(b.found);
        snprintf(err, errlen, "mDNS: out of memory");
        return -1;
    }
    int error = 0;
    AvahiClient *client = avahi_client_new(avahi_simple_poll_get(b.poll), 0, on_client, &b, &error);
    if (!client) {
        free(b.found);
        avahi_simple_poll_free(b.poll);
        return connect_error(error, err, errlen);
    }
    AvahiServiceBrowser *sb = avahi_service_browser_new(client, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC,
                                                        PA_MDNS_SERVICE_TYPE, NULL, 0, on_browse, &b);
    if (!sb) {
        b.failed = true;
        snprintf(b.failure, sizeof b.failure, "mDNS: cannot browse: %s", avahi_strerror(avahi_client_errno(client)));
    } else {
        run_browse(&b, timeout_ms);
    }
    avahi_client_free(client); /* frees the browser and any resolver still waiting */
    avahi_simple_poll_free(b.poll);
    return browse_result(&b, timeout_ms, out, n, err, errlen);
}
