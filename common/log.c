/* log.c -- structured logs: one JSON object per line on stderr.
 *
 * Design: a line is assembled in a buffer on the caller's stack (growing
 * onto the heap only for unusually long lines) and handed to the kernel
 * with a single write(2). A write of one buffer to a pipe or file is not
 * interleaved with other writers' lines the way stdio's partial flushes
 * would be, and there is no lock: threads never wait for each other to log.
 *
 * Strings are escaped to valid JSON: quotes, backslashes and control
 * characters are escaped, and bytes that are not well-formed UTF-8 become
 * U+FFFD, so a hostile peer name cannot break a log parser. Timestamps are
 * UTC with milliseconds ("2026-11-21T23:30:00.123Z") so lines from several
 * machines sort as text. */
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int min_level = LOG_LEVEL_INFO;
static char component[128];   /* set once at start-up, read by every line */

/* A line under construction: starts in a stack array, moves to the heap if
 * it outgrows it. `failed` records an allocation failure so the line is
 * emitted truncated rather than not at all. */
typedef struct line_buf {
    char *p;        /* current storage */
    size_t len;     /* bytes used */
    size_t cap;     /* bytes available */
    char *heap;     /* non-NULL once moved to the heap (to free) */
    int failed;     /* out of memory: further appends are dropped */
} line_buf;

static int lb_reserve(line_buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    if (b->failed) return -1;
    size_t cap = b->cap * 2;
    while (cap < b->len + extra) cap *= 2;
    char *n = b->heap ? realloc(b->heap, cap) : malloc(cap);
    if (!n) {
        b->failed = 1;
        return -1;
    }
    if (!b->heap) memcpy(n, b->p, b->len);
    b->heap = n;
    b->p = n;
    b->cap = cap;
    return 0;
}

static void lb_put(line_buf *b, const char *s, size_t n) {
    if (lb_reserve(b, n) != 0) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void lb_puts(line_buf *b, const char *s) { lb_put(b, s, strlen(s)); }

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000;
    else return 0;
    if (len > n) return 0;
    unsigned cp = c & (0xFF >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* Appends s as a JSON string literal, quotes included. */
static void lb_json_string(line_buf *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    lb_put(b, "\"", 1);
    if (!s) s = "";
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t run = i;   /* copy runs of plain ASCII in one go */
        while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\') run++;
        if (run > i) {
            lb_put(b, s + i, run - i);
            i = run;
            continue;
        }
        if (c == '"') lb_put(b, "\\\"", 2), i++;
        else if (c == '\\') lb_put(b, "\\\\", 2), i++;
        else if (c == '\n') lb_put(b, "\\n", 2), i++;
        else if (c == '\r') lb_put(b, "\\r", 2), i++;
        else if (c == '\t') lb_put(b, "\\t", 2), i++;
        else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            lb_put(b, esc, 6);
            i++;
        } else {
            size_t len = utf8_seq_len(u + i, n - i);
            if (len) lb_put(b, s + i, len), i += len;
            else lb_put(b, "\\ufffd", 6), i++;
        }
    }
    lb_put(b, "\"", 1);
}

/* The date and time to the second, formatted once per second per thread:
 * gmtime_r and the formatting were a good part of a line's cost. */
static _Thread_local time_t ts_second = -1;
static _Thread_local char ts_text[32];
static _Thread_local size_t ts_len;

static void lb_timestamp(line_buf *b) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != ts_second) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        int n = snprintf(ts_text, sizeof ts_text, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        ts_len = n > 0 && (size_t)n < sizeof ts_text ? (size_t)n : 0;
        ts_second = ts.tv_sec;
    }
    char ms[8];
    long milli = ts.tv_nsec / 1000000L;
    ms[0] = '.', ms[1] = (char)('0' + milli / 100), ms[2] = (char)('0' + milli / 10 % 10),
    ms[3] = (char)('0' + milli % 10), ms[4] = 'Z';
    lb_put(b, "\"ts\":\"", 6);
    lb_put(b, ts_text, ts_len);
    lb_put(b, ms, 5);
    lb_put(b, "\"", 1);
}

static const char *level_name(log_level l) {
    switch (l) {
    case LOG_LEVEL_DEBUG: return "debug";
    case LOG_LEVEL_INFO: return "info";
    case LOG_LEVEL_WARN: return "warn";
    case LOG_LEVEL_ERROR: return "error";
    }
    return "info";
}

/* Appends v in decimal, after a '-' when `minus`: the integer fields of
 * every line, without snprintf's format parsing. */
static void lb_decimal(line_buf *b, unsigned long long v, int minus) {
    char text[24];
    size_t i = sizeof text;
    do {
        text[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (minus) text[--i] = '-';
    lb_put(b, text + i, sizeof text - i);
}

/* Appends one ,"key":value pair taken from the variadic list. Returns 0 at
 * LOG_END, 1 otherwise. */
static int lb_field(line_buf *b, va_list *ap) {
    int tag = va_arg(*ap, int);
    if (tag == LOG_T_END) return 0;
    const char *key = va_arg(*ap, const char *);
    char num[64];
    lb_put(b, ",", 1);
    lb_json_string(b, key);
    lb_put(b, ":", 1);
    switch (tag) {
    case LOG_T_STR: lb_json_string(b, va_arg(*ap, const char *)); break;
    case LOG_T_INT: {
        long long v = va_arg(*ap, long long);
        lb_decimal(b, v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v, v < 0);
        break;
    }
    case LOG_T_UINT: lb_decimal(b, va_arg(*ap, unsigned long long), 0); break;
    case LOG_T_DOUBLE: {
        double d = va_arg(*ap, double);
        if (isfinite(d)) snprintf(num, sizeof num, "%.15g", d), lb_puts(b, num);
        else lb_puts(b, "null");   /* JSON has no NaN or infinity */
        break;
    }
    case LOG_T_BOOL: lb_puts(b, va_arg(*ap, int) ? "true" : "false"); break;
    default:
        /* An unknown tag means the argument list is malformed; reading on
         * would walk off it, so stop here. */
        lb_puts(b, "null");
        return 0;
    }
    return 1;
}

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;   /* nowhere to report a failure to log */
        p += w;
        n -= (size_t)w;
    }
}

/* Lines held back by log_hold: whole lines, written together by
 * log_release (or earlier, when the next would not fit). Kept at most
 * PIPE_BUF bytes, the size of a write to a pipe that POSIX keeps whole:
 * lines of other threads still never interleave. */
static _Thread_local char held[PIPE_BUF];
static _Thread_local size_t held_len;
static _Thread_local int holding;

static void held_flush(void) {
    if (held_len) write_all(STDERR_FILENO, held, held_len);
    held_len = 0;
}

static void emit_line(const char *p, size_t n) {
    if (!holding) {
        write_all(STDERR_FILENO, p, n);
        return;
    }
    if (held_len + n > sizeof held) held_flush();
    if (n > sizeof held) {
        write_all(STDERR_FILENO, p, n);
        return;
    }
    memcpy(held + held_len, p, n);
    held_len += n;
}

void log_hold(void) { holding = 1; }

void log_release(void) {
    held_flush();
    holding = 0;
}

void log_set_level(log_level min) { atomic_store(&min_level, (int)min); }

int log_level_parse(const char *s) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (!s) return -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) return i;
    if (strcmp(s, "warning") == 0) return LOG_LEVEL_WARN;
    return -1;
}

void log_set_component(const char *name) {
    snprintf(component, sizeof component, "%s", name ? name : "");
}

/* Appends the fields every line starts with: ts, level, component, event. */
static void lb_head(line_buf *b, log_level lvl, const char *event) {
    lb_put(b, "{", 1);
    lb_timestamp(b);
    lb_puts(b, ",\"level\":\"");
    lb_puts(b, level_name(lvl));
    lb_put(b, "\"", 1);
    if (component[0]) {
        lb_puts(b, ",\"component\":");
        lb_json_string(b, component);
    }
    lb_puts(b, ",\"event\":");
    lb_json_string(b, event);
}

void log_emit(log_level lvl, const char *event, ...) {
    if ((int)lvl < atomic_load(&min_level)) return;
    char stack[1024];
    line_buf b = {stack, 0, sizeof stack, NULL, 0};
    lb_head(&b, lvl, event);
    va_list ap;
    va_start(ap, event);
    while (lb_field(&b, &ap)) {
    }
    va_end(ap);
    if (b.failed) {
        /* Out of memory mid-line: a cut line would not parse, so say that
         * fields were lost instead. */
        free(b.heap);
        b = (line_buf){stack, 0, sizeof stack, NULL, 0};
        lb_head(&b, lvl, event);
        lb_puts(&b, ",\"log_truncated\":true");
    }
    lb_put(&b, "}\n", 2);
    emit_line(b.p, b.len);
    free(b.heap);
}
