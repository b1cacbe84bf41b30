/* rpc_client.c -- blocking unary calls on gRPC's C core client API.
 *
 * Why it looks like this:
 *   - Each rpc_channel is its own HTTP/2 connection. gRPC would otherwise
 *     share one connection between all channels to the same target with
 *     the same arguments (its global subchannel pool), and the whole point
 *     of opening several channels is several connections.
 *   - A call is one batch (send metadata, message, close; receive metadata,
 *     message, status) waited for on the calling thread's own completion
 *     queue. The queue is created on the thread's first call and destroyed
 *     when the thread exits (or by rpc_client_thread_done for the main
 *     thread), so threads never contend on a shared queue and rpc_call needs
 *     no locks. A "next" queue is used: with one batch at a time it behaves
 *     like pluck, and the two measured the same here (echo_bench --sync,
 *     within run-to-run noise), so the simpler one stays.
 *   - Methods are registered once per channel so calls skip the path
 *     lookup; registration takes the channel's mutex, calls do not. */
#include "rpc_client.h"

#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rpc_client_method {
    void *handle;                 /* from grpc_channel_register_call */
    char *path;                   /* to find an existing registration */
    rpc_client_method *next;      /* the channel's list */
};

struct rpc_channel {
    grpc_channel *ch;             /* the gRPC channel (one connection) */
    pthread_mutex_t mu;           /* guards `methods` during registration */
    rpc_client_method *methods;   /* registered paths, freed with the channel */
};

/* --- the per-thread completion queue ----------------------------------------- */

static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;
static int tl_key_rc = -1; /* pthread_key_create's result; no queues without the key */

static void thread_cq_free(void *p) {
    grpc_completion_queue *cq = p;
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    grpc_shutdown();              /* the queue held a reference on gRPC */
}

static void tl_key_create(void) { tl_key_rc = pthread_key_create(&tl_key, thread_cq_free); }

static grpc_completion_queue *thread_cq(void) {
    pthread_once(&tl_once, tl_key_create);
    if (tl_key_rc != 0) return NULL;
    grpc_completion_queue *cq = pthread_getspecific(tl_key);
    if (cq) return cq;
    grpc_init();
    cq = grpc_completion_queue_create_for_next(NULL);
    if (!cq) {
        grpc_shutdown();
        return NULL;
    }
    if (pthread_setspecific(tl_key, cq) != 0) {
        thread_cq_free(cq);
        return NULL;
    }
    return cq;
}

void rpc_client_thread_done(void) {
    pthread_once(&tl_once, tl_key_create);
    if (tl_key_rc != 0) return;
    grpc_completion_queue *cq = pthread_getspecific(tl_key);
    if (!cq) return;
    pthread_setspecific(tl_key, NULL);
    thread_cq_free(cq);
}

/* --- channels ------------------------------------------------------------------- */

static grpc_channel_credentials *channel_credentials(const rpc_client_tls *tls) {
    if (!tls) return grpc_insecure_credentials_create();
    grpc_ssl_pem_key_cert_pair pair = {.private_key = tls->key_pem, .cert_chain = tls->cert_pem};
    return grpc_ssl_credentials_create(tls->ca_pem, (tls->cert_pem && tls->key_pem) ? &pair : NULL, NULL, NULL);
}

rpc_channel *rpc_channel_new(const char *target, const rpc_client_tls *tls) {
    if (!target || !*target) return NULL;
    rpc_channel *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    grpc_init();
    grpc_arg args[2];
    size_t n = 0;
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[n++].value.integer = 1;
    if (tls && tls->target_name_override) {
        args[n].type = GRPC_ARG_STRING;
        args[n].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
        args[n++].value.string = (char *)tls->target_name_override;
    }
    grpc_channel_args ca = {.num_args = n, .args = args};
    grpc_channel_credentials *creds = channel_credentials(tls);
    if (creds) {
        c->ch = grpc_channel_create(target, creds, &ca);
        grpc_channel_credentials_release(creds);
    }
    if (!c->ch || pthread_mutex_init(&c->mu, NULL) != 0) {
        if (c->ch) grpc_channel_destroy(c->ch);
        free(c);
        grpc_shutdown();
        return NULL;
    }
    return c;
}

void rpc_channel_free(rpc_channel *c) {
    if (!c) return;
    while (c->methods) {
        rpc_client_method *m = c->methods;
        c->methods = m->next;
        free(m->path);
        free(m);
    }
    grpc_channel_destroy(c->ch);
    pthread_mutex_destroy(&c->mu);
    free(c);
    grpc_shutdown();
}

rpc_client_method *rpc_channel_method(rpc_channel *c, const char *path) {
    if (!c || !path || path[0] != '/') return NULL;
    pthread_mutex_lock(&c->mu);
    rpc_client_method *m = c->methods;
    while (m && strcmp(m->path, path) != 0) m = m->next;
    if (!m && (m = calloc(1, sizeof *m)) != NULL) {
        m->path = strdup(path);
        m->handle = m->path ? grpc_channel_register_call(c->ch, path, NULL, NULL) : NULL;
        if (!m->handle) {
            free(m->path);
            free(m);
            m = NULL;
        } else {
            m->next = c->methods;
            c->methods = m;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return m;
}

grpc_channel *rpc_channel_grpc(rpc_channel *c) { return c->ch; }

void *rpc_client_method_handle(const rpc_client_method *m) { return m->handle; }

/* --- calls ------------------------------------------------------------------------ */

static void result_error(rpc_result *out, grpc_status_code code, const char *msg) {
    out->status = code;
    snprintf(out->message, sizeof out->message, "%s", msg);
}

/* Copies a received message into one malloc'd block. */
static int copy_body(grpc_byte_buffer *bb, uint8_t **body, size_t *len) {
    grpc_byte_buffer_reader rd;
    if (!grpc_byte_buffer_reader_init(&rd, bb)) return -1;
    size_t total = grpc_byte_buffer_length(rd.buffer_out);
    uint8_t *p = malloc(total ? total : 1);
    if (!p) {
        grpc_byte_buffer_reader_destroy(&rd);
        return -1;
    }
    size_t off = 0;
    grpc_slice *sl;
    while (off < total && grpc_byte_buffer_reader_peek(&rd, &sl)) {
        size_t n = GRPC_SLICE_LENGTH(*sl);
        if (n > total - off) n = total - off;
        memcpy(p + off, GRPC_SLICE_START_PTR(*sl), n);
        off += n;
    }
    grpc_byte_buffer_reader_destroy(&rd);
    *body = p;
    *len = off;
    return 0;
}

int rpc_retry_after(const grpc_metadata_array *md) {
    for (size_t i = 0; i < md->count; i++) {
        const grpc_slice k = md->metadata[i].key;
        if (GRPC_SLICE_LENGTH(k) != 11 || memcmp(GRPC_SLICE_START_PTR(k), "retry-after", 11) != 0) continue;
        const grpc_slice v = md->metadata[i].value;
        int secs = 0;
        for (size_t j = 0; j < GRPC_SLICE_LENGTH(v); j++) {
            char ch = (char)GRPC_SLICE_START_PTR(v)[j];
            if (ch < '0' || ch > '9' || secs > 100000000) return 0;
            secs = secs * 10 + (ch - '0');
        }
        return secs;
    }
    return 0;
}

void rpc_error_reason(const grpc_metadata_array *md, char *dst, size_t cap) {
    dst[0] = '\0';
    for (size_t i = 0; i < md->count; i++) {
        const grpc_slice k = md->metadata[i].key;
        if (GRPC_SLICE_LENGTH(k) != 12 || memcmp(GRPC_SLICE_START_PTR(k), "error-reason", 12) != 0) continue;
        const grpc_slice v = md->metadata[i].value;
        size_t n = GRPC_SLICE_LENGTH(v);
        if (n >= cap) return;
        for (size_t j = 0; j < n; j++) {
            unsigned char ch = GRPC_SLICE_START_PTR(v)[j];
            if (ch <= 0x20 || ch >= 0x7f) return;
        }
        memcpy(dst, GRPC_SLICE_START_PTR(v), n);
        dst[n] = '\0';
        return;
    }
}

void rpc_copy_status_message(char *dst, size_t cap, const grpc_slice *details, const char *error_string) {
    size_t n = GRPC_SLICE_LENGTH(*details);
    if (n == 0 && error_string) {
        snprintf(dst, cap, "%s", error_string);
        return;
    }
    if (n >= cap) n = cap - 1;
    memcpy(dst, GRPC_SLICE_START_PTR(*details), n);
    dst[n] = '\0';
}

grpc_status_code rpc_call(rpc_channel *c, rpc_client_method *m, const uint8_t *req, size_t req_len,
                          int timeout_ms, rpc_result *out) {
    memset(out, 0, sizeof *out);
    grpc_completion_queue *cq = thread_cq();
    if (!c || !m || !cq) {
        result_error(out, GRPC_STATUS_INTERNAL, !cq ? "cannot create completion queue" : "no channel or method");
        return out->status;
    }
    gpr_timespec deadline = timeout_ms > 0 ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                                          gpr_time_from_millis(timeout_ms, GPR_TIMESPAN))
                                           : gpr_inf_future(GPR_CLOCK_MONOTONIC);
    grpc_call *call = grpc_channel_create_registered_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, m->handle,
                                                          deadline, NULL);
    if (!call) {
        result_error(out, GRPC_STATUS_INTERNAL, "cannot create call");
        return out->status;
    }
    grpc_slice slice = grpc_slice_from_copied_buffer((const char *)req, req_len);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    grpc_byte_buffer *recv = NULL;
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    const char *error_string = NULL;
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    ops[5].data.recv_status_on_client.error_string = &error_string;
    if (grpc_call_start_batch(call, ops, 6, call, NULL) != GRPC_CALL_OK) {
        result_error(out, GRPC_STATUS_INTERNAL, "cannot start call");
    } else {
        grpc_event ev;
        do {
            ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        } while (ev.type != GRPC_OP_COMPLETE || ev.tag != call);
        out->status = status;
        rpc_copy_status_message(out->message, sizeof out->message, &details, error_string);
        out->retry_after_s = rpc_retry_after(&trailing);
        rpc_error_reason(&trailing, out->reason, sizeof out->reason);
        if (status == GRPC_STATUS_OK) {
            if (!recv) result_error(out, GRPC_STATUS_INTERNAL, "server sent no response message");
            else if (copy_body(recv, &out->body, &out->body_len) != 0)
                result_error(out, GRPC_STATUS_INTERNAL, "cannot read the response message");
        }
    }
    if (recv) grpc_byte_buffer_destroy(recv);
    grpc_byte_buffer_destroy(send);
    grpc_slice_unref(details);
    if (error_string) gpr_free((void *)error_string);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    return out->status;
}

grpc_status_code rpc_call_message(rpc_channel *c, rpc_client_method *m, const ProtobufCMessage *msg,
                                  int timeout_ms, rpc_result *out) {
    uint8_t stackbuf[1024];
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = len <= sizeof stackbuf ? stackbuf : malloc(len);
    if (!buf) {
        memset(out, 0, sizeof *out);
        result_error(out, GRPC_STATUS_INTERNAL, "out of memory packing the request");
        return out->status;
    }
    protobuf_c_message_pack(msg, buf);
    rpc_call(c, m, buf, len, timeout_ms, out);
    if (buf != stackbuf) free(buf);
    return out->status;
}

void rpc_result_clear(rpc_result *r) {
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

char *rpc_read_pem(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                snprintf(err, errlen, "out of memory reading %s", path);
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n < 4096) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "cannot read %s", path);
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    if (!strstr(buf, "-----BEGIN ")) {
        snprintf(err, errlen, "%s is not a PEM file (no -----BEGIN line)", path);
        free(buf);
        return NULL;
    }
    return buf;
}
