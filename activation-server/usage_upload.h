/* usage_upload.h -- an on-premises server's usage return to the vendor
 * (docs/volume.md, "Usage return"; --usage-upload-to).
 *
 * A background task (task.h) that, every --usage-upload-interval-s
 * (a day), makes each order's report (usage_report.h) and calls
 * volume.v1.Usage/Report on the vendor's activation service. When the
 * vendor cannot be reached, or refuses, the round is repeated after a
 * backoff (1 s doubling to 5 minutes, never longer than the interval) on a
 * new channel, so an upload succeeds soon after the vendor is back. Each
 * success is recorded in {o:S}:usage (usage_store.h, uploaded_at). Orders
 * that do not delegate this server's key are skipped (and logged). */
#ifndef PA_ACTIVATION_USAGE_UPLOAD_H
#define PA_ACTIVATION_USAGE_UPLOAD_H

#include <stddef.h>

#include "license.h"
#include "metrics.h"
#include "redis_store.h"

typedef struct usage_upload_config {
    rstore_config store;    /* Redis A, as the daemon's workers use it */
    const license_key *key; /* the server's signing key (the delegated one); outlives the task */
    const char *target;     /* the vendor's HOST:PORT */
    const char *ca_pem;     /* trust anchors for the vendor's certificate; NULL: the system's */
    int interval_s;         /* between successful rounds */
    int timeout_ms;         /* one Report call (default 30000) */
    metric *uploads[2];     /* counts ok, failed (may be NULL) */
} usage_upload_config;

typedef struct usage_upload usage_upload;

/* Starts the task; the first round runs at once. NULL with a message. The
 * strings of `cfg` are copied. */
usage_upload *usage_upload_start(const usage_upload_config *cfg, char *err, size_t errlen);

/* Stops the task (a round in progress finishes its current call) and frees it. */
void usage_upload_stop(usage_upload *u);

#endif
