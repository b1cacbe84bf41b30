/* test_export.c -- the exporter's three writers on rows made here: CSV
 * quoting and the formula guard, JSON that parses back to the rows, an XLSX
 * workbook read back with openpyxl (header, cells, dates), text that is not
 * UTF-8, a source that fails, and reads of every size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export.h"
#include "fixture.h"
#include "synth_rows.h"

/* A source of rows written out in the test. */
typedef struct table {
    const export_cell *cells; /* rows x columns */
    size_t rows;              /* how many */
    size_t cols;              /* per row */
    size_t next;              /* the next row */
    size_t fail_at;           /* the row whose read fails (0: none) */
} table;

static int table_next(void *state, export_cell *out, char *err, size_t errlen) {
    table *t = state;
    if (t->fail_at && t->next + 1 == t->fail_at) {
        snprintf(err, errlen, "the store went away");
        return -1;
    }
    if (t->next == t->rows) return 0;
    memcpy(out, t->cells + t->next * t->cols, t->cols * sizeof *out);
    t->next++;
    return 1;
}

static export_source table_source(table *t, const char *const *columns) {
    return (export_source){
        .name = "machines", .columns = columns, .n_columns = t->cols, .next = table_next, .state = t};
}

/* The whole body, read `chunk` bytes at a time; NULL if a read failed. */
static char *read_all(export *ex, size_t chunk, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *body = malloc(cap);
    char *buf = malloc(chunk);
    assert_non_null(body);
    assert_non_null(buf);
    ssize_t r;
    while ((r = export_read(ex, buf, chunk)) > 0) {
        assert_true((size_t)r <= chunk);
        if (n + (size_t)r + 1 > cap) body = realloc(body, cap = 2 * (n + (size_t)r + 1));
        assert_non_null(body);
        memcpy(body + n, buf, (size_t)r);
        n += (size_t)r;
    }
    free(buf);
    body[n] = '\0';
    if (len) *len = n;
    if (r < 0) {
        free(body);
        return NULL;
    }
    return body;
}

static char *export_table(export_format f, table *t, const char *const *columns, size_t chunk) {
    char err[256];
    export_source src = table_source(t, columns);
    export *ex = export_open(f, &src, err, sizeof err);
    assert_non_null(ex);
    char *body = read_all(ex, chunk, NULL);
    assert_non_null(body);
    assert_int_equal(export_read(ex, (char[8]){0}, 8), 0); /* the end stays the end */
    export_close(ex);
    return body;
}

static void test_format_names(void **state) {
    export_format f;
    assert_int_equal(export_format_parse("csv", &f), 0);
    assert_int_equal(f, EXPORT_CSV);
    assert_int_equal(export_format_parse("json", &f), 0);
    assert_int_equal(f, EXPORT_JSON);
    assert_int_equal(export_format_parse("xlsx", &f), 0);
    assert_int_equal(f, EXPORT_XLSX);
    assert_int_equal(export_format_parse("CSV", &f), -1);
    assert_int_equal(export_format_parse("xml", &f), -1);
    assert_int_equal(export_format_parse("", &f), -1);
    assert_int_equal(export_format_parse(NULL, &f), -1);
    assert_string_equal(export_format_name(EXPORT_XLSX), "xlsx");
    assert_string_equal(export_content_type(EXPORT_CSV), "text/csv; charset=utf-8");
    assert_string_equal(export_content_type(EXPORT_JSON), "application/json");
}

static const char *const two_cols[] = {"name", "value"};

static void test_csv_quotes_and_guards(void **state) {
    const export_cell cells[] = {
        {EXPORT_STRING, "plain", 0},
        {EXPORT_INT, NULL, -5},
        {EXPORT_STRING, "a,b", 0},
        {EXPORT_TIME, NULL, 0},
        {EXPORT_STRING, "say \"hi\"", 0},
        {EXPORT_TIME, NULL, 1796000000},
        {EXPORT_STRING, "two\r\nlines", 0},
        {EXPORT_NULL, NULL, 0},
        {EXPORT_STRING, "=1+2", 0},
        {EXPORT_STRING, "+x", 0},
        {EXPORT_STRING, "-y", 0},
        {EXPORT_STRING, "@SUM(A1)", 0},
        {EXPORT_STRING, "=\"a,b\"", 0},
        {EXPORT_LIST, "02:00 03:00", 0},
        {EXPORT_STRING, "", 0},
        {EXPORT_STRING, NULL, 0},
    };
    table t = {cells, 8, 2, 0, 0};
    char *body = export_table(EXPORT_CSV, &t, two_cols, 7); /* small reads cut rows apart */
    assert_string_equal(body,
                        "name,value\r\n"
                        "plain,-5\r\n"
                        "\"a,b\",1970-01-01T00:00:00Z\r\n"
                        "\"say \"\"hi\"\"\",2026-11-30T00:53:20Z\r\n"
                        "\"two\r\nlines\",\r\n"
                        "'=1+2,'+x\r\n"
                        "'-y,'@SUM(A1)\r\n"
                        "\"'=\"\"a,b\"\"\",02:00 03:00\r\n"
                        ",\r\n");
    free(body);
}

static void test_csv_repairs_text_that_is_not_utf8(void **state) {
    const export_cell cells[] = {
        {EXPORT_STRING, "ok\xff\x01x", 0},
        {EXPORT_STRING, "caf\xc3\xa9", 0}, /* é stays */
        {EXPORT_STRING, "\xc0\xaf", 0},
        {EXPORT_STRING, "\xed\xa0\x80|\t", 0}, /* overlong, surrogate */
    };
    table t = {cells, 2, 2, 0, 0};
    char *body = export_table(EXPORT_CSV, &t, two_cols, 4096);
    assert_string_equal(body, "name,value\r\nok??x,caf\xc3\xa9\r\n??,???|\t\r\n");
    free(body);
}

static void test_json_parses_back(void **state) {
    const export_cell cells[] = {
        {EXPORT_STRING, "a\"b\\c\n", 0},
        {EXPORT_TIME, NULL, 1796000000},
        {EXPORT_LIST, "02:00 03:00", 0},
        {EXPORT_NULL, NULL, 0},
        {EXPORT_LIST, "", 0},
        {EXPORT_INT, NULL, -7},
        {EXPORT_STRING, "x\xff", 0},
        {EXPORT_STRING, "=1", 0},
    };
    table t = {cells, 4, 2, 0, 0};
    char *body = export_table(EXPORT_JSON, &t, two_cols, 5);
    json_error_t je;
    json_t *a = json_loads(body, 0, &je);
    assert_non_null(a);
    free(body);
    assert_true(json_is_array(a));
    assert_int_equal(json_array_size(a), 4);
    json_t *r0 = json_array_get(a, 0), *r1 = json_array_get(a, 1), *r2 = json_array_get(a, 2),
           *r3 = json_array_get(a, 3);
    assert_int_equal(json_object_size(r0), 2);
    assert_string_equal(json_string_value(json_object_get(r0, "name")), "a\"b\\c\n");
    assert_int_equal(json_integer_value(json_object_get(r0, "value")), 1796000000);
    json_t *macs = json_object_get(r1, "name");
    assert_int_equal(json_array_size(macs), 2);
    assert_string_equal(json_string_value(json_array_get(macs, 1)), "03:00");
    assert_true(json_is_null(json_object_get(r1, "value")));
    assert_int_equal(json_array_size(json_object_get(r2, "name")), 0);
    assert_int_equal(json_integer_value(json_object_get(r2, "value")), -7);
    assert_string_equal(json_string_value(json_object_get(r3, "name")), "x?");
    assert_string_equal(json_string_value(json_object_get(r3, "value")), "=1"); /* no guard: JSON is data */
    json_decref(a);

    table empty = {cells, 0, 2, 0, 0};
    body = export_table(EXPORT_JSON, &empty, two_cols, 4096);
    assert_string_equal(body, "[\n]\n");
    free(body);
}

/* Entries in dir (to see that an XLSX export left nothing behind). */
static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* The workbook at path read back by openpyxl: a JSON object with the sheet
 * names, the rows of the first sheet (dates as ISO text), bold, the date
 * format and column widths. */
static json_t *read_workbook(const char *path) {
    static const char script[] =
        "import json, sys, datetime, openpyxl\n"
        "wb = openpyxl.load_workbook(sys.argv[1])\n"
        "ws = wb.worksheets[0]\n"
        "def v(c):\n"
        "    x = c.value\n"
        "    return x.isoformat() if isinstance(x, datetime.datetime) else x\n"
        "rows = [[v(c) for c in r] for r in ws.iter_rows()]\n"
        "print(json.dumps({'sheets': wb.sheetnames, 'rows': rows,\n"
        "  'bold': [c.font.b for c in ws[1]],\n"
        "  'date_format': ws.cell(row=2, column=11).number_format,\n"
        "  'widths': [ws.column_dimensions[openpyxl.utils.get_column_letter(i + 1)].width for i in "
        "range(ws.max_column)],\n"
        "  'frozen': ws.freeze_panes}))\n";
    char *argv[] = {"/usr/bin/python3", "-c", (char *)script, (char *)path, NULL};
    char *out = NULL, *err = NULL;
    int rc = fixture_run(argv, &out, &err);
    if (rc != 0) fprintf(stderr, "openpyxl: %s\n", err ? err : "");
    assert_int_equal(rc, 0);
    json_error_t je;
    json_t *wb = json_loads(out, 0, &je);
    assert_non_null(wb);
    free(out);
    free(err);
    return wb;
}

/* Writes an export's whole body to path. */
static void save(export *ex, const char *path) {
    size_t len;
    char *body = read_all(ex, 1000, &len);
    assert_non_null(body);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(body, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    free(body);
}

static void test_xlsx_reads_back(void **state) {
    char dir[256], tmp[300], path[320];
    assert_int_equal(fixture_tmpdir(dir, sizeof dir, "export"), 0);
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    assert_int_equal(mkdir(tmp, 0700), 0);
    assert_int_equal(setenv("TMPDIR", tmp, 1), 0);

    char err[256];
    export_source src = synth_machine_rows(3);
    export *ex = export_open(EXPORT_XLSX, &src, err, sizeof err);
    assert_non_null(ex);
    assert_int_equal(export_rows(ex), 3);
    assert_int_equal(count_entries(tmp), 0); /* the workbook is unlinked before it is sent */
    snprintf(path, sizeof path, "%s/machines.xlsx", dir);
    save(ex, path);
    export_close(ex);
    unsetenv("TMPDIR");

    json_t *wb = read_workbook(path);
    assert_string_equal(json_string_value(json_array_get(json_object_get(wb, "sheets"), 0)), "machines");
    json_t *rows = json_object_get(wb, "rows");
    assert_int_equal(json_array_size(rows), 4);
    json_t *header = json_array_get(rows, 0);
    assert_int_equal(json_array_size(header), 13);
    assert_string_equal(json_string_value(json_array_get(header, 0)), "id");
    assert_string_equal(json_string_value(json_array_get(header, 12)), "expires_at");
    assert_true(json_is_true(json_array_get(json_object_get(wb, "bold"), 0)));
    assert_string_equal(json_string_value(json_object_get(wb, "frozen")), "A2");
    json_t *r2 = json_array_get(rows, 3); /* row number 2 */
    assert_string_equal(json_string_value(json_array_get(r2, 0)), "AAAAAAAA00000002");
    assert_int_equal(json_number_value(json_array_get(r2, 1)), 4343);
    assert_int_equal(json_number_value(json_array_get(r2, 2)), 2);
    assert_string_equal(json_string_value(json_array_get(r2, 4)), "ws-0000002");
    assert_string_equal(json_string_value(json_array_get(r2, 6)), "02:00:00:00:00:02 06:00:00:00:00:01");
    /* SYNTH_T0 + 2 = 2026-11-30T00:53:22Z; last seen an hour later, expiry a day later */
    assert_string_equal(json_string_value(json_array_get(r2, 10)), "2026-11-30T00:53:22");
    assert_string_equal(json_string_value(json_array_get(r2, 11)), "2026-11-30T01:53:22");
    assert_string_equal(json_string_value(json_array_get(r2, 12)), "2026-12-01T00:53:22");
    assert_string_equal(json_string_value(json_object_get(wb, "date_format")), "yyyy-mm-dd hh:mm:ss");
    assert_true(json_number_value(json_array_get(json_object_get(wb, "widths"), 10)) >= 19);
    json_decref(wb);
    fixture_rmtree(dir);
}

static void test_a_failing_source_fails_the_export(void **state) {
    const export_cell cells[] = {{EXPORT_STRING, "a", 0}, {EXPORT_INT, NULL, 1}};
    char err[256];
    for (export_format f = EXPORT_CSV; f <= EXPORT_JSON; f++) {
        table t = {cells, 1, 2, 0, 2}; /* the second read fails */
        export_source src = table_source(&t, two_cols);
        export *ex = export_open(f, &src, err, sizeof err);
        assert_non_null(ex);
        assert_null(read_all(ex, 4096, NULL)); /* never a short body that looks whole */
        assert_string_equal(export_error(ex), "the store went away");
        assert_int_equal(export_read(ex, err, sizeof err), -1);
        export_close(ex);
    }
    table t = {cells, 1, 2, 0, 2};
    export_source src = table_source(&t, two_cols);
    assert_null(export_open(EXPORT_XLSX, &src, err, sizeof err)); /* XLSX fails before a status is sent */
    assert_string_equal(err, "the store went away");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_names),
        cmocka_unit_test(test_csv_quotes_and_guards),
        cmocka_unit_test(test_csv_repairs_text_that_is_not_utf8),
        cmocka_unit_test(test_json_parses_back),
        cmocka_unit_test(test_xlsx_reads_back),
        cmocka_unit_test(test_a_failing_source_fails_the_export),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
