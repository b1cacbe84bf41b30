/* validate.h -- checks an incoming request before any work is done on it.
 *
 * The server never trusts the installer: it decodes the product key again
 * and bounds every free-text field, so nothing malformed reaches Redis, the
 * logs or a signed license. Every failure names the field, for an
 * INVALID_ARGUMENT status the installer can show as is. */
#ifndef PA_ACTIVATION_VALIDATE_H
#define PA_ACTIVATION_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "activation/v1/activation.pb-c.h"
#include "keycodec.h"

#define MACHINE_ID_LEN 32
#define HOSTNAME_MAX 253      /* the longest DNS name */
#define FACT_MAX 64           /* os, arch, client_version, host_serial */
#define MACS_MAX 8            /* ActivateRequest.mac_addresses */
#define MAC_TEXT_LEN 17       /* "aa:bb:cc:dd:ee:ff" */
#define LICENSE_ID_LEN 32     /* group (8 hex) + serial (8 hex) + random (16 hex) */
#define LICENSE_RANDOM_LEN 8
#define PLACE_KEY_BYTES 32      /* ActivateRequest.place_key: raw Ed25519 public key */
#define COMPONENTS_MAX 16       /* ActivateRequest.components (docs/machines.md) */
#define COMPONENT_NAME_MAX 32   /* MachineComponent.name: 1..32 of [a-z0-9_.-] */
#define COMPONENT_DIGEST_LEN 32 /* MachineComponent.digest */

/* Checks an ActivateRequest and decodes its key into `key`. On failure
 * writes "field: reason" into msg and returns false; *key_status tells a key
 * problem (PK_ERR_*) from a request problem (PK_OK). */
bool validate_activate(const Activation__V1__ActivateRequest *req, pk_fields *key,
                       pk_status *key_status, char *msg, size_t msglen);

/* protobuf-c hands string fields over NUL-terminated, so a NUL byte inside
 * one would silently cut it short ("KEY\0junk" read as KEY). The wire bytes
 * still hold the length: refuses a message of type `d` whose top-level
 * string fields hold a NUL, naming the field. Bytes that do not parse are
 * left to the unpacker (true). */
bool validate_strings_have_no_nul(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len, char *msg,
                                  size_t msglen);

/* Checks license_id and machine_id of a Renew or Deactivate request and
 * splits the license id into group, serial and its random part. */
bool validate_license_ref(const char *license_id, const ProtobufCBinaryData *machine_id,
                          uint32_t *group, uint32_t *serial,
                          uint8_t random[LICENSE_RANDOM_LEN], char *msg, size_t msglen);

/* The license id text for (group, serial, random): 32 lowercase hex + NUL. */
void license_id_format(char out[LICENSE_ID_LEN + 1], uint32_t group, uint32_t serial,
                       const uint8_t random[LICENSE_RANDOM_LEN]);

#endif
