/* client_testutil.h -- what the client's tests make for themselves: fake
 * machines (a facts tree on disk), a vendor signing key, and licenses
 * signed with it, so the verification paths can be tested without a server. */
#ifndef TEST_CLIENT_TESTUTIL_H
#define TEST_CLIENT_TESTUTIL_H

#include <openssl/evp.h>
#include <stdint.h>

#include "license_verify.h"

/* A fake machine under `root`: DMI uuid/board serial (NULL: absent), one
 * NIC eth0 with `mac` (NULL: none), /etc/machine-id `os_id` (NULL: none). */
void tu_fake_machine(const char *root, const char *uuid, const char *board, const char *mac, const char *os_id);
/* Adds a NIC: `physical` gives it a device link, `usb` makes that device USB. */
void tu_add_nic(const char *root, const char *name, const char *mac, int physical, int usb, int assign_type);
/* Writes `text` to root/rel, creating directories. */
void tu_write(const char *root, const char *rel, const char *text);

/* A fresh Ed25519 vendor key; *pub_pem is malloc'd PEM of its public half. */
EVP_PKEY *tu_vendor_key(char **pub_pem);

/* A signed license for `machine_id` (32 bytes) from group 4365 serial 11. */
void tu_sign_license(EVP_PKEY *vendor, const uint8_t *machine_id, int64_t renew_after, int64_t expires_at,
                     signed_license *out);

/* The machine id the library computes for a facts tree. */
void tu_machine_id(const char *root, const char *salt, uint8_t out[32]);

#endif
