/* license.h -- the signed license (docs/activation-flow.md, "The license").
 *
 * A license is the serialized activation.v1.License message, a leaf of the
 * Merkle tree of the licenses signed together (merkle.h, docs/batching.md):
 * its index, the tree's size, its path, and the one Ed25519 signature over
 * the tree's root. The installed copy verifies it offline with the vendor's
 * public key, named by key_id so keys can rotate:
 *   key_id = first 16 hex chars of SHA-256 over the 32-byte raw public key
 *   (signing_key_id.h, shared with the client).
 *
 * The private key is loaded once at start-up (license_key); each worker
 * thread signs through its own license_signer, so signing takes no lock. */
#ifndef PA_ACTIVATION_LICENSE_H
#define PA_ACTIVATION_LICENSE_H

#include <openssl/evp.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "merkle.h"
#include "signing_key_id.h"

#define LICENSE_KEY_ID_LEN SIGNING_KEY_ID_LEN
#define LICENSE_SIG_LEN 64
#define LICENSE_MAX_BYTES 6144 /* bounded by the field sizes of group records and orders (16 features of 256 bytes) */

typedef struct license_key {
    EVP_PKEY *pkey;                         /* Ed25519 private key, loaded once */
    char key_id[LICENSE_KEY_ID_LEN + 1];    /* names the key in every license */
} license_key;

/* Reads an Ed25519 private key in PEM (openssl genpkey -algorithm ed25519)
 * from a regular file that group and others cannot access (mode 0600 or
 * stricter, as the KEK files). Returns 0, or -1 with a message in err. */
int license_key_load(license_key *k, const char *pem_path, char *err, size_t errlen);
void license_key_free(license_key *k);

typedef struct license_signer license_signer;   /* one per worker thread */

license_signer *license_signer_new(const license_key *k);
void license_signer_free(license_signer *s);

/* What the server decided; the strings must outlive license_issue. */
typedef struct license_terms {
    const char *license_id;        /* group + serial + random, hex */
    const char *product;
    const char *edition;
    int channel;                   /* Activation__V1__Channel */
    char **features;               /* feature names the copy may enable */
    size_t n_features;
    const uint8_t *machine_id;     /* 32 bytes */
    uint32_t group;
    uint32_t serial;
    int64_t issued_at;             /* unix seconds */
    int64_t renew_after;           /* 0: no renewal needed */
    int64_t expires_at;            /* 0: never */
    /* Volume licenses (docs/volume.md); NULL / 0 for retail and OEM keys. */
    const char *order_serial; /* the order's service serial */
    uint32_t order_revision;
    const char *seat_mode; /* seat_mode_name() */
} license_terms;

typedef struct signed_license {
    uint8_t body[LICENSE_MAX_BYTES];   /* serialized License */
    size_t body_len;
    uint8_t sig[LICENSE_SIG_LEN];           /* Ed25519 over the batch's tree (merkle.h), shared by its licenses */
    uint32_t tree_index;                    /* this license's leaf */
    uint32_t tree_size;                     /* leaves in the batch's tree */
    merkle_hash tree_path[MERKLE_MAX_PATH]; /* siblings from the leaf up */
    size_t tree_path_len;
    ProtobufCBinaryData
        tree_path_data[MERKLE_MAX_PATH]; /* tree_path as a response's repeated bytes (LICENSE_GRANT_FILL) */
} signed_license;

/* Builds, serializes and signs the License for `t`: a batch of one (a
 * one-leaf tree). Returns 0 or -1. */
int license_issue(license_signer *s, const license_terms *t, signed_license *out);

/* Builds and serializes the `n` licenses of `t` (1 <= n <= MERKLE_MAX_LEAVES)
 * and signs them with one signature over their tree: out[i] gets license i,
 * its leaf index and path, and the shared signature. Returns 0 or -1 (then
 * no out[i] is usable). */
int license_issue_batch(license_signer *s, const license_terms *t, size_t n, signed_license *out);

/* The key id the signer signs with. */
const char *license_signer_key_id(const license_signer *s);

#endif
