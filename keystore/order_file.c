/* order_file.c -- decoding, checking, signing a SignedOrder (order_file.h).
 *
 * Validation runs on every decode, so no caller can hold an order whose
 * fields were not checked. Each check names the proto field, because the
 * message reaches an operator who has to tell the vendor what is wrong. */
#include "order_file.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "keycodec.h"
#include "order_keyring.h"

static const char *const MODE_NAMES[] = {NULL, "permanent", "timed-reclaim", "concurrent", "unlimited", "vendor"};
static const char *const AFTER_END_NAMES[] = {NULL, "stop", "continue-counted"};
static const char *const FACT_NAMES[ORDER_FACTS_N] = {"hostname", "ip", "mac", "host_serial", "os", "arch"};
#define N_MODES (int)(sizeof MODE_NAMES / sizeof *MODE_NAMES)
#define N_AFTER_END (int)(sizeof AFTER_END_NAMES / sizeof *AFTER_END_NAMES)

const char *order_mode_name(int mode) { return mode > 0 && mode < N_MODES ? MODE_NAMES[mode] : NULL; }

int order_mode_parse(const char *s) {
    for (int i = 1; s && i < N_MODES; i++)
        if (strcmp(s, MODE_NAMES[i]) == 0) return i;
    return 0;
}

const char *order_after_end_name(int a) { return a > 0 && a < N_AFTER_END ? AFTER_END_NAMES[a] : NULL; }

int order_after_end_parse(const char *s) {
    for (int i = 1; s && i < N_AFTER_END; i++)
        if (strcmp(s, AFTER_END_NAMES[i]) == 0) return i;
    return 0;
}

const char *order_fact_name(unsigned bit) {
    for (int i = 0; i < ORDER_FACTS_N; i++)
        if (bit == 1u << i) return FACT_NAMES[i];
    return NULL;
}

unsigned order_fact_bit(const char *s) {
    for (int i = 0; s && i < ORDER_FACTS_N; i++)
        if (strcmp(s, FACT_NAMES[i]) == 0) return 1u << i;
    return 0;
}

const char *order_status_reason(order_status s) {
    switch (s) {
    case ORDER_OK: return "ok";
    case ORDER_MALFORMED: return "malformed";
    case ORDER_FOREIGN_VENDOR: return "foreign vendor";
    case ORDER_TAMPERED: return "tampered";
    }
    return "malformed";
}

void order_term_defaults(const Volume__V1__Order *o, Volume__V1__Order *out) {
    *out = *o;
#define DEFAULT(field, value) \
    if (!out->field) out->field = (value)
    DEFAULT(renew_seconds, ORDER_DEFAULT_RENEW_SECONDS);
    DEFAULT(reclaim_seconds, ORDER_DEFAULT_RECLAIM_SECONDS);
    DEFAULT(heartbeat_seconds, ORDER_DEFAULT_HEARTBEAT_SECONDS);
    DEFAULT(missed_heartbeats, ORDER_DEFAULT_MISSED_HEARTBEATS);
    DEFAULT(license_seconds, ORDER_DEFAULT_LICENSE_SECONDS);
    DEFAULT(machine_validity_seconds, out->license_seconds);
    DEFAULT(machine_retention_seconds, ORDER_DEFAULT_RETENTION_SECONDS);
    DEFAULT(pending_retry_seconds, ORDER_DEFAULT_PENDING_RETRY_SECONDS);
#undef DEFAULT
}

bool order_is_on_premises(const Volume__V1__Order *o) { return o && o->delegated_key.len > 0; }

/* ---- field checks ---- */

/* Characters in a UTF-8 text without control characters, or -1 when it is
 * not one (bad UTF-8, a control character). */
static long text_chars(const char *s) {
    long n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; n++) {
        int more = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2 : (*p & 0xF8) == 0xF0 ? 3 : -1;
        if (more < 0 || (more == 0 && (*p < 0x20 || *p == 0x7F)) || (more == 1 && *p < 0xC2)) return -1;
        p++;
        for (int i = 0; i < more; i++, p++)
            if ((*p & 0xC0) != 0x80) return -1;
    }
    return n;
}

/* A text field: 1..max characters (0..max when it may be empty). */
static int check_text(const char *field, const char *s, long max, bool may_be_empty, char *err, size_t errlen) {
    long n = text_chars(s ? s : "");
    if (n < 0) return err_set(err, errlen, "%s: not UTF-8 text without control characters", field);
    if (n == 0 && !may_be_empty) return err_set(err, errlen, "%s: must not be empty", field);
    if (n > max) return err_set(err, errlen, "%s: longer than %ld characters", field, max);
    return 0;
}

static int check_list(const char *field, char **v, size_t n, char *err, size_t errlen) {
    if (n > ORDER_LIST_MAX) return err_set(err, errlen, "%s: more than %d entries", field, ORDER_LIST_MAX);
    char name[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s[%zu]", field, i);
        if (check_text(name, v[i], ORDER_TEXT_MAX, false, err, errlen)) return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(v[i], v[j]) == 0) return err_set(err, errlen, "%s: '%s' appears twice", field, v[i]);
    }
    return 0;
}

static int check_identity(const Volume__V1__Order *o, char *err, size_t errlen) {
    if (o->format_version != ORDER_FORMAT_VERSION)
        return err_set(err, errlen, "format_version: %u is not %d (made by a newer keystore?)", o->format_version,
                       ORDER_FORMAT_VERSION);
    const char *s = o->service_serial ? o->service_serial : "";
    bool digits = strlen(s) == ORDER_SERIAL_LEN;
    for (const char *p = s; digits && *p; p++) digits = *p >= '0' && *p <= '9';
    if (!digits) return err_set(err, errlen, "service_serial: must be exactly %d decimal digits", ORDER_SERIAL_LEN);
    if (o->revision == 0) return err_set(err, errlen, "revision: must be 1 or more");
    if (check_text("customer", o->customer, ORDER_CUSTOMER_MAX, false, err, errlen) ||
        check_text("vendor", o->vendor, ORDER_TEXT_MAX, true, err, errlen) ||
        check_text("product", o->product, ORDER_TEXT_MAX, false, err, errlen) ||
        check_text("edition", o->edition, ORDER_TEXT_MAX, true, err, errlen))
        return -1;
    if (o->issued_at <= 0) return err_set(err, errlen, "issued_at: must be a time (unix seconds)");
    return 0;
}

static int check_groups(const Volume__V1__Order *o, char *err, size_t errlen) {
    if (o->n_groups == 0) return err_set(err, errlen, "groups: an order covers at least one group");
    if (o->n_groups > ORDER_GROUPS_MAX) return err_set(err, errlen, "groups: more than %d", ORDER_GROUPS_MAX);
    for (size_t i = 0; i < o->n_groups; i++) {
        if (o->groups[i] > PK_GROUP_MAX)
            return err_set(err, errlen, "groups: %u is not a group ID (0..%u)", o->groups[i], PK_GROUP_MAX);
        for (size_t j = 0; j < i; j++)
            if (o->groups[i] == o->groups[j]) return err_set(err, errlen, "groups: %u appears twice", o->groups[i]);
    }
    return 0;
}

static int check_counting(const Volume__V1__Order *o, char *err, size_t errlen) {
    const char *mode = order_mode_name(o->mode);
    if (!mode) return err_set(err, errlen, "mode: %d is not a seat mode", (int)o->mode);
    bool unlimited = o->mode == VOLUME__V1__SEAT_MODE__SEAT_MODE_UNLIMITED;
    if (unlimited && o->seats != 0) return err_set(err, errlen, "seats: must be 0 in unlimited mode");
    if (!unlimited && o->seats == 0) return err_set(err, errlen, "seats: 0 is allowed only in unlimited mode");
    if (o->valid_from <= 0) return err_set(err, errlen, "valid_from: must be a time (unix seconds)");
    if (o->valid_until != 0 && o->valid_until <= o->valid_from)
        return err_set(err, errlen, "valid_until: must be after valid_from");
    if (unlimited && o->valid_until == 0) return err_set(err, errlen, "valid_until: an unlimited order needs an end");
    if (o->after_end != 0 && !order_after_end_name(o->after_end))
        return err_set(err, errlen, "after_end: %d is not stop or continue-counted", (int)o->after_end);
    if (!unlimited && o->after_end == VOLUME__V1__AFTER_END__AFTER_END_CONTINUE_COUNTED)
        return err_set(err, errlen, "after_end: continue-counted is for unlimited orders only");
    if (o->missed_heartbeats > 1000) return err_set(err, errlen, "missed_heartbeats: more than 1000");
    if (o->seat_warning > o->seats && !unlimited)
        return err_set(err, errlen, "seat_warning: more than the order's %u seats", o->seats);
    return 0;
}

static int check_facts(const Volume__V1__Order *o, char *err, size_t errlen) {
    if (o->n_collect_facts > ORDER_FACTS_N)
        return err_set(err, errlen, "collect_facts: more than the %d known facts", ORDER_FACTS_N);
    unsigned seen = 0;
    for (size_t i = 0; i < o->n_collect_facts; i++) {
        unsigned bit = order_fact_bit(o->collect_facts[i]);
        if (!bit)
            return err_set(err, errlen, "collect_facts: '%.40s' is not hostname, ip, mac, host_serial, os or arch",
                           o->collect_facts[i]);
        if (seen & bit) return err_set(err, errlen, "collect_facts: '%s' appears twice", o->collect_facts[i]);
        seen |= bit;
    }
    return 0;
}

static int check_delegation(const Volume__V1__Order *o, char *err, size_t errlen) {
    if (o->delegated_key.len != 0 && o->delegated_key.len != ORDER_DELEGATED_KEY_LEN)
        return err_set(err, errlen, "delegated_key: must be %d bytes (a raw Ed25519 public key), not %zu",
                       ORDER_DELEGATED_KEY_LEN, o->delegated_key.len);
    if (o->keys_digest.len != 0 && o->keys_digest.len != ORDER_DIGEST_LEN)
        return err_set(err, errlen, "keys_digest: must be %d bytes (SHA-256), not %zu", ORDER_DIGEST_LEN,
                       o->keys_digest.len);
    if ((o->delegated_key.len == 0) != (o->keys_digest.len == 0))
        return err_set(err, errlen, "%s: an on-premises order has both delegated_key and keys_digest",
                       o->delegated_key.len ? "keys_digest" : "delegated_key");
    return 0;
}

int order_validate(const Volume__V1__Order *o, char *err, size_t errlen) {
    if (!o) return err_set(err, errlen, "order: missing");
    if (check_identity(o, err, errlen) || check_groups(o, err, errlen) || check_counting(o, err, errlen) ||
        check_list("features", o->features, o->n_features, err, errlen) ||
        check_list("os_versions", o->os_versions, o->n_os_versions, err, errlen) ||
        check_list("architectures", o->architectures, o->n_architectures, err, errlen) || check_facts(o, err, errlen) ||
        check_delegation(o, err, errlen))
        return -1;
    return 0;
}

static int hash_cmp(const void *a, const void *b) {
    const ProtobufCBinaryData *x = a, *y = b;
    return memcmp(x->data, y->data, ORDER_KEY_HASH_LEN);
}

int order_keys_validate(const Volume__V1__OrderKeys *k, char *err, size_t errlen) {
    if (!k) return err_set(err, errlen, "keys: missing");
    if (k->salt.len != ORDER_KEY_SALT_LEN)
        return err_set(err, errlen, "keys.salt: must be %d bytes, not %zu", ORDER_KEY_SALT_LEN, k->salt.len);
    if (k->n_key_hashes == 0) return err_set(err, errlen, "keys.key_hashes: an on-premises order accepts some keys");
    if (k->n_key_hashes > ORDER_KEYS_MAX) return err_set(err, errlen, "keys.key_hashes: more than %d", ORDER_KEYS_MAX);
    for (size_t i = 0; i < k->n_key_hashes; i++)
        if (k->key_hashes[i].len != ORDER_KEY_HASH_LEN)
            return err_set(err, errlen, "keys.key_hashes[%zu]: must be %d bytes", i, ORDER_KEY_HASH_LEN);
    ProtobufCBinaryData *sorted = malloc(k->n_key_hashes * sizeof *sorted);
    if (!sorted) return err_set(err, errlen, "keys: out of memory");
    memcpy(sorted, k->key_hashes, k->n_key_hashes * sizeof *sorted);
    qsort(sorted, k->n_key_hashes, sizeof *sorted, hash_cmp);
    bool dup = false;
    for (size_t i = 1; i < k->n_key_hashes && !dup; i++) dup = hash_cmp(&sorted[i - 1], &sorted[i]) == 0;
    free(sorted);
    return dup ? err_set(err, errlen, "keys.key_hashes: a key appears twice") : 0;
}

void order_keys_digest(const uint8_t *keys, size_t len, uint8_t out[ORDER_DIGEST_LEN]) {
    SHA256(keys ? keys : (const uint8_t *)"", len, out);
}

int order_key_hash(const uint8_t salt[ORDER_KEY_SALT_LEN], const char *key_text, uint8_t out[ORDER_KEY_HASH_LEN]) {
    char canon[PK_TEXT_LEN + 1];
    if (!key_text || pk_normalize(key_text, strlen(key_text), canon, NULL) != PK_OK) return -1;
    uint8_t msg[ORDER_KEY_SALT_LEN + PK_TEXT_LEN], md[SHA256_DIGEST_LENGTH];
    memcpy(msg, salt, ORDER_KEY_SALT_LEN);
    memcpy(msg + ORDER_KEY_SALT_LEN, canon, PK_TEXT_LEN);
    SHA256(msg, sizeof msg, md);
    memcpy(out, md, ORDER_KEY_HASH_LEN);
    OPENSSL_cleanse(canon, sizeof canon);
    OPENSSL_cleanse(msg, sizeof msg);
    return 0;
}

/* ---- decoding ---- */

void order_file_clear(order_file *f) {
    if (!f) return;
    free(f->order);
    free(f->keys);
    if (f->o) volume__v1__order__free_unpacked(f->o, NULL);
    if (f->k) volume__v1__order_keys__free_unpacked(f->k, NULL);
    memset(f, 0, sizeof *f);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n) {
    uint8_t *d = malloc(n ? n : 1);
    if (d && n) memcpy(d, p, n);
    return d;
}

/* Decodes and checks f->order and f->keys, already copied into f. */
static order_status decode_parts(order_file *f, char *err, size_t errlen) {
    f->o = volume__v1__order__unpack(NULL, f->order_len, f->order);
    if (!f->o) return err_set(err, errlen, "order: not a volume.v1.Order message"), ORDER_MALFORMED;
    if (order_validate(f->o, err, errlen) != 0) return ORDER_MALFORMED;
    if (!order_is_on_premises(f->o) && f->keys)
        return err_set(err, errlen, "keys: only an on-premises order (delegated_key) carries keys"), ORDER_MALFORMED;
    if (!f->keys) return ORDER_OK;
    f->k = volume__v1__order_keys__unpack(NULL, f->keys_len, f->keys);
    if (!f->k) return err_set(err, errlen, "keys: not a volume.v1.OrderKeys message"), ORDER_MALFORMED;
    return order_keys_validate(f->k, err, errlen) == 0 ? ORDER_OK : ORDER_MALFORMED;
}

order_status order_file_from_parts(order_file *f, const uint8_t *order, size_t order_len, const uint8_t *sig,
                                   size_t sig_len, const char *key_id, const uint8_t *keys, size_t keys_len, char *err,
                                   size_t errlen) {
    memset(f, 0, sizeof *f);
    if (!order || order_len == 0) return err_set(err, errlen, "order: empty"), ORDER_MALFORMED;
    if (!sig || sig_len != TAGGED_SIG_LEN)
        return err_set(err, errlen, "signature: must be %d bytes", TAGGED_SIG_LEN), ORDER_MALFORMED;
    if (!key_id || strlen(key_id) != SIGNING_KEY_ID_LEN)
        return err_set(err, errlen, "key_id: must be %d hex characters", SIGNING_KEY_ID_LEN), ORDER_MALFORMED;
    f->order = dup_bytes(order, order_len);
    f->keys = keys && keys_len ? dup_bytes(keys, keys_len) : NULL;
    if (!f->order || (keys && keys_len && !f->keys)) return err_set(err, errlen, "out of memory"), ORDER_MALFORMED;
    f->order_len = order_len;
    f->keys_len = f->keys ? keys_len : 0;
    memcpy(f->signature, sig, TAGGED_SIG_LEN);
    memcpy(f->key_id, key_id, SIGNING_KEY_ID_LEN + 1);
    return decode_parts(f, err, errlen);
}

order_status order_file_decode(order_file *f, const uint8_t *signed_order, size_t len, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    Volume__V1__SignedOrder *s = volume__v1__signed_order__unpack(NULL, len, signed_order);
    if (!s) return err_set(err, errlen, "not a volume.v1.SignedOrder message"), ORDER_MALFORMED;
    order_status st = order_file_from_parts(f, s->order.data, s->order.len, s->signature.data, s->signature.len,
                                            s->key_id, s->keys.data, s->keys.len, err, errlen);
    volume__v1__signed_order__free_unpacked(s, NULL);
    return st;
}

order_status order_file_verify(const order_file *f, const order_keyring *ring, char *err, size_t errlen) {
    EVP_PKEY *key = order_keyring_find(ring, f->key_id);
    if (!key)
        return err_set(err, errlen, "signed by key %s, which is not among the %zu order keys given", f->key_id,
                       order_keyring_size(ring)),
               ORDER_FOREIGN_VENDOR;
    if (!tagged_verify(key, TAG_ORDER, f->order, f->order_len, f->signature, TAGGED_SIG_LEN))
        return err_set(err, errlen, "the signature of key %s does not verify", f->key_id), ORDER_TAMPERED;
    if (f->o && f->o->keys_digest.len && f->keys) {
        uint8_t d[ORDER_DIGEST_LEN];
        order_keys_digest(f->keys, f->keys_len, d);
        if (CRYPTO_memcmp(d, f->o->keys_digest.data, sizeof d) != 0)
            return err_set(err, errlen, "the keys do not match the order's keys_digest"), ORDER_TAMPERED;
    }
    return ORDER_OK;
}

/* ---- making ---- */

int order_file_sign(order_file *f, EVP_PKEY *key, const Volume__V1__Order *o, const Volume__V1__OrderKeys *k, char *err,
                    size_t errlen) {
    memset(f, 0, sizeof *f);
    Volume__V1__Order copy = *o;
    uint8_t digest[ORDER_DIGEST_LEN], sig[TAGGED_SIG_LEN];
    char key_id[SIGNING_KEY_ID_LEN + 1];
    if (k && order_keys_validate(k, err, errlen) != 0) return -1;
    if (k && o->delegated_key.len == 0) return err_set(err, errlen, "delegated_key: keys need a delegated server key");
    size_t klen = k ? volume__v1__order_keys__get_packed_size(k) : 0, olen;
    uint8_t *kb = k ? malloc(klen ? klen : 1) : NULL, *ob = NULL;
    if (k && !kb) return err_set(err, errlen, "out of memory");
    if (k) volume__v1__order_keys__pack(k, kb);
    order_keys_digest(kb, klen, digest);
    copy.keys_digest = k ? (ProtobufCBinaryData){.len = sizeof digest, .data = digest} : (ProtobufCBinaryData){0};
    int rc = order_validate(&copy, err, errlen);
    if (!rc && signing_key_id(key, key_id) != 0) rc = err_set(err, errlen, "the order key has no public key");
    olen = volume__v1__order__get_packed_size(&copy);
    if (!rc && !(ob = malloc(olen))) rc = err_set(err, errlen, "out of memory");
    if (!rc) volume__v1__order__pack(&copy, ob);
    if (!rc && tagged_sign(key, TAG_ORDER, ob, olen, sig) != 0)
        rc = err_set(err, errlen, "signing failed (is the order key an Ed25519 private key?)");
    if (!rc && order_file_from_parts(f, ob, olen, sig, sizeof sig, key_id, kb, klen, err, errlen) != ORDER_OK) rc = -1;
    free(ob);
    free(kb);
    return rc;
}

uint8_t *order_file_pack(const order_file *f, bool with_keys, size_t *len) {
    Volume__V1__SignedOrder s = VOLUME__V1__SIGNED_ORDER__INIT;
    s.order = (ProtobufCBinaryData){.len = f->order_len, .data = f->order};
    s.signature = (ProtobufCBinaryData){.len = TAGGED_SIG_LEN, .data = (uint8_t *)f->signature};
    s.key_id = (char *)f->key_id;
    if (with_keys && f->keys) s.keys = (ProtobufCBinaryData){.len = f->keys_len, .data = f->keys};
    size_t n = volume__v1__signed_order__get_packed_size(&s);
    uint8_t *b = malloc(n);
    if (!b) return NULL;
    *len = volume__v1__signed_order__pack(&s, b);
    return b;
}
