/* fuzz_request.c -- libFuzzer target for what the activation server reads
 * from an installer: the bytes of an Activate, Renew or Deactivate request,
 * unpacked by protobuf-c and checked by validate.c, as activate.c and
 * renew.c do before any work. Every input is tried as all three messages
 * (they share field numbers 1 and 2, so one corpus serves them all).
 *
 * Beyond "never crashes", the target checks the promises the handlers rely
 * on:
 *   - an accepted ActivateRequest has a key that decodes to the fields
 *     validate_activate returned, a 32-byte machine id, and facts within
 *     their lengths and of printable ASCII only (hostname without spaces;
 *     at most MACS_MAX MAC addresses of MAC_TEXT_LEN characters);
 *   - a refusal names its field first ("product_key: ...") and says key
 *     problem (key_status) exactly when the key is the field;
 *   - an accepted license reference is in range and formats back to exactly
 *     the license id sent (validate_license_ref and license_id_format are
 *     inverses, so no two spellings reach the same place);
 *   - the request's fields packed again and re-read get the same verdict.
 *     Unknown fields are left out of that: protobuf-c 1.4 keeps a field
 *     numbered 0 when its tag is a two-byte varint ("\x85\x00"), packs it
 *     back as "\x05" and then refuses its own output. The server never
 *     re-packs a request, so that is protobuf-c's quirk, not ours. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "keycodec.h"
#include "validate.h"

static bool text_fits(const char *s, size_t max, bool spaces) {
    size_t n = strlen(s ? s : "");
    if (n > max) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c > 0x20 && c < 0x7f) || (spaces && c == ' '))) return false;
    }
    return true;
}

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static bool activate_verdict(const Activation__V1__ActivateRequest *rq, char *msg, size_t msglen) {
    pk_fields key;
    pk_status key_status = PK_ERR_EMPTY;
    msg[0] = '\0';
    bool ok = validate_activate(rq, &key, &key_status, msg, msglen);
    if (!ok) {
        CHECK(msg[0] != '\0');
        CHECK((key_status != PK_OK) == starts_with(msg, "product_key: "));
        CHECK(starts_with(msg, "product_key: ") || starts_with(msg, "machine_id: ") || starts_with(msg, "hostname: ") ||
              starts_with(msg, "os: ") || starts_with(msg, "arch: ") || starts_with(msg, "client_version: ") ||
              starts_with(msg, "place_key: ") || starts_with(msg, "host_serial: ") ||
              starts_with(msg, "mac_addresses") || starts_with(msg, "components"));
        return false;
    }
    CHECK(key_status == PK_OK);
    const char *text = rq->product_key ? rq->product_key : "";
    pk_fields again;
    CHECK(pk_decode(text, strlen(text), &again, NULL) == PK_OK);
    CHECK(again.group == key.group && again.serial == key.serial && again.security_first == key.security_first &&
          again.security_second == key.security_second && again.upgrade == key.upgrade);
    char canonical[PK_TEXT_LEN + 1];
    CHECK(pk_encode(&key, canonical) == 0);
    CHECK(rq->machine_id.len == MACHINE_ID_LEN && rq->machine_id.data);
    CHECK(text_fits(rq->hostname, HOSTNAME_MAX, false));
    CHECK(text_fits(rq->os, FACT_MAX, true));
    CHECK(text_fits(rq->arch, FACT_MAX, true));
    CHECK(text_fits(rq->client_version, FACT_MAX, true));
    CHECK(text_fits(rq->host_serial, FACT_MAX, true));
    CHECK(rq->n_mac_addresses <= MACS_MAX);
    for (size_t i = 0; i < rq->n_mac_addresses; i++)
        CHECK(rq->mac_addresses[i] && strlen(rq->mac_addresses[i]) == MAC_TEXT_LEN &&
              text_fits(rq->mac_addresses[i], MAC_TEXT_LEN, false));
    CHECK(rq->n_components <= COMPONENTS_MAX);
    for (size_t i = 0; i < rq->n_components; i++) {
        const char *name = rq->components[i]->name;
        size_t n = strlen(name);
        CHECK(n >= 1 && n <= COMPONENT_NAME_MAX && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == n);
        CHECK(rq->components[i]->digest.len == COMPONENT_DIGEST_LEN);
        for (size_t j = 0; j < i; j++) CHECK(strcmp(rq->components[j]->name, name) != 0);
    }
    return true;
}

static void fuzz_activate(const uint8_t *data, size_t size) {
    Activation__V1__ActivateRequest *rq = activation__v1__activate_request__unpack(NULL, size, data);
    if (!rq) return;
    char msg[256], msg2[256]; /* the size activate.c uses */
    bool ok = activate_verdict(rq, msg, sizeof msg);

    size_t unknown = rq->base.n_unknown_fields; /* restored for free_unpacked */
    rq->base.n_unknown_fields = 0;
    size_t n = activation__v1__activate_request__get_packed_size(rq);
    uint8_t *buf = malloc(n ? n : 1);
    CHECK(buf && activation__v1__activate_request__pack(rq, buf) == n);
    rq->base.n_unknown_fields = unknown;
    Activation__V1__ActivateRequest *rq2 = activation__v1__activate_request__unpack(NULL, n, buf);
    CHECK(rq2);
    CHECK(activate_verdict(rq2, msg2, sizeof msg2) == ok);
    CHECK(strcmp(msg, msg2) == 0);
    activation__v1__activate_request__free_unpacked(rq2, NULL);
    free(buf);
    activation__v1__activate_request__free_unpacked(rq, NULL);
}

/* Renew and Deactivate name a place the same way. */
static void check_license_ref(const char *license_id, const ProtobufCBinaryData *machine_id) {
    uint32_t group = 0, serial = 0;
    uint8_t random[LICENSE_RANDOM_LEN];
    char msg[200]; /* the size renew.c uses */
    msg[0] = '\0';
    if (!validate_license_ref(license_id, machine_id, &group, &serial, random, msg, sizeof msg)) {
        CHECK(starts_with(msg, "license_id: ") || starts_with(msg, "machine_id: "));
        return;
    }
    CHECK(group <= PK_GROUP_MAX && serial <= PK_SERIAL_MAX);
    CHECK(machine_id->len == MACHINE_ID_LEN);
    char formatted[LICENSE_ID_LEN + 1];
    license_id_format(formatted, group, serial, random);
    CHECK(license_id && strcmp(formatted, license_id) == 0);
}

static void fuzz_renew(const uint8_t *data, size_t size) {
    Activation__V1__RenewRequest *rq = activation__v1__renew_request__unpack(NULL, size, data);
    if (!rq) return;
    check_license_ref(rq->license_id, &rq->machine_id);
    activation__v1__renew_request__free_unpacked(rq, NULL);
}

static void fuzz_deactivate(const uint8_t *data, size_t size) {
    Activation__V1__DeactivateRequest *rq = activation__v1__deactivate_request__unpack(NULL, size, data);
    if (!rq) return;
    check_license_ref(rq->license_id, &rq->machine_id);
    activation__v1__deactivate_request__free_unpacked(rq, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_activate(data, size);
    fuzz_renew(data, size);
    fuzz_deactivate(data, size);
    return 0;
}
