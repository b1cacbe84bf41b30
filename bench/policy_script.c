/* policy_script.c -- what one policy.lua activate costs inside Redis, alone.
 *
 * activation_load measures Redis beside the server and the load generator
 * on the same cores, so its Redis figures move with the other processes.
 * This one drives policy.c directly (no gRPC, no server) against a private
 * Redis A as the activation user: new activations of fresh keys of one
 * group from one address, as single calls (one EVALSHA each) and as
 * batches of policy.lua's `batch` operation (docs/batching.md), and prints
 * per activation:
 *   - Redis's CPU (its main thread's time on CPU, /proc/PID/schedstat, in
 *     ns: reading the requests, running the script, writing the replies);
 *   - the time inside Redis (INFO commandstats: evalsha's usec) and the
 *     commands the script ran (every command counted, less the EVALSHAs);
 * so a change to policy.lua, or to how the server calls it, can be judged
 * by the figure it moves. Every activation must be granted, or the run
 * fails (exit 1). Redis A runs with AOF appendfsync everysec, as deployed,
 * unless --aof off. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "act_env.h"
#include "fixture.h"
#include "policy.h"

typedef struct options {
    size_t calls;    /* activations per measurement */
    size_t sizes[8]; /* batch sizes measured, 1 = single calls */
    size_t n_sizes;
    int rounds; /* measurements per size, alternated; the median is printed */
    bool aof;   /* Redis A with appendonly yes (everysec) */
} options;

typedef struct bench {
    act_env env;
    redisContext *admin; /* INFO, CONFIG: the measuring user */
    rstore *store;       /* the activation user, as a worker connects */
    int script;
    policy_limits limits; /* no bucket reaches its limit */
    group_entry group;
    char address[PA_RKEY_MAX];
    uint32_t next_serial; /* every activation a fresh key */
} bench;

enum { GROUP = 4100 };

/* Nanoseconds pid's main thread has spent on a CPU (-1: unreadable). */
static long long thread_cpu_ns(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
    FILE *f = fopen(path, "r");
    long long ns = -1;
    if (f) {
        if (fscanf(f, "%lld", &ns) != 1) ns = -1;
        fclose(f);
    }
    return ns;
}

typedef struct sample {
    long long cpu_ns;
    double evalsha_calls, evalsha_usec, commands;
} sample;

static int take_sample(bench *b, sample *s) {
    s->cpu_ns = thread_cpu_ns(b->env.a.pid);
    redisReply *r = redisCommand(b->admin, "INFO commandstats");
    int rc = s->cpu_ns >= 0 && r && r->type == REDIS_REPLY_STRING ? 0 : -1;
    if (rc == 0) {
        redis_info_command_stats(r->str, "evalsha", &s->evalsha_calls, &s->evalsha_usec);
        s->commands = redis_info_all_calls(r->str);
    }
    if (r) freeReplyObject(r);
    return rc;
}

/* One activation's arguments: a fresh serial, its own machine and random. */
static uint32_t next_call(bench *b, uint8_t machine[MACHINE_ID_LEN], uint8_t random[LICENSE_RANDOM_LEN]) {
    uint32_t serial = b->next_serial++;
    env_machine(machine, serial);
    for (size_t i = 0; i < LICENSE_RANDOM_LEN; i++) random[i] = (uint8_t)(serial >> (8 * (i % 4)));
    return serial;
}

static bool granted(const policy_result *r) {
    if (r->status == POLICY_OK) return true;
    fprintf(stderr, "policy_script: an activation was answered %s (%s)\n", policy_status_name(r->status), r->error);
    return false;
}

/* `calls` activations in batches of `size` (1: single calls). */
static int run_calls(bench *b, size_t calls, size_t size, policy_batch *pb) {
    uint8_t machine[MACHINE_ID_LEN], random[LICENSE_RANDOM_LEN];
    policy_result r;
    for (size_t done = 0; done < calls; done += size) {
        if (size == 1) {
            uint32_t serial = next_call(b, machine, random);
            policy_activate(b->store, b->script, &b->limits, &b->group, serial, machine, NULL, random, b->address, NULL,
                            NULL, &r);
            if (!granted(&r)) return -1;
            continue;
        }
        policy_batch_clear(pb);
        for (size_t i = 0; i < size; i++) {
            uint32_t serial = next_call(b, machine, random);
            if (policy_batch_add_activate(pb, &b->limits, &b->group, serial, machine, NULL, random, b->address, NULL,
                                          NULL) != 0)
                return -1;
        }
        if (policy_batch_append(b->store, b->script, pb) != 0 || !policy_batch_read(b->store, pb)) return -1;
        for (size_t i = 0; i < size; i++) {
            policy_batch_result(pb, i, &r);
            if (!granted(&r)) return -1;
        }
    }
    return 0;
}

typedef struct figures {
    double cpu_us, inside_us, commands; /* per activation */
} figures;

static int measure(bench *b, size_t calls, size_t size, policy_batch *pb, figures *out) {
    sample s0, s1;
    size_t n = calls / size * size;
    if (take_sample(b, &s0) != 0 || run_calls(b, n, size, pb) != 0 || take_sample(b, &s1) != 0) return -1;
    double scripts = s1.evalsha_calls - s0.evalsha_calls;
    out->cpu_us = (double)(s1.cpu_ns - s0.cpu_ns) / 1e3 / (double)n;
    out->inside_us = (s1.evalsha_usec - s0.evalsha_usec) / (double)n;
    /* every command counted, less the scripts themselves and the first
     * sample's INFO (an INFO's count excludes itself) */
    out->commands = (s1.commands - s0.commands - scripts - 1) / (double)n;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int setup(bench *b, const options *o) {
    if (env_start_stores(&b->env) != 0 || !(b->admin = env_measuring_connection(&b->env))) return -1;
    redisReply *r = redisCommand(b->admin, "CONFIG SET appendonly %s", o->aof ? "yes" : "no");
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
    if (!ok) return -1;
    char url[256], err[256] = "";
    redis_fixture_url(&b->env.a, "activation", url, sizeof url);
    rstore_config cfg = {.url = url};
    if (!(b->store = rstore_new(&cfg, false, err, sizeof err))) {
        fprintf(stderr, "policy_script: %s\n", err);
        return -1;
    }
    b->script = policy_register(b->store);
    policy_limits_set(&b->limits, 1e9, 1e9, 1e9, 1e9, 1);
    policy_limits_set_group_failures(&b->limits, 1e9, 1e9);
    if (b->script < 0 || env_create_group(&b->env, GROUP, NULL) != 0) return -1;
    b->group.rec.id = GROUP;
    group_entry_name_keys(&b->group, GROUP);
    policy_address_key("10.9.8.7", b->address, sizeof b->address);
    b->next_serial = 1;
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: policy_script [options]\n"
            "What one policy.lua activate costs inside Redis A, without the server: Redis's CPU per\n"
            "activation, its time inside the script and the commands the script ran, for single calls\n"
            "and for batches (docs/batching.md, \"Per-entry costs in Redis\").\n"
            "  --calls N     activations per measurement (default 4000)\n"
            "  --batch LIST  batch sizes, comma-separated, 1 = single calls (default 1,4,16,32)\n"
            "  --rounds N    measurements per size, the sizes alternated; medians printed (default 3)\n"
            "  --aof on|off  Redis A's appendonly (default on, appendfsync everysec, as deployed)\n"
            "  --help        this text\n"
            "Exit codes: 0 figures printed; 1 something could not be set up, or an activation was refused;\n"
            "2 usage error.\n");
}

static int parse_sizes(const char *s, options *o) {
    o->n_sizes = 0;
    for (const char *p = s; *p;) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || v < 1 || v > 1000 || o->n_sizes == sizeof o->sizes / sizeof o->sizes[0]) return -1;
        o->sizes[o->n_sizes++] = v;
        if (*end == ',') end++;
        else if (*end) return -1;
        p = end;
    }
    return o->n_sizes ? 0 : -1;
}

static int parse(int argc, char **argv, options *o) {
    *o = (options){.calls = 4000, .rounds = 3, .aof = true};
    parse_sizes("1,4,16,32", o);
    static const struct option longs[] = {
        {"calls", required_argument, NULL, 'c'},  {"batch", required_argument, NULL, 'b'},
        {"rounds", required_argument, NULL, 'r'}, {"aof", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        char *end = NULL;
        long v = 0;
        switch (c) {
        case 'c':
            v = strtol(optarg, &end, 10);
            if (*end || v < 100 || v > 10000000) return fprintf(stderr, "--calls: 100 to 10000000\n"), 2;
            o->calls = (size_t)v;
            break;
        case 'b':
            if (parse_sizes(optarg, o) != 0) return fprintf(stderr, "--batch: up to 8 sizes, 1 to 1000\n"), 2;
            break;
        case 'r':
            v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 99) return fprintf(stderr, "--rounds: 1 to 99\n"), 2;
            o->rounds = (int)v;
            break;
        case 'a':
            if (strcmp(optarg, "on") && strcmp(optarg, "off")) return fprintf(stderr, "--aof: on or off\n"), 2;
            o->aof = strcmp(optarg, "on") == 0;
            break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) return fprintf(stderr, "policy_script: unexpected argument %s\n", argv[optind]), 2;
    return 0;
}

int main(int argc, char **argv) {
    options o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
    static bench b;
    policy_batch *pb = policy_batch_new();
    if (!pb || setup(&b, &o) != 0) {
        fprintf(stderr, "policy_script: setup failed\n");
        policy_batch_free(pb);
        env_stop(&b.env);
        return 1;
    }
    printf("Redis A 127.0.0.1:%d (pid %d), AOF %s; %zu new activations per measurement, %d rounds, medians\n",
           b.env.a.port, (int)b.env.a.pid, o.aof ? "everysec" : "off", o.calls, o.rounds);
    figures f[8][99];
    rc = run_calls(&b, 200, 1, pb); /* warm: the script loaded, the group's first keys */
    for (int round = 0; rc == 0 && round < o.rounds; round++)
        for (size_t i = 0; rc == 0 && i < o.n_sizes; i++) rc = measure(&b, o.calls, o.sizes[i], pb, &f[i][round]);
    if (rc == 0) {
        printf("%-14s %22s %22s %18s\n", "calls", "Redis CPU / activation", "inside the script", "commands");
        for (size_t i = 0; i < o.n_sizes; i++) {
            double cpu[99], inside[99], cmds[99];
            for (int r = 0; r < o.rounds; r++)
                cpu[r] = f[i][r].cpu_us, inside[r] = f[i][r].inside_us, cmds[r] = f[i][r].commands;
            char label[32];
            if (o.sizes[i] == 1) snprintf(label, sizeof label, "single");
            else snprintf(label, sizeof label, "batch of %zu", o.sizes[i]);
            printf("%-14s %19.1f us %19.1f us %18.1f\n", label, median(cpu, o.rounds), median(inside, o.rounds),
                   median(cmds, o.rounds));
        }
    } else {
        fprintf(stderr, "policy_script: a measurement failed\n");
    }
    policy_batch_free(pb);
    rstore_free(b.store);
    if (b.admin) redisFree(b.admin);
    env_stop(&b.env);
    return rc == 0 ? 0 : 1;
}
