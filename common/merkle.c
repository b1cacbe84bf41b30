/* merkle.c -- RFC 9162's Merkle tree over a batch of licenses (merkle.h).
 *
 * Batches are small (at most MERKLE_MAX_LEAVES), so the tree is never kept:
 * merkle_root and merkle_path follow the recursion that defines them (RFC
 * 9162 sections 2.1.1 and 2.1.3.1), at most eight levels deep, and
 * merkle_tree, which a signing server calls, builds the same tree level by
 * level to give every path for n - 1 node hashes. Folding a path back
 * (merkle_root_from_path) follows section 2.1.3.2 step by step, including
 * its checks that the path is exactly as long as index and size demand, so
 * no other length can reach a root. One digest context serves a whole call.
 *
 * Hashing goes through OpenSSL's EVP interface; a failure there (out of
 * memory) makes the functions that return a status fail. merkle_leaf cannot
 * report one, so it then gives an all-zero hash: a leaf no signed root was
 * built from, which fails verification instead of passing it. */
#include "merkle.h"

#include <openssl/evp.h>
#include <stdatomic.h>
#include <string.h>

static const uint8_t LEAF_PREFIX = 0x00; /* RFC 9162 domain separation: a leaf */
static const uint8_t NODE_PREFIX = 0x01; /* ... and an inner node */

/* SHA-256, fetched from its provider once for the process: EVP_sha256()
 * would make every EVP_DigestInit_ex fetch it again (OpenSSL 3), which cost
 * a signing server more than the hashing. Kept for the process's lifetime;
 * two threads racing to fetch it keep the first and free the other. */
static _Atomic(EVP_MD *) sha256_md;

static const EVP_MD *sha256(void) {
    EVP_MD *md = atomic_load(&sha256_md);
    if (md) return md;
    EVP_MD *fetched = EVP_MD_fetch(NULL, "SHA256", NULL), *none = NULL;
    if (!fetched) return NULL;
    if (atomic_compare_exchange_strong(&sha256_md, &none, fetched)) return fetched;
    EVP_MD_free(fetched);
    return none; /* the other thread's */
}

/* SHA-256 over prefix || a || b (b may be empty) with `ctx`, which a whole
 * tree reuses; 0 or -1. */
static int hash3(EVP_MD_CTX *ctx, uint8_t prefix, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                 merkle_hash out) {
    unsigned int n = 0;
    const EVP_MD *md = sha256();
    int ok = ctx && md && EVP_DigestInit_ex(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, &prefix, 1) == 1 &&
             (alen == 0 || EVP_DigestUpdate(ctx, a, alen) == 1) && (blen == 0 || EVP_DigestUpdate(ctx, b, blen) == 1) &&
             EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == MERKLE_HASH_LEN;
    return ok ? 0 : -1;
}

/* out may be left or right: both are read before out is written. */
static int node(EVP_MD_CTX *ctx, const merkle_hash left, const merkle_hash right, merkle_hash out) {
    return hash3(ctx, NODE_PREFIX, left, MERKLE_HASH_LEN, right, MERKLE_HASH_LEN, out);
}

void merkle_leaf(const uint8_t *data, size_t len, merkle_hash out) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (hash3(ctx, LEAF_PREFIX, data, len, NULL, 0, out) != 0) memset(out, 0, MERKLE_HASH_LEN);
    EVP_MD_CTX_free(ctx);
}

/* The largest power of two strictly below n (n >= 2): where RFC 9162 splits. */
static size_t split_of(size_t n) {
    size_t k = 1;
    while (k * 2 < n) k *= 2;
    return k;
}

static int subtree_root(EVP_MD_CTX *ctx, const merkle_hash *leaves, size_t n, merkle_hash root) {
    if (n == 1) {
        memcpy(root, leaves[0], MERKLE_HASH_LEN);
        return 0;
    }
    size_t k = split_of(n);
    merkle_hash left, right;
    if (subtree_root(ctx, leaves, k, left) != 0 || subtree_root(ctx, leaves + k, n - k, right) != 0) return -1;
    return node(ctx, left, right, root);
}

int merkle_root(const merkle_hash *leaves, size_t n, merkle_hash root) {
    if (n < 1 || n > MERKLE_MAX_LEAVES) return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = subtree_root(ctx, leaves, n, root);
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* The path of leaf m in leaves[0, n): the path inside the half holding m,
 * then the root of the other half. Returns its length or -1. */
static int subtree_path(EVP_MD_CTX *ctx, const merkle_hash *leaves, size_t n, size_t m, merkle_hash *path) {
    if (n == 1) return 0;
    size_t k = split_of(n);
    int len = m < k ? subtree_path(ctx, leaves, k, m, path) : subtree_path(ctx, leaves + k, n - k, m - k, path);
    if (len < 0 || len >= MERKLE_MAX_PATH) return -1;
    int rc = m < k ? subtree_root(ctx, leaves + k, n - k, path[len]) : subtree_root(ctx, leaves, k, path[len]);
    return rc == 0 ? len + 1 : -1;
}

int merkle_path(const merkle_hash *leaves, size_t n, size_t index, merkle_hash path[MERKLE_MAX_PATH]) {
    if (n < 1 || n > MERKLE_MAX_LEAVES || index >= n) return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = subtree_path(ctx, leaves, n, index, path);
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* RFC 9162's tree, built level by level: pairing the nodes of a level from
 * the left and lifting a lone last node unchanged gives the same tree as
 * splitting at the largest power of two, and leaf i's node on level L is
 * then node i >> L. So each level hands every leaf its sibling there, if
 * the leaf's node has one, and the path grows from the leaf up. */
int merkle_tree(const merkle_hash *leaves, size_t n, merkle_hash root, merkle_hash (*paths)[MERKLE_MAX_PATH],
                size_t *path_lens) {
    if (n < 1 || n > MERKLE_MAX_LEAVES) return -1;
    merkle_hash level[MERKLE_MAX_LEAVES]; /* the current level, folded in place (node j/2 from j and j+1) */
    memcpy(level, leaves, n * sizeof *level);
    for (size_t i = 0; i < n; i++) path_lens[i] = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = ctx ? 0 : -1;
    for (unsigned shift = 0, width = (unsigned)n; rc == 0 && width > 1; shift++) {
        for (size_t i = 0; i < n; i++) {
            size_t sibling = (i >> shift) ^ 1;
            if (sibling < width) memcpy(paths[i][path_lens[i]++], level[sibling], MERKLE_HASH_LEN);
        }
        unsigned next = 0;
        for (unsigned j = 0; rc == 0 && j < width; j += 2, next++) {
            if (j + 1 < width) rc = node(ctx, level[j], level[j + 1], level[next]);
            else memcpy(level[next], level[j], MERKLE_HASH_LEN);
        }
        width = next;
    }
    EVP_MD_CTX_free(ctx);
    if (rc == 0) memcpy(root, level[0], MERKLE_HASH_LEN);
    return rc;
}

/* RFC 9162 section 2.1.3.2: fn walks the leaf's index up the tree, sn the
 * last index; a hash is a left sibling when fn is a right child or the last
 * node of its level. The path must run out exactly when sn reaches 0. */
static int fold(EVP_MD_CTX *ctx, const merkle_hash leaf, uint32_t fn, uint32_t sn, const merkle_hash *path,
                size_t path_len, merkle_hash r) {
    memcpy(r, leaf, MERKLE_HASH_LEN);
    for (size_t i = 0; i < path_len; i++) {
        if (sn == 0) return -1; /* more hashes than the tree has levels above this leaf */
        int rc;
        if ((fn & 1) || fn == sn) {
            rc = node(ctx, path[i], r, r);
            /* A right edge without a sibling: climb until this node is a right child. */
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            rc = node(ctx, r, path[i], r);
        }
        if (rc != 0) return -1;
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 ? 0 : -1; /* else fewer hashes than the tree has levels */
}

int merkle_root_from_path(const merkle_hash leaf, uint32_t index, uint32_t size, const merkle_hash *path,
                          size_t path_len, merkle_hash root) {
    if (size == 0 || size > MERKLE_MAX_LEAVES || index >= size || path_len > MERKLE_MAX_PATH) return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    merkle_hash r;
    int rc = ctx ? fold(ctx, leaf, index, size - 1, path, path_len, r) : -1;
    EVP_MD_CTX_free(ctx);
    if (rc == 0) memcpy(root, r, MERKLE_HASH_LEN);
    return rc;
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
