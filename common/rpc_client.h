/* rpc_client.h -- unary gRPC calls on the C core client API.
 *
 * A channel is created once per target and reused; methods are registered
 * once per channel (rpc_channel_method) so each call skips the path lookup.
 * rpc_call is blocking and thread-safe: each calling thread uses its own
 * completion queue (created on first use, kept for the thread's life), so
 * many threads may share a channel, though several channels give more
 * throughput (docs/architecture.md, "The shared runtime"). */
#ifndef PA_RPC_CLIENT_H
#define PA_RPC_CLIENT_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rpc_channel rpc_channel;
typedef struct rpc_client_method rpc_client_method;

typedef struct rpc_client_tls {
    const char *ca_pem;           /* trust anchors for the server certificate (PEM text) */
    const char *cert_pem;         /* client certificate for mutual TLS, or NULL */
    const char *key_pem;
    const char *target_name_override; /* when the cert's name differs from the target host */
} rpc_client_tls;

typedef struct rpc_result {
    grpc_status_code status;      /* GRPC_STATUS_OK or the server's / transport's code */
    char message[256];            /* status details */
    uint8_t *body;                /* response bytes (malloc'd), NULL unless OK */
    size_t body_len;
    int retry_after_s;            /* from trailing metadata "retry-after", else 0 */
    char reason[32];              /* from trailing metadata "error-reason" (printable), else "" */
} rpc_result;

/* `target` is "host:port", "[::1]:port", "ipv4:..." or any gRPC target.
 * Each channel is its own connection (no sharing with other channels to
 * the same target). With tls, a client certificate is sent if cert_pem and
 * key_pem are both set. Returns NULL on an empty target or out of memory. */
rpc_channel *rpc_channel_new(const char *target, const rpc_client_tls *tls);
void rpc_channel_free(rpc_channel *ch);

/* Registers `path` ("/activation.v1.Activation/Activate") on the channel.
 * The handle lives as long as the channel. */
rpc_client_method *rpc_channel_method(rpc_channel *ch, const char *path);

/* Blocking unary call with a deadline (timeout_ms <= 0: none). Always
 * fills `out` (free with rpc_result_clear). Returns out->status. */
grpc_status_code rpc_call(rpc_channel *ch, rpc_client_method *m, const uint8_t *req,
                          size_t req_len, int timeout_ms, rpc_result *out);

/* Convenience: packs `msg` and calls. */
grpc_status_code rpc_call_message(rpc_channel *ch, rpc_client_method *m,
                                  const ProtobufCMessage *msg, int timeout_ms, rpc_result *out);

void rpc_result_clear(rpc_result *r);

/* Destroys the calling thread's completion queue now rather than at thread
 * exit. The main thread calls it before its final grpc_shutdown (thread-exit
 * destructors do not run for main). Harmless if the thread made no call. */
void rpc_client_thread_done(void);

/* --- for asynchronous callers (bench/loadgen_core) ---------------------- */
/* The underlying gRPC channel and the registered-call handle of a method. */
grpc_channel *rpc_channel_grpc(rpc_channel *ch);
void *rpc_client_method_handle(const rpc_client_method *m);
/* The "retry-after" seconds in trailing metadata, else 0. */
int rpc_retry_after(const grpc_metadata_array *md);
/* The "error-reason" of trailing metadata into dst ("" when absent, too
 * long or not printable ASCII: a reason is an identifier, never prose). */
void rpc_error_reason(const grpc_metadata_array *md, char *dst, size_t cap);
/* Copies status details (or, if empty, core's error string) into dst. */
void rpc_copy_status_message(char *dst, size_t cap, const grpc_slice *details, const char *error_string);

/* Ready-made TLS material helpers: read a whole PEM file into a malloc'd
 * NUL-terminated string (NULL + err on failure). */
char *rpc_read_pem(const char *path, char *err, size_t errlen);

#endif
