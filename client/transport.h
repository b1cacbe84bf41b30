/* transport.h -- (internal) one unary call, tried on each server in turn. */
#ifndef PA_TRANSPORT_H
#define PA_TRANSPORT_H

#include <grpc/grpc.h>
#include <stdbool.h>
#include <protobuf-c/protobuf-c.h>

#include "discovery.h"
#include "rpc_client.h"

typedef struct transport transport;

/* `tls` may be NULL (plain text); its strings are copied. A call waits up
 * to `connect_timeout_ms` for a server's connection, then `timeout_ms` for
 * its answer. */
transport *transport_new(const rpc_client_tls *tls, int timeout_ms, int connect_timeout_ms);
void transport_free(transport *t);

/* Replaces the servers to try (takes ownership of `e`, malloc'd). */
void transport_set_endpoints(transport *t, endpoint *e, size_t n);
size_t transport_endpoint_count(const transport *t);

/* Sends `msg` to `path` on the first server, moving on to the next while a
 * server is UNAVAILABLE, cannot be connected to within the connect timeout,
 * or misses the deadline. `out` holds the last answer
 * (free with rpc_result_clear); *answered names the server that gave it, or
 * is "" when none did (then out->message lists what each server said).
 * Returns out->status. */
/* Connects to the servers in turn, each within the connect timeout, until
 * one is READY (it moves to the front). False with `why` listing what each
 * said when none is. */
bool transport_reach(transport *t, char *why, size_t n);

grpc_status_code transport_call(transport *t, const char *path, const ProtobufCMessage *msg, rpc_result *out,
                                const char **answered);

#endif
