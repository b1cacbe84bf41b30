/* order_store.h -- imported orders in Redis A: import, list, show, retire
 * (docs/volume.md, "Import").
 *
 * Import checks an order file in the order of the docs' table and refuses
 * with the first reason that applies: malformed, foreign vendor, tampered,
 * expired, wrong server, older revision, conflict. The last two depend on
 * what is stored, so they are decided inside the one script call that also
 * writes: `{o:S}:order`, `{o:S}:keys` and `orders` change together or not
 * at all. A higher revision replaces the order hash and key set in that
 * call and leaves the machine table, counters and wheel alone; the same
 * bytes again are a no-op.
 *
 * The group conflict check spans orders (another order's hash), so the
 * script is given every other order's hash by name, read from `orders`
 * just before; if `orders` changed in between, the script says so and the
 * import runs again.
 *
 * These run as an operator, not as the internet-facing server: the
 * `activation` ACL user may only read {o:*}:order, {o:*}:keys and `orders`.
 * The store's `keystore` user may write them (docker/redis/activation.acl.in). */
#ifndef PA_ACTIVATION_ORDER_STORE_H
#define PA_ACTIVATION_ORDER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "order_file.h"
#include "order_keyring.h"
#include "order_record.h"
#include "redis_store.h"

/* Why an import was refused; the reason words are the docs' table's. */
typedef enum order_refusal {
    ORDER_REFUSED_NONE = 0,
    ORDER_REFUSED_MALFORMED,      /* "malformed" */
    ORDER_REFUSED_FOREIGN_VENDOR, /* "foreign vendor" */
    ORDER_REFUSED_TAMPERED,       /* "tampered" */
    ORDER_REFUSED_EXPIRED,        /* "expired" */
    ORDER_REFUSED_WRONG_SERVER,   /* "wrong server" */
    ORDER_REFUSED_OLDER_REVISION, /* "older revision" */
    ORDER_REFUSED_CONFLICT,       /* "conflict" */
} order_refusal;

const char *order_refusal_reason(order_refusal r);

/* What an import did. */
typedef enum order_import_result {
    ORDER_IMPORT_NEW,       /* a serial not held before */
    ORDER_IMPORT_REPLACED,  /* a higher revision replaced the stored one */
    ORDER_IMPORT_UNCHANGED, /* the same order was already imported */
    ORDER_IMPORT_REFUSED,   /* see refusal */
    ORDER_IMPORT_FAILED,    /* the store could not be read or written (nothing changed) */
} order_import_result;

/* Who is importing: what the server trusts and what it is. */
typedef struct order_server {
    const order_keyring *order_keys; /* --order-public-key */
    bool on_premises;                /* --on-premises */
    const uint8_t *signing_key;      /* raw public key of --signing-key (32 bytes); on-premises only */
} order_server;

typedef struct order_import_outcome {
    order_import_result result;
    order_refusal refusal; /* ORDER_IMPORT_REFUSED: why */
    char serial[ORDER_SERIAL_LEN + 1];
    uint32_t revision;          /* the file's */
    uint32_t previous_revision; /* REPLACED: the one before */
    uint64_t version;           /* the stored version afterwards (0 when refused or failed) */
} order_import_outcome;

/* Imports the armoured order `text` at time `now` (unix seconds). Returns
 * out->result; for REFUSED and FAILED err says why, starting with the
 * reason words ("expired: ..."). */
order_import_result order_import(rstore *r, const order_server *srv, const char *text, size_t len, int64_t now,
                                 order_import_outcome *out, char *err, size_t errlen);

/* The serials in `orders`, sorted (malloc'd array). 0, or -1 with err. */
int order_store_list(rstore *r, char (**serials)[ORDER_SERIAL_LEN + 1], size_t *n, char *err, size_t errlen);

/* One stored order. 0, 1 when there is none, -1 with err. */
int order_store_load(rstore *r, const char *serial, order_record *rec, char *err, size_t errlen);

/* Retires an order: it refuses activations and renewals from now on and
 * keeps its machine table. Bumps the version so every cache reloads it.
 * 0 retired now, 2 it already was, 1 no such order, -1 with err. */
int order_store_retire(rstore *r, const char *serial, uint64_t *version, char *err, size_t errlen);

#endif
