/* webhook_receiver.h -- a webhook receiver for tests: libmicrohttpd on
 * 127.0.0.1 in this process, recording every POST and checking its
 * X-PA-Signature against the secret registered for its path. One per
 * test program. A path may be told to answer 500 a number of times
 * first, to make the sender retry. */
#ifndef PA_TEST_WEBHOOK_RECEIVER_H
#define PA_TEST_WEBHOOK_RECEIVER_H

#include <jansson.h>
#include <stdbool.h>

#include "webhooks.h"

typedef struct rx_seen {
    char path[32];                     /* the URL path posted to */
    char event[64];                    /* X-PA-Event */
    char delivery[WEBHOOK_ID_LEN + 1]; /* X-PA-Delivery */
    json_t *body;                      /* the body parsed (NULL: not JSON) */
    bool signed_ok;                    /* X-PA-Signature matched the path's secret */
    int status;                        /* what the receiver answered */
} rx_seen;

/* Starts it on a free port; returns the port, or -1. */
int receiver_start(void);
void receiver_stop(void);

/* The secret deliveries to `path` are signed with (up to 8 paths). */
void receiver_set_secret(const char *path, const char *secret);
/* `path` answers 500 the next n times. */
void receiver_fail_next(const char *path, int n);

/* Deliveries of `event` to `path` answered 200 so far. */
int receiver_delivered(const char *path, const char *event);
/* The same, waiting up to 5 s for `want` of them. */
int receiver_wait(const char *path, const char *event, int want);
/* The newest POST of `event` to `path`, or NULL. Valid until receiver_stop. */
const rx_seen *receiver_last(const char *path, const char *event);
/* True when no delivery ID was answered 200 twice. */
bool receiver_each_once(void);

#endif
