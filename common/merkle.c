/* merkle.c -- RFC 9162's Merkle tree over a batch of licenses (merkle.h).
 *
 * Batches are small (at most MERKLE_MAX_LEAVES), so the tree is never kept:
 * the root and each path are computed by the recursion that defines them
 * (RFC 9162 section 2.1.1 and 2.1.3.1), at most eight levels deep. Folding a
 * path back (merkle_root_from_path) follows section 2.1.3.2 step by step,
 * including its checks that the path is exactly as long as index and size
 * demand, so no other length can reach a root.
 *
 * Hashing goes through OpenSSL's EVP interface; a failure there (out of
 * memory) makes the functions that return a status fail. merkle_leaf cannot
 * report one, so it then gives an all-zero hash: a leaf no signed root was
 * built from, which fails verification instead of passing it. */
#include "merkle.h"

#include <openssl/evp.h>
#include <string.h>

static const uint8_t LEAF_PREFIX = 0x00; /* RFC 9162 domain separation: a leaf */
static const uint8_t NODE_PREFIX = 0x01; /* ... and an inner node */

/* SHA-256 over prefix || a || b (b may be empty); 0 or -1. */
static int hash3(uint8_t prefix, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, merkle_hash out) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(ctx, &prefix, 1) == 1 &&
             EVP_DigestUpdate(ctx, a, alen) == 1 && (blen == 0 || EVP_DigestUpdate(ctx, b, blen) == 1) &&
             EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == MERKLE_HASH_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int node(const merkle_hash left, const merkle_hash right, merkle_hash out) {
    return hash3(NODE_PREFIX, left, MERKLE_HASH_LEN, right, MERKLE_HASH_LEN, out);
}

void merkle_leaf(const uint8_t *data, size_t len, merkle_hash out) {
    if (hash3(LEAF_PREFIX, data, len, NULL, 0, out) != 0) memset(out, 0, MERKLE_HASH_LEN);
}

/* The largest power of two strictly below n (n >= 2): where RFC 9162 splits. */
static size_t split_of(size_t n) {
    size_t k = 1;
    while (k * 2 < n) k *= 2;
    return k;
}

static int subtree_root(const merkle_hash *leaves, size_t n, merkle_hash root) {
    if (n == 1) {
        memcpy(root, leaves[0], MERKLE_HASH_LEN);
        return 0;
    }
    size_t k = split_of(n);
    merkle_hash left, right;
    if (subtree_root(leaves, k, left) != 0 || subtree_root(leaves + k, n - k, right) != 0) return -1;
    return node(left, right, root);
}

int merkle_root(const merkle_hash *leaves, size_t n, merkle_hash root) {
    if (n < 1 || n > MERKLE_MAX_LEAVES) return -1;
    return subtree_root(leaves, n, root);
}

/* The path of leaf m in leaves[0, n): the path inside the half holding m,
 * then the root of the other half. Returns its length or -1. */
static int subtree_path(const merkle_hash *leaves, size_t n, size_t m, merkle_hash *path) {
    if (n == 1) return 0;
    size_t k = split_of(n);
    int len = m < k ? subtree_path(leaves, k, m, path) : subtree_path(leaves + k, n - k, m - k, path);
    if (len < 0 || len >= MERKLE_MAX_PATH) return -1;
    int rc = m < k ? subtree_root(leaves + k, n - k, path[len]) : subtree_root(leaves, k, path[len]);
    return rc == 0 ? len + 1 : -1;
}

int merkle_path(const merkle_hash *leaves, size_t n, size_t index, merkle_hash path[MERKLE_MAX_PATH]) {
    if (n < 1 || n > MERKLE_MAX_LEAVES || index >= n) return -1;
    return subtree_path(leaves, n, index, path);
}

int merkle_root_from_path(const merkle_hash leaf, uint32_t index, uint32_t size, const merkle_hash *path,
                          size_t path_len, merkle_hash root) {
    if (size == 0 || size > MERKLE_MAX_LEAVES || index >= size || path_len > MERKLE_MAX_PATH) return -1;
    uint32_t fn = index, sn = size - 1;
    merkle_hash r;
    memcpy(r, leaf, MERKLE_HASH_LEN);
    for (size_t i = 0; i < path_len; i++) {
        if (sn == 0) return -1; /* more hashes than the tree has levels above this leaf */
        int rc;
        if ((fn & 1) || fn == sn) {
            rc = node(path[i], r, r);
            /* A right edge without a sibling: climb until this node is a right child. */
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            rc = node(r, path[i], r);
        }
        if (rc != 0) return -1;
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0) return -1; /* fewer hashes than the tree has levels */
    memcpy(root, r, MERKLE_HASH_LEN);
    return 0;
}

size_t merkle_signed_message(const merkle_hash root, uint32_t size, uint8_t out[MERKLE_MESSAGE_LEN]) {
    memcpy(out, MERKLE_TREE_TAG, sizeof MERKLE_TREE_TAG); /* with its NUL: the 0x00 separator */
    uint8_t *p = out + sizeof MERKLE_TREE_TAG;
    p[0] = (uint8_t)(size >> 24);
    p[1] = (uint8_t)(size >> 16);
    p[2] = (uint8_t)(size >> 8);
    p[3] = (uint8_t)size;
    memcpy(p + 4, root, MERKLE_HASH_LEN);
    return MERKLE_MESSAGE_LEN;
}
