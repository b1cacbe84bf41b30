/* fuzz_mdns.c -- libFuzzer target for what the installer reads from mDNS
 * once Avahi resolved an answer: the TXT strings (mdns_txt_read) and the
 * announced host, address and port (endpoints_from_mdns), as
 * mdns_browse.c and client.c use them. Anyone on the LAN may announce.
 *
 * Input: length-prefixed strings (one length byte each, as DNS TXT data):
 * the host, the address, the port (two bytes, big-endian), then the TXT
 * strings. The target checks, beyond memory safety:
 *   - an accepted TXT has "v=1" among its strings, and its order list is
 *     NUL-terminated, empty or 8-digit serials separated by commas, each of
 *     which mdns_orders_have finds;
 *   - an endpoint is made only from a valid host name inside .local, a port
 *     other than 0 and an IP literal; it is "ipv4:ADDR:PORT" or
 *     "ipv6:[ADDR]:PORT" (nothing else reaches gRPC), named "HOST:PORT", its
 *     tls_name the host without a final dot;
 *   - mdns_prefer_order keeps every service, those naming the serial first. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery.h"
#include "fuzz_util.h"
#include "mdns_browse.h"

enum { ITEMS_MAX = 40 };

/* The next length-prefixed string into item/len; false at the end. */
static bool next_item(const uint8_t **p, const uint8_t *end, const uint8_t **item, size_t *len) {
    if (*p >= end) return false;
    size_t n = **p;
    if ((size_t)(end - *p - 1) < n) n = (size_t)(end - *p - 1);
    *item = *p + 1;
    *len = n;
    *p += 1 + n;
    return true;
}

static void check_orders(const char *orders) {
    size_t len = strlen(orders);
    CHECK(len < MDNS_ORDERS_MAX);
    if (len == 0) return;
    CHECK(len % 9 == 8);
    for (size_t i = 0; i < len; i++) CHECK(i % 9 == 8 ? orders[i] == ',' : isdigit((unsigned char)orders[i]));
    for (size_t i = 0; i < len; i += 9) {
        char serial[9];
        memcpy(serial, orders + i, 8);
        serial[8] = '\0';
        CHECK(mdns_orders_have(orders, serial));
    }
}

static bool has_version(const uint8_t *const *items, const size_t *lens, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (lens[i] == 3 && memcmp(items[i], "v=1", 3) == 0) return true;
    return false;
}

static void check_endpoint(const mdns_service *s) {
    endpoint *e = NULL;
    size_t n = 0;
    char err[300];
    struct in_addr a4;
    struct in6_addr a6;
    bool v4 = inet_pton(AF_INET, s->address, &a4) == 1, v6 = !v4 && inet_pton(AF_INET6, s->address, &a6) == 1;
    bool usable = host_name_valid(s->host) && host_in_domain(s->host, "local") && s->port && (v4 || v6);
    int rc = endpoints_from_mdns(s, 1, &e, &n, err, sizeof err);
    if (!usable) {
        CHECK(rc == -1 && e == NULL && n == 0 && strncmp(err, "mDNS: ", 6) == 0);
        return;
    }
    CHECK(rc == 0 && n == 1);
    size_t hlen = strlen(s->host);
    if (s->host[hlen - 1] == '.') hlen--;
    char want[400];
    snprintf(want, sizeof want, v4 ? "ipv4:%s:%u" : "ipv6:[%s]:%u", s->address, (unsigned)s->port);
    CHECK(strcmp(e[0].target, want) == 0);
    snprintf(want, sizeof want, "%.*s:%u", (int)hlen, s->host, (unsigned)s->port);
    CHECK(strcmp(e[0].name, want) == 0);
    CHECK(strlen(e[0].tls_name) == hlen && memcmp(e[0].tls_name, s->host, hlen) == 0);
    free(e);
}

static void check_prefer(const mdns_service *s) {
    mdns_service list[3] = {*s, *s, *s};
    snprintf(list[0].orders, sizeof list[0].orders, "%s", "");
    snprintf(list[2].orders, sizeof list[2].orders, "%s", "12345678");
    mdns_prefer_order(list, 3, "12345678");
    CHECK(mdns_orders_have(list[0].orders, "12345678"));
    size_t named = mdns_orders_have(s->orders, "12345678") ? 2 : 1;
    for (size_t i = 0; i < 3; i++) CHECK(mdns_orders_have(list[i].orders, "12345678") == (i < named));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *p = data, *end = data + size, *item;
    size_t len;
    mdns_service s = {0};
    if (!next_item(&p, end, &item, &len)) return 0;
    memcpy(s.host, item, len < sizeof s.host ? len : sizeof s.host - 1);
    if (!next_item(&p, end, &item, &len)) return 0;
    memcpy(s.address, item, len < sizeof s.address ? len : sizeof s.address - 1);
    if (!next_item(&p, end, &item, &len)) return 0;
    s.port = len == 2 ? (uint16_t)(item[0] << 8 | item[1]) : 0;
    const uint8_t *items[ITEMS_MAX];
    size_t lens[ITEMS_MAX], n = 0;
    while (n < ITEMS_MAX && next_item(&p, end, &items[n], &lens[n])) n++;
    char why[200] = "";
    memset(s.orders, 'x', sizeof s.orders); /* must be overwritten */
    int rc = mdns_txt_read(items, lens, n, s.orders, why, sizeof why);
    if (rc != 0) {
        CHECK(rc == -1 && why[0] && strncmp(why, "TXT ", 4) == 0);
        return 0;
    }
    CHECK(has_version(items, lens, n));
    check_orders(s.orders);
    if (strlen(s.host) > 0) check_endpoint(&s);
    check_prefer(&s);
    return 0;
}
