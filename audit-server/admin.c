/* admin.c -- revoke by hand, list the revocation log and the audit trail
 * (see admin.h). */
#include "admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_store.h"
#include "config.h"
#include "keycodec.h"

#define STORE_OPTIONS                                                                        \
    {"redis-url", "URL", "audit store (Redis B) as user audit", "redis://audit@127.0.0.1:6380"}, \
    {"redis-password-file", "FILE", "read the Redis password from FILE", NULL}

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

/* Prints `s` as a JSON string (quotes included). */
static void json_str(const char *s, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static audit_store *open_store(const config *c) {
    rstore_config rc = {.url = config_get(c, "redis-url"),
                        .password_file = config_get(c, "redis-password-file")};
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
    printf("{\"group\":%lld,\"serial\":%lld,\"sequence\":%" PRIu64 ",\"new\":%s}\n", group, serial,
           out.sequence, out.newly_revoked ? "true" : "false");
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
    revocation_entry *e = NULL;
    size_t n = 0;
    uint64_t last = 0;
    char err[256];
    int rc = audit_store_list_revocations(s, (uint64_t)after, (uint32_t)limit, &e, &n, &last, err, sizeof err);
    audit_store_close(s);
    if (rc != 0) {
        fprintf(stderr, "audit-server revocations: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        printf("{\"sequence\":%" PRIu64 ",\"group\":%" PRIu32 ",\"serial\":%" PRIu32
               ",\"revoked_at\":%lld,\"reason\":",
               e[i].sequence, e[i].group, e[i].serial, (long long)e[i].revoked_at);
        json_str(e[i].reason, strlen(e[i].reason));
        printf("}\n");
    }
    fprintf(stderr, "audit-server revocations: %zu shown, last sequence %" PRIu64 "\n", n, last);
    free(e);
    return 0;
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

static void print_trail_entry(const redisReply *e) {
    const redisReply *f = e->element[1];
    printf("{\"id\":");
    json_str(e->element[0]->str, e->element[0]->len);
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        putchar(',');
        json_str(f->element[i]->str, f->element[i]->len);
        putchar(':');
        json_str(f->element[i + 1]->str, f->element[i + 1]->len);
    }
    printf("}\n");
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
        redisReply *r = rstore_command(audit_store_rstore(s), "XREVRANGE %s %s - COUNT 500",
                                       PA_RKEY_AUDIT_TRAIL, end);
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
                print_trail_entry(e);
                shown++;
            }
        }
        if (n > 0) snprintf(end, sizeof end, "(%s", r->element[n - 1]->element[0]->str);
        freeReplyObject(r);
        if (n < 500) break;
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
