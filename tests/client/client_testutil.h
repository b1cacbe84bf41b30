/* client_testutil.h -- what the client's tests make for themselves: fake
 * machines (a facts tree on disk), a vendor signing key, and licenses
 * signed with it, so the verification paths can be tested without a server. */
#ifndef TEST_CLIENT_TESTUTIL_H
#define TEST_CLIENT_TESTUTIL_H

#include <openssl/evp.h>
#include <stdint.h>

#include "license_verify.h"
#include "volume/v1/order.pb-c.h"

/* A fake machine under `root`: DMI uuid/board serial (NULL: absent), one
 * NIC eth0 with `mac` (NULL: none), /etc/machine-id `os_id` (NULL: none). */
void tu_fake_machine(const char *root, const char *uuid, const char *board, const char *mac, const char *os_id);
/* Adds a NIC: `physical` gives it a device link, `usb` makes that device USB. */
void tu_add_nic(const char *root, const char *name, const char *mac, int physical, int usb, int assign_type);
/* Writes `text` to root/rel, creating directories. */
void tu_write(const char *root, const char *rel, const char *text);
/* The disk holding "/" in a fake machine: a mountinfo line mounting block
 * device `majmin` ("8:1") at "/", that device in sysfs (a partition of a
 * disk when `partition`, else the whole disk) and, on the disk,
 * `serial_file` ("device/serial", "serial", "device/wwid") holding
 * `serial` (NULL: none). */
void tu_root_disk(const char *root, const char *majmin, int partition, const char *serial_file, const char *serial);

/* Re-signs `text` (an offline request without its signature line) with
 * the request key in `state_dir`, as `activate request` would, into `path`. */
void tu_sign_request(const char *state_dir, const char *text, const char *path);

/* A fresh Ed25519 vendor key; *pub_pem is malloc'd PEM of its public half. */
EVP_PKEY *tu_vendor_key(char **pub_pem);

/* Signs out->license as a server signing a batch would (merkle.h): leaf
 * TU_TREE_INDEX of a tree of TU_TREE_SIZE whose other leaves are other
 * licenses' hashes; fills the signature, index, size and path. */
#define TU_TREE_SIZE 5
#define TU_TREE_INDEX 2
void tu_sign_tree(EVP_PKEY *key, signed_license *out);

/* A signed license for `machine_id` (32 bytes) from group 4365 serial 11,
 * signed with tu_sign_tree. */
void tu_sign_license(EVP_PKEY *vendor, const uint8_t *machine_id, int64_t renew_after, int64_t expires_at,
                     signed_license *out);

/* An on-premises license as tests want it: an order the vendor signs (its
 * order key, tagged TAG_ORDER) delegating the server's key, and a volume
 * license that server signs naming the order. tu_chain_init fills terms that
 * verify; a test changes `order` or `license` (or the keys) before
 * tu_chain_sign. The struct owns the arrays its messages point into: keep it
 * where it was initialised. */
typedef struct tu_chain {
    Volume__V1__Order order;         /* serial 12345678 r1, group 7, concurrent, valid a year around now */
    Activation__V1__License license; /* group 7 serial 11, issued a minute ago, a 60 s heartbeat */
    EVP_PKEY *order_key;             /* signs the order (the vendor's order key) */
    EVP_PKEY *delegated;             /* the key the order names (NULL: delegated_key left as set) */
    EVP_PKEY *signer;                /* signs the license (the on-premises server's key) */
    uint32_t groups[1];
    char *features[2];
    uint8_t machine_id[32];
    uint8_t delegated_raw[32];
    char signer_id[17];
} tu_chain;

void tu_chain_init(tu_chain *t, EVP_PKEY *order_key, EVP_PKEY *server_key, const uint8_t *machine_id);
/* Signs both (the license names the signer's key id) into `out`. */
void tu_chain_sign(tu_chain *t, signed_license *out);

/* The machine id the library computes for a facts tree. */
void tu_machine_id(const char *root, const char *salt, uint8_t out[32]);

#endif
