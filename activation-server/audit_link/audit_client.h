/* audit_client.h -- the activation server's mutual-TLS channel to the audit
 * server, with the three calls it makes.
 *
 * One client per process; it is thread-safe (rpc_call gives each calling
 * thread its own completion queue), so activation workers call Verify while
 * the forwarder Submits and the puller lists revocations on the same
 * channel. Every call carries a deadline: Verify's is short because a
 * customer is waiting on it, and its failure is an answer the caller acts
 * on (the group's audit_unreachable policy), never a hang.
 *
 * After an outage gRPC would retry the connection with a backoff growing to
 * two minutes; the client instead replaces a channel that reports
 * TRANSIENT_FAILURE (at most once a second), so calls succeed again within
 * about a second of the audit server's return. */
#ifndef PA_AUDIT_CLIENT_H
#define PA_AUDIT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit_record.h"

typedef struct audit_client_config {
    const char *target;               /* audit server "host:port" */
    const char *ca_file;              /* CA of the audit server's certificate (PEM path) */
    const char *cert_file;            /* this server's client certificate (PEM path) */
    const char *key_file;             /* and its private key */
    const char *target_name_override; /* name checked in the server's certificate; NULL: the
                                       * host of `target` (audit_target_host) */
    const char *origin;               /* sent in every record: which activation server this is */
    int verify_timeout_ms;            /* default 300 */
    int submit_timeout_ms;            /* default 5000 */
    int list_timeout_ms;              /* default 2000 */
} audit_client_config;

typedef struct audit_client audit_client;

typedef enum audit_verify_result {
    AUDIT_VERIFY_GENUINE = 1,         /* both values pass: grant */
    AUDIT_VERIFY_FORGED = 2,          /* the audit server revoked the key: refuse */
    AUDIT_VERIFY_UNAVAILABLE = 3,     /* no verdict in time (down, deadline, TLS, store) */
} audit_verify_result;

#define AUDIT_LOG_ID_MAX 64 /* longest epoch or entry_id accepted from the server */

typedef struct audit_revocation {
    uint64_t sequence; /* strictly increasing from 1 (within one epoch) */
    uint32_t group;
    uint32_t serial;
    char entry_id[AUDIT_LOG_ID_MAX + 1]; /* random per entry; "" for old entries */
} audit_revocation;

/* One ListRevocations answer (audit.proto says how to follow the log). */
typedef struct audit_revocation_page {
    audit_revocation *entries; /* malloc'd: audit_revocation_page_free */
    size_t n;
    uint64_t last_sequence;                    /* highest sequence in the log */
    char epoch[AUDIT_LOG_ID_MAX + 1];          /* the log's identity; "" before its first epoch */
    bool after_found;                          /* the log holds the entry at the `after` asked for */
    char after_entry_id[AUDIT_LOG_ID_MAX + 1]; /* and that entry's id */
} audit_revocation_page;

/* The host part of an audit target -- "host:port", "[v6]:port", or the
 * same behind a "dns:///", "dns:", "ipv4:" or "ipv6:" scheme -- into out,
 * without brackets: the name the audit server's certificate must carry
 * unless --audit-server-name says otherwise. 0, or -1 when the target has
 * no host (e.g. "unix:"), is malformed or does not fit. */
int audit_target_host(const char *target, char *out, size_t n);

/* Reads the PEM files and opens the channel (connects lazily). NULL + err
 * (also when the target has no host and no target_name_override is given). */
audit_client *audit_client_new(const audit_client_config *cfg, char *err, size_t errlen);
/* The name the audit server's certificate is checked against. */
const char *audit_client_server_name(const audit_client *c);
void audit_client_free(audit_client *c);

/* Online audit of one request within verify_timeout_ms. `detail` (may be
 * NULL) receives the server's reason or the transport error. */
audit_verify_result audit_client_verify(audit_client *c, const audit_record *r, char *detail,
                                        size_t detail_len);
/* The same within timeout_ms (what is left of the caller's budget). */
audit_verify_result audit_client_verify_within(audit_client *c, const audit_record *r, int timeout_ms, char *detail,
                                               size_t detail_len);
/* verify_timeout_ms as configured (default applied). */
int audit_client_verify_timeout_ms(const audit_client *c);

/* Offline audit: sends a batch; returns 0 once the audit server stored every
 * record (counts in *accepted / *duplicates), or -1 with err. */
int audit_client_submit(audit_client *c, const audit_record *recs, size_t n, uint32_t *accepted,
                        uint32_t *duplicates, char *err, size_t errlen);

/* The revocation log after `after` (at most `limit`, 0 = server default),
 * with the log's epoch and the check of the entry at `after`. Returns 0
 * (free the page with audit_revocation_page_free) or -1 with err. */
int audit_client_list_revocations(audit_client *c, uint64_t after, uint32_t limit, audit_revocation_page *out,
                                  char *err, size_t errlen);
void audit_revocation_page_free(audit_revocation_page *p);
/* A page the puller can follow: sequences strictly increasing from above
 * `after`, none past last_sequence. A server that breaks this (a bug, or a
 * restored backup mid-page) would otherwise keep the puller asking for the
 * same page for ever. 0, or -1 with err; audit_client_list_revocations
 * applies it to every page. */
int audit_revocation_page_check(const audit_revocation_page *p, uint64_t after, char *err, size_t errlen);

/* The part of audit_client_list_revocations after the call: a
 * ListRevocationsResponse's bytes into entries (same outputs). No I/O, so
 * the fuzzer can drive it (tests/fuzz/fuzz_revocations.c). */
int audit_revocations_decode(const uint8_t *body, size_t len, audit_revocation_page *out, char *err, size_t errlen);

#endif
