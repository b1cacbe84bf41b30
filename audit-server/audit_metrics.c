/* audit_metrics.c -- registration of the audit server's series. */
#include "audit_metrics.h"

#include <pthread.h>
#include <stdio.h>

static audit_metrics M;
static pthread_once_t once = PTHREAD_ONCE_INIT;

const char *audit_source_name(audit_source s) {
    return s == AUDIT_SOURCE_VERIFY ? "verify" : "queue";
}

static void register_all(void) {
    static const verdict_kind kinds[] = {VERDICT_KIND_GENUINE, VERDICT_KIND_FORGED,
                                         VERDICT_KIND_MALFORMED};
    for (int s = 0; s < AUDIT_SOURCE_COUNT; s++) {
        for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
            char labels[96];
            snprintf(labels, sizeof labels, "source=\"%s\",verdict=\"%s\"",
                     audit_source_name((audit_source)s), verdict_name(kinds[k]));
            M.verdicts[s][kinds[k]] = metric_counter(
                "pa_audit_verdicts_total", "Audit verdicts by path and result", labels);
        }
    }
    M.revocations = metric_counter("pa_audit_revocations_total",
                                   "Keys appended to the revocation log", "");
    M.submitted_accepted = metric_counter("pa_audit_submit_records_total",
                                          "Submitted records by result", "result=\"accepted\"");
    M.submitted_duplicate = metric_counter("pa_audit_submit_records_total",
                                           "Submitted records by result", "result=\"duplicate\"");
    M.queue_length = metric_gauge("pa_audit_queue_length",
                                  "Submitted records not yet audited", "");
    M.store_errors = metric_counter("pa_audit_store_errors_total",
                                    "Audit store (Redis B) operations that failed", "");
    for (int v = CLIENT_NOT_ALLOWED; v < CLIENT_VERDICTS; v++) {
        char labels[64];
        snprintf(labels, sizeof labels, "reason=\"%s\"", client_verdict_name((client_verdict)v));
        M.clients_refused[v] =
            metric_counter("pa_audit_clients_refused_total", "Calls refused because of the client certificate", labels);
    }
}

const audit_metrics *audit_metrics_get(void) {
    pthread_once(&once, register_all);
    return &M;
}
