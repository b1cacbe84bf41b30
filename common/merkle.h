/* merkle.h -- batch signatures: one Ed25519 signature over the root of a
 * Merkle tree of the licenses a worker grants together (docs/batching.md).
 *
 * Signing dominates the cost of a granted Activate, and it does not depend
 * on how many licenses one signature covers. So a worker that answers a
 * batch of calls hashes each license into a leaf, builds the tree, signs its
 * root once, and gives each caller its leaf's index, the tree's size and the
 * sibling hashes from its leaf up to the root (its path). A caller hashes
 * its own license up the path and checks the one signature over the root.
 * A batch of one is a one-leaf tree (no path; the root is the leaf's hash),
 * so the format is the same at every load.
 *
 * The tree is RFC 9162's (Certificate Transparency v2) Merkle tree with its
 * domain separation, which keeps a leaf from passing for a node:
 *   leaf = SHA-256(0x00 || license bytes)
 *   node = SHA-256(0x01 || left || right)
 * and a tree of n > 1 leaves splits at k, the largest power of two below n
 * (left: leaves [0, k), right: [k, n)). What is signed names its purpose and
 * the tree's size, so a root signature is never mistaken for any other
 * signature of the vendor's key:
 *   "pa-license-tree-v1" || 0x00 || size (u32 big-endian) || root
 *
 * Dependencies: OpenSSL's SHA-256 only, so the installer library (client/)
 * links it as well as the server. */
#ifndef PA_MERKLE_H
#define PA_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_LEN 32
#define MERKLE_MAX_LEAVES 256 /* the largest batch signed at once (a worker's bound is below it) */
#define MERKLE_MAX_PATH 8     /* hashes on a path of a tree of MERKLE_MAX_LEAVES leaves */
#define MERKLE_TREE_TAG "pa-license-tree-v1"
#define MERKLE_MESSAGE_LEN (sizeof MERKLE_TREE_TAG + 4 + MERKLE_HASH_LEN) /* the tag's NUL is the 0x00 */

typedef uint8_t merkle_hash[MERKLE_HASH_LEN];

/* The leaf hash of one license's serialized bytes. */
void merkle_leaf(const uint8_t *data, size_t len, merkle_hash out);

/* The root of the tree of `n` leaf hashes (1 <= n <= MERKLE_MAX_LEAVES).
 * Returns 0, or -1 when n is out of range. */
int merkle_root(const merkle_hash *leaves, size_t n, merkle_hash root);

/* The path of leaf `index` in the tree of `n` leaves: the sibling hashes
 * from the leaf up, into path[]; returns how many (0 for a one-leaf tree),
 * or -1 when index or n is out of range. */
int merkle_path(const merkle_hash *leaves, size_t n, size_t index, merkle_hash path[MERKLE_MAX_PATH]);

/* The root and the path of every leaf at once, for a server signing a
 * batch: n - 1 node hashes in all, where calling merkle_path for each leaf
 * costs that much per leaf. paths[i] gets leaf i's path (as merkle_path
 * gives it) and path_lens[i] its length. Returns 0, or -1 when n is out of
 * range or hashing fails. */
int merkle_tree(const merkle_hash *leaves, size_t n, merkle_hash root, merkle_hash (*paths)[MERKLE_MAX_PATH],
                size_t *path_lens);

/* The root a leaf at `index` of a tree of `size` leaves reaches with `path`
 * (RFC 9162 section 2.1.3.2). Returns 0, or -1 when the path's length does
 * not fit index and size (index >= size, size 0 or above
 * MERKLE_MAX_LEAVES, too few or too many hashes): a tampered index, size or
 * path then fails here or at the signature, never verifies. */
int merkle_root_from_path(const merkle_hash leaf, uint32_t index, uint32_t size, const merkle_hash *path,
                          size_t path_len, merkle_hash root);

/* The bytes signed for a tree of `size` leaves with root `root`; returns
 * MERKLE_MESSAGE_LEN. */
size_t merkle_signed_message(const merkle_hash root, uint32_t size, uint8_t out[MERKLE_MESSAGE_LEN]);

#endif
