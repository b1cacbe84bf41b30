/* schedule.h -- (internal) when the client next has work to do.
 * Pure functions of the state and the clock, so tests need no sleeping. */
#ifndef PA_SCHEDULE_H
#define PA_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#define SCHEDULE_RETRY_S (2 * 3600)          /* KMS: retry every 2 hours while not activated */
#define SCHEDULE_RETRY_JITTER_S (12 * 60)    /* +-10 % of the retry interval */
#define SCHEDULE_RENEW_JITTER_S (30 * 60)    /* renewals spread over half an hour (less for short leases) */
#define SCHEDULE_MIN_GAP_S 60                /* no two renewals closer than this (less for short leases) */
#define SCHEDULE_CHECK_IN_MAX_S (24 * 3600)  /* a pending machine asks again within a day, whatever it was told */
#define SCHEDULE_NEVER INT64_MAX

/* What the schedule depends on. */
typedef struct schedule_state {
    bool licensed;          /* a verified, unexpired license is stored */
    int64_t renew_after;    /* from that license; 0 when it needs no renewal */
    int64_t expires_at;     /* from that license; 0 when it never expires */
    int64_t grace_s;        /* from that license: past expires_at it still renews (and works) this long */
    int64_t last_attempt;   /* unix seconds of the last activate/renew try; 0: none yet */
    bool last_failed;       /* that try failed, so we are in retry mode */
    int retry_after_s;      /* the server's retry-after from that failure; 0 if none */
    int64_t check_in_at;    /* that try was pending on a volume order: when the server said to ask again; 0: not */
} schedule_state;

/* Unix time of the next attempt, never before `now`; SCHEDULE_NEVER when a
 * permanent license needs nothing. `rnd` is a uniform random number that
 * supplies the jitter. */
int64_t schedule_next(const schedule_state *s, int64_t now, uint32_t rnd);

#endif
