/* webhook_receiver.c -- see webhook_receiver.h. */
#include "webhook_receiver.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "webhook_delivery.h"

#define MAX_SEEN 256
#define MAX_PATHS 8

static struct {
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    struct {
        char path[32];
        char secret[WEBHOOK_SECRET_LEN + 1];
        int failures; /* 500s still to answer */
    } paths[MAX_PATHS];
    int n_paths;
    rx_seen got[MAX_SEEN];
    int n;
} rx = {.mu = PTHREAD_MUTEX_INITIALIZER};

typedef struct upload {
    char *data;
    size_t len;
} upload;

/* The path's slot, made on first use (call with rx.mu held); NULL when full. */
static int slot(const char *path) {
    for (int i = 0; i < rx.n_paths; i++)
        if (strcmp(rx.paths[i].path, path) == 0) return i;
    if (rx.n_paths == MAX_PATHS) return -1;
    snprintf(rx.paths[rx.n_paths].path, sizeof rx.paths[0].path, "%s", path);
    return rx.n_paths++;
}

static int record(const char *url, const char *ev, const char *id, const char *sig, const upload *u) {
    pthread_mutex_lock(&rx.mu);
    int p = slot(url), status = 200;
    char want[72] = "";
    if (p >= 0) webhook_signature(rx.paths[p].secret, u->data ? u->data : "", u->len, want);
    if (p >= 0 && rx.paths[p].failures > 0) rx.paths[p].failures--, status = 500;
    if (rx.n < MAX_SEEN) {
        rx_seen *s = &rx.got[rx.n++];
        snprintf(s->path, sizeof s->path, "%s", url);
        snprintf(s->event, sizeof s->event, "%s", ev ? ev : "");
        snprintf(s->delivery, sizeof s->delivery, "%s", id ? id : "");
        s->body = json_loads(u->data ? u->data : "", 0, NULL);
        s->signed_ok = sig && want[0] && strcmp(sig, want) == 0;
        s->status = status;
    }
    pthread_mutex_unlock(&rx.mu);
    return status;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *data_len, void **con_cls) {
    (void)cls, (void)version, (void)method;
    upload *u = *con_cls;
    if (!u) {
        *con_cls = calloc(1, sizeof *u);
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*data_len) {
        char *more = realloc(u->data, u->len + *data_len + 1);
        if (!more) return MHD_NO;
        memcpy(more + u->len, data, *data_len);
        u->data = more, u->len += *data_len, u->data[u->len] = '\0';
        *data_len = 0;
        return MHD_YES;
    }
    int status = record(url, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-PA-Event"),
                        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-PA-Delivery"),
                        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-PA-Signature"), u);
    struct MHD_Response *r = MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why) {
    (void)cls, (void)c, (void)why;
    upload *u = *con_cls;
    if (u) free(u->data);
    free(u);
    *con_cls = NULL;
}

int receiver_start(void) {
    int port = fixture_free_port();
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rx.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL, on_request, NULL,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                            MHD_OPTION_END);
    return rx.d ? port : -1;
}

void receiver_stop(void) {
    if (rx.d) MHD_stop_daemon(rx.d);
    rx.d = NULL;
    for (int i = 0; i < rx.n; i++) json_decref(rx.got[i].body);
    rx.n = 0;
}

void receiver_set_secret(const char *path, const char *secret) {
    pthread_mutex_lock(&rx.mu);
    int p = slot(path);
    if (p >= 0) snprintf(rx.paths[p].secret, sizeof rx.paths[p].secret, "%s", secret);
    pthread_mutex_unlock(&rx.mu);
}

void receiver_fail_next(const char *path, int n) {
    pthread_mutex_lock(&rx.mu);
    int p = slot(path);
    if (p >= 0) rx.paths[p].failures = n;
    pthread_mutex_unlock(&rx.mu);
}

int receiver_delivered(const char *path, const char *event) {
    int n = 0;
    pthread_mutex_lock(&rx.mu);
    for (int i = 0; i < rx.n; i++)
        n += strcmp(rx.got[i].path, path) == 0 && strcmp(rx.got[i].event, event) == 0 && rx.got[i].status == 200;
    pthread_mutex_unlock(&rx.mu);
    return n;
}

int receiver_wait(const char *path, const char *event, int want) {
    for (int i = 0; i < 100 && receiver_delivered(path, event) < want; i++) usleep(50 * 1000);
    return receiver_delivered(path, event);
}

const rx_seen *receiver_last(const char *path, const char *event) {
    const rx_seen *s = NULL;
    pthread_mutex_lock(&rx.mu);
    for (int i = 0; i < rx.n; i++)
        if (strcmp(rx.got[i].path, path) == 0 && strcmp(rx.got[i].event, event) == 0) s = &rx.got[i];
    pthread_mutex_unlock(&rx.mu);
    return s;
}

bool receiver_each_once(void) {
    bool once = true;
    pthread_mutex_lock(&rx.mu);
    for (int i = 0; i < rx.n; i++)
        for (int j = i + 1; j < rx.n; j++)
            if (rx.got[i].status == 200 && rx.got[j].status == 200 && !strcmp(rx.got[i].delivery, rx.got[j].delivery))
                once = false;
    pthread_mutex_unlock(&rx.mu);
    return once;
}
