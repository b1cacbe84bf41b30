/* validate.c -- request checks (see validate.h).
 *
 * Free text is limited to printable ASCII: it ends up in JSON logs, in the
 * operators' search and export of activated machines, and in terminals, where
 * control characters could forge lines or escape sequences. A hostname has no
 * spaces; os, arch and client_version may. */
#include "validate.h"

#include <stdio.h>
#include <string.h>

#include "hex.h"

/* True if s has at most `max` bytes, all printable ASCII (space only if
 * `spaces`). Writes the reason to msg otherwise. */
static bool text_ok(const char *field, const char *s, size_t max, bool spaces, char *msg,
                    size_t msglen) {
    size_t n = strlen(s);
    if (n > max) {
        snprintf(msg, msglen, "%s: at most %zu characters allowed, got %zu", field, max, n);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool printable = c > 0x20 && c < 0x7F;
        if (!printable && !(spaces && c == ' ')) {
            snprintf(msg, msglen, "%s: byte 0x%02X at position %zu is not a printable character",
                     field, c, i + 1);
            return false;
        }
    }
    return true;
}

static bool machine_id_ok(const ProtobufCBinaryData *m, char *msg, size_t msglen) {
    if (m->len == 0) {
        snprintf(msg, msglen, "machine_id: missing (expected %d bytes)", MACHINE_ID_LEN);
        return false;
    }
    if (m->len != MACHINE_ID_LEN) {
        snprintf(msg, msglen, "machine_id: must be exactly %d bytes, got %zu", MACHINE_ID_LEN,
                 m->len);
        return false;
    }
    return true;
}

/* "aa:bb:cc:dd:ee:ff", hex digits of either case. */
static bool mac_ok(const char *s) {
    if (strlen(s) != MAC_TEXT_LEN) return false;
    for (int i = 0; i < MAC_TEXT_LEN; i++)
        if (i % 3 == 2 ? s[i] != ':' : pa_hex_digit((unsigned char)s[i]) < 0) return false;
    return true;
}

/* The machine facts volume orders collect: a host serial, and MACs. */
static bool volume_facts_ok(const Activation__V1__ActivateRequest *req, char *msg, size_t msglen) {
    if (!text_ok("host_serial", req->host_serial ? req->host_serial : "", FACT_MAX, true, msg, msglen)) return false;
    if (req->n_mac_addresses > MACS_MAX) {
        snprintf(msg, msglen, "mac_addresses: at most %d allowed, got %zu", MACS_MAX, req->n_mac_addresses);
        return false;
    }
    for (size_t i = 0; i < req->n_mac_addresses; i++) {
        if (!mac_ok(req->mac_addresses[i] ? req->mac_addresses[i] : "")) {
            snprintf(msg, msglen, "mac_addresses[%zu]: expected six hex pairs separated by ':' (aa:bb:cc:dd:ee:ff)", i);
            return false;
        }
    }
    return true;
}

static bool component_name_ok(size_t i, const char *name, char *msg, size_t msglen) {
    size_t n = strlen(name);
    if (n == 0 || n > COMPONENT_NAME_MAX) {
        snprintf(msg, msglen, "components[%zu].name: must be 1 to %d characters, got %zu", i, COMPONENT_NAME_MAX, n);
        return false;
    }
    size_t bad = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_.-");
    if (bad < n) {
        snprintf(msg, msglen, "components[%zu].name: byte 0x%02X at position %zu is not one of [a-z0-9_.-]", i,
                 (unsigned char)name[bad], bad + 1);
        return false;
    }
    return true;
}

/* The machine's components (docs/machines.md): at most COMPONENTS_MAX, names
 * well-formed and unique, digests of COMPONENT_DIGEST_LEN bytes. */
static bool components_ok(const Activation__V1__ActivateRequest *req, char *msg, size_t msglen) {
    if (req->n_components > COMPONENTS_MAX) {
        snprintf(msg, msglen, "components: at most %d allowed, got %zu", COMPONENTS_MAX, req->n_components);
        return false;
    }
    for (size_t i = 0; i < req->n_components; i++) {
        const Activation__V1__MachineComponent *c = req->components[i];
        const char *name = c && c->name ? c->name : "";
        if (!component_name_ok(i, name, msg, msglen)) return false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(req->components[j]->name, name) == 0) {
                snprintf(msg, msglen, "components[%zu].name: duplicate \"%s\"", i, name);
                return false;
            }
        if (c->digest.len != COMPONENT_DIGEST_LEN) {
            snprintf(msg, msglen, "components[%zu].digest: must be exactly %d bytes, got %zu", i, COMPONENT_DIGEST_LEN,
                     c->digest.len);
            return false;
        }
    }
    return true;
}

/* A base-128 varint at buf[*pos]; false when it runs past the end or 64 bits. */
static bool varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out) {
    *out = 0;
    for (unsigned shift = 0; shift < 64 && *pos < len; shift += 7) {
        uint8_t b = buf[(*pos)++];
        *out |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

bool validate_strings_have_no_nul(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len, char *msg,
                                  size_t msglen) {
    size_t pos = 0;
    while (pos < len) {
        uint64_t tag, n;
        if (!varint(buf, len, &pos, &tag)) return true;
        switch (tag & 7) {
        case 0:
            if (!varint(buf, len, &pos, &n)) return true;
            break;
        case 1: pos += 8; break;
        case 5: pos += 4; break;
        case 2: {
            if (!varint(buf, len, &pos, &n) || n > len - pos) return true;
            const ProtobufCFieldDescriptor *f =
                tag >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3)) : NULL;
            const uint8_t *nul = f && f->type == PROTOBUF_C_TYPE_STRING ? memchr(buf + pos, 0, n) : NULL;
            if (nul) {
                snprintf(msg, msglen, "%s: byte 0x00 at position %zu is not allowed", f->name,
                         (size_t)(nul - (buf + pos)) + 1);
                return false;
            }
            pos += n;
            break;
        }
        default: return true; /* groups, or not protobuf at all */
        }
    }
    return true;
}

bool validate_activate(const Activation__V1__ActivateRequest *req, pk_fields *key,
                       pk_status *key_status, char *msg, size_t msglen) {
    *key_status = PK_OK;
    const char *text = req->product_key ? req->product_key : "";
    pk_error err;
    pk_status st = pk_decode(text, strlen(text), key, &err);
    if (st != PK_OK) {
        char why[224];
        *key_status = st;
        snprintf(msg, msglen, "product_key: %s", pk_strerror(&err, why, sizeof why));
        return false;
    }
    if (req->place_key.len != 0 && req->place_key.len != PLACE_KEY_BYTES) {
        snprintf(msg, msglen, "place_key: must be exactly %d bytes (a raw Ed25519 public key), got %zu",
                 PLACE_KEY_BYTES, req->place_key.len);
        return false;
    }
    return machine_id_ok(&req->machine_id, msg, msglen) &&
           text_ok("hostname", req->hostname ? req->hostname : "", HOSTNAME_MAX, false, msg, msglen) &&
           text_ok("os", req->os ? req->os : "", FACT_MAX, true, msg, msglen) &&
           text_ok("arch", req->arch ? req->arch : "", FACT_MAX, true, msg, msglen) &&
           text_ok("client_version", req->client_version ? req->client_version : "", FACT_MAX, true, msg, msglen) &&
           volume_facts_ok(req, msg, msglen) && components_ok(req, msg, msglen);
}

bool validate_license_ref(const char *license_id, const ProtobufCBinaryData *machine_id,
                          uint32_t *group, uint32_t *serial,
                          uint8_t random[LICENSE_RANDOM_LEN], char *msg, size_t msglen) {
    const char *id = license_id ? license_id : "";
    uint8_t gs[8];
    /* Issued ids are lowercase; the decoder alone would take either case. */
    if (strlen(id) != LICENSE_ID_LEN || strspn(id, "0123456789abcdef") != LICENSE_ID_LEN ||
        pa_hex_decode(id, 16, gs, sizeof gs) != 8 || pa_hex_decode(id + 16, 16, random, LICENSE_RANDOM_LEN) != 8) {
        snprintf(msg, msglen, "license_id: expected %d lowercase hex characters as issued in a "
                 "license", LICENSE_ID_LEN);
        return false;
    }
    *group = (uint32_t)gs[0] << 24 | (uint32_t)gs[1] << 16 | (uint32_t)gs[2] << 8 | gs[3];
    *serial = (uint32_t)gs[4] << 24 | (uint32_t)gs[5] << 16 | (uint32_t)gs[6] << 8 | gs[7];
    if (*group > PK_GROUP_MAX || *serial > PK_SERIAL_MAX) {
        snprintf(msg, msglen, "license_id: names no possible key (group or serial out of range)");
        return false;
    }
    return machine_id_ok(machine_id, msg, msglen);
}

void license_id_format(char out[LICENSE_ID_LEN + 1], uint32_t group, uint32_t serial,
                       const uint8_t random[LICENSE_RANDOM_LEN]) {
    snprintf(out, LICENSE_ID_LEN + 1, "%08x%08x", group, serial);
    pa_hex_encode(random, LICENSE_RANDOM_LEN, out + 16);
}
