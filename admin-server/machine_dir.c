/* machine_dir.c -- see machine_dir.h. The record layout is machine_dir.lua's
 * (its header comment); this file only reads it. */
#include "machine_dir.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "redis_keys.h"

extern const char ordered_index_lua[]; /* ordered_index.lua, embedded at build time */
extern const char machine_dir_lua[];   /* machine_dir.lua, embedded at build time */

const char *const md_entry_fields[MD_ENTRY_FIELDS] = {"op", "m",   "g",  "s",  "o", "t",  "ip",
                                                      "h",  "mac", "hs", "os", "e", "was"};

/* The script (both files joined) and its SHA-1, made once for the process
 * (pthread_once: request threads and the ingest task all call in). */
static char *script_source;
static char script_sha[41];
static pthread_once_t script_once = PTHREAD_ONCE_INIT;

static void script_make(void) {
    size_t a = strlen(ordered_index_lua), b = strlen(machine_dir_lua);
    char *s = malloc(a + b + 2);
    if (!s) return;
    memcpy(s, ordered_index_lua, a);
    s[a] = '\n';
    memcpy(s + a + 1, machine_dir_lua, b + 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(s, a + b + 1, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20) {
        free(s);
        return;
    }
    for (unsigned i = 0; i < 20; i++) snprintf(script_sha + 2 * i, 3, "%02x", md[i]);
    script_source = s; /* kept for the process's life: sent again on NOSCRIPT */
}

static int script_init(void) {
    pthread_once(&script_once, script_make);
    return script_source ? 0 : -1;
}

/* The words before the op's own: EVALSHA sha 1 {md}:ix, the op and the
 * four key prefixes. The script makes its
 * key names from ARGV; the one declared key only routes the call to the
 * master of {md} on Redis Cluster (every key the script touches is there). */
#define MD_FIXED_ARGS 9

redisReply *machine_dir_call(rstore *r, const char *op, size_t n, const char **argv, const size_t *lens) {
    if (script_init() != 0) return NULL;
    size_t total = MD_FIXED_ARGS + n;
    const char **v = malloc(total * sizeof *v);
    size_t *l = malloc(total * sizeof *l);
    if (!v || !l) {
        free(v);
        free(l);
        return NULL;
    }
    const char *fixed[] = {"EVALSHA",
                           script_sha,
                           "1",
                           PA_RKEY_MD_INDEX,
                           op,
                           PA_RKEY_MD_RECORD_PREFIX,
                           PA_RKEY_MD_INDEX,
                           PA_RKEY_MD_INDEX_PREFIX,
                           PA_RKEY_MD_INDEX_NEXT};
    for (size_t i = 0; i < MD_FIXED_ARGS; i++) {
        v[i] = fixed[i];
        l[i] = strlen(fixed[i]);
    }
    for (size_t i = 0; i < n; i++) {
        v[MD_FIXED_ARGS + i] = argv[i];
        l[MD_FIXED_ARGS + i] = lens ? lens[i] : strlen(argv[i]);
    }
    redisReply *rep = rstore_commandargv(r, (int)total, v, l);
    if (rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(rep);
        v[0] = "EVAL";
        l[0] = 4;
        v[1] = script_source;
        l[1] = strlen(script_source);
        rep = rstore_commandargv(r, (int)total, v, l);
    }
    free(v);
    free(l);
    return rep;
}

/* A reader over a packed record: every take fails once past the end. */
typedef struct rd {
    const unsigned char *p; /* next byte */
    const unsigned char *end;
    bool bad; /* ran past the end or found no terminator */
} rd;

static uint32_t take_u32(rd *r) {
    if (r->end - r->p < 4) {
        r->bad = true;
        return 0;
    }
    uint32_t v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
    r->p += 4;
    return v;
}

static unsigned take_u8(rd *r) {
    if (r->p >= r->end) {
        r->bad = true;
        return 0;
    }
    return *r->p++;
}

/* A NUL-terminated string into out (cut to fit). */
static void take_str(rd *r, char *out, size_t n) {
    const unsigned char *z = r->p < r->end ? memchr(r->p, 0, (size_t)(r->end - r->p)) : NULL;
    if (!z) {
        r->bad = true;
        out[0] = 0;
        return;
    }
    size_t len = (size_t)(z - r->p);
    if (len >= n) len = n - 1;
    memcpy(out, r->p, len);
    out[len] = 0;
    r->p = z + 1;
}

static machine_status status_of(char state, int64_t expires, int64_t now) {
    switch (state) {
    case 'a':
    case 'b':
    case 'r': return expires != 0 && expires <= now ? MACHINE_EXPIRED : MACHINE_ACTIVE;
    case 'd':
    case 'm': return MACHINE_DEACTIVATED; /* 'm': its place moved to the machine it became */
    case 'p': return MACHINE_PENDING;
    case 'q': return MACHINE_AWAITING;
    default: return MACHINE_EXPIRED; /* 'x': reclaimed */
    }
}

bool machine_record_decode(const uint8_t id[MD_ID_LEN], const char *rec, size_t len, int64_t now, machine_record *out) {
    memset(out, 0, sizeof *out);
    rd r = {(const unsigned char *)rec, (const unsigned char *)rec + len, false};
    machine_row *row = &out->row;
    unsigned version = take_u8(&r);
    char state = (char)take_u8(&r);
    row->group = take_u32(&r);
    row->serial = take_u32(&r);
    row->first_seen = take_u32(&r);
    row->last_seen = take_u32(&r);
    row->expires_at = take_u32(&r);
    take_str(&r, row->order, sizeof row->order);
    take_str(&r, row->hostname, sizeof row->hostname);
    take_str(&r, row->ip, sizeof row->ip);
    take_str(&r, row->macs, sizeof row->macs);
    take_str(&r, row->host_serial, sizeof row->host_serial);
    take_str(&r, row->os, sizeof row->os);
    unsigned nh = take_u8(&r);
    for (unsigned i = 0; i < nh && !r.bad; i++) {
        char op = (char)take_u8(&r);
        int64_t t = take_u32(&r);
        if (out->n_history < MACHINE_HISTORY_MAX) out->history[out->n_history++] = (machine_event){op, t};
    }
    if (r.bad || version != 1) {
        memset(out, 0, sizeof *out);
        return false;
    }
    for (char *c = row->macs; *c; c++)
        if (*c == ',') *c = ' ';
    row->status = status_of(state, row->expires_at, now);
    machine_id_text(id, row->id);
    return true;
}

int machine_dir_get(rstore *r, const uint8_t id[MD_ID_LEN], int64_t now, machine_record *out) {
    const char *argv[] = {(const char *)id};
    size_t lens[] = {MD_ID_LEN};
    redisReply *rep = machine_dir_call(r, "get", 1, argv, lens);
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        if (rep) freeReplyObject(rep);
        return -1;
    }
    int found = rep->type == REDIS_REPLY_STRING && machine_record_decode(id, rep->str, rep->len, now, out);
    freeReplyObject(rep);
    return found;
}

void machine_id_text(const uint8_t id[MD_ID_LEN], char out[MACHINE_ID_TEXT_LEN + 1]) {
    b64url_encode(id, MD_ID_LEN, out);
}

bool machine_id_parse(const char *text, uint8_t id[MD_ID_LEN]) {
    return strlen(text) == MACHINE_ID_TEXT_LEN && b64url_decode(text, id, MD_ID_LEN) == MD_ID_LEN;
}

static const char *const status_names[] = {"active", "pending", "expired", "deactivated", "awaiting_approval"};

const char *machine_status_name(machine_status s) {
    return (unsigned)s < sizeof status_names / sizeof *status_names ? status_names[s] : "any";
}

bool machine_status_parse(const char *name, machine_status *out) {
    for (size_t i = 0; i < sizeof status_names / sizeof *status_names; i++)
        if (strcmp(name, status_names[i]) == 0) {
            *out = (machine_status)i;
            return true;
        }
    return false;
}
