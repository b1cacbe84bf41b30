/* audit_certs.h -- extra certificates for the audit tests, made with the
 * OpenSSL library from the CA that scripts/make-certs.sh wrote (ca.pem and
 * ca.key in a directory): client certificates with chosen names, a server
 * certificate without "localhost", a CRL, a public-key pin.
 *
 * make-certs.sh makes the one client certificate a deployment needs; the
 * tests also need the ones an attacker or an operator would have: another
 * certificate from the same CA, a revoked one, and a CRL listing it. */
#ifndef PA_TEST_AUDIT_CERTS_H
#define PA_TEST_AUDIT_CERTS_H

#include <stdbool.h>

/* Writes DIR/NAME.pem and DIR/NAME.key: a P-256 certificate signed by the
 * CA of ca_dir with serial `serial`, common name `cn` (NULL: none) and
 * subject alternative names `san` in openssl's syntax ("DNS:a,URI:b,IP:c",
 * NULL: none); a server (serverAuth) or client (clientAuth) certificate.
 * Returns 0, or -1 with a message on stderr. */
int certs_make(const char *ca_dir, const char *dir, const char *name, const char *cn, const char *san, bool server,
               long serial);

/* Writes `out`: a PEM CRL signed by the CA of ca_dir listing the
 * certificates in the PEM files revoked[0..n), valid for next_update_s
 * seconds from now (negative: already past its nextUpdate). 0 or -1. */
int certs_make_crl(const char *ca_dir, const char *out, const char *const *revoked, int n, long next_update_s);

/* The base64 SHA-256 of the certificate's SubjectPublicKeyInfo (what
 * --allow-client-spki takes) into out. 0 or -1. */
int certs_spki_pin(const char *cert_path, char out[64]);

#endif
