/* export_writer.h -- what a format's writer sees (export_csv.c,
 * export_json.c, export_xlsx.c); export.c owns the rest.
 *
 * A writer appends the body piece by piece (a header, one row, a trailer)
 * to a growable buffer that export.c hands out to the client; a piece is
 * never more than one row, so a writer holds one row at a time. */
#ifndef PA_ADMIN_EXPORT_WRITER_H
#define PA_ADMIN_EXPORT_WRITER_H

#include <stdbool.h>
#include <stddef.h>

#include "export.h"

/* Bytes made but not yet handed out. */
typedef struct export_buf {
    char *data; /* malloc'd, grown to the largest piece */
    size_t len; /* bytes in data */
    size_t cap; /* its size */
} export_buf;

/* Appends n bytes; -1 when out of memory. */
int export_buf_add(export_buf *b, const char *s, size_t n);
/* Makes room for n more bytes past len; -1 when out of memory. */
int export_buf_reserve(export_buf *b, size_t n);

/* The rows as a writer reads them. */
typedef struct export_input {
    const export_source *src; /* the columns and the rows */
    export_cell *cells;       /* the current row, n_columns of them */
    uint64_t rows;            /* rows read so far */
    char **scratch;           /* per column: a repaired copy of text that was not clean UTF-8 */
    size_t *scratch_cap;      /* per column: its size */
} export_input;

/* Reads the next row into in->cells, its text repaired to valid UTF-8
 * without control characters (so no format is broken by a byte from a
 * machine): 1, 0 after the last row, -1 with err. */
int export_input_next(export_input *in, char *err, size_t errlen);

typedef struct export_writer {
    /* Makes the writer's state into *state; XLSX reads every row here. */
    int (*open)(export_input *in, void **state, char *err, size_t errlen);
    /* Appends the next piece of the body to out: 1 for a piece, 0 at the
     * end (nothing added), -1 with err. */
    int (*fill)(export_input *in, void *state, export_buf *out, char *err, size_t errlen);
    void (*close)(void *state); /* frees the state */
} export_writer;

extern const export_writer export_csv_writer;
extern const export_writer export_json_writer;
extern const export_writer export_xlsx_writer;

#endif
