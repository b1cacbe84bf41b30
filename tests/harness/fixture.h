/* fixture.h -- what integration tests start for real: private redis-server
 * instances on free loopback ports (with the production ACL users), and our
 * own daemons as child processes.
 *
 * Also the small helpers several test environments and the benchmark
 * share: authenticated Redis connections, KEK files, test certificates,
 * and reading a daemon's /metrics.
 *
 * Nothing is mocked. Every fixture lives in its own temporary directory and
 * is torn down by the matching stop call (and killed if the test dies:
 * children get PR_SET_PDEATHSIG). */
#ifndef PA_TEST_FIXTURE_H
#define PA_TEST_FIXTURE_H

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "secret_wrap.h"

/* Test passwords of the ACL users (docker/redis/activation.acl.in and
 * audit.acl.in hold the rules). */
#define FIXTURE_PW_KEYSTORE "test-keystore-pw"
#define FIXTURE_PW_ACTIVATION "test-activation-pw"
#define FIXTURE_PW_AUDIT "test-audit-pw"
#define FIXTURE_PW_ADMIN "test-admin-pw"
/* A replicated store's own users (docker/redis/ha.acl.in) and the
 * sentinels' requirepass (docker/redis/sentinel.conf.in). */
#define FIXTURE_PW_REPLICA "test-replica-pw"
#define FIXTURE_PW_SENTINEL "test-sentinel-pw"
#define FIXTURE_PW_SENTINELS "test-sentinels-pw"

typedef enum fixture_store {
    FIXTURE_STORE_ACTIVATION, /* Redis A: users keystore, activation, admin */
    FIXTURE_STORE_AUDIT,      /* Redis B: users keystore, audit */
} fixture_store;

typedef struct redis_fixture {
    fixture_store kind;
    int port;
    pid_t pid;
    char dir[256];              /* temp dir with redis.conf, users.acl, AOF */
    bool ha;                    /* a node of a Sentinel setup: ha.acl.in users, masteruser */
    int primary_port;           /* ha: the primary it replicates; 0 for the primary itself */
    const char *extra_conf;     /* while starting: lines appended to redis.conf (a cluster node's) */
    const char *extra_acl;      /* while starting: lines appended to users.acl */
} redis_fixture;

/* Starts redis-server with AOF on, `default` user disabled and the ACL users
 * of `kind`. Returns 0 or -1 (message on stderr). */
int redis_fixture_start(redis_fixture *f, fixture_store kind);
/* The same as a node of a Sentinel setup: the users of ha.acl.in are added
 * and it authenticates to its primary as `replica`; primary_port 0 starts
 * the primary, otherwise a replica of the node on that port. */
int redis_fixture_start_ha(redis_fixture *f, fixture_store kind, int primary_port);
/* The same with `conf` appended to redis.conf and `acl` to users.acl
 * (either may be NULL): a node of a Redis Cluster (cluster_fixture.h). */
int redis_fixture_start_extra(redis_fixture *f, fixture_store kind, const char *conf, const char *acl);
/* Stops it (SIGTERM, then SIGKILL) and removes its directory. */
void redis_fixture_stop(redis_fixture *f);
/* Stops the process but keeps its data, and starts it again on the same port. */
int redis_fixture_pause(redis_fixture *f);
int redis_fixture_resume(redis_fixture *f);
/* Resumes a node of a Sentinel setup as a replica of the primary on
 * primary_port, as a supervisor that asks the sentinels first would. */
int redis_fixture_resume_replica(redis_fixture *f, int primary_port);

/* "redis://USER:PASSWORD@127.0.0.1:PORT" for one of the ACL users. */
void redis_fixture_url(const redis_fixture *f, const char *user, char *buf, size_t n);
/* A new connection authenticated as `user`; NULL (message on stderr) if the
 * server is unreachable or refuses AUTH. */
redisContext *redis_fixture_connect(const redis_fixture *f, const char *user, const char *password);
/* How often Redis has run `command` (lower case, e.g. "evalsha") since its
 * statistics were reset (INFO commandstats; 0 if never), or -1 when the
 * connection cannot ask (it needs @dangerous: a measuring user). */
long long redis_fixture_command_calls(redisContext *c, const char *command);
/* From the text of an INFO commandstats reply (NULL: none): `command`'s
 * calls and microseconds (0 when absent), and every command's calls
 * summed -- a script's own redis.call's are counted by their names too. */
void redis_info_command_stats(const char *info, const char *command, double *calls, double *usec);
double redis_info_all_calls(const char *info);
/* SCRIPT FLUSH: Redis forgets every loaded script. 0 or -1. */
int redis_fixture_script_flush(redisContext *c);

/* Copies template `in` to `out`, dropping '#' lines when `strip_comments`,
 * and replacing each @NAME@ of `subst` (pairs, NULL-terminated). Returns 0
 * or -1 (message on stderr). */
int fixture_render(const char *in, const char *out, int strip_comments, const char *const *subst);
/* PA_SOURCE_DIR (the repository), for templates such as docker/redis/. */
const char *fixture_source_dir(void);

/* A temporary directory for a test (removed by fixture_rmtree). */
int fixture_tmpdir(char *buf, size_t n, const char *tag);
void fixture_rmtree(const char *dir);

/* Runs argv (argv[0] a path) with stdout/stderr captured into malloc'd
 * strings (may be NULL to discard). Returns the exit status, or -1.
 * In a cross build, programs of the build tree run under PA_TEST_EMULATOR
 * (here and in fixture_spawn). */
int fixture_run(char *const argv[], char **out, char **err);

/* Starts a daemon in the background with stderr to `log_path`; waits until
 * `port` on 127.0.0.1 accepts TCP connections (up to timeout_ms). Returns
 * the pid, or -1. */
pid_t fixture_spawn(char *const argv[], const char *log_path, int port, int timeout_ms);
/* Sends `sig`, waits for exit; returns the exit status (or 128+signal). */
int fixture_stop(pid_t pid, int sig, int timeout_ms);

/* A free TCP port on 127.0.0.1 outside the ephemeral range. */
int fixture_free_port(void);

/* Creates a new key-encryption key file `dir`/`name` (its path into
 * path/n) and loads it into `kek`. Returns 0 or -1 (message on stderr). */
int fixture_make_kek(const char *dir, const char *name, char *path, size_t n, uint8_t kek[KEK_LEN]);

/* Runs scripts/make-certs.sh into `dir` (CA, server and client certificates
 * for TLS and mutual TLS). Returns 0 or -1 (message on stderr). */
int fixture_make_certs(const char *dir);

/* GET http://HOST:PORT/PATH over HTTP/1.0 (HOST an IPv4 literal, e.g. a
 * daemon's --metrics-listen). Returns the malloc'd body, or NULL. */
char *fixture_http_get(const char *host, int port, const char *path);
/* The value of the line "SERIES VALUE" in Prometheus text (SERIES is
 * name{labels} exactly as printed), or `absent` when there is none. */
double fixture_metric(const char *text, const char *series, double absent);

/* Absolute path of a built program, from the PA_BUILD_DIR environment
 * variable ctest sets, e.g. fixture_bin("keystore/keystore"). One buffer per thread. */
const char *fixture_bin(const char *rel);

/* Tests check what the activation server signed themselves; installers do
 * it with the client library (client/license_verify.c). An Ed25519 public
 * key from PEM (NULL and a message on stderr), and whether `sig` is its
 * signature over `body`. */
EVP_PKEY *fixture_public_key_load(const char *pem_path);
bool fixture_signature_ok(EVP_PKEY *pub, const uint8_t *body, size_t body_len, const uint8_t *sig,
                          size_t sig_len);
/* Whether `sig` signs the batch tree (merkle.h) in which `body` is leaf
 * `index` of `size` with sibling hashes `path` (32 bytes each): what an
 * Activate or Renew answer carries. */
bool fixture_license_ok(EVP_PKEY *pub, const uint8_t *body, size_t body_len, const uint8_t *sig, size_t sig_len,
                        uint32_t index, uint32_t size, const ProtobufCBinaryData *path, size_t n_path);

#endif
