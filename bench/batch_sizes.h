/* batch_sizes.h -- how many calls the server's batch handlers took at once
 * (pa_batch_calls{method}, docs/batching.md), between two readings of its
 * /metrics, for a benchmark to print beside its calls/s.
 *
 * The histogram is cumulative, so a run's distribution is the difference
 * of two readings; the quantiles are bucket bounds ("p50 <= 4"). */
#ifndef PA_BENCH_BATCH_SIZES_H
#define PA_BENCH_BATCH_SIZES_H

#include <stddef.h>

#define BATCH_SIZES_BUCKETS 24

typedef struct batch_sizes {
    double le[BATCH_SIZES_BUCKETS];    /* bucket bounds; +Inf as 1e9 */
    double count[BATCH_SIZES_BUCKETS]; /* batches of at most le[i] calls, so far */
    int n;                             /* buckets read; 0: the method is not batched (or no /metrics) */
    double calls, batches;             /* the histogram's _sum and _count */
} batch_sizes;

/* Reads method `label` (e.g. PA_RPC_ACTIVATE_LABEL) from a /metrics text
 * (NULL: nothing read). */
void batch_sizes_read(const char *metrics, const char *label, batch_sizes *out);

/* "batch sizes: mean M, p50 <= A, p90 <= B, max bucket <= C (N batches)"
 * for the batches between `before` and `after`, or "batch sizes: not
 * reported" when the server reported none. */
void batch_sizes_format(const batch_sizes *before, const batch_sizes *after, char *dst, size_t cap);

#endif
