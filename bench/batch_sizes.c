/* batch_sizes.c -- see batch_sizes.h. Reads the Prometheus text line by
 * line; a series belongs to the method when its labels name it. */
#include "batch_sizes.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The line is `family`{...method="label"...} VALUE; *value gets VALUE. */
static bool series_of(const char *line, const char *family, const char *label, double *value) {
    size_t n = strlen(family);
    if (strncmp(line, family, n) != 0 || line[n] != '{') return false;
    const char *close = strchr(line + n, '}'), *m = strstr(line + n, "method=\"");
    if (!close || !m || m > close) return false;
    size_t len = strlen(label);
    m += strlen("method=\"");
    if (strncmp(m, label, len) != 0 || m[len] != '"') return false;
    *value = strtod(close + 1, NULL);
    return true;
}

void batch_sizes_read(const char *metrics, const char *label, batch_sizes *out) {
    memset(out, 0, sizeof *out);
    for (const char *l = metrics; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        double v;
        if (series_of(l, "pa_batch_calls_bucket", label, &v) && out->n < BATCH_SIZES_BUCKETS) {
            const char *le = strstr(l, "le=\"");
            if (!le) continue;
            out->le[out->n] = strncmp(le + 4, "+Inf", 4) == 0 ? 1e9 : strtod(le + 4, NULL);
            out->count[out->n++] = v;
        } else if (series_of(l, "pa_batch_calls_sum", label, &v)) {
            out->calls = v;
        } else if (series_of(l, "pa_batch_calls_count", label, &v)) {
            out->batches = v;
        }
    }
}

/* The bound of the first bucket holding fraction q of the `total` batches. */
static void bound(const batch_sizes *a, const batch_sizes *b, double q, double total, char *dst, size_t cap) {
    for (int i = 0; i < b->n; i++) {
        if (b->count[i] - a->count[i] < q * total) continue;
        if (b->le[i] >= 1e9) snprintf(dst, cap, "+Inf");
        else snprintf(dst, cap, "%g", b->le[i]);
        return;
    }
    snprintf(dst, cap, "?");
}

void batch_sizes_format(const batch_sizes *before, const batch_sizes *after, char *dst, size_t cap) {
    double batches = after->batches - before->batches, calls = after->calls - before->calls;
    if (after->n == 0 || (before->n != 0 && before->n != after->n) || batches <= 0) { /* before: none yet */
        snprintf(dst, cap, "batch sizes: not reported");
        return;
    }
    char p50[16], p90[16], top[16];
    bound(before, after, 0.5, batches, p50, sizeof p50);
    bound(before, after, 0.9, batches, p90, sizeof p90);
    bound(before, after, 1.0, batches, top, sizeof top);
    snprintf(dst, cap, "batch sizes: mean %.2f, p50 <= %s, p90 <= %s, max bucket <= %s (%.0f batches)", calls / batches,
             p50, p90, top, batches);
}
