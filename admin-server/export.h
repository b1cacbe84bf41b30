/* export.h -- a streamed export of rows as CSV, JSON or XLSX
 * (docs/admin.md, "Export").
 *
 * A row source names its columns and hands out one row of cells at a time;
 * the exporter turns rows into the format's bytes only as fast as the
 * client reads them (export_read is an http_stream_fn), so memory stays
 * flat however many rows there are: one row's text at a time for CSV and
 * JSON. XLSX cannot be streamed as it is written (the zip directory comes
 * last), so export_open writes the whole workbook to a private temporary
 * file first (libxlsxwriter in constant-memory mode) and export_read then
 * streams that file; the file is unlinked before the first byte is sent.
 *
 *   export *ex = export_open(EXPORT_CSV, &src, err, sizeof err);
 *   http_reply_stream(rq, export_content_type(EXPORT_CSV), "machines-20261201.csv",
 *                     export_read, export_close, ex);
 */
#ifndef PA_ADMIN_EXPORT_H
#define PA_ADMIN_EXPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum export_format {
    EXPORT_CSV = 0, /* RFC 4180, times ISO 8601 UTC */
    EXPORT_JSON,    /* one array of objects, times unix seconds */
    EXPORT_XLSX,    /* one workbook, times Excel dates */
} export_format;

typedef enum export_kind {
    EXPORT_NULL = 0, /* no value: an empty CSV field, JSON null, a blank cell */
    EXPORT_STRING,   /* text in `str` */
    EXPORT_LIST,     /* words in `str` joined by single spaces: a JSON array of strings elsewhere kept as text */
    EXPORT_INT,      /* an integer in `num` */
    EXPORT_TIME,     /* unix seconds in `num` */
} export_kind;

typedef struct export_cell {
    export_kind kind; /* how to read the cell */
    const char *str;  /* EXPORT_STRING, EXPORT_LIST: valid until the source's next call */
    int64_t num;      /* EXPORT_INT, EXPORT_TIME */
} export_cell;

/* Where the rows come from. */
typedef struct export_source {
    const char *name;           /* what the rows are ("machines"): the XLSX sheet's name */
    const char *const *columns; /* the column names, in order: the header row and the JSON keys */
    size_t n_columns;           /* how many; every row has exactly this many cells */
    /* Fills cells[0 .. n_columns-1] with the next row: 1 for a row, 0 after
     * the last, -1 on a failure (message in err). */
    int (*next)(void *state, export_cell *cells, char *err, size_t errlen);
    void (*close)(void *state); /* frees the state; NULL when there is nothing to free */
    void *state;                /* the source's own */
} export_source;

typedef struct export export;

/* "csv", "json" or "xlsx" into *out; -1 for anything else. */
int export_format_parse(const char *name, export_format *out);
/* "csv", "json", "xlsx": the format's name and file extension. */
const char *export_format_name(export_format f);
/* The Content-Type of the format's body. */
const char *export_content_type(export_format f);

/* Starts an export of `src` (taken over: closed by export_close, also when
 * this fails). For XLSX this reads every row now. NULL on a failure, with
 * the reason in err. */
export *export_open(export_format f, const export_source *src, char *err, size_t errlen);

/* The next bytes of the body into buf (at most max): how many, 0 at the end,
 * -1 on a failure (export_error says which). An http_stream_fn. */
ssize_t export_read(void *ex, char *buf, size_t max);

/* Why the last export_read failed ("" when it did not). */
const char *export_error(const export *ex);

/* Rows handed out so far (for logs and tests). */
uint64_t export_rows(const export *ex);

/* Frees the export and closes its source; NULL is ignored. */
void export_close(void *ex);

#endif
