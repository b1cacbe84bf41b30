/* volume_load.c -- what volume orders cost (docs/volume.md), in one run.
 *
 * Starts everything for real through the activation tests' environment
 * (tests/activation/act_env.h, order_env.h: Redis A and B with the
 * production ACL users, the activation-server binary, orders made with
 * `keystore order create` and imported with `activation-server order
 * import`) and prints side by side:
 *   - retail Activate/s: a new key on a new machine each call (the usual
 *     retail activation: policy.lua);
 *   - volume Activate/s: a new machine on one volume key of a permanent
 *     order each call (volume.lua: the machine table grows, a seat is
 *     taken, the wheel files the machine);
 *   - the same with component matching (an order at `set-match 3`, five
 *     components per machine): a new machine each call that matches none
 *     (the whole 64-candidate scan, then a new seat), and container
 *     restarts (one of 100 containers with a new MAC and machine-id file
 *     each call: re-bound to its record);
 *   - each of those as a ratio to a bare echo on the same runtime at the
 *     same setting (`echo_bench --serve`, started here): what a call costs
 *     beyond gRPC itself, the figure natural batching moves; beside each
 *     run, how many calls the server's batch handlers took at once
 *     (pa_batch_calls, docs/batching.md: volume Activates and heartbeats
 *     are batched as retail ones are), so the default concurrency (64
 *     calls in flight for 2 workers) is where batches form;
 *   - heartbeats/s: Renew of the machines of a concurrent order, each with
 *     its proof of the place key (made once before the run and replayed:
 *     a proof is good for 300 s), so the server checks a proof, runs
 *     volume.lua and signs a fresh license per call;
 *   - Deactivate/s of the same machines (proofs made once as well): the
 *     first call of each frees its seat, the repeats are refused by
 *     volume.lua after the same proof check; nothing is signed, so this
 *     is the proof check and the script call alone (docs/batching.md);
 *   - Redis bytes per machine record: INFO used_memory before and after
 *     activating N machines on an unlimited order straight through
 *     volume.lua, divided by N, with the machine table's and the wheel's
 *     own MEMORY USAGE beside it;
 *   - the time to expire those N machines once they are stale: sweep calls
 *     (volume.lua sweep, VOLUME_SWEEP_MAX members each) until none is due,
 *     and a check that the table is empty afterwards.
 * The server runs without its background sweep (--order-sweep-ms 0), so
 * the last figure is the sweep's alone, and without rate limits (one load
 * generator is one client address). Client, server and Redis share this
 * machine's cores. No targets are asserted: the figures are printed.
 * Beside each gRPC run: Redis A's time and commands per script call (INFO
 * commandstats) and the CPU per call of Redis, the server and this process,
 * which stay meaningful on a shared machine where calls/s do not;
 * --phase runs one part alone, to profile it (perf record -p, the server's
 * pid is printed). */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#include <unistd.h>

#include "act_env.h"
#include "batch_sizes.h"
#include "clock.h"
#include "loadgen_core.h"
#include "mac_registry.h"
#include "order_env.h"
#include "redis_keys.h"
#include "volume_policy.h"

enum { G_RETAIL = 801, G_VOLUME = 802, G_CONCURRENT = 803, G_MEMORY = 804, G_MATCH = 805 };
#define O_VOLUME "40000001"
#define O_CONCURRENT "40000002"
#define O_MEMORY "40000003"
#define O_MATCH "40000004"

typedef struct options {
    double duration; /* seconds per measured run */
    int threads, channels, concurrency;
    const char *workers;
    long machines; /* machine records for the memory and expiry figures */
    int heartbeat_machines;
    int retention_s;   /* the memory order's machine_retention_seconds */
    const char *phase; /* "all", or the one phase to run (profiling it alone) */
} options;

typedef struct bench {
    act_env e;
    order_env oe;
    redisContext *admin; /* INFO and MEMORY USAGE on Redis A */
    char (*retail)[PK_TEXT_LEN + 1];
    size_t n_retail;
    char volume_key[PK_TEXT_LEN + 1], concurrent_key[PK_TEXT_LEN + 1], match_key[PK_TEXT_LEN + 1];
    uint8_t (*renew)[512]; /* prebuilt Renew requests with their proofs */
    size_t *renew_len;
    uint8_t (*deact)[512]; /* prebuilt Deactivate requests of the same machines, with their proofs */
    size_t *deact_len;
    int n_renew;
    int threads;
    pid_t echo; /* echo_bench --serve: the bare-runtime ceiling */
    char echo_target[64];
} bench;

static int die(const char *what) {
    fprintf(stderr, "volume_load: %s\n", what);
    return -1;
}

/* ---- setup ---------------------------------------------------------------------- */

static void tune_retail(group_record *r) { r->policy.max_machines = 1; }
static void tune_volume(group_record *r) { r->channel = GROUP_CHANNEL_VOLUME; }

static int import(bench *b, const char *serial, unsigned group, const char *mode, const char *seats,
                  const char *const *terms) {
    char g[16], name[64], path[300];
    snprintf(g, sizeof g, "%u", group);
    snprintf(name, sizeof name, "%s.license", serial);
    const char *args[40] = {"--serial",     serial,       "--customer",    "Bench Corp", "--group", g,
                            "--product",    "Office",     "--mode",        mode,         "--seats", seats,
                            "--valid-from", "2020-01-01", "--valid-until", "2099-12-31"};
    int n = 16;
    for (int i = 0; terms && terms[i] && n < 38; i++) args[n++] = terms[i];
    args[n] = NULL;
    if (order_env_create(&b->oe, NULL, name, args, path, sizeof path) != 0) return die("keystore order create failed");
    char *err = NULL;
    int st = order_env_import(&b->oe, path, NULL, NULL, &err);
    if (st != 0) fprintf(stderr, "volume_load: import %s: %s", serial, err ? err : "?\n");
    free(err);
    return st == 0 ? 0 : -1;
}

/* n genuine keys of a group: its first secret loaded once. */
static int make_retail_keys(bench *b, size_t n) {
    group_record rec;
    mac_key *first = NULL;
    char err[256];
    if (group_load(b->e.ks_a, b->e.kek_a_bytes, G_RETAIL, &rec, &first, err, sizeof err) != 0) return die(err);
    b->retail = malloc(n * sizeof *b->retail);
    for (size_t i = 0; b->retail && i < n; i++) {
        pk_fields f = {.group = G_RETAIL, .serial = (uint32_t)(i + 1), .security_second = 7};
        if (mac_security_value(first, MAC_ROLE_FIRST, G_RETAIL, f.serial, false, &f.security_first) != 0 ||
            pk_encode(&f, b->retail[i]) != 0)
            break;
        b->n_retail = i + 1;
    }
    mac_key_free(first);
    return b->n_retail == n ? 0 : die("could not make the retail keys");
}

static int world_start(bench *b, const options *o) {
    if (env_start_stores(&b->e) != 0 || order_env_init(&b->oe, &b->e) != 0) return die("cannot start the stores");
    if (!(b->admin = env_measuring_connection(&b->e))) return die("no measuring connection to Redis A");
    if (env_create_group(&b->e, G_RETAIL, tune_retail) != 0 || env_create_group(&b->e, G_VOLUME, tune_volume) != 0 ||
        env_create_group(&b->e, G_CONCURRENT, tune_volume) != 0 ||
        env_create_group(&b->e, G_MEMORY, tune_volume) != 0 || env_create_group(&b->e, G_MATCH, tune_volume) != 0)
        return die("cannot create the groups");
    char retention[16];
    snprintf(retention, sizeof retention, "%d", o->retention_s);
    if (import(b, O_VOLUME, G_VOLUME, "permanent", "100000000", NULL) != 0 ||
        import(b, O_CONCURRENT, G_CONCURRENT, "concurrent", "100000000",
               (const char *[]){"--heartbeat-s", "60", NULL}) != 0 ||
        import(b, O_MEMORY, G_MEMORY, "unlimited", "0", (const char *[]){"--retention-s", retention, NULL}) != 0 ||
        import(b, O_MATCH, G_MATCH, "permanent", "100000000", NULL) != 0)
        return -1;
    char *err = NULL;
    if (order_env_cli(&b->oe, NULL, (const char *[]){"set-match", O_MATCH, "3", NULL}, NULL, &err) != 0) {
        fprintf(stderr, "volume_load: set-match: %s", err ? err : "?\n");
        free(err);
        return -1;
    }
    free(err);
    if (env_make_key(&b->e, G_VOLUME, 1, false, 0, b->volume_key) != 0 ||
        env_make_key(&b->e, G_CONCURRENT, 1, false, 0, b->concurrent_key) != 0 ||
        env_make_key(&b->e, G_MATCH, 1, false, 0, b->match_key) != 0)
        return die("cannot make the volume keys");
    const char *flags[] = {"--order-public-key",
                           b->oe.vendor_pub,
                           "--order-sweep-ms",
                           "0",
                           "--workers",
                           o->workers,
                           "--rate-address-per-s",
                           "0",
                           "--rate-group-per-s",
                           "0",
                           "--log-level",
                           "warn",
                           NULL};
    return env_start_server(&b->e, flags) == 0 ? 0 : die("cannot start the activation server");
}

/* ---- the gRPC runs ---------------------------------------------------------------- */

static void machine_id(uint8_t out[32], uint64_t n) {
    memset(out, 0, 32);
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(n >> (8 * i));
    out[31] = 0x5a;
}

/* Calls of thread t use numbers t * SPAN + seq: never the same twice. */
#define SPAN 100000000ull

static int build_retail(void *user, int thread, uint64_t seq, loadgen_request *req) {
    bench *b = user;
    size_t per = b->n_retail / (size_t)b->threads, i = (size_t)thread * per + seq;
    if (seq >= per) return -1; /* out of keys: the run ends for this thread */
    uint8_t m[32];
    machine_id(m, (uint64_t)thread * SPAN + seq);
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = b->retail[i];
    rq.machine_id = (ProtobufCBinaryData){.len = 32, .data = m};
    req->len = activation__v1__activate_request__pack(&rq, req->buf);
    return 0;
}

static int build_volume(void *user, int thread, uint64_t seq, loadgen_request *req) {
    bench *b = user;
    uint8_t m[32];
    machine_id(m, (uint64_t)(thread + 8) * SPAN + seq);
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = b->volume_key;
    rq.machine_id = (ProtobufCBinaryData){.len = 32, .data = m};
    req->len = activation__v1__activate_request__pack(&rq, req->buf);
    return 0;
}

/* A machine of the matching order with five components: dmi_uuid,
 * board_serial and disk_serial from `host`, mac and machine_id_file from
 * `start` (each digest 32 bytes of those numbers). */
static int build_components(bench *b, uint64_t machine, uint64_t host, uint64_t start, loadgen_request *req) {
    static const char *const names[5] = {"dmi_uuid", "board_serial", "disk_serial", "mac", "machine_id_file"};
    uint8_t m[32], d[5][32];
    Activation__V1__MachineComponent c[5], *cp[5];
    machine_id(m, machine);
    for (int i = 0; i < 5; i++) {
        machine_id(d[i], i < 3 ? host : start);
        d[i][30] = (uint8_t)i;
        activation__v1__machine_component__init(&c[i]);
        c[i].name = (char *)names[i];
        c[i].digest = (ProtobufCBinaryData){.len = 32, .data = d[i]};
        cp[i] = &c[i];
    }
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = b->match_key;
    rq.machine_id = (ProtobufCBinaryData){.len = 32, .data = m};
    rq.components = cp;
    rq.n_components = 5;
    if (activation__v1__activate_request__get_packed_size(&rq) > req->cap) return -1;
    req->len = activation__v1__activate_request__pack(&rq, req->buf);
    return 0;
}

/* A new machine on a new host each call: nothing matches. */
static int build_match_new(void *user, int thread, uint64_t seq, loadgen_request *req) {
    uint64_t n = (uint64_t)(thread + 10) * SPAN + seq;
    return build_components(user, n, n, n, req);
}

/* Container restarts: host seq % 100, a new machine id, MAC and machine-id file each call. */
static int build_match_restart(void *user, int thread, uint64_t seq, loadgen_request *req) {
    uint64_t n = (uint64_t)(thread + 20) * SPAN + seq;
    return build_components(user, n, (uint64_t)thread * 1000 + seq % 100, n, req);
}

static int build_renew(void *user, int thread, uint64_t seq, loadgen_request *req) {
    bench *b = user;
    int per = b->n_renew / b->threads, i = thread * per + (int)(seq % (uint64_t)per);
    memcpy(req->buf, b->renew[i], b->renew_len[i]);
    req->len = b->renew_len[i];
    return 0;
}

static int build_deactivate(void *user, int thread, uint64_t seq, loadgen_request *req) {
    bench *b = user;
    int per = b->n_renew / b->threads, i = thread * per + (int)(seq % (uint64_t)per);
    memcpy(req->buf, b->deact[i], b->deact_len[i]);
    req->len = b->deact_len[i];
    return 0;
}

/* The concurrent order's machines activated with place keys, and one
 * Renew and one Deactivate request with its proof made for each. */
static int prepare_heartbeats(bench *b, int n) {
    rpc_channel *ch = rpc_channel_new(b->e.target, NULL);
    rpc_client_method *m = ch ? rpc_channel_method(ch, PA_RPC_ACTIVATE) : NULL;
    b->renew = calloc((size_t)n, sizeof *b->renew);
    b->renew_len = calloc((size_t)n, sizeof *b->renew_len);
    b->deact = calloc((size_t)n, sizeof *b->deact);
    b->deact_len = calloc((size_t)n, sizeof *b->deact_len);
    for (int i = 0; m && b->renew && b->renew_len && b->deact && b->deact_len && i < n; i++) {
        uint8_t id[32], buf[256], pub[32];
        size_t publen = sizeof pub;
        machine_id(id, 7 * SPAN + (uint64_t)i);
        EVP_PKEY *pk = env_place_key((unsigned)i + 1);
        EVP_PKEY_get_raw_public_key(pk, pub, &publen);
        Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
        rq.product_key = b->concurrent_key;
        rq.machine_id = (ProtobufCBinaryData){.len = 32, .data = id};
        rq.place_key = (ProtobufCBinaryData){.len = 32, .data = pub};
        size_t len = activation__v1__activate_request__pack(&rq, buf);
        rpc_result res;
        Activation__V1__ActivateResponse *a = NULL;
        Activation__V1__License *lic = NULL;
        if (rpc_call(ch, m, buf, len, 5000, &res) == GRPC_STATUS_OK &&
            (a = activation__v1__activate_response__unpack(NULL, res.body_len, res.body)) &&
            (lic = activation__v1__license__unpack(NULL, a->license.len, a->license.data))) {
            b->deact_len[i] =
                env_license_request(lic->license_id, id, pk, PLACE_OP_DEACTIVATE, 0, b->deact[i], sizeof b->deact[i]);
            b->renew_len[b->n_renew++] =
                env_license_request(lic->license_id, id, pk, PLACE_OP_RENEW, 0, b->renew[i], sizeof b->renew[i]);
        } else fprintf(stderr, "volume_load: heartbeat machine %d: %s\n", i, res.message);
        if (lic) activation__v1__license__free_unpacked(lic, NULL);
        if (a) activation__v1__activate_response__free_unpacked(a, NULL);
        rpc_result_clear(&res);
        EVP_PKEY_free(pk);
    }
    rpc_channel_free(ch);
    return b->n_renew == n ? 0 : die("could not activate the heartbeat machines");
}

/* One measured run of `method` against `target` at the options' setting;
 * `what` prefixes an error. */
static int run_at(const options *o, const char *target, const char *method, loadgen_request_fn fn, void *arg,
                  const char *what, loadgen_result *res) {
    const char *methods[] = {method};
    loadgen_config c = {.target = target,
                        .methods = methods,
                        .n_methods = 1,
                        .threads = o->threads,
                        .channels = o->channels,
                        .concurrency = o->concurrency,
                        .duration_s = o->duration,
                        .warmup_s = 1};
    if (loadgen_run(&c, fn, arg, res) != 0) {
        fprintf(stderr, "volume_load: %s%s\n", what, res->first_error);
        return -1;
    }
    return 0;
}

/* The server's batch sizes of the method named `label` so far. */
static void read_sizes(const bench *b, const char *label, batch_sizes *out) {
    char *text = fixture_http_get("127.0.0.1", b->e.metrics_port, "/metrics");
    batch_sizes_read(text, label, out);
    free(text);
}

/* One run against the activation server; `batch` gets its batch sizes. */
static int run(const options *o, bench *b, const char *method, const char *label, loadgen_request_fn fn,
               loadgen_result *res, char batch[160]) {
    batch_sizes before, after;
    read_sizes(b, label, &before);
    int rc = run_at(o, b->e.target, method, fn, b, "", res);
    read_sizes(b, label, &after);
    batch_sizes_format(&before, &after, batch, 160);
    return rc;
}

/* The bare echo ceiling on this runtime, its log in the environment's directory. */
static int start_echo(bench *b) {
    char log[300];
    int port = fixture_free_port();
    snprintf(b->echo_target, sizeof b->echo_target, "127.0.0.1:%d", port);
    snprintf(log, sizeof log, "%s/echo.log", b->e.dir);
    const char *argv[] = {fixture_bin("bench/echo_bench"), "--serve", b->echo_target, NULL};
    b->echo = fixture_spawn((char *const *)argv, log, port, 15000);
    return b->echo > 0 ? 0 : die("echo_bench --serve did not start");
}

static int build_echo(void *user, int thread, uint64_t seq, loadgen_request *req) {
    (void)user, (void)thread, (void)seq;
    memset(req->buf, 'e', 120); /* as large as an ActivateRequest */
    req->len = 120;
    return 0;
}

static int run_echo(const options *o, bench *b, loadgen_result *res) {
    return run_at(o, b->echo_target, "/bench.v1.Echo/Echo", build_echo, NULL, "echo: ", res);
}

/* Redis A's command counts: evalsha's calls and microseconds, and every
 * other command's calls (those a script runs are counted too), so a run's
 * deltas give the script's cost and its commands per call. */
typedef struct command_stats {
    long long evalsha_calls, evalsha_usec, other_calls;
    double redis_cpu_s, server_cpu_s, self_cpu_s; /* CPU so far: Redis A, the server, this process (the load) */
} command_stats;

static double info_field(const char *text, const char *field) {
    const char *p = strstr(text, field);
    return p ? atof(p + strlen(field)) : 0;
}

/* utime + stime of `pid`, in seconds (-1: unreadable). */
static double process_cpu_s(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the command may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void read_command_stats(redisContext *c, pid_t server, command_stats *out) {
    *out = (command_stats){0};
    redisReply *cpu = redisCommand(c, "INFO cpu");
    if (cpu && cpu->type == REDIS_REPLY_STRING)
        out->redis_cpu_s = info_field(cpu->str, "used_cpu_sys:") + info_field(cpu->str, "used_cpu_user:");
    if (cpu) freeReplyObject(cpu);
    out->server_cpu_s = process_cpu_s(server);
    out->self_cpu_s = self_cpu_s();
    redisReply *r = redisCommand(c, "INFO commandstats");
    const char *p = r && r->type == REDIS_REPLY_STRING ? r->str : "";
    for (; (p = strstr(p, "cmdstat_")); p++) {
        char name[64];
        long long calls = 0, usec = 0;
        if (sscanf(p, "cmdstat_%63[^:]:calls=%lld,usec=%lld", name, &calls, &usec) != 3) continue;
        if (strcmp(name, "evalsha") == 0) {
            out->evalsha_calls = calls;
            out->evalsha_usec = usec;
        } else if (strcmp(name, "info") != 0) {
            out->other_calls += calls;
        }
    }
    if (r) freeReplyObject(r);
}

/* The Redis line of a run of `calls` calls: the script's time (Redis's
 * own, which counts preemption too on a busy machine) and CPU per call of
 * Redis, the server and the load generator. */
static void print_command_stats(const command_stats *before, const command_stats *after, uint64_t calls) {
    long long scripts = after->evalsha_calls - before->evalsha_calls;
    if (scripts > 0)
        printf("  %-30s Redis: %.1f us per script, %.1f commands per script\n", "",
               (double)(after->evalsha_usec - before->evalsha_usec) / (double)scripts,
               (double)(after->other_calls - before->other_calls) / (double)scripts);
    if (calls == 0) return;
    double per = 1e6 / (double)calls;
    printf("  %-30s CPU per call: Redis %.1f us, server %.1f us, load generator %.1f us\n", "",
           (after->redis_cpu_s - before->redis_cpu_s) * per, (after->server_cpu_s - before->server_cpu_s) * per,
           (after->self_cpu_s - before->self_cpu_s) * per);
}

/* A run's line, and its batch sizes below it (`batch` NULL: none). */
static void print_run(const char *label, const loadgen_result *r, const char *batch) {
    uint64_t ok = r->total.status[GRPC_STATUS_OK];
    printf("  %-30s %9.0f %9.2f %9.2f   %llu of %llu OK%s%s\n", label, r->calls_per_s, r->total.p50_us / 1000,
           r->total.p99_us / 1000, (unsigned long long)ok, (unsigned long long)r->total.calls,
           ok == r->total.calls ? "" : "; first error: ", ok == r->total.calls ? "" : r->first_error);
    if (batch) printf("  %-30s %s\n", "", batch);
}

/* One gRPC phase: the run, its line, its batch sizes and its Redis cost. */
static int measured(const options *o, bench *b, const char *method, const char *label, loadgen_request_fn fn,
                    const char *title, loadgen_result *res) {
    char batch[160];
    command_stats before, after;
    read_command_stats(b->admin, b->e.server, &before);
    if (run(o, b, method, label, fn, res, batch) != 0) return -1;
    read_command_stats(b->admin, b->e.server, &after);
    print_run(title, res, batch);
    print_command_stats(&before, &after, res->all_calls);
    return 0;
}

/* ---- memory and expiry, straight through volume.lua --------------------------------- */

static long long used_memory(redisContext *c) {
    redisReply *r = redisCommand(c, "INFO memory");
    const char *p = r && r->type == REDIS_REPLY_STRING ? r->str : NULL;
    long long v = p && (p = strstr(p, "used_memory:")) ? atoll(p + 12) : -1;
    if (r) freeReplyObject(r);
    return v;
}

static long long int_of(redisContext *c, const char *fmt, const char *arg) {
    redisReply *r = redisCommand(c, fmt, arg);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r) freeReplyObject(r);
    return v;
}

static int64_t redis_now(redisContext *c) {
    redisReply *r = redisCommand(c, "TIME");
    int64_t s = r && r->type == REDIS_REPLY_ARRAY ? atoll(r->element[0]->str) : 0;
    if (r) freeReplyObject(r);
    return s;
}

typedef struct filler {
    bench *b;
    long from, to; /* machine numbers */
    long failed;
} filler;

static void *fill(void *arg) {
    filler *f = arg;
    char url[256], err[256];
    redis_fixture_url(&f->b->e.a, "activation", url, sizeof url);
    rstore_config cfg = {.url = url};
    rstore *r = rstore_new(&cfg, false, err, sizeof err);
    int script = r ? volume_register(r) : -1;
    policy_limits limits;
    memset(&limits, 0, sizeof limits);
    policy_limits_set(&limits, 0, 1, 0, 1, 1);
    volume_caller c = {.group = G_MEMORY, .serial = 1, .address_key = "rl:a:bench", .limits = &limits};
    for (long i = f->from; script >= 0 && i < f->to; i++) {
        uint8_t m[32], rnd[LICENSE_RANDOM_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};
        machine_id(m, 9 * SPAN + (uint64_t)i);
        memcpy(rnd, &i, 4);
        volume_machine vm = {.machine_id = m};
        volume_result out;
        volume_activate(r, script, O_MEMORY, &c, &vm, rnd, &out);
        if (out.status != VOLUME_OK) f->failed++;
    }
    if (script < 0) f->failed = f->to - f->from;
    rstore_free(r);
    return NULL;
}

/* The wheel's bucket sets: count and MEMORY USAGE summed. */
static long long wheel_bytes(redisContext *c, long long *buckets) {
    char pattern[PA_RKEY_MAX + 2];
    pa_rkey_order_wheel_prefix(pattern, sizeof pattern - 1, O_MEMORY);
    strcat(pattern, "*");
    long long total = 0, cursor = 0;
    *buckets = 0;
    do {
        redisReply *r = redisCommand(c, "SCAN %lld MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY) break;
        cursor = atoll(r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++, (*buckets)++)
            total += int_of(c, "MEMORY USAGE %s SAMPLES 0", r->element[1]->element[i]->str);
        freeReplyObject(r);
    } while (cursor != 0);
    return total;
}

static int measure_memory_and_expiry(const options *o, bench *b) {
    char machines[PA_RKEY_MAX], wheel[PA_RKEY_MAX];
    pa_rkey_order_machines(machines, sizeof machines, O_MEMORY);
    pa_rkey_order_wheel(wheel, sizeof wheel, O_MEMORY);
    long long before = used_memory(b->admin);
    uint64_t t0 = pa_mono_ns();
    filler f[2] = {{b, 0, o->machines / 2, 0}, {b, o->machines / 2, o->machines, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, fill, &f[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    double fill_s = (double)(pa_mono_ns() - t0) / 1e9;
    int64_t last = redis_now(b->admin);
    long long after = used_memory(b->admin), buckets = 0;
    long long table = int_of(b->admin, "MEMORY USAGE %s SAMPLES 0", machines);
    long long wheel_sets = wheel_bytes(b->admin, &buckets), records = int_of(b->admin, "HLEN %s", machines);
    if (f[0].failed + f[1].failed) fprintf(stderr, "volume_load: %ld activations failed\n", f[0].failed + f[1].failed);
    printf("\nRedis memory per machine record (%lld machines of an unlimited order, activated in %.1f s):\n", records,
           fill_s);
    printf("  used_memory delta / machines:  %.1f B\n", (double)(after - before) / (double)records);
    printf("  machine table {o:S}:m:         %.1f B   (MEMORY USAGE / machines)\n", (double)table / (double)records);
    printf("  wheel: %lld bucket sets:       %.1f B   (MEMORY USAGE summed / machines)\n", buckets,
           (double)wheel_sets / (double)records);

    /* Stale: last contact + retention, plus one bucket width, has passed. */
    int width = o->retention_s / 30 > 1 ? o->retention_s / 30 : 1;
    int64_t due = last + o->retention_s + 2 * width + 1;
    printf("\nexpiring them: waiting %lld s until they are all stale ...\n", (long long)(due - redis_now(b->admin)));
    while (redis_now(b->admin) < due) usleep(200 * 1000);
    char url[256], err[256];
    redis_fixture_url(&b->e.a, "activation", url, sizeof url);
    rstore_config cfg = {.url = url, .command_timeout_ms = 10000};
    rstore *r = rstore_new(&cfg, false, err, sizeof err);
    int script = r ? volume_register(r) : -1;
    if (script < 0) return die("no connection for the sweep");
    volume_result res = {.more = true};
    long calls = 0, aged = 0;
    t0 = pa_mono_ns();
    while (res.more) {
        volume_sweep(r, script, O_MEMORY, VOLUME_SWEEP_MAX, &res);
        calls++;
        aged += res.aged;
        if (res.status != VOLUME_OK) break;
    }
    double ms = (double)(pa_mono_ns() - t0) / 1e6;
    rstore_free(r);
    long long left = int_of(b->admin, "HLEN %s", machines), zleft = int_of(b->admin, "ZCARD %s", wheel);
    printf("  %ld stale machines expired in %.0f ms: %ld sweep calls of at most %d, %.2f us per machine\n", aged, ms,
           calls, VOLUME_SWEEP_MAX, ms * 1000 / (double)(aged ? aged : 1));
    printf("  afterwards: %lld machines in the table, %lld wheel buckets, count %u\n", left, zleft, res.count);
    return res.status == VOLUME_OK ? 0 : die(res.error);
}

/* ---- main ----------------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f,
            "Usage: volume_load [--duration S] [--threads N] [--channels N] [--concurrency N] [--workers N]\n"
            "                   [--machines N] [--heartbeat-machines N] [--retention-s S] [--phase NAME]\n\n"
            "Starts Redis A/B and the activation server on loopback and prints, in one run: retail and volume\n"
            "Activate/s, concurrent-mode heartbeats (Renew)/s, then Deactivate/s of the same machines (each\n"
            "frees its seat once; the repeats are refused after the same proof check and script call), Redis\n"
            "bytes per machine record over --machines\n"
            "machines (default 100000), and the time to expire them all once stale (sweep calls until done).\n"
            "Beside each run: the server's batch sizes (pa_batch_calls) for its method, and Redis A's cost per\n"
            "script call (INFO commandstats: evalsha's microseconds, the commands each script ran) and the\n"
            "CPU per call of Redis A, the server and this process (the load generator).\n"
            "--phase runs one part alone (to profile it): retail, volume, match, heartbeat, deactivate or memory;\n"
            "the echo ceiling runs with each gRPC phase. Default: all.\n"
            "Defaults: 5 s runs, 1 thread, 2 channels, concurrency 64, 2 server workers, 2000 heartbeat\n"
            "machines, a retention of 30 s for the expiry figure.\n"
            "Exit codes: 0 figures printed; 1 something could not be set up or measured; 2 usage error.\n");
}

static bool phase_known(const char *p) {
    static const char *const known[] = {"all", "retail", "volume", "match", "heartbeat", "deactivate", "memory"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(p, known[i]) == 0) return true;
    return false;
}

/* Whether the run includes phase `p`. */
static bool runs(const options *o, const char *p) { return strcmp(o->phase, "all") == 0 || strcmp(o->phase, p) == 0; }

static int parse(int argc, char **argv, options *o) {
    static const struct option opts[] = {{"duration", required_argument, NULL, 'd'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"channels", required_argument, NULL, 'c'},
                                         {"concurrency", required_argument, NULL, 'n'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"machines", required_argument, NULL, 'm'},
                                         {"heartbeat-machines", required_argument, NULL, 'b'},
                                         {"retention-s", required_argument, NULL, 'r'},
                                         {"phase", required_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    *o = (options){.duration = 5,
                   .threads = 1,
                   .channels = 2,
                   .concurrency = 64,
                   .workers = "2",
                   .machines = 100000,
                   .heartbeat_machines = 2000,
                   .retention_s = 30,
                   .phase = "all"};
    for (int ch; (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (ch) {
        case 'd': o->duration = atof(optarg); break;
        case 't': o->threads = atoi(optarg); break;
        case 'c': o->channels = atoi(optarg); break;
        case 'n': o->concurrency = atoi(optarg); break;
        case 'w': o->workers = optarg; break;
        case 'm': o->machines = atol(optarg); break;
        case 'b': o->heartbeat_machines = atoi(optarg); break;
        case 'r': o->retention_s = atoi(optarg); break;
        case 'p': o->phase = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc || o->duration <= 0 || o->threads < 1 || o->threads > 8 || o->channels < 1 ||
        o->concurrency < 1 || o->machines < 2 || o->heartbeat_machines < o->threads || o->retention_s < 1 ||
        atoi(o->workers) < 1 || !phase_known(o->phase)) {
        fprintf(stderr, "volume_load: bad arguments\n\n");
        usage(stderr);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    options o;
    if (parse(argc, argv, &o) != 0) return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    grpc_init();
    static bench b;
    b.threads = o.threads;
    int rc = 1;
    size_t keys = (size_t)(o.duration + 2) * 20000 * (size_t)o.threads;
    if (world_start(&b, &o) != 0 || start_echo(&b) != 0 || (runs(&o, "retail") && make_retail_keys(&b, keys) != 0) ||
        ((runs(&o, "heartbeat") || runs(&o, "deactivate")) && prepare_heartbeats(&b, o.heartbeat_machines) != 0))
        goto out;
    printf(
        "activation server %s (pid %d, --workers %s), Redis A 127.0.0.1:%d; %.0f s per run, %d thread(s), %d "
        "channel(s), "
        "concurrency %d\n\n",
        b.e.target, (int)b.e.server, o.workers, b.e.a.port, o.duration, o.threads, o.channels, o.concurrency);
    printf("  %-30s %9s %9s %9s\n", "", "calls/s", "p50 ms", "p99 ms");
    loadgen_result retail = {0}, volume = {0}, heartbeat = {0}, deactivate = {0}, match_new = {0}, match_restart = {0},
                   echo = {0};
    if ((runs(&o, "retail") && measured(&o, &b, PA_RPC_ACTIVATE, PA_RPC_ACTIVATE_LABEL, build_retail,
                                        "retail Activate (new key)", &retail)) ||
        (runs(&o, "volume") && measured(&o, &b, PA_RPC_ACTIVATE, PA_RPC_ACTIVATE_LABEL, build_volume,
                                        "volume Activate (new machine)", &volume)) ||
        (runs(&o, "match") && (measured(&o, &b, PA_RPC_ACTIVATE, PA_RPC_ACTIVATE_LABEL, build_match_new,
                                        "K=3 Activate (no match)", &match_new) ||
                               measured(&o, &b, PA_RPC_ACTIVATE, PA_RPC_ACTIVATE_LABEL, build_match_restart,
                                        "K=3 Activate (re-bind)", &match_restart))) ||
        (runs(&o, "heartbeat") &&
         measured(&o, &b, PA_RPC_RENEW, PA_RPC_RENEW_LABEL, build_renew, "concurrent heartbeat (Renew)", &heartbeat)) ||
        (runs(&o, "deactivate") && measured(&o, &b, PA_RPC_DEACTIVATE, PA_RPC_DEACTIVATE_LABEL, build_deactivate,
                                            "Deactivate (freed once, then refused)", &deactivate)))
        goto out;
    if (strcmp(o.phase, "memory") != 0) {
        if (run_echo(&o, &b, &echo) != 0) goto out;
        print_run("bare echo (same runtime)", &echo, NULL);
    }
    if (retail.calls_per_s > 0 && volume.calls_per_s > 0)
        printf("  volume / retail Activate: %.2f\n", volume.calls_per_s / retail.calls_per_s);
    if (echo.calls_per_s > 0) {
        if (retail.calls_per_s > 0)
            printf("  ratio retail Activate/echo: %.2f\n", retail.calls_per_s / echo.calls_per_s);
        if (volume.calls_per_s > 0)
            printf("  ratio volume Activate/echo: %.2f\n", volume.calls_per_s / echo.calls_per_s);
        if (heartbeat.calls_per_s > 0)
            printf("  ratio heartbeat/echo: %.2f\n", heartbeat.calls_per_s / echo.calls_per_s);
        if (deactivate.calls_per_s > 0)
            printf("  ratio Deactivate/echo: %.2f\n", deactivate.calls_per_s / echo.calls_per_s);
    }
    rc = 0;
    if (!runs(&o, "memory")) goto out;
    rc = measure_memory_and_expiry(&o, &b) == 0 ? 0 : 1;
out:
    if (b.admin) redisFree(b.admin);
    if (b.echo > 0) fixture_stop(b.echo, SIGTERM, 20000);
    env_stop(&b.e);
    free(b.retail);
    free(b.renew);
    free(b.renew_len);
    free(b.deact);
    free(b.deact_len);
    grpc_shutdown();
    return rc;
}
