/* echo_service.c -- the test service described in echo_service.h. */
#include "echo_service.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void echo(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    rpc_reply_bytes(reply, req, len);
}

static void sleep_ms(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.*s", (int)len, (const char *)req);
    long ms = atol(buf);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    rpc_reply_bytes(reply, "slept", 5);
}

static void whoami(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    const char *id = rpc_ctx_peer_identity(ctx);
    int *magic = rpc_ctx_worker(ctx);
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s|%s|%d", rpc_ctx_peer_ip(ctx), id ? id : "-", magic ? *magic : -1);
    rpc_reply_bytes(reply, buf, (size_t)n);
}

static void limited(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    rpc_reply_error(reply, GRPC_STATUS_RESOURCE_EXHAUSTED, "slow down");
    reply->retry_after_s = 7;
    reply->reason = "TOO_FAST";
}

static void remaining(rpc_ctx *ctx, const uint8_t *req, size_t len, rpc_reply *reply) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%" PRId64, rpc_ctx_remaining_ms(ctx));
    rpc_reply_bytes(reply, buf, (size_t)n);
}

const rpc_method echo_methods[] = {
    {"/test.v1.Echo/Echo", echo, 1024, NULL},     {"/test.v1.Echo/Big", echo, 100000, NULL},
    {"/test.v1.Echo/Sleep", sleep_ms, 64, NULL},  {"/test.v1.Echo/Whoami", whoami, 64, NULL},
    {"/test.v1.Echo/Limited", limited, 64, NULL}, {"/test.v1.Echo/Remaining", remaining, 64, NULL},
};
const size_t echo_n_methods = sizeof echo_methods / sizeof echo_methods[0];

void *echo_worker_init(int index, void *app) {
    int *magic = malloc(sizeof *magic);
    if (magic) *magic = ECHO_WORKER_MAGIC;
    return magic;
}

void echo_worker_free(void *state) { free(state); }

rpc_server *echo_start(const char *const *listen, size_t n_listen, int workers, const rpc_tls_config *tls) {
    rpc_server_config cfg = {
        .listen = listen,
        .n_listen = n_listen,
        .workers = workers,
        .tls = tls,
        .worker_init = echo_worker_init,
        .worker_free = echo_worker_free,
    };
    char err[256];
    rpc_server *s = rpc_server_start(&cfg, echo_methods, echo_n_methods, err, sizeof err);
    if (!s) fail_msg("rpc_server_start: %s", err);
    return s;
}
