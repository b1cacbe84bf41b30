/* admin.c -- revoke by hand, list the revocation log and the audit trail
 * (see admin.h). */
#include "admin.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_store.h"
#include "config.h"
#include "keycodec.h"

#define STORE_OPTIONS                                                                                         \
    {"redis-url", "URL", "audit store (Redis B) as user audit", "redis://audit@127.0.0.1:6380"},              \
        {"redis-password-file", "FILE", "read the Redis password from FILE", NULL}, {                         \
        "redis-sentinel-password-file", "FILE", "with a redis-sentinel:// URL: the sentinels' password", NULL \
    }

static const config_option REVOKE_OPTS[] = {
    STORE_OPTIONS,
    {"group", "ID", "group of the key to revoke", NULL},
    {"serial", "N", "serial of the key to revoke", NULL},
    {"reason", "TEXT", "why (kept in the log; printable, at most 128 characters)", NULL},
};
static const config_option LIST_OPTS[] = {
    STORE_OPTIONS,
    {"after", "SEQ", "list entries after this sequence", "0"},
    {"limit", "N", "at most N entries", "1000"},
};
static const config_option TRAIL_OPTS[] = {
    STORE_OPTIONS,
    {"group", "ID", "only verdicts for this group", NULL},
    {"serial", "N", "only verdicts for this serial (with --group)", NULL},
    {"count", "N", "at most N verdicts, newest first", "50"},
};

bool audit_admin_is_command(const char *arg) {
    return arg && (strcmp(arg, "revoke") == 0 || strcmp(arg, "revocations") == 0 ||
                   strcmp(arg, "trail") == 0);
}

/* The n bytes at s as a JSON string. Stored text is ASCII in practice; a
 * value that is not UTF-8 (say, a stray byte in a client's text) is shown
 * with each non-ASCII byte as U+FFFD rather than losing the whole entry.
 * NULL only when out of memory. */
static json_t *json_text(const char *s, size_t n) {
    json_t *j = json_stringn(s, n);
    if (j) return j;
    char *t = malloc(3 * n + 1);
    if (!t) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x80) t[k++] = s[i];
        else memcpy(t + k, "\xEF\xBF\xBD", 3), k += 3;
    }
    j = json_stringn(t, k);
    free(t);
    return j;
}

/* Prints `obj` as one line and releases it. Compact, keys in the order they
 * were added: the bytes are part of the interface (scripts match on
 * "verdict":"genuine"). Returns 0, or -1 (said on stderr) when `obj` could
 * not be built (NULL) or written. */
static int print_line(const char *cmd, json_t *obj) {
    bool have = obj != NULL;
    int rc = have ? json_dumpf(obj, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) : -1;
    json_decref(obj);
    if (rc == 0 && putchar('\n') != EOF) return 0;
    fprintf(stderr, "audit-server %s: %s\n", cmd,
            have ? "cannot write the output"
                 : "cannot build the JSON output (out of memory, or a field name that is not UTF-8)");
    return -1;
}

/* Adds key: value to `o`; false (and `value` released) if either is NULL. */
static bool put(json_t *o, const char *key, json_t *value) { return json_object_set_new(o, key, value) == 0; }

/* `o` when every put() into it succeeded, else NULL (and `o` released). */
static json_t *built(json_t *o, bool ok) {
    if (ok) return o;
    json_decref(o);
    return NULL;
}

static audit_store *open_store(const config *c) {
    rstore_config rc = {.url = config_get(c, "redis-url"),
                        .password_file = config_get(c, "redis-password-file"),
                        .sentinel_password_file = config_get(c, "redis-sentinel-password-file")};
    char err[256];
    audit_store *s = audit_store_open(&rc, false, err, sizeof err);
    if (!s) fprintf(stderr, "audit-server: cannot reach the audit store: %s\n", err);
    return s;
}

static bool reason_ok(const char *r) {
    size_t n = r ? strlen(r) : 0;
    if (n == 0 || n > AUDIT_TEXT_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)r[i] < 0x20 || (unsigned char)r[i] > 0x7e) return false;
    return true;
}

static int cmd_revoke(const config *c) {
    bool ok = true;
    if (!config_get(c, "group") || !config_get(c, "serial")) {
        fprintf(stderr, "audit-server revoke: --group and --serial are required (see --help)\n");
        return 2;
    }
    long long group = config_get_int(c, "group", 0, PK_GROUP_MAX, &ok);
    long long serial = config_get_int(c, "serial", 0, PK_SERIAL_MAX, &ok);
    if (!ok) return 2;
    const char *reason = config_get(c, "reason");
    if (!reason_ok(reason)) {
        fprintf(stderr, "audit-server revoke: --reason is required: 1-128 printable characters\n");
        return 2;
    }
    audit_store *s = open_store(c);
    if (!s) return 1;
    const char *user = getenv("USER");
    char peer[AUDIT_TEXT_MAX + 1];
    snprintf(peer, sizeof peer, "operator:%s", user && *user ? user : "unknown");
    audit_entry e = {.request_id = "", .source = "manual", .group = (uint32_t)group,
                     .serial = (uint32_t)serial, .verdict = "revoked", .reason = reason,
                     .origin = "audit-server revoke", .peer = peer, .revoke = true,
                     .revoke_reason = reason};
    audit_outcome out;
    char err[256];
    int rc = audit_store_record(s, &e, NULL, &out, err, sizeof err);
    audit_store_close(s);
    if (rc != 0) {
        fprintf(stderr, "audit-server revoke: %s\n", err);
        return 1;
    }
    json_t *o = json_object();
    o = built(o, put(o, "group", json_integer(group)) && put(o, "serial", json_integer(serial)) &&
                     put(o, "sequence", json_integer((json_int_t)out.sequence)) &&
                     put(o, "new", json_boolean(out.newly_revoked)));
    if (print_line("revoke", o) != 0) return 1;
    if (!out.newly_revoked)
        fprintf(stderr, "audit-server revoke: group %lld serial %lld was already revoked (sequence %" PRIu64 ")\n",
                group, serial, out.sequence);
    return 0;
}

static int cmd_revocations(const config *c) {
    bool ok = true;
    long long after = config_get_int(c, "after", 0, INT64_MAX, &ok);
    long long limit = config_get_int(c, "limit", 1, 100000, &ok);
    if (!ok) return 2;
    audit_store *s = open_store(c);
    if (!s) return 1;
    revocation_page page;
    char err[256];
    int rc = audit_store_list_revocations(s, (uint64_t)after, (uint32_t)limit, &page, err, sizeof err);
    audit_store_close(s);
    if (rc != 0) {
        fprintf(stderr, "audit-server revocations: %s\n", err);
        return 1;
    }
    rc = 0;
    for (size_t i = 0; i < page.n && rc == 0; i++) {
        const revocation_entry *e = &page.entries[i];
        json_t *o = json_object();
        o = built(o, put(o, "sequence", json_integer((json_int_t)e->sequence)) &&
                         put(o, "group", json_integer(e->group)) && put(o, "serial", json_integer(e->serial)) &&
                         put(o, "revoked_at", json_integer(e->revoked_at)) &&
                         put(o, "entry_id", json_text(e->entry_id, strlen(e->entry_id))) &&
                         put(o, "reason", json_text(e->reason, strlen(e->reason))));
        rc = print_line("revocations", o);
    }
    if (rc == 0)
        fprintf(stderr, "audit-server revocations: %zu shown, last sequence %" PRIu64 ", epoch %s\n", page.n,
                page.last_sequence, page.epoch[0] ? page.epoch : "(none yet)");
    free(page.entries);
    return rc == 0 ? 0 : 1;
}

/* True when a trail entry's field `name` equals `want` (NULL: no filter). */
static bool matches(const redisReply *fields, const char *name, const char *want) {
    if (!want) return true;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->len == strlen(name) && memcmp(k->str, name, k->len) == 0)
            return v->len == strlen(want) && memcmp(v->str, want, v->len) == 0;
    }
    return false;
}

/* {"id": entry ID, then the entry's fields in stored order}. */
static int print_trail_entry(const redisReply *e) {
    const redisReply *f = e->element[1];
    json_t *o = json_object();
    bool ok = put(o, "id", json_text(e->element[0]->str, e->element[0]->len));
    for (size_t i = 0; ok && i + 1 < f->elements; i += 2)
        ok = put(o, f->element[i]->str, json_text(f->element[i + 1]->str, f->element[i + 1]->len));
    return print_line("trail", built(o, ok));
}

/* Walks the trail newest first in pages, printing matches until `count`. */
static int cmd_trail(const config *c) {
    bool ok = true;
    long long count = config_get_int(c, "count", 1, 1000000, &ok);
    if (config_get(c, "group")) config_get_int(c, "group", 0, PK_GROUP_MAX, &ok);
    if (config_get(c, "serial")) config_get_int(c, "serial", 0, PK_SERIAL_MAX, &ok);
    if (!ok) return 2;
    audit_store *s = open_store(c);
    if (!s) return 1;
    char end[48] = "+";
    long long shown = 0;
    int rc = 0;
    while (shown < count) {
        redisReply *r = rstore_command(audit_store_rstore(s), "XREVRANGE %s %s - COUNT 500", PA_RKEY_AUDIT_TRAIL, end);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "audit-server trail: %s\n",
                    r && r->type == REDIS_REPLY_ERROR ? r->str : rstore_error(audit_store_rstore(s)));
            freeReplyObject(r);
            rc = 1;
            break;
        }
        size_t n = r->elements;
        for (size_t i = 0; i < n && shown < count; i++) {
            const redisReply *e = r->element[i];
            if (matches(e->element[1], "group", config_get(c, "group")) &&
                matches(e->element[1], "serial", config_get(c, "serial"))) {
                if (print_trail_entry(e) != 0) {
                    rc = 1;
                    break;
                }
                shown++;
            }
        }
        if (n > 0) snprintf(end, sizeof end, "(%s", r->element[n - 1]->element[0]->str);
        freeReplyObject(r);
        if (rc != 0 || n < 500) break;
    }
    audit_store_close(s);
    return rc;
}

int audit_admin_main(int argc, char **argv) {
    const char *cmd = argv[0];
    const config_option *opts;
    size_t n;
    const char *usage;
    int (*run)(const config *);
    if (strcmp(cmd, "revoke") == 0) {
        opts = REVOKE_OPTS, n = sizeof REVOKE_OPTS / sizeof *REVOKE_OPTS, run = cmd_revoke;
        usage = "audit-server revoke --group ID --serial N --reason TEXT\n\n"
                "Revokes one key by hand: appends it to the revocation log activation servers pull.";
    } else if (strcmp(cmd, "revocations") == 0) {
        opts = LIST_OPTS, n = sizeof LIST_OPTS / sizeof *LIST_OPTS, run = cmd_revocations;
        usage = "audit-server revocations [--after SEQ] [--limit N]\n\n"
                "Prints the revocation log, oldest first, one JSON object per line.";
    } else {
        opts = TRAIL_OPTS, n = sizeof TRAIL_OPTS / sizeof *TRAIL_OPTS, run = cmd_trail;
        usage = "audit-server trail [--group ID] [--serial N] [--count N]\n\n"
                "Prints audit verdicts, newest first, one JSON object per line.";
    }
    int exit_code;
    config *c = config_load(usage, opts, n, "PA_AUDIT_", argc, argv, &exit_code);
    if (!c) return exit_code;
    char *const *args;
    int rc;
    if (config_args(c, &args) > 0) {
        fprintf(stderr, "audit-server %s: unexpected argument '%s' (see --help)\n", cmd, args[0]);
        rc = 2;
    } else {
        rc = run(c);
    }
    config_free(c);
    return rc;
}
