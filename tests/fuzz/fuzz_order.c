/* fuzz_order.c -- libFuzzer target for volume orders and usage reports:
 * `.license` files an operator imports (they come from e-mail), the Order
 * bytes behind the vendor's signature, and the UsageReport messages the
 * vendor's Usage/Report method takes from the internet.
 *
 * The first byte picks the mode (its two low bits; the seeds use the ASCII
 * digits '0'-'3'); the rest is the content:
 *   0  armoured order text -> order_armour_read, then order_file_verify;
 *   1  the bytes of an Order, signed here with the fuzz order key, so the
 *      field checks behind the signature see mutated content;
 *   2  a UsageReport message -> usage_verify;
 *   3  report JSON, sent with a fixed on-premises order and signed here
 *      with the key that order delegates, so the report's own checks see
 *      mutated content.
 *
 * The target checks, beyond memory safety:
 *   - an order file that reads writes out (order_armour_write) to text that
 *     reads again to the same order bytes, signature and keys;
 *   - an order we signed is never refused as foreign or tampered: it
 *     decodes and verifies, or it is malformed;
 *   - a report we signed over a good order is never refused as foreign or
 *     tampered; an accepted one names the order's serial. */
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_order_util.h"
#include "fuzz_util.h"
#include "order_armour.h"
#include "order_file.h"
#include "order_keyring.h"
#include "usage_file.h"

static order_keyring *ring;
static EVP_PKEY *order_key, *server_key;
static order_file onprem; /* a good on-premises order delegating server_key */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    order_key = fuzz_ed25519(FUZZ_ORDER_SEED);
    server_key = fuzz_ed25519(FUZZ_SERVER_SEED);
    ring = order_keyring_new();
    char err[256];
    if (!ring || order_keyring_add(ring, order_key, err, sizeof err) != 0 ||
        fuzz_onprem_order(order_key, server_key, &onprem) != 0) {
        fprintf(stderr, "fuzz_order: set-up failed\n");
        exit(1);
    }
    return 0;
}

static void armoured(const uint8_t *data, size_t size) {
    order_file f, g;
    char err[512];
    if (order_armour_read(&f, (const char *)data, size, err, sizeof err) == ORDER_OK) {
        (void)order_file_verify(&f, ring, err, sizeof err);
        char *text = order_armour_write(&f);
        CHECK(text);
        CHECK(order_armour_read(&g, text, strlen(text), err, sizeof err) == ORDER_OK);
        CHECK(g.order_len == f.order_len && memcmp(g.order, f.order, f.order_len) == 0);
        CHECK(memcmp(g.signature, f.signature, sizeof f.signature) == 0 && strcmp(g.key_id, f.key_id) == 0);
        CHECK(g.keys_len == f.keys_len && (f.keys_len == 0 || memcmp(g.keys, f.keys, f.keys_len) == 0));
        order_file_clear(&g);
        free(text);
    }
    order_file_clear(&f);
}

static void signed_order(const uint8_t *data, size_t size) {
    uint8_t sig[TAGGED_SIG_LEN];
    char id[SIGNING_KEY_ID_LEN + 1], err[512];
    CHECK(tagged_sign(order_key, TAG_ORDER, data, size, sig) == 0 && signing_key_id(order_key, id) == 0);
    order_file f;
    order_status st = order_file_from_parts(&f, data, size, sig, sizeof sig, id, NULL, 0, err, sizeof err);
    CHECK(st == ORDER_OK || st == ORDER_MALFORMED);
    if (st == ORDER_OK) CHECK(order_file_verify(&f, ring, err, sizeof err) == ORDER_OK);
    order_file_clear(&f);
}

static void report_message(const uint8_t *data, size_t size) {
    Volume__V1__UsageReport *u = volume__v1__usage_report__unpack(NULL, size, data);
    usage_summary s;
    char err[512];
    (void)usage_verify(u, ring, &s, err, sizeof err);
    if (u) volume__v1__usage_report__free_unpacked(u, NULL);
}

static void signed_report(const uint8_t *data, size_t size) {
    uint8_t sig[TAGGED_SIG_LEN];
    CHECK(tagged_sign(server_key, TAG_USAGE, data, size, sig) == 0);
    Volume__V1__UsageReport u = VOLUME__V1__USAGE_REPORT__INIT;
    u.order = (ProtobufCBinaryData){.len = onprem.order_len, .data = onprem.order};
    u.order_signature = (ProtobufCBinaryData){.len = sizeof onprem.signature, .data = onprem.signature};
    u.order_key_id = onprem.key_id;
    u.report = (ProtobufCBinaryData){.len = size, .data = (uint8_t *)data};
    u.signature = (ProtobufCBinaryData){.len = sizeof sig, .data = sig};
    usage_summary s;
    char err[512];
    usage_status st = usage_verify(&u, ring, &s, err, sizeof err);
    CHECK(st != USAGE_FOREIGN_VENDOR && st != USAGE_TAMPERED);
    if (st == USAGE_OK) CHECK(strcmp(s.serial, onprem.o->service_serial) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    switch (data[0] & 3) {
    case 0: armoured(data + 1, size - 1); break;
    case 1: signed_order(data + 1, size - 1); break;
    case 2: report_message(data + 1, size - 1); break;
    default: signed_report(data + 1, size - 1); break;
    }
    return 0;
}
