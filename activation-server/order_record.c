/* order_record.c -- an order as the server holds it (order_record.h).
 *
 * One builder, order_record_from_file, turns a checked order into a record;
 * both import (from the file) and the cache (from `signed` in Redis) go
 * through it, so the terms a server enforces are the ones the vendor
 * signed, with the defaults of order_file.h, whichever way the record was
 * made. The flattened hash fields exist for volume.lua, which cannot
 * decode protobuf; the C side never reads terms back from them. */
#include "order_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"

const char *seat_mode_name(seat_mode m) { return order_mode_name((int)m); }

int seat_mode_parse(const char *s) { return order_mode_parse(s); }

void order_record_clear(order_record *o) {
    if (!o) return;
    free(o->order_bytes);
    free(o->key_hashes);
    memset(o, 0, sizeof *o);
}

static void copy_list(char (*dst)[ORDER_TEXT_BYTES], size_t *n, char **src, size_t count) {
    *n = count < ORDER_LIST_MAX ? count : ORDER_LIST_MAX;
    for (size_t i = 0; i < *n; i++) snprintf(dst[i], ORDER_TEXT_BYTES, "%s", src[i]);
}

static void build_key_names(order_record *r) {
    const char *s = r->serial;
    pa_rkey_order(r->key_order, sizeof r->key_order, s);
    pa_rkey_order_machines(r->key_machines, sizeof r->key_machines, s);
    pa_rkey_order_facts(r->key_facts, sizeof r->key_facts, s);
    pa_rkey_order_counts(r->key_counts, sizeof r->key_counts, s);
    pa_rkey_order_wheel(r->key_wheel, sizeof r->key_wheel, s);
    pa_rkey_order_wheel_prefix(r->key_wheel_prefix, sizeof r->key_wheel_prefix, s);
    pa_rkey_order_designated(r->key_designated, sizeof r->key_designated, s);
    pa_rkey_order_usage(r->key_usage, sizeof r->key_usage, s);
}

static void copy_terms(order_record *r, const Volume__V1__Order *signed_order) {
    Volume__V1__Order o;
    order_term_defaults(signed_order, &o);
    r->mode = (seat_mode)o.mode;
    r->seats = o.seats;
    r->valid_from = o.valid_from;
    r->valid_until = o.valid_until;
    r->issued_at = o.issued_at;
    r->after_end =
        o.after_end == VOLUME__V1__AFTER_END__AFTER_END_CONTINUE_COUNTED ? AFTER_END_CONTINUE_COUNTED : AFTER_END_STOP;
    r->renew_seconds = o.renew_seconds;
    r->reclaim_seconds = o.reclaim_seconds;
    r->heartbeat_seconds = o.heartbeat_seconds;
    r->missed_heartbeats = o.missed_heartbeats;
    r->license_seconds = o.license_seconds;
    r->machine_validity_seconds = o.machine_validity_seconds;
    r->retention_seconds = o.machine_retention_seconds;
    r->pending_retry_seconds = o.pending_retry_seconds;
    r->threshold = o.kms_threshold;
    r->seat_warning = o.seat_warning;
    r->auto_activation = o.auto_activation;
    r->deactivation_approval = o.deactivation_approval;
    r->collect_facts = 0;
    for (size_t i = 0; i < o.n_collect_facts; i++) r->collect_facts |= order_fact_bit(o.collect_facts[i]);
}

static int hash_cmp(const void *a, const void *b) { return memcmp(a, b, ORDER_KEY_HASH_LEN); }

int order_record_from_file(order_record *r, const order_file *f) {
    const Volume__V1__Order *o = f->o;
    memset(r, 0, sizeof *r);
    snprintf(r->serial, sizeof r->serial, "%s", o->service_serial);
    r->revision = o->revision;
    snprintf(r->customer, sizeof r->customer, "%s", o->customer);
    snprintf(r->vendor, sizeof r->vendor, "%s", o->vendor);
    snprintf(r->product, sizeof r->product, "%s", o->product);
    snprintf(r->edition, sizeof r->edition, "%s", o->edition);
    r->n_groups = o->n_groups < ORDER_GROUPS_MAX ? o->n_groups : ORDER_GROUPS_MAX;
    memcpy(r->groups, o->groups, r->n_groups * sizeof *r->groups);
    copy_list(r->features, &r->n_features, o->features, o->n_features);
    copy_list(r->os_versions, &r->n_os_versions, o->os_versions, o->n_os_versions);
    copy_list(r->architectures, &r->n_architectures, o->architectures, o->n_architectures);
    copy_terms(r, o);
    r->on_premises = order_is_on_premises(o);
    if (r->on_premises) memcpy(r->delegated_key, o->delegated_key.data, sizeof r->delegated_key);
    memcpy(r->order_signature, f->signature, sizeof r->order_signature);
    snprintf(r->order_key_id, sizeof r->order_key_id, "%s", f->key_id);
    build_key_names(r);
    if (!(r->order_bytes = malloc(f->order_len))) return -1;
    memcpy(r->order_bytes, f->order, f->order_len);
    r->order_len = f->order_len;
    if (!f->k) return 0;
    memcpy(r->key_salt, f->k->salt.data, sizeof r->key_salt);
    if (!(r->key_hashes = malloc(f->k->n_key_hashes * ORDER_KEY_HASH_LEN))) return -1;
    for (size_t i = 0; i < f->k->n_key_hashes; i++)
        memcpy(r->key_hashes[i], f->k->key_hashes[i].data, ORDER_KEY_HASH_LEN);
    r->n_key_hashes = f->k->n_key_hashes;
    qsort(r->key_hashes, r->n_key_hashes, ORDER_KEY_HASH_LEN, hash_cmp);
    return 0;
}

/* ---- from Redis ---- */

static const redisReply *field(const redisReply *hash, const char *name) {
    for (size_t i = 0; i + 1 < hash->elements; i += 2)
        if (hash->element[i]->type == REDIS_REPLY_STRING && strcmp(hash->element[i]->str, name) == 0)
            return hash->element[i + 1]->type == REDIS_REPLY_STRING ? hash->element[i + 1] : NULL;
    return NULL;
}

/* A decimal field; `dflt` when absent, -1 when not a number. */
static long long number(const redisReply *hash, const char *name, long long dflt) {
    const redisReply *v = field(hash, name);
    if (!v) return dflt;
    char *end;
    long long n = strtoll(v->str, &end, 10);
    return v->len && *end == '\0' && n >= 0 ? n : -1;
}

/* The key hashes of {o:S}:keys, which must be what import wrote. */
static int load_keys(order_record *r, const redisReply *hash, const redisReply *keys, char *err, size_t errlen) {
    const redisReply *salt = field(hash, ORDER_F_KEY_SALT);
    long long count = number(hash, ORDER_F_KEY_COUNT, -1);
    if (!salt || salt->len != ORDER_KEY_SALT_LEN)
        return err_set(err, errlen, "field %s is missing or damaged", ORDER_F_KEY_SALT);
    if (!keys || keys->type != REDIS_REPLY_ARRAY || count < 0 || keys->elements != (size_t)count)
        return err_set(err, errlen, "the accepted keys are incomplete (%zu of %lld)",
                       keys && keys->type == REDIS_REPLY_ARRAY ? keys->elements : 0, count);
    memcpy(r->key_salt, salt->str, ORDER_KEY_SALT_LEN);
    r->key_hashes = malloc(keys->elements ? keys->elements * ORDER_KEY_HASH_LEN : 1);
    if (!r->key_hashes) return err_set(err, errlen, "out of memory");
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        if (k->type != REDIS_REPLY_STRING || k->len != ORDER_KEY_HASH_LEN)
            return err_set(err, errlen, "an accepted key hash is not %d bytes", ORDER_KEY_HASH_LEN);
        memcpy(r->key_hashes[i], k->str, ORDER_KEY_HASH_LEN);
    }
    r->n_key_hashes = keys->elements;
    qsort(r->key_hashes, r->n_key_hashes, ORDER_KEY_HASH_LEN, hash_cmp);
    return 0;
}

int order_record_from_hash(order_record *r, const char *serial, const redisReply *hash, const redisReply *keys,
                           char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    if (!hash || hash->type != REDIS_REPLY_ARRAY) return err_set(err, errlen, "the order hash is not a hash");
    if (hash->elements == 0) return 1;
    const redisReply *s = field(hash, ORDER_F_SIGNED);
    if (!s) return err_set(err, errlen, "field %s is missing", ORDER_F_SIGNED);
    order_file f;
    char why[256];
    if (order_file_decode(&f, (const uint8_t *)s->str, s->len, why, sizeof why) != ORDER_OK) {
        order_file_clear(&f);
        return err_set(err, errlen, "field %s does not decode: %s", ORDER_F_SIGNED, why);
    }
    int rc = order_record_from_file(r, &f) != 0 ? err_set(err, errlen, "out of memory") : 0;
    order_file_clear(&f);
    if (rc) return rc;
    long long version = number(hash, ORDER_F_VERSION, -1), revision = number(hash, ORDER_F_REVISION, -1);
    long long retired = number(hash, ORDER_F_RETIRED, 0), imported = number(hash, ORDER_F_IMPORTED, 0);
    long long match = number(hash, ORDER_F_MACHINE_MATCH, 0);
    if (strcmp(r->serial, serial) != 0)
        return err_set(err, errlen, "the signed order is %s, not %s", r->serial, serial);
    if (version < 0 || revision != r->revision || retired < 0 || retired > 1 || imported < 0 || match < 0 ||
        match > ORDER_MATCH_MAX)
        return err_set(err, errlen, "fields %s, %s, %s, %s or %s are damaged", ORDER_F_VERSION, ORDER_F_REVISION,
                       ORDER_F_RETIRED, ORDER_F_IMPORTED, ORDER_F_MACHINE_MATCH);
    r->machine_match = (uint32_t)match;
    r->version = (uint64_t)version;
    r->retired = retired == 1;
    r->imported_at = imported;
    return r->on_premises ? load_keys(r, hash, keys, err, errlen) : 0;
}

/* ---- to Redis ---- */

size_t order_record_fields(const order_record *r, const uint8_t *signed_bytes, size_t signed_len, const char **names,
                           const char **values, size_t *lens, char (*nums)[ORDER_RECORD_NUM]) {
    size_t n = 0;
#define PUT(name_, value_, len_) (names[n] = (name_), values[n] = (value_), lens[n] = (len_), n++)
#define NUM(name_, v_) \
    (snprintf(nums[n], sizeof nums[n], "%lld", (long long)(v_)), PUT(name_, nums[n], strlen(nums[n])))
    PUT(ORDER_F_SIGNED, (const char *)signed_bytes, signed_len);
    NUM(ORDER_F_REVISION, r->revision);
    NUM(ORDER_F_MODE, r->mode);
    NUM(ORDER_F_SEATS, r->seats);
    NUM(ORDER_F_VALID_FROM, r->valid_from);
    NUM(ORDER_F_VALID_UNTIL, r->valid_until);
    NUM(ORDER_F_AFTER_END, r->after_end);
    NUM(ORDER_F_RENEW, r->renew_seconds);
    NUM(ORDER_F_RECLAIM, r->reclaim_seconds);
    NUM(ORDER_F_HEARTBEAT, r->heartbeat_seconds);
    NUM(ORDER_F_MISSED, r->missed_heartbeats);
    NUM(ORDER_F_LICENSE, r->license_seconds);
    NUM(ORDER_F_MACHINE_VALIDITY, r->machine_validity_seconds);
    NUM(ORDER_F_RETENTION, r->retention_seconds);
    NUM(ORDER_F_PENDING_RETRY, r->pending_retry_seconds);
    NUM(ORDER_F_THRESHOLD, r->threshold);
    NUM(ORDER_F_SEAT_WARNING, r->seat_warning);
    NUM(ORDER_F_AUTO, r->auto_activation);
    NUM(ORDER_F_APPROVAL, r->deactivation_approval);
    NUM(ORDER_F_COLLECT, r->collect_facts);
    NUM(ORDER_F_IMPORTED, r->imported_at);
    NUM(ORDER_F_ON_PREMISES, r->on_premises);
    size_t g = n, len = 0; /* the groups as "7,9" in their own number slot */
    for (size_t i = 0; i < r->n_groups; i++)
        len += (size_t)snprintf(nums[g] + len, sizeof nums[g] - len, "%s%u", i ? "," : "", r->groups[i]);
    PUT(ORDER_F_GROUPS, nums[g], len);
    if (r->on_premises) {
        PUT(ORDER_F_KEY_SALT, (const char *)r->key_salt, sizeof r->key_salt);
        NUM(ORDER_F_KEY_COUNT, r->n_key_hashes);
    }
#undef NUM
#undef PUT
    return n;
}
