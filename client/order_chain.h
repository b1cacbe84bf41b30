/* order_chain.h -- (internal) trusting a license an on-premises server
 * signed: vendor key -> order -> license (docs/volume.md).
 *
 * Such a server signs licenses with its own key, which no installer holds.
 * Its answers carry the order the vendor signed, and the order names that
 * key (Order.delegated_key). license_verify.c takes this path when the
 * license's key id is not a vendor key and an order came with it. */
#ifndef PA_ORDER_CHAIN_H
#define PA_ORDER_CHAIN_H

#include <openssl/evp.h>
#include <stddef.h>

#include "activation/v1/activation.pb-c.h"
#include "license_verify.h"
#include "volume/v1/order.pb-c.h"

/* Verifies s->order's signature with the vendor key s->order_key_id names
 * (tagged TAG_ORDER) before parsing a byte of it, then parses it, checks it
 * delegates a key and that the license names that key. On VERIFY_OK
 * *order (volume__v1__order__free_unpacked) and *delegated (EVP_PKEY_free)
 * are the caller's; otherwise VERIFY_BAD_ORDER with `err`. */
verify_status order_chain_open(const vendor_keys *k, const signed_license *s, Volume__V1__Order **order,
                               EVP_PKEY **delegated, char *err, size_t errlen);

/* The verified license `l` keeps within the order: it names the order's
 * serial and revision, product and edition, one of its groups, only its
 * features, the volume channel, and lies within its dates. VERIFY_OK or
 * VERIFY_BAD_ORDER with `err`. */
verify_status order_chain_terms(const Volume__V1__Order *o, const Activation__V1__License *l, char *err, size_t errlen);

#endif
