/* discovery.h -- (internal) which activation servers to try, in which order. */
#ifndef PA_DISCOVERY_H
#define PA_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mdns_browse.h"

/* One SRV answer. */
typedef struct srv_record {
    char host[256];        /* target name; "." means "no service here" */
    uint16_t port;
    uint16_t priority;     /* lower priorities are tried first */
    uint16_t weight;       /* share of first picks among equal priority */
} srv_record;

/* One server to try. */
typedef struct endpoint {
    char name[300];        /* "host:port" shown to users and remembered as last good */
    char target[400];      /* what gRPC dials: always "ipv4:", "ipv6:" or "dns:" + a checked host */
    char tls_name[256];    /* the name its certificate must carry when the target is an address (mDNS:
                              the announced host); "": the target's host */
} endpoint;

/* At most this many SRV records of one answer are used (the rest are ignored). */
#define SRV_MAX_RECORDS 32

/* A host name as RFC 1035 / 1123 allow: dot-separated labels of 1-63
 * letters, digits and hyphens, not starting or ending with a hyphen, at most
 * 253 characters, an optional final dot, and a last label that is not all
 * digits (so an IPv4 address is not taken for a name). */
bool host_name_valid(const char *name);

/* Whether host name `name` is `domain` or lies below it (case-insensitive;
 * final dots ignored): the SRV rule of docs/activation-flow.md. */
bool host_in_domain(const char *name, const char *domain);

typedef uint32_t (*rand_fn)(void *arg);

/* Orders `r` as RFC 2782 says: ascending priority; within a priority, a
 * weighted random order. Pure apart from `rnd`. */
void srv_order(srv_record *r, size_t n, rand_fn rnd, void *rnd_arg);

/* Asks DNS for _activation._tcp.<domain> SRV records with c-ares, at
 * `dns_server` ("IP:PORT"; NULL: the system's resolver). *out is malloc'd
 * (free it); records naming "." are dropped, and records beyond
 * SRV_MAX_RECORDS ignored. Returns 0 or -1 with `err`. */
int srv_lookup(const char *domain, const char *dns_server, int timeout_ms, srv_record **out, size_t *n,
               char *err, size_t errlen);

/* The part of srv_lookup after the network: parses a raw DNS answer (abuf,
 * alen bytes) and keeps the records srv_lookup would return, in answer
 * order. Returns ARES_SUCCESS with *out malloc'd (free it; *n may be 0), or
 * the c-ares error with *out NULL. */
int srv_parse_answer(const unsigned char *abuf, int alen, srv_record **out, size_t *n);

/* Builds endpoints from SRV records of `domain`, already ordered, keeping
 * their order. A record is used only when its target is a valid host name
 * inside `domain` (host_name_valid, host_in_domain): DNS answers are not
 * authenticated, and with TLS the certificate is checked against the target,
 * so a target elsewhere could bring a certificate of its own. Names are
 * resolved by gRPC ("dns:" targets), through `dns_server` when given.
 * *out is malloc'd. Returns 0, or -1 with `err` naming why no record was
 * usable (or out of memory). */
int endpoints_from_srv(const srv_record *r, size_t n, const char *domain, const char *dns_server, endpoint **out,
                       size_t *n_out, char *err, size_t errlen);

/* Builds endpoints from an explicit "host:port" list ("[v6]:port" for IPv6
 * literals); checks each entry: an IPv4 or IPv6 literal, or a valid host
 * name, and a port in 1..65535. */
int endpoints_from_list(const char *const *servers, size_t n, endpoint **out, size_t *n_out, char *err,
                        size_t errlen);

/* Builds endpoints from resolved mDNS services, keeping their order: each
 * is dialled at its address ("ipv4:ADDR:PORT", "ipv6:[ADDR]:PORT") and its
 * certificate checked against its announced host (tls_name), named
 * "HOST:PORT". A service is used only when its host is a valid host name
 * inside "local" (the mDNS domain) and its address an IP literal: the
 * answers are not authenticated. Returns 0, or -1 with `err` naming why
 * none was usable (or out of memory). */
int endpoints_from_mdns(const mdns_service *s, size_t n, endpoint **out, size_t *n_out, char *err, size_t errlen);

/* Moves the endpoint called `name` (the last good server) to the front. */
void endpoints_prefer(endpoint *e, size_t n, const char *name);

#endif
