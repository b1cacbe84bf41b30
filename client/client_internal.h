/* client_internal.h -- (internal) the pa_client handle, shared by client.c
 * (online calls, stored license) and offline.c (request / fulfil / install). */
#ifndef PA_CLIENT_INTERNAL_H
#define PA_CLIENT_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "activate.h"
#include "activation/v1/activation.pb-c.h"
#include "components.h"
#include "host_facts.h"
#include "license_verify.h"
#include "schedule.h"
#include "transport.h"

#define PA_HOSTNAME_MAX 253    /* what ActivateRequest.hostname allows */
#define PA_FACT_MAX 64         /* os, arch, client_version */

/* What the installer knows of its volume order (docs/volume.md) beside the
 * signed license: the last answer's VolumeStatus, or what the stored
 * license file kept of it. Shown to people and used for the schedule; the
 * license alone decides what is granted. */
typedef struct volume_view {
    char order_serial[16];       /* VolumeStatus.order_serial: a pending answer has no license to name it */
    uint32_t order_revision;     /* VolumeStatus.order_revision */
    char mode[16];               /* VolumeStatus.mode ("concurrent", ...) */
    volume_counts counts;        /* activation count, threshold, seats, seats used */
    int pending;                 /* VolumeStatus.pending of the last answer (0: a license came) */
    int64_t check_in_at;         /* when a pending machine asks again (the server's time) */
    bool deactivation_requested; /* STATE_DEACTIVATION_REQUESTED is there: awaiting the operator */
    bool deactivation_denied;    /* the last answer reported the operator's denial of that request */
} volume_view;

struct pa_client {
    char state_dir[PATH_MAX];          /* license, last server, request key */
    char **servers;                    /* explicit "host:port" list (copies) */
    size_t n_servers;
    char *srv_domain;                  /* SRV discovery domain, or NULL */
    char *dns_server;                  /* "IP:PORT" for SRV lookups, or NULL */
    bool mdns;                         /* browse the LAN when the above found nothing (mdns_browse.h) */
    int mdns_timeout_ms;               /* ... for this long */
    int timeout_ms;                    /* per call, per server */
    char client_version[PA_FACT_MAX + 1]; /* sent with Activate */
    char *tls_ca_pem;                  /* copies of the TLS options, or NULL */
    char *tls_target_name;
    char *product; /* the product (and edition) licenses must name, or NULL */
    char *edition;
    bool insecure;            /* plain text: pa_options.insecure */
    int64_t max_clock_skew_s; /* pa_options.max_clock_skew_s (clock_guard.h) */
    int64_t clock_offset_s;   /* pa_options.clock_offset_s: tests turn the clock with it */
    int connect_timeout_ms;   /* per server, before the call */

    vendor_keys keys;                  /* license-verification keys; n == 0: none configured */
    uint8_t machine_id[PA_MACHINE_ID_LEN]; /* this machine */
    char machine_id_hex[2 * PA_MACHINE_ID_LEN + 1];
    const char *machine_source;        /* "dmi" | "mac" | "machine-id" | "" */
    char machine_digest[33];           /* hex of SHA-256(machine id)[0..16]: the name operators see */
    host_facts facts;                  /* host serial and MACs, sent for orders that collect them */
    components comps;                  /* hashed hardware components: a place follows a changed machine id */
    char machine_err[256];             /* why the machine id is unknown, when it is */

    transport *net;                    /* NULL until the first network call */
    int64_t discovered_at;             /* when the server list was built (SRV is re-read) */
    char server[300];                  /* the server that answered last */
    int retry_after_s;                 /* retry-after of the last answer */
    char reason[32];                   /* its "error-reason" trailer, or "" */
    char error[512];                   /* message of the last failure (pa_error) */

    Activation__V1__License *lic;      /* the license the last call handled, verified */
    unsigned activation_count;         /* from the last server answer or stored file */
    bool rebound;                      /* the last Activate moved this machine's earlier place (components) */
    int64_t grace_left;                /* seconds of grace left at the last load; 0: not in grace */
    volume_view vol;                   /* volume orders only; zero otherwise */

    char request_fp[24];               /* fingerprint of the last offline request written or read */

    schedule_state sched;              /* last attempt, failure, retry-after */
    uint32_t jitter;                   /* random number for the current schedule; re-rolled per attempt */
    uint64_t rng;                      /* xorshift state for SRV order and jitter */
};

/* Sets c->error (printf style) and returns `e`. */
pa_err client_fail(pa_client *c, pa_err e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Finds the servers (discovery) and connects to one: PA_OK when a server
 * is reachable, PA_ERR_UNAVAILABLE (discovery or every connection failed;
 * the next try discovers again) or PA_ERR_CONFIG. */
pa_err client_reach(pa_client *c);

/* PA_OK when the machine id and vendor keys this call needs are there. */
pa_err client_need_machine(pa_client *c);
pa_err client_need_keys(pa_client *c);

/* hostname, os ("Linux 6.1.0"), arch ("x86_64"), printable and truncated to
 * what the server accepts. */
void client_describe_machine(char host[PA_HOSTNAME_MAX + 1], char os[PA_FACT_MAX + 1],
                             char arch[PA_FACT_MAX + 1]);

/* Sends an Activate for `key` (canonical) on behalf of `machine_id`, whose
 * place is to be bound to `place_key` (32 bytes), with the volume facts
 * `facts` (NULL: none) and the machine's hashed components `comps`; on
 * success *out holds the license bytes (not yet verified) and c->rebound
 * what the server said. A volume answer without a license is
 * PA_ERR_PENDING. */
pa_err client_call_activate(pa_client *c, const char *key, const uint8_t machine_id[PA_MACHINE_ID_LEN],
                            const uint8_t *place_key, const char *hostname, const char *os, const char *arch,
                            const char *client_version, const host_facts *facts, const components *comps,
                            signed_license *out);

/* Verifies `s` for `machine_id` (and the configured product) and makes it
 * the handle's current license. `what` names the source in messages ("the
 * server's license"). */
pa_err client_accept(pa_client *c, const signed_license *s, const uint8_t machine_id[PA_MACHINE_ID_LEN],
                     const char *what);

/* One call to the servers (with failover): maps the status and its
 * "error-reason" to a pa_err, keeps the server, reason and retry-after in
 * the handle and the message in c->error. `res` holds the answer (free
 * with rpc_result_clear). */
pa_err client_call(pa_client *c, const char *path, const ProtobufCMessage *msg, rpc_result *res);
/* Judges the license just loaded into c->lic at the time the client trusts
 * (clock_guard.h): PA_OK (inside the grace period too: c->grace_left and a
 * note in c->error), PA_ERR_EXPIRED once the grace has ended, PA_ERR_CLOCK
 * when the clock is wrong. */
pa_err client_judge(pa_client *c);

/* Writes `s` as this machine's stored license (caller holds the lock). */
pa_err client_store(pa_client *c, const signed_license *s);

/* Reads an offline request's text exactly as `fulfil` does (signature
 * first, then every field); on PA_OK the canonical key and the machine id
 * it names. Separate from pa_fulfil, which also calls the server, so the
 * parser can be fuzzed (tests/fuzz/fuzz_offline.c). */
pa_err offline_request_parse(pa_client *c, const char *text, char key[PA_KEY_TEXT_LEN + 1],
                             uint8_t machine_id[PA_MACHINE_ID_LEN]);

/* ---- volume orders (volume.c) ---- */

/* Copies an answer's VolumeStatus (NULL: none) into c->vol. */
void volume_take(pa_client *c, const Activation__V1__VolumeStatus *v);
/* PA_ERR_PENDING with a message giving the count and threshold, or saying
 * the machine waits to be designated, when the last answer was pending;
 * else PA_OK. */
pa_err volume_pending(pa_client *c);
/* After a granted Activate or Renew: a denied deactivation request is
 * cleared (with a note in c->error), one still awaited is recorded. */
pa_err volume_after_grant(pa_client *c);
/* A Deactivate the operator must approve: recorded; PA_ERR_PENDING. */
pa_err volume_deactivation_awaits(pa_client *c);
/* The server answered DEACTIVATED (the license is already removed):
 * records that the operator ended this machine's activation, so the daemon
 * does not activate it again on its own; PA_ERR_DEACTIVATED with why. */
pa_err volume_deactivated(pa_client *c);
/* Whether the state directory holds the record `name` (STATE_DEACTIVATED,
 * STATE_DEACTIVATION_REQUESTED). */
bool volume_record_exists(const pa_client *c, const char *name);
/* Removes it (absent is fine). PA_OK or PA_ERR_IO. */
pa_err volume_record_remove(pa_client *c, const char *name);

/* A uniform random number from the handle's generator. */
uint32_t client_random(pa_client *c);

#endif
