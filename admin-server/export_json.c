/* export_json.c -- rows as one JSON array of objects, one object per line:
 *
 *   [
 *   {"id":"...","group":4343,...,"last_seen":1796100000},
 *   {...}
 *   ]
 *
 * Each row is built with jansson and dumped on its own, so only one row is
 * ever held. Keys are the column names; times are unix seconds, a list is
 * an array of strings, no value is null. */
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "export_writer.h"

typedef enum json_stage {
    JSON_OPENING = 0, /* "[" is the first piece */
    JSON_ROWS,        /* then one row per piece */
    JSON_ENDED,       /* "]" has been written */
} json_stage;

typedef struct json_state {
    json_stage stage; /* where the array is */
    bool any_row;     /* rows after the first are preceded by a comma */
} json_state;

static int json_open(export_input *in, void **state, char *err, size_t errlen) {
    *state = calloc(1, sizeof(json_state));
    return *state ? 0 : err_set(err, errlen, "out of memory");
}

static void json_close(void *state) { free(state); }

/* The space-separated words of s as an array of strings. */
static json_t *word_array(const char *s) {
    json_t *a = json_array();
    while (a && *s) {
        size_t n = strcspn(s, " ");
        if (n > 0 && json_array_append_new(a, json_stringn(s, n)) != 0) {
            json_decref(a);
            return NULL;
        }
        s += n;
        s += strspn(s, " ");
    }
    return a;
}

static json_t *cell_value(const export_cell *cell) {
    switch (cell->kind) {
    case EXPORT_STRING: return json_string(cell->str);
    case EXPORT_LIST: return word_array(cell->str);
    case EXPORT_INT:
    case EXPORT_TIME: return json_integer((json_int_t)cell->num);
    default: return json_null();
    }
}

static int dump_to_buf(const char *s, size_t n, void *buf) { return export_buf_add(buf, s, n); }

static int put_row(const export_input *in, export_buf *out, char *err, size_t errlen) {
    json_t *row = json_object();
    if (!row) return err_set(err, errlen, "out of memory");
    for (size_t c = 0; c < in->src->n_columns; c++) {
        if (json_object_set_new(row, in->src->columns[c], cell_value(&in->cells[c])) != 0) {
            json_decref(row);
            return err_set(err, errlen, "column %s: cannot write the value", in->src->columns[c]);
        }
    }
    int r = json_dump_callback(row, dump_to_buf, out, JSON_COMPACT);
    json_decref(row);
    return r == 0 ? 0 : err_set(err, errlen, "out of memory");
}

static int json_fill(export_input *in, void *state, export_buf *out, char *err, size_t errlen) {
    json_state *st = state;
    if (st->stage == JSON_OPENING) {
        st->stage = JSON_ROWS;
        return export_buf_add(out, "[", 1) == 0 ? 1 : err_set(err, errlen, "out of memory");
    }
    if (st->stage == JSON_ENDED) return 0;
    int r = export_input_next(in, err, errlen);
    if (r < 0) return -1;
    if (r == 0) {
        st->stage = JSON_ENDED;
        return export_buf_add(out, "\n]\n", 3) == 0 ? 1 : err_set(err, errlen, "out of memory");
    }
    const char *sep = st->any_row ? ",\n" : "\n";
    st->any_row = true;
    if (export_buf_add(out, sep, strlen(sep)) != 0) return err_set(err, errlen, "out of memory");
    return put_row(in, out, err, errlen) == 0 ? 1 : -1;
}

const export_writer export_json_writer = {json_open, json_fill, json_close};
