/* test_secret_wrap.c -- wrapped group secrets and KEK files.
 *
 * A wrapped blob must come back only under the same KEK, role and group,
 * and only untouched: every byte of it is flipped in turn. KEK files are
 * created and loaded in a private temporary directory; files others can
 * read, or that hold the wrong amount of key, are refused with a message
 * naming the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret_wrap.h"

static void fill_pattern(uint8_t *p, size_t n, uint8_t seed) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(seed + 7 * i);
}

static void test_round_trip(void **state) {
    uint8_t kek[KEK_LEN], secret[32], blob[WRAP_BLOB_LEN], back[32];
    fill_pattern(kek, sizeof kek, 1);
    fill_pattern(secret, sizeof secret, 99);
    for (int role = 1; role <= 2; role++) {
        assert_int_equal(secret_wrap(kek, role, 4365, secret, blob), 0);
        assert_int_equal(blob[0], 0x01);
        assert_memory_not_equal(blob + 13, secret, 32);  /* ciphertext is not the secret */
        assert_int_equal(secret_unwrap(kek, role, 4365, blob, sizeof blob, back), 0);
        assert_memory_equal(back, secret, sizeof secret);
    }
}

static void test_nonces_are_fresh(void **state) {
    uint8_t kek[KEK_LEN], secret[32], a[WRAP_BLOB_LEN], b[WRAP_BLOB_LEN];
    fill_pattern(kek, sizeof kek, 1);
    fill_pattern(secret, sizeof secret, 2);
    assert_int_equal(secret_wrap(kek, 1, 1, secret, a), 0);
    assert_int_equal(secret_wrap(kek, 1, 1, secret, b), 0);
    assert_memory_not_equal(a + 1, b + 1, 12);
    assert_memory_not_equal(a + 13, b + 13, 32);
}

static void assert_unwrap_fails(const uint8_t *kek, int role, uint32_t group, const uint8_t *blob,
                                size_t len) {
    uint8_t out[32], zero[32] = {0};
    memset(out, 0x5A, sizeof out);
    assert_int_equal(secret_unwrap(kek, role, group, blob, len, out), -1);
    assert_memory_equal(out, zero, sizeof out);  /* nothing half-written */
}

static void test_tampered_blob_every_byte(void **state) {
    uint8_t kek[KEK_LEN], secret[32], blob[WRAP_BLOB_LEN];
    fill_pattern(kek, sizeof kek, 3);
    fill_pattern(secret, sizeof secret, 4);
    assert_int_equal(secret_wrap(kek, 2, 77, secret, blob), 0);
    /* Byte 0 is the version, 1-12 the nonce, 13-44 ciphertext, 45-60 the tag. */
    for (size_t i = 0; i < WRAP_BLOB_LEN; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            uint8_t bad[WRAP_BLOB_LEN];
            memcpy(bad, blob, sizeof bad);
            bad[i] ^= (uint8_t)(1u << bit);
            assert_unwrap_fails(kek, 2, 77, bad, sizeof bad);
        }
    }
}

static void test_wrong_kek_place_and_length(void **state) {
    uint8_t kek[KEK_LEN], other[KEK_LEN], secret[32], blob[WRAP_BLOB_LEN + 1];
    fill_pattern(kek, sizeof kek, 5);
    memcpy(other, kek, sizeof other);
    other[31] ^= 1;
    fill_pattern(secret, sizeof secret, 6);
    assert_int_equal(secret_wrap(kek, 1, 1000, secret, blob), 0);
    blob[WRAP_BLOB_LEN] = 0;
    assert_unwrap_fails(other, 1, 1000, blob, WRAP_BLOB_LEN);   /* wrong KEK */
    assert_unwrap_fails(kek, 2, 1000, blob, WRAP_BLOB_LEN);     /* wrong role */
    assert_unwrap_fails(kek, 1, 1001, blob, WRAP_BLOB_LEN);     /* wrong group */
    assert_unwrap_fails(kek, 1, 1000 | 1u << 24, blob, WRAP_BLOB_LEN); /* all four group bytes count */
    assert_unwrap_fails(kek, 1, 1000, blob, WRAP_BLOB_LEN - 1); /* short */
    assert_unwrap_fails(kek, 1, 1000, blob, WRAP_BLOB_LEN + 1); /* long */
    assert_unwrap_fails(kek, 1, 1000, blob, 0);
    assert_unwrap_fails(kek, 3, 1000, blob, WRAP_BLOB_LEN);     /* no such role */
    assert_int_equal(secret_wrap(kek, 0, 1000, secret, blob), -1);
    assert_int_equal(secret_wrap(kek, 3, 1000, secret, blob), -1);
}

/* ---- KEK files -------------------------------------------------------- */

typedef struct kek_dir {
    char path[256];  /* the temporary directory */
} kek_dir;

static int setup_dir(void **state) {
    kek_dir *d = calloc(1, sizeof *d);
    const char *tmp = getenv("TMPDIR");
    snprintf(d->path, sizeof d->path, "%s/pa-kek-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(d->path)) return -1;
    *state = d;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    return remove(path);
}

static int teardown_dir(void **state) {
    kek_dir *d = *state;
    int rc = nftw(d->path, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(d);
    return rc;
}

static void path_in(const kek_dir *d, const char *name, char *out, size_t n) {
    snprintf(out, n, "%s/%s", d->path, name);
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

static void test_kek_create_and_load(void **state) {
    kek_dir *d = *state;
    char path[300], err[512];
    uint8_t a[KEK_LEN], b[KEK_LEN], zero[KEK_LEN] = {0};
    struct stat st;
    path_in(d, "kek.hex", path, sizeof path);
    assert_int_equal(kek_create_file(path, err, sizeof err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 65);
    assert_int_equal(kek_load_file(path, a, err, sizeof err), 0);
    assert_memory_not_equal(a, zero, sizeof a);
    assert_int_equal(kek_load_file(path, b, err, sizeof err), 0);
    assert_memory_equal(a, b, sizeof a);
    /* Never overwrites an existing KEK. */
    assert_int_equal(kek_create_file(path, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    assert_int_equal(kek_load_file(path, b, err, sizeof err), 0);
    assert_memory_equal(a, b, sizeof a);
}

static void test_kek_raw_and_hex_forms(void **state) {
    kek_dir *d = *state;
    char path[300], err[512];
    uint8_t raw[KEK_LEN], got[KEK_LEN];
    fill_pattern(raw, sizeof raw, 0xF0);
    path_in(d, "raw", path, sizeof path);
    write_file(path, raw, sizeof raw, 0600);
    assert_int_equal(kek_load_file(path, got, err, sizeof err), 0);
    assert_memory_equal(got, raw, sizeof raw);

    char hex[2 * KEK_LEN + 3];
    for (size_t i = 0; i < KEK_LEN; i++) snprintf(hex + 2 * i, 3, "%02X", raw[i]);
    strcpy(hex + 2 * KEK_LEN, "\r\n");
    path_in(d, "crlf", path, sizeof path);
    write_file(path, hex, strlen(hex), 0400);
    assert_int_equal(kek_load_file(path, got, err, sizeof err), 0);
    assert_memory_equal(got, raw, sizeof raw);
    path_in(d, "bare", path, sizeof path);
    write_file(path, hex, 2 * KEK_LEN, 0600);
    assert_int_equal(kek_load_file(path, got, err, sizeof err), 0);
    assert_memory_equal(got, raw, sizeof raw);
}

static void expect_refused(const char *path, const char *message_part) {
    char err[512] = "";
    uint8_t kek[KEK_LEN];
    assert_int_equal(kek_load_file(path, kek, err, sizeof err), -1);
    if (!strstr(err, message_part)) fail_msg("error \"%s\" lacks \"%s\"", err, message_part);
    if (!strstr(err, path)) fail_msg("error \"%s\" does not name %s", err, path);
}

static void test_kek_file_permissions_refused(void **state) {
    kek_dir *d = *state;
    char path[300], err[512];
    path_in(d, "kek", path, sizeof path);
    assert_int_equal(kek_create_file(path, err, sizeof err), 0);
    const mode_t loose[] = {0640, 0604, 0644, 0660, 0606, 0610};
    for (size_t i = 0; i < sizeof loose / sizeof loose[0]; i++) {
        assert_int_equal(chmod(path, loose[i]), 0);
        expect_refused(path, "group or others");
    }
    assert_int_equal(chmod(path, 0600), 0);
    uint8_t kek[KEK_LEN];
    assert_int_equal(kek_load_file(path, kek, err, sizeof err), 0);
}

static void test_kek_bad_contents_refused(void **state) {
    kek_dir *d = *state;
    char path[300];
    char hex63[64], nonhex[65], long_hex[131];
    memset(hex63, 'a', 63);
    memset(nonhex, 'a', 64);
    nonhex[10] = 'g';
    memset(long_hex, 'b', sizeof long_hex);
    path_in(d, "short", path, sizeof path);
    write_file(path, hex63, 63, 0600);
    expect_refused(path, "32 raw bytes or 64 hex");
    path_in(d, "nonhex", path, sizeof path);
    write_file(path, nonhex, 64, 0600);
    expect_refused(path, "32 raw bytes or 64 hex");
    path_in(d, "long", path, sizeof path);
    write_file(path, long_hex, sizeof long_hex, 0600);
    expect_refused(path, "32 raw bytes or 64 hex");
    path_in(d, "empty", path, sizeof path);
    write_file(path, "", 0, 0600);
    expect_refused(path, "32 raw bytes or 64 hex");
    path_in(d, "missing", path, sizeof path);
    expect_refused(path, "cannot open");
    expect_refused(d->path, "not a regular file");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_nonces_are_fresh),
        cmocka_unit_test(test_tampered_blob_every_byte),
        cmocka_unit_test(test_wrong_kek_place_and_length),
        cmocka_unit_test_setup_teardown(test_kek_create_and_load, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_kek_raw_and_hex_forms, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_kek_file_permissions_refused, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_kek_bad_contents_refused, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
