/* conn_limit.h -- a cap on the connections one client address may hold open
 * to a gRPC server (IPv4: per address; IPv6: per /64).
 *
 * gRPC core has no such cap, and its only way to take connections from the
 * application (grpc_server_add_channel_from_fd) refuses TLS credentials in
 * 1.51. So the cap sits where every connection is born: this module defines
 * accept4(2) for the process. gRPC's listeners call accept4 through the
 * dynamic linker, which finds this definition in the executable before
 * libc's; connections accepted on a watched port are counted by client
 * address, and one over the cap is closed (with a reset) before gRPC ever
 * sees it -- no handshake, no buffers, nothing allocated. accept4 on any
 * other socket (the metrics listener, a test's own) behaves exactly as
 * libc's does.
 *
 * Counting without a hook on close: gRPC closes its connections itself, so
 * each counted connection is remembered by its descriptor and socket inode,
 * and a descriptor whose inode changed (or that is closed) no longer counts.
 * The entries of an address are re-checked when that address connects
 * again; an entry is also dropped when its descriptor number comes back from
 * accept4. Memory is bounded by the highest descriptor number in use. */
#ifndef PA_CONN_LIMIT_H
#define PA_CONN_LIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct conn_limit conn_limit;

/* Called (on the accepting thread, outside the lock) for each connection
 * refused; `address` is the IPv4 address or the IPv6 /64 it counted under. */
typedef void (*conn_limit_refuse_fn)(void *arg, const char *address);

/* A cap of `max_per_address` (>= 1) open connections per client address;
 * `on_refuse` may be NULL. NULL on a bad cap or out of memory. */
conn_limit *conn_limit_new(int max_per_address, conn_limit_refuse_fn on_refuse, void *arg);

/* Applies the cap to connections accepted on local TCP port `port` (any
 * local address). Returns 0, or -1 when another limiter watches that port. */
int conn_limit_watch(conn_limit *l, int port);

/* Stops watching (every port of `l`) and frees it. */
void conn_limit_free(conn_limit *l);

/* Connections closed at once for being over the cap, so far. */
uint64_t conn_limit_refused(const conn_limit *l);

/* Connections of `l` currently counted as open (checks them first). */
size_t conn_limit_open(conn_limit *l);

#endif
