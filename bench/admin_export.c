/* admin_export.c -- what an export costs, in rows/s for CSV, JSON and XLSX
 * and peak resident size. Targets (docs/admin.md, "Export"): CSV >= 200 000
 * rows/s, XLSX >= 50 000 rows/s, peak RSS <= 64 MB. Run by hand; prints
 * figures, asserts nothing.
 *
 *   admin_export [--rows N] [--format csv|json|xlsx] [--http]
 *
 * In-process (always): made-up machine rows through the writers alone,
 * read through 32 KiB buffers as the HTTP server reads them; the RSS is
 * this process's.
 * --http: also the whole path. The admin tests' environment
 * (tests/admin/admin_env.h) starts Redis A and the admin-server binary; N
 * machine records go into the directory through machine_dir.lua's ingest
 * (bench/admin_machines.h: 500 log entries per call, made up); then GET
 * /api/v1/machines/export in each format over HTTPS, the body read and
 * dropped by libcurl; the RSS is the admin-server process's peak (VmHWM),
 * which only grows, so each figure is the peak up to that export. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_http_bench.h"
#include "clock.h"
#include "export.h"
#include "synth_rows.h"

enum { CHUNK = 32 * 1024 };

static long status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') kb = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return kb;
}

/* Exports `rows` rows in format f; 0 and the figures printed, or -1. */
static int run(export_format f, unsigned long long rows) {
    char err[256];
    static char buf[CHUNK];
    double t0 = pa_mono_s();
    export_source src = synth_machine_rows(rows);
    export *ex = export_open(f, &src, err, sizeof err);
    if (!ex) {
        fprintf(stderr, "admin_export: %s: %s\n", export_format_name(f), err);
        return -1;
    }
    unsigned long long bytes = 0;
    ssize_t n;
    while ((n = export_read(ex, buf, sizeof buf)) > 0) bytes += (unsigned long long)n;
    double s = pa_mono_s() - t0;
    if (n < 0) fprintf(stderr, "admin_export: %s: %s\n", export_format_name(f), export_error(ex));
    unsigned long long got = export_rows(ex);
    export_close(ex);
    if (n < 0 || got != rows) return -1;
    printf("in-process %-4s  %9llu rows  %6.2f s  %9.0f rows/s  %7.1f MB  peak RSS %6.1f MB\n", export_format_name(f),
           rows, s, (double)rows / s, (double)bytes / 1e6, (double)status_kb("VmHWM") / 1024);
    return 0;
}

int main(int argc, char **argv) {
    unsigned long long rows = 1000000;
    int only = -1; /* one format, or -1 for all */
    int http = 0;  /* also through the HTTP API */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc) {
            rows = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
            export_format f;
            if (export_format_parse(argv[++i], &f) != 0) {
                fprintf(stderr, "admin_export: --format: no format %s (csv, json or xlsx)\n", argv[i]);
                return 2;
            }
            only = (int)f;
        } else if (strcmp(argv[i], "--http") == 0) {
            http = 1;
        } else if (strcmp(argv[i], "--help") == 0) {
            printf(
                "usage: admin_export [--rows N] [--format csv|json|xlsx] [--http]\n"
                "Exports N made-up machine rows (default 1000000) as CSV, JSON and XLSX (or one) in this\n"
                "process and prints rows/s and the peak resident size; --http: also N machines through\n"
                "a real admin-server's GET /api/v1/machines/export.\n");
            return 0;
        } else {
            fprintf(stderr, "admin_export: unknown argument %s (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (rows == 0) {
        fprintf(stderr, "admin_export: --rows must be a positive number\n");
        return 2;
    }
    printf("start RSS %.1f MB\n", (double)status_kb("VmRSS") / 1024);
    int rc = 0;
    for (export_format f = EXPORT_CSV; f <= EXPORT_XLSX; f++)
        if (only < 0 || only == (int)f) rc |= run(f, rows) != 0;
    if (http) rc |= admin_http_bench(rows, only) != 0;
    return rc ? 1 : 0;
}
