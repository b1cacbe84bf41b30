/* audit_metrics.h -- the audit server's own Prometheus series, registered
 * once at start-up so the hot path only does atomic adds.
 *
 * Label values are fixed sets (source x verdict, accepted/duplicate), never
 * group IDs or addresses, so the number of series cannot grow with traffic.
 * Calls by method and status come from the rpc runtime. */
#ifndef PA_AUDIT_METRICS_H
#define PA_AUDIT_METRICS_H

#include "client_auth.h"
#include "metrics.h"
#include "verdict.h"

typedef enum audit_source {
    AUDIT_SOURCE_VERIFY = 0,      /* online Verify */
    AUDIT_SOURCE_QUEUE = 1,       /* the worker auditing Submit'ed records */
    AUDIT_SOURCE_COUNT
} audit_source;

typedef struct audit_metrics {
    metric *verdicts[AUDIT_SOURCE_COUNT][4]; /* pa_audit_verdicts_total{source,verdict}, by verdict_kind */
    metric *revocations;          /* pa_audit_revocations_total: new log entries */
    metric *submitted_accepted;   /* pa_audit_submit_records_total{result="accepted"} */
    metric *submitted_duplicate;  /* pa_audit_submit_records_total{result="duplicate"} */
    metric *queue_length;         /* pa_audit_queue_length: records waiting for the worker */
    metric *store_errors;         /* pa_audit_store_errors_total: Redis B unreachable or refusing */
    metric *clients_refused[CLIENT_VERDICTS]; /* pa_audit_clients_refused_total{reason}, by client_verdict
                                                 (NULL for CLIENT_ALLOWED) */
} audit_metrics;

/* Registers every series (idempotent). */
const audit_metrics *audit_metrics_get(void);

const char *audit_source_name(audit_source s);

#endif
