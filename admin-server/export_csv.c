/* export_csv.c -- rows as CSV (RFC 4180): a header line, then one line per
 * row, CRLF line ends.
 *
 * A field holding a comma, a double quote, CR or LF is quoted, its quotes
 * doubled. A text field that begins with = + - @ (or a tab or CR) is what a
 * spreadsheet would run as a formula, and a hostname is the machine's to
 * choose, so such a field gets a leading single quote: the cell then shows
 * as text. Numbers are not guarded (they are ours). Times are ISO 8601 UTC
 * ("2026-12-01T09:30:00Z"); an empty field is no value. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errbuf.h"
#include "export_writer.h"

typedef struct csv_state {
    bool header_done; /* the header line is the first piece */
} csv_state;

static int csv_open(export_input *in, void **state, char *err, size_t errlen) {
    *state = calloc(1, sizeof(csv_state));
    return *state ? 0 : err_set(err, errlen, "out of memory");
}

static void csv_close(void *state) { free(state); }

/* Appends one text field, guarded and quoted as needed. */
static int put_text(export_buf *out, const char *s) {
    bool formula = s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;
    bool quote = s[strcspn(s, ",\"\r\n")] != '\0';
    size_t len = strlen(s);
    /* at worst every byte a quote doubled, two quotes around, the guard */
    if (export_buf_reserve(out, 2 * len + 3) != 0) return -1;
    char *p = out->data + out->len;
    if (quote) *p++ = '"';
    if (formula) *p++ = '\'';
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"') *p++ = '"';
        *p++ = s[i];
    }
    if (quote) *p++ = '"';
    out->len = (size_t)(p - out->data);
    return 0;
}

static int put_cell(export_buf *out, const export_cell *cell) {
    char num[32];
    switch (cell->kind) {
    case EXPORT_STRING:
    case EXPORT_LIST: return put_text(out, cell->str);
    case EXPORT_INT: snprintf(num, sizeof num, "%" PRId64, cell->num); return export_buf_add(out, num, strlen(num));
    case EXPORT_TIME: {
        time_t t = (time_t)cell->num;
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(num, sizeof num, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) return -1;
        return export_buf_add(out, num, strlen(num));
    }
    default: return 0;
    }
}

static int put_header(const export_source *src, export_buf *out) {
    for (size_t c = 0; c < src->n_columns; c++) {
        if ((c > 0 && export_buf_add(out, ",", 1) != 0) || put_text(out, src->columns[c]) != 0) return -1;
    }
    return export_buf_add(out, "\r\n", 2);
}

static int csv_fill(export_input *in, void *state, export_buf *out, char *err, size_t errlen) {
    csv_state *st = state;
    if (!st->header_done) {
        st->header_done = true;
        return put_header(in->src, out) == 0 ? 1 : err_set(err, errlen, "out of memory");
    }
    int r = export_input_next(in, err, errlen);
    if (r <= 0) return r;
    for (size_t c = 0; c < in->src->n_columns; c++) {
        if (c > 0 && export_buf_add(out, ",", 1) != 0) return err_set(err, errlen, "out of memory");
        if (put_cell(out, &in->cells[c]) != 0)
            return err_set(err, errlen, "column %s: cannot write the cell", in->src->columns[c]);
    }
    return export_buf_add(out, "\r\n", 2) == 0 ? 1 : err_set(err, errlen, "out of memory");
}

const export_writer export_csv_writer = {csv_open, csv_fill, csv_close};
