/* place_key.c -- the place key on disk and the proofs made with it (see
 * place_key.h).
 *
 * The private key is the one secret of an activated machine: whoever reads
 * it, together with the license file, can renew or give up the machine's
 * place. So it is written like the license (temporary file, fsync, rename:
 * never half a key) with mode 0600 inside the 0700 state directory, and the
 * PEM text is built in a secure-memory BIO, whose buffers are wiped when
 * freed. The message signed is built by keystore/place_proof.c, the same
 * code the server verifies with. */
#include "place_key.h"

#include <errno.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "state.h"

static int path_of(const char *dir, const char *name, char path[PATH_MAX], char *err, size_t errlen) {
    if (state_path(path, PATH_MAX, dir, name) == 0) return 0;
    snprintf(err, errlen, "state directory path too long");
    return -1;
}

static int load(const char *path, EVP_PKEY **key, char *err, size_t errlen) {
    *key = NULL;
    FILE *fp = fopen(path, "r");
    if (!fp) {
        if (errno == ENOENT) return PLACE_KEY_NONE;
        snprintf(err, errlen, "cannot read the place key %s: %s", path, strerror(errno));
        return PLACE_KEY_IO;
    }
    EVP_PKEY *k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    ERR_clear_error();
    if (!k || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(k);
        snprintf(err, errlen, "the place key %s is damaged; remove it and activate again with the product key", path);
        return PLACE_KEY_DAMAGED;
    }
    *key = k;
    return 0;
}

static int store(const char *dir, const char *path, EVP_PKEY *key, char *err, size_t errlen) {
    if (state_dir_ensure(dir, err, errlen) != 0) return -1;
    BIO *mem = BIO_new(BIO_s_secmem());
    char *pem = NULL;
    long len = 0;
    if (mem && PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL) == 1) len = BIO_get_mem_data(mem, &pem);
    int rc = -1;
    if (len <= 0) snprintf(err, errlen, "cannot encode the place key");
    else rc = state_write_atomic(path, pem, (size_t)len, 0600, err, errlen);
    BIO_free(mem); /* wipes the PEM text */
    ERR_clear_error();
    return rc;
}

int place_key_load(const char *state_dir, EVP_PKEY **key, char *err, size_t errlen) {
    char path[PATH_MAX];
    *key = NULL;
    if (path_of(state_dir, STATE_PLACE_KEY, path, err, errlen) != 0) return PLACE_KEY_IO;
    return load(path, key, err, errlen);
}

int place_key_pending(const char *state_dir, EVP_PKEY **key, char *err, size_t errlen) {
    char path[PATH_MAX];
    *key = NULL;
    if (path_of(state_dir, STATE_PLACE_KEY_PENDING, path, err, errlen) != 0) return PLACE_KEY_IO;
    int rc = load(path, key, err, errlen);
    if (rc == 0 || rc == PLACE_KEY_IO) return rc;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!k) {
        ERR_clear_error();
        snprintf(err, errlen, "cannot make a place key");
        return PLACE_KEY_IO;
    }
    if (store(state_dir, path, k, err, errlen) != 0) {
        EVP_PKEY_free(k);
        return PLACE_KEY_IO;
    }
    *key = k;
    return 0;
}

int place_key_confirm(const char *state_dir, char *err, size_t errlen) {
    char pending[PATH_MAX], confirmed[PATH_MAX];
    if (path_of(state_dir, STATE_PLACE_KEY_PENDING, pending, err, errlen) != 0 ||
        path_of(state_dir, STATE_PLACE_KEY, confirmed, err, errlen) != 0)
        return -1;
    return state_rename(pending, confirmed, err, errlen) < 0 ? -1 : 0;
}

int place_key_remove(const char *state_dir, char *err, size_t errlen) {
    const char *names[] = {STATE_PLACE_KEY, STATE_PLACE_KEY_PENDING};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[PATH_MAX];
        if (path_of(state_dir, names[i], path, err, errlen) != 0) return -1;
        if (state_remove(path, err, errlen) != 0) return -1;
    }
    return 0;
}

bool place_key_confirmed(const char *state_dir) {
    char path[PATH_MAX];
    struct stat st;
    return state_path(path, sizeof path, state_dir, STATE_PLACE_KEY) == 0 && stat(path, &st) == 0;
}

int place_key_public(EVP_PKEY *key, uint8_t out[PLACE_KEY_LEN]) {
    size_t len = PLACE_KEY_LEN;
    return EVP_PKEY_get_raw_public_key(key, out, &len) == 1 && len == PLACE_KEY_LEN ? 0 : -1;
}

int place_key_prove(EVP_PKEY *key, place_op op, const char *license_id, const uint8_t machine_id[32],
                    place_key_proof *out) {
    int64_t now = (int64_t)time(NULL);
    if (place_key_public(key, out->pub) != 0 || place_proof_sign(key, op, license_id, machine_id, now, out->sig) != 0)
        return -1;
    out->msg = (Activation__V1__PlaceProof)ACTIVATION__V1__PLACE_PROOF__INIT;
    out->msg.place_key = (ProtobufCBinaryData){.len = PLACE_KEY_LEN, .data = out->pub};
    out->msg.timestamp = now;
    out->msg.signature = (ProtobufCBinaryData){.len = PLACE_PROOF_SIG_LEN, .data = out->sig};
    return 0;
}
