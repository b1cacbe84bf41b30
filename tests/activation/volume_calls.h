/* volume_calls.h -- what the volume tests do over and over: make and
 * import an order, run `activation-server order ...`, and call Activate,
 * Renew and Deactivate for numbered machines (env_machine) with numbered
 * place keys (env_place_key), keeping the answer's status, error-reason,
 * retry-after and decoded license.
 *
 * The calls go to one act_env and order_env, set once by volume_calls_init,
 * so the tests read as the sequence of calls they make. */
#ifndef TEST_VOLUME_CALLS_H
#define TEST_VOLUME_CALLS_H

#include <stdbool.h>

#include "act_env.h"
#include "order_env.h"
#include "volume_policy.h"

/* The environment every call below uses. */
void volume_calls_init(act_env *e, order_env *o);

/* `keystore order create` with the common terms (product Office, edition
 * Enterprise, features editor,mail, valid from 2020-01-01 until 2099-12-31
 * unless `extra` names --valid-until) and `extra`, then `order import` as
 * the vendor-hosted server, then waits for the workers' order caches. */
void order(const char *serial, unsigned group, const char *mode, const char *seats, const char *const *extra);
/* `activation-server order ARGS...` as the server's own user; returns the exit status. */
int order_cmd(const char *const *args, char **out);

typedef struct machine_ask {
    const char *os, *arch, *host_serial; /* sent as given (NULL: empty) */
    const char *mac;                     /* one MAC address, or NULL */
    /* ActivateRequest.components, "name=value" each (NULL-terminated; NULL:
     * none): the digest sent is SHA-256 of that text, as stable as a value. */
    const char *const *components;
} machine_ask;

typedef struct grant {
    grpc_status_code status;
    char license_id[64];
    char reason[64];                        /* error-reason, when refused */
    int retry_after;                        /* retry-after, when refused */
    Activation__V1__ActivateResponse *resp; /* on OK */
    Activation__V1__License *lic;           /* on OK with a license */
} grant;

void grant_free(grant *g);
/* Activate machine n with `key` and place key k over channel `ch`. */
grant activate_on(rpc_channel *ch, const char *key, unsigned n, unsigned k, const machine_ask *ask);
/* The same on the env's channel, place key n. */
grant activate(const char *key, unsigned n);

/* Renew or Deactivate of machine n's license, proven with place key k. */
typedef struct license_call {
    grpc_status_code status;
    char reason[64];                           /* error-reason, when refused */
    Activation__V1__RenewResponse *renew;      /* on OK of a Renew */
    Activation__V1__DeactivateResponse *deact; /* on OK of a Deactivate */
} license_call;

license_call by_license(const char *path, const char *license_id, unsigned n, unsigned k);
void license_call_free(license_call *c);
/* A Renew's status; reason and deactivation (the VolumeStatus's, -1 if
 * none) may be NULL. */
grpc_status_code renew_status(const char *license_id, unsigned n, unsigned k, char reason[64], int deactivation[1]);

/* An order gauge (pa_order_*{order="SERIAL"}) from /metrics, or -1. */
double gauge(const char *name, const char *serial);
/* Machine n's digest as the machine table names it (lowercase hex). */
void digest_hex(unsigned n, char hex[2 * VOLUME_DIGEST_LEN + 1]);
/* Polls until the gauge reads `want` or `ms` pass; returns the last value. */
double gauge_wait(const char *name, const char *serial, double want, int ms);

#endif
