/* client_address.c -- trusted proxies and the forwarded client address
 * (see client_address.h).
 *
 * Every address is kept as 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d,
 * its prefix length + 96), so one comparison covers both families. The list
 * is short (a few proxies) and read-only after start-up: a linear walk, no
 * locks. */
#include "client_address.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORWARDED_MAX 4096 /* longer headers are ignored: the peer is charged */

typedef struct net {
    uint8_t addr[16];
    int prefix; /* 0..128 */
} net;

struct trusted_proxies {
    size_t n;
    net nets[];
};

/* Address text (no port, no brackets) to 16 bytes; false if it is none. */
static bool to16(const char *ip, uint8_t out[16], bool *v4) {
    struct in_addr a4;
    if (inet_pton(AF_INET, ip, &a4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        *v4 = true;
        return true;
    }
    *v4 = false;
    return inet_pton(AF_INET6, ip, out) == 1;
}

static bool in_net(const net *n, const uint8_t a[16]) {
    int bits = n->prefix;
    for (int i = 0; bits > 0; i++, bits -= 8) {
        uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
        if ((a[i] & mask) != (n->addr[i] & mask)) return false;
    }
    return true;
}

static bool parse_net(const char *text, net *out, char *err, size_t errlen) {
    char ip[CLIENT_ADDRESS_MAX];
    const char *slash = strchr(text, '/');
    size_t len = slash ? (size_t)(slash - text) : strlen(text);
    bool v4;
    if (len == 0 || len >= sizeof ip) goto bad;
    memcpy(ip, text, len);
    ip[len] = '\0';
    if (!to16(ip, out->addr, &v4)) goto bad;
    int max = v4 ? 32 : 128, prefix = max;
    if (slash) {
        char *end;
        long p = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || p < 0 || p > max) goto bad;
        prefix = (int)p;
    }
    out->prefix = v4 ? prefix + 96 : prefix;
    return true;
bad:
    snprintf(err, errlen, "--trusted-proxy: \"%s\" is not an IPv4 or IPv6 address or CIDR block", text);
    return false;
}

trusted_proxies *trusted_proxies_new(const char *const *cidrs, size_t n, char *err, size_t errlen) {
    trusted_proxies *t = calloc(1, sizeof *t + n * sizeof(net));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!parse_net(cidrs[i], &t->nets[i], err, errlen)) {
            free(t);
            return NULL;
        }
    }
    t->n = n;
    return t;
}

void trusted_proxies_free(trusted_proxies *t) { free(t); }

static bool contains16(const trusted_proxies *t, const uint8_t a[16]) {
    for (size_t i = 0; t && i < t->n; i++)
        if (in_net(&t->nets[i], a)) return true;
    return false;
}

bool trusted_proxies_contain(const trusted_proxies *t, const char *ip) {
    uint8_t a[16];
    bool v4;
    return to16(ip, a, &v4) && contains16(t, a);
}

/* 16 bytes to canonical text, IPv4-mapped as IPv4. */
static void text_of(const uint8_t a[16], char out[CLIENT_ADDRESS_MAX]) {
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, mapped, 12) == 0) inet_ntop(AF_INET, a + 12, out, CLIENT_ADDRESS_MAX);
    else inet_ntop(AF_INET6, a, out, CLIENT_ADDRESS_MAX);
}

/* One list entry [s, e): "ip", "ipv4:port", "[ipv6]" or "[ipv6]:port",
 * with blanks around it. False if it is no address. */
static bool parse_entry(const char *s, const char *e, uint8_t out[16]) {
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    char ip[CLIENT_ADDRESS_MAX];
    if (s < e && *s == '[') {
        const char *close = memchr(s, ']', (size_t)(e - s));
        if (!close) return false;
        s++;
        e = close;
    } else {
        const char *colon = memchr(s, ':', (size_t)(e - s));
        if (colon && !memchr(colon + 1, ':', (size_t)(e - colon - 1))) e = colon; /* IPv4:port */
    }
    size_t len = (size_t)(e - s);
    if (len == 0 || len >= sizeof ip) return false;
    memcpy(ip, s, len);
    ip[len] = '\0';
    bool v4;
    return to16(ip, out, &v4);
}

void client_address_resolve(const trusted_proxies *t, const char *peer_ip, const char *forwarded,
                            char out[CLIENT_ADDRESS_MAX]) {
    uint8_t client[16], hop[16];
    bool v4;
    if (!to16(peer_ip, client, &v4)) {
        snprintf(out, CLIENT_ADDRESS_MAX, "%s", peer_ip); /* e.g. a unix socket: as is */
        return;
    }
    if (forwarded && contains16(t, client)) {
        /* Right to left: each hop was written by the (trusted) hop after it. */
        const char *end = forwarded + strlen(forwarded);
        for (;;) {
            const char *start = end;
            while (start > forwarded && start[-1] != ',') start--;
            if (!parse_entry(start, end, hop)) break;
            memcpy(client, hop, sizeof client);
            if (!contains16(t, hop) || start == forwarded) break;
            end = start - 1;
        }
    }
    text_of(client, out);
}

const char *client_address(const trusted_proxies *t, rpc_ctx *ctx, char out[CLIENT_ADDRESS_MAX]) {
    const char *peer = rpc_ctx_peer_ip(ctx);
    if (!t || t->n == 0 || !trusted_proxies_contain(t, peer)) {
        client_address_resolve(NULL, peer, NULL, out);
        return out;
    }
    /* Several header entries are one list, in order. */
    char list[FORWARDED_MAX];
    size_t used = 0;
    bool usable = true;
    for (size_t i = 0;; i++) {
        if (used + 1 >= sizeof list) {
            usable = false;
            break;
        }
        if (i > 0) list[used++] = ',';
        int n = rpc_ctx_metadata(ctx, CLIENT_FORWARDED_HEADER, i, list + used, sizeof list - used);
        if (n < 0) {
            if (i > 0) used--; /* no such entry: take back the comma */
            break;
        }
        if ((size_t)n >= sizeof list - used) {
            usable = false;
            break;
        }
        used += (size_t)n;
    }
    list[used] = '\0';
    client_address_resolve(t, peer, usable && used > 0 ? list : NULL, out);
    return out;
}
