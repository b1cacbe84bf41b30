/* test_order_file.c -- the signed order and its text armour (keystore.order).
 *
 * Orders are made here with fresh Ed25519 keys, written as text, mangled
 * the way mail mangles text, and read back; every field check is provoked
 * once and must name its field; a changed byte anywhere must be refused. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keycodec.h"
#include "order_armour.h"
#include "order_file.h"
#include "order_keyring.h"

static EVP_PKEY *new_key(void) {
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    return k;
}

/* A valid vendor-hosted order; the arrays live in static storage. */
static Volume__V1__Order sample(void) {
    static uint32_t groups[] = {7, 9};
    static char *features[] = {"editor", "spreadsheet"};
    static char *facts[] = {"hostname", "mac"};
    Volume__V1__Order o = VOLUME__V1__ORDER__INIT;
    o.format_version = 1;
    o.service_serial = "12345678";
    o.revision = 1;
    o.customer = "Example Corp";
    o.vendor = "Demo Vendor";
    o.groups = groups;
    o.n_groups = 2;
    o.product = "Office";
    o.edition = "Pro";
    o.features = features;
    o.n_features = 2;
    o.mode = VOLUME__V1__SEAT_MODE__SEAT_MODE_CONCURRENT;
    o.seats = 500;
    o.valid_from = 1796083200;  /* 2026-12-01 */
    o.valid_until = 1827619200; /* 2027-12-01 */
    o.issued_at = 1790000000;
    o.auto_activation = 1;
    o.collect_facts = facts;
    o.n_collect_facts = 2;
    return o;
}

static char *sign_text(EVP_PKEY *key, const Volume__V1__Order *o, const Volume__V1__OrderKeys *k) {
    order_file f;
    char err[256];
    int rc = order_file_sign(&f, key, o, k, err, sizeof err);
    if (rc != 0) fprintf(stderr, "sign: %s\n", err);
    assert_int_equal(rc, 0);
    char *text = order_armour_write(&f);
    assert_non_null(text);
    order_file_clear(&f);
    return text;
}

static order_keyring *ring_of(EVP_PKEY *key) {
    order_keyring *r = order_keyring_new();
    char err[128];
    assert_non_null(r);
    assert_int_equal(order_keyring_add(r, key, err, sizeof err), 0);
    return r;
}

/* Reads `text`, expecting `want`; the message must contain `needle` (may be NULL). */
static void expect_read(const char *text, order_status want, const char *needle) {
    order_file f;
    char err[512] = "";
    order_status st = order_armour_read(&f, text, strlen(text), err, sizeof err);
    if (st != want || (needle && !strstr(err, needle))) fprintf(stderr, "read gave %d: %s\n", st, err);
    assert_int_equal(st, want);
    if (needle) assert_non_null(strstr(err, needle));
    order_file_clear(&f);
}

static void test_round_trip(void **state) {
    (void)state;
    EVP_PKEY *key = new_key();
    Volume__V1__Order o = sample();
    char *text = sign_text(key, &o, NULL);
    assert_non_null(strstr(text, "Service-Serial: 12345678\n"));
    assert_non_null(strstr(text, "Valid: 2026-12-01 .. 2027-12-01\n"));
    assert_non_null(strstr(text, "Seats: 500\n"));
    order_file f;
    char err[256];
    assert_int_equal(order_armour_read(&f, text, strlen(text), err, sizeof err), ORDER_OK);
    assert_string_equal(f.o->customer, "Example Corp");
    assert_int_equal(f.o->n_groups, 2);
    assert_int_equal(f.o->groups[1], 9);
    order_keyring *ring = ring_of(key);
    assert_int_equal(order_file_verify(&f, ring, err, sizeof err), ORDER_OK);
    char *again = order_armour_write(&f); /* the same bytes give the same text */
    assert_string_equal(again, text);
    free(again);
    order_keyring_free(ring);
    order_file_clear(&f);
    free(text);
    EVP_PKEY_free(key);
}

/* CRLF, text around it, base64 re-wrapped at 76 and indented, a folded header. */
static char *mangle(const char *text) {
    size_t n = strlen(text);
    char *out = malloc(4 * n + 512), *p = out;
    p += sprintf(p, "Hello,\r\n\r\nplease find our order below.\r\n\r\n");
    const char *body = strstr(text, "\n\n") + 2, *end = strstr(text, "-----END");
    for (const char *s = text; s < body; s++) {
        if (strncmp(s, "Customer: ", 10) == 0) { /* fold it */
            p += sprintf(p, "Customer:\r\n   Example\r\n\tCorp\r\n");
            s = strchr(s, '\n');
            continue;
        }
        if (*s == '\n') *p++ = '\r';
        *p++ = *s;
    }
    int col = 0;
    for (const char *s = body; s < end; s++) {
        if (*s == '\n') continue;
        if (col == 0) p += sprintf(p, "  ");
        *p++ = *s;
        if (++col == 76) p += sprintf(p, "\r\n"), col = 0;
    }
    if (col) p += sprintf(p, "\r\n");
    p += sprintf(p, "%.*s\r\n-- \r\nBob, purchasing\r\n", (int)strcspn(end, "\n"), end);
    *p = '\0';
    return out;
}

static void test_mail_mangled(void **state) {
    (void)state;
    EVP_PKEY *key = new_key();
    Volume__V1__Order o = sample();
    char *text = sign_text(key, &o, NULL), *mail = mangle(text);
    expect_read(mail, ORDER_OK, NULL);
    free(mail);
    free(text);
    EVP_PKEY_free(key);
}

static char *replace(const char *text, const char *from, const char *to) {
    const char *at = strstr(text, from);
    assert_non_null(at);
    char *out = malloc(strlen(text) + strlen(to) + 1);
    sprintf(out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return out;
}

static void test_headers(void **state) {
    (void)state;
    EVP_PKEY *key = new_key();
    Volume__V1__Order o = sample();
    char *text = sign_text(key, &o, NULL);
    char *seats = replace(text, "Seats: 500", "Seats: 900");
    expect_read(seats, ORDER_MALFORMED, "Seats");
    char *unknown = replace(text, "Seats: 500\n", "Seats: 500\nDiscount: 90%\n");
    expect_read(unknown, ORDER_MALFORMED, "Discount");
    char *twice = replace(text, "Revision: 1\n", "Revision: 1\nRevision: 1\n");
    expect_read(twice, ORDER_MALFORMED, "twice");
    char *no_headers = replace(text, "Service-Serial: 12345678\n", ""); /* a header may be missing */
    expect_read(no_headers, ORDER_OK, NULL);
    char *cut = replace(text, "-----END PRODUCT ACTIVATION ORDER-----", "");
    expect_read(cut, ORDER_MALFORMED, "cut short");
    expect_read("just some mail\n", ORDER_MALFORMED, "not an order file");
    char *junk = replace(text, "\n\n", "\n\n!!!!\n");
    expect_read(junk, ORDER_MALFORMED, "base64");
    free(seats), free(unknown), free(twice), free(no_headers), free(cut), free(junk), free(text);
    EVP_PKEY_free(key);
}

/* ---- every field check, each naming its field ---- */

typedef void (*spoil)(Volume__V1__Order *o);
static void s_format(Volume__V1__Order *o) { o->format_version = 2; }
static void s_serial_short(Volume__V1__Order *o) { o->service_serial = "1234567"; }
static void s_serial_alpha(Volume__V1__Order *o) { o->service_serial = "1234567a"; }
static void s_revision(Volume__V1__Order *o) { o->revision = 0; }
static void s_customer_empty(Volume__V1__Order *o) { o->customer = ""; }
static void s_customer_ctrl(Volume__V1__Order *o) { o->customer = "Evil\nCorp"; }
static void s_customer_utf8(Volume__V1__Order *o) { o->customer = "Bad \xff text"; }
static void s_vendor_long(Volume__V1__Order *o) {
    static char v[80];
    memset(v, 'v', 65);
    o->vendor = v;
}
static void s_product(Volume__V1__Order *o) { o->product = ""; }
static void s_groups_none(Volume__V1__Order *o) { o->n_groups = 0; }
static void s_groups_many(Volume__V1__Order *o) {
    static uint32_t g[17];
    for (int i = 0; i < 17; i++) g[i] = (uint32_t)i;
    o->groups = g, o->n_groups = 17;
}
static void s_group_range(Volume__V1__Order *o) {
    static uint32_t g[] = {1u << 20};
    o->groups = g, o->n_groups = 1;
}
static void s_group_twice(Volume__V1__Order *o) {
    static uint32_t g[] = {7, 7};
    o->groups = g, o->n_groups = 2;
}
static void s_mode(Volume__V1__Order *o) { o->mode = 9; }
static void s_seats_zero(Volume__V1__Order *o) { o->seats = 0; }
static void s_unlimited_seats(Volume__V1__Order *o) { o->mode = VOLUME__V1__SEAT_MODE__SEAT_MODE_UNLIMITED; }
static void s_from(Volume__V1__Order *o) { o->valid_from = 0; }
static void s_until(Volume__V1__Order *o) { o->valid_until = o->valid_from; }
static void s_unlimited_no_end(Volume__V1__Order *o) {
    o->mode = VOLUME__V1__SEAT_MODE__SEAT_MODE_UNLIMITED, o->seats = 0, o->valid_until = 0;
}
static void s_after_end(Volume__V1__Order *o) { o->after_end = VOLUME__V1__AFTER_END__AFTER_END_CONTINUE_COUNTED; }
static void s_issued(Volume__V1__Order *o) { o->issued_at = 0; }
static void s_features(Volume__V1__Order *o) {
    static char *f[ORDER_LIST_MAX + 1];
    for (int i = 0; i <= ORDER_LIST_MAX; i++) f[i] = "x";
    o->features = f, o->n_features = ORDER_LIST_MAX + 1;
}
static void s_os_twice(Volume__V1__Order *o) {
    static char *v[] = {"Windows 11", "Windows 11"};
    o->os_versions = v, o->n_os_versions = 2;
}
static void s_arch_empty(Volume__V1__Order *o) {
    static char *v[] = {""};
    o->architectures = v, o->n_architectures = 1;
}
static void s_fact(Volume__V1__Order *o) {
    static char *v[] = {"password"};
    o->collect_facts = v, o->n_collect_facts = 1;
}
static void s_delegated(Volume__V1__Order *o) {
    static uint8_t k[31];
    o->delegated_key = (ProtobufCBinaryData){.len = sizeof k, .data = k};
}
static void s_digest_alone(Volume__V1__Order *o) {
    static uint8_t d[32];
    o->keys_digest = (ProtobufCBinaryData){.len = sizeof d, .data = d};
}
static void s_warning(Volume__V1__Order *o) { o->seat_warning = 501; }

static void test_validation(void **state) {
    (void)state;
    static const struct {
        spoil f;
        const char *field;
    } cases[] = {
        {s_format, "format_version"},
        {s_serial_short, "service_serial"},
        {s_serial_alpha, "service_serial"},
        {s_revision, "revision"},
        {s_customer_empty, "customer"},
        {s_customer_ctrl, "customer"},
        {s_customer_utf8, "customer"},
        {s_vendor_long, "vendor"},
        {s_product, "product"},
        {s_groups_none, "groups"},
        {s_groups_many, "groups"},
        {s_group_range, "groups"},
        {s_group_twice, "groups"},
        {s_mode, "mode"},
        {s_seats_zero, "seats"},
        {s_unlimited_seats, "seats"},
        {s_from, "valid_from"},
        {s_until, "valid_until"},
        {s_unlimited_no_end, "valid_until"},
        {s_after_end, "after_end"},
        {s_issued, "issued_at"},
        {s_features, "features"},
        {s_os_twice, "os_versions"},
        {s_arch_empty, "architectures[0]"},
        {s_fact, "collect_facts"},
        {s_delegated, "delegated_key"},
        {s_digest_alone, "delegated_key"},
        {s_warning, "seat_warning"},
    };
    char err[256];
    Volume__V1__Order good = sample();
    assert_int_equal(order_validate(&good, err, sizeof err), 0);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        Volume__V1__Order o = sample();
        cases[i].f(&o);
        err[0] = '\0';
        int rc = order_validate(&o, err, sizeof err);
        if (rc == 0 || strncmp(err, cases[i].field, strlen(cases[i].field)) != 0)
            fprintf(stderr, "case %zu (%s): rc %d, '%s'\n", i, cases[i].field, rc, err);
        assert_int_equal(rc, -1);
        assert_int_equal(strncmp(err, cases[i].field, strlen(cases[i].field)), 0);
    }
    /* signing refuses what validation refuses */
    EVP_PKEY *key = new_key();
    Volume__V1__Order o = sample();
    o.seats = 0;
    order_file f;
    assert_int_equal(order_file_sign(&f, key, &o, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "seats"));
    order_file_clear(&f);
    EVP_PKEY_free(key);
}

/* ---- on-premises orders: keys, digest, tampering ---- */

typedef struct onprem {
    EVP_PKEY *vendor, *server;
    uint8_t server_raw[32], salt[16], hashes[3][16];
    ProtobufCBinaryData refs[3];
    Volume__V1__OrderKeys k;
    Volume__V1__Order o;
    char keys[3][PK_TEXT_LEN + 1];
} onprem;

static void make_onprem(onprem *p) {
    memset(p, 0, sizeof *p);
    p->vendor = new_key();
    p->server = new_key();
    size_t len = 32;
    assert_int_equal(EVP_PKEY_get_raw_public_key(p->server, p->server_raw, &len), 1);
    memset(p->salt, 0x5a, sizeof p->salt);
    for (int i = 0; i < 3; i++) {
        pk_fields f = {.group = 7, .serial = (uint32_t)(100 + i), .security_first = 12345, .security_second = 6};
        assert_int_equal(pk_encode(&f, p->keys[i]), 0);
        assert_int_equal(order_key_hash(p->salt, p->keys[i], p->hashes[i]), 0);
        p->refs[i] = (ProtobufCBinaryData){.len = 16, .data = p->hashes[i]};
    }
    volume__v1__order_keys__init(&p->k);
    p->k.salt = (ProtobufCBinaryData){.len = 16, .data = p->salt};
    p->k.key_hashes = p->refs;
    p->k.n_key_hashes = 3;
    p->o = sample();
    p->o.delegated_key = (ProtobufCBinaryData){.len = 32, .data = p->server_raw};
}

static void free_onprem(onprem *p) {
    EVP_PKEY_free(p->vendor);
    EVP_PKEY_free(p->server);
}

static void test_key_hash(void **state) {
    (void)state;
    onprem p;
    make_onprem(&p);
    uint8_t h[16], want[SHA256_DIGEST_LENGTH], msg[16 + PK_TEXT_LEN];
    memcpy(msg, p.salt, 16);
    memcpy(msg + 16, p.keys[0], PK_TEXT_LEN);
    SHA256(msg, sizeof msg, want);
    assert_memory_equal(p.hashes[0], want, 16);
    char loose[40]; /* lower case, no hyphens: the same key */
    size_t n = 0;
    for (const char *s = p.keys[0]; *s; s++)
        if (*s != '-') loose[n++] = (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
    loose[n] = '\0';
    assert_int_equal(order_key_hash(p.salt, loose, h), 0);
    assert_memory_equal(h, p.hashes[0], 16);
    uint8_t other_salt[16] = {1};
    assert_int_equal(order_key_hash(other_salt, p.keys[0], h), 0);
    assert_memory_not_equal(h, p.hashes[0], 16);
    assert_int_equal(order_key_hash(p.salt, "not a key", h), -1);
    free_onprem(&p);
}

/* Flips one base64 character of the body at `at` (from the body's start) to another valid one. */
static char *flip_body(const char *text, size_t at) {
    char *out = strdup(text), *body = strstr(out, "\n\n") + 2;
    while (body[at] == '\n' || body[at] == '=') at++;
    body[at] = body[at] == 'A' ? 'B' : 'A';
    return out;
}

static void test_tampering(void **state) {
    (void)state;
    onprem p;
    make_onprem(&p);
    char *text = sign_text(p.vendor, &p.o, &p.k), err[512];
    order_keyring *ring = ring_of(p.vendor);
    order_file f;
    assert_int_equal(order_armour_read(&f, text, strlen(text), err, sizeof err), ORDER_OK);
    assert_non_null(f.k);
    assert_int_equal(f.k->n_key_hashes, 3);
    assert_int_equal(order_file_verify(&f, ring, err, sizeof err), ORDER_OK);
    order_file_clear(&f);
    /* each byte of the body: refused as malformed or tampered, never accepted */
    size_t body_len = strlen(strstr(text, "\n\n") + 2) - strlen(ORDER_ARMOUR_END) - 1;
    int tampered = 0;
    for (size_t at = 0; at + 4 < body_len; at += 3) {
        char *bad = flip_body(text, at);
        order_status st = order_armour_read(&f, bad, strlen(bad), err, sizeof err);
        if (st == ORDER_OK) st = order_file_verify(&f, ring, err, sizeof err);
        assert_int_not_equal(st, ORDER_OK);
        tampered += st == ORDER_TAMPERED;
        order_file_clear(&f);
        free(bad);
    }
    assert_true(tampered > 0);
    /* a changed key hash: the signature is good, the digest is not */
    assert_int_equal(order_armour_read(&f, text, strlen(text), err, sizeof err), ORDER_OK);
    f.keys[f.keys_len - 1] ^= 1;
    assert_int_equal(order_file_verify(&f, ring, err, sizeof err), ORDER_TAMPERED);
    assert_non_null(strstr(err, "keys_digest"));
    order_file_clear(&f);
    order_keyring_free(ring);
    free(text);
    free_onprem(&p);
}

static void test_foreign_vendor(void **state) {
    (void)state;
    EVP_PKEY *vendor = new_key(), *other = new_key();
    Volume__V1__Order o = sample();
    char *text = sign_text(other, &o, NULL), err[256];
    order_keyring *ring = ring_of(vendor), *empty = order_keyring_new();
    order_file f;
    assert_int_equal(order_armour_read(&f, text, strlen(text), err, sizeof err), ORDER_OK);
    assert_int_equal(order_file_verify(&f, ring, err, sizeof err), ORDER_FOREIGN_VENDOR);
    assert_int_equal(order_file_verify(&f, empty, err, sizeof err), ORDER_FOREIGN_VENDOR);
    /* the right key id with another key's signature: tampered */
    EVP_PKEY *vk = order_keyring_find(ring, order_keyring_id(ring, 0));
    assert_non_null(vk);
    memcpy(f.key_id, order_keyring_id(ring, 0), SIGNING_KEY_ID_LEN + 1);
    assert_int_equal(order_file_verify(&f, ring, err, sizeof err), ORDER_TAMPERED);
    order_file_clear(&f);
    order_keyring_free(ring);
    order_keyring_free(empty);
    free(text);
    EVP_PKEY_free(vendor);
    EVP_PKEY_free(other);
}

static void test_keyring_bundle(void **state) {
    (void)state;
    EVP_PKEY *a = new_key(), *b = new_key();
    BIO *mem = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(mem, a), 1);
    assert_int_equal(PEM_write_bio_PUBKEY(mem, b), 1);
    char *pem;
    long len = BIO_get_mem_data(mem, &pem);
    order_keyring *r = order_keyring_new();
    char err[256];
    assert_int_equal(order_keyring_add_pem(r, pem, (size_t)len, err, sizeof err), 0);
    assert_int_equal(order_keyring_size(r), 2);
    assert_int_equal(order_keyring_add_pem(r, pem, (size_t)len, err, sizeof err), 0); /* no duplicates */
    assert_int_equal(order_keyring_size(r), 2);
    assert_int_equal(order_keyring_add_pem(r, "nothing", 7, err, sizeof err), -1);
    char id[SIGNING_KEY_ID_LEN + 1];
    assert_int_equal(signing_key_id(b, id), 0);
    assert_non_null(order_keyring_find(r, id));
    order_keyring_free(r);
    BIO_free(mem);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

static void test_names(void **state) {
    (void)state;
    for (int m = 1; m <= 5; m++) assert_int_equal(order_mode_parse(order_mode_name(m)), m);
    assert_int_equal(order_mode_parse("timed-reclaim"), VOLUME__V1__SEAT_MODE__SEAT_MODE_TIMED_RECLAIM);
    assert_int_equal(order_mode_parse("floating"), 0);
    assert_int_equal(order_after_end_parse("continue-counted"), VOLUME__V1__AFTER_END__AFTER_END_CONTINUE_COUNTED);
    assert_int_equal(order_fact_bit("host_serial"), ORDER_FACT_HOST_SERIAL);
    assert_string_equal(order_fact_name(ORDER_FACT_ARCH), "arch");
    Volume__V1__Order o = sample(), d;
    o.heartbeat_seconds = 30;
    order_term_defaults(&o, &d);
    assert_int_equal(d.heartbeat_seconds, 30);
    assert_int_equal(d.renew_seconds, 7 * 86400);
    assert_int_equal(d.machine_validity_seconds, 180 * 86400);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_mail_mangled),   cmocka_unit_test(test_headers),
        cmocka_unit_test(test_validation),     cmocka_unit_test(test_key_hash),       cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_foreign_vendor), cmocka_unit_test(test_keyring_bundle), cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
