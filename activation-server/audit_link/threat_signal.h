/* threat_signal.h -- sliding-window counts that say "someone is probing":
 * the failure ratio of each group's activations, and the request rate of
 * each client address, over the last few seconds.
 *
 * It sits on the activation hot path, so recording is a hash and one or two
 * lock-free compare-and-swaps on fixed memory, shared by every worker
 * thread; nothing is allocated after start-up and nothing ever blocks.
 *
 * Time is cut into 1-second buckets kept in a ring. Each bucket is one
 * 64-bit word holding its second *and* its counts, so starting a new second
 * and counting in it are the same atomic step -- no count is lost or
 * double-counted at a bucket boundary.
 *   groups     an open-addressing table of THREAT_GROUP_SLOTS groups; each
 *              bucket holds (second:24 | requests:20 | failures:20).
 *              Only groups that exist should be recorded (the caller knows
 *              after loading the group record), so random group IDs cannot
 *              fill the table; when it is full, new groups are not tracked.
 *   addresses  a count-min sketch (2 rows x THREAT_ADDRESS_WIDTH cells per
 *              bucket, seeded hash): unbounded address space in fixed
 *              memory; estimates only ever err upwards, by collisions. */
#ifndef PA_THREAT_SIGNAL_H
#define PA_THREAT_SIGNAL_H

#include <stdbool.h>
#include <stdint.h>

#define THREAT_BUCKETS 16            /* ring length; the window is at most 15 s */
#define THREAT_GROUP_SLOTS 4096      /* groups tracked at once */
#define THREAT_ADDRESS_WIDTH 4096    /* sketch cells per row and bucket */

typedef struct threat_config {
    int window_s;                    /* sliding window, 1..15 s (default 10) */
    uint32_t group_min_requests;     /* below this many requests a group never alerts (default 20) */
    double group_failure_ratio;      /* alert at or above this failure ratio (default 0.5) */
    uint32_t address_max_requests;   /* alert above this many requests per window from one address (default 200) */
    int64_t (*clock_ms)(void);       /* milliseconds on any monotonic scale; NULL = CLOCK_MONOTONIC (tests step it) */
} threat_config;

typedef struct threat_signal threat_signal;

/* Zero fields of `cfg` take the defaults; `cfg` may be NULL. */
threat_signal *threat_signal_new(const threat_config *cfg);
void threat_signal_free(threat_signal *t);

/* Hot path: one activation for `group` ended, `failed` when its key was
 * refused as not genuine. */
void threat_record_group(threat_signal *t, uint32_t group, bool failed);
/* Hot path: one request arrived from `address` (pass the same address key
 * the rate limiter uses, e.g. an IPv6 /64). */
void threat_record_address(threat_signal *t, const char *address);

/* Requests and failures of `group` within the window. */
void threat_group_counts(const threat_signal *t, uint32_t group, uint32_t *requests, uint32_t *failures);
/* Estimated requests from `address` within the window (never less than the truth). */
uint32_t threat_address_requests(const threat_signal *t, const char *address);

/* The signals the sampler acts on. */
bool threat_group_alert(const threat_signal *t, uint32_t group);
bool threat_address_alert(const threat_signal *t, const char *address);

/* Groups that could not be tracked because the table was full. */
uint64_t threat_untracked_groups(const threat_signal *t);

#endif
