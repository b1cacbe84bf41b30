/* audit_env.h -- what the audit tests stand up for real: Redis A and Redis B
 * with their production ACL users, KEKs, certificates made by
 * scripts/make-certs.sh (a second, unrelated CA too), groups created by the
 * keystore library in both stores, and the audit-server binary. */
#ifndef PA_TEST_AUDIT_ENV_H
#define PA_TEST_AUDIT_ENV_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit_client.h"
#include "fixture.h"
#include "group.h"
#include "keycodec.h"

typedef struct audit_env {
    char dir[256];                /* temp dir: certs/, other/, KEKs, logs */
    char certs[300];              /* the real CA and certificates */
    char other[300];              /* an unrelated CA with its own client certificate */
    redis_fixture a, b;           /* Redis A (activation store), Redis B (audit store) */
    char kek_a[320], kek_b[320];  /* KEK files */
    uint8_t kek_a_bytes[32], kek_b_bytes[32];
    redisContext *ks_a, *ks_b;    /* keystore user on each store */
    redisContext *act_a;          /* activation user on Redis A */
    redisContext *audit_b;        /* audit user on Redis B */
    int port;                     /* audit server gRPC port */
    int metrics_port;             /* audit server metrics port */
    char target[64];              /* "127.0.0.1:port" */
    pid_t server;                 /* audit-server pid, -1 when not running */
    char log_path[320];           /* audit-server stderr */
} audit_env;

/* Stores, KEKs and certificates. */
int env_start(audit_env *e);
/* The audit server (same ports across restarts). */
int env_start_server(audit_env *e);
/* The same with more options (NULL-terminated; later ones override). */
int env_start_server_with(audit_env *e, const char *const *extra);
/* Stops it with `sig`; returns its exit status (128+n for a signal). */
int env_stop_server(audit_env *e, int sig);
void env_stop(audit_env *e);

int env_create_group(audit_env *e, uint32_t id);
/* The same, with `tune` changing the record (policy, ...) before it is written. */
int env_create_group_with(audit_env *e, uint32_t id, void (*tune)(group_record *));
/* A key of `group` with the right first value and the right second value,
 * or (genuine == false) a wrong second value. */
int env_make_key(audit_env *e, uint32_t group, uint32_t serial, bool genuine, pk_fields *fields,
                 char text[PK_TEXT_LEN + 1]);

/* A client with the certificates in `certdir` (e->certs or e->other). */
audit_client *env_client(audit_env *e, const char *certdir);
/* A client with the certificate DIR/NAME.pem and key DIR/NAME.key. */
audit_client *env_client_named(audit_env *e, const char *dir, const char *name);

/* Trail statistics from Redis B: entries, and how many request_ids occur
 * more than once among entries of `source` (NULL = any). */
long env_trail_count(audit_env *e, const char *source, long *dup_ids);
long long env_int(redisContext *c, const char *fmt, ...);
/* Keys matching a glob pattern (SCAN: the ACL users may not run KEYS). */
long env_count_keys(redisContext *c, const char *pattern);
/* Request ids the audit server remembers (PA_RKEY_AUDIT_REQUEST_FMT keys). */
long env_request_keys(audit_env *e);

/* Redis B's revocation log as a backup taken before its last `drop`
 * revocations would have it: entries, counter, revoked index and the
 * stream's last ID go back; the epoch stays (the backup had it too). */
int env_audit_log_back(audit_env *e, int drop);
/* Redis B's revocation log gone entirely: log, counter, index and epoch. */
int env_audit_log_wipe(audit_env *e);

/* Waits until pred(arg) is true, polling every 20 ms up to timeout_ms. */
bool env_wait(bool (*pred)(void *), void *arg, int timeout_ms);
void env_sleep_ms(int ms);

#endif
