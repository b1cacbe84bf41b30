/* usage_file.h -- a usage report as the vendor receives it (docs/volume.md,
 * "Usage return"; protos/volume/v1/usage.proto).
 *
 * An on-premises server signs a JSON report of one order's use with the key
 * that order delegates to it and sends it with the vendor-signed order. The
 * vendor trusts nothing but its own order keys, so it checks the chain
 * vendor key -> order -> report: the order's signature (order_file.h), that
 * the order is an on-premises one, the report's signature by the order's
 * delegated_key over "pa-usage-v1" || 0x00 || report, and that the report
 * names that order, revision and key. A report signed by any other key is
 * refused, so a server the vendor never delegated to cannot report for an
 * order, and a report cannot be moved to another order.
 *
 * The same UsageReport travels as a JSON file when the server cannot reach
 * the vendor (`activation-server order usage-export`, `keystore usage
 * import`): an object with the message's five fields, bytes in base64.
 *
 * In pa_usage with usage_store.h: the keystore CLI and the vendor's
 * activation server (the volume.v1.Usage/Report handler) share both. */
#ifndef PA_USAGE_FILE_H
#define PA_USAGE_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "order_file.h"
#include "order_keyring.h"
#include "volume/v1/usage.pb-c.h"

#define USAGE_FORMAT_VERSION 1
#define USAGE_REPORT_MAX (16u << 20) /* bytes of report JSON; the Report method's request limit */

/* What a verified report says, for storing and for messages. */
typedef struct usage_summary {
    char serial[ORDER_SERIAL_LEN + 1];          /* service_serial */
    uint32_t revision;                          /* order_revision */
    char server_key_id[SIGNING_KEY_ID_LEN + 1]; /* the delegated key's id */
    int64_t generated_at;                       /* unix seconds, by the server's clock */
    uint64_t seats_held;                        /* {o:S}:n seats */
    uint64_t machines;                          /* machines in the window */
    uint64_t over_term;                         /* continue-counted machines after the end */
    uint64_t listed;                            /* entries of the machine list */
} usage_summary;

/* How a report failed to check; the words lead the message. */
typedef enum usage_status {
    USAGE_OK = 0,
    USAGE_MALFORMED,      /* "malformed": not a report, or fields out of range */
    USAGE_FOREIGN_VENDOR, /* "foreign vendor": the order's key id is not ours */
    USAGE_TAMPERED,       /* "tampered": the order or the report does not verify */
    USAGE_WRONG_SERVER,   /* "wrong server": signed by a key the order does not delegate */
} usage_status;

const char *usage_status_reason(usage_status s);

/* Checks the chain; on USAGE_OK fills `out`. The message names what did not verify. */
usage_status usage_verify(const Volume__V1__UsageReport *u, const order_keyring *ring, usage_summary *out, char *err,
                          size_t errlen);

/* The JSON file form of a report (malloc'd, NUL-terminated), or NULL. */
char *usage_file_write(const Volume__V1__UsageReport *u);

/* Reads the JSON file form; the result is freed with
 * volume__v1__usage_report__free_unpacked. NULL with the reason. */
Volume__V1__UsageReport *usage_file_read(const char *text, size_t len, char *err, size_t errlen);

#endif
