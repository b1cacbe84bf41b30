/* schedule.c -- when to renew and when to retry, as volume activation does
 * it (docs/activation-flow.md, "The daemon's schedule"; after KMS): renew once the license's renew_after has come,
 * and while the machine is not activated -- or the last try failed -- try
 * again every two hours.
 *
 * Jitter keeps a fleet that booted together (or a server that came back
 * after an outage) from being hit by every client in the same second:
 * retries land within +-12 minutes of the two-hour mark, renewals within
 * half an hour *after* renew_after (never before, since the server decides
 * from when renewing is useful). A server's retry-after is a floor: we never
 * come back sooner than it asked. A renewal also never follows the previous
 * attempt by less than a minute, so a server that hands out a renew_after in
 * the past cannot make the client spin.
 *
 * Everything here is a pure function of its inputs; the caller supplies the
 * clock and the random number. */
#include "schedule.h"

/* Maps rnd uniformly onto [0, span). */
static int64_t spread(uint32_t rnd, int64_t span) {
    return span > 0 ? (int64_t)(((uint64_t)rnd * (uint64_t)span) >> 32) : 0;
}

static int64_t at_least(int64_t t, int64_t floor) { return t < floor ? floor : t; }

static int64_t next_retry(const schedule_state *s, uint32_t rnd) {
    int64_t t = s->last_attempt + SCHEDULE_RETRY_S - SCHEDULE_RETRY_JITTER_S +
                spread(rnd, 2 * SCHEDULE_RETRY_JITTER_S + 1);
    if (s->retry_after_s > 0) t = at_least(t, s->last_attempt + s->retry_after_s);
    return t;
}

int64_t schedule_next(const schedule_state *s, int64_t now, uint32_t rnd) {
    if (s->last_attempt > 0 && (s->last_failed || !s->licensed))
        return at_least(next_retry(s, rnd), now);
    if (!s->licensed) return now;  /* never tried: activate at once (boot) */
    if (s->renew_after <= 0) return SCHEDULE_NEVER;
    int64_t t = s->renew_after + spread(rnd, SCHEDULE_RENEW_JITTER_S);
    if (s->last_attempt > 0) t = at_least(t, s->last_attempt + SCHEDULE_MIN_GAP_S);
    return at_least(t, now);
}
