/* export_xlsx.c -- rows as an Excel workbook (libxlsxwriter).
 *
 * An XLSX file is a zip whose directory comes last, and libxlsxwriter
 * writes it to a file, so the workbook cannot be streamed as it is made:
 * open writes all of it, in constant-memory mode (each row goes to the
 * library's temporary file as it is finished, so memory does not grow with
 * the rows), into a private directory (mkdtemp: mode 0700, under $TMPDIR or
 * /tmp) that also holds the library's own temporary files. The finished
 * file is opened, then unlinked with its directory before a byte is sent,
 * so nothing of an export stays on disk; fill streams the open file.
 *
 * The sheet: a bold, frozen header row, column widths from the header and
 * the first row, times as Excel dates ("yyyy-mm-dd hh:mm:ss", UTC). A sheet
 * holds at most 1 048 576 rows; more go on to the next sheet ("machines 2"),
 * header repeated. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xlsxwriter.h>

#include "errbuf.h"
#include "export_writer.h"

enum { XLSX_CHUNK = 64 * 1024 };

typedef struct xlsx_state {
    int fd; /* the finished workbook, already unlinked */
} xlsx_state;

/* The workbook while it is written. */
typedef struct xlsx_build {
    lxw_workbook *wb;         /* the workbook */
    lxw_worksheet *ws;        /* the sheet rows go to now */
    lxw_format *bold;         /* the header row's */
    lxw_format *date;         /* times' */
    double *widths;           /* per column, fixed by the first row and kept for later sheets */
    unsigned sheets;          /* sheets so far, for the next one's name */
    lxw_row_t row;            /* the next row on ws */
    const export_source *src; /* the columns */
} xlsx_build;

static int lxw_fail(lxw_error e, const char *what, char *err, size_t errlen) {
    return err_set(err, errlen, "xlsx: %s: %s", what, lxw_strerror(e));
}

/* A new sheet with the header row. */
static int add_sheet(xlsx_build *b, char *err, size_t errlen) {
    char name[32];
    const char *base = b->src->name ? b->src->name : "rows";
    if (b->sheets == 0) snprintf(name, sizeof name, "%.20s", base);
    else snprintf(name, sizeof name, "%.20s %u", base, b->sheets + 1);
    b->ws = workbook_add_worksheet(b->wb, name);
    if (!b->ws) return err_set(err, errlen, "xlsx: cannot add the sheet %s", name);
    b->sheets++;
    b->row = 0;
    worksheet_freeze_panes(b->ws, 1, 0);
    lxw_error e = LXW_NO_ERROR;
    for (size_t c = 0; e == LXW_NO_ERROR && b->widths && c < b->src->n_columns; c++)
        e = worksheet_set_column(b->ws, (lxw_col_t)c, (lxw_col_t)c, b->widths[c], NULL);
    for (size_t c = 0; e == LXW_NO_ERROR && c < b->src->n_columns; c++)
        e = worksheet_write_string(b->ws, 0, (lxw_col_t)c, b->src->columns[c], b->bold);
    if (e != LXW_NO_ERROR) return lxw_fail(e, "header", err, errlen);
    b->row = 1;
    return 0;
}

/* Widths from the header and the first row, in characters. */
static int set_widths(xlsx_build *b, const export_cell *cells, char *err, size_t errlen) {
    b->widths = calloc(b->src->n_columns, sizeof *b->widths);
    if (!b->widths) return err_set(err, errlen, "out of memory");
    for (size_t c = 0; c < b->src->n_columns; c++) {
        size_t w = strlen(b->src->columns[c]);
        size_t v = cells[c].kind == EXPORT_TIME  ? 19
                   : cells[c].kind == EXPORT_INT ? 12
                   : cells[c].str                ? strlen(cells[c].str)
                                                 : 0;
        if (v > w) w = v;
        w += 2;
        b->widths[c] = (double)(w < 8 ? 8 : w > 60 ? 60 : w);
        lxw_error e = worksheet_set_column(b->ws, (lxw_col_t)c, (lxw_col_t)c, b->widths[c], NULL);
        if (e != LXW_NO_ERROR) return lxw_fail(e, "column width", err, errlen);
    }
    return 0;
}

static lxw_error put_cell(xlsx_build *b, lxw_col_t col, const export_cell *cell) {
    switch (cell->kind) {
    case EXPORT_STRING:
    case EXPORT_LIST:
        if (cell->str[0] == '\0') return LXW_NO_ERROR;
        return worksheet_write_string(b->ws, b->row, col, cell->str, NULL);
    case EXPORT_INT: return worksheet_write_number(b->ws, b->row, col, (double)cell->num, NULL);
    case EXPORT_TIME:
        /* Excel counts days from 1899-12-30; 1970-01-01 is day 25569 */
        return worksheet_write_number(b->ws, b->row, col, (double)cell->num / 86400.0 + 25569.0, b->date);
    default: return LXW_NO_ERROR;
    }
}

static int put_rows(xlsx_build *b, export_input *in, char *err, size_t errlen) {
    int r;
    while ((r = export_input_next(in, err, errlen)) == 1) {
        if (!b->widths && set_widths(b, in->cells, err, errlen) != 0) return -1;
        if (b->row == LXW_ROW_MAX && add_sheet(b, err, errlen) != 0) return -1;
        for (size_t c = 0; c < in->src->n_columns; c++) {
            lxw_error e = put_cell(b, (lxw_col_t)c, &in->cells[c]);
            if (e != LXW_NO_ERROR) return lxw_fail(e, in->src->columns[c], err, errlen);
        }
        b->row++;
    }
    return r;
}

/* Writes the workbook at path (in dir). */
static int write_workbook(export_input *in, char *dir, const char *path, char *err, size_t errlen) {
    lxw_workbook_options opt = {.constant_memory = LXW_TRUE, .tmpdir = dir, .use_zip64 = LXW_TRUE};
    xlsx_build b = {.src = in->src};
    b.wb = workbook_new_opt(path, &opt);
    if (!b.wb) return err_set(err, errlen, "xlsx: cannot start the workbook");
    int r = 0;
    b.bold = workbook_add_format(b.wb);
    b.date = workbook_add_format(b.wb);
    if (!b.bold || !b.date) r = err_set(err, errlen, "out of memory");
    if (r == 0) {
        format_set_bold(b.bold);
        format_set_num_format(b.date, "yyyy-mm-dd hh:mm:ss");
        r = add_sheet(&b, err, errlen);
    }
    if (r == 0) r = put_rows(&b, in, err, errlen);
    free(b.widths);
    lxw_error e = workbook_close(b.wb); /* frees it, also after a failure */
    if (r == 0 && e != LXW_NO_ERROR) r = lxw_fail(e, "writing the file", err, errlen);
    return r;
}

static int xlsx_open(export_input *in, void **state, char *err, size_t errlen) {
    const char *tmp = getenv("TMPDIR");
    char dir[512], path[600];
    if (snprintf(dir, sizeof dir, "%s/pa-export-XXXXXX", tmp && *tmp ? tmp : "/tmp") >= (int)sizeof dir)
        return err_set(err, errlen, "xlsx: TMPDIR is too long");
    if (!mkdtemp(dir)) return err_set(err, errlen, "xlsx: cannot make a private directory: %s", strerror(errno));
    snprintf(path, sizeof path, "%s/export.xlsx", dir);
    int r = write_workbook(in, dir, path, err, errlen);
    int fd = r == 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (r == 0 && fd < 0) r = err_set(err, errlen, "xlsx: cannot open the workbook: %s", strerror(errno));
    if (unlink(path) != 0 && errno != ENOENT && r == 0)
        r = err_set(err, errlen, "xlsx: cannot unlink: %s", strerror(errno));
    if (rmdir(dir) != 0 && r == 0) r = err_set(err, errlen, "xlsx: cannot remove %s: %s", dir, strerror(errno));
    xlsx_state *st = r == 0 ? malloc(sizeof *st) : NULL;
    if (r == 0 && !st) r = err_set(err, errlen, "out of memory");
    if (r != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    st->fd = fd;
    *state = st;
    return 0;
}

static int xlsx_fill(export_input *in, void *state, export_buf *out, char *err, size_t errlen) {
    xlsx_state *st = state;
    if (export_buf_reserve(out, XLSX_CHUNK) != 0) return err_set(err, errlen, "out of memory");
    ssize_t n;
    do {
        n = read(st->fd, out->data + out->len, XLSX_CHUNK);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return err_set(err, errlen, "xlsx: reading the workbook: %s", strerror(errno));
    out->len += (size_t)n;
    return n > 0 ? 1 : 0;
}

static void xlsx_close(void *state) {
    xlsx_state *st = state;
    if (!st) return;
    close(st->fd);
    free(st);
}

const export_writer export_xlsx_writer = {xlsx_open, xlsx_fill, xlsx_close};
