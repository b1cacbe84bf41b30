/* grpc_status_name.h -- the canonical names of gRPC status codes
 * ("RESOURCE_EXHAUSTED"), one table for the metrics labels of the server,
 * the CLIs' messages and the load generator's counts. gRPC's C core API
 * has no public function for them. */
#ifndef PA_COMMON_GRPC_STATUS_NAME_H
#define PA_COMMON_GRPC_STATUS_NAME_H

#include <grpc/status.h>

/* Codes GRPC_STATUS_OK (0) .. GRPC_STATUS_UNAUTHENTICATED (16): sizes the
 * per-code arrays of counters. */
#define PA_GRPC_STATUS_CODES 17

/* "OK" .. "UNAUTHENTICATED"; a code outside that range reads "UNKNOWN", as
 * gRPC itself treats a status it does not know. */
const char *pa_grpc_status_name(grpc_status_code code);

#endif
