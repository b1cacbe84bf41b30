/* log_bench.c -- what the activation server's hot log line costs, written
 * by common/log.c (a hand-written JSON writer with a timestamp, one
 * write(2)) and, for comparison, by jansson building the same object and
 * dumping it to the same file descriptor. The daemons log through log.c
 * only; this benchmark is why its fast path stays (docs/architecture.md).
 *
 *   log_bench [--lines N]     prints ns per line for each writer
 *
 * Lines go to /dev/null, so the figures are the writers' own CPU. */
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

static void log_c_line(unsigned i) {
    log_info("activate.granted", LOG_U("group", 4365), LOG_U("serial", i), LOG_U("count", 1), LOG_B("again", 0),
             LOG_S("audit", "none"), LOG_S("audit_reason", "none"), LOG_S("audit_request_id", ""),
             LOG_S("peer", "ipv4:127.0.0.1:51000"), LOG_END);
}

/* The same line through jansson, timestamp included, one write(2). */
static void jansson_line(unsigned i) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:b,s:s,s:s,s:s,s:s}", "ts", when, "level", "info", "component",
                          "bench", "event", "activate.granted", "group", (json_int_t)4365, "serial", (json_int_t)i,
                          "count", (json_int_t)1, "again", 0, "audit", "none", "audit_reason", "none",
                          "audit_request_id", "", "peer", "ipv4:127.0.0.1:51000");
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (text) {
        size_t len = strlen(text);
        if (write(2, text, len) < 0 || write(2, "\n", 1) < 0) exit(1);
    }
    free(text);
    json_decref(o);
}

static double measure(void (*line)(unsigned), unsigned lines) {
    int64_t t0 = pa_mono_ns();
    for (unsigned i = 0; i < lines; i++) line(i);
    return (double)(pa_mono_ns() - t0) / lines;
}

int main(int argc, char **argv) {
    unsigned lines = 200000;
    if (argc == 3 && strcmp(argv[1], "--lines") == 0) lines = (unsigned)strtoul(argv[2], NULL, 10);
    else if (argc != 1) {
        fprintf(stderr, "usage: log_bench [--lines N]\n");
        return 2;
    }
    if (lines == 0) lines = 1;
    int saved = dup(2), null = open("/dev/null", O_WRONLY);
    if (saved < 0 || null < 0 || dup2(null, 2) < 0) return 1;
    log_set_component("bench");
    double ours = 0, theirs = 0;
    for (int round = 0; round < 3; round++) { /* alternate, so drift hits both alike */
        ours += measure(log_c_line, lines) / 3;
        theirs += measure(jansson_line, lines) / 3;
    }
    dup2(saved, 2);
    printf("log line, common/log.c: %.0f ns\n", ours);
    printf("log line, jansson:      %.0f ns\n", theirs);
    printf("ratio jansson/log.c:    %.2f\n", theirs / ours);
    return 0;
}
