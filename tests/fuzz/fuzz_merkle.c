/* fuzz_merkle.c -- libFuzzer target for the batch-signature tree (merkle.h):
 * merkle_root_from_path on index, size and path values that came from a
 * server or a license file, i.e. from anyone.
 *
 * The input describes a genuine tree and a tampering of one leaf's place in
 * it, so that mutations explore the neighbourhood of a valid path (a
 * random path almost never comes near one):
 *   byte 0      the tree's size minus one (1..256 leaves, fixed contents)
 *   byte 1      the leaf, modulo the size
 *   bytes 2-5   XORed into the index (u32 big-endian)
 *   bytes 6-9   XORed into the size
 *   byte 10     added to the path's length (signed)
 *   the rest    XORed into the path's hashes, one after another (hashes
 *               beyond the genuine path start as zeros)
 * The target checks, beyond memory safety:
 *   - merkle_tree, merkle_root and merkle_path agree, and the genuine path
 *     folds back to the root;
 *   - a tampered place that folds at all, and yields the signed message of
 *     the genuine tree (root and size), is the untampered one: same index,
 *     size, length and hashes. Only that message is signed, so this is
 *     "whatever verifies equals the untampered input". */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_util.h"
#include "merkle.h"

#define HEADER 11

static merkle_hash leaves[MERKLE_MAX_LEAVES];
static merkle_hash paths[MERKLE_MAX_LEAVES][MERKLE_MAX_PATH];
static size_t lens[MERKLE_MAX_LEAVES];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    for (int i = 0; i < MERKLE_MAX_LEAVES; i++) {
        char text[32];
        int n = snprintf(text, sizeof text, "fuzz merkle leaf %d", i);
        merkle_leaf((const uint8_t *)text, (size_t)n, leaves[i]);
    }
    return 0;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < HEADER) return 0;
    uint32_t n = (uint32_t)data[0] + 1, k = data[1] % n;
    merkle_hash root, again, one[MERKLE_MAX_PATH], got;
    CHECK(merkle_tree(leaves, n, root, paths, lens) == 0);
    CHECK(merkle_root(leaves, n, again) == 0 && memcmp(root, again, MERKLE_HASH_LEN) == 0);
    int len = merkle_path(leaves, n, k, one);
    CHECK(len >= 0 && (size_t)len == lens[k] && memcmp(one, paths[k], (size_t)len * MERKLE_HASH_LEN) == 0);
    CHECK(merkle_root_from_path(leaves[k], k, n, paths[k], lens[k], got) == 0);
    CHECK(memcmp(got, root, MERKLE_HASH_LEN) == 0);

    uint32_t index = k ^ be32(data + 2), tree_size = n ^ be32(data + 6);
    long path_len = (long)lens[k] + (int8_t)data[10];
    if (path_len < 0) path_len = 0;
    if (path_len > MERKLE_MAX_PATH + 1) path_len = MERKLE_MAX_PATH + 1;
    merkle_hash path[MERKLE_MAX_PATH + 1];
    memset(path, 0, sizeof path);
    memcpy(path, paths[k], lens[k] * MERKLE_HASH_LEN);
    const uint8_t *mask = data + HEADER;
    size_t mask_len = size - HEADER;
    bool changed_hash = false;
    for (size_t i = 0; i < mask_len && i < sizeof path; i++) {
        ((uint8_t *)path)[i] ^= mask[i];
        if (mask[i] && i < lens[k] * MERKLE_HASH_LEN) changed_hash = true;
    }
    if (merkle_root_from_path(leaves[k], index, tree_size, path, (size_t)path_len, got) != 0) return 0;
    uint8_t want[MERKLE_MESSAGE_LEN], msg[MERKLE_MESSAGE_LEN];
    merkle_signed_message(root, n, want);
    merkle_signed_message(got, tree_size, msg);
    if (memcmp(msg, want, sizeof msg) != 0) return 0;
    CHECK(index == k && tree_size == n && (size_t)path_len == lens[k] && !changed_hash);
    return 0;
}
