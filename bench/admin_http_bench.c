/* admin_http_bench.c -- the HTTP half of bench/admin_export.
 *
 * The environment is the admin tests' own (admin_env.h: Redis A with the
 * production ACL, the admin-server binary over HTTPS, a viewer account
 * logged in). The machines go straight into the directory through
 * machine_dir.lua's ingest, as the admin server's ingest passes log entries
 * (the activation servers are not what is measured); each export is one
 * GET whose body libcurl reads and drops, counting bytes and CSV lines. */
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_env.h"
#include "admin_http_bench.h"
#include "clock.h"
#include "export.h"
#include "machine_dir.h"
#include "redis_keys.h"

enum { BATCH = 100, GROUPS = 200 };

/* Machine i's log entry, as text. */
typedef struct entry {
    char m[24], g[24], s[24], t[24], ip[20], h[32], mac[24], hs[24], e[24]; /* the entry's fields */
} entry;

static void make_entry(unsigned long long i, long now, entry *x) {
    snprintf(x->m, sizeof x->m, "bx%014llx", i); /* 16 bytes: the machine digest */
    snprintf(x->g, sizeof x->g, "%llu", 1000 + i % GROUPS);
    snprintf(x->s, sizeof x->s, "%llu", 1 + i / GROUPS);
    snprintf(x->t, sizeof x->t, "%ld", now - (long)(i % 86400));
    snprintf(x->ip, sizeof x->ip, "10.%u.%u.%u", (unsigned)(i >> 16 & 255), (unsigned)(i >> 8 & 255),
             (unsigned)(i & 255));
    snprintf(x->h, sizeof x->h, "host-%07llu", i);
    snprintf(x->mac, sizeof x->mac, "02:00:00:%02x:%02x:%02x", (unsigned)(i >> 16 & 255), (unsigned)(i >> 8 & 255),
             (unsigned)(i & 255));
    snprintf(x->hs, sizeof x->hs, "PF%08llu", i);
    snprintf(x->e, sizeof x->e, "%ld", now + 86400);
}

/* One ingest call of machines [from, to). */
static int load_batch(rstore *r, unsigned long long from, unsigned long long to, long now) {
    static entry x[BATCH];
    const char *argv[3 + BATCH * MD_ENTRY_FIELDS];
    size_t lens[3 + BATCH * MD_ENTRY_FIELDS];
    size_t k = 0;
    argv[k++] = PA_RKEY_MLOG_POS; /* a log of its own, so no real log's position moves */
    argv[k++] = "{g:0}:mlog";
    argv[k++] = "0-1";
    for (unsigned long long i = from; i < to; i++) {
        entry *e = &x[i - from];
        make_entry(i, now, e);
        const char *v[MD_ENTRY_FIELDS] = {"a", e->m, e->g, e->s, "", e->t, e->ip, e->h, e->mac, e->hs, "linux", e->e};
        for (int f = 0; f < MD_ENTRY_FIELDS; f++) argv[k++] = v[f];
    }
    for (size_t a = 0; a < k; a++) lens[a] = strlen(argv[a]);
    redisReply *rep = machine_dir_call(r, "ingest", k, argv, lens);
    int ok = rep && rep->type == REDIS_REPLY_INTEGER;
    if (!ok) fprintf(stderr, "ingest: %s\n", rep && rep->type == REDIS_REPLY_ERROR ? rep->str : rstore_error(r));
    if (rep) freeReplyObject(rep);
    return ok ? 0 : -1;
}

static int load(admin_env *env, unsigned long long n) {
    char url[256], err[200];
    redis_fixture_url(&env->redis, "admin", url, sizeof url);
    rstore_config cfg = {.url = url, .command_timeout_ms = 30000};
    rstore *r = rstore_new(&cfg, false, err, sizeof err);
    if (!r) return fprintf(stderr, "admin_export: %s\n", err), -1;
    long now = (long)time(NULL);
    double t0 = pa_mono_s();
    int rc = 0;
    for (unsigned long long i = 0; rc == 0 && i < n; i += BATCH)
        rc = load_batch(r, i, i + BATCH < n ? i + BATCH : n, now);
    rstore_free(r);
    if (rc == 0) printf("loaded %llu machines into the directory in %.1f s\n", n, pa_mono_s() - t0);
    return rc;
}

/* What a download's body came to. */
typedef struct tally {
    unsigned long long bytes; /* all of it */
    unsigned long long lines; /* LF bytes: CSV rows and the header */
} tally;

static size_t drop(char *p, size_t size, size_t n, void *cls) {
    tally *t = cls;
    t->bytes += size * n;
    for (size_t i = 0; i < size * n; i++) t->lines += p[i] == '\n';
    return size * n;
}

static long server_kb(pid_t pid, const char *field) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kb = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') kb = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return kb;
}

static int export_once(admin_env *env, export_format f, unsigned long long n) {
    char url[256], ca[360];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d/api/v1/machines/export?format=%s", env->insecure ? "http" : "https",
             env->port, export_format_name(f));
    snprintf(ca, sizeof ca, "%s/ca.pem", env->certs);
    tally t = {0, 0};
    CURL *c = env->curl; /* it holds the session cookie */
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_COOKIEFILE, "");
    curl_easy_setopt(c, CURLOPT_INTERFACE, "127.0.0.1");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, drop);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    double t0 = pa_mono_s();
    CURLcode rc = curl_easy_perform(c);
    double s = pa_mono_s() - t0;
    long status = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status != 200) {
        fprintf(stderr, "admin_export: %s export: %s, status %ld\n", export_format_name(f), curl_easy_strerror(rc),
                status);
        return -1;
    }
    printf("http       %-4s  %9llu rows  %6.2f s  %9.0f rows/s  %7.1f MB", export_format_name(f), n, s, (double)n / s,
           (double)t.bytes / 1e6);
    if (f == EXPORT_CSV) printf("  (%llu CSV lines)", t.lines);
    printf("  admin-server peak RSS %6.1f MB\n", (double)server_kb(env->server, "VmHWM") / 1024);
    return 0;
}

int admin_http_bench(unsigned long long machines, int only) {
    static admin_env env;
    if (admin_env_start(&env, NULL) != 0) return -1;
    int rc = -1;
    if (admin_env_add_user(&env, "bench", "viewer", "a long bench password") != 0 ||
        admin_login(&env, "bench", "a long bench password") != 200) {
        fprintf(stderr, "admin_export: cannot log in\n");
    } else if (load(&env, machines) == 0) {
        printf("admin-server RSS before the exports %.1f MB\n", (double)server_kb(env.server, "VmRSS") / 1024);
        rc = 0;
        for (export_format f = EXPORT_CSV; f <= EXPORT_XLSX; f++)
            if (only < 0 || only == (int)f) rc |= export_once(&env, f, machines);
    }
    admin_env_stop(&env);
    return rc;
}
