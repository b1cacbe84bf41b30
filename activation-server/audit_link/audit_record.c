/* audit_record.c -- the three shapes of a sampled request (see audit_record.h). */
#include "audit_record.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hex.h"

static void copy_text(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src ? src : "");
}

int audit_record_init(audit_record *r, const pk_fields *key, const uint8_t machine_id[AUDIT_MACHINE_ID_LEN],
                      const char *client_address, const char *sample_reason) {
    uint8_t raw[AUDIT_REQUEST_ID_LEN / 2];
    if (RAND_bytes(raw, sizeof raw) != 1) return -1;
    pa_hex_encode(raw, sizeof raw, r->request_id);
    r->key = *key;
    memcpy(r->machine_id, machine_id, AUDIT_MACHINE_ID_LEN);
    copy_text(r->client_address, sizeof r->client_address, client_address);
    copy_text(r->sample_reason, sizeof r->sample_reason, sample_reason);
    r->received_at = (int64_t)time(NULL);
    return 0;
}

static void format_numbers(const audit_record *r, audit_record_args *a) {
    snprintf(a->group, sizeof a->group, "%" PRIu32, r->key.group);
    snprintf(a->serial, sizeof a->serial, "%" PRIu32, r->key.serial);
    snprintf(a->upgrade, sizeof a->upgrade, "%d", r->key.upgrade ? 1 : 0);
    snprintf(a->first, sizeof a->first, "%" PRIu64, r->key.security_first);
    snprintf(a->second, sizeof a->second, "%" PRIu32, r->key.security_second);
    snprintf(a->received, sizeof a->received, "%lld", (long long)r->received_at);
}

static void push(audit_record_args *a, const char *s, size_t len) {
    a->argv[a->n] = s;
    a->len[a->n] = len;
    a->n++;
}

static void push_str(audit_record_args *a, const char *s) { push(a, s, strlen(s)); }

void audit_record_outbox_fields(const audit_record *r, audit_record_args *a) {
    format_numbers(r, a);
    a->n = 0;
    push_str(a, "request_id"), push_str(a, r->request_id);
    push_str(a, "group"), push_str(a, a->group);
    push_str(a, "serial"), push_str(a, a->serial);
    push_str(a, "upgrade"), push_str(a, a->upgrade);
    push_str(a, "security_first"), push_str(a, a->first);
    push_str(a, "security_second"), push_str(a, a->second);
    push_str(a, "machine_id"), push(a, (const char *)r->machine_id, AUDIT_MACHINE_ID_LEN);
    push_str(a, "client_address"), push_str(a, r->client_address);
    push_str(a, "received_at"), push_str(a, a->received);
    push_str(a, "sample_reason"), push_str(a, r->sample_reason);
}

void audit_record_script_args(const audit_record *r, audit_record_args *a) {
    format_numbers(r, a);
    a->n = 0;
    push_str(a, r->request_id);
    push_str(a, a->group);
    push_str(a, a->upgrade);
    push_str(a, a->first);
    push_str(a, a->second);
    push_str(a, r->client_address);
    push_str(a, a->received);
    push_str(a, r->sample_reason);
}

static const redisReply *field(const redisReply *fields, const char *name) {
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        if (k->type == REDIS_REPLY_STRING && k->len == strlen(name) && memcmp(k->str, name, k->len) == 0)
            return fields->element[i + 1]->type == REDIS_REPLY_STRING ? fields->element[i + 1] : NULL;
    }
    return NULL;
}

static int parse_uint(const redisReply *v, uint64_t max, uint64_t *out) {
    if (!v || v->len == 0 || v->len > 20) return -1;
    char buf[24], *end;
    memcpy(buf, v->str, v->len);
    buf[v->len] = '\0';
    if (buf[0] < '0' || buf[0] > '9') return -1;
    errno = 0;
    unsigned long long x = strtoull(buf, &end, 10);
    if (*end || errno || x > max) return -1; /* errno: 20 digits can overflow */
    *out = x;
    return 0;
}

/* Printable ASCII only, as the audit server's Submit demands of every text
 * (audit_service.c): it refuses a whole batch for one bad record, so an
 * entry it would refuse must be dropped here, not sent again and again. */
static int parse_text(const redisReply *v, char *dst, size_t cap) {
    if (!v || v->len >= cap) return -1;
    for (size_t i = 0; i < v->len; i++)
        if ((unsigned char)v->str[i] < 0x20 || (unsigned char)v->str[i] > 0x7e) return -1;
    memcpy(dst, v->str, v->len);
    dst[v->len] = '\0';
    return 0;
}

int audit_record_from_outbox(const redisReply *fields, audit_record *r, char *err, size_t errlen) {
    uint64_t group, serial, upgrade, first, second, received;
    const char *bad = NULL;
    const redisReply *id = field(fields, "request_id"), *machine = field(fields, "machine_id");
    memset(r, 0, sizeof *r);
    if (fields->type != REDIS_REPLY_ARRAY) bad = "entry";
    else if (!id || id->len != AUDIT_REQUEST_ID_LEN || parse_text(id, r->request_id, sizeof r->request_id) ||
             strspn(r->request_id, "0123456789abcdef") != AUDIT_REQUEST_ID_LEN) /* as audit_record_init makes it */
        bad = "request_id";
    else if (parse_uint(field(fields, "group"), PK_GROUP_MAX, &group)) bad = "group";
    else if (parse_uint(field(fields, "serial"), PK_SERIAL_MAX, &serial)) bad = "serial";
    else if (parse_uint(field(fields, "upgrade"), 1, &upgrade)) bad = "upgrade";
    else if (parse_uint(field(fields, "security_first"), PK_SECURITY_FIRST_MAX, &first)) bad = "security_first";
    else if (parse_uint(field(fields, "security_second"), PK_SECURITY_SECOND_MAX, &second)) bad = "security_second";
    else if (!machine || machine->len != AUDIT_MACHINE_ID_LEN) bad = "machine_id";
    else if (parse_text(field(fields, "client_address"), r->client_address, sizeof r->client_address))
        bad = "client_address";
    else if (parse_uint(field(fields, "received_at"), INT64_MAX, &received)) bad = "received_at";
    else if (parse_text(field(fields, "sample_reason"), r->sample_reason, sizeof r->sample_reason))
        bad = "sample_reason";
    if (bad) {
        snprintf(err, errlen, "outbox entry: missing or invalid field '%s'", bad);
        return -1;
    }
    /* The audit API's reasons use hyphens; entries written before the
     * spelling was unified say "first_activation". */
    for (char *p = r->sample_reason; *p; p++)
        if (*p == '_') *p = '-';
    memcpy(r->machine_id, machine->str, AUDIT_MACHINE_ID_LEN);
    r->key = (pk_fields){.group = (uint32_t)group, .serial = (uint32_t)serial,
                         .security_first = first, .security_second = (uint32_t)second,
                         .upgrade = upgrade == 1};
    r->received_at = (int64_t)received;
    return 0;
}

int audit_record_to_proto(const audit_record *r, const char *origin, char key_text[PK_TEXT_LEN + 1],
                          Audit__V1__AuditRecord *out) {
    if (pk_encode(&r->key, key_text) != 0) return -1;
    audit__v1__audit_record__init(out);
    out->request_id = (char *)r->request_id;
    out->product_key = key_text;
    out->machine_id.data = (uint8_t *)r->machine_id;
    out->machine_id.len = AUDIT_MACHINE_ID_LEN;
    out->client_address = (char *)r->client_address;
    out->received_at = r->received_at;
    out->sample_reason = (char *)r->sample_reason;
    out->origin = (char *)(origin ? origin : "");
    return 0;
}
