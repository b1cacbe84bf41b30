/* usage_file.c -- verifying a usage report and its JSON file form
 * (usage_file.h). */
#include "usage_file.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "hex.h"

const char *usage_status_reason(usage_status s) {
    switch (s) {
    case USAGE_OK: return "ok";
    case USAGE_MALFORMED: return "malformed";
    case USAGE_FOREIGN_VENDOR: return "foreign vendor";
    case USAGE_TAMPERED: return "tampered";
    case USAGE_WRONG_SERVER: return "wrong server";
    }
    return "malformed";
}

/* The key id of a raw Ed25519 public key (signing_key_id.h's rule). */
static void raw_key_id(const uint8_t *key, size_t len, char out[SIGNING_KEY_ID_LEN + 1]) {
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256(key, len, d);
    pa_hex_encode(d, SIGNING_KEY_ID_LEN / 2, out);
}

static int count_field(json_t *j, const char *name, uint64_t *out, char *err, size_t errlen) {
    json_t *v = json_object_get(j, name);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return err_set(err, errlen, "report: %s is not a count", name);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* The report's own fields, checked against the order that delegates its key. */
static usage_status read_report(const Volume__V1__UsageReport *u, const Volume__V1__Order *o, usage_summary *s,
                                char *err, size_t errlen) {
    json_error_t je;
    json_t *j = json_loadb((const char *)u->report.data, u->report.len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return err_set(err, errlen, "report: not a JSON object (%s)", je.text), USAGE_MALFORMED;
    }
    const char *serial = json_string_value(json_object_get(j, "service_serial"));
    const char *key_id = json_string_value(json_object_get(j, "server_key_id"));
    json_t *rev = json_object_get(j, "order_revision"), *at = json_object_get(j, "generated_at");
    json_t *list = json_object_get(j, "machine_list");
    int rc = 0;
    if (json_integer_value(json_object_get(j, "format_version")) != USAGE_FORMAT_VERSION)
        rc = err_set(err, errlen, "report: format_version is not %d", USAGE_FORMAT_VERSION);
    else if (!serial || strcmp(serial, o->service_serial) != 0)
        rc = err_set(err, errlen, "report: service_serial is not the order's %s", o->service_serial);
    else if (!json_is_integer(rev) || json_integer_value(rev) != (json_int_t)o->revision)
        rc = err_set(err, errlen, "report: order_revision is not the order's %u", o->revision);
    else if (!key_id || strlen(key_id) != SIGNING_KEY_ID_LEN)
        rc = err_set(err, errlen, "report: server_key_id is missing");
    else if (!json_is_integer(at) || json_integer_value(at) <= 0)
        rc = err_set(err, errlen, "report: generated_at is not a time");
    else if (!json_is_array(list)) rc = err_set(err, errlen, "report: machine_list is not a list");
    if (!rc && (count_field(j, "seats_held", &s->seats_held, err, errlen) ||
                count_field(j, "machines", &s->machines, err, errlen) ||
                count_field(j, "over_term", &s->over_term, err, errlen)))
        rc = -1;
    if (!rc) {
        snprintf(s->serial, sizeof s->serial, "%s", serial);
        s->revision = o->revision;
        snprintf(s->server_key_id, sizeof s->server_key_id, "%s", key_id);
        s->generated_at = json_integer_value(at);
        s->listed = json_array_size(list);
    }
    json_decref(j);
    return rc ? USAGE_MALFORMED : USAGE_OK;
}

usage_status usage_verify(const Volume__V1__UsageReport *u, const order_keyring *ring, usage_summary *out, char *err,
                          size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!u) return err_set(err, errlen, "not a volume.v1.UsageReport message"), USAGE_MALFORMED;
    if (u->report.len == 0 || u->report.len > USAGE_REPORT_MAX)
        return err_set(err, errlen, "report: empty or larger than %u bytes", USAGE_REPORT_MAX), USAGE_MALFORMED;
    order_file f;
    char why[400];
    order_status os = order_file_from_parts(&f, u->order.data, u->order.len, u->order_signature.data,
                                            u->order_signature.len, u->order_key_id, NULL, 0, why, sizeof why);
    if (os == ORDER_OK) os = order_file_verify(&f, ring, why, sizeof why);
    usage_status st = os == ORDER_OK               ? USAGE_OK
                      : os == ORDER_FOREIGN_VENDOR ? USAGE_FOREIGN_VENDOR
                      : os == ORDER_TAMPERED       ? USAGE_TAMPERED
                                                   : USAGE_MALFORMED;
    if (st != USAGE_OK) err_set(err, errlen, "order: %s", why);
    else if (!order_is_on_premises(f.o))
        st = USAGE_WRONG_SERVER, err_set(err, errlen, "order: a vendor-hosted order delegates no key to report with");
    if (st == USAGE_OK) st = read_report(u, f.o, out, err, errlen);
    char delegated[SIGNING_KEY_ID_LEN + 1];
    if (st == USAGE_OK) raw_key_id(f.o->delegated_key.data, f.o->delegated_key.len, delegated);
    if (st == USAGE_OK && strcmp(out->server_key_id, delegated) != 0)
        st = USAGE_WRONG_SERVER, err_set(err, errlen, "report: signed for key %s, but the order delegates key %s",
                                         out->server_key_id, delegated);
    if (st == USAGE_OK && !tagged_verify_raw(f.o->delegated_key.data, f.o->delegated_key.len, TAG_USAGE, u->report.data,
                                             u->report.len, u->signature.data, u->signature.len))
        st = USAGE_TAMPERED,
        err_set(err, errlen, "report: the signature does not verify with the order's delegated key %s", delegated);
    order_file_clear(&f);
    return st;
}

/* ---- the JSON file ---- */

static json_t *b64(const ProtobufCBinaryData *d) {
    size_t n = 4 * ((d->len + 2) / 3);
    char *s = malloc(n + 1);
    if (!s) return NULL;
    EVP_EncodeBlock((unsigned char *)s, d->data ? d->data : (const uint8_t *)"", (int)d->len);
    json_t *j = json_stringn(s, n);
    free(s);
    return j;
}

char *usage_file_write(const Volume__V1__UsageReport *u) {
    json_t *j =
        json_pack("{s:i, s:o, s:o, s:s, s:o, s:o}", "format_version", USAGE_FORMAT_VERSION, "order", b64(&u->order),
                  "order_signature", b64(&u->order_signature), "order_key_id", u->order_key_id ? u->order_key_id : "",
                  "report", b64(&u->report), "signature", b64(&u->signature));
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    return text;
}

/* Decodes a base64 field into a malloc'd buffer; -1 when absent or not base64. */
static int unb64(json_t *j, const char *name, ProtobufCBinaryData *out, char *err, size_t errlen) {
    const char *s = json_string_value(json_object_get(j, name));
    size_t len = s ? strlen(s) : 0;
    if (!s || len % 4) return err_set(err, errlen, "usage file: %s is not base64", name);
    size_t pad = len && s[len - 1] == '=' ? (len > 1 && s[len - 2] == '=' ? 2 : 1) : 0;
    out->data = malloc(len / 4 * 3 + 1);
    if (!out->data) return err_set(err, errlen, "out of memory");
    int n = EVP_DecodeBlock(out->data, (const unsigned char *)s, (int)len);
    if (n < 0 || (size_t)n < pad) return err_set(err, errlen, "usage file: %s is not base64", name);
    out->len = (size_t)n - pad;
    return 0;
}

Volume__V1__UsageReport *usage_file_read(const char *text, size_t len, char *err, size_t errlen) {
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return err_set(err, errlen, "usage file: not a JSON object (line %d: %s)", je.line, je.text), NULL;
    }
    Volume__V1__UsageReport u = VOLUME__V1__USAGE_REPORT__INIT;
    Volume__V1__UsageReport *out = NULL;
    u.order_key_id = (char *)json_string_value(json_object_get(j, "order_key_id"));
    int rc = u.order_key_id ? 0 : err_set(err, errlen, "usage file: order_key_id is missing");
    if (!rc) rc = unb64(j, "order", &u.order, err, errlen);
    if (!rc) rc = unb64(j, "order_signature", &u.order_signature, err, errlen);
    if (!rc) rc = unb64(j, "report", &u.report, err, errlen);
    if (!rc) rc = unb64(j, "signature", &u.signature, err, errlen);
    /* Through the wire format once, so the caller frees it like any unpacked message. */
    size_t n = rc ? 0 : volume__v1__usage_report__get_packed_size(&u);
    uint8_t *buf = n ? malloc(n) : NULL;
    if (buf) {
        volume__v1__usage_report__pack(&u, buf);
        out = volume__v1__usage_report__unpack(NULL, n, buf);
    }
    if (!rc && !out) err_set(err, errlen, "out of memory");
    free(buf);
    free(u.order.data), free(u.order_signature.data), free(u.report.data), free(u.signature.data);
    json_decref(j);
    return out;
}
