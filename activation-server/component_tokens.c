/* component_tokens.c -- see component_tokens.h. */
#include "component_tokens.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

static int token_order(const void *a, const void *b) { return memcmp(a, b, COMPONENT_TOKEN_LEN); }

/* SHA-256(name 0x00 digest), cut to a token; 0, or -1 when OpenSSL fails. */
static int token_of(const Activation__V1__MachineComponent *c, uint8_t out[COMPONENT_TOKEN_LEN]) {
    uint8_t d[SHA256_DIGEST_LENGTH];
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    int ok = h && EVP_DigestInit_ex(h, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(h, c->name, strlen(c->name) + 1) == 1 && /* the name and its 0x00 */
             EVP_DigestUpdate(h, c->digest.data, c->digest.len) == 1 && EVP_DigestFinal_ex(h, d, NULL) == 1;
    EVP_MD_CTX_free(h);
    if (ok) memcpy(out, d, COMPONENT_TOKEN_LEN);
    return ok ? 0 : -1;
}

size_t component_tokens(const Activation__V1__ActivateRequest *rq, uint8_t out[COMPONENTS_MAX * COMPONENT_TOKEN_LEN]) {
    size_t n = 0;
    for (size_t i = 0; i < rq->n_components && n < COMPONENTS_MAX; i++)
        if (token_of(rq->components[i], out + n * COMPONENT_TOKEN_LEN) == 0) n++;
    qsort(out, n, COMPONENT_TOKEN_LEN, token_order);
    return n;
}
