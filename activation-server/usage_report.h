/* usage_report.h -- an on-premises server's report of one order's use
 * (docs/volume.md, "Usage return").
 *
 * The report is JSON, made from the order's machine table ({o:S}:m, read
 * with HSCAN in batches so a table of 100 000 machines never blocks Redis),
 * its counters ({o:S}:n) and, for orders that collect some, the machines'
 * facts ({o:S}:facts):
 *
 *   {"format_version":1, "service_serial":"12345678", "order_revision":2,
 *    "server_key_id":"...", "generated_at":1790000000,
 *    "seats_held":3, "machines":5, "over_term":0,
 *    "machine_list":[["<digest hex>", first_seen, last_contact, "seat", flags], ...],
 *    "facts":{"<digest hex>":{"hostname":"..."}, ...}}
 *
 * A machine's status word comes from its record's flags, read as
 * volume.lua writes them (volume_record_decode): "deactivated", "pending",
 * "deactivation-requested", "seat" (holds its grant: a machine of an
 * unlimited order too, though no seat is counted), "seat-out-of-window" or
 * "no-seat" (a lapsed lease); the flags themselves follow it. It is signed with the
 * server's own key, the one the order delegates, over
 * "pa-usage-v1" || 0x00 || report (tagged_signature.h), and travels as a
 * volume.v1.UsageReport with the vendor-signed order. */
#ifndef PA_ACTIVATION_USAGE_REPORT_H
#define PA_ACTIVATION_USAGE_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "license.h"
#include "order_record.h"
#include "redis_store.h"
#include "tagged_signature.h"
#include "volume/v1/usage.pb-c.h"

typedef struct usage_report {
    char *json; /* the report text, exactly as signed (malloc'd) */
    size_t len;
    uint8_t signature[TAGGED_SIG_LEN]; /* by the delegated key */
    int64_t generated_at;              /* the report's time */
} usage_report;

/* Builds and signs the report of order `o` at `now` with `key`, which must
 * be the key the order delegates ("wrong server" otherwise). 0, or -1 with
 * the reason. */
int usage_report_make(rstore *r, const order_record *o, const license_key *key, int64_t now, usage_report *out,
                      char *err, size_t errlen);

void usage_report_clear(usage_report *u);

/* The UsageReport message of `u` for order `o`; it points into both, which
 * must outlive it. */
void usage_report_message(const order_record *o, const usage_report *u, Volume__V1__UsageReport *msg);

#endif
