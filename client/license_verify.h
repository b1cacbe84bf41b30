/* license_verify.h -- (internal) is this license genuine and ours? */
#ifndef PA_LICENSE_VERIFY_H
#define PA_LICENSE_VERIFY_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "activation/v1/activation.pb-c.h"
#include "merkle.h"
#include "signing_key_id.h"

#define VENDOR_KEYS_MAX 8             /* license and order keys, and a few of each being rotated out */
#define KEY_ID_LEN SIGNING_KEY_ID_LEN /* hex characters */
#define SIGNATURE_LEN 64         /* Ed25519 */

/* The vendor's public keys: the license-verification key(s) and the
 * order-verification key(s) of volume orders (docs/volume.md), one bundle. */
typedef struct vendor_keys {
    EVP_PKEY *key[VENDOR_KEYS_MAX];            /* Ed25519 public keys */
    char key_id[VENDOR_KEYS_MAX][KEY_ID_LEN + 1]; /* names each key as licenses do */
    size_t n;                                  /* keys loaded */
} vendor_keys;

/* What a volume order's server last said about its counters
 * (VolumeStatus): shown to people, never trusted for a decision. */
typedef struct volume_counts {
    uint32_t count;      /* machines that asked within the order's window (KMS count) */
    uint32_t threshold;  /* the order's minimum count; 0: none */
    uint32_t seats;      /* seats sold; 0: unlimited */
    uint32_t seats_used; /* seats held, this machine's included */
} volume_counts;

/* A license as it travels and as it is stored: the signed bytes plus what
 * is needed to check them. */
typedef struct signed_license {
    uint8_t *license;              /* serialized activation.v1.License (malloc'd) */
    size_t license_len;
    uint8_t signature[SIGNATURE_LEN]; /* Ed25519 over the tree `license` is a leaf of (merkle.h) */
    size_t signature_len;          /* must be SIGNATURE_LEN; kept to report a wrong length */
    uint32_t tree_index;           /* the license's leaf in the signed tree */
    uint32_t tree_size;            /* leaves in that tree; 0: none given (never verifies) */
    merkle_hash tree_path[MERKLE_MAX_PATH]; /* sibling hashes from the leaf up to the signed root */
    size_t tree_path_len;                   /* as many as index and size demand, or it does not verify */
    char key_id[KEY_ID_LEN + 1];   /* which vendor key signed it */
    uint32_t activation_count;     /* from the server's answer; not signed, shown only */
    /* On-premises licenses: the vendor-signed order that delegates the key
     * which signed `license` (order_chain.h); order_len 0: none. */
    uint8_t *order; /* serialized volume.v1.Order, exactly as signed (malloc'd) */
    size_t order_len;
    uint8_t order_signature[SIGNATURE_LEN]; /* the vendor's, over TAG_ORDER || 0x00 || order */
    size_t order_signature_len;             /* must be SIGNATURE_LEN; kept to report a wrong length */
    char order_key_id[KEY_ID_LEN + 1];      /* which vendor key signed the order */
    volume_counts volume;                   /* from the server's answer; not signed, shown only */
} signed_license;

typedef enum verify_status {
    VERIFY_OK = 0,
    VERIFY_UNKNOWN_KEY,   /* signed by a key this client does not hold */
    VERIFY_BAD_SIGNATURE, /* the bytes were changed or the signature is wrong */
    VERIFY_MALFORMED,     /* signed, but not a license this client understands */
    VERIFY_WRONG_MACHINE, /* a genuine license for another machine */
    VERIFY_BAD_ORDER,     /* an on-premises license whose order chain does not hold (order_chain.h) */
} verify_status;

/* Loads every PUBLIC KEY block in `pem` (Ed25519 only). 0 or -1 with `err`. */
int vendor_keys_load(vendor_keys *k, const char *pem, char *err, size_t errlen);
void vendor_keys_clear(vendor_keys *k);
/* The key whose id is `key_id`, or NULL. */
EVP_PKEY *vendor_key_named(const vendor_keys *k, const char *key_id);

/* Verifies the signature before parsing anything -- the license's leaf
 * hashed up its tree path (index, size, path) to the root, and the one
 * signature over the root's message (merkle.h) -- then parses and checks
 * the license names `machine_id` and the signing key. The signature is a
 * vendor key's when `s->key_id` names one; otherwise, when `s` carries an
 * order, the order's chain decides (order_chain.h). On VERIFY_OK *out
 * holds the parsed license (free with activation__v1__license__free_unpacked);
 * otherwise `err` says what is wrong. */
verify_status license_verify(const vendor_keys *k, const signed_license *s, const uint8_t machine_id[32],
                             Activation__V1__License **out, char *err, size_t errlen);

void signed_license_clear(signed_license *s);

#endif
