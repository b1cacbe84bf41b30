/* mac_registry.h -- the algorithms that turn a secret and a key's identity
 * into security values, looked up by the numeric ID a group's verification
 * record names (docs/key-format.md). A new algorithm is a new entry here; no
 * validator changes.
 *
 * Identity encoding (11 bytes, fixed, documented in docs/key-format.md):
 *   byte 0     format version, 0x01
 *   byte 1     role: 0x01 first security value, 0x02 second
 *   bytes 2-5  group ID, big-endian
 *   bytes 6-9  serial, big-endian
 *   byte 10    upgrade flag, 0 or 1
 * SV = the first 40 (first) or 13 (second) bits, big-endian, of
 *      MAC(secret, identity).
 *
 * Keys (mac_key) are prepared once per group and reused for every call, so
 * the per-call cost is the MAC itself. A mac_key is not thread-safe: give
 * each thread its own (mac_key_dup). */
#ifndef PA_MAC_REGISTRY_H
#define PA_MAC_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAC_SECRET_LEN 32      /* bytes of every group secret */
#define MAC_IDENTITY_LEN 11

typedef enum mac_alg {
    MAC_ALG_HMAC_SHA256 = 1,
    MAC_ALG_AES256_CMAC = 2,
} mac_alg;

typedef enum mac_role {
    MAC_ROLE_FIRST = 1,   /* 40 bits, activation server */
    MAC_ROLE_SECOND = 2,  /* 13 bits, audit server */
} mac_role;

typedef struct mac_key mac_key;   /* opaque: an initialised EVP_MAC context */

/* True if `alg` names an algorithm this build knows. */
bool mac_alg_known(int alg);
/* "hmac-sha256", "aes256-cmac", or NULL. */
const char *mac_alg_name(int alg);
/* Parses a name or number; returns 0 if unknown. */
int mac_alg_parse(const char *s);

/* Prepares `secret` (MAC_SECRET_LEN bytes for group secrets) for `alg`.
 * AES-256-CMAC takes exactly 32 bytes; HMAC-SHA256 takes any non-empty
 * length (published test vectors use other lengths). NULL on failure. */
mac_key *mac_key_new(int alg, const uint8_t *secret, size_t secret_len);
mac_key *mac_key_dup(const mac_key *k);
void mac_key_free(mac_key *k);

/* Builds the identity bytes described above. */
void mac_identity(uint8_t out[MAC_IDENTITY_LEN], mac_role role, uint32_t group,
                  uint32_t serial, bool upgrade);

/* Computes the security value for (group, serial, upgrade) in `role`.
 * Returns 0 on success, -1 on an OpenSSL failure. */
int mac_security_value(mac_key *k, mac_role role, uint32_t group, uint32_t serial,
                       bool upgrade, uint64_t *out);

/* Constant-time check that `presented` is the right value. Returns true when
 * genuine; a MAC failure reads as not genuine. */
bool mac_security_check(mac_key *k, mac_role role, uint32_t group, uint32_t serial,
                        bool upgrade, uint64_t presented);

/* Raw MAC over arbitrary input (for tests against published vectors and for
 * the benchmark baseline). `out` must hold 32 bytes; returns bytes written
 * or -1. */
int mac_compute(mac_key *k, const uint8_t *in, size_t in_len, uint8_t out[32]);

#endif
