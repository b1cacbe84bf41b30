/* discovery.h -- (internal) which activation servers to try, in which order. */
#ifndef PA_DISCOVERY_H
#define PA_DISCOVERY_H

#include <stddef.h>
#include <stdint.h>

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
    char target[400];      /* what gRPC dials (may name the DNS server to resolve with) */
} endpoint;

typedef uint32_t (*rand_fn)(void *arg);

/* Orders `r` as RFC 2782 says: ascending priority; within a priority, a
 * weighted random order. Pure apart from `rnd`. */
void srv_order(srv_record *r, size_t n, rand_fn rnd, void *rnd_arg);

/* Asks DNS for _activation._tcp.<domain> SRV records with c-ares, at
 * `dns_server` ("IP:PORT"; NULL: the system's resolver). *out is malloc'd
 * (free it); records naming "." are dropped. Returns 0 or -1 with `err`. */
int srv_lookup(const char *domain, const char *dns_server, int timeout_ms, srv_record **out, size_t *n,
               char *err, size_t errlen);

/* The part of srv_lookup after the network: parses a raw DNS answer (abuf,
 * alen bytes) and keeps the records srv_lookup would return, in answer
 * order. Returns ARES_SUCCESS with *out malloc'd (free it; *n may be 0), or
 * the c-ares error with *out NULL. */
int srv_parse_answer(const unsigned char *abuf, int alen, srv_record **out, size_t *n);

/* Builds endpoints from SRV records, already ordered; names are resolved by
 * gRPC, through `dns_server` when given. *out is malloc'd. */
int endpoints_from_srv(const srv_record *r, size_t n, const char *dns_server, endpoint **out, size_t *n_out);

/* Builds endpoints from an explicit "host:port" list; checks each entry. */
int endpoints_from_list(const char *const *servers, size_t n, endpoint **out, size_t *n_out, char *err,
                        size_t errlen);

/* Moves the endpoint called `name` (the last good server) to the front. */
void endpoints_prefer(endpoint *e, size_t n, const char *name);

#endif
