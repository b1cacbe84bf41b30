/* random_pool.c -- see random_pool.h. */
#include "random_pool.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>

int random_pool_take(random_pool *p, uint8_t *out, size_t n) {
    if (n > RANDOM_POOL_BYTES) return -1;
    if (p->left < n) {
        if (RAND_bytes(p->bytes, RANDOM_POOL_BYTES) != 1) return -1;
        p->left = RANDOM_POOL_BYTES;
    }
    uint8_t *from = p->bytes + RANDOM_POOL_BYTES - p->left;
    memcpy(out, from, n);
    OPENSSL_cleanse(from, n);
    p->left -= n;
    return 0;
}

void random_pool_wipe(random_pool *p) {
    OPENSSL_cleanse(p->bytes, sizeof p->bytes);
    p->left = 0;
}
