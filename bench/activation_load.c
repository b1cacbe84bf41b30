/* activation_load.c -- load benchmark of the activation server.
 *
 * Starts everything for real (Redis A and B with the production config and
 * ACL users, the activation-server binary, and `echo_bench --serve` as the
 * bare-runtime ceiling), creates groups and keys with the keystore library,
 * and drives the server with bench/loadgen_core using a mix of new
 * activations, re-activations of machines that hold a place, and keys that
 * are not genuine. In one run it prints:
 *   - per thread/channel/concurrency setting: Activate calls/s and latency
 *     percentiles, the bare echo on the same runtime at the same setting,
 *     and the ratio Activate / echo;
 *   - where the time goes: the server's per-stage counters
 *     (pa_activate_stage_nanoseconds_total: decode+MAC, Redis round trip,
 *     signing, rest of the handler) and the CPU each process used per call
 *     (load generator, activation server, redis-server): client, server and
 *     Redis share this machine's cores, so CPU per call sets the ceiling;
 *   - p50/p90/p99/p99.9 at half of the peak rate (open loop), and at low
 *     load (one client, one call in flight);
 *   - the server-side CPU per granted Activate (activation server + Redis A,
 *     from /proc/PID/stat) and the load generator's own CPU per call;
 *   - the batch sizes the server reports (pa_batch_calls, when it batches);
 *   - the best setting again with Redis A at appendfsync always (the runs
 *     use AOF with appendfsync everysec, as deployed, set explicitly);
 *   - with --ab-batch-script N, the best setting N times more on the server
 *     (--batch-script on, its default) and on a second server started with
 *     --batch-script off, alternated, each with its calls/s, ratio to echo,
 *     Redis's time per EVALSHA and per call, and the CPU per call of
 *     redis-server and the activation server (docs/batching.md);
 *   - genuine callers' calls/s alone and under a flood of keys that are not
 *     genuine from many loopback source addresses (--flood-addresses);
 *   - all of it together in a closing summary (the lines tools read:
 *     "ratio Activate/echo: X" is printed there only);
 *   - Redis memory per activation record after N activations of distinct
 *     keys (INFO memory before/after, divided by N), for a one-machine
 *     permanent key (the usual record: no expiry, no index), then for N/5
 *     keys of an unlimited group (one machine each: the record carries an
 *     expiry for the retention of idle places), N/5 keys of a leased group
 *     of three places with three machines each (expiry) and N/5 keys of an
 *     unlimited group with three machines each (expiry and place index).
 * With --target it drives a running server instead (keys from --keys FILE;
 * stage breakdown with --metrics; ceiling with --echo-target). The server it
 * starts talks plain text (--insecure-plaintext), like the echo ceiling, so
 * the ratio compares like with like; TLS costs more per call on top.
 *
 * With --audit it measures what auditing costs instead (issue 4): it also
 * starts the audit server (certificates from scripts/make-certs.sh) and runs
 * the activation server with auditing on, then drives new activations at one
 * setting (--audit-run) against groups sampled at 5 % offline, 5 % online
 * and 100 % offline, each run between two runs on a group sampled at 0 %,
 * every group with fresh keys, waiting for the outbox to drain between
 * runs. Each sampled throughput is printed as a ratio to the mean of the 0 %
 * runs around it (drift does not pass for a cost). The per-address threat signal
 * is switched off there (one load generator looks like one hammering client
 * and would raise every group to 100 %).
 *
 * With --oracle it measures what the time of a refusal tells instead: a
 * wrong key of a real group against a key of a made-up group (a fresh one
 * each call, so nothing can be cached for it), one call at a time and
 * alternating, from a caller that is not rate-limited and from one that is
 * (a second server with a tiny address bucket), and prints both medians.
 * They should match: the server knows which groups exist without asking
 * Redis and runs a stand-in MAC for the made-up ones (group_ids.h).
 *
 * Targets: ratio >= 0.45 at the best setting, <= 45 us of server-side CPU
 * per granted Activate, p99 <= 2 ms at half of peak, a flood costing genuine
 * callers <= 30 %, <= 150 bytes per activation record; with auditing, 5 %
 * offline costs <= 5 %, 5 % online <= 15 % of the 0 % throughput. Figures
 * are printed as measured; the breakdown shows which stage stands in the way.
 * --quick is the ~30 s smoke run ctest makes (bench.activation_load). */
#include <getopt.h>
#include <pthread.h>
#include <hiredis/hiredis.h>
#include <libgen.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "activation/v1/activation.pb-c.h"
#include "clock.h"
#include "fixture.h"
#include "group.h"
#include "keycodec.h"
#include "loadgen_core.h"
#include "mac_registry.h"
#include "redis_keys.h"
#include "rpc_methods.h"

#define ECHO_PATH "/bench.v1.Echo/Echo"
#define MAX_RUNS 16
#define PLACES_PER_KEY 3          /* max_machines of the load group */
#define AGAIN_KEYS 1000
#define INVALID_KEYS 1000
#define BENCH_USER_PW "bench-measure-pw"

enum { CLASS_NEW, CLASS_AGAIN, CLASS_INVALID, CLASS_MEMORY };
static const char *const class_names[LOADGEN_MAX_CLASSES] = {"new", "again", "invalid", "memory"};
enum { G_LOAD = 4365, G_MEMORY = 4366, G_MEMORY_UNLIMITED = 4367, G_MEMORY_LEASED = 4368, G_MEMORY_UNLIMITED_3 = 4369 };
/* Machine numbers of each class live in separate ranges. */
#define MACHINE_AGAIN (UINT64_C(1) << 40)
#define MACHINE_INVALID (UINT64_C(2) << 40)
#define MACHINE_MEMORY (UINT64_C(3) << 40)

typedef char key_text[PK_TEXT_LEN + 1];

typedef struct run_spec {
    int threads, channels, concurrency;
} run_spec;

typedef struct options {
    const char *target;           /* --target: drive a running server */
    const char *metrics;          /* --metrics HOST:PORT of that server */
    const char *echo_target;      /* --echo-target: its ceiling */
    const char *keys_file;        /* --keys: genuine keys for --target mode */
    run_spec runs[MAX_RUNS];
    int n_runs;
    double duration, warmup;
    int workers;                  /* activation-server workers (0: its default) */
    int echo_workers;             /* echo server workers (0: the runtime's default) */
    int mix[3];                   /* percent new, again, invalid */
    size_t load_keys;             /* fresh keys for the new class */
    size_t records;               /* activations for the memory figure; 0 = skip */
    bool half;                    /* measure at half of peak */
    bool quick;                   /* --quick: one setting, short runs (the smoke test) */
    int flood_addresses;          /* source addresses of the flood; 0 = no flood run */
    const char *log_level;        /* the started server's --log-level */
    bool audit;                   /* --audit: the sampling-cost comparison only */
    bool oracle;                  /* --oracle: refusal times, real vs made-up group */
    size_t oracle_calls;          /* calls of each kind per --oracle run */
    run_spec audit_run;           /* its one setting */
    size_t audit_keys;            /* fresh keys per sampling group */
    int ab_pairs;                 /* --ab-batch-script: alternated pairs at the best setting; 0 none */
} options;

/* An ActivateRequest packed once: a call copies it and writes its key and
 * machine id in place, so the generator does not pack a message per call.
 * The key and the machine id have fixed lengths, so their bytes sit at
 * fixed offsets. */
typedef struct request_template {
    uint8_t bytes[256];        /* the packed request */
    size_t len;                /* 0: no template, pack each call */
    size_t key_at, machine_at; /* where the key's text and the machine id start */
    size_t size;               /* a packed request's length, template or not: the echo's size */
} request_template;

/* The keys every builder picks from; filled before the first call. */
typedef struct key_set {
    key_text *load;               /* fresh keys: PLACES_PER_KEY new machines each */
    size_t n_load;
    key_text *again;              /* key i holds a place for machine MACHINE_AGAIN + i */
    size_t n_again;
    key_text *invalid;            /* wrong first security value, valid checksum */
    size_t n_invalid;
    key_text *memory;             /* one activation each, for the memory figure */
    size_t n_memory;
    atomic_uint_fast64_t next_place;   /* next unused (key, machine) of `load` */
    atomic_uint_fast64_t next_memory;  /* next unused key of `memory` */
    atomic_uint_fast64_t exhausted;    /* new activations that found no fresh key */
    int mix[3];
    int only;                     /* >= 0: every request is of this class */
    request_template tmpl;        /* the packed request every call patches (template_init) */
} key_set;

/* What this process started (nothing in --target mode). */
typedef struct world {
    redis_fixture a, b;
    char dir[256];
    char kek_a[300], kek_b[300], signing_key[300], log_path[300], echo_log[300];
    uint8_t kek_a_bytes[KEK_LEN], kek_b_bytes[KEK_LEN];
    redisContext *ks_a, *ks_b;    /* keystore user on each store */
    redisContext *admin;          /* a measuring user with INFO rights on Redis A */
    pid_t server, echo, audit;    /* audit: the audit server, --audit only */
    pid_t throttled;              /* --oracle: a server with a tiny address bucket */
    pid_t server_off;             /* --ab-batch-script: a second server with --batch-script off */
    char target_off[64], log_off[300];
    int metrics_port_off;
    pid_t server_hold; /* the flood run: a second server with the deployed refusal hold */
    char target_hold[64], log_hold[300];
    int metrics_port_hold;
    char throttled_target[64], throttled_log[300];
    int metrics_port;
    char target[64], echo_target[64], metrics_host[64];
    char certs[300];              /* make-certs.sh output (--audit) */
    char audit_target[64], audit_log[300];
} world;

static int die(const char *what) {
    fprintf(stderr, "activation_load: %s\n", what);
    return -1;
}

/* --- small helpers ------------------------------------------------------------- */

/* CPU seconds used so far by `pid` (0 = this process). */
static double cpu_s(pid_t pid) {
    if (pid == 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    }
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');   /* fields after the command name */
    unsigned long ut = 0, st = 0;
    if (p) sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* A counter absent from /metrics (or no /metrics at all) counts as 0. */
static double series(const char *text, const char *name) { return fixture_metric(text, name, 0); }

/* --- where the time goes --------------------------------------------------------- */

enum { ST_DECODE, ST_AUDIT, ST_REDIS, ST_SIGN, ST_TOTAL, ST_CALLS, ST_N };
static const char *const stage_series[ST_N] = {
    "pa_activate_stage_nanoseconds_total{stage=\"decode_mac\"}",
    "pa_activate_stage_nanoseconds_total{stage=\"audit\"}",
    "pa_activate_stage_nanoseconds_total{stage=\"redis\"}",
    "pa_activate_stage_nanoseconds_total{stage=\"sign\"}",
    "pa_activate_stage_nanoseconds_total{stage=\"total\"}",
    "pa_activate_stage_calls_total",
};

#define HIST_BUCKETS 24

/* Cumulative bucket counts of one histogram series family, in order. */
typedef struct hist {
    double le[HIST_BUCKETS];
    double count[HIST_BUCKETS];
    int n;
} hist;

static void read_hist(const char *text, const char *prefix, hist *h) {
    size_t n = strlen(prefix);
    h->n = 0;
    for (const char *l = text; l && *l && h->n < HIST_BUCKETS;
         l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, prefix, n) != 0) continue;
        const char *le = strstr(l, "le=\""), *sp = strchr(l, ' ');
        if (!le || !sp) continue;
        h->le[h->n] = strncmp(le + 4, "+Inf", 4) == 0 ? 1e9 : strtod(le + 4, NULL);
        h->count[h->n++] = strtod(sp + 1, NULL);
    }
}

/* The bucket bound under which fraction q of the calls between a and b fell. */
static double hist_quantile(const hist *a, const hist *b, double q) {
    if (a->n != b->n || b->n == 0) return -1;
    double total = b->count[b->n - 1] - a->count[a->n - 1];
    for (int i = 0; total > 0 && i < b->n; i++)
        if (b->count[i] - a->count[i] >= q * total) return b->le[i];
    return -1;
}

/* pa_batch_calls of one method: calls per batch, cumulative buckets. */
typedef struct batch_hist {
    double le[HIST_BUCKETS];
    double count[HIST_BUCKETS];
    int n;             /* buckets seen; 0: the server does not batch */
    double sum, calls; /* _sum (calls) and _count (batches) */
} batch_hist;

/* Whether a series line is of `family` for Activate (labels in any order). */
static bool activate_series(const char *line, const char *family) {
    size_t n = strlen(family);
    if (strncmp(line, family, n) != 0 || (line[n] != '{' && line[n] != ' ')) return false;
    const char *end = strchr(line, '\n'), *m = strstr(line, "method=\"" PA_RPC_ACTIVATE_LABEL "\"");
    return m && (!end || m < end);
}

static void read_batch_hist(const char *text, batch_hist *h) {
    memset(h, 0, sizeof *h);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *sp = strchr(l, ' '), *le = strstr(l, "le=\"");
        if (!sp) continue;
        if (activate_series(l, "pa_batch_calls_bucket") && le && le < sp && h->n < HIST_BUCKETS) {
            h->le[h->n] = strncmp(le + 4, "+Inf", 4) == 0 ? 1e9 : strtod(le + 4, NULL);
            h->count[h->n++] = strtod(sp + 1, NULL);
        } else if (activate_series(l, "pa_batch_calls_sum")) {
            h->sum = strtod(sp + 1, NULL);
        } else if (activate_series(l, "pa_batch_calls_count")) {
            h->calls = strtod(sp + 1, NULL);
        }
    }
}

typedef struct snapshot {
    double stage[ST_N];           /* server counters */
    batch_hist batch;             /* Activate's calls per batch */
    hist call, redis;             /* server-side Activate latency, its Redis round trip */
    double cpu_self, cpu_server, cpu_redis, cpu_echo;
    double cpu_audit, cpu_redis_b;    /* --audit: the audit server and its store */
    double evalsha_calls, evalsha_usec; /* Redis A's INFO commandstats: the scripts' count and time */
    double wait_calls;                  /* ... and its WAITs (--redis-wait-replicas) */
    double all_calls;                   /* every command counted (the scripts' own redis.call too) */
    bool have_stages;
} snapshot;

static void read_command_stats(const world *w, snapshot *s) {
    redisReply *r = w->admin ? redisCommand(w->admin, "INFO commandstats") : NULL;
    const char *info = r && r->type == REDIS_REPLY_STRING ? r->str : NULL;
    double unused;
    redis_info_command_stats(info, "evalsha", &s->evalsha_calls, &s->evalsha_usec);
    redis_info_command_stats(info, "wait", &s->wait_calls, &unused);
    s->all_calls = redis_info_all_calls(info);
    if (r) freeReplyObject(r);
}

static void take_snapshot(const world *w, snapshot *s) {
    memset(s, 0, sizeof *s);
    if (w->metrics_port > 0) {
        char *text = fixture_http_get(w->metrics_host, w->metrics_port, "/metrics");
        s->have_stages = text != NULL;
        for (int i = 0; text && i < ST_N; i++) s->stage[i] = series(text, stage_series[i]);
        read_hist(text, "pa_grpc_call_seconds_bucket{method=\"" PA_RPC_ACTIVATE_LABEL "\"", &s->call);
        read_hist(text, "pa_activate_redis_seconds_bucket{", &s->redis);
        read_batch_hist(text, &s->batch);
        free(text);
    }
    s->cpu_self = cpu_s(0);
    s->cpu_server = w->server > 0 ? cpu_s(w->server) : 0;
    s->cpu_redis = w->a.pid > 0 ? cpu_s(w->a.pid) : 0;
    s->cpu_echo = w->echo > 0 ? cpu_s(w->echo) : 0;
    s->cpu_audit = w->audit > 0 ? cpu_s(w->audit) : 0;
    s->cpu_redis_b = w->audit > 0 && w->b.pid > 0 ? cpu_s(w->b.pid) : 0;
    read_command_stats(w, s);
}

/* The same split for the echo run: what the bare runtime costs per call. */
static void print_echo_cpu(const world *w, const snapshot *a, const snapshot *b, uint64_t calls) {
    if (calls == 0 || w->echo <= 0) return;
    double self = (b->cpu_self - a->cpu_self) / calls * 1e6;
    double echo = (b->cpu_echo - a->cpu_echo) / calls * 1e6;
    printf("  CPU per call: load generator %.1f us, echo server %.1f us = %.1f us\n", self, echo,
           self + echo);
}

static void print_breakdown(const world *w, const snapshot *a, const snapshot *b, uint64_t calls) {
    double n = b->stage[ST_CALLS] - a->stage[ST_CALLS];
    if (a->have_stages && b->have_stages && n > 0) {
        double us[ST_N];
        for (int i = 0; i < ST_TOTAL + 1; i++) us[i] = (b->stage[i] - a->stage[i]) / n / 1000;
        double rest = us[ST_TOTAL] - us[ST_DECODE] - us[ST_AUDIT] - us[ST_REDIS] - us[ST_SIGN];
        printf("  server time per granted Activate (%.0f calls): decode+MAC %.1f us, audit %.1f us, "
               "Redis round trip %.1f us, license signing %.1f us, rest %.1f us = handler %.1f us\n",
               n, us[ST_DECODE], us[ST_AUDIT], us[ST_REDIS], us[ST_SIGN], rest, us[ST_TOTAL]);
    }
    if (calls == 0 || w->server <= 0) return;
    double self = (b->cpu_self - a->cpu_self) / calls * 1e6;
    double server = (b->cpu_server - a->cpu_server) / calls * 1e6;
    double redis = (b->cpu_redis - a->cpu_redis) / calls * 1e6;
    double audit = (b->cpu_audit - a->cpu_audit) / calls * 1e6;
    double redis_b = (b->cpu_redis_b - a->cpu_redis_b) / calls * 1e6;
    double sum = self + server + redis + audit + redis_b;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("  CPU per call: load generator %.1f us, activation-server %.1f us, redis-server %.1f us",
           self, server, redis);
    if (w->audit > 0) printf(", audit-server %.1f us, its redis-server %.1f us", audit, redis_b);
    printf(" = %.1f us; %ld cores allow at most %.0f calls/s\n", sum, cores,
           sum > 0 ? cores * 1e6 / sum : 0);
    double scripts = b->evalsha_calls - a->evalsha_calls;
    double commands = b->all_calls - a->all_calls - scripts - (b->wait_calls - a->wait_calls) - 1;
    if (scripts > 0)
        printf(
            "  Redis A (INFO commandstats): %.2f EVALSHA per call, %.1f us each inside Redis, %.1f commands "
            "each (its redis.call's) = %.1f per call, %.2f WAIT per call\n",
            scripts / calls, (b->evalsha_usec - a->evalsha_usec) / scripts, commands / scripts, commands / calls,
            (b->wait_calls - a->wait_calls) / calls);
}

/* Where a tail comes from: inside the server (arrival to reply, and its
 * Redis round trip), or before the call reached it. Bucket bounds, so "<=". */
static void print_server_tail(const snapshot *a, const snapshot *b) {
    double call = hist_quantile(&a->call, &b->call, 0.99);
    double redis = hist_quantile(&a->redis, &b->redis, 0.99);
    if (call < 0 || redis < 0) return;
    printf("  server side p99: Activate arrival to reply <= %.2f ms, its Redis round trip <= %.2f ms\n",
           call * 1000, redis * 1000);
}

/* The bucket bound under which fraction q of the batches between a and b fell. */
static double batch_quantile(const batch_hist *a, const batch_hist *b, double q, double total) {
    for (int i = 0; i < b->n; i++)
        if (b->count[i] - a->count[i] >= q * total) return b->le[i];
    return -1;
}

static void bound_text(char *dst, size_t cap, double le) {
    if (le >= 1e9) snprintf(dst, cap, "+Inf");
    else snprintf(dst, cap, "%g", le);
}

/* "batch sizes: ..." for the Activate calls between a and b. */
static void format_batch_sizes(const snapshot *a, const snapshot *b, char *dst, size_t cap) {
    double batches = b->batch.calls - a->batch.calls, calls = b->batch.sum - a->batch.sum;
    if (b->batch.n == 0 || a->batch.n != b->batch.n || batches <= 0) {
        snprintf(dst, cap, "batch sizes: not reported");
        return;
    }
    char p50[16], p90[16], top[16];
    bound_text(p50, sizeof p50, batch_quantile(&a->batch, &b->batch, 0.5, batches));
    bound_text(p90, sizeof p90, batch_quantile(&a->batch, &b->batch, 0.9, batches));
    bound_text(top, sizeof top, batch_quantile(&a->batch, &b->batch, 1.0, batches));
    snprintf(dst, cap, "batch sizes: mean %.2f, p50 <= %s, p90 <= %s, max bucket <= %s (%.0f batches)", calls / batches,
             p50, p90, top, batches);
}

/* Server-side CPU (activation server and Redis A) between a and b per granted call. */
static double server_cpu_per_call_us(const snapshot *a, const snapshot *b, uint64_t granted) {
    if (granted == 0) return 0;
    return (b->cpu_server - a->cpu_server + b->cpu_redis - a->cpu_redis) / (double)granted * 1e6;
}

/* --- the request mix ------------------------------------------------------------- */

static void machine_id(uint8_t out[32], uint64_t n) {
    memset(out, 0x5a, 32);
    memcpy(out, &n, sizeof n);
}

static int pick_class(const key_set *k, int thread, uint64_t seq) {
    if (k->only >= 0) return k->only;
    unsigned r = (unsigned)((seq * 37 + (uint64_t)thread * 11) % 100);
    if (r < (unsigned)k->mix[0]) return CLASS_NEW;
    if (r < (unsigned)(k->mix[0] + k->mix[1])) return CLASS_AGAIN;
    return CLASS_INVALID;
}

/* The request for `key` on machine `m`, packed into out (at most cap);
 * its length, or 0 when it does not fit. */
static size_t pack_request(const char *key, const uint8_t m[32], uint8_t *out, size_t cap) {
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = (char *)key;
    rq.machine_id = (ProtobufCBinaryData){.len = 32, .data = (uint8_t *)m};
    rq.hostname = "bench-host.example.com";
    rq.os = "Debian GNU/Linux 12";
    rq.arch = "x86_64";
    rq.client_version = "activation_load/1";
    if (activation__v1__activate_request__get_packed_size(&rq) > cap) return 0;
    return activation__v1__activate_request__pack(&rq, out);
}

/* Packs the template with marker bytes and finds them; leaves t->len 0
 * (pack every call) when they are not found once each. */
static void template_init(request_template *t) {
    char key[PK_TEXT_LEN + 1];
    uint8_t m[32];
    memset(key, '#', PK_TEXT_LEN);
    key[PK_TEXT_LEN] = '\0';
    memset(m, 0xa5, sizeof m);
    t->len = 0;
    size_t len = pack_request(key, m, t->bytes, sizeof t->bytes);
    t->size = len;
    uint8_t *kp = len ? memmem(t->bytes, len, key, PK_TEXT_LEN) : NULL;
    uint8_t *mp = len ? memmem(t->bytes, len, m, sizeof m) : NULL;
    if (!kp || !mp || memmem(kp + 1, len - (size_t)(kp + 1 - t->bytes), key, PK_TEXT_LEN)) return;
    t->key_at = (size_t)(kp - t->bytes);
    t->machine_at = (size_t)(mp - t->bytes);
    t->len = len;
}

static int build(void *user, int thread, uint64_t seq, loadgen_request *req) {
    key_set *k = user;
    int klass = pick_class(k, thread, seq);
    const char *key;
    uint64_t machine, p;
    switch (klass) {
    case CLASS_NEW:
        p = atomic_fetch_add(&k->next_place, 1);
        if (p >= k->n_load * PLACES_PER_KEY) {   /* out of fresh keys: repeat (shown) */
            atomic_fetch_add(&k->exhausted, 1);
            p %= k->n_load * PLACES_PER_KEY;
        }
        key = k->load[p / PLACES_PER_KEY];
        machine = p;
        break;
    case CLASS_AGAIN:
        p = (seq * 7919 + (uint64_t)thread) % k->n_again;
        key = k->again[p];
        machine = MACHINE_AGAIN + p;
        break;
    case CLASS_INVALID:
        p = (seq * 131 + (uint64_t)thread) % k->n_invalid;
        key = k->invalid[p];
        machine = MACHINE_INVALID + p;
        break;
    default:
        p = atomic_fetch_add(&k->next_memory, 1);
        if (p >= k->n_memory) return -1;
        key = k->memory[p];
        machine = MACHINE_MEMORY + p;
        break;
    }
    uint8_t m[32];
    machine_id(m, machine);
    const request_template *t = &k->tmpl;
    if (t->len && t->len <= req->cap && strlen(key) == PK_TEXT_LEN) {
        memcpy(req->buf, t->bytes, t->len);
        memcpy(req->buf + t->key_at, key, PK_TEXT_LEN);
        memcpy(req->buf + t->machine_at, m, sizeof m);
        req->len = t->len;
    } else if (!(req->len = pack_request(key, m, req->buf, req->cap))) {
        return -1;
    }
    req->klass = klass;
    return 0;
}

/* An echo as large as an ActivateRequest of the mix (user: the key_set). */
static int build_echo(void *user, int thread, uint64_t seq, loadgen_request *req) {
    const key_set *k = user;
    if (k->tmpl.size == 0 || k->tmpl.size > req->cap) return -1;
    memset(req->buf, 'e', k->tmpl.size);
    req->len = k->tmpl.size;
    return 0;
}

/* --- keys ----------------------------------------------------------------------- */

static key_text *alloc_keys(size_t n) {
    key_text *k = calloc(n ? n : 1, sizeof *k);
    if (!k) die("out of memory for keys");
    return k;
}

/* Genuine keys for serials first..first+n-1 of `group` (delta spoils SV1). */
static int make_keys(world *w, uint32_t group, uint32_t first, size_t n, uint64_t delta,
                     key_text *out) {
    group_record rec;
    mac_key *k1 = NULL, *k2 = NULL;
    int alg2;
    char err[256] = "";
    if (group_load(w->ks_a, w->kek_a_bytes, group, &rec, &k1, err, sizeof err) != 0 ||
        group_load_audit(w->ks_b, w->kek_b_bytes, group, &alg2, &k2, err, sizeof err) != 0) {
        mac_key_free(k1);
        fprintf(stderr, "activation_load: group %u: %s\n", group, err);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        pk_fields f = {.group = group, .serial = first + (uint32_t)i};
        uint64_t sv2;
        rc |= mac_security_value(k1, MAC_ROLE_FIRST, group, f.serial, false, &f.security_first);
        rc |= mac_security_value(k2, MAC_ROLE_SECOND, group, f.serial, false, &sv2);
        f.security_first = (f.security_first ^ delta) & PK_SECURITY_FIRST_MAX;
        f.security_second = (uint32_t)sv2;
        rc |= pk_encode(&f, out[i]);
    }
    mac_key_free(k1);
    mac_key_free(k2);
    return rc == 0 ? 0 : die("key generation failed");
}

static void tune_load(group_record *r) { r->policy.max_machines = PLACES_PER_KEY; }
static void tune_memory(group_record *r) { r->policy.max_machines = 1; }

static void base_record(group_record *rec, uint32_t id) {
    group_record_defaults(rec);
    rec->id = id;
    snprintf(rec->product, sizeof rec->product, "Demo Office");
    snprintf(rec->edition, sizeof rec->edition, "Professional");
    snprintf(rec->policy.features, sizeof rec->policy.features, "editor,spreadsheet,presentation");
}

static int write_group(world *w, group_record *rec) {
    char err[256];
    if (group_create(w->ks_a, w->kek_a_bytes, w->ks_b, w->kek_b_bytes, rec, err, sizeof err)) {
        fprintf(stderr, "activation_load: group %u: %s\n", rec->id, err);
        return -1;
    }
    return 0;
}

static int create_group(world *w, uint32_t id, void (*tune)(group_record *)) {
    group_record rec;
    base_record(&rec, id);
    tune(&rec);
    return write_group(w, &rec);
}

static int make_all_keys(world *w, const options *o, key_set *k) {
    double t0 = pa_mono_s();
    k->n_load = o->load_keys;
    k->n_again = AGAIN_KEYS;
    k->n_invalid = INVALID_KEYS;
    k->n_memory = o->records;
    if (!(k->load = alloc_keys(k->n_load)) || !(k->again = alloc_keys(k->n_again)) ||
        !(k->invalid = alloc_keys(k->n_invalid)) || !(k->memory = alloc_keys(k->n_memory)))
        return -1;
    if (create_group(w, G_LOAD, tune_load) != 0 || create_group(w, G_MEMORY, tune_memory) != 0)
        return -1;
    /* Serials: again 1..1000, invalid 2001..3000, fresh keys from 10000. */
    if (make_keys(w, G_LOAD, 1, k->n_again, 0, k->again) != 0 ||
        make_keys(w, G_LOAD, 2001, k->n_invalid, 1, k->invalid) != 0 ||
        make_keys(w, G_LOAD, 10000, k->n_load, 0, k->load) != 0 ||
        make_keys(w, G_MEMORY, 100000, k->n_memory, 0, k->memory) != 0)
        return -1;
    printf(
        "keys: %zu fresh (x%d machines), %zu re-activating, %zu not genuine, %zu for the "
        "memory figure; made in %.1f s\n",
        k->n_load, PLACES_PER_KEY, k->n_again, k->n_invalid, k->n_memory, pa_mono_s() - t0);
    return 0;
}

/* --target mode: keys from a file; the not-genuine ones are derived from
 * them (first security value flipped, checksum recomputed: no secret). */
static int keys_from_file(const options *o, key_set *k) {
    FILE *f = fopen(o->keys_file, "r");
    if (!f) return die("cannot open --keys file");
    size_t cap = 1024, n = 0;
    key_text *all = alloc_keys(cap);
    char line[128];
    while (all && fgets(line, sizeof line, f)) {
        pk_fields fl;
        line[strcspn(line, "\r\n,")] = '\0';
        if (pk_decode(line, strlen(line), &fl, NULL) != PK_OK) continue;
        if (n == cap && !(all = realloc(all, (cap *= 2) * sizeof *all))) break;
        pk_encode(&fl, all[n++]);
    }
    fclose(f);
    if (!all || n < 2 * AGAIN_KEYS) return die("--keys needs at least 2000 genuine keys");
    k->again = all;
    k->n_again = AGAIN_KEYS;
    k->load = all + AGAIN_KEYS;
    k->n_load = n - AGAIN_KEYS;
    k->invalid = alloc_keys(INVALID_KEYS);
    k->n_invalid = INVALID_KEYS;
    for (size_t i = 0; k->invalid && i < INVALID_KEYS; i++) {
        pk_fields fl;
        pk_decode(all[i], PK_TEXT_LEN, &fl, NULL);
        fl.security_first ^= 1;
        pk_encode(&fl, k->invalid[i]);
    }
    return k->invalid ? 0 : -1;
}

/* --- the processes -------------------------------------------------------------- */

/* INFO needs @dangerous, which no production user of Redis A has: give this
 * private instance one extra measuring user before anything is stored. */
static int add_measuring_user(world *w) {
    char acl[512];
    snprintf(acl, sizeof acl, "%s/users.acl", w->a.dir);
    if (redis_fixture_pause(&w->a) != 0) return die("cannot stop Redis A to add a user");
    FILE *f = fopen(acl, "a");
    if (!f) return die("cannot open Redis A's users.acl");
    fprintf(f, "user bench on >%s ~* &* +@all\n", BENCH_USER_PW);
    fclose(f);
    if (redis_fixture_resume(&w->a) != 0) return die("cannot restart Redis A");
    w->admin = redis_fixture_connect(&w->a, "bench", BENCH_USER_PW);
    return w->admin ? 0 : die("measuring user refused");
}

static int make_files(world *w) {
    snprintf(w->signing_key, sizeof w->signing_key, "%s/signing.pem", w->dir);
    snprintf(w->log_path, sizeof w->log_path, "%s/activation-server.log", w->dir);
    snprintf(w->echo_log, sizeof w->echo_log, "%s/echo.log", w->dir);
    if (fixture_make_kek(w->dir, "activation.kek", w->kek_a, sizeof w->kek_a, w->kek_a_bytes) ||
        fixture_make_kek(w->dir, "audit.kek", w->kek_b, sizeof w->kek_b, w->kek_b_bytes))
        return -1;
    char *gen[] = {"/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out", w->signing_key,
                   NULL};
    return fixture_run(gen, NULL, NULL) == 0 ? 0 : die("openssl genpkey failed");
}

/* --audit: certificates and the audit server on Redis B. */
static int start_audit_server(world *w) {
    char url[256], listen[64], metrics[64], cert[340], key[340], ca[340];
    snprintf(w->certs, sizeof w->certs, "%s/certs", w->dir);
    if (fixture_make_certs(w->certs) != 0) return die("scripts/make-certs.sh failed");
    int port = fixture_free_port(), mport;
    do mport = fixture_free_port(); while (mport == port);
    redis_fixture_url(&w->b, "audit", url, sizeof url);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(metrics, sizeof metrics, "127.0.0.1:%d", mport);
    snprintf(w->audit_target, sizeof w->audit_target, "127.0.0.1:%d", port);
    snprintf(w->audit_log, sizeof w->audit_log, "%s/audit-server.log", w->dir);
    snprintf(cert, sizeof cert, "%s/audit-server.pem", w->certs);
    snprintf(key, sizeof key, "%s/audit-server.key", w->certs);
    snprintf(ca, sizeof ca, "%s/ca.pem", w->certs);
    char *argv[] = {(char *)fixture_bin("audit-server/audit-server"), "--listen", listen,
                    "--redis-url", url, "--kek", w->kek_b, "--tls-cert", cert, "--tls-key", key,
                    "--tls-client-ca", ca, "--metrics-listen", metrics, "--log-level", "warn", NULL};
    w->audit = fixture_spawn(argv, w->audit_log, port, 15000);
    return w->audit < 0 ? die("audit-server did not start") : 0;
}

/* The activation server of `argv` again, on ports of its own: `listen` and
 * `metrics` are the buffers argv points at for those options. Its address,
 * log (DIR/NAME.log) and metrics port go to the last three. */
static pid_t spawn_again(const world *w, const char **argv, char listen[64], char metrics[64], const char *name,
                         char target[64], char log[300], int *metrics_port) {
    int port = fixture_free_port();
    *metrics_port = fixture_free_port();
    snprintf(listen, 64, "127.0.0.1:%d", port);
    snprintf(metrics, 64, "127.0.0.1:%d", *metrics_port);
    snprintf(target, 64, "%s", listen);
    snprintf(log, 300, "%s/%s.log", w->dir, name);
    return fixture_spawn((char *const *)argv, log, port, 15000);
}

static int start_servers(world *w, const options *o) {
    char url[256], listen[64], metrics[64], workers[16], echo_workers[16], echo_listen[64];
    int port = fixture_free_port(), echo_port;
    do w->metrics_port = fixture_free_port(); while (w->metrics_port == port);
    do echo_port = fixture_free_port(); while (echo_port == port || echo_port == w->metrics_port);
    redis_fixture_url(&w->a, "activation", url, sizeof url);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(metrics, sizeof metrics, "127.0.0.1:%d", w->metrics_port);
    snprintf(workers, sizeof workers, "%d", o->workers);
    snprintf(echo_workers, sizeof echo_workers, "%d", o->echo_workers);
    snprintf(w->target, sizeof w->target, "127.0.0.1:%d", port);
    snprintf(w->metrics_host, sizeof w->metrics_host, "127.0.0.1");
    if (o->audit && start_audit_server(w) != 0) return -1;   /* before fixture_bin below */
    /* Rate limits stay on (their cost is part of every call) but so high
     * that one loopback client never meets them: the mix's keys that are not
     * genuine would otherwise spend the group's failure bucket. No refusal
     * hold: it leaves the server's work alone but would keep the mix's
     * refused calls in the generator's slots (the flood run measures it on
     * a server of its own). argv has room for these 27, the transport's 3,
     * the audit link's 10, the hold's 2, --batch-script off (the second
     * server of --ab-batch-script) and NULL. */
    const char *argv[64] = {fixture_bin("activation-server/activation-server"),
                            "--listen",
                            listen,
                            "--redis-url",
                            url,
                            "--kek",
                            w->kek_a,
                            "--signing-key",
                            w->signing_key,
                            "--metrics-listen",
                            metrics,
                            "--workers",
                            workers,
                            "--log-level",
                            o->log_level,
                            "--rate-address-per-s",
                            "1e9",
                            "--rate-address-burst",
                            "1e9",
                            "--rate-group-per-s",
                            "1e9",
                            "--rate-group-burst",
                            "1e9",
                            "--rate-group-failures-per-s",
                            "1e9",
                            "--rate-group-failures-burst",
                            "1e9"};
    int n = 27;
    /* Plain text, like the echo ceiling; and no connection cap: up to 64
     * channels and the bench's own come from one address. */
    const char *transport[] = {"--insecure-plaintext", "--max-connections-per-address", "10000"};
    for (size_t i = 0; i < sizeof transport / sizeof *transport; i++) argv[n++] = transport[i];
    char ca[340], cert[340], key[340];
    if (o->audit) {
        snprintf(ca, sizeof ca, "%s/ca.pem", w->certs);
        snprintf(cert, sizeof cert, "%s/activation-client.pem", w->certs);
        snprintf(key, sizeof key, "%s/activation-client.key", w->certs);
        const char *audit[] = {"--audit-target", w->audit_target, "--audit-ca", ca, "--audit-cert",
                               cert, "--audit-key", key, "--threat-address-requests", "4000000000"};
        for (size_t i = 0; i < sizeof audit / sizeof *audit; i++) argv[n++] = audit[i];
    }
    int hold = n;
    argv[n++] = "--refusal-hold-ms";
    argv[n++] = "0";
    argv[n] = NULL;
    w->server = fixture_spawn((char *const *)argv, w->log_path, port, 15000);
    if (w->server < 0) return die("activation-server did not start");
    if (o->flood_addresses > 0) { /* the same server with its default refusal hold */
        argv[hold] = NULL;
        w->server_hold = spawn_again(w, argv, listen, metrics, "activation-hold", w->target_hold, w->log_hold,
                                     &w->metrics_port_hold);
        argv[hold] = "--refusal-hold-ms";
        if (w->server_hold < 0) return die("the second activation-server (refusal hold) did not start");
    }
    if (o->ab_pairs > 0) { /* the same server again, its scripts one call each */
        argv[n++] = "--batch-script";
        argv[n++] = "off";
        argv[n] = NULL;
        w->server_off =
            spawn_again(w, argv, listen, metrics, "activation-off", w->target_off, w->log_off, &w->metrics_port_off);
        if (w->server_off < 0) return die("the second activation-server (--batch-script off) did not start");
    }
    if (o->audit || o->oracle) return 0; /* no echo ceiling in these modes */
    snprintf(echo_listen, sizeof echo_listen, "127.0.0.1:%d", echo_port);
    snprintf(w->echo_target, sizeof w->echo_target, "%s", echo_listen);
    const char *eargv[] = {fixture_bin("bench/echo_bench"), "--serve", echo_listen,
                           "--server-workers", echo_workers, NULL};
    w->echo = fixture_spawn((char *const *)eargv, w->echo_log, echo_port, 15000);
    return w->echo < 0 ? die("echo_bench --serve did not start") : 0;
}

static int world_start(world *w, const options *o) {
    memset(w, 0, sizeof *w);
    w->server = w->echo = w->audit = w->throttled = w->server_off = w->server_hold = -1;
    if (fixture_tmpdir(w->dir, sizeof w->dir, "activation-load") != 0) return -1;
    if (redis_fixture_start(&w->a, FIXTURE_STORE_ACTIVATION) != 0 ||
        redis_fixture_start(&w->b, FIXTURE_STORE_AUDIT) != 0)
        return die("redis-server did not start");
    if (add_measuring_user(w) != 0 || make_files(w) != 0) return -1;
    w->ks_a = redis_fixture_connect(&w->a, "keystore", FIXTURE_PW_KEYSTORE);
    w->ks_b = redis_fixture_connect(&w->b, "keystore", FIXTURE_PW_KEYSTORE);
    if (!w->ks_a || !w->ks_b) return die("keystore user refused");
    return start_servers(w, o);
}

static void world_stop(world *w) {
    if (w->server > 0) fixture_stop(w->server, SIGTERM, 20000);
    if (w->echo > 0) fixture_stop(w->echo, SIGTERM, 20000);
    if (w->audit > 0) fixture_stop(w->audit, SIGTERM, 20000);
    if (w->throttled > 0) fixture_stop(w->throttled, SIGTERM, 20000);
    if (w->server_off > 0) fixture_stop(w->server_off, SIGTERM, 20000);
    if (w->server_hold > 0) fixture_stop(w->server_hold, SIGTERM, 20000);
    if (w->ks_a) redisFree(w->ks_a);
    if (w->ks_b) redisFree(w->ks_b);
    if (w->admin) redisFree(w->admin);
    if (w->a.pid > 0) redis_fixture_stop(&w->a);
    if (w->b.pid > 0) redis_fixture_stop(&w->b);
    if (w->dir[0]) fixture_rmtree(w->dir);
}

/* --- the measurements ------------------------------------------------------------ */

static loadgen_config config_for(const options *o, const char *target, const char *const *methods,
                                 const run_spec *r) {
    return (loadgen_config){.target = target, .methods = methods, .n_methods = 1,
                            .threads = r->threads, .channels = r->channels,
                            .concurrency = r->concurrency, .duration_s = o->duration,
                            .warmup_s = o->warmup, .class_names = class_names};
}

/* Gives every re-activating key its place (machine MACHINE_AGAIN + i). */
static int prefill_again(const char *target, key_set *k) {
    rpc_channel *ch = rpc_channel_new(target, NULL);
    rpc_client_method *m = ch ? rpc_channel_method(ch, PA_RPC_ACTIVATE) : NULL;
    int bad = 0;
    for (size_t i = 0; m && i < k->n_again; i++) {
        uint8_t id[32], buf[256];
        machine_id(id, MACHINE_AGAIN + i);
        Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
        rq.product_key = k->again[i];
        rq.machine_id = (ProtobufCBinaryData){.len = sizeof id, .data = id};
        size_t len = activation__v1__activate_request__pack(&rq, buf);
        rpc_result res;
        if (rpc_call(ch, m, buf, len, 5000, &res) != GRPC_STATUS_OK && bad++ == 0)
            fprintf(stderr, "activation_load: prefill: %s\n", res.message);
        rpc_result_clear(&res);
    }
    rpc_channel_free(ch);
    return m && bad == 0 ? 0 : die("could not give the re-activating keys their places");
}

/* Warms up with an unmeasured run of its own, then measures with no
 * warm-up inside, so the CPU counters cover exactly the measured calls. */
static int run_measured(const options *o, const world *w, const loadgen_config *c,
                        loadgen_request_fn make_request, void *user, loadgen_result *res,
                        snapshot *before, snapshot *after) {
    loadgen_config warm = *c, measured = *c;
    warm.duration_s = o->warmup;
    warm.warmup_s = 0;
    measured.warmup_s = 0;
    if (o->warmup > 0 && loadgen_run(&warm, make_request, user, res) != 0) return -1;
    take_snapshot(w, before);
    if (loadgen_run(&measured, make_request, user, res) != 0) return -1;
    take_snapshot(w, after);
    return 0;
}

typedef struct run_result {
    double activate, echo;        /* calls/s */
    double server_cpu_us;         /* activation server + Redis A CPU per granted Activate */
    double gen_cpu_us, gen_echo_cpu_us; /* the load generator's threads' CPU per call, Activate and echo */
    char batch[160];                    /* "batch sizes: ..." of this run */
} run_result;

/* What one flood run measured: genuine calls/s without and with the flood, and the flood's. */
typedef struct flood_figures {
    double alone, with, rate;
} flood_figures;

/* Every figure of a run, printed together at its end; -1: not measured. */
typedef struct summary {
    double half_p99_ms, low_p99_ms, low_p50_ms;
    double half_echo_p99_ms; /* the bare echo's p99 at the same offered rate */
    double always_ratio;     /* Activate/echo with appendfsync always */
    flood_figures flood[2];  /* [0] the server without the refusal hold, [1] with it */
    int flood_addresses;
    char half_batch[160], low_batch[160];
} summary;

/* The generator's own cost per call: its threads' CPU over the calls they made. */
static double gen_cpu_us(const loadgen_result *res) {
    return res->all_calls ? res->thread_cpu_s / (double)res->all_calls * 1e6 : 0;
}

/* Why the generator's cost per call differs between runs: how many calls
 * each wake-up of its threads completed, how large the responses were, and
 * how often its threads blocked or were preempted. */
static void print_gen_detail(const char *label, const loadgen_result *res) {
    if (res->all_calls == 0) return;
    double calls = (double)res->all_calls;
    printf(
        "  load generator, %s: %.1f us CPU per call, %.2f calls per wake-up, %.0f response bytes per call, "
        "%.2f blocking / %.2f preempted switches per call\n",
        label, gen_cpu_us(res), res->waits ? calls / (double)res->waits : 0, (double)res->recv_bytes / calls,
        (double)res->csw_voluntary / calls, (double)res->csw_involuntary / calls);
}

static void measure_setting(const options *o, const world *w, key_set *k, const run_spec *r,
                            run_result *out) {
    static const char *const act_methods[] = {PA_RPC_ACTIVATE}, *const echo_methods[] = {ECHO_PATH};
    loadgen_result res;
    printf("\n-- threads %d, channels %d, concurrency %d\n", r->threads, r->channels,
           r->concurrency);
    out->echo = 0;
    const char *echo_target = w->echo > 0 ? w->echo_target : o->echo_target;
    if (echo_target) {
        loadgen_config ec = config_for(o, echo_target, echo_methods, r);
        ec.class_names = NULL;
        snapshot e0, e1;
        if (run_measured(o, w, &ec, build_echo, k, &res, &e0, &e1) == 0) {
            loadgen_print(stdout, "echo    ", &ec, &res);
            print_echo_cpu(w, &e0, &e1, res.total.calls);
            out->echo = res.calls_per_s;
            out->gen_echo_cpu_us = gen_cpu_us(&res);
            print_gen_detail("echo", &res);
        }
    }
    loadgen_config ac = config_for(o, w->target, act_methods, r);
    snapshot before, after;
    if (run_measured(o, w, &ac, build, k, &res, &before, &after) != 0) {
        printf("activate: failed: %s\n", res.first_error);
        out->activate = 0;
        return;
    }
    loadgen_print(stdout, "activate", &ac, &res);
    out->activate = res.calls_per_s;
    if (out->echo > 0) printf("  Activate/echo at this setting: %.2f\n", out->activate / out->echo);
    print_breakdown(w, &before, &after, res.total.calls);
    print_server_tail(&before, &after);
    out->server_cpu_us = server_cpu_per_call_us(&before, &after, res.total.status[GRPC_STATUS_OK]);
    out->gen_cpu_us = gen_cpu_us(&res);
    print_gen_detail("Activate", &res);
    format_batch_sizes(&before, &after, out->batch, sizeof out->batch);
    if (w->server > 0)
        printf("  server-side CPU per granted Activate: %.1f us (target <= 45 us)\n", out->server_cpu_us);
    printf("  load generator CPU per call (its threads): Activate %.1f us, echo %.1f us\n  %s\n", out->gen_cpu_us,
           out->gen_echo_cpu_us, out->batch);
}

/* What one side of the --batch-script A/B measured, summed over its runs. */
typedef struct ab_side {
    double rate, scripts, script_us, calls, redis_cpu, server_cpu; /* calls/s; EVALSHAs, their usec; calls; CPU s */
    int runs;
} ab_side;

/* The world as seen through one of its second servers (spawn_again). */
static void world_via(const world *w, pid_t server, int metrics_port, const char *target, world *v) {
    *v = *w;
    v->server = server;
    v->metrics_port = metrics_port;
    snprintf(v->target, sizeof v->target, "%s", target);
}

/* One run at setting r on one side; adds its figures to *side. */
static void ab_run(const options *o, const world *w, key_set *k, const run_spec *r, bool off, double echo,
                   ab_side *side) {
    static const char *const methods[] = {PA_RPC_ACTIVATE};
    world v;
    if (off) world_via(w, w->server_off, w->metrics_port_off, w->target_off, &v);
    else v = *w;
    loadgen_config c = config_for(o, v.target, methods, r);
    loadgen_result res;
    snapshot a, b;
    if (run_measured(o, &v, &c, build, k, &res, &a, &b) != 0 || res.total.calls == 0) {
        printf("  batch-script %-3s: failed: %s\n", off ? "off" : "on", res.first_error);
        return;
    }
    double calls = (double)res.total.calls, scripts = b.evalsha_calls - a.evalsha_calls;
    double usec = b.evalsha_usec - a.evalsha_usec;
    char batch[160];
    format_batch_sizes(&a, &b, batch, sizeof batch);
    printf(
        "  batch-script %-3s: %6.0f Activate/s, ratio to echo %.2f; %.2f EVALSHA per call, %.1f us each and "
        "%.1f us per call inside Redis; CPU per call: redis-server %.1f us, activation-server %.1f us; %s\n",
        off ? "off" : "on", res.calls_per_s, echo > 0 ? res.calls_per_s / echo : 0, scripts / calls,
        scripts > 0 ? usec / scripts : 0, usec / calls, (b.cpu_redis - a.cpu_redis) / calls * 1e6,
        (b.cpu_server - a.cpu_server) / calls * 1e6, batch);
    side->rate += res.calls_per_s;
    side->scripts += scripts;
    side->script_us += usec;
    side->calls += calls;
    side->redis_cpu += b.cpu_redis - a.cpu_redis;
    side->server_cpu += b.cpu_server - a.cpu_server;
    side->runs++;
}

/* --ab-batch-script: the best setting on both servers, alternated in pairs
 * (the machine's load drifts; a pair shares it), then each side's means. */
static void measure_batch_script_ab(const options *o, const world *w, key_set *k, const run_spec *r, double echo) {
    printf(
        "\n== --batch-script on vs off at the best setting (threads %d, channels %d, concurrency %d), "
        "%d alternated pairs; ratios to the best setting's echo (%.0f/s)\n",
        r->threads, r->channels, r->concurrency, o->ab_pairs, echo);
    ab_side side[2] = {{0}};
    for (int p = 0; p < o->ab_pairs; p++)
        for (int off = 0; off < 2; off++) ab_run(o, w, k, r, off == 1, echo, &side[off]);
    for (int off = 0; off < 2; off++) {
        const ab_side *s = &side[off];
        if (s->runs == 0 || s->calls <= 0) continue;
        printf(
            "  mean batch-script %-3s: %6.0f Activate/s, ratio to echo %.2f; %.1f us per EVALSHA, %.1f us per "
            "call inside Redis; CPU per call: redis-server %.1f us, activation-server %.1f us\n",
            off ? "off" : "on", s->rate / s->runs, echo > 0 ? s->rate / s->runs / echo : 0,
            s->scripts > 0 ? s->script_us / s->scripts : 0, s->script_us / s->calls, s->redis_cpu / s->calls * 1e6,
            s->server_cpu / s->calls * 1e6);
    }
    if (side[0].runs && side[1].runs && side[1].rate > 0)
        printf("  Activate/s on / off: %.2f\n", (side[0].rate / side[0].runs) / (side[1].rate / side[1].runs));
}

static void measure_half_rate(const options *o, const world *w, key_set *k, const run_spec *r, double peak,
                              summary *sum) {
    static const char *const methods[] = {PA_RPC_ACTIVATE}, *const echo_methods[] = {ECHO_PATH};
    loadgen_config c = config_for(o, w->target, methods, r);
    c.rate = peak / 2;
    if (c.concurrency < 256) c.concurrency = 256;   /* open loop: slots never the limit */
    c.duration_s = o->duration * 2;
    loadgen_result res;
    const char *echo_target = w->echo > 0 ? w->echo_target : o->echo_target;
    if (echo_target) {   /* the runtime's own tail at the same offered rate */
        loadgen_config ec = c;
        ec.target = echo_target;
        ec.methods = echo_methods;
        ec.class_names = NULL;
        if (loadgen_run(&ec, build_echo, k, &res) == 0) {
            printf("\n-- half of peak, echo at the same rate: ");
            loadgen_print(stdout, "echo", &ec, &res);
            print_gen_detail("echo", &res);
            sum->half_echo_p99_ms = res.total.p99_us / 1000;
        }
    }
    printf("\n-- half of peak: %.0f calls/s offered (open loop), threads %d, channels %d\n",
           c.rate, c.threads, c.channels);
    snapshot before, after;
    take_snapshot(w, &before);
    if (loadgen_run(&c, build, k, &res) != 0) {
        printf("half rate: failed: %s\n", res.first_error);
        return;
    }
    take_snapshot(w, &after);
    loadgen_print(stdout, "activate", &c, &res);
    print_gen_detail("Activate", &res);
    print_server_tail(&before, &after);
    printf("  p99 at half of peak: %.2f ms (target <= 2 ms); p99.9 %.2f ms\n",
           res.total.p99_us / 1000, res.total.p999_us / 1000);
    format_batch_sizes(&before, &after, sum->half_batch, sizeof sum->half_batch);
    printf("  %s\n", sum->half_batch);
    sum->half_p99_ms = res.total.p99_us / 1000;
}

/* One client, one call in flight: the latency a lone installer sees (no
 * batch ever has company here). */
static void measure_low_load(const options *o, const world *w, key_set *k, summary *sum) {
    static const char *const methods[] = {PA_RPC_ACTIVATE};
    const run_spec one = {1, 1, 1};
    loadgen_config c = config_for(o, w->target, methods, &one);
    loadgen_result res;
    snapshot before, after;
    printf("\n-- low load: 1 client, 1 call in flight\n");
    if (run_measured(o, w, &c, build, k, &res, &before, &after) != 0) {
        printf("low load: failed: %s\n", res.first_error);
        return;
    }
    loadgen_print(stdout, "activate", &c, &res);
    format_batch_sizes(&before, &after, sum->low_batch, sizeof sum->low_batch);
    sum->low_p99_ms = res.total.p99_us / 1000;
    sum->low_p50_ms = res.total.p50_us / 1000;
    printf("  p99 %.2f ms, p50 %.2f ms; %s\n", sum->low_p99_ms, sum->low_p50_ms, sum->low_batch);
}

/* --- Redis A's durability ------------------------------------------------------ */

/* CONFIG SET name value through the measuring user; 0 when Redis said OK. */
static int redis_config_set(const world *w, const char *name, const char *value) {
    redisReply *r = w->admin ? redisCommand(w->admin, "CONFIG SET %s %s", name, value) : NULL;
    int rc = r && r->type == REDIS_REPLY_STATUS ? 0 : -1;
    if (r) freeReplyObject(r);
    return rc;
}

static void redis_config_get(const world *w, const char *name, char *dst, size_t cap) {
    redisReply *r = w->admin ? redisCommand(w->admin, "CONFIG GET %s", name) : NULL;
    snprintf(dst, cap, "?");
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->str)
        snprintf(dst, cap, "%s", r->element[1]->str);
    if (r) freeReplyObject(r);
}

/* The measured runs use the deployed durability: AOF on, fsync every
 * second. The rendered redis.conf says so already; setting it again here
 * keeps the figures' meaning independent of that file. */
static int set_deployed_aof(const world *w) {
    char aof[16], fsync[16];
    if (redis_config_set(w, "appendonly", "yes") != 0 || redis_config_set(w, "appendfsync", "everysec") != 0)
        return die("cannot set Redis A's AOF (appendonly yes, appendfsync everysec)");
    redis_config_get(w, "appendonly", aof, sizeof aof);
    redis_config_get(w, "appendfsync", fsync, sizeof fsync);
    printf("Redis A: appendonly %s, appendfsync %s (as deployed)\n", aof, fsync);
    return 0;
}

/* The best setting again with every write fsynced before Redis answers. */
static void measure_fsync_always(const options *o, const world *w, key_set *k, const run_spec *r, double echo,
                                 summary *sum) {
    static const char *const methods[] = {PA_RPC_ACTIVATE};
    if (!w->admin || redis_config_set(w, "appendfsync", "always") != 0) {
        printf("\n-- appendfsync always: cannot set it on Redis A; skipped\n");
        return;
    }
    printf("\n-- Redis A with appendfsync always, threads %d, channels %d, concurrency %d\n", r->threads, r->channels,
           r->concurrency);
    loadgen_config c = config_for(o, w->target, methods, r);
    loadgen_result res;
    snapshot before, after;
    if (run_measured(o, w, &c, build, k, &res, &before, &after) == 0) {
        loadgen_print(stdout, "activate", &c, &res);
        sum->always_ratio = echo > 0 ? res.calls_per_s / echo : -1;
        printf("  Activate/echo (echo of the best setting): %.2f; server-side CPU per granted Activate %.1f us\n",
               sum->always_ratio, server_cpu_per_call_us(&before, &after, res.total.status[GRPC_STATUS_OK]));
    } else {
        printf("  failed: %s\n", res.first_error);
    }
    if (redis_config_set(w, "appendfsync", "everysec") != 0) printf("  cannot set appendfsync back to everysec\n");
}

/* --- a flood of keys that are not genuine, from many addresses --------------------- */

#define FLOOD_MAX_ADDRESSES 64

typedef struct flood {
    loadgen_config cfg; /* the flood's load: bound channels, full speed */
    key_set keys;       /* only the not-genuine keys */
    loadgen_result res;
    int rc;
} flood;

static void *flood_main(void *arg) {
    flood *f = arg;
    f->rc = loadgen_run(&f->cfg, build, &f->keys, &f->res);
    return NULL;
}

/* Genuine callers at `r` (from 127.0.0.1, the usual mix without its keys
 * that are not genuine) alone, then while a flood of keys that are not
 * genuine comes from `n` other loopback addresses as fast as the server
 * answers. The server started here has its per-address limits out of reach,
 * so every flood call is decoded and its MAC checked: the most a flood
 * spread over enough addresses to stay under those limits can cost. */
static void measure_flood(const options *o, const world *w, const key_set *k, const run_spec *r, const char *server,
                          flood_figures *out) {
    static const char *const methods[] = {PA_RPC_ACTIVATE};
    static char addr[FLOOD_MAX_ADDRESSES][16];
    static const char *srcs[FLOOD_MAX_ADDRESSES];
    int n = o->flood_addresses;
    for (int i = 0; i < n; i++) {
        snprintf(addr[i], sizeof addr[i], "127.0.%d.%d", 1 + i / 250, 2 + i % 250);
        srcs[i] = addr[i];
    }
    key_set genuine = {.load = k->load,
                       .n_load = k->n_load,
                       .again = k->again,
                       .n_again = k->n_again,
                       .mix = {o->mix[0] + o->mix[2], o->mix[1], 0},
                       .only = -1};
    atomic_store(&genuine.next_place, atomic_load(&((key_set *)k)->next_place));
    flood f = {.keys = {.invalid = k->invalid, .n_invalid = k->n_invalid, .only = CLASS_INVALID}};
    f.cfg = (loadgen_config){.target = w->target,
                             .methods = methods,
                             .n_methods = 1,
                             .threads = 1,
                             .channels = n,
                             .concurrency = n * 2 > 64 ? n * 2 : 64,
                             .duration_s = o->duration + 2 * o->warmup + 1,
                             .sources = srcs,
                             .n_sources = n};
    loadgen_config c = config_for(o, w->target, methods, r);
    loadgen_result alone, flooded;
    snapshot s0, s1;
    printf(
        "\n-- a flood of keys that are not genuine from %d addresses (127.0.x.y), genuine callers at "
        "threads %d, channels %d, concurrency %d; %s\n",
        n, r->threads, r->channels, r->concurrency, server);
    if (run_measured(o, w, &c, build, &genuine, &alone, &s0, &s1) != 0) {
        printf("  failed: %s\n", alone.first_error);
        return;
    }
    loadgen_print(stdout, "genuine alone", &c, &alone);
    pthread_t th;
    if (pthread_create(&th, NULL, flood_main, &f) != 0) {
        printf("  cannot start the flood\n");
        return;
    }
    usleep((useconds_t)(o->warmup * 1e6) + 300000);
    int rc = run_measured(o, w, &c, build, &genuine, &flooded, &s0, &s1);
    pthread_join(th, NULL);
    atomic_store(&((key_set *)k)->next_place, atomic_load(&genuine.next_place));
    if (rc != 0 || f.rc != 0) {
        printf("  failed: %s\n", rc != 0 ? flooded.first_error : f.res.first_error);
        return;
    }
    loadgen_print(stdout, "genuine flooded", &c, &flooded);
    loadgen_print(stdout, "flood", &f.cfg, &f.res);
    *out = (flood_figures){.alone = alone.calls_per_s, .with = flooded.calls_per_s, .rate = f.res.calls_per_s};
}

/* The flood against the measured server (no refusal hold), then against
 * the same server with the hold it has by default, as deployed. */
static void measure_floods(const options *o, const world *w, const key_set *k, const run_spec *r, summary *sum) {
    sum->flood_addresses = o->flood_addresses;
    measure_flood(o, w, k, r, w->server_hold > 0 ? "server without the refusal hold" : "the server given",
                  &sum->flood[0]);
    if (w->server_hold <= 0) return;
    world v;
    world_via(w, w->server_hold, w->metrics_port_hold, w->target_hold, &v);
    measure_flood(o, &v, k, r, "server with its default refusal hold (--refusal-hold-ms)", &sum->flood[1]);
}

static void print_summary(const world *w, const run_result *best, const summary *s) {
    printf("\n== summary (indicative: client, servers and Redis share this machine's cores)\n");
    if (best->echo > 0) printf("ratio Activate/echo: %.2f (target >= 0.45)\n", best->activate / best->echo);
    if (s->always_ratio >= 0) printf("ratio Activate/echo with appendfsync always: %.2f\n", s->always_ratio);
    if (w->server > 0) printf("server-side CPU per granted Activate: %.1f us (target <= 45 us)\n", best->server_cpu_us);
    if (s->half_p99_ms >= 0) {
        printf("p99 at half of peak: %.2f ms (target <= 2 ms)", s->half_p99_ms);
        if (s->half_echo_p99_ms >= 0) printf("; the bare echo at that offered rate: %.2f ms", s->half_echo_p99_ms);
        printf("\n");
    }
    if (s->low_p99_ms >= 0)
        printf("p99 at low load (1 client, 1 call in flight): %.2f ms (p50 %.2f ms)\n", s->low_p99_ms, s->low_p50_ms);
    printf("%s (best setting)\n", best->batch);
    if (s->half_batch[0]) printf("%s (half of peak)\n", s->half_batch);
    if (s->low_batch[0]) printf("%s (low load)\n", s->low_batch);
    static const char *const hold[2] = {"without the refusal hold", "with the default refusal hold"};
    for (int i = 0; i < 2; i++)
        if (s->flood[i].alone > 0)
            printf(
                "genuine Activate under a flood from %d addresses, %s: %.0f calls/s alone, %.0f calls/s flooded "
                "(flood %.0f calls/s): cost %.1f %% (target <= 30 %%)\n",
                s->flood_addresses, hold[i], s->flood[i].alone, s->flood[i].with, s->flood[i].rate,
                (1 - s->flood[i].with / s->flood[i].alone) * 100);
    printf("load generator CPU per call (its threads): Activate %.1f us, echo %.1f us\n", best->gen_cpu_us,
           best->gen_echo_cpu_us);
}

static bool info_memory(redisContext *c, long long *used, long long *dataset) {
    redisReply *r = redisCommand(c, "INFO memory");
    if (!r || r->type != REDIS_REPLY_STRING) {
        if (r) freeReplyObject(r);
        return false;
    }
    const char *u = strstr(r->str, "used_memory:"), *d = strstr(r->str, "used_memory_dataset:");
    *used = u ? atoll(u + 12) : 0;
    *dataset = d ? atoll(d + 20) : 0;
    freeReplyObject(r);
    return u != NULL;
}

/* The group's machine log grows with its activations up to
 * PA_MLOG_MAXLEN entries and then stays: a cost per group, not per
 * record, so the memory figures are also printed without it. */
static long long mlog_bytes(redisContext *c, uint32_t group) {
    redisReply *r = redisCommand(c, "MEMORY USAGE " PA_RKEY_GROUP_MLOG_FMT " SAMPLES 0", group);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    if (r) freeReplyObject(r);
    return n;
}

static void print_without_mlog(long long used, long long mlog, size_t records) {
    printf(
        "    of which the group's machine log %lld bytes (at most %s entries a group); without it %.1f bytes "
        "per record\n",
        mlog, PA_MLOG_MAXLEN, (double)(used - mlog) / (double)records);
}

static void tune_memory_unlimited(group_record *r) { r->policy.max_machines = 0; }
static void tune_memory_leased(group_record *r) {
    r->policy.max_machines = 3;
    r->policy.lease_seconds = 30 * 86400;
}

/* Records with what retention adds (policy.lua "Retention"): `n` keys of a
 * new group, `machines` activations each, one call at a time. */
static void measure_memory_kind(const world *w, const char *label, uint32_t group, void (*tune)(group_record *),
                                size_t n, unsigned machines) {
    long long used0, data0, used1, data1;
    key_text *keys = alloc_keys(n);
    if (create_group((world *)w, group, tune) != 0 || make_keys((world *)w, group, 1, n, 0, keys) != 0 ||
        !info_memory(w->admin, &used0, &data0)) {
        free(keys);
        return;
    }
    rpc_channel *ch = rpc_channel_new(w->target, NULL);
    rpc_client_method *m = ch ? rpc_channel_method(ch, PA_RPC_ACTIVATE) : NULL;
    size_t granted = 0;
    for (size_t i = 0; m && i < n; i++) {
        for (unsigned j = 0; j < machines; j++) {
            uint8_t id[32], buf[256];
            machine_id(id, MACHINE_MEMORY + ((uint64_t)group << 24) + i * machines + j);
            Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
            rq.product_key = keys[i];
            rq.machine_id = (ProtobufCBinaryData){.len = sizeof id, .data = id};
            size_t len = activation__v1__activate_request__pack(&rq, buf);
            rpc_result res;
            if (rpc_call(ch, m, buf, len, 5000, &res) == GRPC_STATUS_OK) granted++;
            rpc_result_clear(&res);
        }
    }
    rpc_channel_free(ch);
    sleep(2);
    if (info_memory(w->admin, &used1, &data1) && n > 0)
        printf(
            "  %s: %zu keys x %u machines (%zu granted): used_memory %+lld bytes = %.1f bytes per record, "
            "%.1f per place\n",
            label, n, machines, granted, used1 - used0, (double)(used1 - used0) / (double)n,
            (double)(used1 - used0) / (double)(n * machines));
    if (n > 0) print_without_mlog(used1 - used0, mlog_bytes(w->admin, group), n);
    pk_fields f;
    pk_decode(keys[0], PK_TEXT_LEN, &f, NULL);
    redisReply *u = redisCommand(w->admin, "MEMORY USAGE " PA_RKEY_RECORD_FMT " SAMPLES 0", f.group, f.serial);
    redisReply *x = redisCommand(w->admin, "MEMORY USAGE " PA_RKEY_RECORD_INDEX_FMT " SAMPLES 0", f.group, f.serial);
    redisReply *t = redisCommand(w->admin, "TTL " PA_RKEY_RECORD_FMT, f.group, f.serial);
    if (u && x && t && u->type == REDIS_REPLY_INTEGER && t->type == REDIS_REPLY_INTEGER)
        printf("    one record: MEMORY USAGE %lld bytes, its index %s%lld bytes, TTL %lld s\n", u->integer,
               x->type == REDIS_REPLY_INTEGER ? "" : "(none) ", x->type == REDIS_REPLY_INTEGER ? x->integer : 0LL,
               t->integer);
    if (u) freeReplyObject(u);
    if (x) freeReplyObject(x);
    if (t) freeReplyObject(t);
    free(keys);
}

static void measure_memory(const options *o, const world *w, key_set *k, const run_spec *r) {
    static const char *const methods[] = {PA_RPC_ACTIVATE};
    long long used0, data0, used1, data1;
    if (!w->admin || !info_memory(w->admin, &used0, &data0)) return;
    k->only = CLASS_MEMORY;
    loadgen_config c = config_for(o, w->target, methods, r);
    c.duration_s = 0;
    c.warmup_s = 0;
    c.count = k->n_memory;
    loadgen_result res;
    int rc = loadgen_run(&c, build, k, &res);
    k->only = -1;
    sleep(2);   /* the AOF buffer drains into the file each second */
    if (rc != 0 || !info_memory(w->admin, &used1, &data1)) return;
    uint64_t granted = res.total.status[GRPC_STATUS_OK];
    printf("\n-- Redis memory: %llu activations of distinct keys (%llu granted), each its own record\n",
           (unsigned long long)res.total.calls, (unsigned long long)granted);
    if (granted == 0) return;
    printf("  used_memory %+lld bytes = %.1f bytes per activation record (target <= 150); "
           "dataset part %.1f bytes\n", used1 - used0, (double)(used1 - used0) / granted,
           (double)(data1 - data0) / granted);
    pk_fields f;
    pk_decode(k->memory[0], PK_TEXT_LEN, &f, NULL);
    print_without_mlog(used1 - used0, mlog_bytes(w->admin, f.group), granted);
    redisReply *u = redisCommand(w->admin, "MEMORY USAGE " PA_RKEY_RECORD_FMT " SAMPLES 0", f.group, f.serial);
    redisReply *e = redisCommand(w->admin, "OBJECT ENCODING " PA_RKEY_RECORD_FMT, f.group, f.serial);
    if (u && e && u->type == REDIS_REPLY_INTEGER && e->str)
        printf("  one record " PA_RKEY_RECORD_FMT ": MEMORY USAGE %lld bytes, encoding %s\n", f.group, f.serial,
               u->integer, e->str);
    if (u) freeReplyObject(u);
    if (e) freeReplyObject(e);
    size_t more = k->n_memory / 5;
    if (more > 0) {
        measure_memory_kind(w, "unlimited key (expiry for retention)", G_MEMORY_UNLIMITED, tune_memory_unlimited, more,
                            1);
        measure_memory_kind(w, "leased key of 3 places, 3 machines (expiry; small keys have no index)", G_MEMORY_LEASED,
                            tune_memory_leased, more, 3);
        measure_memory_kind(w, "unlimited key, 3 machines (expiry and place index)", G_MEMORY_UNLIMITED_3,
                            tune_memory_unlimited, more, 3);
    }
}

/* --- what auditing costs (--audit) ------------------------------------------------ */

/* One sampling setting: a group of its own with fresh keys. */
typedef struct audit_case {
    const char *label;
    uint32_t group;
    uint32_t rate_ppm;            /* the group's base sample rate */
    audit_mode mode;
    double target_cost;           /* issue 4's limit on the throughput lost; 0 = none */
} audit_case;

static const audit_case audit_cases[] = {
    {"sampling 0 %", 4401, 0, AUDIT_MODE_OFFLINE, 0},
    {"sampling 5 % offline", 4402, 50000, AUDIT_MODE_OFFLINE, 0.05},
    {"sampling 5 % online", 4403, 50000, AUDIT_MODE_ONLINE, 0.15},
    {"sampling 100 % offline", 4404, 1000000, AUDIT_MODE_OFFLINE, 0},
};
#define N_AUDIT_CASES (sizeof audit_cases / sizeof *audit_cases)
/* The runs, in order: every sampled run sits between two 0 % runs and is
 * compared with their mean, so drift over the runs (a store filling up, a
 * process warming up) does not pass for a cost. */
static const int audit_sequence[] = {0, 1, 0, 2, 0, 3, 0};
#define N_AUDIT_RUNS (sizeof audit_sequence / sizeof *audit_sequence)
#define BASE_RUNS 4               /* 0 % runs in audit_sequence */

static int make_audit_keys(world *w, const options *o, key_set ks[N_AUDIT_CASES]) {
    double t0 = pa_mono_s();
    for (size_t i = 0; i < N_AUDIT_CASES; i++) {
        group_record rec;
        base_record(&rec, audit_cases[i].group);
        rec.policy.max_machines = PLACES_PER_KEY;
        rec.policy.audit_rate_ppm = audit_cases[i].rate_ppm;
        rec.policy.audit = audit_cases[i].mode;
        rec.policy.on_audit_down = AUDIT_UNREACHABLE_FAIL_CLOSED;
        ks[i].n_load = o->audit_keys * (i == 0 ? BASE_RUNS + 1 : 1);   /* + the warm-up */
        ks[i].only = CLASS_NEW;
        if (!(ks[i].load = alloc_keys(ks[i].n_load)) || write_group(w, &rec) != 0 ||
            make_keys(w, rec.id, 1, ks[i].n_load, 0, ks[i].load) != 0)
            return -1;
    }
    printf("keys: %zu fresh per sampled run (x%d machines); made in %.1f s\n", o->audit_keys, PLACES_PER_KEY,
           pa_mono_s() - t0);
    return 0;
}

static long long outbox_length(const world *w) {
    redisReply *r = redisCommand(w->admin, "XLEN " PA_RKEY_OUTBOX);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r) freeReplyObject(r);
    return n;
}

/* The previous run's samples reach the audit server before the next run
 * starts, so no run pays for another's forwarding. */
static void wait_outbox_drained(const world *w) {
    double t0 = pa_mono_s();
    while (outbox_length(w) > 0 && pa_mono_s() - t0 < 60) usleep(50000);
    if (outbox_length(w) != 0) printf("  (outbox still holds %lld records)\n", outbox_length(w));
}

#define GRANTED_NEW "pa_activations_granted_total{kind=\"new\"}"

/* Activations audited between two /metrics texts: outbox writes and online verdicts. */
static double audited_between(const char *a, const char *b) {
    static const char *const s[] = {"pa_audit_sampled_total",
                                    "pa_audit_online_total{result=\"genuine\"}",
                                    "pa_audit_online_total{result=\"forged\"}"};
    double n = 0;
    for (size_t i = 0; i < sizeof s / sizeof *s; i++) n += series(b, s[i]) - series(a, s[i]);
    return n;
}

/* One measured run of `c`; returns calls/s, or 0 when any call failed. */
static double audit_run(const options *o, world *w, const audit_case *ac, key_set *k) {
    static const char *const methods[] = {PA_RPC_ACTIVATE};
    loadgen_config c = config_for(o, w->target, methods, &o->audit_run);
    loadgen_result res;
    snapshot before, after;
    wait_outbox_drained(w);
    char *m0 = fixture_http_get(w->metrics_host, w->metrics_port, "/metrics");
    int rc = run_measured(o, w, &c, build, k, &res, &before, &after);
    char *m1 = fixture_http_get(w->metrics_host, w->metrics_port, "/metrics");
    printf("\n-- %s (group %u)\n", ac->label, ac->group);
    double rate = 0;
    if (rc != 0) {
        printf("  failed: %s\n", res.first_error);
    } else {
        loadgen_print(stdout, "activate", &c, &res);
        uint64_t failed = res.total.calls - res.total.status[GRPC_STATUS_OK];
        double audited = m0 && m1 ? audited_between(m0, m1) : 0;
        double granted = m0 && m1 ? series(m1, GRANTED_NEW) - series(m0, GRANTED_NEW) : 0;
        printf("  audited %.0f of %.0f granted (%.2f %%, warm-up included); not OK: %llu\n",
               audited, granted, granted > 0 ? 100.0 * audited / granted : 0,
               (unsigned long long)failed);
        print_breakdown(w, &before, &after, res.total.calls);
        rate = failed ? 0 : res.calls_per_s;   /* a run with errors has no valid figure */
    }
    free(m0);
    free(m1);
    return rate;
}

static void print_audit_summary(const double rate[N_AUDIT_RUNS]) {
    printf("\n== Activate throughput with auditing, as a ratio to the mean of the 0 %% runs "
           "before and after it\n  0 %% runs:");
    for (size_t i = 0; i < N_AUDIT_RUNS; i++)
        if (audit_sequence[i] == 0) printf(" %.0f", rate[i]);
    printf(" calls/s\n");
    for (size_t i = 1; i + 1 < N_AUDIT_RUNS; i++) {
        const audit_case *ac = &audit_cases[audit_sequence[i]];
        if (audit_sequence[i] == 0) continue;
        double base = (rate[i - 1] + rate[i + 1]) / 2, ratio = base > 0 ? rate[i] / base : 0;
        printf("  %-24s %6.0f calls/s vs %6.0f: ratio %.3f, cost %5.1f %%", ac->label, rate[i],
               base, ratio, (1 - ratio) * 100);
        if (ac->target_cost > 0)
            printf("  (target <= %.0f %%: %s)", ac->target_cost * 100,
                   ratio > 0 && 1 - ratio <= ac->target_cost ? "met" : "NOT met");
        printf("\n");
    }
}

static int measure_audit(const options *o, world *w) {
    static const char *const methods[] = {PA_RPC_ACTIVATE};
    key_set ks[N_AUDIT_CASES] = {0};
    double rate[N_AUDIT_RUNS] = {0};
    int rc = make_audit_keys(w, o, ks);
    const run_spec *r = &o->audit_run;
    printf("\n== audit sampling cost: new activations only, threads %d, channels %d, concurrency %d, "
           "%.1f s per run (+%.1f s warm-up)\n", r->threads, r->channels, r->concurrency,
           o->duration, o->warmup);
    if (rc == 0) {   /* the first run would otherwise also warm up the processes */
        loadgen_config c = config_for(o, w->target, methods, r);
        c.duration_s = 2;
        c.warmup_s = 0;
        loadgen_result res;
        rc = loadgen_run(&c, build, &ks[0], &res);
    }
    for (size_t i = 0; rc == 0 && i < N_AUDIT_RUNS; i++) {
        int c = audit_sequence[i];
        if ((rate[i] = audit_run(o, w, &audit_cases[c], &ks[c])) <= 0) rc = -1;
    }
    for (size_t i = 0; i < N_AUDIT_CASES; i++) {
        if (atomic_load(&ks[i].exhausted))
            printf("note: %s: %llu activations reused a key (raise --audit-keys)\n",
                   audit_cases[i].label, (unsigned long long)atomic_load(&ks[i].exhausted));
        free(ks[i].load);
    }
    if (rc == 0) print_audit_summary(rate);
    return rc;
}

/* --- what the time of a refusal tells (--oracle) ---------------------------------- */

/* --oracle: the same server again, but one address may make a single call
 * before it is rate-limited (and a refused key costs 5 tokens). */
static int start_throttled_server(world *w) {
    char url[256], listen[64];
    int port = fixture_free_port();
    redis_fixture_url(&w->a, "activation", url, sizeof url);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(w->throttled_target, sizeof w->throttled_target, "%s", listen);
    snprintf(w->throttled_log, sizeof w->throttled_log, "%s/throttled-server.log", w->dir);
    const char *argv[] = {fixture_bin("activation-server/activation-server"),
                          "--listen",
                          listen,
                          "--redis-url",
                          url,
                          "--kek",
                          w->kek_a,
                          "--signing-key",
                          w->signing_key,
                          "--metrics-listen",
                          "off",
                          "--workers",
                          "2",
                          "--log-level",
                          "warn",
                          "--rate-address-per-s",
                          "0.001",
                          "--rate-address-burst",
                          "1",
                          "--refusal-hold-ms", /* as the measured server: the time of the work itself */
                          "0",
                          NULL};
    w->throttled = fixture_spawn((char *const *)argv, w->throttled_log, port, 15000);
    return w->throttled < 0 ? die("the throttled activation-server did not start") : 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double quantile(double *v, size_t n, double q) {
    qsort(v, n, sizeof *v, cmp_double);
    return n ? v[(size_t)(q * (double)(n - 1))] : 0;
}

/* One Activate; its latency in microseconds, and whether the status was `want`. */
static double timed_activate(rpc_channel *ch, rpc_client_method *m, const char *key, grpc_status_code want,
                             unsigned *wrong_status) {
    uint8_t id[32], buf[256];
    machine_id(id, MACHINE_INVALID);
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = (char *)key;
    rq.machine_id = (ProtobufCBinaryData){.len = sizeof id, .data = id};
    size_t len = activation__v1__activate_request__pack(&rq, buf);
    rpc_result res;
    uint64_t t0 = pa_mono_ns();
    grpc_status_code st = rpc_call(ch, m, buf, len, 5000, &res);
    double us = (double)(pa_mono_ns() - t0) / 1e3;
    rpc_result_clear(&res);
    if (st != want) (*wrong_status)++;
    return us;
}

/* Alternates n wrong keys of a real group with n keys of made-up groups
 * against `target` and prints the medians. */
static int oracle_run(const char *label, const char *target, const key_text *known, const key_text *unknown, size_t n,
                      grpc_status_code want) {
    rpc_channel *ch = rpc_channel_new(target, NULL);
    rpc_client_method *m = ch ? rpc_channel_method(ch, PA_RPC_ACTIVATE) : NULL;
    double *tk = calloc(n, sizeof *tk), *tu = calloc(n, sizeof *tu);
    if (!m || !tk || !tu) {
        rpc_channel_free(ch);
        free(tk);
        free(tu);
        return die("out of memory or no channel");
    }
    unsigned bad = 0;
    for (size_t i = 0; i < n / 10; i++) { /* warm-up, unmeasured */
        timed_activate(ch, m, known[i], want, &bad);
        timed_activate(ch, m, unknown[i], want, &bad);
    }
    bad = 0;
    for (size_t i = 0; i < n; i++) {
        /* Alternate which goes first, so neither always follows the other. */
        if (i % 2 == 0) {
            tk[i] = timed_activate(ch, m, known[i], want, &bad);
            tu[i] = timed_activate(ch, m, unknown[i], want, &bad);
        } else {
            tu[i] = timed_activate(ch, m, unknown[i], want, &bad);
            tk[i] = timed_activate(ch, m, known[i], want, &bad);
        }
    }
    double k50 = quantile(tk, n, 0.5), u50 = quantile(tu, n, 0.5);
    double k90 = quantile(tk, n, 0.9), u90 = quantile(tu, n, 0.9);
    printf(
        "  %-16s real group, wrong key: median %6.1f us (p90 %6.1f) | made-up group: median %6.1f us "
        "(p90 %6.1f) | difference of medians %+5.1f us",
        label, k50, k90, u50, u90, u50 - k50);
    if (bad)
        printf(" | %u calls did not answer %s", bad,
               want == GRPC_STATUS_PERMISSION_DENIED ? "PERMISSION_DENIED" : "RESOURCE_EXHAUSTED");
    printf("\n");
    rpc_channel_free(ch);
    free(tk);
    free(tu);
    return bad ? -1 : 0;
}

static int measure_oracle(const options *o, world *w) {
    size_t n = o->oracle_calls, warm = n / 10;
    key_text *known = alloc_keys(n + warm), *unknown = alloc_keys(n + warm);
    int rc = create_group(w, G_LOAD, tune_load) != 0 || make_keys(w, G_LOAD, 1, n + warm, 1, known) != 0 ||
                     start_throttled_server(w) != 0
                 ? -1
                 : 0;
    /* Made-up groups: a fresh ID per call, well away from the real one. */
    for (size_t i = 0; i < n + warm; i++) {
        pk_fields f = {
            .group = (uint32_t)(500000 + i), .serial = 1, .security_first = 123456789, .security_second = 42};
        pk_encode(&f, unknown[i]);
    }
    printf("\n== what the time of a refusal tells: %zu Activate calls of each kind, one at a time, alternating\n", n);
    if (rc == 0)
        rc = oracle_run("not rate-limited", w->target, known + warm, unknown + warm, n, GRPC_STATUS_PERMISSION_DENIED);
    if (rc == 0) {
        /* Spend the throttled server's one token, then measure. */
        unsigned ignored = 0;
        rpc_channel *ch = rpc_channel_new(w->throttled_target, NULL);
        if (ch) timed_activate(ch, rpc_channel_method(ch, PA_RPC_ACTIVATE), known[0], GRPC_STATUS_OK, &ignored);
        rpc_channel_free(ch);
        rc = oracle_run("rate-limited", w->throttled_target, known + warm, unknown + warm, n,
                        GRPC_STATUS_RESOURCE_EXHAUSTED);
    }
    free(known);
    free(unknown);
    return rc;
}

/* --- options -------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f,
            "usage: activation_load [options]\n"
            "Load benchmark of the activation server: calls/s, latency, ratio to a bare echo,\n"
            "server time per stage, p99 at half of peak, Redis bytes per activation record.\n"
            "  --run T,C,N        client threads, channels, calls in flight; repeat\n"
            "                     (default 1,2,16 1,4,32 2,4,32 2,4,64)\n"
            "  --duration S       measured seconds per run (default 3)\n"
            "  --warmup S         unmeasured seconds before each run (default 0.5)\n"
            "  --workers N        activation-server workers (default 0: its own default,\n"
            "                     two per core)\n"
            "  --echo-workers N   echo server workers (default 0: the runtime's, one per core)\n"
            "  --mix N,A,I        percent new activations, re-activations, keys not genuine\n"
            "                     (default 70,20,10)\n"
            "  --keys-fresh N     fresh keys made for new activations (default 150000)\n"
            "  --records N        activations for the memory figure; 0 skips it (default 30000)\n"
            "  --no-half          skip the run at half of peak\n"
            "  --flood-addresses N  loopback addresses the flood of keys that are not genuine\n"
            "                     comes from (default 32, at most 64; 0 skips the flood run)\n"
            "  --quick            a ~30 s smoke run: one setting (1,4,32), 1 s runs, 30000 fresh\n"
            "                     keys, no memory figure (set after it to override)\n"
            "  --server-log-level L  the started server's log level (default info, as deployed)\n"
            "  --audit            measure what auditing costs instead: also start the audit server,\n"
            "                     then Activate throughput with sampling 5 %% offline, 5 %% online\n"
            "                     and 100 %% offline, each as a ratio to 0 %% runs around it\n"
            "  --audit-run T,C,N  the one setting of --audit (default 2,4,32)\n"
            "  --audit-keys N     fresh keys per run (default 20000)\n"
            "  --oracle           measure what the time of a refusal tells instead: median latency of\n"
            "                     a wrong key of a real group vs a key of a made-up group, from a\n"
            "                     caller that is not rate-limited and from one that is\n"
            "  --oracle-calls N   calls of each kind per --oracle run (default 2000)\n"
            "  --ab-batch-script N  after the settings, N alternated pairs at the best one: the\n"
            "                     server (--batch-script on) and a second one with it off\n"
            "  --target HOST:PORT drive a running server instead (needs --keys FILE)\n"
            "  --keys FILE        genuine keys, one a line (--target mode)\n"
            "  --metrics HOST:PORT  that server's metrics endpoint, for the stage breakdown\n"
            "  --echo-target HOST:PORT  an echo_bench --serve on the same runtime, for the ratio\n"
            "  --help             this text\n");
}

static int parse_options(int argc, char **argv, options *o) {
    static const struct option opts[] = {{"run", required_argument, NULL, 'r'},
                                         {"duration", required_argument, NULL, 'd'},
                                         {"warmup", required_argument, NULL, 'u'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"echo-workers", required_argument, NULL, 'E'},
                                         {"mix", required_argument, NULL, 'm'},
                                         {"keys-fresh", required_argument, NULL, 'k'},
                                         {"records", required_argument, NULL, 'R'},
                                         {"no-half", no_argument, NULL, 'H'},
                                         {"flood-addresses", required_argument, NULL, 'F'},
                                         {"quick", no_argument, NULL, 'Q'},
                                         {"server-log-level", required_argument, NULL, 'l'},
                                         {"audit", no_argument, NULL, 'A'},
                                         {"audit-run", required_argument, NULL, 'a'},
                                         {"audit-keys", required_argument, NULL, 'n'},
                                         {"oracle", no_argument, NULL, 'O'},
                                         {"oracle-calls", required_argument, NULL, 'N'},
                                         {"ab-batch-script", required_argument, NULL, 'B'},
                                         {"target", required_argument, NULL, 't'},
                                         {"keys", required_argument, NULL, 'K'},
                                         {"metrics", required_argument, NULL, 'M'},
                                         {"echo-target", required_argument, NULL, 'e'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    *o = (options){.duration = 3,
                   .warmup = 0.5,
                   .workers = 0,
                   .mix = {70, 20, 10},
                   .load_keys = 150000,
                   .records = 30000,
                   .half = true,
                   .flood_addresses = 32,
                   .log_level = "info",
                   .audit_run = {2, 4, 32},
                   .audit_keys = 20000,
                   .oracle_calls = 2000};
    int c;
    char tail;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        run_spec *r = &o->runs[o->n_runs];
        switch (c) {
        case 'r':
            if (o->n_runs == MAX_RUNS ||
                sscanf(optarg, "%d,%d,%d%c", &r->threads, &r->channels, &r->concurrency, &tail) != 3 ||
                r->threads < 1 || r->channels < 1 || r->concurrency < r->threads)
                return die("--run wants T,C,N with N >= T");
            o->n_runs++;
            break;
        case 'd': o->duration = atof(optarg); break;
        case 'u': o->warmup = atof(optarg); break;
        case 'w': o->workers = atoi(optarg); break;
        case 'E': o->echo_workers = atoi(optarg); break;
        case 'm':
            if (sscanf(optarg, "%d,%d,%d%c", &o->mix[0], &o->mix[1], &o->mix[2], &tail) != 3 ||
                o->mix[0] < 0 || o->mix[1] < 0 || o->mix[2] < 0 ||
                o->mix[0] + o->mix[1] + o->mix[2] != 100)
                return die("--mix wants three percentages adding up to 100");
            break;
        case 'k': o->load_keys = (size_t)atol(optarg); break;
        case 'R': o->records = (size_t)atol(optarg); break;
        case 'H': o->half = false; break;
        case 'F': o->flood_addresses = atoi(optarg); break;
        case 'Q':
            o->quick = true;
            o->duration = 1;
            o->warmup = 0.3;
            o->load_keys = 30000;
            o->records = 0;
            break;
        case 'l': o->log_level = optarg; break;
        case 'A': o->audit = true; break;
        case 'a':
            if (sscanf(optarg, "%d,%d,%d%c", &o->audit_run.threads, &o->audit_run.channels,
                       &o->audit_run.concurrency, &tail) != 3 || o->audit_run.threads < 1 ||
                o->audit_run.channels < 1 || o->audit_run.concurrency < o->audit_run.threads)
                return die("--audit-run wants T,C,N with N >= T");
            break;
        case 'n': o->audit_keys = (size_t)atol(optarg); break;
        case 'O': o->oracle = true; break;
        case 'N': o->oracle_calls = (size_t)atol(optarg); break;
        case 'B': o->ab_pairs = atoi(optarg); break;
        case 't': o->target = optarg; break;
        case 'K': o->keys_file = optarg; break;
        case 'M': o->metrics = optarg; break;
        case 'e': o->echo_target = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (o->flood_addresses < 0 || o->flood_addresses > FLOOD_MAX_ADDRESSES) return die("--flood-addresses wants 0..64");
    if (optind < argc || o->duration <= 0 || o->warmup < 0 || o->workers < 0 || o->echo_workers < 0 || o->load_keys < 1)
        return usage(stderr), -1;
    if (o->target && !o->keys_file) return die("--target needs --keys FILE");
    if (o->ab_pairs < 0 || o->ab_pairs > 10) return die("--ab-batch-script wants 0..10 pairs");
    if (o->ab_pairs > 0 && (o->target || o->audit || o->oracle))
        return die("--ab-batch-script starts its own second server; not with --target, --audit or --oracle");
    if (o->audit && o->target) return die("--audit starts its own servers; drop --target");
    if (o->audit && o->audit_keys < 1) return die("--audit-keys wants at least 1");
    if (o->oracle && (o->target || o->audit)) return die("--oracle starts its own servers; drop --target and --audit");
    if (o->oracle && o->oracle_calls < 10) return die("--oracle-calls wants at least 10");
    /* One client thread first: with two, a completion often lands on the
     * other thread's queue and wakes it, which costs the shared cores more
     * per call than the call's own client work (measured). */
    if (o->n_runs == 0 && o->quick) o->runs[o->n_runs++] = (run_spec){1, 4, 32};
    if (o->n_runs == 0) {
        const run_spec def[] = {{1, 2, 16}, {1, 4, 32}, {2, 4, 32}, {2, 4, 64}};
        memcpy(o->runs, def, sizeof def);
        o->n_runs = 4;
    }
    return 0;
}

/* fixture_bin finds programs through PA_BUILD_DIR: this binary lives in
 * BUILD/bench/, so default it to the directory above. */
static void default_build_dir(void) {
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (getenv("PA_BUILD_DIR") || n <= 0) return;
    exe[n] = '\0';
    setenv("PA_BUILD_DIR", dirname(dirname(exe)), 0);
}

static int pointed_world(const options *o, world *w) {
    memset(w, 0, sizeof *w);
    w->server = w->echo = w->audit = w->throttled = w->server_off = w->a.pid = w->b.pid = -1;
    snprintf(w->target, sizeof w->target, "%s", o->target);
    if (o->metrics) {
        const char *colon = strrchr(o->metrics, ':');
        if (!colon) return die("--metrics wants HOST:PORT");
        snprintf(w->metrics_host, sizeof w->metrics_host, "%.*s", (int)(colon - o->metrics),
                 o->metrics);
        w->metrics_port = atoi(colon + 1);
    }
    return 0;
}

int main(int argc, char **argv) {
    options o;
    if (parse_options(argc, argv, &o) != 0) return 2;
    default_build_dir();
    setvbuf(stdout, NULL, _IOLBF, 0);   /* progress shows as it happens, also in a pipe */
    signal(SIGPIPE, SIG_IGN);
    grpc_init();
    world w;
    key_set k = {.only = -1, .mix = {o.mix[0], o.mix[1], o.mix[2]}};
    template_init(&k.tmpl);
    int rc = 1;
    if (o.oracle) {
        if (world_start(&w, &o) == 0) {
            printf("activation server: %s (--workers %d), Redis A: 127.0.0.1:%d\n", w.target, o.workers, w.a.port);
            rc = measure_oracle(&o, &w) == 0 ? 0 : 1;
        }
        goto out;
    }
    if (o.audit) {
        if (world_start(&w, &o) == 0) {
            printf("activation server: %s (--workers %d, auditing on), audit server: %s, "
                   "Redis A: 127.0.0.1:%d\n", w.target, o.workers, w.audit_target, w.a.port);
            rc = measure_audit(&o, &w) == 0 ? 0 : 1;
        }
        goto out;
    }
    if (o.target ? pointed_world(&o, &w) != 0 || keys_from_file(&o, &k) != 0
                 : world_start(&w, &o) != 0 || make_all_keys(&w, &o, &k) != 0)
        goto out;
    if (!o.target) printf("activation server: %s (--workers %d), echo ceiling: %s (--server-workers %d), "
                          "Redis A: 127.0.0.1:%d\n", w.target, o.workers, w.echo_target,
                          o.echo_workers, w.a.port);
    /* The memory figure first, on a store that holds nothing else yet, so
     * the load runs' records do not blur it. */
    run_spec mem_spec = {2, 4, 32};
    if (!o.target && o.records > 0) measure_memory(&o, &w, &k, &mem_spec);
    if (!o.target && set_deployed_aof(&w) != 0) goto out;
    if (prefill_again(w.target, &k) != 0) goto out;
    printf("mix: %d%% new activations, %d%% re-activations, %d%% keys not genuine\n", o.mix[0],
           o.mix[1], o.mix[2]);

    run_result best = {0};
    int best_i = 0;
    for (int i = 0; i < o.n_runs; i++) {
        run_result r;
        measure_setting(&o, &w, &k, &o.runs[i], &r);
        if (r.activate > best.activate) best = r, best_i = i;
    }
    if (best.activate <= 0) goto out;
    printf("\n== best setting: threads %d, channels %d, concurrency %d: %.0f Activate/s",
           o.runs[best_i].threads, o.runs[best_i].channels, o.runs[best_i].concurrency,
           best.activate);
    if (best.echo > 0) printf(", echo %.0f/s", best.echo);
    printf("\n");
    if (o.ab_pairs > 0) measure_batch_script_ab(&o, &w, &k, &o.runs[best_i], best.echo);
    summary sum = {.half_p99_ms = -1, .half_echo_p99_ms = -1, .low_p99_ms = -1, .always_ratio = -1};
    if (o.half) measure_half_rate(&o, &w, &k, &o.runs[best_i], best.activate, &sum);
    measure_low_load(&o, &w, &k, &sum);
    if (!o.target) measure_fsync_always(&o, &w, &k, &o.runs[best_i], best.echo, &sum);
    if (o.flood_addresses > 0) measure_floods(&o, &w, &k, &o.runs[best_i], &sum);
    print_summary(&w, &best, &sum);
    uint64_t exhausted = atomic_load(&k.exhausted);
    if (exhausted)
        printf("\nnote: %llu new activations reused a key (raise --keys-fresh)\n",
               (unsigned long long)exhausted);
    rc = 0;
out:
    if (!o.target) world_stop(&w);
    free(k.again);                  /* in --target mode it also holds k.load */
    if (!o.target) free(k.load);
    free(k.invalid);
    free(k.memory);
    rpc_client_thread_done();
    grpc_shutdown();
    return rc;
}
