/* fuzz_offline.c -- libFuzzer target for the files an installer reads that
 * come from elsewhere: license files (the stored license, and the one
 * `activate install` takes from a USB stick) and offline request files
 * (which `activate fulfil` takes from an air-gapped machine).
 *
 * The first byte picks the mode (its two low bits, so the ASCII digits
 * '0'-'3' of the seeds name them); the rest is the content:
 *   0  license file text -> license_file_parse, then license_verify;
 *   1  the bytes of a License message, signed here with the fuzz vendor key
 *      (leaf FUZZ_TREE_INDEX of the fuzz batch tree, fuzz_tree.h) and
 *      written as a license file -> parse -> license_verify, so the
 *      checks behind the signature (protobuf unpack, version, key id,
 *      license id, machine binding) see mutated content; then the same
 *      with another index, size, sibling or path length, each refused;
 *   2  offline request text -> offline_request_parse (signature first);
 *   3  an offline request without its last two lines: the target appends
 *      the fuzz request key's public_key line and signs the whole, so the
 *      field checks behind the signature see mutated content.
 *
 * The target checks, beyond memory safety:
 *   - a parsed license file has a 64-byte signature, and writing it out
 *     again (license_file_format) and parsing gives the same license, order
 *     and counters;
 *   - whatever passes the signature carries the untampered place in its
 *     tree: index FUZZ_TREE_INDEX, size FUZZ_TREE_SIZE and the path the
 *     fuzz tree gives its bytes (the seeds and mode 1 sign nothing else);
 *   - a license we signed is never refused for its signature or key, and
 *     is accepted only if it is version 1, names our key, has a license id
 *     of 32 lowercase hex starting with its group and serial, and is bound
 *     to our machine id;
 *   - an accepted request has a canonical product key (pa_key_check gives
 *     it back unchanged) and sets a fingerprint of the request key, ours
 *     in mode 3; a refused one says why in pa_error. */
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "fuzz_tree.h"
#include "fuzz_util.h"
#include "license_verify.h"
#include "state.h"

static const uint8_t MACHINE_ID[PA_MACHINE_ID_LEN] = FUZZ_MACHINE_ID;

static EVP_PKEY *vendor_key, *request_key;
static vendor_keys vendor;
static char request_pub_b64[64], request_fp[24];
static struct pa_client client; /* only error and request_fp are used */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    vendor_key = fuzz_ed25519(FUZZ_VENDOR_SEED);
    request_key = fuzz_ed25519(FUZZ_REQUEST_SEED);
    vendor.key[0] = vendor_key;
    CHECK(signing_key_id(vendor_key, vendor.key_id[0]) == 0);
    vendor.n = 1;

    uint8_t raw[32], d[SHA256_DIGEST_LENGTH];
    size_t raw_len = sizeof raw;
    CHECK(EVP_PKEY_get_raw_public_key(request_key, raw, &raw_len) == 1 && raw_len == 32);
    char *b64 = b64_encode(raw, sizeof raw);
    CHECK(b64 && strlen(b64) < sizeof request_pub_b64);
    strcpy(request_pub_b64, b64);
    free(b64);
    SHA256(raw, sizeof raw, d); /* offline.c's fingerprint rule */
    snprintf(request_fp, sizeof request_fp, "%02x%02x-%02x%02x-%02x%02x-%02x%02x", d[0], d[1], d[2], d[3], d[4], d[5],
             d[6], d[7]);
    return 0;
}

/* ---- license files ----------------------------------------------------- */

static void check_verified(const signed_license *s, bool signed_here) {
    Activation__V1__License *l = NULL;
    char err[256] = "";
    verify_status st = license_verify(&vendor, s, MACHINE_ID, &l, err, sizeof err);
    if (signed_here) CHECK(st != VERIFY_UNKNOWN_KEY && st != VERIFY_BAD_SIGNATURE);
    if (st == VERIFY_OK || st == VERIFY_MALFORMED || st == VERIFY_WRONG_MACHINE) { /* the signature held */
        merkle_hash path[MERKLE_MAX_PATH];
        uint8_t msg[MERKLE_MESSAGE_LEN];
        size_t n = fuzz_tree(s->license, s->license_len, path, msg);
        CHECK(s->tree_index == FUZZ_TREE_INDEX && s->tree_size == FUZZ_TREE_SIZE && s->tree_path_len == n);
        CHECK(memcmp(s->tree_path, path, n * MERKLE_HASH_LEN) == 0);
    }
    if (st != VERIFY_OK) {
        CHECK(l == NULL && err[0] != '\0');
        return;
    }
    CHECK(l && l->format_version == 1);
    CHECK(l->signing_key_id && strcmp(l->signing_key_id, vendor.key_id[0]) == 0);
    char prefix[17];
    snprintf(prefix, sizeof prefix, "%08x%08x", (unsigned)l->key_group, (unsigned)l->key_serial);
    CHECK(l->license_id && strlen(l->license_id) == 32 && strspn(l->license_id, "0123456789abcdef") == 32);
    CHECK(memcmp(l->license_id, prefix, 16) == 0);
    CHECK(l->machine_id.len == 32 && memcmp(l->machine_id.data, MACHINE_ID, 32) == 0);
    activation__v1__license__free_unpacked(l, NULL);
}

static bool same_license(const signed_license *a, const signed_license *b) {
    return a->license_len == b->license_len &&
           (a->license_len == 0 || memcmp(a->license, b->license, a->license_len) == 0) &&
           a->signature_len == b->signature_len && memcmp(a->signature, b->signature, a->signature_len) == 0 &&
           strcmp(a->key_id, b->key_id) == 0 && a->activation_count == b->activation_count &&
           a->order_len == b->order_len && (a->order_len == 0 || memcmp(a->order, b->order, a->order_len) == 0) &&
           a->order_signature_len == b->order_signature_len &&
           memcmp(a->order_signature, b->order_signature, a->order_signature_len) == 0 &&
           strcmp(a->order_key_id, b->order_key_id) == 0 && memcmp(&a->volume, &b->volume, sizeof a->volume) == 0 &&
           a->tree_index == b->tree_index && a->tree_size == b->tree_size && a->tree_path_len == b->tree_path_len &&
           memcmp(a->tree_path, b->tree_path, a->tree_path_len * MERKLE_HASH_LEN) == 0;
}

/* Parses `text`; on success checks the round trip and the verification. */
static void fuzz_license_file(const char *text, bool signed_here) {
    signed_license s;
    char err[256] = "";
    if (license_file_parse(text, &s, err, sizeof err) != 0) {
        CHECK(err[0] != '\0');
        CHECK(signed_here == false);
        signed_license_clear(&s);
        return;
    }
    CHECK(s.signature_len == SIGNATURE_LEN && s.license);
    char *again = license_file_format(&s);
    CHECK(again);
    signed_license t;
    CHECK(license_file_parse(again, &t, err, sizeof err) == 0);
    CHECK(same_license(&s, &t));
    signed_license_clear(&t);
    free(again);
    check_verified(&s, signed_here);
    signed_license_clear(&s);
}

/* A license we signed, with its place in the tree changed, never passes the signature. */
static void check_tampered_refused(const signed_license *good, const uint8_t *data, size_t size) {
    size_t pick = size ? data[size / 2] : 0; /* which sibling byte to flip */
    for (int how = 0; how < 6; how++) {
        signed_license t = *good; /* shares the buffers: not cleared */
        if (how == 0) t.tree_index ^= 1;
        else if (how == 1) t.tree_size++;
        else if (how == 2) t.tree_size--;
        else if (how == 3) t.tree_path[pick % t.tree_path_len][pick % MERKLE_HASH_LEN] ^= (uint8_t)(1u << (pick % 8));
        else if (how == 4) t.tree_path_len--;
        else t.tree_path_len++; /* tree_path[n] is zeros: an extra hash */
        Activation__V1__License *l = NULL;
        char err[256] = "";
        CHECK(license_verify(&vendor, &t, MACHINE_ID, &l, err, sizeof err) == VERIFY_BAD_SIGNATURE && !l);
    }
}

static void fuzz_signed_license(const uint8_t *data, size_t size) {
    signed_license s;
    memset(&s, 0, sizeof s);
    s.license = malloc(size ? size : 1);
    CHECK(s.license);
    if (size) memcpy(s.license, data, size);
    s.license_len = size;
    CHECK(fuzz_sign_tree(vendor_key, data, size, s.tree_path, &s.tree_path_len, s.signature) == 0);
    s.tree_index = FUZZ_TREE_INDEX;
    s.tree_size = FUZZ_TREE_SIZE;
    s.signature_len = SIGNATURE_LEN;
    strcpy(s.key_id, vendor.key_id[0]);
    s.activation_count = (uint32_t)size;
    char *text = license_file_format(&s); /* the way the client stores it */
    CHECK(text);
    fuzz_license_file(text, true);
    free(text);
    check_tampered_refused(&s, data, size);
    signed_license_clear(&s);
}

/* ---- offline requests ------------------------------------------------------ */

static void fuzz_request(const char *text, bool signed_here) {
    char key[PA_KEY_TEXT_LEN + 1] = "", canonical[PA_KEY_TEXT_LEN + 1];
    uint8_t machine_id[PA_MACHINE_ID_LEN];
    client.error[0] = '\0';
    client.request_fp[0] = '\0';
    pa_err e = offline_request_parse(&client, text, key, machine_id);
    if (e != PA_OK) {
        CHECK(client.error[0] != '\0');
        return;
    }
    pa_key_problem p;
    CHECK(pa_key_check(key, canonical, &p) == PA_OK && strcmp(key, canonical) == 0);
    CHECK(strlen(client.request_fp) == 19);
    if (signed_here) CHECK(strcmp(client.request_fp, request_fp) == 0);
}

static void fuzz_signed_request(const char *body) {
    size_t n = strlen(body);
    size_t cap = n + 256;
    char *text = malloc(cap);
    CHECK(text);
    int w = snprintf(text, cap, "%s%spublic_key: %s\n", body, n && body[n - 1] != '\n' ? "\n" : "", request_pub_b64);
    CHECK(w > 0 && (size_t)w < cap);
    uint8_t sig[SIGNATURE_LEN];
    CHECK(fuzz_sign(request_key, text, (size_t)w, sig) == 0);
    char *sig_b64 = b64_encode(sig, sizeof sig);
    CHECK(sig_b64);
    snprintf(text + w, cap - (size_t)w, "signature: %s\n", sig_b64);
    free(sig_b64);
    fuzz_request(text, true);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    int mode = data[0] & 3;
    if (mode == 1) {
        fuzz_signed_license(data + 1, size - 1);
        return 0;
    }
    char *text = fuzz_text(data + 1, size - 1);
    if (mode == 0) fuzz_license_file(text, false);
    else if (mode == 2) fuzz_request(text, false);
    else fuzz_signed_request(text);
    free(text);
    return 0;
}
