/* export.c -- the export's frame: picks the format's writer, hands its
 * pieces out to the client in the sizes the client asks for, frees it all.
 *
 * The writers (export_csv.c, export_json.c, export_xlsx.c) only append
 * pieces to a buffer; this file copies them into the client's buffer
 * across as many export_read calls as it takes, so a writer never has to
 * know how big the client's reads are. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "export_writer.h"

struct export {
    const export_writer *writer; /* the format's */
    void *state;                 /* the writer's */
    export_source src;           /* our copy: closed with the export */
    export_input in;             /* what the writer reads rows through */
    export_buf out;              /* the writer's last pieces */
    size_t out_off;              /* how much of out the client has had */
    bool ended;                  /* the writer said it has no more */
    bool failed;                 /* a read failed: every later read fails too */
    char err[256];               /* why it failed */
};

static const struct {
    const char *name;            /* the query value and file extension */
    const char *content_type;    /* what the body is */
    const export_writer *writer; /* who makes it */
} formats[] = {
    [EXPORT_CSV] = {"csv", "text/csv; charset=utf-8", &export_csv_writer},
    [EXPORT_JSON] = {"json", "application/json", &export_json_writer},
    [EXPORT_XLSX] = {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", &export_xlsx_writer},
};

int export_format_parse(const char *name, export_format *out) {
    for (size_t i = 0; name && i < sizeof formats / sizeof formats[0]; i++) {
        if (strcmp(name, formats[i].name) == 0) {
            *out = (export_format)i;
            return 0;
        }
    }
    return -1;
}

const char *export_format_name(export_format f) { return formats[f].name; }
const char *export_content_type(export_format f) { return formats[f].content_type; }

int export_buf_reserve(export_buf *b, size_t n) {
    if (b->cap - b->len >= n) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int export_buf_add(export_buf *b, const char *s, size_t n) {
    if (export_buf_reserve(b, n) != 0) return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static void close_source(export_source *src) {
    if (src->close) src->close(src->state);
    src->close = NULL;
}

export *export_open(export_format f, const export_source *src, char *err, size_t errlen) {
    export_source copy = *src;
    if ((unsigned)f >= sizeof formats / sizeof formats[0] || copy.n_columns == 0 || !copy.next) {
        close_source(&copy);
        return err_set(err, errlen, "export: no such format, no columns or no rows"), NULL;
    }
    export *ex = calloc(1, sizeof *ex);
    export_cell *cells = calloc(copy.n_columns, sizeof *cells);
    char **scratch = calloc(copy.n_columns, sizeof *scratch);
    size_t *scratch_cap = calloc(copy.n_columns, sizeof *scratch_cap);
    if (!ex || !cells || !scratch || !scratch_cap) {
        free(ex), free(cells), free(scratch), free(scratch_cap);
        close_source(&copy);
        return err_set(err, errlen, "out of memory"), NULL;
    }
    ex->writer = formats[f].writer;
    ex->src = copy;
    ex->in = (export_input){.src = &ex->src, .cells = cells, .scratch = scratch, .scratch_cap = scratch_cap};
    if (ex->writer->open(&ex->in, &ex->state, err, errlen) != 0) {
        ex->writer = NULL; /* nothing of the writer's to close */
        export_close(ex);
        return NULL;
    }
    return ex;
}

/* Makes sure out holds bytes not yet handed out, unless the body ended.
 * 0 ok, -1 failed. */
static int refill(export *ex) {
    while (ex->out_off == ex->out.len && !ex->ended) {
        ex->out.len = 0;
        ex->out_off = 0;
        int r = ex->writer->fill(&ex->in, ex->state, &ex->out, ex->err, sizeof ex->err);
        if (r < 0) return -1;
        if (r == 0) ex->ended = true;
    }
    return 0;
}

ssize_t export_read(void *p, char *buf, size_t max) {
    export *ex = p;
    if (ex->failed) return -1;
    size_t done = 0;
    while (done < max) {
        if (refill(ex) != 0) {
            ex->failed = true;
            /* what was copied already goes out; the next read fails */
            return done > 0 ? (ssize_t)done : -1;
        }
        size_t n = ex->out.len - ex->out_off;
        if (n == 0) break;
        if (n > max - done) n = max - done;
        memcpy(buf + done, ex->out.data + ex->out_off, n);
        ex->out_off += n;
        done += n;
    }
    return (ssize_t)done;
}

const char *export_error(const export *ex) { return ex->err; }

uint64_t export_rows(const export *ex) { return ex->in.rows; }

void export_close(void *p) {
    export *ex = p;
    if (!ex) return;
    if (ex->writer) ex->writer->close(ex->state);
    close_source(&ex->src);
    for (size_t c = 0; c < ex->src.n_columns; c++) free(ex->in.scratch[c]);
    free(ex->in.scratch);
    free(ex->in.scratch_cap);
    free(ex->in.cells);
    free(ex->out.data);
    free(ex);
}
