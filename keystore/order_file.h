/* order_file.h -- a volume order as the vendor signs it and as a server or
 * an installer checks it (docs/volume.md, "The order").
 *
 * The unit is the SignedOrder of protos/volume/v1/order.proto: the Order
 * bytes exactly as signed, the vendor's signature over
 * "pa-order-v1" || 0x00 || those bytes (tagged_signature.h), the signing
 * key's id, and for on-premises orders the OrderKeys bytes that
 * Order.keys_digest covers. An order_file holds those parts and their
 * decoded, validated messages, so every reader works on an order that
 * already passed the field checks.
 *
 * Checking is split the way import reports it: decoding refuses a
 * `malformed` order (a field out of range, named in the message);
 * verification answers `foreign vendor` (no known key has that key id) or
 * `tampered` (a known key id, but the signature or the keys digest does not
 * match). Nothing here reads a clock or a store: dates and the server's own
 * identity are the importer's business.
 *
 * In pa_order (OpenSSL and protobuf-c only, no Redis): the vendor's
 * keystore writes orders with it, activation servers import them, and the
 * installer library verifies the order an on-premises server sends. */
#ifndef PA_ORDER_FILE_H
#define PA_ORDER_FILE_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "signing_key_id.h"
#include "tagged_signature.h"
#include "volume/v1/order.pb-c.h"

struct order_keyring;

/* Limits of an Order's fields; activation-server/order_record.h sizes its
 * copies by them. */
#define ORDER_FORMAT_VERSION 1
#define ORDER_SERIAL_LEN 8     /* decimal digits of a service serial number */
#define ORDER_GROUPS_MAX 16    /* volume groups one order may cover */
#define ORDER_LIST_MAX 16      /* OS versions, architectures, features */
#define ORDER_TEXT_MAX 64      /* product, edition, vendor, one list entry: characters */
#define ORDER_CUSTOMER_MAX 128 /* characters */
#define ORDER_KEY_HASH_LEN 16  /* an accepted key's salted hash */
#define ORDER_KEY_SALT_LEN 16  /* OrderKeys.salt */
#define ORDER_KEYS_MAX 1000000 /* accepted keys of one on-premises order */
#define ORDER_DIGEST_LEN 32    /* Order.keys_digest, SHA-256 */
#define ORDER_DELEGATED_KEY_LEN TAGGED_KEY_LEN

/* What a term left at 0 means (docs/volume.md, "Defaults for terms left at
 * 0"); order_term_defaults applies them. */
#define ORDER_DEFAULT_RENEW_SECONDS (7u * 86400)
#define ORDER_DEFAULT_RECLAIM_SECONDS (30u * 86400)
#define ORDER_DEFAULT_HEARTBEAT_SECONDS 60u
#define ORDER_DEFAULT_MISSED_HEARTBEATS 3u
#define ORDER_DEFAULT_LICENSE_SECONDS (180u * 86400)
#define ORDER_DEFAULT_RETENTION_SECONDS (30u * 86400)
#define ORDER_DEFAULT_PENDING_RETRY_SECONDS (2u * 3600)

/* Machine facts an order may collect (Order.collect_facts), as bits; the
 * names are order_fact_name's. */
enum {
    ORDER_FACT_HOSTNAME = 1 << 0,
    ORDER_FACT_IP = 1 << 1,
    ORDER_FACT_MAC = 1 << 2,
    ORDER_FACT_HOST_SERIAL = 1 << 3,
    ORDER_FACT_OS = 1 << 4,
    ORDER_FACT_ARCH = 1 << 5,
};
#define ORDER_FACTS_N 6

/* How an order failed to check, in import's words (docs/volume.md, "Import"). */
typedef enum order_status {
    ORDER_OK = 0,
    ORDER_MALFORMED,      /* not a SignedOrder, or a field out of range */
    ORDER_FOREIGN_VENDOR, /* no known key has its key id */
    ORDER_TAMPERED,       /* known key id, but the signature or keys digest is wrong */
} order_status;

/* "ok", "malformed", "foreign vendor", "tampered". */
const char *order_status_reason(order_status s);

typedef struct order_file {
    uint8_t *order; /* SignedOrder.order, exactly as signed (malloc'd) */
    size_t order_len;
    uint8_t signature[TAGGED_SIG_LEN];   /* SignedOrder.signature */
    char key_id[SIGNING_KEY_ID_LEN + 1]; /* SignedOrder.key_id: names the vendor key */
    uint8_t *keys;                       /* SignedOrder.keys (malloc'd); NULL for vendor-hosted orders */
    size_t keys_len;
    Volume__V1__Order *o;     /* `order` decoded and validated */
    Volume__V1__OrderKeys *k; /* `keys` decoded and validated; NULL when none */
} order_file;

/* Decodes a serialized SignedOrder into `f` (which it owns afterwards; clear
 * it with order_file_clear, also after a failure). ORDER_OK or
 * ORDER_MALFORMED, the message naming the field. Does not verify. An
 * on-premises order may come without its keys (an installer never gets
 * them; Redis keeps them apart); a `.license` file must have them
 * (order_armour_read checks). */
order_status order_file_decode(order_file *f, const uint8_t *signed_order, size_t len, char *err, size_t errlen);

/* The same from the parts an ActivateResponse carries (no keys there:
 * keys may be NULL). */
order_status order_file_from_parts(order_file *f, const uint8_t *order, size_t order_len, const uint8_t *sig,
                                   size_t sig_len, const char *key_id, const uint8_t *keys, size_t keys_len, char *err,
                                   size_t errlen);

/* Checks the signature with the key `ring` holds under f->key_id, and the
 * keys against Order.keys_digest when f has them. ORDER_OK,
 * ORDER_FOREIGN_VENDOR or ORDER_TAMPERED. */
order_status order_file_verify(const order_file *f, const struct order_keyring *ring, char *err, size_t errlen);

/* Makes a signed order: validates `o` (keys_digest is computed here from
 * `k`; the caller leaves it empty), packs, signs with the vendor's
 * order-signing key and fills `f` as order_file_decode would. `k` NULL for
 * a vendor-hosted order. 0, or -1 with the field or failure named. */
int order_file_sign(order_file *f, EVP_PKEY *key, const Volume__V1__Order *o, const Volume__V1__OrderKeys *k, char *err,
                    size_t errlen);

/* The serialized SignedOrder (malloc'd, *len set), with or without its keys
 * (Redis keeps the keys apart). NULL when out of memory. */
uint8_t *order_file_pack(const order_file *f, bool with_keys, size_t *len);

/* Frees what `f` owns and zeroes it. */
void order_file_clear(order_file *f);

/* The order's terms with the defaults applied: every field of `out` that
 * is 0 in `o` gets its default (machine_validity_seconds: the license
 * validity). Other fields are copied. */
void order_term_defaults(const Volume__V1__Order *o, Volume__V1__Order *out);

/* True for an order that delegates signing to an on-premises server. */
bool order_is_on_premises(const Volume__V1__Order *o);

/* Field checks of docs/volume.md; each message starts with the field's
 * proto name ("service_serial: ..."). 0 or -1. */
int order_validate(const Volume__V1__Order *o, char *err, size_t errlen);
int order_keys_validate(const Volume__V1__OrderKeys *k, char *err, size_t errlen);

/* SHA-256 of the serialized OrderKeys. */
void order_keys_digest(const uint8_t *keys, size_t len, uint8_t out[ORDER_DIGEST_LEN]);

/* key_hash = first 16 bytes of SHA-256(salt || canonical 29-character key
 * text). `key_text` may be in any case, with or without hyphens; -1 when it
 * is not key syntax (keycodec.h pk_normalize). */
int order_key_hash(const uint8_t salt[ORDER_KEY_SALT_LEN], const char *key_text, uint8_t out[ORDER_KEY_HASH_LEN]);

/* The seat mode names ("permanent", "timed-reclaim", "concurrent",
 * "unlimited", "vendor"), by volume.v1.SeatMode number; NULL if none.
 * _parse gives the number, 0 if unknown. The same for AfterEnd ("stop",
 * "continue-counted") and the fact names ("hostname", "ip", "mac",
 * "host_serial", "os", "arch"; _bit gives ORDER_FACT_*, 0 if unknown). */
const char *order_mode_name(int mode);
int order_mode_parse(const char *s);
const char *order_after_end_name(int a);
int order_after_end_parse(const char *s);
const char *order_fact_name(unsigned bit);
unsigned order_fact_bit(const char *s);

#endif
