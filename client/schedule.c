/* schedule.c -- when to renew and when to retry, as volume activation does
 * it (docs/activation-flow.md, "The daemon's schedule"; after KMS): renew once the license's renew_after has come,
 * and while the machine is not activated -- or the last try failed -- try
 * again every two hours.
 *
 * Jitter keeps a fleet that booted together (or a server that came back
 * after an outage) from being hit by every client in the same second:
 * retries land within +-12 minutes of the two-hour mark, renewals within
 * half an hour *after* renew_after (never before, since the server decides
 * from when renewing is useful). A server's retry-after says when to come
 * back -- a full concurrent order gives the time its first seat frees --, so
 * a retry follows it (spread over a tenth of the wait) rather than the
 * two-hour mark, and never comes sooner. A renewal also never follows the previous
 * attempt by less than a minute, so a server that hands out a renew_after in
 * the past cannot make the client spin.
 *
 * Short leases -- a concurrent seat's heartbeat every 60 s, lapsing after
 * three missed beats, or the seconds tests configure -- must not be carried
 * past their end by those margins. So the renewal jitter is at most a
 * quarter of the time between renew_after and expires_at, the minimum gap
 * at most half of what is left of the lease, and a failed renewal of a
 * lease that would lapse before the two-hour retry is retried halfway to
 * its end instead (and again halfway, and so on).
 *
 * Past expires_at, inside the license's grace period, the copy still works
 * and the server still renews: the lease's end is then the grace's end, so
 * a failed renewal is retried halfway to it again and again (every 2 hours
 * at most), several times before the grace runs out.
 *
 * A volume order that keeps a machine pending says when to ask again
 * (VolumeStatus.check_in_at, 2 hours by default): that time is kept, without
 * jitter (the server spreads it), but never more than a day away.
 *
 * Everything here is a pure function of its inputs; the caller supplies the
 * clock and the random number. */
#include "schedule.h"

/* Maps rnd uniformly onto [0, span). */
static int64_t spread(uint32_t rnd, int64_t span) {
    return span > 0 ? (int64_t)(((uint64_t)rnd * (uint64_t)span) >> 32) : 0;
}

static int64_t at_least(int64_t t, int64_t floor) { return t < floor ? floor : t; }
static int64_t at_most(int64_t t, int64_t ceiling) { return t > ceiling ? ceiling : t; }

/* Half of what is left of the lease after the last attempt (at least 1 s),
 * or `otherwise` when there is no lease end ahead. */
static int64_t half_lease(const schedule_state *s, int64_t otherwise) {
    int64_t end = s->expires_at;
    if (end > 0 && end <= s->last_attempt && s->grace_s > 0) end += s->grace_s;
    if (end <= 0 || end <= s->last_attempt) return otherwise;
    return at_least((end - s->last_attempt) / 2, 1);
}

static int64_t next_retry(const schedule_state *s, uint32_t rnd) {
    int64_t t = s->last_attempt + SCHEDULE_RETRY_S - SCHEDULE_RETRY_JITTER_S +
                spread(rnd, 2 * SCHEDULE_RETRY_JITTER_S + 1);
    if (s->licensed) t = at_most(t, s->last_attempt + half_lease(s, SCHEDULE_RETRY_S));
    if (s->retry_after_s > 0) {
        /* The server said when: a full concurrent order, when its first seat
         * frees; a rate limit, when tokens are back. Come back then, spread
         * over a tenth of the wait, never sooner. */
        int64_t asked = s->last_attempt + s->retry_after_s;
        t = at_least(at_most(t, asked + spread(rnd, s->retry_after_s / 10 + 1)), asked);
    }
    return t;
}

static int64_t next_renewal(const schedule_state *s, uint32_t rnd) {
    int64_t jitter = SCHEDULE_RENEW_JITTER_S;
    if (s->expires_at > 0) jitter = at_most(jitter, at_least(s->expires_at - s->renew_after, 0) / 4);
    int64_t t = s->renew_after + spread(rnd, jitter);
    if (s->last_attempt > 0)
        t = at_least(t, s->last_attempt + at_most(SCHEDULE_MIN_GAP_S, half_lease(s, SCHEDULE_MIN_GAP_S)));
    return t;
}

int64_t schedule_next(const schedule_state *s, int64_t now, uint32_t rnd) {
    if (s->last_attempt > 0 && s->check_in_at > s->last_attempt)
        return at_least(at_most(s->check_in_at, s->last_attempt + SCHEDULE_CHECK_IN_MAX_S), now);
    if (s->last_attempt > 0 && (s->last_failed || !s->licensed))
        return at_least(next_retry(s, rnd), now);
    if (!s->licensed) return now;  /* never tried: activate at once (boot) */
    if (s->renew_after <= 0) return SCHEDULE_NEVER;
    return at_least(next_renewal(s, rnd), now);
}
