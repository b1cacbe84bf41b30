/* order_chain.c -- see order_chain.h.
 *
 * The same discipline as a vendor-signed license, one link longer: nothing
 * is parsed before its signature verified. The order's signature is checked
 * with a vendor key over "pa-order-v1" || 0x00 || order (tagged_signature.h,
 * so no license or usage signature can pass for it), and only then is the
 * order parsed; its delegated_key then checks the license's signature, and
 * only then is the license parsed (license_verify.c).
 *
 * The server that signed is the customer's, not the vendor's, so the
 * license is held to the order's terms: whatever the server's key signs,
 * it can grant no other product, edition, group or feature than the order
 * sold, and no license outside the order's dates. Seat counts cannot be
 * checked here; the usage return reports them to the vendor. */
#include "order_chain.h"

#include <openssl/err.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tagged_signature.h"

static bool same(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : "") == 0; }

static void format_time(int64_t t, char *buf, size_t n) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) snprintf(buf, n, "%lld", (long long)t);
}

/* The parsed order, if its signature is the vendor's. */
static verify_status open_order(const vendor_keys *k, const signed_license *s, Volume__V1__Order **out, char *err,
                                size_t errlen) {
    EVP_PKEY *vendor = vendor_key_named(k, s->order_key_id);
    if (!vendor) {
        snprintf(err, errlen,
                 "the order is not signed by the vendor (it names key \"%s\", which this client does not hold)",
                 s->order_key_id);
        return VERIFY_BAD_ORDER;
    }
    if (!tagged_verify(vendor, TAG_ORDER, s->order, s->order_len, s->order_signature, s->order_signature_len)) {
        snprintf(err, errlen,
                 "the order is not signed by the vendor (its signature does not verify: altered or forged)");
        return VERIFY_BAD_ORDER;
    }
    Volume__V1__Order *o = volume__v1__order__unpack(NULL, s->order_len, s->order);
    if (!o) {
        snprintf(err, errlen, "the vendor-signed order cannot be parsed");
        return VERIFY_BAD_ORDER;
    }
    if (o->format_version != 1) {
        snprintf(err, errlen, "order format version %u is not understood by this client (want 1)",
                 (unsigned)o->format_version);
        volume__v1__order__free_unpacked(o, NULL);
        return VERIFY_BAD_ORDER;
    }
    *out = o;
    return VERIFY_OK;
}

verify_status order_chain_open(const vendor_keys *k, const signed_license *s, Volume__V1__Order **order,
                               EVP_PKEY **delegated, char *err, size_t errlen) {
    *order = NULL;
    *delegated = NULL;
    Volume__V1__Order *o;
    verify_status st = open_order(k, s, &o, err, errlen);
    if (st != VERIFY_OK) return st;
    EVP_PKEY *key = NULL;
    char id[KEY_ID_LEN + 1] = "";
    if (o->delegated_key.len == TAGGED_KEY_LEN)
        key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, o->delegated_key.data, o->delegated_key.len);
    ERR_clear_error();
    if (!key || signing_key_id(key, id) != 0) {
        snprintf(err, errlen, "the license is not signed by the order's delegated server key (order %s delegates none)",
                 o->service_serial);
    } else if (strcmp(id, s->key_id) != 0) {
        snprintf(err, errlen,
                 "the license is not signed by the order's delegated server key (signed by key \"%s\", order %s "
                 "delegates \"%s\")",
                 s->key_id, o->service_serial, id);
    } else {
        *order = o;
        *delegated = key;
        return VERIFY_OK;
    }
    EVP_PKEY_free(key);
    volume__v1__order__free_unpacked(o, NULL);
    return VERIFY_BAD_ORDER;
}

/* The license's product, edition, group and features are the order's. */
static bool grants_ok(const Volume__V1__Order *o, const Activation__V1__License *l, char *err, size_t errlen) {
    if (!same(l->product, o->product) || !same(l->edition, o->edition)) {
        snprintf(err, errlen, "the license is for \"%s\" edition \"%s\", but order %s is for \"%s\" edition \"%s\"",
                 l->product, l->edition, o->service_serial, o->product, o->edition);
        return false;
    }
    bool group = false;
    for (size_t i = 0; i < o->n_groups; i++) group |= o->groups[i] == l->key_group;
    if (!group) {
        snprintf(err, errlen, "the license's key group %u is not one of order %s's groups", (unsigned)l->key_group,
                 o->service_serial);
        return false;
    }
    for (size_t i = 0; i < l->n_features; i++) {
        bool sold = false;
        for (size_t j = 0; j < o->n_features; j++) sold |= same(l->features[i], o->features[j]);
        if (!sold) {
            snprintf(err, errlen, "the license grants feature \"%s\", which order %s does not", l->features[i],
                     o->service_serial);
            return false;
        }
    }
    if (l->channel != ACTIVATION__V1__CHANNEL__CHANNEL_VOLUME) {
        snprintf(err, errlen, "the license under order %s is not of the volume channel", o->service_serial);
        return false;
    }
    return true;
}

/* Issued within valid_from .. valid_until, and not outliving valid_until,
 * unless the order keeps counting after its end. */
static bool dates_ok(const Volume__V1__Order *o, const Activation__V1__License *l, char *err, size_t errlen) {
    bool bounded = o->valid_until > 0 && o->after_end != VOLUME__V1__AFTER_END__AFTER_END_CONTINUE_COUNTED;
    char from[32], until[32], at[32];
    format_time(o->valid_from, from, sizeof from);
    format_time(o->valid_until, until, sizeof until);
    if (l->issued_at < o->valid_from || (bounded && l->issued_at > o->valid_until)) {
        format_time(l->issued_at, at, sizeof at);
        snprintf(err, errlen, "the license was issued at %s, outside order %s's validity (%s .. %s)", at,
                 o->service_serial, from, o->valid_until > 0 ? until : "no end");
        return false;
    }
    if (bounded && (l->expires_at <= 0 || l->expires_at > o->valid_until)) {
        if (l->expires_at > 0) {
            format_time(l->expires_at, at, sizeof at);
            snprintf(err, errlen, "the license expires at %s, after order %s ends (%s)", at, o->service_serial, until);
        } else {
            snprintf(err, errlen, "the license never expires, but order %s ends at %s", o->service_serial, until);
        }
        return false;
    }
    return true;
}

verify_status order_chain_terms(const Volume__V1__Order *o, const Activation__V1__License *l, char *err,
                                size_t errlen) {
    if (!same(l->order_serial, o->service_serial) || l->order_revision != o->revision) {
        snprintf(err, errlen, "the license names order \"%s\" revision %u, but came with order \"%s\" revision %u",
                 l->order_serial, (unsigned)l->order_revision, o->service_serial, (unsigned)o->revision);
        return VERIFY_BAD_ORDER;
    }
    if (!grants_ok(o, l, err, errlen) || !dates_ok(o, l, err, errlen)) return VERIFY_BAD_ORDER;
    return VERIFY_OK;
}
