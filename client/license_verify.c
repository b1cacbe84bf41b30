/* license_verify.c -- checks a license before anything trusts it
 * (docs/activation-flow.md, "The license").
 *
 * Order matters: the signature is verified first, and only then are the
 * bytes parsed, so a forged or altered license never reaches the protobuf
 * parser. A server signs the licenses it grants together once (batch
 * signatures, docs/batching.md): the exact bytes are a leaf of a Merkle
 * tree, hashed up the path the license carries to the tree's root, and the
 * signature is over that root and the tree's size (merkle.h). A path that
 * does not fit its index and size, or another index, size, sibling or byte,
 * leaves a root the signature does not cover. Then the signed content must agree with
 * itself and with us: the format version we understand, the signing key id
 * the same as the key that verified it (so a license cannot claim another
 * key), this machine's id (compared in constant time), and a license id of
 * the shared shape (group + serial + random, 32 lowercase hex).
 *
 * The vendor key can rotate: a client holds up to eight public keys (license
 * and order keys) and picks the one whose key_id the license names (key_id =
 * first 16 hex of SHA-256 over the raw 32-byte key, the rule every component
 * shares: signing_key_id.h). A license no vendor key signed may still come
 * from an on-premises server, with the order that delegates its key: then
 * the chain is checked first (order_chain.c) and the license's signature
 * with the delegated key, in the same order, signature before parsing. */
#include "license_verify.h"

#include "order_chain.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vendor_keys_load(vendor_keys *k, const char *pem, char *err, size_t errlen) {
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (!bio) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    EVP_PKEY *key;
    while ((key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) != NULL) {
        if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
            snprintf(err, errlen, "vendor public key %zu is not an Ed25519 key", k->n + 1);
            rc = -1;
        } else if (k->n == VENDOR_KEYS_MAX) {
            snprintf(err, errlen, "more than %d vendor public keys", VENDOR_KEYS_MAX);
            rc = -1;
        } else if (signing_key_id(key, k->key_id[k->n]) != 0) {
            snprintf(err, errlen, "cannot read vendor public key %zu", k->n + 1);
            rc = -1;
        }
        if (rc != 0) {
            EVP_PKEY_free(key);
            break;
        }
        k->key[k->n++] = key;
    }
    ERR_clear_error();  /* the loop ends on "no start line" */
    BIO_free(bio);
    if (rc == 0 && k->n == 0) {
        snprintf(err, errlen, "no PUBLIC KEY block found in the vendor public key PEM");
        rc = -1;
    }
    if (rc != 0) vendor_keys_clear(k);
    return rc;
}

void vendor_keys_clear(vendor_keys *k) {
    for (size_t i = 0; i < k->n; i++) EVP_PKEY_free(k->key[i]);
    memset(k, 0, sizeof *k);
}

void signed_license_clear(signed_license *s) {
    free(s->license);
    free(s->order);
    memset(s, 0, sizeof *s);
}

EVP_PKEY *vendor_key_named(const vendor_keys *k, const char *key_id) {
    for (size_t i = 0; i < k->n; i++)
        if (strcmp(k->key_id[i], key_id) == 0) return k->key[i];
    return NULL;
}

/* The message the license's signature must cover: its tree's, from the
 * leaf up the path. False when the path does not fit index and size. */
static bool tree_message(const signed_license *s, uint8_t msg[MERKLE_MESSAGE_LEN]) {
    merkle_hash leaf, root;
    merkle_leaf(s->license, s->license_len, leaf);
    if (merkle_root_from_path(leaf, s->tree_index, s->tree_size, s->tree_path, s->tree_path_len, root) != 0)
        return false;
    merkle_signed_message(root, s->tree_size, msg);
    return true;
}

static bool signature_ok(EVP_PKEY *key, const signed_license *s) {
    uint8_t msg[MERKLE_MESSAGE_LEN];
    if (s->signature_len != SIGNATURE_LEN || !tree_message(s, msg)) return false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) return false;
    bool ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
              EVP_DigestVerify(ctx, s->signature, s->signature_len, msg, sizeof msg) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* 32 lowercase hex characters starting with the key's group and serial. */
static bool license_id_ok(const Activation__V1__License *l) {
    const char *id = l->license_id;
    if (!id || strlen(id) != 32) return false;
    for (const char *c = id; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))) return false;
    char prefix[17];
    snprintf(prefix, sizeof prefix, "%08x%08x", (unsigned)l->key_group, (unsigned)l->key_serial);
    return memcmp(id, prefix, 16) == 0;
}

static verify_status check_content(const Activation__V1__License *l, const char *key_id,
                                   const uint8_t machine_id[32], char *err, size_t errlen) {
    if (l->format_version != 1) {
        snprintf(err, errlen, "license format version %u is not understood by this client (want 1)",
                 (unsigned)l->format_version);
        return VERIFY_MALFORMED;
    }
    if (!l->signing_key_id || strcmp(l->signing_key_id, key_id) != 0) {
        snprintf(err, errlen, "license names signing key \"%s\" but was signed by %s",
                 l->signing_key_id ? l->signing_key_id : "", key_id);
        return VERIFY_MALFORMED;
    }
    if (!license_id_ok(l)) {
        snprintf(err, errlen, "license id \"%s\" is not 32 hex characters of group + serial + random",
                 l->license_id ? l->license_id : "");
        return VERIFY_MALFORMED;
    }
    if (l->machine_id.len != 32 || CRYPTO_memcmp(l->machine_id.data, machine_id, 32) != 0) {
        snprintf(err, errlen, "the license is genuine but belongs to another machine");
        return VERIFY_WRONG_MACHINE;
    }
    return VERIFY_OK;
}

/* The key that must have signed the license: the vendor key it names, or
 * the delegated key of a verified order (*order and *owned set; freed by the
 * caller). */
static verify_status signer_of(const vendor_keys *k, const signed_license *s, EVP_PKEY **key, EVP_PKEY **owned,
                               Volume__V1__Order **order, char *err, size_t errlen) {
    *key = vendor_key_named(k, s->key_id);
    if (*key) return VERIFY_OK;
    if (s->order_len == 0) {
        snprintf(err, errlen, "the license was signed with key \"%s\", which this client does not hold",
                 s->key_id);
        return VERIFY_UNKNOWN_KEY;
    }
    verify_status st = order_chain_open(k, s, order, owned, err, errlen);
    *key = *owned;
    return st;
}

verify_status license_verify(const vendor_keys *k, const signed_license *s, const uint8_t machine_id[32],
                             Activation__V1__License **out, char *err, size_t errlen) {
    *out = NULL;
    EVP_PKEY *key, *delegated = NULL;
    Volume__V1__Order *order = NULL;
    verify_status st = signer_of(k, s, &key, &delegated, &order, err, errlen);
    Activation__V1__License *l = NULL;
    if (st == VERIFY_OK && (!s->license || !signature_ok(key, s))) {
        if (order)
            snprintf(err, errlen,
                     "the license is not signed by the order's delegated server key (its signature "
                     "does not verify: altered or forged)");
        else
            snprintf(err, errlen,
                     "the license signature does not verify: the license, its place in the signed tree "
                     "(index %u of %u, %zu path hashes) or the signature was altered or damaged",
                     (unsigned)s->tree_index, (unsigned)s->tree_size, s->tree_path_len);
        st = order ? VERIFY_BAD_ORDER : VERIFY_BAD_SIGNATURE;
    }
    if (st == VERIFY_OK && !(l = activation__v1__license__unpack(NULL, s->license_len, s->license))) {
        snprintf(err, errlen, "the signed license cannot be parsed");
        st = VERIFY_MALFORMED;
    }
    if (st == VERIFY_OK) st = check_content(l, s->key_id, machine_id, err, errlen);
    if (st == VERIFY_OK && order) st = order_chain_terms(order, l, err, errlen);
    EVP_PKEY_free(delegated);
    if (order) volume__v1__order__free_unpacked(order, NULL);
    if (st != VERIFY_OK) {
        if (l) activation__v1__license__free_unpacked(l, NULL);
        return st;
    }
    *out = l;
    return VERIFY_OK;
}
