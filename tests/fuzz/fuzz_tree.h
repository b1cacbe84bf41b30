/* fuzz_tree.h -- the batch tree every license of the fuzz targets is signed
 * in (merkle.h): leaf FUZZ_TREE_INDEX of FUZZ_TREE_SIZE, the other leaves
 * fixed. The seeds (fuzz_seeds.c) and the targets sign the same way, so a
 * target knows the one untampered index, size and path of any license the
 * fuzz vendor key signed, and can check that whatever verifies carries
 * exactly those. */
#ifndef PA_FUZZ_TREE_H
#define PA_FUZZ_TREE_H

#include <stdio.h>
#include <string.h>

#include "fuzz_util.h"
#include "merkle.h"

#define FUZZ_TREE_SIZE 6  /* not a power of two: the path has a lifted node */
#define FUZZ_TREE_INDEX 3 /* a right child with a left neighbour subtree */

/* The path of `license` as leaf FUZZ_TREE_INDEX (into path; returns its
 * length) and the message a signature over its tree covers. */
static inline size_t fuzz_tree(const uint8_t *license, size_t len, merkle_hash path[MERKLE_MAX_PATH],
                               uint8_t msg[MERKLE_MESSAGE_LEN]) {
    merkle_hash leaves[FUZZ_TREE_SIZE], root, paths[FUZZ_TREE_SIZE][MERKLE_MAX_PATH];
    size_t lens[FUZZ_TREE_SIZE];
    for (int i = 0; i < FUZZ_TREE_SIZE; i++) {
        char other[32];
        int n = snprintf(other, sizeof other, "fuzz batch leaf %d", i);
        merkle_leaf((const uint8_t *)other, (size_t)n, leaves[i]);
    }
    merkle_leaf(license, len, leaves[FUZZ_TREE_INDEX]);
    CHECK(merkle_tree(leaves, FUZZ_TREE_SIZE, root, paths, lens) == 0);
    memcpy(path, paths[FUZZ_TREE_INDEX], lens[FUZZ_TREE_INDEX] * MERKLE_HASH_LEN);
    merkle_signed_message(root, FUZZ_TREE_SIZE, msg);
    return lens[FUZZ_TREE_INDEX];
}

/* Signs `license` in the fuzz tree: its path into path (*path_len) and the signature. 0 or -1. */
static inline int fuzz_sign_tree(EVP_PKEY *k, const uint8_t *license, size_t len, merkle_hash path[MERKLE_MAX_PATH],
                                 size_t *path_len, uint8_t sig[64]) {
    uint8_t msg[MERKLE_MESSAGE_LEN];
    *path_len = fuzz_tree(license, len, path, msg);
    return fuzz_sign(k, msg, sizeof msg, sig);
}

#endif
