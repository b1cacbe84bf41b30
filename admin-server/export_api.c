/* export_api.c -- what both export routes share: the format parameter and
 * the download (its type, its name, the log line when it ends).
 *
 * The download's name is the source's name and today's UTC date
 * ("machines-20261201.xlsx"). How the export ended is only known after
 * the last byte (or the client going away), so the stream's done step logs
 * it: rows sent, and the reason when it broke off. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "export_api.h"
#include "log.h"

bool export_format_from_query(const http_request *rq, export_format *f) {
    const char *name = http_query(rq, "format");
    if (!name) {
        http_reply_error(rq, 400, "query parameter \"format\" is required: csv, json or xlsx");
        return false;
    }
    if (export_format_parse(name, f) != 0) {
        http_reply_error(rq, 400, "query parameter \"format\": no format \"%.32s\" (csv, json or xlsx)", name);
        return false;
    }
    return true;
}

/* A download under way. */
typedef struct download {
    export *ex;      /* the export being sent */
    export_format f; /* its format, for the log */
    char what[32];   /* what it holds ("machines"), for the log */
    char user[64];   /* who asked, for the log */
} download;

static ssize_t download_read(void *state, char *buf, size_t max) {
    download *d = state;
    return export_read(d->ex, buf, max);
}

static void download_done(void *state) {
    download *d = state;
    const char *why = export_error(d->ex);
    log_info("admin.export", LOG_S("what", d->what), LOG_S("format", export_format_name(d->f)), LOG_S("user", d->user),
             LOG_U("rows", export_rows(d->ex)), LOG_S("error", why), LOG_END);
    export_close(d->ex);
    free(d);
}

void export_reply(const http_request *rq, export_format f, const export_source *src) {
    char err[256], filename[96];
    const char *what = src->name ? src->name : "export";
    download *d = calloc(1, sizeof *d);
    if (!d) {
        if (src->close) src->close(src->state);
        http_reply_error(rq, 500, "out of memory");
        return;
    }
    snprintf(d->what, sizeof d->what, "%s", what);
    snprintf(d->user, sizeof d->user, "%s", rq->user ? rq->user : "");
    d->f = f;
    d->ex = export_open(f, src, err, sizeof err);
    if (!d->ex) {
        free(d);
        log_warn("admin.export", LOG_S("what", what), LOG_S("format", export_format_name(f)), LOG_S("error", err),
                 LOG_END);
        http_reply_error(rq, 503, "the export could not be made: %s", err);
        return;
    }
    time_t now = time(NULL);
    struct tm tm;
    char day[16] = "";
    if (gmtime_r(&now, &tm)) strftime(day, sizeof day, "%Y%m%d", &tm);
    snprintf(filename, sizeof filename, "%s-%s.%s", d->what, day, export_format_name(f));
    http_reply_stream(rq, export_content_type(f), filename, download_read, download_done, d);
}
