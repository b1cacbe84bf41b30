/* fuzz_order_util.h -- the good on-premises order fuzz_order checks reports
 * against and fuzz_seeds writes seeds from: made the same way in both, from
 * the fixed keys of fuzz_util.h, so a seed's order is the target's. */
#ifndef PA_FUZZ_ORDER_UTIL_H
#define PA_FUZZ_ORDER_UTIL_H

#include <string.h>

#include "order_file.h"

#define FUZZ_ORDER_SERIAL "12345678"

/* The order's terms (delegated_key filled in by fuzz_onprem_order). */
static inline Volume__V1__Order fuzz_order_terms(uint8_t delegated[32]) {
    static uint32_t groups[] = {7};
    static char *facts[] = {"hostname"};
    Volume__V1__Order o = VOLUME__V1__ORDER__INIT;
    o.format_version = 1;
    o.service_serial = FUZZ_ORDER_SERIAL;
    o.revision = 2;
    o.customer = "Example Corp";
    o.groups = groups;
    o.n_groups = 1;
    o.product = "Office";
    o.mode = VOLUME__V1__SEAT_MODE__SEAT_MODE_CONCURRENT;
    o.seats = 50;
    o.valid_from = 1796083200;
    o.valid_until = 1827619200;
    o.issued_at = 1796000000;
    o.collect_facts = facts;
    o.n_collect_facts = 1;
    if (delegated) o.delegated_key = (ProtobufCBinaryData){.len = 32, .data = delegated};
    return o;
}

/* Signs the on-premises order (one accepted key hash) into f. 0 or -1. */
static inline int fuzz_onprem_order(EVP_PKEY *order_key, EVP_PKEY *server_key, order_file *f) {
    static uint8_t pub[32], salt[16] = {1}, hash[16] = {2};
    size_t len = sizeof pub;
    if (EVP_PKEY_get_raw_public_key(server_key, pub, &len) != 1) return -1;
    ProtobufCBinaryData h = {.len = 16, .data = hash};
    Volume__V1__OrderKeys k = VOLUME__V1__ORDER_KEYS__INIT;
    k.salt = (ProtobufCBinaryData){.len = 16, .data = salt};
    k.key_hashes = &h;
    k.n_key_hashes = 1;
    Volume__V1__Order o = fuzz_order_terms(pub);
    char err[256];
    return order_file_sign(f, order_key, &o, &k, err, sizeof err);
}

#endif
