/* admin_http_bench.c -- the HTTP half of bench/admin_export.
 *
 * The environment is the admin tests' own (admin_env.h: Redis A with the
 * production ACL, the admin-server binary over HTTPS, a viewer account
 * logged in). The machines go straight into the directory through
 * machine_dir.lua's ingest (admin_machines.h); each export is one GET whose
 * body libcurl reads and drops, counting bytes and CSV lines. */
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_env.h"
#include "admin_machines.h"
#include "admin_http_bench.h"
#include "clock.h"
#include "export.h"

int admin_http_load(admin_env *env, unsigned long long n) {
    char url[256], err[200];
    redis_fixture_url(&env->redis, "admin", url, sizeof url);
    rstore_config cfg = {.url = url, .command_timeout_ms = 30000};
    rstore *r = rstore_new(&cfg, false, err, sizeof err);
    if (!r) return fprintf(stderr, "admin_export: %s\n", err), -1;
    int rc = bench_machines_load(r, (long)n, (long)time(NULL));
    rstore_free(r);
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

int admin_http_export(admin_env *env, export_format f, unsigned long long n) {
    char url[256], ca[360];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d/api/v1/machines/export?format=%s", env->insecure ? "http" : "https",
             env->port, export_format_name(f));
    snprintf(ca, sizeof ca, "%s/ca.pem", env->certs);
    tally t = {0, 0};
    CURL *c = env->curl; /* kept: its connection is reused */
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    char cookie[sizeof env->cookie + 32];
    snprintf(cookie, sizeof cookie, "Cookie: pa_session=%s", env->cookie);
    struct curl_slist *hdrs = curl_slist_append(NULL, cookie);
    if (!hdrs) return -1;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_INTERFACE, "127.0.0.1");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, drop);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    double t0 = pa_mono_s();
    CURLcode rc = curl_easy_perform(c);
    double s = pa_mono_s() - t0;
    long status = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
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
    } else if (admin_http_load(&env, machines) == 0) {
        printf("admin-server RSS before the exports %.1f MB\n", (double)server_kb(env.server, "VmRSS") / 1024);
        rc = 0;
        for (export_format f = EXPORT_CSV; f <= EXPORT_XLSX; f++)
            if (only < 0 || only == (int)f) rc |= admin_http_export(&env, f, machines);
    }
    admin_env_stop(&env);
    return rc;
}
