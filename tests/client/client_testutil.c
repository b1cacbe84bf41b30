/* client_testutil.c -- fake machines, a vendor key, signed licenses. */
#include "client_testutil.h"

#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "machine_id.h"
#include "state.h"
#include "tagged_signature.h"

static void die(const char *what) {
    fprintf(stderr, "client_testutil: %s\n", what);
    abort();
}

static void mkdirs(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(buf, 0755);
        *p = '/';
    }
    mkdir(buf, 0755);
}

void tu_write(const char *root, const char *rel, const char *text) {
    char path[1024], dir[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    mkdirs(dir);
    FILE *fp = fopen(path, "w");
    if (!fp) die(path);
    fputs(text, fp);
    fputc('\n', fp);
    fclose(fp);
}

void tu_add_nic(const char *root, const char *name, const char *mac, int physical, int usb, int assign_type) {
    char rel[256], type[8];
    snprintf(rel, sizeof rel, "sys/class/net/%s/address", name);
    tu_write(root, rel, mac);
    snprintf(rel, sizeof rel, "sys/class/net/%s/addr_assign_type", name);
    snprintf(type, sizeof type, "%d", assign_type);
    tu_write(root, rel, type);
    if (!physical) return;
    char dev[1024], link[1024];
    snprintf(dev, sizeof dev, "%s/sys/devices/%s-dev", root, name);
    mkdirs(dev);
    snprintf(link, sizeof link, "%s/sys/class/net/%s/device", root, name);
    if (symlink(dev, link) != 0) die("symlink device");
    snprintf(dev, sizeof dev, "%s/sys/bus/%s", root, usb ? "usb" : "pci");
    mkdirs(dev);
    snprintf(link, sizeof link, "%s/sys/devices/%s-dev/subsystem", root, name);
    if (symlink(dev, link) != 0) die("symlink subsystem");
}

void tu_root_disk(const char *root, const char *majmin, int partition, const char *serial_file, const char *serial) {
    char text[256], disk[1024], dev[1100], link[1200];
    snprintf(text, sizeof text, "29 1 %s / / rw,relatime shared:1 - ext4 /dev/sda1 rw", majmin);
    tu_write(root, "proc/self/mountinfo", text);
    snprintf(disk, sizeof disk, "%s/sys/devices/pci0000:00/0000:00:17.0/block/sda", root);
    snprintf(dev, sizeof dev, "%s%s", disk, partition ? "/sda1" : "");
    mkdirs(dev);
    if (partition) tu_write(dev, "partition", "1");
    if (serial) tu_write(disk, serial_file, serial);
    snprintf(link, sizeof link, "%s/sys/dev/block", root);
    mkdirs(link);
    snprintf(link, sizeof link, "%s/sys/dev/block/%s", root, majmin);
    unlink(link);
    if (symlink(dev, link) != 0) die("symlink block device");
}

void tu_sign_request(const char *state_dir, const char *text, const char *path) {
    char keyfile[1024];
    snprintf(keyfile, sizeof keyfile, "%s/request-key.pem", state_dir);
    FILE *f = fopen(keyfile, "r");
    if (!f) die(keyfile);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    uint8_t sig[64];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!k || !ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) != 1 ||
        EVP_DigestSign(ctx, sig, &sig_len, (const uint8_t *)text, strlen(text)) != 1)
        die("sign request");
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(k);
    char *b64 = b64_encode(sig, sig_len);
    f = fopen(path, "w");
    if (!b64 || !f) die(path);
    fprintf(f, "%ssignature: %s\n", text, b64);
    fclose(f);
    free(b64);
}

void tu_fake_machine(const char *root, const char *uuid, const char *board, const char *mac, const char *os_id) {
    mkdirs(root);
    if (uuid) tu_write(root, "sys/class/dmi/id/product_uuid", uuid);
    if (board) tu_write(root, "sys/class/dmi/id/board_serial", board);
    if (mac) tu_add_nic(root, "eth0", mac, 1, 0, 0);
    if (os_id) tu_write(root, "etc/machine-id", os_id);
}

EVP_PKEY *tu_vendor_key(char **pub_pem) {
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    BIO *b = BIO_new(BIO_s_mem());
    if (!k || !b || PEM_write_bio_PUBKEY(b, k) != 1) die("vendor key");
    char *data;
    long len = BIO_get_mem_data(b, &data);
    *pub_pem = strndup(data, (size_t)len);
    BIO_free(b);
    return k;
}

void tu_sign_tree(EVP_PKEY *key, signed_license *out) {
    merkle_hash leaves[TU_TREE_SIZE], root, paths[TU_TREE_SIZE][MERKLE_MAX_PATH];
    size_t lens[TU_TREE_SIZE];
    for (int i = 0; i < TU_TREE_SIZE; i++) {
        char other[32];
        int n = snprintf(other, sizeof other, "another license %d", i);
        merkle_leaf((const uint8_t *)other, (size_t)n, leaves[i]);
    }
    merkle_leaf(out->license, out->license_len, leaves[TU_TREE_INDEX]);
    if (merkle_tree(leaves, TU_TREE_SIZE, root, paths, lens) != 0) die("merkle tree");
    uint8_t msg[MERKLE_MESSAGE_LEN];
    size_t msg_len = merkle_signed_message(root, TU_TREE_SIZE, msg);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sig_len = sizeof out->signature;
    if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
        EVP_DigestSign(ctx, out->signature, &sig_len, msg, msg_len) != 1)
        die("sign license");
    EVP_MD_CTX_free(ctx);
    out->signature_len = sig_len;
    out->tree_index = TU_TREE_INDEX;
    out->tree_size = TU_TREE_SIZE;
    out->tree_path_len = lens[TU_TREE_INDEX];
    memcpy(out->tree_path, paths[TU_TREE_INDEX], lens[TU_TREE_INDEX] * MERKLE_HASH_LEN);
}

void tu_sign_license(EVP_PKEY *vendor, const uint8_t *machine_id, int64_t renew_after, int64_t expires_at,
                     signed_license *out) {
    memset(out, 0, sizeof *out);
    if (signing_key_id(vendor, out->key_id) != 0) die("key id");
    Activation__V1__License l = ACTIVATION__V1__LICENSE__INIT;
    char *features[] = {"editor", "spreadsheet"};
    l.format_version = 1;
    l.license_id = "0000110d0000000b0123456789abcdef";
    l.product = "Demo Office";
    l.edition = "Professional";
    l.channel = ACTIVATION__V1__CHANNEL__CHANNEL_RETAIL;
    l.n_features = 2;
    l.features = features;
    l.machine_id.data = (uint8_t *)machine_id;
    l.machine_id.len = 32;
    l.key_group = 4365;
    l.key_serial = 11;
    l.issued_at = 1700000000;
    l.renew_after = renew_after;
    l.expires_at = expires_at;
    l.signing_key_id = out->key_id;
    out->license_len = activation__v1__license__get_packed_size(&l);
    out->license = malloc(out->license_len);
    activation__v1__license__pack(&l, out->license);
    tu_sign_tree(vendor, out);
    out->activation_count = 1;
}

void tu_chain_init(tu_chain *t, EVP_PKEY *order_key, EVP_PKEY *server_key, const uint8_t *machine_id) {
    memset(t, 0, sizeof *t);
    int64_t now = (int64_t)time(NULL);
    t->order_key = order_key;
    t->delegated = server_key;
    t->signer = server_key;
    t->groups[0] = 7;
    t->features[0] = "editor";
    t->features[1] = "spreadsheet";
    memcpy(t->machine_id, machine_id, 32);
    Volume__V1__Order *o = &t->order;
    volume__v1__order__init(o);
    o->format_version = 1;
    o->service_serial = "12345678";
    o->revision = 1;
    o->customer = "Example Corp";
    o->vendor = "Demo Vendor";
    o->product = "Demo Office";
    o->edition = "Professional";
    o->n_groups = 1;
    o->groups = t->groups;
    o->n_features = 2;
    o->features = t->features;
    o->mode = VOLUME__V1__SEAT_MODE__SEAT_MODE_CONCURRENT;
    o->seats = 500;
    o->valid_from = now - 30 * 86400;
    o->valid_until = now + 335 * 86400;
    o->issued_at = now - 31 * 86400;
    o->auto_activation = true;
    Activation__V1__License *l = &t->license;
    activation__v1__license__init(l);
    l->format_version = 1;
    l->license_id = "000000070000000b0123456789abcdef";
    l->product = "Demo Office";
    l->edition = "Professional";
    l->channel = ACTIVATION__V1__CHANNEL__CHANNEL_VOLUME;
    l->n_features = 2;
    l->features = t->features;
    l->machine_id.data = t->machine_id;
    l->machine_id.len = 32;
    l->key_group = 7;
    l->key_serial = 11;
    l->issued_at = now - 60;
    l->renew_after = now + 60;
    l->expires_at = now + 180;
    l->order_serial = "12345678";
    l->order_revision = 1;
    l->seat_mode = "concurrent";
}

static uint8_t *packed(const ProtobufCMessage *m, size_t *len) {
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*len ? *len : 1);
    if (!b) die("out of memory");
    protobuf_c_message_pack(m, b);
    return b;
}

void tu_chain_sign(tu_chain *t, signed_license *out) {
    memset(out, 0, sizeof *out);
    if (t->delegated) {
        size_t n = sizeof t->delegated_raw;
        if (EVP_PKEY_get_raw_public_key(t->delegated, t->delegated_raw, &n) != 1) die("delegated key");
        t->order.delegated_key.data = t->delegated_raw;
        t->order.delegated_key.len = n;
    }
    out->order = packed(&t->order.base, &out->order_len);
    if (tagged_sign(t->order_key, TAG_ORDER, out->order, out->order_len, out->order_signature) != 0) die("sign order");
    out->order_signature_len = TAGGED_SIG_LEN;
    if (signing_key_id(t->order_key, out->order_key_id) != 0 || signing_key_id(t->signer, t->signer_id) != 0)
        die("key id");
    t->license.signing_key_id = t->signer_id;
    memcpy(out->key_id, t->signer_id, sizeof out->key_id);
    out->license = packed(&t->license.base, &out->license_len);
    tu_sign_tree(t->signer, out);
    out->activation_count = 1;
    out->volume = (volume_counts){17, 5, 500, 17};
}

void tu_machine_id(const char *root, const char *salt, uint8_t out[32]) {
    machine_facts f;
    char err[256];
    if (machine_facts_read(root, &f, err, sizeof err) != 0 || machine_id_derive(&f, salt, out) != 0) die(err);
}
