/* secret_wrap.c -- group secrets at rest: AES-256-GCM under a file-held KEK.
 *
 * Why it looks like this:
 * - GCM authenticates as well as encrypts, so a flipped bit anywhere in the
 *   nonce, ciphertext or tag, or a wrong KEK, makes unwrapping fail instead
 *   of yielding a wrong secret. The version byte is checked before any
 *   decryption. The AAD binds a blob to its role and group, so copying a
 *   blob to another group's record (or from the audit side to the
 *   activation side) fails too.
 * - Each wrap draws a fresh 96-bit nonce from RAND_bytes; a KEK wraps a few
 *   secrets per group, far below the 2^32 random-nonce limit for GCM.
 * - Unwrapping says only "no" (-1), never why: a caller that could tell a
 *   bad tag from a bad length would hand an attacker an oracle.
 * - Secret bytes on the stack are cleansed before returning; on failure the
 *   output is cleansed so nothing half-written survives.
 * - A KEK file readable by anyone but its owner is refused outright: a KEK
 *   that others can read protects nothing. */
#include "secret_wrap.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errbuf.h"
#include "hex.h"

#define WRAP_VERSION 0x01
#define WRAP_NONCE_LEN 12
#define WRAP_SECRET_LEN 32
#define WRAP_TAG_LEN 16
#define WRAP_OFF_NONCE 1
#define WRAP_OFF_CIPHER (WRAP_OFF_NONCE + WRAP_NONCE_LEN)
#define WRAP_OFF_TAG (WRAP_OFF_CIPHER + WRAP_SECRET_LEN)
#define WRAP_LABEL "pa-secret-v1"
#define WRAP_LABEL_LEN (sizeof WRAP_LABEL - 1)
#define WRAP_AAD_LEN (WRAP_LABEL_LEN + 1 + 4)
#define KEK_FILE_MAX 130   /* 64 hex characters and a CR LF, with room to see "too long" */

static void wrap_aad(int role, uint32_t group, uint8_t aad[WRAP_AAD_LEN]) {
    memcpy(aad, WRAP_LABEL, WRAP_LABEL_LEN);
    aad[WRAP_LABEL_LEN] = (uint8_t)role;
    aad[WRAP_LABEL_LEN + 1] = (uint8_t)(group >> 24);
    aad[WRAP_LABEL_LEN + 2] = (uint8_t)(group >> 16);
    aad[WRAP_LABEL_LEN + 3] = (uint8_t)(group >> 8);
    aad[WRAP_LABEL_LEN + 4] = (uint8_t)group;
}

static bool wrap_role_valid(int role) {
    return role == 1 || role == 2;
}

/* Encrypts the secret into blob's ciphertext and tag; the nonce is already there. */
static bool wrap_seal(EVP_CIPHER_CTX *c, const uint8_t kek[KEK_LEN], const uint8_t aad[WRAP_AAD_LEN],
                      const uint8_t secret[WRAP_SECRET_LEN], uint8_t blob[WRAP_BLOB_LEN]) {
    int n = 0, tail = 0;
    return EVP_EncryptInit_ex2(c, EVP_aes_256_gcm(), kek, blob + WRAP_OFF_NONCE, NULL) == 1 &&
           EVP_EncryptUpdate(c, NULL, &n, aad, WRAP_AAD_LEN) == 1 &&
           EVP_EncryptUpdate(c, blob + WRAP_OFF_CIPHER, &n, secret, WRAP_SECRET_LEN) == 1 &&
           n == WRAP_SECRET_LEN &&
           EVP_EncryptFinal_ex(c, blob + WRAP_OFF_CIPHER + n, &tail) == 1 && tail == 0 &&
           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, WRAP_TAG_LEN, blob + WRAP_OFF_TAG) == 1;
}

/* Decrypts and verifies; true only if the tag matches. */
static bool wrap_open(EVP_CIPHER_CTX *c, const uint8_t kek[KEK_LEN], const uint8_t aad[WRAP_AAD_LEN],
                      const uint8_t blob[WRAP_BLOB_LEN], uint8_t plain[WRAP_SECRET_LEN]) {
    uint8_t tag[WRAP_TAG_LEN];
    int n = 0, tail = 0;
    memcpy(tag, blob + WRAP_OFF_TAG, sizeof tag);  /* SET_TAG wants a mutable buffer */
    return EVP_DecryptInit_ex2(c, EVP_aes_256_gcm(), kek, blob + WRAP_OFF_NONCE, NULL) == 1 &&
           EVP_DecryptUpdate(c, NULL, &n, aad, WRAP_AAD_LEN) == 1 &&
           EVP_DecryptUpdate(c, plain, &n, blob + WRAP_OFF_CIPHER, WRAP_SECRET_LEN) == 1 &&
           n == WRAP_SECRET_LEN &&
           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, WRAP_TAG_LEN, tag) == 1 &&
           EVP_DecryptFinal_ex(c, plain + n, &tail) == 1 && tail == 0;
}

int secret_wrap(const uint8_t kek[KEK_LEN], int role, uint32_t group,
                const uint8_t secret[32], uint8_t blob[WRAP_BLOB_LEN]) {
    uint8_t aad[WRAP_AAD_LEN];
    if (!kek || !secret || !blob || !wrap_role_valid(role)) return -1;
    wrap_aad(role, group, aad);
    blob[0] = WRAP_VERSION;
    if (RAND_bytes(blob + WRAP_OFF_NONCE, WRAP_NONCE_LEN) != 1) return -1;

    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    bool ok = c && wrap_seal(c, kek, aad, secret, blob);
    EVP_CIPHER_CTX_free(c);
    if (!ok) OPENSSL_cleanse(blob, WRAP_BLOB_LEN);
    return ok ? 0 : -1;
}

int secret_unwrap(const uint8_t kek[KEK_LEN], int role, uint32_t group,
                  const uint8_t *blob, size_t blob_len, uint8_t secret[32]) {
    uint8_t aad[WRAP_AAD_LEN], plain[WRAP_SECRET_LEN];
    if (!secret) return -1;
    OPENSSL_cleanse(secret, WRAP_SECRET_LEN);
    if (!kek || !blob || blob_len != WRAP_BLOB_LEN || blob[0] != WRAP_VERSION || !wrap_role_valid(role))
        return -1;
    wrap_aad(role, group, aad);

    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    bool ok = c && wrap_open(c, kek, aad, blob, plain);
    EVP_CIPHER_CTX_free(c);
    if (ok) memcpy(secret, plain, WRAP_SECRET_LEN);
    OPENSSL_cleanse(plain, sizeof plain);
    return ok ? 0 : -1;
}

/* 32 raw bytes, or 64 hex characters with an optional LF or CR LF. */
static bool kek_parse(const uint8_t *buf, size_t n, uint8_t kek[KEK_LEN]) {
    if (n == KEK_LEN) {
        memcpy(kek, buf, KEK_LEN);
        return true;
    }
    if (n > 0 && buf[n - 1] == '\n') n--;
    if (n > 0 && buf[n - 1] == '\r') n--;
    return n == 2 * KEK_LEN && pa_hex_decode((const char *)buf, n, kek, KEK_LEN) == KEK_LEN;
}

/* Reads up to `cap` bytes until end of file; returns the count or -1. */
static ssize_t kek_read_all(int fd, uint8_t *buf, size_t cap) {
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int kek_load_file(const char *path, uint8_t kek[KEK_LEN], char *err, size_t errlen) {
    struct stat st;
    uint8_t buf[KEK_FILE_MAX + 1];
    if (!path || !kek) return err_set(err, errlen, "no key-encryption key file given");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(err, errlen, "cannot open key-encryption key file %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, errlen, "key-encryption key file %s is not a regular file", path);
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        return err_set(err, errlen, "key-encryption key file %s is accessible by group or others "
                       "(mode %04o); it must be readable by its owner only (chmod 600 %s)",
                       path, (unsigned)(st.st_mode & 07777), path);
    }
    ssize_t n = kek_read_all(fd, buf, sizeof buf);
    int saved = errno;
    close(fd);
    if (n < 0) return err_set(err, errlen, "cannot read key-encryption key file %s: %s", path, strerror(saved));
    bool ok = kek_parse(buf, (size_t)n, kek);
    OPENSSL_cleanse(buf, sizeof buf);
    if (!ok) {
        OPENSSL_cleanse(kek, KEK_LEN);
        return err_set(err, errlen, "key-encryption key file %s must hold 32 raw bytes or 64 hex "
                       "characters (optionally followed by a newline); it holds %zd bytes that are neither",
                       path, n);
    }
    return 0;
}

static bool kek_write_all(int fd, const char *buf, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        buf += w;
        n -= (size_t)w;
    }
    return true;
}

int kek_create_file(const char *path, char *err, size_t errlen) {
    uint8_t kek[KEK_LEN];
    char text[2 * KEK_LEN + 1];
    if (!path) return err_set(err, errlen, "no key-encryption key file given");
    if (RAND_bytes(kek, sizeof kek) != 1) return err_set(err, errlen, "the random generator failed");
    pa_hex_encode(kek, KEK_LEN, text);
    text[2 * KEK_LEN] = '\n';
    OPENSSL_cleanse(kek, sizeof kek);

    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        OPENSSL_cleanse(text, sizeof text);
        return err_set(err, errlen, "cannot create key-encryption key file %s: %s", path, strerror(errno));
    }
    bool ok = fchmod(fd, 0600) == 0 && kek_write_all(fd, text, sizeof text) && fsync(fd) == 0;
    int saved = errno;
    OPENSSL_cleanse(text, sizeof text);
    if (close(fd) != 0) ok = false;
    if (!ok) {
        unlink(path);
        return err_set(err, errlen, "cannot write key-encryption key file %s: %s", path, strerror(saved));
    }
    return 0;
}
