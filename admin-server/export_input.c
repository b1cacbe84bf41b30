/* export_input.c -- rows as the writers read them: the source's next row,
 * its text made safe for every format.
 *
 * Text in a machine row comes from the machine (hostname, OS), so it may
 * hold bytes that are not UTF-8 or control characters: jansson refuses the
 * first, and XML (XLSX) the second. Rather than let one odd hostname fail a
 * whole export, such bytes become '?', in a per-column scratch copy (the
 * source's text is not ours to change); clean text, the usual case, is
 * passed through untouched. */
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "export_writer.h"

/* The length of the UTF-8 sequence at s (1..4), or 0 when it is not a valid,
 * shortest-form encoding of a scalar value. */
static size_t utf8_len(const unsigned char *s) {
    if (s[0] < 0x80) return 1;
    size_t n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (n == 0 || s[0] > 0xF4) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (n == 3 && s[0] == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
    if (n == 3 && s[0] == 0xED && s[1] >= 0xA0) return 0; /* a surrogate */
    if (n == 4 && s[0] == 0xF0 && s[1] < 0x90) return 0;  /* overlong */
    if (n == 4 && s[0] == 0xF4 && s[1] >= 0x90) return 0; /* past U+10FFFF */
    return n;
}

/* A control character XML 1.0 does not allow (tab, LF and CR it does). */
static int is_bad_control(unsigned char c) { return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F; }

/* The byte length of the clean start of s; strlen(s) when all is clean. */
static size_t clean_prefix(const unsigned char *s) {
    size_t i = 0;
    while (s[i]) {
        size_t n = is_bad_control(s[i]) ? 0 : utf8_len(s + i);
        if (n == 0) return i;
        i += n;
    }
    return i;
}

/* A copy of s with each bad byte replaced, in the column's scratch. */
static const char *repair(export_input *in, size_t col, const char *s, size_t clean, char *err, size_t errlen) {
    size_t len = clean + strlen(s + clean);
    if (in->scratch_cap[col] < len + 1) {
        char *p = realloc(in->scratch[col], len + 1);
        if (!p) return err_set(err, errlen, "out of memory"), NULL;
        in->scratch[col] = p;
        in->scratch_cap[col] = len + 1;
    }
    char *out = in->scratch[col];
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = is_bad_control(u[i]) ? 0 : utf8_len(u + i);
        if (n == 0) {
            out[i++] = '?';
        } else {
            memcpy(out + i, s + i, n);
            i += n;
        }
    }
    out[len] = '\0';
    return out;
}

int export_input_next(export_input *in, char *err, size_t errlen) {
    const export_source *src = in->src;
    int r = src->next(src->state, in->cells, err, errlen);
    if (r <= 0) return r;
    for (size_t c = 0; c < src->n_columns; c++) {
        export_cell *cell = &in->cells[c];
        if (cell->kind != EXPORT_STRING && cell->kind != EXPORT_LIST) continue;
        if (!cell->str) {
            cell->kind = EXPORT_NULL;
            continue;
        }
        size_t clean = clean_prefix((const unsigned char *)cell->str);
        if (cell->str[clean] == '\0') continue;
        cell->str = repair(in, c, cell->str, clean, err, errlen);
        if (!cell->str) return -1;
    }
    in->rows++;
    return 1;
}
