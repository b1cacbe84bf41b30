/* fuzz_seeds.c -- writes the fuzz targets' binary seeds: small valid (and a
 * few nearly valid) inputs from which libFuzzer's mutations start. They are
 * made here at build time rather than committed because they are binary
 * (protobuf messages, DNS answers, RESP with raw machine ids) or carry
 * signatures by the fuzz keys (fuzz_util.h); hand-written text seeds live in
 * corpus/<target>/ instead.
 *
 * Usage: fuzz_seeds DIR   -- writes DIR/<target>/<seed> for every target,
 * creating each target's directory even when it gets no seed here. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "activation/v1/activation.pb-c.h"
#include "audit/v1/audit.pb-c.h"
#include "fuzz_order_util.h"
#include "fuzz_tree.h"
#include "fuzz_util.h"
#include "keycodec.h"
#include "order_armour.h"
#include "tagged_signature.h"
#include "volume/v1/usage.pb-c.h"
#include "signing_key_id.h"

static const char *const TARGETS[] = {"keycodec", "request", "offline", "outbox", "revocations",
                                      "srv",      "config",  "order",   "mdns",   "merkle"};
static const char *root;

#define KEY_TEXT "K8KNG-MGG4H-KX82M-M8QYW-DGRFH" /* a genuine-shaped key (corpus/keycodec) */

static void die(const char *what) {
    fprintf(stderr, "fuzz_seeds: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void write_seed(const char *target, const char *name, const void *data, size_t len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) die(path);
}

/* A mode byte, then `data` (the offline target's input shape). */
static void write_moded(const char *name, char mode, const void *data, size_t len) {
    uint8_t *buf = malloc(len + 1);
    if (!buf) die("malloc");
    buf[0] = (uint8_t)mode;
    memcpy(buf + 1, data, len);
    write_seed("offline", name, buf, len + 1);
    free(buf);
}

static void write_message(const char *target, const char *name, const ProtobufCMessage *m) {
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) die("malloc");
    protobuf_c_message_pack(m, buf);
    write_seed(target, name, buf, n);
    free(buf);
}

static char *b64(const void *data, size_t len) {
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out) die("malloc");
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

/* "group serial random" license id of the seed key. */
static void license_id(char out[33]) {
    pk_fields f;
    if (pk_decode(KEY_TEXT, strlen(KEY_TEXT), &f, NULL) != PK_OK) {
        fprintf(stderr, "fuzz_seeds: the seed key does not decode\n");
        exit(1);
    }
    snprintf(out, 33, "%08x%08x0123456789abcdef", (unsigned)f.group, (unsigned)f.serial);
}

/* ---- 1. requests -------------------------------------------------------- */

static void request_seeds(void) {
    uint8_t mid[32];
    memcpy(mid, FUZZ_MACHINE_ID, 32);
    Activation__V1__ActivateRequest a = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    a.product_key = KEY_TEXT;
    a.machine_id = (ProtobufCBinaryData){32, mid};
    a.hostname = "build-07.example.com";
    a.os = "Linux 6.1.0";
    a.arch = "x86_64";
    a.client_version = "1.2.0";
    write_message("request", "activate_ok", &a.base);
    a.product_key = "w269nwfgwxyvc9b4j6c9t83gx";
    write_message("request", "activate_lowercase_key", &a.base);
    a.product_key = "W269N-WFGWX-YVC9B-4J6C9-T83GB";
    write_message("request", "activate_checksum_bad", &a.base);
    a.product_key = KEY_TEXT;
    a.hostname = "bad\thost";
    write_message("request", "activate_bad_hostname", &a.base);
    a.hostname = "h";
    a.machine_id.len = 31;
    write_message("request", "activate_short_machine_id", &a.base);
    a.machine_id.len = 32;
    char *macs[] = {"aa:bb:cc:dd:ee:ff", "02:42:ac:11:00:02"};
    a.host_serial = "SN-0042";
    a.mac_addresses = macs;
    a.n_mac_addresses = 2;
    write_message("request", "activate_volume_facts", &a.base);
    macs[1] = "02-42-ac-11-00-02";
    write_message("request", "activate_bad_mac", &a.base);
    a.n_mac_addresses = 0;
    a.mac_addresses = NULL;
    a.host_serial = "";
    uint8_t digest[32] = {7};
    Activation__V1__MachineComponent c[2], *comps[] = {&c[0], &c[1]};
    for (int i = 0; i < 2; i++) {
        activation__v1__machine_component__init(&c[i]);
        c[i].digest = (ProtobufCBinaryData){32, digest};
    }
    c[0].name = "dmi_uuid";
    c[1].name = "mac";
    a.components = comps;
    a.n_components = 2;
    write_message("request", "activate_components", &a.base);
    c[1].name = "dmi_uuid";
    write_message("request", "activate_duplicate_component", &a.base);
    a.components = NULL;
    a.n_components = 0;

    char id[33];
    license_id(id);
    Activation__V1__RenewRequest r = ACTIVATION__V1__RENEW_REQUEST__INIT;
    r.license_id = id;
    r.machine_id = (ProtobufCBinaryData){32, mid};
    write_message("request", "renew_ok", &r.base);
    char upper[33];
    for (int i = 0; i < 33; i++) upper[i] = id[i] >= 'a' && id[i] <= 'f' ? (char)(id[i] - 32) : id[i];
    r.license_id = upper;
    write_message("request", "renew_uppercase", &r.base);
    Activation__V1__DeactivateRequest d = ACTIVATION__V1__DEACTIVATE_REQUEST__INIT;
    d.license_id = "ffffffff000000000123456789abcdef"; /* group out of range */
    d.machine_id = (ProtobufCBinaryData){32, mid};
    write_message("request", "deactivate_group_range", &d.base);
}

/* ---- 2. license and request files ---------------------------------------- */

static void offline_seeds(void) {
    EVP_PKEY *vendor = fuzz_ed25519(FUZZ_VENDOR_SEED), *req = fuzz_ed25519(FUZZ_REQUEST_SEED);
    char key_id[SIGNING_KEY_ID_LEN + 1], id[33];
    if (signing_key_id(vendor, key_id) != 0) die("signing_key_id");
    license_id(id);
    pk_fields f;
    pk_decode(KEY_TEXT, strlen(KEY_TEXT), &f, NULL);

    /* mode 1: License messages the target signs */
    uint8_t mid[32];
    memcpy(mid, FUZZ_MACHINE_ID, 32);
    char *features[] = {"pro", "export"};
    Activation__V1__License l = ACTIVATION__V1__LICENSE__INIT;
    l.format_version = 1;
    l.license_id = id;
    l.product = "demo";
    l.edition = "pro";
    l.channel = ACTIVATION__V1__CHANNEL__CHANNEL_RETAIL;
    l.n_features = 2;
    l.features = features;
    l.machine_id = (ProtobufCBinaryData){32, mid};
    l.key_group = f.group;
    l.key_serial = f.serial;
    l.issued_at = 1767225600;
    l.renew_after = 1769817600;
    l.expires_at = 1772409600;
    l.signing_key_id = key_id;
    size_t n = activation__v1__license__get_packed_size(&l);
    uint8_t *lic = malloc(n);
    if (!lic) die("malloc");
    activation__v1__license__pack(&l, lic);
    write_moded("license_proto_ok", '1', lic, n);
    mid[0] ^= 1;
    uint8_t *other = malloc(n);
    if (!other) die("malloc");
    activation__v1__license__pack(&l, other);
    write_moded("license_proto_other_machine", '1', other, n);
    free(other);

    /* mode 0: the license file itself (signed in the fuzz tree, so it
     * verifies), the same with another index and with a flipped path
     * hash (refused), and one of the format before batch signatures */
    uint8_t sig[64];
    merkle_hash path[MERKLE_MAX_PATH];
    size_t path_len;
    if (fuzz_sign_tree(vendor, lic, n, path, &path_len, sig) != 0) die("sign");
    char *sig_b64 = b64(sig, sizeof sig), *lic_b64 = b64(lic, n);
    char text[4096];
    for (int variant = 0; variant < 3; variant++) {
        if (variant == 2) path[1][9] ^= 0x40;
        char *path_b64 = b64((const uint8_t *)path, path_len * MERKLE_HASH_LEN);
        int w = snprintf(text, sizeof text,
                         "# activate license v2 -- signed by the vendor; any edit makes it invalid\n"
                         "key_id: %s\nactivation_count: 3\nsignature: %s\ntree_index: %d\ntree_size: %d\n"
                         "tree_path: %s\nlicense: %s\n",
                         key_id, sig_b64, variant == 1 ? FUZZ_TREE_INDEX + 1 : FUZZ_TREE_INDEX, FUZZ_TREE_SIZE,
                         path_b64, lic_b64);
        static const char *const names[] = {"license_file_ok", "license_file_other_index", "license_file_flipped_path"};
        write_moded(names[variant], '0', text, (size_t)w);
        free(path_b64);
    }
    int w = snprintf(text, sizeof text,
                     "# activate license v1 -- signed by the vendor; any edit makes it invalid\n"
                     "key_id: %s\nactivation_count: 3\nsignature: %s\nlicense: %s\n",
                     key_id, sig_b64, lic_b64);
    write_moded("license_file_v1", '0', text, (size_t)w);
    free(sig_b64);
    free(lic_b64);
    free(lic);

    /* modes 2 and 3: an offline request, whole (signed) and without its key lines */
    char machine_hex[65];
    for (int i = 0; i < 32; i++) snprintf(machine_hex + 2 * i, 3, "%02x", (unsigned char)FUZZ_MACHINE_ID[i]);
    char body[2048];
    int bn = snprintf(body, sizeof body,
                      "# activate offline request v1 -- it holds a product key: handle it like the key\n"
                      "request_id: 00112233445566778899aabbccddeeff\nproduct_key: %s\nmachine_id: %s\n"
                      "machine_id_source: dmi\nhostname: kiosk-3\nos: Linux 6.1.0\narch: x86_64\n"
                      "client_version: 1.2.0\ncreated_at: 1767225600\n",
                      KEY_TEXT, machine_hex);
    write_moded("request_body", '3', body, (size_t)bn);
    uint8_t raw[32];
    size_t raw_len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(req, raw, &raw_len) != 1) die("raw public key");
    char *pub = b64(raw, sizeof raw);
    char whole[4096];
    int wn = snprintf(whole, sizeof whole, "%spublic_key: %s\n", body, pub);
    if (fuzz_sign(req, whole, (size_t)wn, sig) != 0) die("sign");
    sig_b64 = b64(sig, sizeof sig);
    wn += snprintf(whole + wn, sizeof whole - (size_t)wn, "signature: %s\n", sig_b64);
    write_moded("request_signed", '2', whole, (size_t)wn);
    free(sig_b64);
    free(pub);
    EVP_PKEY_free(vendor);
    EVP_PKEY_free(req);
}

/* ---- 3. outbox entries ------------------------------------------------------ */

static size_t resp_bulk(char *out, size_t cap, const char *s, size_t len) {
    int w = snprintf(out, cap, "$%zu\r\n", len);
    if (w < 0 || (size_t)w + len + 2 >= cap) die("resp");
    memcpy(out + w, s, len);
    memcpy(out + w + len, "\r\n", 2);
    return (size_t)w + len + 2;
}

static void outbox_seed(const char *name, const char *request_id, const char *reason, size_t machine_len) {
    pk_fields f;
    pk_decode(KEY_TEXT, strlen(KEY_TEXT), &f, NULL);
    char group[16], serial[16], upgrade[4], first[24], second[16];
    snprintf(group, sizeof group, "%u", (unsigned)f.group);
    snprintf(serial, sizeof serial, "%u", (unsigned)f.serial);
    snprintf(upgrade, sizeof upgrade, "%d", f.upgrade ? 1 : 0);
    snprintf(first, sizeof first, "%llu", (unsigned long long)f.security_first);
    snprintf(second, sizeof second, "%u", (unsigned)f.security_second);
    const char *kv[20] = {"request_id",     request_id,      "group",           group,
                          "serial",         serial,          "upgrade",         upgrade,
                          "security_first", first,           "security_second", second,
                          "machine_id",     FUZZ_MACHINE_ID, "client_address",  "203.0.113.7",
                          "received_at",    "1767225600",    "sample_reason",   reason};
    char buf[2048];
    size_t n = (size_t)snprintf(buf, sizeof buf, "*20\r\n");
    for (int i = 0; i < 20; i++) n += resp_bulk(buf + n, sizeof buf - n, kv[i], i == 13 ? machine_len : strlen(kv[i]));
    write_seed("outbox", name, buf, n);
}

static void outbox_seeds(void) {
    outbox_seed("entry_ok", "00112233445566778899aabbccddeeff", "base-rate", 32);
    outbox_seed("entry_old_reason", "00112233445566778899aabbccddeeff", "first_activation", 32);
    outbox_seed("entry_short_machine", "00112233445566778899aabbccddeeff", "threat-group", 31);
    outbox_seed("entry_short_id", "0011", "base-rate", 32);
    /* the shapes around it: an empty entry, a deleted one (nil), an error */
    write_seed("outbox", "empty", "*0\r\n", 4);
    write_seed("outbox", "nil", "*-1\r\n", 5);
    write_seed("outbox", "error", "-ERR no\r\n", 9);
}

/* ---- 4. ListRevocations responses ---------------------------------------------- */

static void revocation_seeds(void) {
    Audit__V1__ListRevocationsResponse r = AUDIT__V1__LIST_REVOCATIONS_RESPONSE__INIT;
    write_message("revocations", "empty", &r.base);
    r.last_sequence = 42;
    write_message("revocations", "up_to_date", &r.base);
    Audit__V1__Revocation items[3], *ptrs[3];
    for (int i = 0; i < 3; i++) {
        audit__v1__revocation__init(&items[i]);
        items[i].sequence = 40 + (uint64_t)i;
        items[i].group = 7 + (uint32_t)i;
        items[i].serial = 1000 * (uint32_t)i;
        items[i].reason = i == 1 ? "manual" : "forged second value";
        items[i].revoked_at = 1767225600 + i;
        ptrs[i] = &items[i];
    }
    r.n_revocations = 3;
    r.revocations = ptrs;
    write_message("revocations", "three", &r.base);
    items[2].group = 0xffffffffu;
    items[2].sequence = UINT64_MAX;
    write_message("revocations", "extremes", &r.base);
}

/* ---- 5. SRV answers ---------------------------------------------------------- */

typedef struct dns {
    uint8_t b[1500];
    size_t n;
} dns;

static void put8(dns *d, unsigned v) { d->b[d->n++] = (uint8_t)v; }
static void put16(dns *d, unsigned v) { put8(d, v >> 8), put8(d, v & 0xff); }
static void put32(dns *d, unsigned long v) { put16(d, (unsigned)(v >> 16)), put16(d, (unsigned)(v & 0xffff)); }

/* A name as labels ("a.b" -> 1 a 1 b 0); "." is the root. */
static void put_name(dns *d, const char *name) {
    while (*name && strcmp(name, ".") != 0) {
        const char *dot = strchr(name, '.');
        size_t len = dot ? (size_t)(dot - name) : strlen(name);
        put8(d, (unsigned)len);
        memcpy(d->b + d->n, name, len);
        d->n += len;
        name += len + (dot ? 1 : 0);
    }
    put8(d, 0);
}

/* Header and question for _activation._tcp.example.test SRV IN. */
static void dns_start(dns *d, unsigned answers) {
    d->n = 0;
    put16(d, 0x1234);
    put16(d, 0x8580); /* response, authoritative, recursion desired and available */
    put16(d, 1), put16(d, answers), put16(d, 0), put16(d, 0);
    put_name(d, "_activation._tcp.example.test");
    put16(d, 33), put16(d, 1);
}

typedef struct srv_seed {
    unsigned priority, weight, port;
    const char *target; /* NULL: compressed, pointing at "example.test" in the question */
} srv_seed;

static void dns_srv(dns *d, const srv_seed *s) {
    put16(d, 0xc00c); /* the question's name */
    put16(d, 33), put16(d, 1), put32(d, 300);
    size_t len_at = d->n;
    put16(d, 0);
    put16(d, s->priority), put16(d, s->weight), put16(d, s->port);
    if (s->target) {
        put_name(d, s->target);
    } else {
        put16(d, 0xc000 | (12 + 1 + 11 + 1 + 4)); /* "example.test" after "_activation" "_tcp" */
    }
    size_t rdlen = d->n - len_at - 2;
    d->b[len_at] = (uint8_t)(rdlen >> 8);
    d->b[len_at + 1] = (uint8_t)rdlen;
}

static void srv_answer(const char *name, const srv_seed *s, unsigned n) {
    dns d;
    dns_start(&d, n);
    for (unsigned i = 0; i < n; i++) dns_srv(&d, &s[i]);
    write_seed("srv", name, d.b, d.n);
}

static void srv_seeds(void) {
    const srv_seed three[] = {
        {10, 60, 50051, "act1.example.test"}, {10, 40, 50051, "act2.example.test."}, {20, 0, 443, NULL}};
    srv_answer("three", three, 3);
    const srv_seed none[] = {{0, 0, 0, "."}};
    srv_answer("no_service", none, 1);
    srv_answer("no_answers", NULL, 0);
    const srv_seed one[] = {{1, 1, 7651, "localhost"}};
    srv_answer("one", one, 1);
    /* Labels full of dots: c-ares escapes each one (\.), so the target's
     * text (423 characters) no longer fits srv_record.host. */
    dns d;
    dns_start(&d, 1);
    put16(&d, 0xc00c);
    put16(&d, 33), put16(&d, 1), put32(&d, 300);
    put16(&d, 6 + 4 * 61 + 1);
    put16(&d, 1), put16(&d, 1), put16(&d, 443);
    for (int i = 0; i < 4; i++) {
        put8(&d, 60);
        memset(d.b + d.n, i < 3 ? '.' : 'a', 60);
        d.n += 60;
    }
    put8(&d, 0);
    write_seed("srv", "target_escaped_too_long", d.b, d.n);
}

/* A mode byte, then `data`, for the order target. */
static void write_order_seed(const char *name, char mode, const void *data, size_t len) {
    uint8_t *buf = malloc(len + 1);
    if (!buf) die("malloc");
    buf[0] = (uint8_t)mode;
    memcpy(buf + 1, data, len);
    write_seed("order", name, buf, len + 1);
    free(buf);
}

/* Orders as text and as bytes, a report as JSON and as a UsageReport. */
static void order_seeds(void) {
    EVP_PKEY *ok = fuzz_ed25519(FUZZ_ORDER_SEED), *sk = fuzz_ed25519(FUZZ_SERVER_SEED);
    order_file onprem, hosted;
    Volume__V1__Order terms = fuzz_order_terms(NULL);
    char err[256], server_id[SIGNING_KEY_ID_LEN + 1], report[512];
    if (fuzz_onprem_order(ok, sk, &onprem) != 0 || order_file_sign(&hosted, ok, &terms, NULL, err, sizeof err) != 0 ||
        signing_key_id(sk, server_id) != 0)
        die("signing the seed orders");
    char *t1 = order_armour_write(&onprem), *t2 = order_armour_write(&hosted);
    if (!t1 || !t2) die("armour");
    write_order_seed("armour_onprem", '0', t1, strlen(t1));
    write_order_seed("armour_hosted", '0', t2, strlen(t2));
    write_order_seed("order_bytes", '1', hosted.order, hosted.order_len);
    int n = snprintf(report, sizeof report,
                     "{\"format_version\":1,\"service_serial\":\"%s\",\"order_revision\":2,\"server_key_id\":\"%s\","
                     "\"generated_at\":1796127554,\"seats_held\":2,\"machines\":3,\"over_term\":0,"
                     "\"machine_list\":[[\"000102030405060708090a0b0c0d0e0f\",1790000000,1790003600,\"seat\",1]],"
                     "\"facts\":{\"000102030405060708090a0b0c0d0e0f\":{\"hostname\":\"pc-1\"}}}",
                     FUZZ_ORDER_SERIAL, server_id);
    write_order_seed("report_json", '3', report, (size_t)n);
    uint8_t sig[TAGGED_SIG_LEN];
    if (tagged_sign(sk, TAG_USAGE, (const uint8_t *)report, (size_t)n, sig) != 0) die("signing the seed report");
    Volume__V1__UsageReport u = VOLUME__V1__USAGE_REPORT__INIT;
    u.order = (ProtobufCBinaryData){.len = onprem.order_len, .data = onprem.order};
    u.order_signature = (ProtobufCBinaryData){.len = sizeof onprem.signature, .data = onprem.signature};
    u.order_key_id = onprem.key_id;
    u.report = (ProtobufCBinaryData){.len = (size_t)n, .data = (uint8_t *)report};
    u.signature = (ProtobufCBinaryData){.len = sizeof sig, .data = sig};
    size_t len = volume__v1__usage_report__get_packed_size(&u);
    uint8_t *buf = malloc(len);
    if (!buf) die("malloc");
    volume__v1__usage_report__pack(&u, buf);
    write_order_seed("usage_report", '2', buf, len);
    free(buf);
    free(t1), free(t2);
    order_file_clear(&onprem);
    order_file_clear(&hosted);
    EVP_PKEY_free(ok);
    EVP_PKEY_free(sk);
}

/* ---- 9. batch-tree paths (fuzz_merkle.c's input) ---------------------------- */

/* A genuine place (no tampering) of leaf k in a tree of n, or one with
 * `flip` XORed into the first path byte. */
static void merkle_seed(const char *name, unsigned n, unsigned k, uint8_t flip) {
    uint8_t in[11 + 1] = {(uint8_t)(n - 1), (uint8_t)k};
    in[11] = flip;
    write_seed("merkle", name, in, flip ? sizeof in : 11);
}

static void merkle_seeds(void) {
    merkle_seed("one_leaf", 1, 0, 0);
    merkle_seed("six_leaf3", 6, 3, 0);
    merkle_seed("seventeen_last", 17, 16, 0);
    merkle_seed("full_200", 256, 200, 0);
    merkle_seed("six_leaf3_flipped", 6, 3, 0x01);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds DIR\n");
        return 2;
    }
    root = argv[1];
    if (mkdir(root, 0755) != 0 && errno != EEXIST) die(root);
    for (size_t i = 0; i < sizeof TARGETS / sizeof TARGETS[0]; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", root, TARGETS[i]);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) die(dir);
    }
    request_seeds();
    offline_seeds();
    outbox_seeds();
    revocation_seeds();
    srv_seeds();
    order_seeds();
    merkle_seeds();
    return 0;
}
