/* test_activation_unit.c -- the activation server's pure parts, without
 * processes: request validation, license ids, rate-limit address keys, the
 * forwarded client address of trusted proxies, license signing with the key
 * id of docs/activation-flow.md, and the place-key proof (its message byte
 * for byte, and the server's check). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_address.h"
#include "fixture.h"
#include "hex.h"
#include "license.h"
#include "license_grant.h"
#include "place_proof.h"
#include "policy.h"
#include "proof_check.h"
#include "random_pool.h"
#include "validate.h"

static const char *KEY = "QPM6N-7J2WJ-P88HH-P3YRH-YY74H";   /* published vector, group 4365 */

static Activation__V1__ActivateRequest good_request(uint8_t *machine) {
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    memset(machine, 7, MACHINE_ID_LEN);
    rq.product_key = (char *)KEY;
    rq.machine_id = (ProtobufCBinaryData){.len = MACHINE_ID_LEN, .data = machine};
    rq.hostname = "build-07.example.com";
    rq.os = "Debian GNU/Linux 12 (bookworm)";
    rq.arch = "x86_64";
    rq.client_version = "2.1.0";
    return rq;
}

static void expect_invalid(const Activation__V1__ActivateRequest *rq, const char *needle,
                           pk_status key_status) {
    pk_fields f;
    pk_status ks;
    char msg[256];
    assert_false(validate_activate(rq, &f, &ks, msg, sizeof msg));
    if (!strstr(msg, needle)) fprintf(stderr, "message: %s\n", msg);
    assert_non_null(strstr(msg, needle));
    assert_int_equal(ks, key_status);
}

static void test_valid_request(void **state) {
    uint8_t m[MACHINE_ID_LEN];
    Activation__V1__ActivateRequest rq = good_request(m);
    pk_fields f;
    pk_status ks;
    char msg[256];
    assert_true(validate_activate(&rq, &f, &ks, msg, sizeof msg));
    assert_int_equal(f.group, 4365);
    assert_int_equal(f.serial, 0);
    rq.hostname = rq.os = rq.arch = rq.client_version = "";   /* facts are optional */
    assert_true(validate_activate(&rq, &f, &ks, msg, sizeof msg));
    rq.product_key = "qpm6n7j2wjp88hhp3yrhyy74h";   /* case and hyphens are free */
    assert_true(validate_activate(&rq, &f, &ks, msg, sizeof msg));
}

static void test_key_problems_name_the_field(void **state) {
    uint8_t m[MACHINE_ID_LEN];
    Activation__V1__ActivateRequest rq = good_request(m);
    rq.product_key = "";
    expect_invalid(&rq, "product_key: the product key is empty", PK_ERR_EMPTY);
    rq.product_key = NULL;   /* proto3 absent string */
    expect_invalid(&rq, "product_key:", PK_ERR_EMPTY);
    rq.product_key = "BCDFG-HJKMP-QRTVW-XY234-6789B";
    expect_invalid(&rq, "legacy", PK_ERR_LEGACY);
    rq.product_key = "QPM6N-7J2WJ-P88HH-P3YRH-YY74B";
    expect_invalid(&rq, "checksum", PK_ERR_CHECKSUM);
}

static void test_request_fields(void **state) {
    uint8_t m[MACHINE_ID_LEN + 1];
    Activation__V1__ActivateRequest rq = good_request(m);
    rq.machine_id.len = 0;
    expect_invalid(&rq, "machine_id: missing", PK_OK);
    rq.machine_id.len = 33;
    expect_invalid(&rq, "machine_id: must be exactly 32 bytes, got 33", PK_OK);
    rq.machine_id.len = 32;

    char host[300];
    memset(host, 'a', sizeof host);
    host[253] = '\0';
    rq.hostname = host;
    pk_fields f;
    pk_status ks;
    char msg[256];
    assert_true(validate_activate(&rq, &f, &ks, msg, sizeof msg));   /* 253 is fine */
    host[253] = 'a';
    host[254] = '\0';
    expect_invalid(&rq, "hostname: at most 253 characters allowed, got 254", PK_OK);
    rq.hostname = "with space";
    expect_invalid(&rq, "hostname: byte 0x20 at position 5", PK_OK);
    rq.hostname = "tab\there";
    expect_invalid(&rq, "hostname: byte 0x09", PK_OK);
    rq.hostname = "ok";
    rq.arch = "x86\x7f";
    expect_invalid(&rq, "arch: byte 0x7F", PK_OK);
    rq.arch = "";
    rq.client_version = "v\xc3\xa9";
    expect_invalid(&rq, "client_version: byte 0xC3", PK_OK);
    rq.client_version = "";
    uint8_t place_key[33] = {0};
    rq.place_key = (ProtobufCBinaryData){.len = 32, .data = place_key}; /* optional, 32 when given */
    assert_true(validate_activate(&rq, &f, &ks, msg, sizeof msg));
    rq.place_key.len = 33;
    expect_invalid(&rq, "place_key: must be exactly 32 bytes (a raw Ed25519 public key), got 33", PK_OK);
    rq.place_key.len = 32;

    /* Volume facts: a host serial (spaces allowed) and up to 8 MACs of either case. */
    char *macs[9] = {"aa:bb:cc:dd:ee:ff", "AA:BB:CC:00:11:22", "02:00:00:00:00:01",
                     "02:00:00:00:00:02", "02:00:00:00:00:03", "02:00:00:00:00:04",
                     "02:00:00:00:00:05", "02:00:00:00:00:06", "02:00:00:00:00:07"};
    rq.host_serial = "To Be Filled";
    rq.mac_addresses = macs;
    rq.n_mac_addresses = 8;
    assert_true(validate_activate(&rq, &f, &ks, msg, sizeof msg));
    rq.n_mac_addresses = 9;
    expect_invalid(&rq, "mac_addresses: at most 8 allowed, got 9", PK_OK);
    macs[1] = "aa-bb-cc-00-11-22";
    rq.n_mac_addresses = 2;
    expect_invalid(&rq, "mac_addresses[1]: expected six hex pairs", PK_OK);
    macs[1] = "aa:bb:cc:00:11:2";
    expect_invalid(&rq, "mac_addresses[1]: expected six hex pairs", PK_OK);
    rq.n_mac_addresses = 0;
    rq.host_serial = "SN\t1";
    expect_invalid(&rq, "host_serial: byte 0x09", PK_OK);
}

static void test_license_ids(void **state) {
    uint8_t rnd[LICENSE_RANDOM_LEN] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0xff}, back[8];
    char id[LICENSE_ID_LEN + 1];
    license_id_format(id, 4365, 11, rnd);
    assert_string_equal(id, "0000110d0000000bdeadbeef000102ff");
    uint8_t m[MACHINE_ID_LEN] = {0};
    ProtobufCBinaryData machine = {.len = sizeof m, .data = m};
    uint32_t g, s;
    char msg[200];
    assert_true(validate_license_ref(id, &machine, &g, &s, back, msg, sizeof msg));
    assert_int_equal(g, 4365);
    assert_int_equal(s, 11);
    assert_memory_equal(back, rnd, sizeof rnd);
    /* Out of range, wrong length, upper case, missing machine. */
    assert_false(validate_license_ref("00100000000000000000000000000000", &machine, &g, &s, back,
                                      msg, sizeof msg));
    assert_non_null(strstr(msg, "out of range"));
    assert_false(validate_license_ref("0000110d", &machine, &g, &s, back, msg, sizeof msg));
    assert_false(validate_license_ref("0000110D0000000BDEADBEEF000102FF", &machine, &g, &s, back,
                                      msg, sizeof msg));
    assert_false(validate_license_ref(NULL, &machine, &g, &s, back, msg, sizeof msg));
    machine.len = 0;
    assert_false(validate_license_ref(id, &machine, &g, &s, back, msg, sizeof msg));
    assert_non_null(strstr(msg, "machine_id"));
}

static void test_address_keys(void **state) {
    char k[96];
    policy_address_key("127.0.0.1", k, sizeof k);
    assert_string_equal(k, "rl:a:127.0.0.1");
    policy_address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", k, sizeof k);
    assert_string_equal(k, "rl:a:2001:db8:1:2::/64");
    policy_address_key("2001:db8:1:2::99", k, sizeof k);   /* same /64, same bucket */
    assert_string_equal(k, "rl:a:2001:db8:1:2::/64");
    policy_address_key("::ffff:10.1.2.3", k, sizeof k);
    assert_string_equal(k, "rl:a:10.1.2.3");
    policy_address_key("::1", k, sizeof k);
    assert_string_equal(k, "rl:a:::/64");
}

static void expect_client(const trusted_proxies *t, const char *peer, const char *xff, const char *want) {
    char out[CLIENT_ADDRESS_MAX];
    client_address_resolve(t, peer, xff, out);
    if (strcmp(out, want) != 0) fprintf(stderr, "peer %s, x-forwarded-for \"%s\": %s\n", peer, xff, out);
    assert_string_equal(out, want);
}

static void test_trusted_proxies(void **state) {
    const char *nets[] = {"10.0.0.0/8", "192.0.2.1", "2001:db8:aa::/48", "172.16.5.9/12"};
    char err[200];
    trusted_proxies *t = trusted_proxies_new(nets, 4, err, sizeof err);
    assert_non_null(t);
    assert_true(trusted_proxies_contain(t, "10.200.0.1"));
    assert_true(trusted_proxies_contain(t, "::ffff:10.0.0.1")); /* mapped reads as IPv4 */
    assert_true(trusted_proxies_contain(t, "192.0.2.1"));
    assert_false(trusted_proxies_contain(t, "192.0.2.2"));
    assert_true(trusted_proxies_contain(t, "2001:db8:aa:ffff::1"));
    assert_false(trusted_proxies_contain(t, "2001:db8:ab::1"));
    assert_true(trusted_proxies_contain(t, "172.31.0.1")); /* host bits of the block ignored */
    assert_false(trusted_proxies_contain(t, "11.0.0.1"));

    /* An untrusted peer is the client, whatever it forwards. */
    expect_client(t, "198.51.100.1", "203.0.113.9", "198.51.100.1");
    /* A trusted peer's last hop is the client... */
    expect_client(t, "10.0.0.5", "203.0.113.8, 203.0.113.9", "203.0.113.9");
    /* ...looking through further trusted proxies, with ports and brackets. */
    expect_client(t, "10.0.0.5", "203.0.113.8,203.0.113.9:5000, 192.0.2.1:80 ,10.9.9.9", "203.0.113.9");
    expect_client(t, "::ffff:10.0.0.5", "[2001:db8:1::7]:443", "2001:db8:1::7");
    expect_client(t, "2001:db8:aa::1", "2001:db8:1::7, 2001:db8:aa::2", "2001:db8:1::7");
    /* Every hop trusted: the leftmost. */
    expect_client(t, "10.0.0.5", "10.1.1.1, 192.0.2.1", "10.1.1.1");
    /* Nonsense ends the walk at the hop to its right. */
    expect_client(t, "10.0.0.5", "garbage", "10.0.0.5");
    expect_client(t, "10.0.0.5", "203.0.113.9, junk, 10.2.2.2", "10.2.2.2");
    expect_client(t, "10.0.0.5", "", "10.0.0.5");
    expect_client(t, "10.0.0.5", "203.0.113.9,", "10.0.0.5");
    expect_client(t, "10.0.0.5", NULL, "10.0.0.5");
    /* Canonical text: the same client is one bucket. */
    expect_client(t, "10.0.0.5", "2001:DB8:0:0::1", "2001:db8::1");
    trusted_proxies_free(t);

    /* Nobody trusted. */
    expect_client(NULL, "::ffff:198.51.100.1", "203.0.113.9", "198.51.100.1");

    const char *bad[] = {"10.0.0.0/33", "10.0.0/8", "fe80::/129", "", "10.0.0.1/", "example.com"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_null(trusted_proxies_new(&bad[i], 1, err, sizeof err));
        assert_non_null(strstr(err, "--trusted-proxy"));
    }
}

static void test_limits_are_formatted_exactly(void **state) {
    policy_limits l;
    policy_limits_set(&l, 0.5, 20, 1000, 5000, 5);
    assert_string_equal(l.address_rate, "0.5");
    assert_string_equal(l.address_burst, "20");
    assert_string_equal(l.group_rate, "1000");
    assert_string_equal(l.failure_cost, "5");
}

/* Writes a fresh Ed25519 key to a temp file; returns its path (static). */
static const char *temp_signing_key(EVP_PKEY **out) {
    static char path[sizeof "/tmp/pa-unit-signing-XXXXXX"];
    memcpy(path, "/tmp/pa-unit-signing-XXXXXX", sizeof path); /* mkstemp fills in the template: every call anew */
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    FILE *f = fdopen(fd, "w");
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    *out = k;
    return path;
}

static void test_license_signing(void **state) {
    EVP_PKEY *raw;
    const char *path = temp_signing_key(&raw);
    license_key key;
    char err[256];
    assert_int_equal(license_key_load(&key, path, err, sizeof err), 0);
    unlink(path);

    /* key_id = first 16 hex chars of SHA-256 over the raw public key. */
    uint8_t pub[32], digest[32];
    size_t len = sizeof pub;
    assert_int_equal(EVP_PKEY_get_raw_public_key(raw, pub, &len), 1);
    SHA256(pub, len, digest);
    char expect[17];
    pa_hex_encode(digest, 8, expect);
    assert_string_equal(key.key_id, expect);

    license_signer *s = license_signer_new(&key);
    assert_non_null(s);
    uint8_t machine[32];
    memset(machine, 0xab, sizeof machine);
    char *features[] = {"editor", "macros"};
    license_terms t = {.license_id = "0000110d0000000bdeadbeef000102ff", .product = "Office",
                       .edition = "Pro", .channel = 3, .features = features, .n_features = 2,
                       .machine_id = machine, .group = 4365, .serial = 11, .issued_at = 1000,
                       .renew_after = 2000, .expires_at = 3000};
    signed_license a, b;
    assert_int_equal(license_issue(s, &t, &a), 0);
    assert_int_equal(license_issue(s, &t, &b), 0);   /* the signer is reusable */
    /* A batch of one: a one-leaf tree, whose root is the leaf; the signature is over the tree message. */
    assert_int_equal(a.tree_index, 0);
    assert_int_equal(a.tree_size, 1);
    assert_int_equal(a.tree_path_len, 0);
    assert_true(fixture_license_ok(raw, a.body, a.body_len, a.sig, sizeof a.sig, 0, 1, NULL, 0));
    assert_true(fixture_license_ok(raw, b.body, b.body_len, b.sig, sizeof b.sig, 0, 1, NULL, 0));
    assert_false(fixture_signature_ok(raw, a.body, a.body_len, a.sig, sizeof a.sig)); /* never over the bytes alone */
    a.body[3] ^= 1;
    assert_false(fixture_license_ok(raw, a.body, a.body_len, a.sig, sizeof a.sig, 0, 1, NULL, 0));

    Activation__V1__License *l = activation__v1__license__unpack(NULL, b.body_len, b.body);
    assert_non_null(l);
    assert_int_equal(l->format_version, 1);
    assert_string_equal(l->signing_key_id, key.key_id);
    assert_int_equal(l->channel, ACTIVATION__V1__CHANNEL__CHANNEL_VOLUME);
    assert_int_equal(l->n_features, 2);
    assert_int_equal(l->expires_at, 3000);
    activation__v1__license__free_unpacked(l, NULL);
    license_signer_free(s);
    license_key_free(&key);
    EVP_PKEY_free(raw);
}

/* license_issue_batch: n licenses, one signature; each verifies with its own
 * index and path and with nothing else. */
static void test_license_batch(void **state) {
    EVP_PKEY *raw;
    const char *path = temp_signing_key(&raw);
    license_key key;
    char err[256];
    assert_int_equal(license_key_load(&key, path, err, sizeof err), 0);
    unlink(path);
    license_signer *s = license_signer_new(&key);
    assert_non_null(s);
    enum { N = 11 };
    uint8_t machine[N][32];
    license_terms t[N];
    for (int i = 0; i < N; i++) {
        memset(machine[i], i, sizeof machine[i]);
        t[i] = (license_terms){.license_id = "0000110d0000000bdeadbeef000102ff",
                               .product = "Office",
                               .edition = "Pro",
                               .channel = 1,
                               .machine_id = machine[i],
                               .group = 4365,
                               .serial = 11,
                               .issued_at = 1000 + i};
    }
    static signed_license out[N];
    assert_int_equal(license_issue_batch(s, t, N, out), 0);
    for (int i = 0; i < N; i++) {
        signed_license *l = &out[i];
        assert_int_equal(l->tree_index, i);
        assert_int_equal(l->tree_size, N);
        assert_memory_equal(l->sig, out[0].sig, sizeof l->sig); /* one signature for all */
        Activation__V1__ActivateResponse resp = ACTIVATION__V1__ACTIVATE_RESPONSE__INIT;
        policy_result p = {.count = 1};
        LICENSE_GRANT_FILL(&resp, l, s, &p);
        assert_int_equal(resp.tree_size, N);
        assert_int_equal(resp.n_tree_path, l->tree_path_len);
        assert_true(fixture_license_ok(raw, resp.license.data, resp.license.len, resp.signature.data,
                                       resp.signature.len, resp.tree_index, resp.tree_size, resp.tree_path,
                                       resp.n_tree_path));
        assert_false(fixture_license_ok(raw, resp.license.data, resp.license.len, resp.signature.data,
                                        resp.signature.len, (resp.tree_index + 1) % N, resp.tree_size, resp.tree_path,
                                        resp.n_tree_path));
        assert_false(fixture_license_ok(raw, out[(i + 1) % N].body, out[(i + 1) % N].body_len, resp.signature.data,
                                        resp.signature.len, resp.tree_index, resp.tree_size, resp.tree_path,
                                        resp.n_tree_path));
        l->tree_path_data[0].data[5] ^= 0x10;
        assert_false(fixture_license_ok(raw, resp.license.data, resp.license.len, resp.signature.data,
                                        resp.signature.len, resp.tree_index, resp.tree_size, resp.tree_path,
                                        resp.n_tree_path));
    }
    assert_int_equal(license_issue_batch(s, t, 0, out), -1);
    license_signer_free(s);
    license_key_free(&key);
    EVP_PKEY_free(raw);
}

static void test_signing_key_must_be_ed25519(void **state) {
    char path[] = "/tmp/pa-unit-rsa-XXXXXX";
    int fd = mkstemp(path);
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    FILE *f = fdopen(fd, "w");
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    license_key key;
    char err[256];
    assert_int_equal(license_key_load(&key, path, err, sizeof err), -1);
    assert_non_null(strstr(err, "not an Ed25519 key"));
    assert_int_equal(license_key_load(&key, "/nonexistent/key.pem", err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open"));
    unlink(path);
    EVP_PKEY_free(k);
}

/* The message of activation.proto, byte for byte: other installers build
 * it from the .proto's description alone. */
static void test_proof_message_layout(void **state) {
    const char *lid = "0000110d0000000b0123456789abcdef";
    uint8_t m[32], msg[PLACE_PROOF_MSG_MAX], want[128];
    for (int i = 0; i < 32; i++) m[i] = (uint8_t)i;
    size_t n = place_proof_message(PLACE_OP_RENEW, lid, m, 0x0102030405060708, msg);
    memcpy(want, "pa-renew-v1\0", 12);
    memcpy(want + 12, lid, 32);
    memcpy(want + 44, m, 32);
    memcpy(want + 76, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    assert_int_equal(n, 84);
    assert_memory_equal(msg, want, n);
    n = place_proof_message(PLACE_OP_DEACTIVATE, lid, m, -1, msg);
    assert_int_equal(n, 89);
    assert_memory_equal(msg, "pa-deactivate-v1\0", 17);
    assert_memory_equal(msg + 81, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
    assert_int_equal(place_proof_message(PLACE_OP_RENEW, "0000110d", m, 1, msg), 0);
}

/* Signs a proof for `op` at `t` and checks it at server time `now`. */
static proof_verdict check_at(EVP_PKEY *k, place_op signed_op, place_op checked_op, int64_t t, int64_t now, char *msg,
                              size_t msglen) {
    const char *lid = "0000110d0000000b0123456789abcdef";
    uint8_t m[32], pub[32], sig[64], digest[PLACE_KEY_DIGEST_LEN];
    size_t pub_len = sizeof pub;
    memset(m, 9, sizeof m);
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub, &pub_len), 1);
    assert_int_equal(place_proof_sign(k, signed_op, lid, m, t, sig), 0);
    Activation__V1__PlaceProof p = ACTIVATION__V1__PLACE_PROOF__INIT;
    p.place_key = (ProtobufCBinaryData){.len = pub_len, .data = pub};
    p.timestamp = t;
    p.signature = (ProtobufCBinaryData){.len = sizeof sig, .data = sig};
    proof_verdict v = proof_check(&p, checked_op, lid, m, now, digest, msg, msglen);
    if (v == PROOF_OK) {
        uint8_t want[PLACE_KEY_DIGEST_LEN];
        place_key_digest(pub, want);
        assert_memory_equal(digest, want, sizeof want);
    }
    return v;
}

static void test_proof_check(void **state) {
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    char msg[256];
    const int64_t now = 1700000000;
    assert_int_equal(check_at(k, PLACE_OP_RENEW, PLACE_OP_RENEW, now, now, msg, sizeof msg), PROOF_OK);
    /* The window is PROOF_WINDOW_S either way, edges included. */
    assert_int_equal(check_at(k, PLACE_OP_RENEW, PLACE_OP_RENEW, now - PROOF_WINDOW_S, now, msg, sizeof msg), PROOF_OK);
    assert_int_equal(check_at(k, PLACE_OP_RENEW, PLACE_OP_RENEW, now + PROOF_WINDOW_S, now, msg, sizeof msg), PROOF_OK);
    assert_int_equal(check_at(k, PLACE_OP_RENEW, PLACE_OP_RENEW, now - PROOF_WINDOW_S - 1, now, msg, sizeof msg),
                     PROOF_STALE);
    assert_non_null(strstr(msg, "from the server's clock (1700000000)"));
    assert_int_equal(check_at(k, PLACE_OP_RENEW, PLACE_OP_RENEW, now + PROOF_WINDOW_S + 1, now, msg, sizeof msg),
                     PROOF_STALE);
    assert_int_equal(check_at(k, PLACE_OP_RENEW, PLACE_OP_RENEW, INT64_MIN, now, msg, sizeof msg), PROOF_STALE);
    assert_int_equal(check_at(k, PLACE_OP_RENEW, PLACE_OP_RENEW, INT64_MAX, now, msg, sizeof msg), PROOF_STALE);
    /* One operation's proof is not the other's. */
    assert_int_equal(check_at(k, PLACE_OP_RENEW, PLACE_OP_DEACTIVATE, now, now, msg, sizeof msg), PROOF_INVALID);
    assert_non_null(strstr(msg, "does not verify for this Deactivate"));
    assert_int_equal(check_at(k, PLACE_OP_DEACTIVATE, PLACE_OP_RENEW, now, now, msg, sizeof msg), PROOF_INVALID);
    uint8_t m[32] = {0}, digest[PLACE_KEY_DIGEST_LEN];
    assert_int_equal(
        proof_check(NULL, PLACE_OP_RENEW, "0000110d0000000b0123456789abcdef", m, now, digest, msg, sizeof msg),
        PROOF_INVALID);
    assert_non_null(strstr(msg, "proof: missing"));
    assert_string_equal(proof_reason(PROOF_STALE), "PROOF_STALE");
    assert_string_equal(proof_reason(PROOF_INVALID), "PROOF_INVALID");
    EVP_PKEY_free(k);
}

/* random_pool.h: a zeroed pool draws on its first take, hands out every
 * drawn byte once (and wipes it), draws again when too few are left, and
 * refuses a take larger than the pool. */
static void test_random_pool(void **state) {
    (void)state;
    random_pool p = {0};
    enum { TAKES = RANDOM_POOL_BYTES / LICENSE_RANDOM_LEN + 3 }; /* past one pool */
    uint8_t got[TAKES][LICENSE_RANDOM_LEN];
    for (size_t i = 0; i < TAKES; i++) {
        assert_int_equal(random_pool_take(&p, got[i], LICENSE_RANDOM_LEN), 0);
        for (size_t j = 0; j < i; j++) assert_memory_not_equal(got[i], got[j], LICENSE_RANDOM_LEN);
    }
    /* the bytes handed out of the current pool are gone from it */
    static const uint8_t zero[LICENSE_RANDOM_LEN];
    assert_memory_equal(p.bytes, zero, sizeof zero);
    assert_int_equal(p.left, RANDOM_POOL_BYTES - 3 * LICENSE_RANDOM_LEN);
    uint8_t big[RANDOM_POOL_BYTES + 1];
    assert_int_equal(random_pool_take(&p, big, sizeof big), -1);
    uint8_t odd[RANDOM_POOL_BYTES];
    assert_int_equal(random_pool_take(&p, odd, sizeof odd), 0); /* more than is left: a new pool */
    assert_int_equal(p.left, 0);
    random_pool_wipe(&p);
    assert_int_equal(p.left, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_request),
        cmocka_unit_test(test_key_problems_name_the_field),
        cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_license_ids),
        cmocka_unit_test(test_address_keys),
        cmocka_unit_test(test_trusted_proxies),
        cmocka_unit_test(test_limits_are_formatted_exactly),
        cmocka_unit_test(test_license_signing),
        cmocka_unit_test(test_license_batch),
        cmocka_unit_test(test_signing_key_must_be_ed25519),
        cmocka_unit_test(test_proof_message_layout),
        cmocka_unit_test(test_proof_check),
        cmocka_unit_test(test_random_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
