/* client_address.h -- the address a call is charged to.
 *
 * Rate limits, the threat signal and offline-audit records key on the
 * client's address. Behind a load balancer or a gRPC proxy every call
 * arrives from the proxy, so without help all clients would share one
 * address bucket: one noisy client would throttle everyone, and a guesser
 * would hide among the paying customers.
 *
 * A proxy named by --trusted-proxy (an address or a CIDR block, IPv4 or
 * IPv6, repeatable) is believed about its client: the request metadata
 * `x-forwarded-for` (a comma-separated list, one address appended per
 * proxy hop; several entries of the header read as one list in order) is
 * walked from its right end, the hop written by the proxy that connected to
 * us, skipping addresses that are themselves trusted proxies; the first
 * address that is not is the client. If every listed address is trusted,
 * the leftmost one is. From a peer that is not a trusted proxy the header is
 * ignored, so nobody else can pick the bucket they are charged to.
 * `x-real-ip` and the PROXY protocol are not read.
 *
 * Entries may carry a port ("192.0.2.1:5000", "[2001:db8::1]:443"). An entry
 * that is not an address ends the walk at the hop to its right (a trusted
 * proxy, or the peer itself): a proxy that writes nonsense gets its clients
 * charged to itself, never to an address of the sender's choosing. */
#ifndef PA_ACTIVATION_CLIENT_ADDRESS_H
#define PA_ACTIVATION_CLIENT_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "rpc_server.h"

#define CLIENT_ADDRESS_MAX 64 /* room for any IPv6 text */
#define CLIENT_FORWARDED_HEADER "x-forwarded-for"

typedef struct trusted_proxies trusted_proxies;

/* Parses `n` addresses or CIDR blocks ("10.0.0.0/8", "2001:db8::/32",
 * "127.0.0.1"); host bits below the prefix are ignored. NULL with a message
 * naming the bad entry in err. n == 0 gives an empty list (trusts nobody). */
trusted_proxies *trusted_proxies_new(const char *const *cidrs, size_t n, char *err, size_t errlen);
void trusted_proxies_free(trusted_proxies *t);
/* True if the address text `ip` lies in one of the blocks. */
bool trusted_proxies_contain(const trusted_proxies *t, const char *ip);

/* The client address of the call in canonical text (IPv4-mapped IPv6 as
 * IPv4): the peer, or what a trusted peer forwarded (above). `t` may be
 * NULL (trust nobody). Returns out. */
const char *client_address(const trusted_proxies *t, rpc_ctx *ctx, char out[CLIENT_ADDRESS_MAX]);

/* The same walk over one forwarded list, from a peer address: what
 * client_address does once it has the header (exposed for unit tests). */
void client_address_resolve(const trusted_proxies *t, const char *peer_ip, const char *forwarded,
                            char out[CLIENT_ADDRESS_MAX]);

#endif
