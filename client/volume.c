/* volume.c -- what a volume order's answers mean to the installer
 * (docs/volume.md, activation.proto VolumeStatus).
 *
 * Three states outlive a single call, so they are kept where every run of
 * `activate` sees them, not only in the handle:
 *   - pending (below the KMS threshold, or not designated yet): no license
 *     is stored, and the schedule asks again at the server's check_in_at
 *     (schedule.c), which a daemon holds in memory and a timer's
 *     `maintain` meets at its next run anyway;
 *   - a deactivation awaiting the operator's approval: the machine keeps its
 *     license and seat, STATE_DEACTIVATION_REQUESTED records the request
 *     until a renewal brings the decision (denied: the record goes; approved:
 *     the server answers DEACTIVATED);
 *   - deactivated by the operator (forced, or the approved request):
 *     STATE_DEACTIVATED tells `maintain` and the daemon not to activate
 *     again on their own -- the operator meant this machine to stop. Only
 *     an explicit activation (`activate KEY`) removes it.
 * Records are small text files ("at: <unix seconds>") written atomically;
 * only their presence matters. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client_internal.h"
#include "state.h"

#define PENDING_THRESHOLD ACTIVATION__V1__VOLUME_STATUS__PENDING__PENDING_THRESHOLD
#define AWAITING ACTIVATION__V1__VOLUME_STATUS__DEACTIVATION__DEACTIVATION_AWAITING_APPROVAL
#define DENIED ACTIVATION__V1__VOLUME_STATUS__DEACTIVATION__DEACTIVATION_DENIED

/* Printable ASCII only: these strings come from a server and reach a terminal. */
static void printable(char *dst, size_t n, const char *src) {
    size_t k = 0;
    for (; src && *src && k + 1 < n; src++)
        if ((unsigned char)*src >= 0x20 && (unsigned char)*src < 0x7f) dst[k++] = *src;
    dst[k] = '\0';
}

static void when(int64_t t, char *buf, size_t n) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || !gmtime_r(&tt, &tm) || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "the next check");
}

void volume_take(pa_client *c, const Activation__V1__VolumeStatus *v) {
    bool requested = c->vol.deactivation_requested;
    memset(&c->vol, 0, sizeof c->vol);
    c->vol.deactivation_requested = requested;
    if (!v) return;
    printable(c->vol.order_serial, sizeof c->vol.order_serial, v->order_serial);
    c->vol.order_revision = v->order_revision;
    printable(c->vol.mode, sizeof c->vol.mode, v->mode);
    c->vol.counts = (volume_counts){v->activation_count, v->threshold, v->seats, v->seats_used};
    c->vol.pending = (int)v->pending;
    c->vol.check_in_at = v->check_in_at;
    if (v->deactivation == AWAITING) c->vol.deactivation_requested = true;
    c->vol.deactivation_denied = v->deactivation == DENIED;
}

pa_err volume_pending(pa_client *c) {
    if (!c->vol.pending) return PA_OK;
    char at[32];
    when(c->vol.check_in_at, at, sizeof at);
    if (c->vol.pending == PENDING_THRESHOLD)
        return client_fail(c, PA_ERR_PENDING,
                           "activation is pending: order %s activates once %u machines have asked, and %u %s so "
                           "far; this machine asks again at %s (server %s)",
                           c->vol.order_serial, (unsigned)c->vol.counts.threshold, (unsigned)c->vol.counts.count,
                           c->vol.counts.count == 1 ? "has" : "have", at, c->server);
    return client_fail(c, PA_ERR_PENDING,
                       "activation is pending: this machine is waiting to be designated by the operator of order %s "
                       "(machine digest %s); it asks again at %s (server %s)",
                       c->vol.order_serial, c->machine_digest, at, c->server);
}

static pa_err write_record(pa_client *c, const char *name) {
    char path[PATH_MAX], text[64], err[256];
    if (state_path(path, sizeof path, c->state_dir, name) != 0)
        return client_fail(c, PA_ERR_CONFIG, "state directory path too long");
    int n = snprintf(text, sizeof text, "at: %lld\n", (long long)time(NULL));
    if (state_dir_ensure(c->state_dir, err, sizeof err) != 0 ||
        state_write_atomic(path, text, (size_t)n, 0600, err, sizeof err) != 0)
        return client_fail(c, PA_ERR_IO, "%s", err);
    return PA_OK;
}

bool volume_record_exists(const pa_client *c, const char *name) {
    char path[PATH_MAX];
    return state_path(path, sizeof path, c->state_dir, name) == 0 && access(path, F_OK) == 0;
}

pa_err volume_record_remove(pa_client *c, const char *name) {
    char path[PATH_MAX];
    if (state_path(path, sizeof path, c->state_dir, name) != 0)
        return client_fail(c, PA_ERR_CONFIG, "state directory path too long");
    char err[PATH_MAX + 64];
    return state_remove(path, err, sizeof err) == 0 ? PA_OK : client_fail(c, PA_ERR_IO, "%s", err);
}

pa_err volume_after_grant(pa_client *c) {
    if (c->vol.deactivation_denied) {
        c->vol.deactivation_requested = false;
        pa_err e = volume_record_remove(c, STATE_DEACTIVATION_REQUESTED);
        if (e != PA_OK) return e;
        snprintf(c->error, sizeof c->error,
                 "the operator of order %s denied this machine's deactivation request; it keeps its license",
                 c->vol.order_serial);
        return PA_OK;
    }
    if (c->vol.deactivation_requested && !volume_record_exists(c, STATE_DEACTIVATION_REQUESTED))
        return write_record(c, STATE_DEACTIVATION_REQUESTED);
    return PA_OK;
}

pa_err volume_deactivation_awaits(pa_client *c) {
    c->vol.deactivation_requested = true;
    pa_err e = write_record(c, STATE_DEACTIVATION_REQUESTED);
    if (e != PA_OK) return e;
    return client_fail(c, PA_ERR_PENDING,
                       "the deactivation waits for the approval of order %s's operator: this machine keeps its "
                       "license and seat until then, and a later renewal brings the decision (server %s)",
                       c->vol.order_serial, c->server);
}

pa_err volume_deactivated(pa_client *c) {
    bool requested = volume_record_exists(c, STATE_DEACTIVATION_REQUESTED);
    char server[sizeof c->server];
    memcpy(server, c->server, sizeof server);
    pa_err e = volume_record_remove(c, STATE_DEACTIVATION_REQUESTED);
    if (e == PA_OK) e = write_record(c, STATE_DEACTIVATED);
    if (e != PA_OK) return e;
    c->vol.deactivation_requested = false;
    if (requested)
        return client_fail(c, PA_ERR_DEACTIVATED,
                           "the operator approved this machine's deactivation request: its license is removed "
                           "(server %s)",
                           server);
    return client_fail(c, PA_ERR_DEACTIVATED,
                       "the operator deactivated this machine: its license is removed, and it is not activated again "
                       "unless someone runs `activate KEY` (server %s)",
                       server);
}
