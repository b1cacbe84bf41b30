/* audit_env.c -- the audit test environment (see audit_env.h). */
#include "audit_env.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mac_registry.h"
#include "redis_keys.h"
#include "rpc_client.h"

void env_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

bool env_wait(bool (*pred)(void *), void *arg, int timeout_ms) {
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        if (pred(arg)) return true;
        env_sleep_ms(20);
    }
    return pred(arg);
}

int env_start(audit_env *e) {
    memset(e, 0, sizeof *e);
    e->server = -1;
    e->a.pid = e->b.pid = -1;
    if (fixture_tmpdir(e->dir, sizeof e->dir, "audit") != 0) return -1;
    snprintf(e->log_path, sizeof e->log_path, "%s/audit-server.log", e->dir);
    snprintf(e->certs, sizeof e->certs, "%s/certs", e->dir);
    snprintf(e->other, sizeof e->other, "%s/other", e->dir);
    if (fixture_make_certs(e->certs) != 0 || fixture_make_certs(e->other) != 0) return -1;
    if (redis_fixture_start(&e->a, FIXTURE_STORE_ACTIVATION) != 0 ||
        redis_fixture_start(&e->b, FIXTURE_STORE_AUDIT) != 0)
        return -1;
    if (fixture_make_kek(e->dir, "activation.kek", e->kek_a, sizeof e->kek_a, e->kek_a_bytes) != 0 ||
        fixture_make_kek(e->dir, "audit.kek", e->kek_b, sizeof e->kek_b, e->kek_b_bytes) != 0)
        return -1;
    e->ks_a = redis_fixture_connect(&e->a, "keystore", FIXTURE_PW_KEYSTORE);
    e->ks_b = redis_fixture_connect(&e->b, "keystore", FIXTURE_PW_KEYSTORE);
    e->act_a = redis_fixture_connect(&e->a, "activation", FIXTURE_PW_ACTIVATION);
    e->audit_b = redis_fixture_connect(&e->b, "audit", FIXTURE_PW_AUDIT);
    e->port = fixture_free_port();
    do e->metrics_port = fixture_free_port(); while (e->metrics_port == e->port);
    snprintf(e->target, sizeof e->target, "127.0.0.1:%d", e->port);
    return e->ks_a && e->ks_b && e->act_a && e->audit_b ? 0 : -1;
}

int env_start_server(audit_env *e) { return env_start_server_with(e, NULL); }

int env_start_server_with(audit_env *e, const char *const *extra) {
    char url[256], listen[64], metrics[64], cert[400], key[400], ca[400];
    redis_fixture_url(&e->b, "audit", url, sizeof url);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", e->port);
    snprintf(metrics, sizeof metrics, "127.0.0.1:%d", e->metrics_port);
    snprintf(cert, sizeof cert, "%s/audit-server.pem", e->certs);
    snprintf(key, sizeof key, "%s/audit-server.key", e->certs);
    snprintf(ca, sizeof ca, "%s/ca.pem", e->certs);
    const char *bin = fixture_bin("audit-server/audit-server");
    const char *base[] = {bin,          "--listen",         listen,  "--redis-url", url, "--kek",
                          e->kek_b,     "--tls-cert",       cert,    "--tls-key",   key, "--tls-client-ca",
                          ca,           "--metrics-listen", metrics, "--workers",   "2", "--consumer",
                          "test-audit", "--log-level",      "debug"};
    enum { BASE = sizeof base / sizeof *base, MAX_EXTRA = 32 };
    char *argv[BASE + MAX_EXTRA + 1];
    size_t n = 0;
    for (; n < BASE; n++) argv[n] = (char *)base[n];
    for (size_t i = 0; extra && extra[i] && i < MAX_EXTRA; i++) argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    e->server = fixture_spawn(argv, e->log_path, e->port, 15000);
    return e->server > 0 ? 0 : -1;
}

int env_stop_server(audit_env *e, int sig) {
    if (e->server <= 0) return -1;
    int st = fixture_stop(e->server, sig, 20000);
    e->server = -1;
    return st;
}

void env_stop(audit_env *e) {
    if (e->server > 0) env_stop_server(e, SIGTERM);
    redisContext **cs[] = {&e->ks_a, &e->ks_b, &e->act_a, &e->audit_b};
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        if (*cs[i]) redisFree(*cs[i]);
        *cs[i] = NULL;
    }
    if (e->a.pid > 0) redis_fixture_stop(&e->a);
    if (e->b.pid > 0) redis_fixture_stop(&e->b);
    if (getenv("PA_KEEP_TEST_DIR")) fprintf(stderr, "audit_env: kept %s\n", e->dir);
    else if (e->dir[0]) fixture_rmtree(e->dir);
    rpc_client_thread_done();
}

int env_create_group(audit_env *e, uint32_t id) {
    return env_create_group_with(e, id, NULL);
}

int env_create_group_with(audit_env *e, uint32_t id, void (*tune)(group_record *)) {
    group_record rec;
    group_record_defaults(&rec);
    rec.id = id;
    snprintf(rec.product, sizeof rec.product, "Audit Test Suite");
    snprintf(rec.edition, sizeof rec.edition, "Pro");
    if (tune) tune(&rec);
    char err[256];
    if (group_create(e->ks_a, e->kek_a_bytes, e->ks_b, e->kek_b_bytes, &rec, err, sizeof err) != 0) {
        fprintf(stderr, "audit_env: group_create %u: %s\n", id, err);
        return -1;
    }
    return 0;
}

int env_make_key(audit_env *e, uint32_t group, uint32_t serial, bool genuine, pk_fields *fields,
                 char text[PK_TEXT_LEN + 1]) {
    group_record rec;
    mac_key *first = NULL, *second = NULL;
    int alg2;
    char err[256];
    pk_fields f = {.group = group, .serial = serial};
    int rc = -1;
    uint64_t v1, v2;
    if (group_load(e->ks_a, e->kek_a_bytes, group, &rec, &first, err, sizeof err) == 0 &&
        group_load_audit(e->ks_b, e->kek_b_bytes, group, &alg2, &second, err, sizeof err) == 0 &&
        mac_security_value(first, MAC_ROLE_FIRST, group, serial, false, &v1) == 0 &&
        mac_security_value(second, MAC_ROLE_SECOND, group, serial, false, &v2) == 0) {
        f.security_first = v1;
        /* A forger who stole the first secret still has to guess this one. */
        f.security_second = genuine ? (uint32_t)v2 : (uint32_t)((v2 + 1 + serial % 7) & PK_SECURITY_SECOND_MAX);
        rc = pk_encode(&f, text);
    } else {
        fprintf(stderr, "audit_env: cannot make a key of group %u: %s\n", group, err);
    }
    mac_key_free(first);
    mac_key_free(second);
    if (rc == 0 && fields) *fields = f;
    return rc;
}

audit_client *env_client(audit_env *e, const char *certdir) {
    return env_client_named(e, certdir, "activation-client");
}

audit_client *env_client_named(audit_env *e, const char *dir, const char *name) {
    char ca[400], cert[400], key[400], err[300];
    snprintf(ca, sizeof ca, "%s/ca.pem", e->certs);   /* always trust the real server */
    snprintf(cert, sizeof cert, "%s/%s.pem", dir, name);
    snprintf(key, sizeof key, "%s/%s.key", dir, name);
    audit_client_config cfg = {.target = e->target, .ca_file = ca, .cert_file = cert, .key_file = key,
                               .target_name_override = "localhost", .origin = "test-activation",
                               .verify_timeout_ms = 3000};
    audit_client *c = audit_client_new(&cfg, err, sizeof err);
    if (!c) fprintf(stderr, "audit_env: %s\n", err);
    return c;
}

long long env_int(redisContext *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    long long v = -1;
    if (r && r->type == REDIS_REPLY_INTEGER) v = r->integer;
    else if (r && r->type == REDIS_REPLY_STRING) v = atoll(r->str);
    else if (r && r->type == REDIS_REPLY_NIL) v = 0;
    if (r) freeReplyObject(r);
    return v;
}

long env_count_keys(redisContext *c, const char *pattern) {
    long n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r) freeReplyObject(r);
            return -1;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        n += (long)r->element[1]->elements;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return n;
}

long env_request_keys(audit_env *e) {
    char pattern[PA_RKEY_MAX];
    pa_rkey_audit_request(pattern, sizeof pattern, "*");
    return env_count_keys(e->audit_b, pattern);
}

/* One step back: the last log entry, its revoked index and the counter go,
 * and the stream's last ID with them (XSETID), as in a backup. */
static int log_back_one(audit_env *e) {
    uint64_t last = (uint64_t)env_int(e->audit_b, "GET " PA_RKEY_AUDIT_REVOCATION_SEQ);
    redisReply *x = last ? redisCommand(e->audit_b, "XRANGE " PA_RKEY_AUDIT_REVOCATIONS " %llu-0 %llu-0",
                                        (unsigned long long)last, (unsigned long long)last)
                         : NULL;
    if (!x || x->type != REDIS_REPLY_ARRAY || x->elements != 1) {
        fprintf(stderr, "audit_env: no revocation log entry %llu to take back\n", (unsigned long long)last);
        if (x) freeReplyObject(x);
        return -1;
    }
    const redisReply *f = x->element[0]->element[1];
    const char *group = "", *serial = "";
    for (size_t k = 0; k + 1 < f->elements; k += 2) {
        if (strcmp(f->element[k]->str, "group") == 0) group = f->element[k + 1]->str;
        if (strcmp(f->element[k]->str, "serial") == 0) serial = f->element[k + 1]->str;
    }
    int rc = 0;
    redisReply *r[4] = {
        redisCommand(e->audit_b, "HDEL " PA_RKEY_AUDIT_REVOKED " %s:%s", group, serial),
        redisCommand(e->audit_b, "XDEL " PA_RKEY_AUDIT_REVOCATIONS " %llu-0", (unsigned long long)last),
        redisCommand(e->audit_b, "XSETID " PA_RKEY_AUDIT_REVOCATIONS " %llu-0", (unsigned long long)(last - 1)),
        redisCommand(e->audit_b, "SET " PA_RKEY_AUDIT_REVOCATION_SEQ " %llu", (unsigned long long)(last - 1)),
    };
    for (int i = 0; i < 4; i++) {
        if (!r[i] || r[i]->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "audit_env: taking the log back: %s\n", r[i] ? r[i]->str : "no reply");
            rc = -1;
        }
        if (r[i]) freeReplyObject(r[i]);
    }
    freeReplyObject(x);
    return rc;
}

int env_audit_log_back(audit_env *e, int drop) {
    for (int i = 0; i < drop; i++)
        if (log_back_one(e) != 0) return -1;
    return 0;
}

int env_audit_log_wipe(audit_env *e) {
    redisReply *r = redisCommand(e->audit_b, "DEL " PA_RKEY_AUDIT_REVOCATIONS " " PA_RKEY_AUDIT_REVOCATION_SEQ
                                             " " PA_RKEY_AUDIT_REVOKED " " PA_RKEY_AUDIT_REVOCATION_EPOCH);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? 0 : -1;
    if (r) freeReplyObject(r);
    return rc;
}

static const redisReply *entry_field(const redisReply *fields, const char *name) {
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (strcmp(fields->element[i]->str, name) == 0) return fields->element[i + 1];
    return NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

long env_trail_count(audit_env *e, const char *source, long *dup_ids) {
    redisReply *r = redisCommand(e->audit_b, "XRANGE " PA_RKEY_AUDIT_TRAIL " - +");
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r) freeReplyObject(r);
        return -1;
    }
    char **ids = calloc(r->elements + 1, sizeof *ids);
    long n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *f = r->element[i]->element[1];
        const redisReply *src = entry_field(f, "source"), *rid = entry_field(f, "request_id");
        if (source && (!src || strcmp(src->str, source) != 0)) continue;
        ids[n++] = rid ? rid->str : "";
    }
    qsort(ids, (size_t)n, sizeof *ids, cmp_str);
    long dups = 0;
    for (long i = 1; i < n; i++)
        if (ids[i][0] && strcmp(ids[i], ids[i - 1]) == 0) dups++;
    if (dup_ids) *dup_ids = dups;
    free(ids);
    freeReplyObject(r);
    return n;
}
