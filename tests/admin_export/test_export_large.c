/* test_export_large.c -- a large export in each format keeps memory flat:
 * 200 000 made-up machine rows read through a 32 KiB buffer as the HTTP
 * server would, every row accounted for, and the process's peak resident
 * size (VmHWM) no more than a bound above its size before the export. A
 * program of its own, so no other test's peak is in the figure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "synth_rows.h"

enum { ROWS = 200000, CHUNK = 32 * 1024 };

/* Generous: one row's text and the libraries' buffers are well under 1 MB.
 * Under ASan freed memory is kept in a quarantine (256 MB by default) that
 * a row-at-a-time writer fills in seconds; this program turns it off, what
 * is left is ASan's own bookkeeping. */
#if defined(PA_SANITIZED_BUILD)
enum { GROWTH_LIMIT_KB = 64 * 1024 };
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "quarantine_size_mb=0"; }
#else
enum { GROWTH_LIMIT_KB = 16 * 1024 };
#endif

static long status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') kb = strtol(line + n + 1, NULL, 10);
    fclose(f);
    assert_true(kb > 0);
    return kb;
}

/* Exports ROWS rows in format f, counting the body's bytes and its `mark`
 * bytes (the made-up rows hold no newline or brace of their own). */
static void export_counting(export_format f, char mark, uint64_t *marks, uint64_t *bytes) {
    char err[256];
    export_source src = synth_machine_rows(ROWS);
    export *ex = export_open(f, &src, err, sizeof err);
    assert_non_null(ex);
    static char buf[CHUNK];
    *marks = *bytes = 0;
    ssize_t r;
    while ((r = export_read(ex, buf, CHUNK)) > 0) {
        *bytes += (uint64_t)r;
        for (ssize_t i = 0; mark && i < r; i++) *marks += buf[i] == mark;
    }
    assert_int_equal(r, 0);
    assert_int_equal(export_rows(ex), ROWS);
    export_close(ex);
}

static void check_flat(const char *what, long before_kb) {
    long peak = status_kb("VmHWM");
    printf("  %s: VmRSS before %ld kB, peak %ld kB\n", what, before_kb, peak);
    assert_true(peak - before_kb <= GROWTH_LIMIT_KB);
}

static void test_large_csv(void **state) {
    long before = status_kb("VmRSS");
    uint64_t lines, bytes;
    export_counting(EXPORT_CSV, '\n', &lines, &bytes);
    assert_int_equal(lines, ROWS + 1);
    check_flat("csv", before);
}

static void test_large_json(void **state) {
    long before = status_kb("VmRSS");
    uint64_t objects, bytes;
    export_counting(EXPORT_JSON, '{', &objects, &bytes);
    assert_int_equal(objects, ROWS);
    check_flat("json", before);
}

static void test_large_xlsx(void **state) {
    long before = status_kb("VmRSS");
    uint64_t none, bytes;
    export_counting(EXPORT_XLSX, 0, &none, &bytes);
    assert_true(bytes > 1000000); /* the rows are in it: read back in admin.export */
    check_flat("xlsx", before);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_csv),
        cmocka_unit_test(test_large_json),
        cmocka_unit_test(test_large_xlsx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
