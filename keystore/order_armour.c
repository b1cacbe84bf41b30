/* order_armour.c -- the `.license` text (order_armour.h).
 *
 * Reading works line by line on a copy of the text: find the BEGIN line
 * (after trimming, so indented or CRLF text still matches), take "Name:
 * value" lines (a line starting with blank space continues the previous
 * header, as mail folds long ones) until the blank line or the first line
 * without a colon, then gather the base64 of every line up to the END line,
 * dropping all blank space. Base64 never contains a colon, so a file whose
 * headers were lost still reads. */
#include "order_armour.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "errbuf.h"

static const char *const HEADERS[] = {"Service-Serial", "Revision", "Customer", "Mode", "Seats", "Valid"};
#define N_HEADERS (sizeof HEADERS / sizeof *HEADERS)
#define HEADER_VALUE_MAX 600 /* a customer of 128 four-byte characters and some */

void order_armour_time(int64_t t, char *buf, size_t n) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        snprintf(buf, n, "%lld", (long long)t);
        return;
    }
    strftime(buf, n, t % 86400 == 0 ? "%Y-%m-%d" : "%Y-%m-%dT%H:%M:%SZ", &tm);
}

const char *order_armour_header(const Volume__V1__Order *o, const char *name, char *buf, size_t n) {
    char from[32], until[32];
    if (strcasecmp(name, "Service-Serial") == 0) snprintf(buf, n, "%s", o->service_serial);
    else if (strcasecmp(name, "Revision") == 0) snprintf(buf, n, "%u", o->revision);
    else if (strcasecmp(name, "Customer") == 0) snprintf(buf, n, "%s", o->customer);
    else if (strcasecmp(name, "Mode") == 0) snprintf(buf, n, "%s", order_mode_name(o->mode));
    else if (strcasecmp(name, "Seats") == 0) {
        if (o->mode == VOLUME__V1__SEAT_MODE__SEAT_MODE_UNLIMITED) snprintf(buf, n, "unlimited");
        else snprintf(buf, n, "%u", o->seats);
    } else if (strcasecmp(name, "Valid") == 0) {
        order_armour_time(o->valid_from, from, sizeof from);
        if (o->valid_until) order_armour_time(o->valid_until, until, sizeof until);
        snprintf(buf, n, "%s .. %s", from, o->valid_until ? until : "(no end)");
    } else return NULL;
    return buf;
}

/* ---- writing ---- */

char *order_armour_write(const order_file *f) {
    size_t blen;
    uint8_t *bin = order_file_pack(f, true, &blen);
    if (!bin) return NULL;
    size_t b64len = 4 * ((blen + 2) / 3);
    size_t cap = b64len + b64len / ORDER_ARMOUR_LINE + 2 + N_HEADERS * (HEADER_VALUE_MAX + 32) + 128;
    char *out = malloc(cap), *b64 = malloc(b64len + 1);
    if (!out || !b64) {
        free(bin), free(out), free(b64);
        return NULL;
    }
    EVP_EncodeBlock((unsigned char *)b64, bin, (int)blen);
    free(bin);
    size_t pos = (size_t)snprintf(out, cap, "%s\n", ORDER_ARMOUR_BEGIN);
    char v[HEADER_VALUE_MAX];
    for (size_t i = 0; i < N_HEADERS; i++)
        pos += (size_t)snprintf(out + pos, cap - pos, "%s: %s\n", HEADERS[i],
                                order_armour_header(f->o, HEADERS[i], v, sizeof v));
    out[pos++] = '\n';
    for (size_t i = 0; i < b64len; i += ORDER_ARMOUR_LINE) {
        size_t l = b64len - i < ORDER_ARMOUR_LINE ? b64len - i : ORDER_ARMOUR_LINE;
        memcpy(out + pos, b64 + i, l);
        pos += l;
        out[pos++] = '\n';
    }
    snprintf(out + pos, cap - pos, "%s\n", ORDER_ARMOUR_END);
    free(b64);
    return out;
}

/* ---- reading ---- */

/* One header as found: name and value, blank space folded to one space. */
typedef struct header {
    char name[32];
    char value[HEADER_VALUE_MAX];
} header;

typedef struct parsed {
    header h[N_HEADERS]; /* at most one of each known header */
    size_t n;
    char *b64; /* the body without blank space */
    size_t b64len;
} parsed;

static bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

/* Cuts blank space off both ends of [*s, *e). */
static void trim(const char **s, const char **e) {
    while (*s < *e && blank(**s)) (*s)++;
    while (*e > *s && blank((*e)[-1])) (*e)--;
}

static bool line_is(const char *s, const char *e, const char *marker) {
    trim(&s, &e);
    return (size_t)(e - s) == strlen(marker) && memcmp(s, marker, (size_t)(e - s)) == 0;
}

/* Appends [s, e) to v with runs of blank space as one space. */
static int append_folded(char *v, size_t cap, const char *s, const char *e) {
    size_t n = strlen(v);
    trim(&s, &e);
    if (n && s < e && n + 1 < cap) v[n++] = ' ';
    for (; s < e; s++) {
        if (blank(*s) && s + 1 < e && blank(s[1])) continue;
        if (n + 1 >= cap) return -1;
        v[n++] = blank(*s) ? ' ' : *s;
    }
    v[n] = '\0';
    return 0;
}

static int add_header(parsed *p, const char *s, const char *e, char *err, size_t errlen) {
    const char *colon = memchr(s, ':', (size_t)(e - s));
    const char *ns = s, *ne = colon;
    trim(&ns, &ne);
    size_t i = 0;
    while (i < N_HEADERS &&
           !((size_t)(ne - ns) == strlen(HEADERS[i]) && strncasecmp(ns, HEADERS[i], strlen(HEADERS[i])) == 0))
        i++;
    if (i == N_HEADERS)
        return err_set(err, errlen, "header '%.*s' is not one the order file has", (int)(ne - ns > 40 ? 40 : ne - ns),
                       ns);
    for (size_t j = 0; j < p->n; j++)
        if (strcmp(p->h[j].name, HEADERS[i]) == 0) return err_set(err, errlen, "header %s appears twice", HEADERS[i]);
    header *h = &p->h[p->n++];
    snprintf(h->name, sizeof h->name, "%s", HEADERS[i]);
    h->value[0] = '\0';
    if (append_folded(h->value, sizeof h->value, colon + 1, e) != 0)
        return err_set(err, errlen, "header %s is too long", HEADERS[i]);
    return 0;
}

static int add_body(parsed *p, const char *s, const char *e, char *err, size_t errlen) {
    for (; s < e; s++) {
        if (blank(*s)) continue;
        bool ok = (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '+' ||
                  *s == '/' || *s == '=';
        if (!ok)
            return err_set(err, errlen, "the body holds '%c', which is not base64", *s > 0x20 && *s < 0x7f ? *s : '?');
        p->b64[p->b64len++] = *s;
    }
    return 0;
}

/* The next line of [*pos, end): [*s, *e) without its line end. */
static bool next_line(const char **pos, const char *end, const char **s, const char **e) {
    if (*pos >= end) return false;
    *s = *pos;
    const char *nl = memchr(*pos, '\n', (size_t)(end - *pos));
    *e = nl ? nl : end;
    *pos = nl ? nl + 1 : end;
    return true;
}

static int split(parsed *p, const char *text, size_t len, char *err, size_t errlen) {
    const char *pos = text, *end = text + len, *s, *e;
    bool found = false;
    while (!found && next_line(&pos, end, &s, &e)) found = line_is(s, e, ORDER_ARMOUR_BEGIN);
    if (!found) return err_set(err, errlen, "no '%s' line: not an order file", ORDER_ARMOUR_BEGIN);
    bool in_headers = true, ended = false;
    while (!ended && next_line(&pos, end, &s, &e)) {
        const char *ts = s, *te = e;
        trim(&ts, &te);
        if (line_is(s, e, ORDER_ARMOUR_END)) ended = true;
        else if (in_headers && ts == te) in_headers = false;
        else if (in_headers && blank(*s) && p->n > 0) {
            if (append_folded(p->h[p->n - 1].value, sizeof p->h[0].value, s, e) != 0)
                return err_set(err, errlen, "header %s is too long", p->h[p->n - 1].name);
        } else if (in_headers && memchr(s, ':', (size_t)(e - s))) {
            if (add_header(p, s, e, err, errlen) != 0) return -1;
        } else {
            in_headers = false;
            if (add_body(p, s, e, err, errlen) != 0) return -1;
        }
    }
    if (!ended) return err_set(err, errlen, "no '%s' line: the file is cut short", ORDER_ARMOUR_END);
    if (p->b64len == 0) return err_set(err, errlen, "the order file has no body");
    return 0;
}

/* Base64 to bytes; NULL when it is not well-formed base64. */
static uint8_t *unbase64(const char *b64, size_t len, size_t *out_len) {
    if (len % 4 != 0 || len > (size_t)INT32_MAX) return NULL;
    size_t pad = len >= 1 && b64[len - 1] == '=' ? (len >= 2 && b64[len - 2] == '=' ? 2 : 1) : 0;
    for (size_t i = 0; i < len - pad; i++)
        if (b64[i] == '=') return NULL;
    uint8_t *out = malloc(len / 4 * 3 + 1);
    if (!out) return NULL;
    int n = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)len);
    if (n < 0 || (size_t)n < pad) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)n - pad;
    return out;
}

static int compare_headers(const parsed *p, const Volume__V1__Order *o, char *err, size_t errlen) {
    char want[HEADER_VALUE_MAX], folded[HEADER_VALUE_MAX];
    for (size_t i = 0; i < p->n; i++) {
        order_armour_header(o, p->h[i].name, want, sizeof want);
        folded[0] = '\0';
        append_folded(folded, sizeof folded, want, want + strlen(want));
        if (strcmp(folded, p->h[i].value) != 0)
            return err_set(err, errlen, "header %s says '%.80s' but the order says '%.80s' (the file was edited)",
                           p->h[i].name, p->h[i].value, folded);
    }
    return 0;
}

order_status order_armour_read(order_file *f, const char *text, size_t len, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    parsed *p = calloc(1, sizeof *p);
    if (!p || !(p->b64 = malloc(len + 1))) {
        free(p);
        return err_set(err, errlen, "out of memory"), ORDER_MALFORMED;
    }
    order_status st = ORDER_MALFORMED;
    size_t blen = 0;
    uint8_t *bin = NULL;
    if (split(p, text, len, err, errlen) != 0) goto out;
    if (!(bin = unbase64(p->b64, p->b64len, &blen))) {
        err_set(err, errlen, "the body is not valid base64");
        goto out;
    }
    st = order_file_decode(f, bin, blen, err, errlen);
    if (st == ORDER_OK && order_is_on_premises(f->o) && !f->keys)
        st = ORDER_MALFORMED, err_set(err, errlen, "keys: an on-premises order file carries its keys");
    if (st == ORDER_OK && compare_headers(p, f->o, err, errlen) != 0) st = ORDER_MALFORMED;
out:
    free(bin);
    free(p->b64);
    free(p);
    return st;
}
