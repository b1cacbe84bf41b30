/* order_cli.c -- `activation-server order import|list|show|retire`, the
 * seat controls `machines|designate|undesignate|set-match|approve|deny|deactivate`
 * and `order usage-export` (usage_report.h); see order_cli.h.
 *
 * Design: a table of subcommands, each one entry (name, usage text, its own
 * options, which of the daemon's options its --help shows) and one function
 * taking an order_ctx. The option table of a run is the subcommand's
 * options followed by the daemon's whole table (daemon_options), the ones
 * the subcommand does not use hidden, so the daemon's config file and
 * environment load without complaint. Store access goes through
 * order_store.h, order_describe.h and order_controls.h (library
 * pa_order_admin, which the admin server links too, so the console and this
 * command run the same code); this file only parses, prints and picks exit
 * codes.
 *
 * The commands that write orders (import, retire) need a Redis user that
 * may write {o:*}:order: the store's `keystore` user (docker/redis/
 * activation.acl.in), given with --redis-url; the daemon's `activation`
 * user may only read orders. The seat controls work with either: they
 * change the machine table and the designated set, as the server does, the
 * decisions through volume.lua (volume_policy.h) so they are atomic with
 * the seats. */
#include "order_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "license.h"
#include "order_armour.h"
#include "order_json.h"
#include "order_keyring.h"
#include "order_controls.h"
#include "order_describe.h"
#include "order_store.h"
#include "usage_file.h"
#include "usage_report.h"
#include "file_atomic.h"
#include "hex.h"
#include "volume_policy.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };
#define EXIT_HELP                                                                                     \
    "Exit codes: 0 success; 1 the operation failed or was refused (the reason is printed); 2 usage\n" \
    "error (unknown command or option, missing argument, malformed value)."

typedef struct order_ctx {
    const char *command; /* "import", for messages */
    config *cfg;         /* the run's options */
    rstore *redis;       /* opened by ctx_store */
} order_ctx;

__attribute__((format(printf, 3, 4))) static int fail(const order_ctx *c, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "activation-server order %s: error: ", c->command);
    vfprintf(stderr, fmt, ap);
    fputs(code == EXIT_USAGE ? " (see --help)\n" : "\n", stderr);
    va_end(ap);
    return code;
}

static int print_json(const order_ctx *c, json_t *j) {
    if (!j) return fail(c, EXIT_FAILED, "cannot build the JSON (out of memory, or text that is not UTF-8)");
    int rc = json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0 && fputc('\n', stdout) != EOF
                 ? EXIT_OK
                 : fail(c, EXIT_FAILED, "writing the JSON failed");
    json_decref(j);
    return rc;
}

/* The store as the options say; NULL after printing why. */
static rstore *ctx_store(order_ctx *c) {
    bool ok = true;
    int timeout = (int)config_get_int(c->cfg, "redis-timeout-ms", 10, 60000, &ok);
    rstore_config rc = {
        .url = config_get(c->cfg, "redis-url"),
        .password_file = config_get(c->cfg, "redis-password-file"),
        .connect_timeout_ms = timeout,
        .command_timeout_ms = timeout < 10000 ? 10000 : timeout, /* an import of many keys takes a while */
        .sentinel_password_file = config_get(c->cfg, "redis-sentinel-password-file")};
    char err[256];
    if (!ok) return NULL;
    if (!(c->redis = rstore_new(&rc, false, err, sizeof err))) fail(c, EXIT_FAILED, "--redis-url: %s", err);
    return c->redis;
}

/* The single positional argument, or NULL after a usage error. */
static const char *one_arg(order_ctx *c, const char *what, int *rc) {
    char *const *args;
    size_t n = config_args(c->cfg, &args);
    if (n == 1) return args[0];
    *rc =
        n == 0 ? fail(c, EXIT_USAGE, "%s is required", what) : fail(c, EXIT_USAGE, "unexpected argument '%s'", args[1]);
    return NULL;
}

static const char *serial_arg(order_ctx *c, int *rc) {
    const char *s = one_arg(c, "SERIAL", rc);
    bool ok = s && strlen(s) == ORDER_SERIAL_LEN;
    for (size_t i = 0; ok && i < ORDER_SERIAL_LEN; i++) ok = s[i] >= '0' && s[i] <= '9';
    if (s && !ok) *rc = fail(c, EXIT_USAGE, "SERIAL '%s' is not %d digits", s, ORDER_SERIAL_LEN);
    return ok ? s : NULL;
}

/* Reads a whole file (at most 256 MiB: a million keys is about 24 MB). */
static char *read_file(order_ctx *c, const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(c, EXIT_FAILED, "%s: %s", path, strerror(errno)), NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf && (n += fread(buf + n, 1, cap - n, f)) == cap && cap < (256u << 20)) {
        char *more = realloc(buf, cap *= 2);
        if (!more) free(buf);
        buf = more;
    }
    bool bad = !buf || ferror(f) || n == cap;
    fclose(f);
    if (bad) return free(buf), fail(c, EXIT_FAILED, "%s: cannot read it (or larger than 256 MiB)", path), NULL;
    *len = n;
    return buf;
}

/* ---- import ---- */

static const config_option import_opts[] = {{"json", NULL, "print the outcome as one JSON object", NULL}};
static const char *const import_shown[] = {
    "redis-url", "redis-password-file", "redis-timeout-ms", "order-public-key", "on-premises", "signing-key", NULL};

/* The server's identity for import: its order keys, and on-premises its
 * own public key (from --signing-key). */
static int load_server(order_ctx *c, order_server *srv, order_keyring **ring, uint8_t pub[TAGGED_KEY_LEN]) {
    const char *const *paths;
    size_t n = config_get_list(c->cfg, "order-public-key", &paths);
    char err[512];
    if (!(*ring = order_keyring_new())) return fail(c, EXIT_FAILED, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (order_keyring_load(*ring, paths[i], err, sizeof err) != 0)
            return fail(c, EXIT_FAILED, "--order-public-key: %s", err);
    *srv = (order_server){.order_keys = *ring, .on_premises = config_get_bool(c->cfg, "on-premises")};
    if (!srv->on_premises) return EXIT_OK;
    const char *sk = config_get(c->cfg, "signing-key");
    if (!sk) return fail(c, EXIT_USAGE, "--signing-key is required with --on-premises (the key orders delegate)");
    license_key k = {0};
    size_t len = TAGGED_KEY_LEN;
    if (license_key_load(&k, sk, err, sizeof err) != 0) return fail(c, EXIT_FAILED, "--signing-key: %s", err);
    int ok = EVP_PKEY_get_raw_public_key(k.pkey, pub, &len) == 1;
    license_key_free(&k);
    if (!ok) return fail(c, EXIT_FAILED, "--signing-key %s: no raw public key", sk);
    srv->signing_key = pub;
    return EXIT_OK;
}

static const char *result_text(order_import_result r) {
    switch (r) {
    case ORDER_IMPORT_NEW: return "imported";
    case ORDER_IMPORT_REPLACED: return "replaced";
    case ORDER_IMPORT_UNCHANGED: return "unchanged";
    case ORDER_IMPORT_REFUSED: return "refused";
    default: return "failed";
    }
}

static int print_import(order_ctx *c, const order_import_outcome *o) {
    if (config_get_bool(c->cfg, "json"))
        return print_json(c, json_pack("{s:s, s:s, s:I, s:I, s:I}", "result", result_text(o->result), "order",
                                       o->serial, "revision", (json_int_t)o->revision, "previous_revision",
                                       (json_int_t)o->previous_revision, "version", (json_int_t)o->version));
    if (o->result == ORDER_IMPORT_NEW) printf("imported order %s revision %u\n", o->serial, o->revision);
    else if (o->result == ORDER_IMPORT_REPLACED)
        printf("order %s revision %u replaces revision %u; its machines are kept\n", o->serial, o->revision,
               o->previous_revision);
    else printf("order %s revision %u is already imported; nothing changed\n", o->serial, o->revision);
    return EXIT_OK;
}

static int cmd_import(order_ctx *c) {
    int rc = EXIT_OK;
    const char *path = one_arg(c, "FILE", &rc);
    if (!path) return rc;
    order_server srv;
    order_keyring *ring = NULL;
    uint8_t pub[TAGGED_KEY_LEN];
    size_t len = 0;
    char *text = NULL, err[1024];
    if (!(rc = load_server(c, &srv, &ring, pub)) && !(text = read_file(c, path, &len))) rc = EXIT_FAILED;
    if (!rc && !ctx_store(c)) rc = EXIT_FAILED;
    if (!rc) {
        order_import_outcome out;
        order_import_result res = order_import(c->redis, &srv, text, len, (int64_t)time(NULL), &out, err, sizeof err);
        if (res == ORDER_IMPORT_REFUSED) rc = fail(c, EXIT_FAILED, "%s refused: %s", path, err);
        else if (res == ORDER_IMPORT_FAILED)
            rc = fail(c, EXIT_FAILED, "%s (order import writes {o:*}:order: use the store's keystore user)", err);
        else rc = print_import(c, &out);
    }
    free(text);
    order_keyring_free(ring);
    return rc;
}

/* ---- list, show ---- */

static const config_option list_opts[] = {{"json", NULL, "print a JSON array", NULL}};
static const config_option show_opts[] = {{"json", NULL, "print one JSON object", NULL}};
static const config_option retire_opts[] = {{"json", NULL, "print the outcome as one JSON object", NULL}};
static const char *const store_shown[] = {"redis-url", "redis-password-file", "redis-timeout-ms", NULL};

static int cmd_list(order_ctx *c) {
    char(*serials)[ORDER_SERIAL_LEN + 1] = NULL, err[512];
    size_t n = 0;
    bool json = config_get_bool(c->cfg, "json");
    char *const *args;
    int rc = config_args(c->cfg, &args) ? fail(c, EXIT_USAGE, "unexpected argument '%s'", args[0]) : EXIT_OK;
    if (!rc && !ctx_store(c)) rc = EXIT_FAILED;
    if (!rc && order_store_list(c->redis, &serials, &n, err, sizeof err) != 0) rc = fail(c, EXIT_FAILED, "%s", err);
    json_t *all = json && !rc ? json_array() : NULL;
    for (size_t i = 0; !rc && i < n; i++) {
        order_record rec;
        if (order_store_load(c->redis, serials[i], &rec, err, sizeof err) != 0) {
            if (!json) printf("%-8s (unreadable: %s)\n", serials[i], err);
            order_record_clear(&rec);
            continue;
        }
        char from[40], until[40] = "(no end)";
        order_armour_time(rec.valid_from, from, sizeof from);
        if (rec.valid_until) order_armour_time(rec.valid_until, until, sizeof until);
        if (json) {
            json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:I, s:s, s:s, s:s, s:b, s:I}", "service_serial", rec.serial,
                                  "revision", (json_int_t)rec.revision, "customer", rec.customer, "mode",
                                  seat_mode_name(rec.mode), "seats", (json_int_t)rec.seats, "valid_from", from,
                                  "valid_until", until, "deployment", rec.on_premises ? "on-premises" : "vendor-hosted",
                                  "retired", rec.retired, "version", (json_int_t)rec.version);
            if (!o || json_array_append_new(all, o) != 0) rc = fail(c, EXIT_FAILED, "cannot build the JSON");
        } else {
            printf("%-8s r%-3u %-13s %7u seats  %s .. %s  %s%s\n", rec.serial, rec.revision, seat_mode_name(rec.mode),
                   rec.seats, from, until, rec.customer, rec.retired ? "  (retired)" : "");
        }
        order_record_clear(&rec);
    }
    if (all && !rc) rc = print_json(c, all);
    else json_decref(all);
    free(serials);
    return rc;
}

static int cmd_show(order_ctx *c) {
    int rc = EXIT_OK;
    const char *serial = serial_arg(c, &rc);
    char err[512];
    order_record rec = {0};
    if (!serial) return rc;
    if (!ctx_store(c)) return EXIT_FAILED;
    int found = order_store_load(c->redis, serial, &rec, err, sizeof err);
    json_t *j = found == 0 ? order_describe(c->redis, &rec) : NULL;
    if (found == 1) rc = fail(c, EXIT_FAILED, "no order %s is imported here", serial);
    else if (found < 0) rc = fail(c, EXIT_FAILED, "%s", err);
    else if (config_get_bool(c->cfg, "json")) rc = print_json(c, j), j = NULL;
    else if (!j) rc = fail(c, EXIT_FAILED, "cannot describe order %s", serial);
    else {
        printf("order %s revision %u%s\n", rec.serial, rec.revision, rec.retired ? " (retired)" : "");
        order_json_print_text(j, stdout, 2);
    }
    json_decref(j);
    order_record_clear(&rec);
    return rc;
}

static int cmd_retire(order_ctx *c) {
    int rc = EXIT_OK;
    const char *serial = serial_arg(c, &rc);
    char err[512];
    uint64_t version = 0;
    if (!serial) return rc;
    if (!ctx_store(c)) return EXIT_FAILED;
    int r = order_store_retire(c->redis, serial, &version, err, sizeof err);
    if (r == 1) return fail(c, EXIT_FAILED, "no order %s is imported here", serial);
    if (r < 0) return fail(c, EXIT_FAILED, "%s (retire writes {o:*}:order: use the store's keystore user)", err);
    if (config_get_bool(c->cfg, "json"))
        return print_json(c, json_pack("{s:s, s:s, s:I}", "order", serial, "result", r == 2 ? "already" : "retired",
                                       "version", (json_int_t)version));
    printf(r == 2 ? "order %s was already retired\n"
                  : "retired order %s: it refuses activations and renewals and keeps its machines\n",
           serial);
    return EXIT_OK;
}

/* ---- usage-export ---- */

static const config_option export_opts[] = {
    {"out", "FILE", "write the signed report here (JSON; replaced atomically, mode 0644), required", NULL},
};
static const char *const export_shown[] = {"redis-url", "redis-password-file", "redis-timeout-ms", "signing-key", NULL};

/* Writes `text` to `path` atomically (file_atomic.h), replacing it. */
static int write_atomically(order_ctx *c, const char *path, const char *text) {
    if (pa_file_write_atomic(path, text, strlen(text), 0644, true) == 0) return EXIT_OK;
    return fail(c, EXIT_FAILED, "writing %s: %s", path, strerror(errno));
}

static int cmd_usage_export(order_ctx *c) {
    int rc = EXIT_OK;
    const char *serial = serial_arg(c, &rc), *out = config_get(c->cfg, "out"), *sk = config_get(c->cfg, "signing-key");
    if (!serial) return rc;
    if (!out) return fail(c, EXIT_USAGE, "--out is required");
    if (!sk) return fail(c, EXIT_USAGE, "--signing-key is required (the key the order delegates signs the report)");
    license_key key = {0};
    order_record rec = {0};
    usage_report rep = {0};
    char err[512], *text = NULL;
    if (license_key_load(&key, sk, err, sizeof err) != 0) return fail(c, EXIT_FAILED, "--signing-key: %s", err);
    int found = ctx_store(c) ? order_store_load(c->redis, serial, &rec, err, sizeof err) : -2;
    if (found == 1) rc = fail(c, EXIT_FAILED, "no order %s is imported here", serial);
    else if (found == -1) rc = fail(c, EXIT_FAILED, "%s", err);
    else if (found < 0) rc = EXIT_FAILED;
    else if (usage_report_make(c->redis, &rec, &key, (int64_t)time(NULL), &rep, err, sizeof err) != 0)
        rc = fail(c, EXIT_FAILED, "%s", err);
    if (!rc) {
        Volume__V1__UsageReport msg;
        usage_report_message(&rec, &rep, &msg);
        text = usage_file_write(&msg);
        rc = text ? write_atomically(c, out, text) : fail(c, EXIT_FAILED, "out of memory");
    }
    if (!rc) printf("wrote the usage report of order %s (%zu bytes) to %s\n", serial, rep.len, out);
    free(text);
    usage_report_clear(&rep);
    order_record_clear(&rec);
    license_key_free(&key);
    return rc;
}

/* ---- machines, designate, undesignate, approve, deny, deactivate ---- */

static const config_option machines_opts[] = {{"json", NULL, "print a JSON array", NULL}};
static const config_option designate_opts[] = {
    {"machine-id", "HEX", "the machine's digest (32 hex: the first 16 bytes of SHA-256(machine id))", NULL},
    {"host-serial", "S", "the host's serial number (DMI), as its installer reports it", NULL},
    {"mac", "M", "one of its MAC addresses, aa:bb:cc:dd:ee:ff", NULL},
    {"json", NULL, "print the outcome as one JSON object", NULL}};
static const config_option decide_opts[] = {{"json", NULL, "print the outcome as one JSON object", NULL}};

/* SERIAL and, with `second`, one more positional argument. */
static const char *serial_and(order_ctx *c, const char *second, const char **value, int *rc) {
    char *const *args;
    size_t n = config_args(c->cfg, &args), want = second ? 2 : 1;
    if (n != want) {
        *rc = n < want ? fail(c, EXIT_USAGE, "%s is required", n == 0 ? "SERIAL" : second)
                       : fail(c, EXIT_USAGE, "unexpected argument '%s'", args[want]);
        return NULL;
    }
    bool ok = strlen(args[0]) == ORDER_SERIAL_LEN;
    for (size_t i = 0; ok && i < ORDER_SERIAL_LEN; i++) ok = args[0][i] >= '0' && args[0][i] <= '9';
    if (!ok) return *rc = fail(c, EXIT_USAGE, "SERIAL '%s' is not %d digits", args[0], ORDER_SERIAL_LEN), NULL;
    if (second) *value = args[1];
    return args[0];
}

/* The stored order (caller clears it); false after printing why. */
static bool load_order(order_ctx *c, const char *serial, order_record *rec, int *rc) {
    char err[512];
    if (!ctx_store(c)) return *rc = EXIT_FAILED, false;
    int found = order_store_load(c->redis, serial, rec, err, sizeof err);
    if (found == 1) *rc = fail(c, EXIT_FAILED, "no order %s is imported here", serial);
    else if (found < 0) *rc = fail(c, EXIT_FAILED, "%s", err);
    return found == 0;
}

static json_t *machine_json(const char *hex, const volume_record *m, const char *status, const redisReply *facts) {
    char first[40], last[40], lease[40] = "";
    order_armour_time(m->first_seen, first, sizeof first);
    order_armour_time(m->last_contact, last, sizeof last);
    if (m->lease_until) order_armour_time(m->lease_until, lease, sizeof lease);
    json_t *flags = json_array();
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{VOLUME_F_ASKED, "deactivation-requested"},
                 {VOLUME_F_DENIED, "deactivation-denied"},
                 {VOLUME_F_OVER, "over-term"},
                 {VOLUME_F_OUT, "out-of-window"}};
    for (size_t i = 0; flags && i < sizeof names / sizeof *names; i++)
        if (m->flags & names[i].bit) json_array_append_new(flags, json_string(names[i].name));
    json_t *f = facts && facts->type == REDIS_REPLY_STRING ? json_loadb(facts->str, facts->len, 0, NULL) : NULL;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "machine", hex, "status", status, "first_seen", first,
                     "last_contact", last, "lease_until", lease, "flags", flags ? flags : json_array(), "facts",
                     f ? f : json_object());
}

/* One machine of the table: printed, or added to `all` (--json). */
typedef struct machines_run {
    order_ctx *c;
    bool counted; /* the order counts seats (not unlimited) */
    json_t *all;  /* --json: the array being built; NULL: print lines */
} machines_run;

static int machine_line(void *arg, const uint8_t digest[VOLUME_DIGEST_LEN], const volume_record *m,
                        const redisReply *facts) {
    machines_run *run = arg;
    char hex[2 * VOLUME_DIGEST_LEN + 1];
    pa_hex_encode(digest, VOLUME_DIGEST_LEN, hex);
    json_t *j = machine_json(hex, m, volume_record_status(m, run->counted), facts);
    if (!j) return fail(run->c, EXIT_FAILED, "cannot build the JSON");
    if (run->all) return json_array_append_new(run->all, j), EXIT_OK;
    char *text = json_dumps(json_object_get(j, "facts"), JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("%s  %-11s first %s  last %s  %s\n", hex, json_string_value(json_object_get(j, "status")),
           json_string_value(json_object_get(j, "first_seen")), json_string_value(json_object_get(j, "last_contact")),
           text ? text : "{}");
    free(text);
    json_decref(j);
    return EXIT_OK;
}

static int cmd_machines(order_ctx *c) {
    int rc = EXIT_OK;
    const char *serial = serial_and(c, NULL, NULL, &rc);
    order_record rec = {0};
    char err[512];
    if (!serial || !load_order(c, serial, &rec, &rc)) return order_record_clear(&rec), rc;
    machines_run run = {c, rec.mode != SEAT_MODE_UNLIMITED, config_get_bool(c->cfg, "json") ? json_array() : NULL};
    rc = order_machines_each(c->redis, &rec, true, machine_line, &run, err, sizeof err);
    if (rc < 0) rc = fail(c, EXIT_FAILED, "%s", err);
    if (run.all && !rc) rc = print_json(c, run.all);
    else json_decref(run.all);
    order_record_clear(&rec);
    return rc;
}

/* The device named by exactly one of --machine-id, --host-serial, --mac. */
static int device_name(order_ctx *c, char name[VOLUME_DESIGNATION_MAX]) {
    static const struct {
        const char *option;
        char kind;
    } kinds[] = {{"machine-id", 'm'}, {"host-serial", 's'}, {"mac", 'a'}};
    int given = 0, rc = EXIT_OK;
    for (size_t i = 0; i < 3; i++) {
        const char *v = config_get(c->cfg, kinds[i].option);
        if (!v) continue;
        if (given++) return fail(c, EXIT_USAGE, "give one of --machine-id, --host-serial, --mac");
        if (volume_designation_name(kinds[i].kind, v, name) < 0)
            rc = fail(c, EXIT_USAGE, "--%s '%s' is not %s", kinds[i].option, v,
                      kinds[i].kind == 'm'   ? "32 hex digits (a machine digest)"
                      : kinds[i].kind == 'a' ? "a MAC address aa:bb:cc:dd:ee:ff"
                                             : "at most 64 printable characters");
    }
    if (!given) return fail(c, EXIT_USAGE, "one of --machine-id, --host-serial, --mac is required");
    return rc;
}

static int designation(order_ctx *c, bool add) {
    int rc = EXIT_OK;
    const char *serial = serial_and(c, NULL, NULL, &rc);
    char name[VOLUME_DESIGNATION_MAX], err[512];
    bool changed = false;
    if (!serial || (rc = device_name(c, name)) != EXIT_OK) return rc;
    if (!ctx_store(c)) return EXIT_FAILED;
    int r = order_designate(c->redis, serial, name, add, &changed, err, sizeof err);
    if (r == 1) return fail(c, EXIT_FAILED, "no order %s is imported here", serial);
    if (r < 0) return fail(c, EXIT_FAILED, "%s", err);
    if (config_get_bool(c->cfg, "json"))
        return print_json(c, json_pack("{s:s, s:s, s:b}", "order", serial, "device", name, "changed", changed));
    printf(add ? (changed ? "designated %s on order %s: it activates at its next check-in\n"
                          : "%s was already designated on order %s\n")
               : (changed ? "undesignated %s on order %s\n" : "%s was not designated on order %s\n"),
           name, serial);
    return EXIT_OK;
}

static const config_option match_opts[] = {{"json", NULL, "print the outcome as one JSON object", NULL}};

static int cmd_set_match(order_ctx *c) {
    int rc = EXIT_OK;
    const char *k_text = NULL, *serial = serial_and(c, "K", &k_text, &rc);
    unsigned k = 0;
    uint64_t version = 0;
    char err[512];
    if (!serial) return rc;
    if (order_match_parse(k_text, &k) != 0)
        return fail(c, EXIT_USAGE, "K '%s' is not 'exact' or a number of components from 1 to %d", k_text,
                    ORDER_MATCH_MAX);
    if (!ctx_store(c)) return EXIT_FAILED;
    int r = order_set_match(c->redis, serial, k, &version, err, sizeof err);
    if (r == 1) return fail(c, EXIT_FAILED, "no order %s is imported here", serial);
    if (r < 0) return fail(c, EXIT_FAILED, "%s (set-match writes {o:*}:order: use the store's keystore user)", err);
    if (config_get_bool(c->cfg, "json"))
        return print_json(c, json_pack("{s:s, s:I, s:s, s:I}", "order", serial, "machine_match", (json_int_t)k,
                                       "result", r == 2 ? "unchanged" : "set", "version", (json_int_t)version));
    if (k == 0) printf("order %s matches machines exactly (by machine id)%s\n", serial, r == 2 ? " already" : "");
    else
        printf("order %s %s a new machine id to a machine sharing at least %u components\n", serial,
               r == 2 ? "already re-binds" : "now re-binds", k);
    return EXIT_OK;
}

static int cmd_designate(order_ctx *c) { return designation(c, true); }
static int cmd_undesignate(order_ctx *c) { return designation(c, false); }

static int decide(order_ctx *c, volume_decision d) {
    int rc = EXIT_OK;
    const char *hex = NULL, *serial = serial_and(c, "MACHINE", &hex, &rc);
    uint8_t digest[VOLUME_DIGEST_LEN];
    if (!serial) return rc;
    if (pa_hex_decode(hex, strlen(hex), digest, sizeof digest) != VOLUME_DIGEST_LEN)
        return fail(c, EXIT_USAGE, "MACHINE '%s' is not 32 hex digits (a machine digest, see `order machines`)", hex);
    if (!ctx_store(c)) return EXIT_FAILED;
    int script = volume_register(c->redis);
    volume_result r;
    if (script < 0) return fail(c, EXIT_FAILED, "cannot register volume.lua");
    volume_decide(c->redis, script, serial, d, digest, &r);
    switch (r.status) {
    case VOLUME_OK: break;
    case VOLUME_UNKNOWN_ORDER: return fail(c, EXIT_FAILED, "no order %s is imported here", serial);
    case VOLUME_NOT_FOUND: return fail(c, EXIT_FAILED, "order %s has no machine %s", serial, hex);
    case VOLUME_NOT_REQUESTED:
        return fail(c, EXIT_FAILED, "machine %s asked for no deactivation (order %s)", hex, serial);
    default: return fail(c, EXIT_FAILED, "%s", r.status == VOLUME_UNAVAILABLE ? r.error : volume_status_name(r.status));
    }
    static const char *const done[] = {[VOLUME_APPROVE] = "approved the deactivation of",
                                       [VOLUME_DENY] = "denied the deactivation of",
                                       [VOLUME_FORCE] = "deactivated"};
    if (config_get_bool(c->cfg, "json"))
        return print_json(c, json_pack("{s:s, s:s, s:s, s:I, s:I}", "order", serial, "machine", hex, "result",
                                       volume_decision_name(d), "seats_used", (json_int_t)r.seats_used, "machines",
                                       (json_int_t)r.count));
    printf("%s machine %s on order %s; seats used now %u%s\n", done[d], hex, serial, r.seats_used,
           d == VOLUME_DENY ? " (it hears of it at its next renewal)" : "");
    return EXIT_OK;
}

static int cmd_approve(order_ctx *c) { return decide(c, VOLUME_APPROVE); }
static int cmd_deny(order_ctx *c) { return decide(c, VOLUME_DENY); }
static int cmd_deactivate(order_ctx *c) { return decide(c, VOLUME_FORCE); }

/* ---- the table ---- */

typedef struct order_command {
    const char *name;          /* "import" */
    const char *usage;         /* usage line, blank line, description */
    const config_option *opts; /* its own options */
    size_t n_opts;
    const char *const *shown; /* the daemon's options its --help lists (NULL-terminated) */
    int (*run)(order_ctx *c);
} order_command;

#define ORDER_COMMAND(name, usage, opts, shown, fn) \
    { name, usage "\n\n" EXIT_HELP, opts, sizeof opts / sizeof *opts, shown, fn }
static const order_command commands[] = {
    ORDER_COMMAND("import",
                  "activation-server order import FILE [--order-public-key PEM] [--on-premises --signing-key PEM]\n\n"
                  "Verifies an order file (.license) and stores it, or refuses it with the reason: malformed,\n"
                  "foreign vendor, tampered, expired, wrong server, older revision, conflict. The same file\n"
                  "again changes nothing; a higher revision replaces the order and keeps its machines.",
                  import_opts, import_shown, cmd_import),
    ORDER_COMMAND("list", "activation-server order list [--json]\n\nLists the imported orders.", list_opts, store_shown,
                  cmd_list),
    ORDER_COMMAND("show",
                  "activation-server order show SERIAL [--json]\n\n"
                  "Prints an imported order's terms, state and counters.",
                  show_opts, store_shown, cmd_show),
    ORDER_COMMAND("retire",
                  "activation-server order retire SERIAL\n\n"
                  "Retires an order: it refuses activations and renewals (ORDER_RETIRED) and keeps its\n"
                  "machine table for the usage return. A new revision does not bring it back.",
                  retire_opts, store_shown, cmd_retire),
    ORDER_COMMAND("usage-export",
                  "activation-server order usage-export SERIAL --out FILE [--signing-key PEM]\n\n"
                  "Writes the order's usage report, signed with this on-premises server's key, as a JSON\n"
                  "file for the vendor (keystore usage import) when the server cannot reach the vendor.",
                  export_opts, export_shown, cmd_usage_export),
    ORDER_COMMAND("machines",
                  "activation-server order machines SERIAL [--json]\n\n"
                  "Prints the order's machine table: digest, status (active, pending, lapsed, deactivated),\n"
                  "first seen, last contact and the facts the order collects.",
                  machines_opts, store_shown, cmd_machines),
    ORDER_COMMAND("designate",
                  "activation-server order designate SERIAL --machine-id HEX | --host-serial S | --mac M\n\n"
                  "Registers a device: with auto-activation off only registered devices activate (the others\n"
                  "are answered PENDING_NOT_DESIGNATED); the device's daemon activates at its next check-in.",
                  designate_opts, store_shown, cmd_designate),
    ORDER_COMMAND("undesignate",
                  "activation-server order undesignate SERIAL --machine-id HEX | --host-serial S | --mac M\n\n"
                  "Removes a device's registration (a machine that holds a seat keeps it).",
                  designate_opts, store_shown, cmd_undesignate),
    ORDER_COMMAND("set-match",
                  "activation-server order set-match SERIAL K|exact [--json]\n\n"
                  "Component matching for the order's machines: with K (1-16) an Activate from a new machine id\n"
                  "whose components share at least K with a machine of the order seen within the retention\n"
                  "window takes over that machine's seat instead of a new one; exact (0) matches by machine\n"
                  "id only. Not part of the signed order: a new revision keeps it.",
                  match_opts, store_shown, cmd_set_match),
    ORDER_COMMAND("approve",
                  "activation-server order approve SERIAL MACHINE\n\n"
                  "Approves a machine's deactivation request (orders with approval): its seat frees, its next\n"
                  "Renew answers DEACTIVATED. MACHINE is the digest `order machines` prints.",
                  decide_opts, store_shown, cmd_approve),
    ORDER_COMMAND("deny",
                  "activation-server order deny SERIAL MACHINE\n\n"
                  "Denies a machine's deactivation request: it keeps its seat and hears of it at its next\n"
                  "Renew (DEACTIVATION_DENIED).",
                  decide_opts, store_shown, cmd_deny),
    ORDER_COMMAND("deactivate",
                  "activation-server order deactivate SERIAL MACHINE\n\n"
                  "Forced deactivation of a machine (a dead one): its seat frees at once and its next Renew\n"
                  "answers DEACTIVATED.",
                  decide_opts, store_shown, cmd_deactivate),
};
#define N_COMMANDS (sizeof commands / sizeof *commands)

static void usage(FILE *f) {
    fprintf(f,
            "Usage: activation-server order COMMAND [OPTIONS]   (COMMAND --help for its options)\n\n"
            "Volume orders on this server's store (docs/volume.md). The server's options (--config FILE,\n"
            "PA_ACTIVATION_* variables) apply; commands that write orders need the store's keystore user.\n\n"
            "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const char *u = commands[i].usage, *nl = strchr(u, '\n');
        fprintf(f, "  %.*s\n", (int)(nl - u), u);
    }
    fprintf(f, "\n%s\n", EXIT_HELP);
}

static bool listed(const char *const *names, const char *name) {
    for (; names && *names; names++)
        if (strcmp(*names, name) == 0) return true;
    return false;
}

/* The command's options, then the daemon's (hidden unless `shown`). */
static config_option *table_for(const order_command *cmd, const daemon_spec *spec, size_t *n) {
    size_t nd;
    config_option *d = daemon_options(spec, &nd);
    config_option *t = d ? calloc(cmd->n_opts + nd, sizeof *t) : NULL;
    if (t) {
        memcpy(t, cmd->opts, cmd->n_opts * sizeof *t);
        *n = cmd->n_opts;
        for (size_t i = 0; i < nd; i++) {
            t[*n] = d[i];
            if (!listed(cmd->shown, d[i].name)) t[*n].help = NULL;
            (*n)++;
        }
    }
    free(d);
    return t;
}

int order_cli_main(int argc, char **argv, const daemon_spec *spec) {
    const char *name = argc > 1 ? argv[1] : NULL;
    if (!name || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        if (!name) fputs("activation-server order: error: a command is required\n\n", stderr);
        usage(name ? stdout : stderr);
        return name ? EXIT_OK : EXIT_USAGE;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(name, commands[i].name) != 0) continue;
        order_ctx c = {.command = name};
        size_t n = 0;
        config_option *table = table_for(&commands[i], spec, &n);
        int code = EXIT_FAILED;
        if (table) c.cfg = config_load(commands[i].usage, table, n, spec->env_prefix, argc - 1, argv + 1, &code);
        if (c.cfg) code = commands[i].run(&c);
        rstore_free(c.redis);
        config_free(c.cfg);
        free(table);
        return code;
    }
    fprintf(stderr, "activation-server order: error: unknown command '%s'\n\n", name);
    usage(stderr);
    return EXIT_USAGE;
}
