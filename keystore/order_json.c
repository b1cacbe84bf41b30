/* order_json.c -- see order_json.h. */
#include "order_json.h"

#include <openssl/sha.h>
#include <string.h>

#include "hex.h"
#include "order_armour.h"

static json_t *strings(char **v, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(v[i])) != 0) return json_decref(a), NULL;
    return a;
}

static json_t *time_text(int64_t t) {
    char buf[40];
    order_armour_time(t, buf, sizeof buf);
    return json_string(buf);
}

/* The key id a delegated key has as a license-signing key. */
static json_t *delegated_id(const ProtobufCBinaryData *k) {
    uint8_t d[SHA256_DIGEST_LENGTH];
    char id[SIGNING_KEY_ID_LEN + 1];
    SHA256(k->data, k->len, d);
    pa_hex_encode(d, SIGNING_KEY_ID_LEN / 2, id);
    return json_string(id);
}

static int add_terms(json_t *j, const Volume__V1__Order *raw) {
    Volume__V1__Order o;
    order_term_defaults(raw, &o);
    json_t *t = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "renew_seconds", (json_int_t)o.renew_seconds, "reclaim_seconds",
        (json_int_t)o.reclaim_seconds, "heartbeat_seconds", (json_int_t)o.heartbeat_seconds, "missed_heartbeats",
        (json_int_t)o.missed_heartbeats, "license_seconds", (json_int_t)o.license_seconds, "machine_validity_seconds",
        (json_int_t)o.machine_validity_seconds, "machine_retention_seconds", (json_int_t)o.machine_retention_seconds,
        "pending_retry_seconds", (json_int_t)o.pending_retry_seconds);
    return t ? json_object_set_new(j, "terms", t) : -1;
}

json_t *order_json(const order_file *f) {
    const Volume__V1__Order *o = f->o;
    const char *after = order_after_end_name(o->after_end);
    json_t *groups = json_array();
    for (size_t i = 0; groups && i < o->n_groups; i++)
        if (json_array_append_new(groups, json_integer(o->groups[i])) != 0) json_decref(groups), groups = NULL;
    json_t *j = json_pack(
        "{s:s, s:I, s:s, s:s, s:o, s:s, s:s, s:o, s:s, s:I, s:o, s:o*, s:s, s:o, s:I, s:I, s:b, s:b, s:o, s:o, s:o}",
        "service_serial", o->service_serial, "revision", (json_int_t)o->revision, "customer", o->customer, "vendor",
        o->vendor, "groups", groups, "product", o->product, "edition", o->edition, "features",
        strings(o->features, o->n_features), "mode", order_mode_name(o->mode), "seats", (json_int_t)o->seats,
        "valid_from", time_text(o->valid_from), "valid_until", o->valid_until ? time_text(o->valid_until) : NULL,
        "after_end", after ? after : "stop", "issued_at", time_text(o->issued_at), "threshold",
        (json_int_t)o->kms_threshold, "seat_warning", (json_int_t)o->seat_warning, "auto_activation",
        (int)o->auto_activation, "deactivation_approval", (int)o->deactivation_approval, "os_versions",
        strings(o->os_versions, o->n_os_versions), "architectures", strings(o->architectures, o->n_architectures),
        "collect_facts", strings(o->collect_facts, o->n_collect_facts));
    if (!j) return NULL;
    if (o->valid_until == 0 && json_object_set_new(j, "valid_until", json_null()) != 0) return json_decref(j), NULL;
    bool on_prem = order_is_on_premises(o);
    int rc = add_terms(j, o);
    rc |= json_object_set_new(j, "deployment", json_string(on_prem ? "on-premises" : "vendor-hosted"));
    if (on_prem) {
        rc |= json_object_set_new(j, "delegated_key_id", delegated_id(&o->delegated_key));
        rc |= json_object_set_new(j, "accepted_keys", json_integer(f->k ? (json_int_t)f->k->n_key_hashes : 0));
    }
    rc |= json_object_set_new(j, "order_key_id", json_string(f->key_id));
    return rc ? json_decref(j), NULL : j;
}

static void print_value(const json_t *v, FILE *out, int indent) {
    if (json_is_object(v)) {
        fputc('\n', out);
        order_json_print_text(v, out, indent + 2);
        return;
    }
    if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        if (json_array_size(v) == 0) fputs("(none)", out);
        json_array_foreach(v, i, e) {
            if (i) fputs(", ", out);
            if (json_is_string(e)) fputs(json_string_value(e), out);
            else if (json_is_integer(e)) fprintf(out, "%lld", (long long)json_integer_value(e));
        }
    } else if (json_is_string(v)) fputs(json_string_value(v), out);
    else if (json_is_integer(v)) fprintf(out, "%lld", (long long)json_integer_value(v));
    else if (json_is_boolean(v)) fputs(json_is_true(v) ? "yes" : "no", out);
    else if (json_is_null(v)) fputs("(none)", out);
    fputc('\n', out);
}

void order_json_print_text(const json_t *j, FILE *out, int indent) {
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        int pad = 30 - indent - (int)strlen(k);
        fprintf(out, "%*s%s:%*s", indent, "", k, pad < 1 ? 1 : pad, "");
        print_value(v, out, indent);
    }
}
