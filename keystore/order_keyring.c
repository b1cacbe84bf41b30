/* order_keyring.c -- see order_keyring.h. A small array: rings hold a
 * handful of keys and are searched once per order checked. */
#include "order_keyring.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"

struct order_keyring {
    EVP_PKEY *keys[ORDER_KEYRING_MAX];                   /* one reference each */
    char ids[ORDER_KEYRING_MAX][SIGNING_KEY_ID_LEN + 1]; /* keys[i]'s key id */
    size_t n;
};

order_keyring *order_keyring_new(void) { return calloc(1, sizeof(order_keyring)); }

void order_keyring_free(order_keyring *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) EVP_PKEY_free(r->keys[i]);
    free(r);
}

int order_keyring_add(order_keyring *r, EVP_PKEY *key, char *err, size_t errlen) {
    char id[SIGNING_KEY_ID_LEN + 1];
    if (!key || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) return err_set(err, errlen, "not an Ed25519 key");
    if (signing_key_id(key, id) != 0) return err_set(err, errlen, "the key has no raw public key");
    if (order_keyring_find(r, id)) return 0;
    if (r->n == ORDER_KEYRING_MAX) return err_set(err, errlen, "more than %d order keys", ORDER_KEYRING_MAX);
    if (EVP_PKEY_up_ref(key) != 1) return err_set(err, errlen, "out of memory");
    r->keys[r->n] = key;
    memcpy(r->ids[r->n], id, sizeof id);
    r->n++;
    return 0;
}

int order_keyring_add_pem(order_keyring *r, const char *pem, size_t len, char *err, size_t errlen) {
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (!b) return err_set(err, errlen, "out of memory");
    int added = 0, rc = 0;
    EVP_PKEY *k;
    while (rc == 0 && (k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL))) {
        rc = order_keyring_add(r, k, err, errlen);
        EVP_PKEY_free(k);
        added++;
    }
    ERR_clear_error(); /* the loop ends on "no start line" */
    BIO_free(b);
    if (rc == 0 && added == 0) rc = err_set(err, errlen, "no PEM public key (BEGIN PUBLIC KEY) in it");
    return rc;
}

int order_keyring_load(order_keyring *r, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, errlen, "cannot open %s: %s", path, strerror(errno));
    char buf[64 * 1024];
    size_t n = fread(buf, 1, sizeof buf, f);
    bool too_big = n == sizeof buf, failed = ferror(f) != 0;
    fclose(f);
    if (failed) return err_set(err, errlen, "cannot read %s", path);
    if (too_big) return err_set(err, errlen, "%s: larger than a key bundle can be (64 KiB)", path);
    char inner[256];
    if (order_keyring_add_pem(r, buf, n, inner, sizeof inner) != 0) return err_set(err, errlen, "%s: %s", path, inner);
    return 0;
}

size_t order_keyring_size(const order_keyring *r) { return r ? r->n : 0; }

EVP_PKEY *order_keyring_find(const order_keyring *r, const char *key_id) {
    for (size_t i = 0; r && key_id && i < r->n; i++)
        if (strcmp(r->ids[i], key_id) == 0) return r->keys[i];
    return NULL;
}

const char *order_keyring_id(const order_keyring *r, size_t i) { return r && i < r->n ? r->ids[i] : NULL; }
