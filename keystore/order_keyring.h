/* order_keyring.h -- the vendor's order-verification keys, by key id.
 *
 * Whoever checks an order (an activation server importing it, the
 * installer library, `keystore order show`, the vendor's usage import)
 * holds one or more Ed25519 public keys: several so the vendor can rotate
 * its order-signing key while orders signed with the old one are still in
 * use. An order names its key by SignedOrder.key_id (signing_key_id.h), so
 * lookup is by that id; an order whose id is not here is from a foreign
 * vendor. */
#ifndef PA_ORDER_KEYRING_H
#define PA_ORDER_KEYRING_H

#include <openssl/evp.h>
#include <stddef.h>

#include "signing_key_id.h"

#define ORDER_KEYRING_MAX 32 /* keys one ring holds */

typedef struct order_keyring order_keyring;

order_keyring *order_keyring_new(void);
void order_keyring_free(order_keyring *r);

/* Adds an Ed25519 key (public or private; the ring keeps a reference). A
 * key already held is not added twice. 0, or -1 with a message. */
int order_keyring_add(order_keyring *r, EVP_PKEY *key, char *err, size_t errlen);

/* Adds every PUBLIC KEY block of a PEM text (a bundle may hold several);
 * at least one. 0, or -1 with a message. */
int order_keyring_add_pem(order_keyring *r, const char *pem, size_t len, char *err, size_t errlen);

/* The same from a file. */
int order_keyring_load(order_keyring *r, const char *path, char *err, size_t errlen);

size_t order_keyring_size(const order_keyring *r);

/* The key with that key id, or NULL. */
EVP_PKEY *order_keyring_find(const order_keyring *r, const char *key_id);

/* The key id of the i-th key (for messages and `order show`). */
const char *order_keyring_id(const order_keyring *r, size_t i);

#endif
