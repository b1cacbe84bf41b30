/* threat_view.h -- reads the threat counters the activation servers add to
 * Redis A (activation-server/threat_counters.h, docs/admin.md "Threat
 * view") into the series GET /api/v1/threats answers.
 *
 * Kept apart from the HTTP handler (threats_api.c) so that the reading and
 * bucketing are tested against a real Redis without the HTTP server, and
 * so that the query is checked in one place: a range of at most the
 * retention, a step of whole minutes, at most THREAT_VIEW_MAX_POINTS
 * points, at most THREAT_VIEW_MAX_GROUPS groups. Every day hash and hour
 * set of the range is read in one pipeline. */
#ifndef PA_ADMIN_THREAT_VIEW_H
#define PA_ADMIN_THREAT_VIEW_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "redis_store.h"

#define THREAT_VIEW_MAX_GROUPS 50   /* groups in one answer */
#define THREAT_VIEW_MAX_POINTS 1440 /* buckets per series */
#define THREAT_VIEW_TOP 20          /* offending addresses listed */

typedef struct threat_query {
    uint32_t groups[THREAT_VIEW_MAX_GROUPS]; /* the groups asked for */
    size_t n_groups;                         /* 0: every group in `groups` (up to the cap) */
    int64_t from, to;                        /* unix seconds, [from, to) */
    int64_t step;                            /* bucket width in seconds, a multiple of 60 */
} threat_query;

/* Fills *q from the query's text values (any may be NULL: defaults are
 * every group, the last hour up to `now`, one-minute steps). Returns 0, or
 * -1 with a message naming the parameter in err. */
int threat_query_parse(threat_query *q, const char *group, const char *from, const char *to, const char *step,
                       int64_t now, char *err, size_t errlen);

/* The answer:
 *   {"from","to","step",
 *    "groups": [{"group", "series": [{"t", "attempts", "not_genuine",
 *                "not_genuine_rate", "rate_limited", "grants", "machine_limit",
 *                "revocations"}]}],
 *    "top_addresses": [{"address", "refusals"}]}
 * NULL with a message in err when Redis fails. */
json_t *threat_view_read(rstore *r, const threat_query *q, char *err, size_t errlen);

#endif
