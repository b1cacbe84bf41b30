/* random_pool.h -- fresh random bytes for the license ids, drawn from
 * OpenSSL's DRBG a pool at a time.
 *
 * Every granted Activate offers the script LICENSE_RANDOM_LEN new random
 * bytes. One RAND_bytes call per grant cost the activation server about 3 %
 * of its CPU at peak (the DRBG's locking and its per-call setup, not the
 * bytes), so each worker draws RANDOM_POOL_BYTES at once and hands them out
 * a few at a time. The bytes are the DRBG's either way; a byte handed out
 * is wiped from the pool, so the pool holds only bytes nobody has seen.
 * One pool per thread: it has no lock. */
#ifndef PA_RANDOM_POOL_H
#define PA_RANDOM_POOL_H

#include <stddef.h>
#include <stdint.h>

#define RANDOM_POOL_BYTES 512

/* A zeroed pool (calloc, = {0}) is empty: its first take draws. */
typedef struct random_pool {
    uint8_t bytes[RANDOM_POOL_BYTES]; /* the last `left` are drawn and not yet handed out */
    size_t left;                      /* 0: draw again before the next take */
} random_pool;

/* Copies n (<= RANDOM_POOL_BYTES) fresh bytes to out; 0, or -1 when
 * OpenSSL has no randomness (out is then untouched). */
int random_pool_take(random_pool *p, uint8_t *out, size_t n);

/* Wipes what is left; the pool is empty again. */
void random_pool_wipe(random_pool *p);

#endif
