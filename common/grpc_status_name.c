/* grpc_status_name.c -- see grpc_status_name.h. */
#include "grpc_status_name.h"

static const char *const names[PA_GRPC_STATUS_CODES] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

const char *pa_grpc_status_name(grpc_status_code code) {
    return (unsigned)code < PA_GRPC_STATUS_CODES ? names[code] : "UNKNOWN";
}
