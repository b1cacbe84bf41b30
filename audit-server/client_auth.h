/* client_auth.h -- which mTLS clients may call the audit server.
 *
 * The TLS handshake already proved that the client's certificate chains to
 * --tls-client-ca. On its own that lets every certificate the CA ever
 * signed call the API, and a stolen one can submit records with wrong
 * second values and so get genuine customers' keys revoked. This module
 * narrows the set of callers, checked before a handler does any work:
 *   - allow-list: --allow-client NAME matches a subject alternative name of
 *     type DNS or URI, or the common name, exactly; --allow-client-spki PIN
 *     matches the base64 SHA-256 of the certificate's SubjectPublicKeyInfo
 *     (survives re-issuing a certificate for the same key, and nothing else
 *     of the certificate can be forged to match). A caller is allowed when
 *     any rule matches. With no rule at all every chained certificate is
 *     allowed, as before; the server warns about that at start.
 *   - revocation: --tls-client-crl FILE holds one or more PEM CRLs. Each must
 *     be signed by a CA of the --tls-client-ca bundle (checked at start, so
 *     a wrong file stops the server instead of revoking nothing). A
 *     certificate listed by a CRL of its issuer is refused even when it is
 *     on the allow-list. A CRL past its nextUpdate still applies (it still
 *     names what was revoked); the server warns at start. The CRL is read
 *     once: after replacing the file, restart the audit server (SIGTERM
 *     drains; activation servers reconnect by themselves).
 *
 * A connection presents the same certificate on every call, so decisions
 * are made once per certificate and kept in a small per-worker cache keyed
 * by the SHA-256 of the certificate's PEM text: a call costs one digest of
 * about 700 bytes, not a parse. The cache needs no lock (one per worker)
 * and no expiry (the rules never change while the server runs). */
#ifndef PA_AUDIT_CLIENT_AUTH_H
#define PA_AUDIT_CLIENT_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "rpc_server.h"

typedef enum client_verdict {
    CLIENT_ALLOWED = 0,
    CLIENT_NOT_ALLOWED,    /* chains to the CA but matches no allow rule */
    CLIENT_REVOKED,        /* listed by a CRL of its issuer */
    CLIENT_NO_CERTIFICATE, /* no client certificate in the auth context */
    CLIENT_VERDICTS
} client_verdict;

/* The rules, shared read-only by every worker. */
typedef struct client_auth client_auth;

/* Builds the rules. `names` and `pins` may be empty; `crl_pem` may be NULL;
 * `ca_pem` is the --tls-client-ca bundle the CRLs must be signed by. NULL
 * with a message naming the bad value in err (a pin that is not base64 of
 * 32 bytes, a name that is empty, a CRL that does not parse or that no CA
 * of the bundle signed). *stale_crl is set when a CRL's nextUpdate passed. */
client_auth *client_auth_new(const char *const *names, size_t n_names, const char *const *pins, size_t n_pins,
                             const char *crl_pem, const char *ca_pem, bool *stale_crl, char *err, size_t errlen);
void client_auth_free(client_auth *a);

/* True when an allow-list is configured (else every chained certificate passes it). */
bool client_auth_restricted(const client_auth *a);
/* Number of CRLs loaded. */
size_t client_auth_crls(const client_auth *a);

/* One worker's cache of decisions. */
typedef struct client_auth_cache client_auth_cache;
client_auth_cache *client_auth_cache_new(const client_auth *a);
void client_auth_cache_free(client_auth_cache *c);

/* The decision for the call's client certificate. `who` receives the names
 * the certificate carries (CN and DNS/URI SANs, for the log; truncated);
 * *first is true when this worker decided about this certificate for the
 * first time (log refusals loudly once, then quietly). */
client_verdict client_auth_check(client_auth_cache *c, rpc_ctx *ctx, char *who, size_t wholen, bool *first);

/* "allowed", "not_allowed", "revoked", "no_certificate": metric labels and log values. */
const char *client_verdict_name(client_verdict v);

#endif
