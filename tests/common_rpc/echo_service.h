/* echo_service.h -- a tiny test service on the rpc_server runtime.
 *
 * Methods (all raw bytes, no protobuf, so the tests see exactly what the
 * runtime does):
 *   /test.v1.Echo/Echo       returns the request (limit 1024 bytes)
 *   /test.v1.Echo/Big        returns the request (limit 100000 bytes)
 *   /test.v1.Echo/Sleep      request is decimal milliseconds; sleeps, returns "slept"
 *   /test.v1.Echo/Whoami     returns "peer_ip|identity|worker_magic"
 *   /test.v1.Echo/Limited    RESOURCE_EXHAUSTED with retry-after 7 and error-reason TOO_FAST
 *   /test.v1.Echo/Remaining  returns rpc_ctx_remaining_ms as decimal
 * worker_init hands each worker a counter that Whoami reports, proving the
 * per-worker state reaches the handler. */
#ifndef TEST_ECHO_SERVICE_H
#define TEST_ECHO_SERVICE_H

#include "rpc_server.h"

#define ECHO_WORKER_MAGIC 4242

extern const rpc_method echo_methods[];
extern const size_t echo_n_methods;

void *echo_worker_init(int index, void *app);
void echo_worker_free(void *state);

/* Starts the service on the given addresses with `workers` workers and
 * optional TLS; fails the test on error. */
rpc_server *echo_start(const char *const *listen, size_t n_listen, int workers, const rpc_tls_config *tls);

#endif
