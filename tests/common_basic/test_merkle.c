/* test_merkle.c -- the batch-signature tree (merkle.h).
 *
 * The expected roots and paths were computed independently of merkle.c, with
 * a few lines of Python's hashlib following RFC 9162's definitions:
 *
 *   H = lambda b: hashlib.sha256(b).digest()
 *   def mth(d):                      # d: the leaves' bytes
 *       if len(d) == 1: return H(b'\0' + d[0])
 *       k = 1
 *       while k * 2 < len(d): k *= 2
 *       return H(b'\1' + mth(d[:k]) + mth(d[k:]))
 *   def path(m, d):
 *       if len(d) == 1: return []
 *       k = ...                      # as above
 *       return path(m, d[:k]) + [mth(d[k:])] if m < k else path(m - k, d[k:]) + [mth(d[:k])]
 *   data = [b'license %d' % i for i in range(17)]
 *
 * Beyond the vectors, every path of every tree of 1..17 leaves (and a full
 * tree of MERKLE_MAX_LEAVES) folds back to its root, and every tampering a
 * response could carry -- another index, a changed sibling, a path one hash
 * short or long -- either fails to fold or reaches another root (another
 * size: another signed message). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "hex.h"
#include "merkle.h"

#define N_VECTORS 17

static const char *const ROOTS[N_VECTORS] = {
    "7d6f83ca697940f0e528b08bb1925f2c6c96f9cc46ac97218214daa0c96ddb62", /* 1 */
    "4cd65339bac361b0574cefcbe8dccc109507b6b5692cff050cf56ec029422f7d", /* 2 */
    "31cd460c3a450f9c70dc8a1ed67cce8a529cd387f17b17835b6b419d77f32d3a", /* 3 */
    "8c304fd0d0f1d8f65288f0bb1e256ce5103def0e01fcceb7d75e9ed008aabae0", /* 4 */
    "aa89b51942a3ad00c6fb433d0ae693906e75c745c0dd53452dd0dd542a06c6ed", /* 5 */
    "1a2e6a3d1fa963898f5e66c35d900cae44d894609d06bd4f495bb4244b27ddbb", /* 6 */
    "4ef7c2d45e5ebd5a8bae813b57a42925bd22e8087e200ebd9491635716e999de", /* 7 */
    "01d7ede4368c305b2b4b0b8bc1b58fbebf053dd42d9a83121c97d3696f02f0f9", /* 8 */
    "c6994f0dd2ec604eb55f141db4093807f272774e98dc09ced614f0acd20ee9a1", /* 9 */
    "27bcb1a2c17523907eb7062e1069f4dfca13d9479bf039db410b91baa8cd5de5", /* 10 */
    "7acf882aa844f4380af46f4627420e33872d7e454b7f6722d0d7d3069bd9d0eb", /* 11 */
    "d437ac05a7602668f67669b5b2d9610557674a23a871c89a2f8193f194452252", /* 12 */
    "1599d7b5cad01fbaf9170824b609b5c1a70bbc8e27831467f581f1e445335fb5", /* 13 */
    "e98b58d1aa80b246903dadea4db59e02450a3b808f2994015764e233db01e446", /* 14 */
    "95d2749cd2ddf775ebff90d1aa197fdb234699812a20ab4207cc6ccbf4796879", /* 15 */
    "4c55ab3cd59cd1fadcb06e5a1d17dd2a40471e7bfe5e664f9cfb447941cf4f99", /* 16 */
    "3571805d8962f0d90b6f797c6198405664ca1942bad6740fd1643070b951f78d", /* 17 */
};

static void hash_of_hex(const char *hex, merkle_hash out) {
    assert_int_equal(pa_hex_decode(hex, strlen(hex), out, MERKLE_HASH_LEN), MERKLE_HASH_LEN);
}

/* leaves[i] = leaf of "license i". */
static void make_leaves(merkle_hash *leaves, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char text[32];
        int len = snprintf(text, sizeof text, "license %zu", i);
        merkle_leaf((const uint8_t *)text, (size_t)len, leaves[i]);
    }
}

static void test_leaf_is_domain_separated(void **state) {
    (void)state;
    merkle_hash h, want;
    merkle_leaf(NULL, 0, h); /* SHA-256 of the single byte 0x00 */
    hash_of_hex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", want);
    assert_memory_equal(h, want, MERKLE_HASH_LEN);
}

static void test_roots_match_vectors(void **state) {
    (void)state;
    merkle_hash leaves[N_VECTORS];
    make_leaves(leaves, N_VECTORS);
    for (size_t n = 1; n <= N_VECTORS; n++) {
        merkle_hash root, want;
        assert_int_equal(merkle_root(leaves, n, root), 0);
        hash_of_hex(ROOTS[n - 1], want);
        assert_memory_equal(root, want, MERKLE_HASH_LEN);
    }
    merkle_hash root;
    assert_int_equal(merkle_root(leaves, 0, root), -1);
}

static void test_paths_match_vectors(void **state) {
    (void)state;
    merkle_hash leaves[7], path[MERKLE_MAX_PATH], want;
    make_leaves(leaves, 7);
    static const char *const of2[] = {
        "fe3753b6a91fcad1a2917c196a2290f523d07f8bb440c96cba7989a6fa917f93",
        "4cd65339bac361b0574cefcbe8dccc109507b6b5692cff050cf56ec029422f7d",
        "cff0aefe6c31f59da9b004bceafcb0fa4d8f03e00563fb8e9e6a14a66655e4d3",
    };
    assert_int_equal(merkle_path(leaves, 7, 2, path), 3);
    for (int i = 0; i < 3; i++) {
        hash_of_hex(of2[i], want);
        assert_memory_equal(path[i], want, MERKLE_HASH_LEN);
    }
    /* The last leaf of 7 sits on the right edge: two hashes, not three. */
    static const char *const of6[] = {
        "5ed14626116045c55fbff646b9036fc606a2f3f197bc556e495da92653475500",
        "8c304fd0d0f1d8f65288f0bb1e256ce5103def0e01fcceb7d75e9ed008aabae0",
    };
    assert_int_equal(merkle_path(leaves, 7, 6, path), 2);
    for (int i = 0; i < 2; i++) {
        hash_of_hex(of6[i], want);
        assert_memory_equal(path[i], want, MERKLE_HASH_LEN);
    }
    assert_int_equal(merkle_path(leaves, 7, 7, path), -1);
    assert_int_equal(merkle_path(leaves, 0, 0, path), -1);
}

static void test_signed_message_layout(void **state) {
    (void)state;
    merkle_hash root;
    hash_of_hex(ROOTS[4], root);
    uint8_t msg[MERKLE_MESSAGE_LEN];
    assert_int_equal(merkle_signed_message(root, 5, msg), MERKLE_MESSAGE_LEN);
    assert_int_equal(MERKLE_MESSAGE_LEN, 55);
    uint8_t want[MERKLE_MESSAGE_LEN];
    const char *hex =
        "70612d6c6963656e73652d747265652d763100" /* "pa-license-tree-v1" 0x00 */
        "00000005"                               /* size 5, big-endian */
        "aa89b51942a3ad00c6fb433d0ae693906e75c745c0dd53452dd0dd542a06c6ed";
    assert_int_equal(pa_hex_decode(hex, strlen(hex), want, sizeof want), (long)sizeof want);
    assert_memory_equal(msg, want, sizeof want);
}

/* Folding leaf i of an n-leaf tree with its path must reach `root`; any
 * other index, size, sibling or path length must not. */
static void check_leaf(const merkle_hash *leaves, size_t n, size_t i, const merkle_hash root) {
    merkle_hash path[MERKLE_MAX_PATH + 1], got;
    int len = merkle_path(leaves, n, i, path);
    assert_true(len >= 0 && len <= MERKLE_MAX_PATH);
    assert_int_equal(merkle_root_from_path(leaves[i], (uint32_t)i, (uint32_t)n, path, (size_t)len, got), 0);
    assert_memory_equal(got, root, MERKLE_HASH_LEN);

    for (uint32_t j = 0; j < n + 2; j++) { /* another index, including ones past the end */
        if (j == i) continue;
        if (merkle_root_from_path(leaves[i], j, (uint32_t)n, path, (size_t)len, got) == 0)
            assert_memory_not_equal(got, root, MERKLE_HASH_LEN);
    }
    /* Another size may fold to the same root (leaf 0 of 3 and of 4 take the
     * same turns), which is why the size is part of what is signed: the
     * message then differs. */
    uint8_t want_msg[MERKLE_MESSAGE_LEN], msg[MERKLE_MESSAGE_LEN];
    merkle_signed_message(root, (uint32_t)n, want_msg);
    for (uint32_t m = 0; m <= n + 9 && m <= MERKLE_MAX_LEAVES + 1; m++) {
        if (m == n) continue;
        if (merkle_root_from_path(leaves[i], (uint32_t)i, m, path, (size_t)len, got) == 0) {
            merkle_signed_message(got, m, msg);
            assert_memory_not_equal(msg, want_msg, sizeof msg);
        }
    }
    for (int k = 0; k < len; k++) { /* one changed bit in any sibling */
        path[k][k % MERKLE_HASH_LEN] ^= 0x01;
        if (merkle_root_from_path(leaves[i], (uint32_t)i, (uint32_t)n, path, (size_t)len, got) == 0)
            assert_memory_not_equal(got, root, MERKLE_HASH_LEN);
        path[k][k % MERKLE_HASH_LEN] ^= 0x01;
    }
    /* A hash short or a hash too many never folds (the length is fixed by index and size). */
    if (len > 0) assert_int_equal(merkle_root_from_path(leaves[i], (uint32_t)i, (uint32_t)n, path, len - 1, got), -1);
    memcpy(path[len], root, MERKLE_HASH_LEN);
    assert_int_equal(merkle_root_from_path(leaves[i], (uint32_t)i, (uint32_t)n, path, (size_t)len + 1, got), -1);
    /* Another leaf at the same place reaches another root. */
    merkle_hash other;
    memcpy(other, leaves[i], MERKLE_HASH_LEN);
    other[0] ^= 0x80;
    assert_int_equal(merkle_root_from_path(other, (uint32_t)i, (uint32_t)n, path, (size_t)len, got), 0);
    assert_memory_not_equal(got, root, MERKLE_HASH_LEN);
}

/* merkle_tree gives the root and, for every leaf, the path merkle_path gives. */
static void check_tree_matches(const merkle_hash *leaves, size_t n, const merkle_hash root) {
    static merkle_hash paths[MERKLE_MAX_LEAVES][MERKLE_MAX_PATH];
    size_t lens[MERKLE_MAX_LEAVES];
    merkle_hash got, one[MERKLE_MAX_PATH];
    assert_int_equal(merkle_tree(leaves, n, got, paths, lens), 0);
    assert_memory_equal(got, root, MERKLE_HASH_LEN);
    for (size_t i = 0; i < n; i++) {
        int len = merkle_path(leaves, n, i, one);
        assert_int_equal(lens[i], (size_t)len);
        if (len > 0) assert_memory_equal(paths[i], one, (size_t)len * MERKLE_HASH_LEN);
    }
}

static void test_every_path_folds_back(void **state) {
    (void)state;
    merkle_hash leaves[N_VECTORS];
    make_leaves(leaves, N_VECTORS);
    for (size_t n = 1; n <= N_VECTORS; n++) {
        merkle_hash root;
        assert_int_equal(merkle_root(leaves, n, root), 0);
        for (size_t i = 0; i < n; i++) check_leaf(leaves, n, i, root);
        check_tree_matches(leaves, n, root);
    }
}

static void test_full_tree(void **state) {
    (void)state;
    static merkle_hash leaves[MERKLE_MAX_LEAVES + 1];
    make_leaves(leaves, MERKLE_MAX_LEAVES + 1);
    merkle_hash root, path[MERKLE_MAX_PATH];
    assert_int_equal(merkle_root(leaves, MERKLE_MAX_LEAVES, root), 0);
    assert_int_equal(merkle_root(leaves, MERKLE_MAX_LEAVES + 1, root), -1);
    assert_int_equal(merkle_path(leaves, MERKLE_MAX_LEAVES + 1, 0, path), -1);
    assert_int_equal(merkle_root(leaves, MERKLE_MAX_LEAVES, root), 0);
    for (size_t i = 0; i < MERKLE_MAX_LEAVES; i += 37) check_leaf(leaves, MERKLE_MAX_LEAVES, i, root);
    check_leaf(leaves, MERKLE_MAX_LEAVES, MERKLE_MAX_LEAVES - 1, root);
    assert_int_equal(merkle_path(leaves, MERKLE_MAX_LEAVES, 5, path), MERKLE_MAX_PATH);
    check_tree_matches(leaves, MERKLE_MAX_LEAVES, root);
    assert_int_equal(merkle_root(leaves, MERKLE_MAX_LEAVES - 1, root), 0);
    check_tree_matches(leaves, MERKLE_MAX_LEAVES - 1, root);
    static merkle_hash paths[MERKLE_MAX_LEAVES + 1][MERKLE_MAX_PATH];
    size_t lens[MERKLE_MAX_LEAVES + 1];
    assert_int_equal(merkle_tree(leaves, MERKLE_MAX_LEAVES + 1, root, paths, lens), -1);
    assert_int_equal(merkle_tree(leaves, 0, root, paths, lens), -1);
}

static void test_one_leaf_tree(void **state) {
    (void)state;
    merkle_hash leaf, root, path[MERKLE_MAX_PATH], got;
    make_leaves(&leaf, 1);
    assert_int_equal(merkle_root(&leaf, 1, root), 0);
    assert_memory_equal(root, leaf, MERKLE_HASH_LEN); /* the root is the leaf */
    assert_int_equal(merkle_path(&leaf, 1, 0, path), 0);
    assert_int_equal(merkle_root_from_path(leaf, 0, 1, NULL, 0, got), 0);
    assert_memory_equal(got, leaf, MERKLE_HASH_LEN);
    assert_int_equal(merkle_root_from_path(leaf, 0, 0, NULL, 0, got), -1);
    assert_int_equal(merkle_root_from_path(leaf, 1, 1, NULL, 0, got), -1);
    assert_int_equal(merkle_root_from_path(leaf, 0, MERKLE_MAX_LEAVES + 1, path, 9, got), -1);
    assert_int_equal(merkle_root_from_path(leaf, UINT32_MAX, UINT32_MAX, path, 8, got), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leaf_is_domain_separated),
        cmocka_unit_test(test_roots_match_vectors),
        cmocka_unit_test(test_paths_match_vectors),
        cmocka_unit_test(test_signed_message_layout),
        cmocka_unit_test(test_every_path_folds_back),
        cmocka_unit_test(test_full_tree),
        cmocka_unit_test(test_one_leaf_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
