/* usage_store.h -- the usage return in Redis A, {o:S}:usage (docs/volume.md,
 * "Usage return").
 *
 * Vendor side: the newest verified report per order (by order revision,
 * then generated_at), replaced only by a newer one in one script call, so
 * a retried or late upload never overwrites a newer report. On-premises
 * side: when the last upload succeeded. The two sides use different fields
 * of the same key (a server is one or the other). */
#ifndef PA_USAGE_STORE_H
#define PA_USAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis_store.h"
#include "usage_file.h"

/* Fields of {o:S}:usage. Vendor side: */
#define USAGE_F_REPORT "report"               /* the report JSON, exactly as signed */
#define USAGE_F_SIGNATURE "signature"         /* its signature (64 bytes) */
#define USAGE_F_REVISION "revision"           /* the order revision it reports on */
#define USAGE_F_GENERATED_AT "generated_at"   /* unix seconds, the server's clock */
#define USAGE_F_RECEIVED_AT "received_at"     /* unix seconds, the vendor's clock */
#define USAGE_F_SERVER_KEY_ID "server_key_id" /* the delegated key that signed it */
#define USAGE_F_SEATS "seats_held"
#define USAGE_F_MACHINES "machines"
#define USAGE_F_OVER_TERM "over_term"
/* On-premises side: */
#define USAGE_F_UPLOADED_AT "uploaded_at"               /* the last successful upload */
#define USAGE_F_UPLOADED_REPORT_AT "uploaded_report_at" /* generated_at of the report it sent */

/* Stores a verified report if it is newer than the one held. 1 stored, 0
 * one at least as new is held, -1 with err (unreachable, refused). */
int usage_store_report(rstore *r, const Volume__V1__UsageReport *u, const usage_summary *s, int64_t now, char *err,
                       size_t errlen);

/* Records a successful upload of the report made at `generated_at`. 0 or -1. */
int usage_store_uploaded(rstore *r, const char *serial, int64_t generated_at, int64_t now, char *err, size_t errlen);

#endif
