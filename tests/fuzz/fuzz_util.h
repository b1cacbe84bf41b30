/* fuzz_util.h -- what the fuzz targets share: the invariant check that
 * turns a broken promise into a crash libFuzzer keeps, the entry points'
 * prototypes, and the fixed Ed25519 keys with which targets (and
 * fuzz_seeds) sign inputs, so that the parsers behind a signature check are
 * reached with mutated content too. The keys are made from constant seeds so
 * a crashing input reproduces on any machine; they sign nothing real. */
#ifndef PA_FUZZ_UTIL_H
#define PA_FUZZ_UTIL_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* libFuzzer calls them */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Seeds of the vendor's license key and of an installer's request key. */
#define FUZZ_VENDOR_SEED "fuzz-only vendor license key...."
#define FUZZ_REQUEST_SEED "fuzz-only offline request key..."
/* Seeds of the vendor's order-signing key and of an on-premises server's key. */
#define FUZZ_ORDER_SEED "fuzz-only vendor order key......"
#define FUZZ_SERVER_SEED "fuzz-only on-premises server key"
/* The machine the licenses of the offline target are for (32 bytes). */
#define FUZZ_MACHINE_ID "fuzz machine id, 32 bytes long."

/* The Ed25519 key made from a 32-character seed; exits if OpenSSL cannot. */
static inline EVP_PKEY *fuzz_ed25519(const char seed[32]) {
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, (const unsigned char *)seed, 32);
    if (!k) {
        fprintf(stderr, "fuzz: cannot make an Ed25519 key\n");
        exit(1);
    }
    return k;
}

/* Ed25519 signature (64 bytes) of data; 0 or -1. */
static inline int fuzz_sign(EVP_PKEY *k, const void *data, size_t len, uint8_t sig[64]) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t n = 64;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) == 1 && EVP_DigestSign(ctx, sig, &n, data, len) == 1 &&
             n == 64;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* A NUL-terminated copy of the input (parsers of text take C strings; an
 * embedded NUL ends the text as it would in a file read by state.c). */
static inline char *fuzz_text(const uint8_t *data, size_t size) {
    char *t = malloc(size + 1);
    if (!t) abort();
    for (size_t i = 0; i < size; i++) t[i] = (char)data[i];
    t[size] = '\0';
    return t;
}

#endif
