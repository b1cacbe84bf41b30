/* usage_report.c -- building and signing a usage report (usage_report.h). */
#include "usage_report.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "hex.h"
#include "usage_file.h"
#include "volume_policy.h"

#define SCAN_COUNT "1000" /* HSCAN batch: a bounded amount of Redis work per call */

/* The word for a record's state. A machine of an unlimited order holds its
 * grant without a seat flag (no seat is counted), as volume.lua's holding()
 * reads it: it is "seat" too, never "no-seat", which means a lapsed lease. */
static const char *status_word(const volume_record *m, bool counted) {
    if (m->flags & VOLUME_F_GONE) return "deactivated";
    if (m->flags & VOLUME_F_PENDING) return "pending";
    if (counted && !(m->flags & VOLUME_F_SEAT)) return "no-seat";
    if (m->flags & VOLUME_F_ASKED) return "deactivation-requested";
    return m->flags & VOLUME_F_OUT ? "seat-out-of-window" : "seat";
}

/* The machine list being built and how to read its records. */
typedef struct machine_list {
    json_t *list; /* the report's machine_list */
    bool counted; /* the order counts seats (every mode but unlimited) */
} machine_list;

/* One machine-table entry as the report lists it; NULL for a damaged one
 * (`order machines` leaves the same ones out). */
static json_t *machine_entry(const redisReply *digest, const redisReply *record, bool counted) {
    volume_record m;
    if (digest->type != REDIS_REPLY_STRING || record->type != REDIS_REPLY_STRING || digest->len != VOLUME_DIGEST_LEN ||
        !volume_record_decode(record->str, record->len, &m))
        return NULL;
    char hex[2 * VOLUME_DIGEST_LEN + 1];
    pa_hex_encode(digest->str, digest->len, hex);
    return json_pack("[s, I, I, s, i]", hex, (json_int_t)m.first_seen, (json_int_t)m.last_contact,
                     status_word(&m, counted), (int)m.flags);
}

/* Every entry of hash `key` through HSCAN, each pair given to `add`. */
static int scan_hash(rstore *r, const char *key, int (*add)(const redisReply *f, const redisReply *v, void *into),
                     void *into, char *err, size_t errlen) {
    char cursor[32] = "0";
    do {
        redisReply *rep = rstore_command(r, "HSCAN %s %s COUNT " SCAN_COUNT, key, cursor);
        if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            int rc = err_set(err, errlen, "reading %s: %s", key,
                             rep && rep->type == REDIS_REPLY_ERROR ? rep->str : rstore_error(r));
            if (rep) freeReplyObject(rep);
            return rc;
        }
        snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
        const redisReply *items = rep->element[1];
        int rc = 0;
        for (size_t i = 0; rc == 0 && i + 1 < items->elements; i += 2)
            rc = add(items->element[i], items->element[i + 1], into);
        freeReplyObject(rep);
        if (rc) return err_set(err, errlen, "out of memory");
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

static int add_machine(const redisReply *f, const redisReply *v, void *into) {
    machine_list *ml = into;
    json_t *e = machine_entry(f, v, ml->counted);
    return e ? json_array_append_new(ml->list, e) : 0; /* a damaged record is left out */
}

static int add_facts(const redisReply *f, const redisReply *v, void *facts) {
    if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || f->len > 64) return 0;
    json_t *j = json_loadb(v->str, v->len, 0, NULL);
    if (!json_is_object(j)) return json_decref(j), 0;
    char hex[129];
    pa_hex_encode(f->str, f->len, hex);
    return json_object_set_new(facts, hex, j);
}

static json_int_t counter(const redisReply *n, size_t i) {
    return n && n->type == REDIS_REPLY_ARRAY && i < n->elements && n->element[i]->type == REDIS_REPLY_STRING
               ? strtoll(n->element[i]->str, NULL, 10)
               : 0;
}

static json_t *report_json(rstore *r, const order_record *o, const char *key_id, int64_t now, char *err,
                           size_t errlen) {
    redisReply *n = rstore_command(r, "HMGET %s seats machines over_term", o->key_counts);
    if (!n || n->type != REDIS_REPLY_ARRAY) {
        err_set(err, errlen, "reading %s: %s", o->key_counts, n && n->str ? n->str : rstore_error(r));
        if (n) freeReplyObject(n);
        return NULL;
    }
    json_t *list = json_array(), *facts = json_object();
    json_t *j = json_pack("{s:i, s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:o, s:o}", "format_version", USAGE_FORMAT_VERSION,
                          "service_serial", o->serial, "order_revision", (json_int_t)o->revision, "server_key_id",
                          key_id, "generated_at", (json_int_t)now, "seats_held", counter(n, 0), "machines",
                          counter(n, 1), "over_term", counter(n, 2), "machine_list", list, "facts", facts);
    freeReplyObject(n);
    if (!j) return err_set(err, errlen, "out of memory"), NULL;
    machine_list ml = {.list = list, .counted = o->mode != SEAT_MODE_UNLIMITED};
    if (scan_hash(r, o->key_machines, add_machine, &ml, err, errlen) != 0 ||
        (o->collect_facts && scan_hash(r, o->key_facts, add_facts, facts, err, errlen) != 0))
        return json_decref(j), NULL;
    return j;
}

int usage_report_make(rstore *r, const order_record *o, const license_key *key, int64_t now, usage_report *out,
                      char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    uint8_t pub[TAGGED_KEY_LEN];
    size_t len = sizeof pub;
    if (!o->on_premises) return err_set(err, errlen, "wrong server: order %s is vendor-hosted", o->serial);
    if (EVP_PKEY_get_raw_public_key(key->pkey, pub, &len) != 1 || len != sizeof pub ||
        memcmp(pub, o->delegated_key, sizeof pub) != 0)
        return err_set(err, errlen, "wrong server: order %s delegates another key than --signing-key", o->serial);
    json_t *j = report_json(r, o, key->key_id, now, err, errlen);
    if (!j) return -1;
    out->json = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!out->json) return err_set(err, errlen, "out of memory");
    out->len = strlen(out->json);
    out->generated_at = now;
    if (out->len > USAGE_REPORT_MAX)
        return err_set(err, errlen, "the report of order %s is %zu bytes, above the %u a report may have", o->serial,
                       out->len, USAGE_REPORT_MAX);
    if (tagged_sign(key->pkey, TAG_USAGE, (const uint8_t *)out->json, out->len, out->signature) != 0)
        return err_set(err, errlen, "signing the report failed");
    return 0;
}

void usage_report_clear(usage_report *u) {
    if (!u) return;
    free(u->json);
    memset(u, 0, sizeof *u);
}

void usage_report_message(const order_record *o, const usage_report *u, Volume__V1__UsageReport *msg) {
    volume__v1__usage_report__init(msg);
    msg->order = (ProtobufCBinaryData){.len = o->order_len, .data = o->order_bytes};
    msg->order_signature =
        (ProtobufCBinaryData){.len = sizeof o->order_signature, .data = (uint8_t *)o->order_signature};
    msg->order_key_id = (char *)o->order_key_id;
    msg->report = (ProtobufCBinaryData){.len = u->len, .data = (uint8_t *)u->json};
    msg->signature = (ProtobufCBinaryData){.len = sizeof u->signature, .data = (uint8_t *)u->signature};
}
