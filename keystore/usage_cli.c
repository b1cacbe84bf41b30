/* usage_cli.c -- `keystore usage import FILE`: the vendor takes in a usage
 * report an on-premises server exported (docs/volume.md, "Usage return").
 *
 * The file is checked like an uploaded report (usage_file.h: vendor key ->
 * order -> report) and kept in the vendor's Redis A as the order's newest
 * report, through the same store call as the Usage/Report handler, so a
 * report imported by hand and one uploaded later compare by age alike. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keystore_cli.h"
#include "order_keyring.h"
#include "redis_store.h"
#include "usage_file.h"
#include "usage_store.h"

static const config_option usage_import_opts[] = {
    {"order-public-key", "FILE",
     "the vendor's order key(s) the report's order must be signed with (PEM; "
     "repeatable), required",
     NULL},
    {"json", NULL, "print the outcome as one JSON object", NULL},
    STORE_OPT_A_URL,
    STORE_OPT_A_PW,
    HIDDEN("audit-redis", "URL"),
    HIDDEN("audit-redis-password-file", "FILE"),
    HIDDEN("audit-redis-sentinel-password-file", "FILE"),
    HIDDEN("activation-kek", "FILE"),
    HIDDEN("audit-kek", "FILE"),
};

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return die("%s: %s", path, strerror(errno)), NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf && (n += fread(buf + n, 1, cap - n, f)) == cap && cap < 4 * (size_t)USAGE_REPORT_MAX) {
        char *more = realloc(buf, cap *= 2);
        if (!more) free(buf);
        buf = more;
    }
    bool bad = !buf || ferror(f) || n == cap;
    fclose(f);
    if (bad) return free(buf), die("%s: cannot read it (or too large for a usage file)", path), NULL;
    *len = n;
    return buf;
}

static order_keyring *load_ring(const config *c, int *rc) {
    const char *const *paths;
    size_t n = config_get_list(c, "order-public-key", &paths);
    char err[512];
    if (n == 0) return *rc = usage_error("--order-public-key is required"), NULL;
    order_keyring *ring = order_keyring_new();
    for (size_t i = 0; ring && i < n; i++)
        if (order_keyring_load(ring, paths[i], err, sizeof err) != 0) {
            *rc = die("--order-public-key: %s", err);
            order_keyring_free(ring);
            return NULL;
        }
    if (!ring) *rc = die("out of memory");
    return ring;
}

static int report_outcome(const config *c, const usage_summary *s, int stored) {
    if (config_get_bool(c, "json"))
        return print_json(json_pack("{s:s, s:I, s:I, s:b, s:I, s:I, s:I}", "order", s->serial, "revision",
                                    (json_int_t)s->revision, "generated_at", (json_int_t)s->generated_at, "stored",
                                    stored, "seats_held", (json_int_t)s->seats_held, "machines",
                                    (json_int_t)s->machines, "over_term", (json_int_t)s->over_term),
                          "the outcome");
    printf(stored ? "stored the usage report of order %s revision %u (%llu seats held, %llu machines)\n"
                  : "order %s revision %u: a report at least as new is already stored; kept it\n",
           s->serial, s->revision, (unsigned long long)s->seats_held, (unsigned long long)s->machines);
    return EXIT_OK;
}

static int cmd_usage_import(config *c) {
    char *const *args, err[512];
    size_t n = config_args(c, &args), len;
    if (n == 0) return usage_error("FILE is required");
    int rc = check_args(c, 1);
    order_keyring *ring = rc ? NULL : load_ring(c, &rc);
    char *text = ring ? read_all(args[0], &len) : NULL;
    Volume__V1__UsageReport *u = text ? usage_file_read(text, len, err, sizeof err) : NULL;
    if (text && !u) rc = die("%s: malformed: %s", args[0], err);
    else if (ring && !text) rc = EXIT_FAILED;
    usage_summary s;
    usage_status st = u ? usage_verify(u, ring, &s, err, sizeof err) : USAGE_MALFORMED;
    if (u && st != USAGE_OK) rc = die("%s: %s: %s", args[0], usage_status_reason(st), err);
    rstore *a = NULL;
    if (u && st == USAGE_OK && !(rc = open_store(c, "activation-redis", "activation-redis-password-file", &a))) {
        int stored = usage_store_report(a, u, &s, (int64_t)time(NULL), err, sizeof err);
        rc = stored < 0 ? die("%s", err) : report_outcome(c, &s, stored);
    }
    rstore_free(a);
    if (u) volume__v1__usage_report__free_unpacked(u, NULL);
    free(text);
    order_keyring_free(ring);
    return rc;
}

#define USAGE_CMD(v, u, o, f) \
    { "usage", v, u "\n\n" EXIT_HELP, o, sizeof o / sizeof o[0], f }
const command usage_commands[] = {
    USAGE_CMD("import",
              "keystore usage import FILE --order-public-key PEM [--activation-redis URL]\n\n"
              "Verifies a usage report exported by an on-premises server (activation-server order\n"
              "usage-export): the vendor's key signed its order, the order's delegated key signed the\n"
              "report. Keeps it in Redis A as the order's newest report (an older one is ignored).",
              usage_import_opts, cmd_usage_import),
};
const size_t n_usage_commands = sizeof usage_commands / sizeof usage_commands[0];
