/* policy_machines.c -- argument packing and reply decoding for policy.lua's
 * list and release operations (policy_machines.h). Refusals decode as for
 * every operation (policy_decode); only the granted replies have shapes of
 * their own. */
#include "policy_machines.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "redis_keys.h"
#include "script_args.h"

#define PLACE_FIELD_LEN 16 /* a place's field: the first half of SHA-256(machine id) */

/* The keys both operations share (policy.lua, self_service): revoked,
 * record, place index, then release's machine log (`mlog`, NULL for list)
 * and the address bucket last (NULL: taken already, policy_address_first). */
static void common_keys(script_args *a, char keys[4][PA_RKEY_MAX], char *key_group, char *serial_s, size_t serial_n,
                        uint32_t group, uint32_t serial, const char *mlog, const char *address_key) {
    pa_rkey_revoked(keys[0], PA_RKEY_MAX, group);
    pa_rkey_record(keys[1], PA_RKEY_MAX, group, serial);
    pa_rkey_record_index(keys[2], PA_RKEY_MAX, group, serial);
    pa_rkey_group(key_group, PA_RKEY_MAX, group);
    snprintf(serial_s, serial_n, "%u", serial);
    script_args_add_str(a, keys[0]);
    script_args_add_str(a, keys[1]);
    script_args_add_str(a, keys[2]);
    if (mlog) script_args_add_str(a, mlog);
    if (address_key) script_args_add_str(a, address_key);
}

void policy_machines_call_keys(bool list, uint32_t group, uint32_t serial, const char *address_key, policy_keys *out) {
    char keys[4][PA_RKEY_MAX], key_group[PA_RKEY_MAX], serial_s[16], mlog[PA_RKEY_MAX];
    script_args a = {.n = 0};
    pa_rkey_group_mlog(mlog, sizeof mlog, group);
    common_keys(&a, keys, key_group, serial_s, sizeof serial_s, group, serial, list ? NULL : mlog, address_key);
    out->n = 0;
    for (int i = 0; i < a.n && i < POLICY_KEYS_MAX; i++) snprintf(out->name[out->n++], PA_RKEY_MAX, "%s", a.v[i]);
    snprintf(out->read, sizeof out->read, "%s", key_group); /* ARGV[2] of both operations */
}

static redisReply *eval(rstore *r, int script, int nkeys, script_args *a, const char *what, policy_result *out) {
    redisReply *reply = policy_eval(r, script, nkeys, a, what, out);
    if (!reply) return NULL;
    bool granted = reply->type == REDIS_REPLY_ARRAY && reply->elements >= 3 &&
                   reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[0]->integer == POLICY_OK;
    if (granted) { /* a shape of its own: only the version is common */
        bool bad = false;
        memset(out, 0, sizeof *out);
        out->version = (uint64_t)script_reply_int(reply, 1, &bad);
        out->count = (uint32_t)script_reply_int(reply, 2, &bad);
        if (!bad) return reply;
    }
    policy_decode(reply, what, out); /* a refusal, or a reply policy.lua did not write */
    if (granted) {
        out->status = POLICY_UNAVAILABLE;
        out->redis_error = true;
        snprintf(out->error, sizeof out->error, "%s: a number in the reply does not parse", what);
    }
    freeReplyObject(reply);
    return NULL;
}

static bool string_at(const redisReply *r, size_t i, char *out, size_t n) {
    if (i >= r->elements || r->element[i]->type != REDIS_REPLY_STRING) return false;
    size_t len = r->element[i]->len < n - 1 ? r->element[i]->len : n - 1;
    memcpy(out, r->element[i]->str, len);
    out[len] = '\0';
    return true;
}

/* A granted list: {0, version, max, left, next, places, then 5 per entry}. */
static bool decode_list(const redisReply *r, policy_list_result *out) {
    bool bad = false;
    out->max_machines = (uint32_t)script_reply_int(r, 2, &bad);
    out->releases_left = (uint32_t)script_reply_int(r, 3, &bad);
    out->next_release_at = script_reply_int(r, 4, &bad);
    out->places = (uint32_t)script_reply_int(r, 5, &bad);
    size_t n = r->elements > 6 ? (r->elements - 6) / 5 : 0;
    if (n > POLICY_LIST_MAX) n = POLICY_LIST_MAX;
    for (size_t k = 0; k < n && !bad; k++) {
        size_t at = 6 + 5 * k;
        policy_listed *e = &out->e[k];
        bad |= !string_at(r, at, e->handle, sizeof e->handle) || strlen(e->handle) != POLICY_HANDLE_LEN;
        bad |= !string_at(r, at + 1, e->hostname, sizeof e->hostname);
        e->last_seen = script_reply_int(r, at + 2, &bad);
        e->expires_at = script_reply_int(r, at + 3, &bad);
        e->this_machine = script_reply_int(r, at + 4, &bad) == 1;
    }
    out->n = n;
    return !bad;
}

void policy_list(rstore *r, int script, const policy_limits *l, uint32_t group, uint32_t serial,
                 const uint8_t *machine_id, const char *address_key, policy_list_result *out) {
    char keys[4][PA_RKEY_MAX], key_group[PA_RKEY_MAX], serial_s[16];
    uint8_t field[SHA256_DIGEST_LENGTH];
    memset(out, 0, sizeof *out);
    if (!policy_address_first(r, script, l, &address_key, false, &out->r)) return;
    script_args a = {.n = 0};
    common_keys(&a, keys, key_group, serial_s, sizeof serial_s, group, serial, NULL, address_key);
    int nkeys = a.n;
    if (machine_id) SHA256(machine_id, MACHINE_ID_LEN, field);
    script_args_add_str(&a, "list");
    script_args_add_str(&a, key_group); /* read only: ARGV, see policy.lua */
    script_args_add_str(&a, serial_s);
    script_args_add(&a, field, machine_id ? PLACE_FIELD_LEN : 0);
    script_args_add_str(&a, l->address_rate);
    script_args_add_str(&a, l->address_burst);
    script_args_add_str(&a, l->retention);
    redisReply *reply = eval(r, script, nkeys, &a, "list", &out->r);
    if (!reply) return;
    if (!decode_list(reply, out)) {
        out->n = 0;
        out->r.status = POLICY_UNAVAILABLE;
        out->r.redis_error = true;
        snprintf(out->r.error, sizeof out->r.error, "list: a listing in the reply does not parse");
    }
    freeReplyObject(reply);
}

void policy_release(rstore *r, int script, const policy_limits *l, uint32_t group, uint32_t serial, const char *handle,
                    const char *address_key, const char *ip, policy_result *out, uint32_t *releases_left) {
    char keys[4][PA_RKEY_MAX], key_group[PA_RKEY_MAX], serial_s[16], mlog[PA_RKEY_MAX];
    *releases_left = 0;
    if (!policy_address_first(r, script, l, &address_key, false, out)) return;
    script_args a = {.n = 0};
    pa_rkey_group_mlog(mlog, sizeof mlog, group);
    common_keys(&a, keys, key_group, serial_s, sizeof serial_s, group, serial, mlog, address_key);
    int nkeys = a.n;
    script_args_add_str(&a, "release");
    script_args_add_str(&a, key_group);
    script_args_add_str(&a, serial_s);
    script_args_add_str(&a, handle);
    script_args_add_str(&a, l->address_rate);
    script_args_add_str(&a, l->address_burst);
    script_args_add_str(&a, l->retention);
    script_args_add_str(&a, ip ? ip : "");
    redisReply *reply = eval(r, script, nkeys, &a, "release", out);
    if (!reply) return;
    bool bad = false;
    *releases_left = (uint32_t)script_reply_int(reply, 3, &bad);
    if (bad) {
        out->status = POLICY_UNAVAILABLE;
        out->redis_error = true;
        snprintf(out->error, sizeof out->error, "release: a number in the reply does not parse");
    }
    freeReplyObject(reply);
}
