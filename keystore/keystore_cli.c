/* keystore_cli.c -- the vendor's back-office tool: groups, keys, KEKs.
 *
 *   keystore group create|show|list      keystore keys generate
 *   keystore key verify|decode            keystore kek create
 *   keystore order create|show            (order_cli.c)
 *   keystore usage import                 (usage_cli.c)
 *
 * Design: a table of commands, each a function taking its own argv, with
 * options declared through config.h, so every command gets --help, env
 * variables (PA_KEYSTORE_*), --config FILE and clear errors for free. This
 * is the only program that holds both stores' credentials and both KEKs;
 * it connects to each store with that store's own `keystore` ACL user.
 *
 * Key generation is the bulk path: the serial batch is reserved with one
 * INCRBY, both mac_keys are prepared once, the work is split across threads
 * in rounds of fixed-size chunks (each thread with its own mac_key copies),
 * and the chunks are written in serial order through large buffers. Output
 * goes to a temporary file in the target directory that is linked into
 * place only when complete, so a crash never leaves a half-written key file
 * and an existing file is never overwritten.
 *
 * Exit codes are one rule for every command (EXIT_HELP, keystore_cli.h): 0 success,
 * 1 the operation failed or its answer is no, 2 usage error. Every error path
 * returns through fail(), so a command cannot pick its own number. Errors go
 * to stderr; secrets and keys never go to logs. JSON goes through jansson. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "group.h"
#include "keystore_cli.h"
#include "keycodec.h"
#include "mac_registry.h"
#include "redis_keys.h"
#include "redis_store.h"
#include "secret_wrap.h"
#include "serials.h"

#define CHUNK_KEYS 65536          /* keys per thread per round */
#define MAX_THREADS 64

/* ---- shared helpers (keystore_cli.h) ---- */

int fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("keystore: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(code == EXIT_USAGE ? " (see --help)\n" : "\n", stderr);
    va_end(ap);
    return code;
}

int print_json(json_t *j, const char *what) {
    if (!j) return die("cannot build the JSON for %s", what);
    int rc = json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0 && fputc('\n', stdout) != EOF
                 ? EXIT_OK
                 : die("writing the JSON for %s failed", what);
    json_decref(j);
    return rc;
}

static void iso_time(int64_t t, char *buf, size_t n) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

long long parse_num(const char *s, long long max) {
    if (!s || !*s) return -1;
    long long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        v = v * 10 + (*s - '0');
        if (v > max) return -1;
    }
    return v;
}

int check_args(const config *c, size_t max) {
    char *const *args;
    size_t n = config_args(c, &args);
    return n > max ? usage_error("unexpected argument '%s'", args[max]) : EXIT_OK;
}

/* ---- stores and KEKs ---- */

/* Everything a command may need from the stores, opened by open_stores. */
typedef struct stores {
    rstore *a;                  /* activation store connection */
    rstore *b;                  /* audit store connection */
    uint8_t kek_a[KEK_LEN];     /* wraps first secrets */
    uint8_t kek_b[KEK_LEN];     /* wraps second secrets */
} stores;

int open_store(const config *c, const char *url_opt, const char *pw_opt, rstore **out) {
    const char *url = config_get(c, url_opt);
    char err[512];
    if (!url) {
        char env[64];
        snprintf(env, sizeof env, "%s_%s", ENV_PREFIX, url_opt);
        for (char *p = env; *p; p++) *p = *p == '-' ? '_' : (*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        return usage_error("--%s is required (or set %s)", url_opt, env);
    }
    if (!rstore_url_check(url, err, sizeof err)) return usage_error("--%s: %s", url_opt, err);
    char sentinel_pw_opt[96]; /* STORE_OPT_A_PW / _B_PW declare it beside pw_opt */
    snprintf(sentinel_pw_opt, sizeof sentinel_pw_opt, "%s-sentinel-password-file", url_opt);
    rstore_config rc = {.url = url,
                        .password_file = config_get(c, pw_opt),
                        .connect_timeout_ms = 2000,
                        .command_timeout_ms = 10000,
                        .sentinel_password_file = config_get(c, sentinel_pw_opt)};
    if (!(*out = rstore_new(&rc, false, err, sizeof err))) return die("--%s: %s", url_opt, err);
    return EXIT_OK;
}

static int load_kek(const config *c, const char *opt, uint8_t kek[KEK_LEN]) {
    const char *path = config_get(c, opt);
    char err[512];
    if (!path) return usage_error("--%s is required", opt);
    if (kek_load_file(path, kek, err, sizeof err) != 0) return die("--%s %s: %s", opt, path, err);
    return EXIT_OK;
}

/* Opens what `need` names: 'a' activation store, 'b' audit store, 'k' both
 * KEKs. Returns the exit code of the first failure. */
static int open_stores(const config *c, const char *need, stores *st) {
    int rc = EXIT_OK;
    memset(st, 0, sizeof *st);
    if (strchr(need, 'k') &&
        ((rc = load_kek(c, "activation-kek", st->kek_a)) || (rc = load_kek(c, "audit-kek", st->kek_b))))
        return rc;
    if (strchr(need, 'a') && (rc = open_store(c, "activation-redis", "activation-redis-password-file", &st->a)))
        return rc;
    if (strchr(need, 'b')) rc = open_store(c, "audit-redis", "audit-redis-password-file", &st->b);
    return rc;
}

static void close_stores(stores *st) {
    rstore_free(st->a);
    rstore_free(st->b);
    OPENSSL_cleanse(st->kek_a, KEK_LEN);
    OPENSSL_cleanse(st->kek_b, KEK_LEN);
}

/* A redisContext for library calls on `key`: on Redis Cluster the master
 * that owns its slot, on a single node the one connection. NULL (with a
 * message) if unreachable. Library calls send plain hiredis commands, so
 * each call's keys must share one slot (the group's `{g:ID}`). */
static redisContext *ctx_for(rstore *s, const char *key, const char *which) {
    redisContext *c = rstore_context_for_key(s, key, strlen(key));
    if (!c) die("%s store: %s", which, rstore_error(s));
    return c;
}

/* The connection owning group `id`'s activation record. */
static redisContext *ctx_group(rstore *s, uint32_t id) {
    char key[PA_RKEY_MAX];
    pa_rkey_group(key, sizeof key, id);
    return ctx_for(s, key, "activation");
}

/* The connection owning group `id`'s audit record. */
static redisContext *ctx_audit(rstore *s, uint32_t id) {
    char key[PA_RKEY_MAX];
    pa_rkey_audit(key, sizeof key, id);
    return ctx_for(s, key, "audit");
}

/* The group ID from --id or the single positional argument. */
static int group_id_arg(const config *c, uint32_t *id) {
    const char *v = config_get(c, "id");
    char *const *args;
    if (!v && config_args(c, &args) == 1) v = args[0];
    if (!v) return usage_error("--id is required (the group ID, 0..%u)", PK_GROUP_MAX);
    long long n = parse_num(v, PK_GROUP_MAX);
    if (n < 0) return usage_error("group ID '%s' is not a number between 0 and %u", v, PK_GROUP_MAX);
    *id = (uint32_t)n;
    return EXIT_OK;
}

/* ---- group create ---- */

static const config_option group_create_opts[] = {
    {"id", "N", "group ID carried in every key (0..1048575), required", NULL},
    {"product", "NAME", "product name, required", NULL},
    {"edition", "NAME", "edition name", ""},
    {"channel", "CHANNEL", "retail | oem | volume", "retail"},
    {"upgrade-allowed", NULL, "keys with the upgrade flag are accepted", NULL},
    {"alg-first", "ALG", "MAC of the first security value: hmac-sha256 | aes256-cmac", "hmac-sha256"},
    {"alg-second", "ALG", "MAC of the second security value: hmac-sha256 | aes256-cmac", "hmac-sha256"},
    {"max-machines", "N", "machines per key (0 = unlimited)", "1"},
    {"lease-days", "DAYS", "license lifetime in days (0 = permanent)", NULL},
    {"lease-seconds", "SECONDS", "license lifetime in seconds (0 = permanent)", NULL},
    {"renew-seconds", "SECONDS",
     "renew-after interval of leased licenses (default: half the lease, "
     "at most 7 days)",
     NULL},
    {"audit-rate", "PERCENT", "share of activations sampled for audit", "5"},
    {"audit-mode", "MODE", "online (ask the audit server first) | offline (audit afterwards)", "offline"},
    {"audit-unreachable", "WHAT", "online audit with the audit server down: fail-closed | offline", "fail-closed"},
    {"audit-outbox-full", "WHAT",
     "a sampled activation when the offline-audit outbox is at its cap: fail-closed | grant (unaudited)",
     "fail-closed"},
    {"audit-first-activation", NULL, "always audit a key's first activation", NULL},
    {"features", "LIST", "comma-separated features licenses enable (repeatable)", NULL},
    {"machine-match", "K|exact",
     "a machine whose machine_id changed keeps its place when K of its components (1-16) match; "
     "exact: by machine_id only",
     "exact"},
    {"grace", "SECONDS", "past a lease's end, an offline copy keeps working and may still renew", "0"},
    {"max-deactivations", "N", "Deactivate calls per key and churn period (0 = unlimited)", "0"},
    {"max-transfers", "N", "machine releases per key and churn period (0 = unlimited)", "3"},
    {"churn-period", "SECONDS", "the period the churn budgets count over", "2592000"},
    STORE_OPT_A_URL,
    STORE_OPT_B_URL,
    STORE_OPT_A_KEK,
    STORE_OPT_B_KEK,
    STORE_OPT_A_PW,
    STORE_OPT_B_PW,
};

/* Names end up in JSON (group show --json), which must be UTF-8. */
static int check_utf8(const char *s, const char *opt) {
    json_t *j = json_string(s);
    if (!j) return usage_error("--%s is not valid UTF-8 text", opt);
    json_decref(j);
    return EXIT_OK;
}

static int copy_text(char *dst, size_t n, const char *src, const char *opt) {
    if (strlen(src) >= n) return usage_error("--%s is longer than %zu characters", opt, n - 1);
    int rc = check_utf8(src, opt);
    if (!rc) strcpy(dst, src);
    return rc;
}

static int parse_lease(const config *c, group_record *r) {
    bool ok = true;
    const char *d = config_get(c, "lease-days"), *s = config_get(c, "lease-seconds");
    if (d && s) return usage_error("give --lease-days or --lease-seconds, not both");
    long long lease = d ? config_get_int(c, "lease-days", 0, UINT32_MAX / 86400, &ok) * 86400
                        : config_get_int(c, "lease-seconds", 0, UINT32_MAX, &ok);
    long long renew = config_get_int(c, "renew-seconds", 0, UINT32_MAX, &ok);
    if (!ok) return EXIT_USAGE; /* config_get_int said which */
    if (!config_get(c, "renew-seconds")) renew = lease / 2 < 7 * 86400 ? lease / 2 : 7 * 86400;
    r->policy.lease_seconds = (uint32_t)lease;
    r->policy.renew_seconds = (uint32_t)renew;
    return 0;
}

static int parse_audit(const config *c, group_record *r) {
    bool ok = true;
    double rate = config_get_double(c, "audit-rate", 0, 100, &ok);
    if (!ok) return EXIT_USAGE;
    r->policy.audit_rate_ppm = (uint32_t)(rate * 10000 + 0.5);
    const char *m = config_get(c, "audit-mode"), *u = config_get(c, "audit-unreachable");
    if (strcmp(m, "online") && strcmp(m, "offline"))
        return usage_error("--audit-mode must be online or offline, not '%s'", m);
    if (strcmp(u, "fail-closed") && strcmp(u, "offline"))
        return usage_error("--audit-unreachable must be fail-closed or offline, not '%s'", u);
    r->policy.audit = strcmp(m, "online") == 0 ? AUDIT_MODE_ONLINE : AUDIT_MODE_OFFLINE;
    r->policy.on_audit_down = strcmp(u, "offline") == 0 ? AUDIT_UNREACHABLE_OFFLINE : AUDIT_UNREACHABLE_FAIL_CLOSED;
    const char *full = config_get(c, "audit-outbox-full");
    if (strcmp(full, "fail-closed") && strcmp(full, "grant"))
        return usage_error("--audit-outbox-full must be fail-closed or grant, not '%s'", full);
    r->policy.on_outbox_full = strcmp(full, "grant") == 0 ? AUDIT_OUTBOX_FULL_GRANT : AUDIT_OUTBOX_FULL_FAIL_CLOSED;
    r->policy.audit_first_activation = config_get_bool(c, "audit-first-activation");
    return 0;
}

static int parse_features(const config *c, group_record *r) {
    const char *const *v;
    size_t n = config_get_list(c, "features", &v), len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        if (len + l + 2 > sizeof r->policy.features) return usage_error("--features: the list is too long");
        int rc = check_utf8(v[i], "features");
        if (rc) return rc;
        if (len) r->policy.features[len++] = ',';
        memcpy(r->policy.features + len, v[i], l + 1);
        len += l;
    }
    return 0;
}

/* --machine-match and the churn and grace settings (docs/machines.md). */
static int parse_machines(const config *c, group_record *r) {
    bool ok = true;
    const char *m = config_get(c, "machine-match");
    if (strcmp(m, "exact") == 0) r->policy.machine_match = 0;
    else {
        long long k = parse_num(m, GROUP_MACHINE_MATCH_MAX);
        if (k < 0)
            return usage_error("--machine-match must be exact or a number of components 0..%d, not '%s'",
                               GROUP_MACHINE_MATCH_MAX, m);
        r->policy.machine_match = (uint32_t)k;
    }
    r->policy.grace_seconds = (uint32_t)config_get_int(c, "grace", 0, UINT32_MAX, &ok);
    r->policy.max_deactivations = (uint32_t)config_get_int(c, "max-deactivations", 0, UINT32_MAX, &ok);
    r->policy.max_transfers = (uint32_t)config_get_int(c, "max-transfers", 0, UINT32_MAX, &ok);
    r->policy.churn_period_seconds = (uint32_t)config_get_int(c, "churn-period", 1, UINT32_MAX, &ok);
    return ok ? 0 : EXIT_USAGE; /* config_get_int said which */
}

static int build_record(const config *c, group_record *r) {
    bool ok = true;
    int rc;
    group_record_defaults(r);
    if ((rc = group_id_arg(c, &r->id))) return rc;
    const char *product = config_get(c, "product");
    if (!product || !*product) return usage_error("--product is required");
    if ((rc = copy_text(r->product, sizeof r->product, product, "product")) ||
        (rc = copy_text(r->edition, sizeof r->edition, config_get(c, "edition"), "edition")))
        return rc;
    int ch = group_channel_parse(config_get(c, "channel"));
    if (!ch) return usage_error("--channel must be retail, oem or volume, not '%s'", config_get(c, "channel"));
    r->channel = (group_channel)ch;
    r->upgrade_allowed = config_get_bool(c, "upgrade-allowed");
    r->alg_first = mac_alg_parse(config_get(c, "alg-first"));
    r->alg_second = mac_alg_parse(config_get(c, "alg-second"));
    if (!r->alg_first) return usage_error("--alg-first: unknown algorithm '%s'", config_get(c, "alg-first"));
    if (!r->alg_second) return usage_error("--alg-second: unknown algorithm '%s'", config_get(c, "alg-second"));
    r->policy.max_machines = (uint32_t)config_get_int(c, "max-machines", 0, UINT32_MAX, &ok);
    if (!ok) return EXIT_USAGE;
    if ((rc = parse_lease(c, r)) || (rc = parse_audit(c, r)) || (rc = parse_features(c, r)) ||
        (rc = parse_machines(c, r)))
        return rc;
    /* The library checks again on create; asking now makes a bad value a usage error, not a failed create. */
    char err[512];
    if (group_record_validate(r, err, sizeof err) != 0) return usage_error("%s", err);
    return EXIT_OK;
}

static int create_in_stores(stores *st, group_record *rec) {
    char err[512];
    group_conns a = {ctx_group(st->a, rec->id), NULL}, b = {NULL, NULL};
    if (a.record) a.index = ctx_for(st->a, PA_RKEY_GROUPS, "activation");
    if (a.index) b.record = ctx_audit(st->b, rec->id);
    if (b.record) b.index = ctx_for(st->b, PA_RKEY_GROUPS, "audit");
    if (!b.index) return EXIT_FAILED;
    if (group_create_at(&a, st->kek_a, &b, st->kek_b, rec, err, sizeof err) != 0) return die("%s", err);
    return EXIT_OK;
}

static int cmd_group_create(config *c) {
    group_record rec;
    stores st;
    int rc;
    if ((rc = check_args(c, 0)) || (rc = build_record(c, &rec))) return rc;
    rc = open_stores(c, "kab", &st);
    if (!rc) rc = create_in_stores(&st, &rec);
    if (!rc)
        printf("created group %u: %s%s%s, %s, first %s, second %s\n", rec.id, rec.product, rec.edition[0] ? " " : "",
               rec.edition, group_channel_name(rec.channel), mac_alg_name(rec.alg_first), mac_alg_name(rec.alg_second));
    close_stores(&st);
    return rc;
}

/* ---- group show / list ---- */

static const config_option group_show_opts[] = {
    {"id", "N", "group ID (or give it as the argument)", NULL},
    {"json", NULL, "print one JSON object", NULL},
    STORE_OPT_A_URL,
    {"audit-redis", "URL", "also report the audit store's record (optional)", NULL},
    STORE_OPT_A_PW, STORE_OPT_B_PW, HIDDEN("activation-kek", "FILE"), HIDDEN("audit-kek", "FILE"),
};

/* Serials handed out so far (the counter), or -1 when it cannot be read. */
static long long serials_issued(rstore *s, uint32_t id) {
    char key[PA_RKEY_MAX];
    pa_rkey_serial(key, sizeof key, id);
    redisReply *r = rstore_command(s, "GET %s", key);
    long long n = !r ? -1 : r->type == REDIS_REPLY_NIL ? 0 : -1;
    if (r && r->type == REDIS_REPLY_STRING) n = parse_num(r->str, (long long)PK_SERIAL_MAX + 1);
    if (r) freeReplyObject(r);
    return n;
}

static int print_group_json(const group_record *r, long long issued, int audit_alg) {
    char t[32];
    const group_policy *p = &r->policy;
    iso_time(r->created_at, t, sizeof t);
    json_t *j =
        json_pack("{s:I, s:s, s:s, s:s, s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:b, s:s, s:I}", "id",
                  (json_int_t)r->id, "product", r->product, "edition", r->edition, "channel",
                  group_channel_name(r->channel), "upgrade_allowed", (int)r->upgrade_allowed, "alg_first",
                  mac_alg_name(r->alg_first), "created_at", t, "version", (json_int_t)r->version, "max_machines",
                  (json_int_t)p->max_machines, "lease_seconds", (json_int_t)p->lease_seconds, "renew_seconds",
                  (json_int_t)p->renew_seconds, "audit_rate_ppm", (json_int_t)p->audit_rate_ppm, "audit_mode",
                  p->audit == AUDIT_MODE_ONLINE ? "online" : "offline", "audit_unreachable",
                  p->on_audit_down == AUDIT_UNREACHABLE_OFFLINE ? "offline" : "fail-closed", "audit_first_activation",
                  (int)p->audit_first_activation, "features", p->features, "serials_issued", (json_int_t)issued);
    if (j &&
        json_object_set_new(j, "audit_outbox_full",
                            json_string(p->on_outbox_full == AUDIT_OUTBOX_FULL_GRANT ? "grant" : "fail-closed")) != 0)
        json_decref(j), j = NULL;
    if (j && json_object_update_new(
                 j, json_pack("{s:I, s:I, s:I, s:I, s:I}", "machine_match", (json_int_t)p->machine_match,
                              "grace_seconds", (json_int_t)p->grace_seconds, "max_deactivations",
                              (json_int_t)p->max_deactivations, "max_transfers", (json_int_t)p->max_transfers,
                              "churn_period_seconds", (json_int_t)p->churn_period_seconds)) != 0)
        json_decref(j), j = NULL;
    /* json_pack fails on text that is not UTF-8 (a record written by other means). */
    if (j && audit_alg > 0 && json_object_set_new(j, "alg_second", json_string(mac_alg_name(audit_alg))) != 0)
        json_decref(j), j = NULL;
    if (j && audit_alg == 0 && json_object_set_new(j, "audit_record", json_false()) != 0) json_decref(j), j = NULL;
    return print_json(j, "the group (is its text UTF-8?)");
}

static void print_machine_policy(const group_policy *p) {
    if (p->machine_match) printf("  machine match:     %u components\n", p->machine_match);
    else printf("  machine match:     exact\n");
    printf("  grace:             %u s\n  churn:             %u deactivations%s, %u releases%s per %u s\n",
           p->grace_seconds, p->max_deactivations, p->max_deactivations ? "" : " (unlimited)", p->max_transfers,
           p->max_transfers ? "" : " (unlimited)", p->churn_period_seconds);
}

static void print_group_text(const group_record *r, long long issued, int audit_alg) {
    char t[32];
    const group_policy *p = &r->policy;
    iso_time(r->created_at, t, sizeof t);
    printf("group %u\n  product:           %s\n  edition:           %s\n  channel:           %s\n"
           "  upgrade allowed:   %s\n  first MAC:         %s\n", r->id, r->product, r->edition[0] ? r->edition : "(none)",
           group_channel_name(r->channel), r->upgrade_allowed ? "yes" : "no", mac_alg_name(r->alg_first));
    if (audit_alg > 0) printf("  second MAC:        %s (audit store)\n", mac_alg_name(audit_alg));
    if (audit_alg == 0) printf("  second MAC:        MISSING: no record in the audit store\n");
    printf("  created:           %s\n  version:           %llu\n  serials issued:    %lld\n"
           "  max machines:      %u%s\n", t, (unsigned long long)r->version, issued, p->max_machines,
           p->max_machines ? "" : " (unlimited)");
    if (p->lease_seconds) printf("  lease:             %u s, renew after %u s\n", p->lease_seconds, p->renew_seconds);
    else printf("  lease:             permanent\n");
    printf("  audit:             %g %% %s%s%s%s\n  features:          %s\n", p->audit_rate_ppm / 10000.0,
           p->audit == AUDIT_MODE_ONLINE ? "online" : "offline",
           p->audit == AUDIT_MODE_ONLINE && p->on_audit_down == AUDIT_UNREACHABLE_OFFLINE ? ", offline if unreachable"
           : p->audit == AUDIT_MODE_ONLINE ? ", fail closed if unreachable"
                                           : "",
           p->audit_first_activation ? ", every first activation" : "",
           p->on_outbox_full == AUDIT_OUTBOX_FULL_GRANT ? ", unaudited if the outbox is full" : "",
           p->features[0] ? p->features : "(none)");
    print_machine_policy(p);
}

/* The audit store's MAC for the group: >0 found, 0 absent, -1 not asked or error. */
static int audit_alg_of(stores *st, uint32_t id) {
    if (!st->b) return -1;
    redisContext *b = ctx_audit(st->b, id);
    char err[256];
    int alg = 0;
    if (!b) return -1;
    int rc = group_load_audit(b, st->kek_b, id, &alg, NULL, err, sizeof err);
    if (rc < 0) die("%s", err);
    return rc == 0 ? alg : rc == 1 ? 0 : -1;
}

static int cmd_group_show(config *c) {
    stores st;
    group_record rec;
    char err[512];
    uint32_t id;
    int rc;
    if ((rc = check_args(c, config_get(c, "id") ? 0 : 1)) || (rc = group_id_arg(c, &id))) return rc;
    rc = open_stores(c, config_get(c, "audit-redis") ? "ab" : "a", &st);
    redisContext *a = rc ? NULL : ctx_group(st.a, id);
    if (!rc && !a) rc = EXIT_FAILED;
    int found = rc ? -1 : group_load(a, st.kek_a, id, &rec, NULL, err, sizeof err);
    if (!rc && found < 0) rc = die("%s", err);
    else if (!rc && found == 1) rc = die("group %u does not exist in the activation store", id);
    if (!rc) {
        long long issued = serials_issued(st.a, id);
        int alg2 = audit_alg_of(&st, id);
        if (config_get_bool(c, "json")) rc = print_group_json(&rec, issued, alg2);
        else print_group_text(&rec, issued, alg2);
    }
    close_stores(&st);
    return rc;
}

static const config_option group_list_opts[] = {
    {"json", NULL, "print a JSON array of groups", NULL},
    STORE_OPT_A_URL,
    STORE_OPT_A_PW,
    HIDDEN("audit-redis", "URL"),
    HIDDEN("audit-redis-password-file", "FILE"),
    HIDDEN("audit-redis-sentinel-password-file", "FILE"),
    HIDDEN("activation-kek", "FILE"),
    HIDDEN("audit-kek", "FILE"),
};

static int cmd_group_list(config *c) {
    stores st;
    uint32_t *ids = NULL;
    size_t n = 0;
    char err[512];
    bool json = config_get_bool(c, "json");
    int rc;
    if ((rc = check_args(c, 0))) return rc;
    rc = open_stores(c, "a", &st);
    redisContext *a = rc ? NULL : ctx_for(st.a, PA_RKEY_GROUPS, "activation");
    if (!rc && (!a || group_list(a, &ids, &n, err, sizeof err) != 0)) rc = a ? die("%s", err) : EXIT_FAILED;
    json_t *list = json && !rc ? json_array() : NULL;
    if (json && !rc && !list) rc = die("out of memory");
    for (size_t i = 0; !rc && i < n; i++) {
        group_record r;
        if (!(a = ctx_group(st.a, ids[i]))) {
            rc = EXIT_FAILED;
            break;
        }
        if (group_load(a, st.kek_a, ids[i], &r, NULL, err, sizeof err) != 0) {
            rc = die("%s", err);
            break;
        }
        if (json) {
            json_t *g = json_pack("{s:I, s:s, s:s, s:s, s:I}", "id", (json_int_t)r.id, "product", r.product, "edition",
                                  r.edition, "channel", group_channel_name(r.channel), "serials_issued",
                                  (json_int_t)serials_issued(st.a, r.id));
            if (!g || json_array_append_new(list, g) != 0)
                rc = die("cannot build the JSON for group %u (is its text UTF-8?)", r.id);
        } else {
            printf("%-8u %-24s %-16s %-7s %lld keys\n", r.id, r.product, r.edition[0] ? r.edition : "-",
                   group_channel_name(r.channel), serials_issued(st.a, r.id));
        }
    }
    if (list && !rc) rc = print_json(list, "the group list"); /* releases it */
    else json_decref(list);
    free(ids);
    close_stores(&st);
    return rc;
}

/* ---- keys generate ---- */

static const config_option keys_generate_opts[] = {
    {"group", "G", "group ID, required", NULL},
    {"count", "N", "number of keys, required", NULL},
    {"out", "FILE", "write to FILE (created complete, mode 0600, never overwritten) instead of stdout", NULL},
    {"csv", NULL, "write CSV lines 'serial,key' under a header instead of one key a line", NULL},
    {"upgrade", NULL, "generate upgrade keys (the group must allow upgrades)", NULL},
    {"threads", "N", "worker threads (default: all online CPUs)", NULL},
    STORE_OPT_A_URL, STORE_OPT_B_URL, STORE_OPT_A_KEK, STORE_OPT_B_KEK, STORE_OPT_A_PW, STORE_OPT_B_PW,
};

/* One worker's share of a round: a chunk of serials and its output text. */
typedef struct gen_job {
    mac_key *first;        /* this thread's copy of the first-secret MAC */
    mac_key *second;       /* ... and of the second */
    uint32_t group;        /* group every key carries */
    bool upgrade;          /* upgrade flag of every key */
    bool csv;              /* "serial,key" lines */
    uint32_t start, count; /* serials [start, start+count) of this round */
    char *buf;             /* output text of the chunk */
    size_t len;            /* bytes used in buf */
    int failed;            /* a MAC or encoding failed */
    pthread_t thread;      /* valid while `started` */
    bool started;          /* runs on its own thread this round */
} gen_job;

static void *gen_chunk(void *arg) {
    gen_job *j = arg;
    pk_fields f = {.group = j->group, .upgrade = j->upgrade};
    char *p = j->buf;
    for (uint32_t i = 0; i < j->count; i++) {
        uint64_t s2;
        f.serial = j->start + i;
        if (mac_security_value(j->first, MAC_ROLE_FIRST, f.group, f.serial, f.upgrade, &f.security_first) ||
            mac_security_value(j->second, MAC_ROLE_SECOND, f.group, f.serial, f.upgrade, &s2)) {
            j->failed = 1;
            break;
        }
        f.security_second = (uint32_t)s2;
        if (j->csv) p += sprintf(p, "%u,", f.serial);
        if (pk_encode(&f, p) != 0) {
            j->failed = 1;
            break;
        }
        p += PK_TEXT_LEN;
        *p++ = '\n';
    }
    j->len = (size_t)(p - j->buf);
    return NULL;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Generation state shared by the rounds. */
typedef struct generator {
    gen_job jobs[MAX_THREADS];
    int nthreads;
    int fd;                /* output (temp file or stdout) */
} generator;

static int gen_setup(generator *g, mac_key *first, mac_key *second, const pk_fields *proto, bool csv) {
    for (int t = 0; t < g->nthreads; t++) {
        gen_job *j = &g->jobs[t];
        j->first = mac_key_dup(first);
        j->second = mac_key_dup(second);
        j->buf = malloc((size_t)CHUNK_KEYS * (PK_TEXT_LEN + 12));
        j->group = proto->group;
        j->upgrade = proto->upgrade;
        j->csv = csv;
        if (!j->first || !j->second || !j->buf) return die("out of memory preparing generator threads");
    }
    return 0;
}

static void gen_teardown(generator *g) {
    for (int t = 0; t < g->nthreads; t++) {
        mac_key_free(g->jobs[t].first);
        mac_key_free(g->jobs[t].second);
        free(g->jobs[t].buf);
    }
}

/* Generates serials [first, first+count) in rounds and writes them in
 * order. 0, -1 for a write error (errno), -2 for a reported MAC failure. */
static int gen_run(generator *g, uint32_t first, uint32_t count) {
    uint64_t next = first, end = (uint64_t)first + count;
    while (next < end) {
        int used = 0;
        for (; used < g->nthreads && next < end; used++) {
            gen_job *j = &g->jobs[used];
            j->start = (uint32_t)next;
            j->count = end - next < CHUNK_KEYS ? (uint32_t)(end - next) : CHUNK_KEYS;
            next += j->count;
            j->started = used > 0 && pthread_create(&j->thread, NULL, gen_chunk, j) == 0;
            if (used > 0 && !j->started) gen_chunk(j);   /* no thread: do it here */
        }
        gen_chunk(&g->jobs[0]);   /* the main thread does the first chunk itself */
        for (int t = 1; t < used; t++)
            if (g->jobs[t].started) pthread_join(g->jobs[t].thread, NULL), g->jobs[t].started = false;
        for (int t = 0; t < used; t++) {
            if (g->jobs[t].failed) return die("computing a security value failed (OpenSSL)"), -2;
            if (write_all(g->fd, g->jobs[t].buf, g->jobs[t].len) != 0) return -1;   /* errno says why */
        }
    }
    return 0;
}

/* Workers to use, or -1 after a bad --threads (config_get_int said why). */
static int thread_count(const config *c, uint32_t count) {
    bool ok = true;
    long long t = config_get(c, "threads") ? config_get_int(c, "threads", 1, MAX_THREADS, &ok)
                                           : sysconf(_SC_NPROCESSORS_ONLN);
    if (!ok) return -1;
    if (t < 1) t = 1;
    if (t > MAX_THREADS) t = MAX_THREADS;
    long long chunks = ((long long)count + CHUNK_KEYS - 1) / CHUNK_KEYS;
    return (int)(t < chunks ? t : chunks);
}

/* The temp file being written, so an interrupt does not leave a stray file
 * full of valid keys behind. Written before the handlers are installed. */
static char pending_tmp[4200];

static void on_interrupt(int sig) {
    if (pending_tmp[0]) unlink(pending_tmp);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void guard_tmp(const char *tmp) {
    snprintf(pending_tmp, sizeof pending_tmp, "%s", tmp);
    struct sigaction sa = {.sa_handler = on_interrupt};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

static void unguard_tmp(void) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    pending_tmp[0] = '\0';
}

/* Opens a temp file beside `out` (or uses stdout); *tmp receives its path. */
static int open_output(const char *out, char *tmp, size_t n) {
    tmp[0] = '\0';
    if (!out) return STDOUT_FILENO;
    struct stat sb;
    if (stat(out, &sb) == 0) return die("--out %s exists; refusing to overwrite generated keys", out), -1;
    snprintf(tmp, n, "%s.tmp.XXXXXX", out);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        die("--out %s: cannot create a temporary file beside it: %s", out, strerror(errno));
        tmp[0] = '\0';
        return -1;
    }
    /* mkstemp already makes it 0600; this only guards against a libc that does not. */
    if (fchmod(fd, 0600) != 0) {
        die("--out %s: cannot restrict %s to mode 0600: %s", out, tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        tmp[0] = '\0';
        return -1;
    }
    guard_tmp(tmp);
    return fd;
}

/* Makes the finished temp file appear as `out`, atomically and without
 * replacing anything that appeared there meanwhile. 1 if the keys stay in
 * `tmp` (say so), -1 on a write failure, 0 done. */
static int publish_output(int fd, const char *tmp, const char *out) {
    if (fsync(fd) != 0) return die("writing %s: %s", tmp, strerror(errno)), -1;
    if (link(tmp, out) != 0) return die("cannot create %s: %s; the keys are in %s", out, strerror(errno), tmp);
    unlink(tmp);
    return 0;
}

typedef struct gen_opts {
    uint32_t group, count;   /* what to generate */
    bool csv, upgrade;       /* output format and key flag */
    const char *out;         /* file or NULL for stdout */
    int threads;             /* workers */
} gen_opts;

static int parse_gen_opts(const config *c, gen_opts *o) {
    const char *g = config_get(c, "group"), *n = config_get(c, "count");
    if (!g) return usage_error("--group is required");
    if (!n) return usage_error("--count is required");
    long long gid = parse_num(g, PK_GROUP_MAX), cnt = parse_num(n, (long long)PK_SERIAL_MAX + 1);
    if (gid < 0) return usage_error("--group '%s' is not a group ID (0..%u)", g, PK_GROUP_MAX);
    if (cnt < 1) return usage_error("--count '%s' must be a number between 1 and %u", n, PK_SERIAL_MAX + 1u);
    o->group = (uint32_t)gid;
    o->count = (uint32_t)cnt;
    o->csv = config_get_bool(c, "csv");
    o->upgrade = config_get_bool(c, "upgrade");
    o->out = config_get(c, "out");
    o->threads = thread_count(c, o->count);
    return o->threads < 0 ? EXIT_USAGE : EXIT_OK;
}

/* Loads both MAC keys of a group; 0 or 1 with a message. */
static int load_both(stores *st, uint32_t id, group_record *rec, mac_key **first, mac_key **second) {
    char err[512];
    redisContext *a = ctx_group(st->a, id), *b = a ? ctx_audit(st->b, id) : NULL;
    if (!a || !b) return 1;
    int rc = group_load(a, st->kek_a, id, rec, first, err, sizeof err);
    if (rc == 1) return die("group %u does not exist in the activation store", id);
    if (rc < 0) return die("%s", err);
    rc = group_load_audit(b, st->kek_b, id, &rec->alg_second, second, err, sizeof err);
    if (rc == 1) return die("group %u has no record in the audit store", id);
    if (rc < 0) return die("%s", err);
    return 0;
}

/* Reserves the batch and writes it to g->fd; 0 or 1 with a message. */
static int reserve_and_write(stores *st, generator *g, const gen_opts *o, uint32_t *first_serial) {
    char err[512];
    redisContext *a = ctx_group(st->a, o->group);
    if (!a) return 1;
    if (serial_reserve(a, o->group, o->count, first_serial, err, sizeof err) != 0) return die("%s", err);
    int rc = o->csv && write_all(g->fd, "serial,key\n", 11) != 0 ? -1 : gen_run(g, *first_serial, o->count);
    if (rc != 0) {
        if (rc == -1) die("writing keys: %s", strerror(errno));
        fprintf(stderr, "keystore: serials %u..%u of group %u were reserved but not all keys were written\n",
                *first_serial, *first_serial + o->count - 1, o->group);
        return 1;
    }
    return 0;
}

static int generate(stores *st, const gen_opts *o, mac_key *first, mac_key *second) {
    char tmp[4200];
    uint32_t first_serial = 0;
    generator g = {.nthreads = o->threads, .fd = -1};
    pk_fields proto = {.group = o->group, .upgrade = o->upgrade};
    int rc = gen_setup(&g, first, second, &proto, o->csv);
    if (!rc && (g.fd = open_output(o->out, tmp, sizeof tmp)) < 0) rc = 1;
    if (!rc) rc = reserve_and_write(st, &g, o, &first_serial);
    if (o->out && g.fd >= 0) {
        int pub = rc ? -1 : publish_output(g.fd, tmp, o->out);
        close(g.fd);
        if (pub < 0) unlink(tmp);   /* incomplete: never leave it behind */
        if (pub) rc = 1;
        unguard_tmp();
    }
    if (!rc)
        fprintf(stderr, "keystore: generated %u keys of group %u, serials %u..%u%s%s\n", o->count, o->group,
                first_serial, first_serial + o->count - 1, o->out ? ", into " : "", o->out ? o->out : "");
    gen_teardown(&g);
    return rc;
}

static int cmd_keys_generate(config *c) {
    gen_opts o;
    stores st;
    group_record rec;
    mac_key *first = NULL, *second = NULL;
    int rc;
    if ((rc = check_args(c, 0)) || (rc = parse_gen_opts(c, &o))) return rc;
    rc = open_stores(c, "kab", &st);
    if (!rc) rc = load_both(&st, o.group, &rec, &first, &second);
    if (!rc && o.upgrade && !rec.upgrade_allowed) rc = die("group %u does not allow upgrade keys", o.group);
    if (!rc) rc = generate(&st, &o, first, second);
    mac_key_free(first);
    mac_key_free(second);
    close_stores(&st);
    return rc;
}

/* ---- key verify / decode ---- */

/* Decodes the single positional KEY. Returns the status (fields filled for
 * PK_OK and PK_ERR_CHECKSUM; `canon` is the input in canonical form), or -1
 * for a usage error. Prints the reason for anything but PK_OK. */
static int decode_arg(const config *c, pk_fields *f, char canon[PK_TEXT_LEN + 1]) {
    char *const *args, msg[256];
    pk_error e;
    size_t n = config_args(c, &args);
    if (n > 1) return usage_error("unexpected argument '%s' (give exactly one KEY)", args[1]), -1;
    if (n == 0) return usage_error("KEY is required"), -1;
    pk_status s = pk_decode(args[0], strlen(args[0]), f, &e);
    if (pk_normalize(args[0], strlen(args[0]), canon, NULL) != PK_OK) canon[0] = '\0';
    if (s != PK_OK) die("%s", pk_strerror(&e, msg, sizeof msg));
    return (int)s;
}

static const config_option key_verify_opts[] = {
    {"json", NULL, "print one JSON object", NULL},
    STORE_OPT_A_URL, STORE_OPT_B_URL, STORE_OPT_A_KEK, STORE_OPT_B_KEK, STORE_OPT_A_PW, STORE_OPT_B_PW,
};

static int cmd_key_verify(config *c) {
    pk_fields f;
    char canon[PK_TEXT_LEN + 1];
    stores st;
    group_record rec;
    mac_key *first = NULL, *second = NULL;
    int rc = decode_arg(c, &f, canon);
    if (rc) return rc < 0 ? EXIT_USAGE : EXIT_FAILED; /* a key that does not decode is not genuine */
    rc = open_stores(c, "kab", &st);
    if (!rc) rc = load_both(&st, f.group, &rec, &first, &second);
    if (!rc) {
        bool ok1 = mac_security_check(first, MAC_ROLE_FIRST, f.group, f.serial, f.upgrade, f.security_first);
        bool ok2 = mac_security_check(second, MAC_ROLE_SECOND, f.group, f.serial, f.upgrade, f.security_second);
        bool upg = !f.upgrade || rec.upgrade_allowed;
        bool genuine = ok1 && ok2 && upg;
        if (config_get_bool(c, "json"))
            rc = print_json(json_pack("{s:I, s:I, s:b, s:b, s:b, s:b, s:b}", "group", (json_int_t)f.group, "serial",
                                      (json_int_t)f.serial, "upgrade", (int)f.upgrade, "first_ok", ok1, "second_ok",
                                      ok2, "upgrade_allowed", upg, "genuine", genuine),
                            "the verdict");
        else
            printf("group %u serial %u%s\n  first security value:  %s\n  second security value: %s\n%s%s\n", f.group,
                   f.serial, f.upgrade ? " (upgrade)" : "", ok1 ? "ok" : "WRONG", ok2 ? "ok" : "WRONG",
                   upg ? "" : "  upgrade keys are not allowed in this group\n", genuine ? "genuine" : "NOT GENUINE");
        if (!rc) rc = genuine ? EXIT_OK : EXIT_FAILED;
    }
    mac_key_free(first);
    mac_key_free(second);
    close_stores(&st);
    return rc;
}

static const config_option key_decode_opts[] = {
    {"json", NULL, "print one JSON object", NULL},
    HIDDEN_STORE_OPTS,
};

static int cmd_key_decode(config *c) {
    pk_fields f;
    char canon[PK_TEXT_LEN + 1];
    int s = decode_arg(c, &f, canon);
    if (s < 0) return EXIT_USAGE;
    if (s != PK_OK && s != PK_ERR_CHECKSUM) return EXIT_FAILED; /* nothing decoded: no fields to show */
    bool ok = s == PK_OK;
    if (config_get_bool(c, "json")) {
        int rc = print_json(json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:b}", "key", canon, "group",
                                      (json_int_t)f.group, "serial", (json_int_t)f.serial, "security_first",
                                      (json_int_t)f.security_first, "security_second", (json_int_t)f.security_second,
                                      "checksum", (json_int_t)f.checksum, "checksum_ok", ok, "upgrade", (int)f.upgrade),
                            "the key");
        if (rc) return rc;
    } else
        printf("key:             %s\ngroup:           %u\nserial:          %u\nsecurity_first:  %llu\n"
               "security_second: %u\nchecksum:        %u (%s)\nupgrade:         %s\n", canon, f.group, f.serial,
               (unsigned long long)f.security_first, f.security_second, f.checksum, ok ? "ok" : "WRONG",
               f.upgrade ? "yes" : "no");
    return ok ? EXIT_OK : EXIT_FAILED;
}

/* ---- kek create ---- */

static const config_option kek_create_opts[] = {HIDDEN_STORE_OPTS};

static int cmd_kek_create(config *c) {
    char *const *args, err[512];
    size_t n = config_args(c, &args);
    if (n > 1) return usage_error("unexpected argument '%s' (give exactly one FILE)", args[1]);
    if (n == 0) return usage_error("FILE is required");
    if (kek_create_file(args[0], err, sizeof err) != 0) return die("%s", err);
    printf("wrote a new key-encryption key to %s (mode 0600); give it only to the component that "
           "owns its store\n", args[0]);
    return EXIT_OK;
}

/* ---- dispatch ---- */

static const command commands[] = {
    CMD("group", "create",
        "keystore group create --id N --product NAME [OPTIONS]\n\n"
        "Creates a group in both stores with two fresh random secrets, the first wrapped under the\n"
        "activation KEK into Redis A, the second under the audit KEK into Redis B. Refuses an existing ID.",
        group_create_opts, cmd_group_create),
    CMD("group", "show",
        "keystore group show [--id] N [OPTIONS]\n\n"
        "Prints a group's record (never its secrets) and how many serials were issued.",
        group_show_opts, cmd_group_show),
    CMD("group", "list", "keystore group list [OPTIONS]\n\nLists all groups of the activation store.", group_list_opts,
        cmd_group_list),
    CMD("keys", "generate",
        "keystore keys generate --group G --count N [--out FILE] [--csv] [OPTIONS]\n\n"
        "Reserves N serials and writes N product keys, one a line (or CSV 'serial,key').",
        keys_generate_opts, cmd_keys_generate),
    CMD("key", "verify",
        "keystore key verify KEY [OPTIONS]\n\n"
        "Checks both security values of KEY against both stores: exit 0 genuine, 1 not genuine\n"
        "(including a KEY that does not decode).",
        key_verify_opts, cmd_key_verify),
    CMD("key", "decode",
        "keystore key decode KEY [--json]\n\n"
        "Decodes KEY offline (no store, no secret): exit 0 for a well-formed key with a valid checksum,\n"
        "1 otherwise, with the reason on stderr.",
        key_decode_opts, cmd_key_decode),
    CMD("kek", "create",
        "keystore kek create FILE\n\n"
        "Writes a fresh random key-encryption key (64 hex characters, mode 0600) to FILE; never overwrites.",
        kek_create_opts, cmd_kek_create),
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* The i-th command over this file's table, order_cli.c's and usage_cli.c's; NULL past the end. */
static const command *command_at(size_t i) {
    if (i < NCOMMANDS) return &commands[i];
    i -= NCOMMANDS;
    if (i < n_order_commands) return &order_commands[i];
    i -= n_order_commands;
    return i < n_usage_commands ? &usage_commands[i] : NULL;
}

static void usage(FILE *f, const char *noun) {
    fprintf(f,
            "Usage: keystore COMMAND [OPTIONS]   (keystore COMMAND --help for its options)\n\n"
            "The vendor's keystore: product groups with split secrets, product keys, KEKs, volume orders.\n\n"
            "Commands:\n");
    for (size_t i = 0; command_at(i); i++) {
        const command *cmd = command_at(i);
        if (noun && strcmp(noun, cmd->noun)) continue;
        const char *u = cmd->usage, *nl = strchr(u, '\n');
        fprintf(f, "  %.*s\n", (int)(nl ? nl - u : (long)strlen(u)), u);
    }
    fprintf(f, "\nStore options may also come from PA_KEYSTORE_* variables or --config FILE.\n\n%s\n", EXIT_HELP);
}

int main(int argc, char **argv) {
    const char *noun = argc > 1 ? argv[1] : NULL, *verb = argc > 2 ? argv[2] : NULL;
    if (!noun || strcmp(noun, "--help") == 0 || strcmp(noun, "-h") == 0 || strcmp(noun, "help") == 0) {
        if (!noun) fputs("keystore: error: a command is required\n\n", stderr);
        usage(noun ? stdout : stderr, NULL);
        return noun ? EXIT_OK : EXIT_USAGE;
    }
    bool noun_known = false;
    for (size_t i = 0; command_at(i); i++) {
        const command *cmd = command_at(i);
        if (strcmp(noun, cmd->noun)) continue;
        noun_known = true;
        if (!verb || strcmp(verb, cmd->verb)) continue;
        int code;
        config *c = config_load(cmd->usage, cmd->opts, cmd->nopts, ENV_PREFIX, argc - 2, argv + 2, &code);
        if (!c) return code;
        code = cmd->run(c);
        config_free(c);
        return code;
    }
    bool help = verb && (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0);
    if (noun_known && help) return usage(stdout, noun), EXIT_OK;
    if (!noun_known) fprintf(stderr, "keystore: error: unknown command '%s'\n\n", noun);
    else if (verb) fprintf(stderr, "keystore: error: unknown command '%s %s'\n\n", noun, verb);
    else fprintf(stderr, "keystore: error: '%s' needs a subcommand\n\n", noun);
    usage(stderr, noun_known ? noun : NULL);
    return EXIT_USAGE;
}
