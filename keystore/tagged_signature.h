/* tagged_signature.h -- Ed25519 signatures over "TAG || 0x00 || bytes".
 *
 * Volume licensing signs three kinds of data with keys that installers and
 * vendors must tell apart: the vendor's order-signing key signs orders, an
 * on-premises server's delegated key signs usage reports (and licenses, which
 * keep the untagged format of every other license). Prefixing a tag makes a
 * signature over one kind useless as a signature over another, even when the
 * same key pair ends up in both roles. The vendor signs and the server, the
 * installer and the vendor's import verify, so the message is built here,
 * once. In pa_keyformat because the installer library links it (OpenSSL
 * only). */
#ifndef PA_TAGGED_SIGNATURE_H
#define PA_TAGGED_SIGNATURE_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TAGGED_SIG_LEN 64       /* Ed25519 */
#define TAGGED_KEY_LEN 32       /* raw Ed25519 public key */
#define TAG_ORDER "pa-order-v1" /* SignedOrder.signature over Order bytes */
#define TAG_USAGE "pa-usage-v1" /* UsageReport.signature over the report JSON */

/* Signs TAG || 0x00 || data with an Ed25519 private key. 0, or -1 (not an
 * Ed25519 key, out of memory, OpenSSL failure). */
int tagged_sign(EVP_PKEY *key, const char *tag, const uint8_t *data, size_t len, uint8_t sig[TAGGED_SIG_LEN]);

/* True when `sig` (sig_len must be TAGGED_SIG_LEN) is `key`'s signature
 * over TAG || 0x00 || data. */
bool tagged_verify(EVP_PKEY *key, const char *tag, const uint8_t *data, size_t len, const uint8_t *sig, size_t sig_len);
/* The same with a raw 32-byte public key (an order's delegated_key). */
bool tagged_verify_raw(const uint8_t *key, size_t key_len, const char *tag, const uint8_t *data, size_t len,
                       const uint8_t *sig, size_t sig_len);

#endif
