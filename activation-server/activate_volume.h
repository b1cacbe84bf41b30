/* activate_volume.h -- the volume way of Activate, Renew and Deactivate
 * (docs/volume.md, "An activation under an order").
 *
 * A key whose group belongs to an imported order is a volume key. Its
 * Activate checks the key as activate.c does for every key -- vendor-hosted:
 * the first security value, revocation and audit sampling; on-premises:
 * the order's salted key hashes (volume_key_accepted) -- and then, in place
 * of policy.lua, takes the steps here: the order's dates, state and
 * platform in memory, one volume.lua call, and the license with the order's
 * terms. volume_seat_end hands activate.c a policy_result shaped as
 * policy_activate's, so the retail code refuses, retries and signs the same
 * way; what only volume keys have (a seat refused, pending answers, the
 * VolumeStatus) is answered here. Activate, Renew and Deactivate are cut
 * into stages (volume_seat_*, volume_renewal_*, volume_deactivating_*) so
 * that the calls of a batch send their volume.lua calls in the worker's
 * one pipeline and sign their licenses in one tree (docs/batching.md); a
 * single call runs the same stages one after the other.
 *
 * Renew and Deactivate of a volume license (its id names the key's group
 * and serial, as every license id does; renew.c finds the order by the
 * group) come here after renew.c's rate hold and proof check. */
#ifndef PA_ACTIVATION_ACTIVATE_VOLUME_H
#define PA_ACTIVATION_ACTIVATE_VOLUME_H

#include <stdbool.h>
#include <stdint.h>

#include "activation/v1/activation.pb-c.h"
#include "component_tokens.h"
#include "license.h"
#include "order_record.h"
#include "server.h"
#include "volume_policy.h"

/* What an Activate says about the machine, copied from the request (the
 * online-audit pool finishes a call after the request is gone). */
typedef struct volume_ask {
    char hostname[HOSTNAME_MAX + 1];
    char os[FACT_MAX + 1];
    char arch[FACT_MAX + 1];
    char host_serial[FACT_MAX + 1];
    char ip[CLIENT_ADDRESS_MAX]; /* the client address (the "ip" fact) */
    char macs[MACS_MAX][MAC_TEXT_LEN + 1];
    size_t n_macs;
    uint8_t tokens[COMPONENTS_MAX * COMPONENT_TOKEN_LEN]; /* the components' tokens, sorted: matching */
    size_t n_tokens;
} volume_ask;

/* From a validated request and the caller's address. */
void volume_ask_from(volume_ask *v, const Activation__V1__ActivateRequest *rq, const char *ip);

/* On-premises: is the request's key text one the order accepts? */
bool volume_key_accepted(const order_record *o, const char *product_key);

/* A granted volume Activate or Renew, between the script and the reply. */
typedef struct volume_grant {
    char serial[ORDER_SERIAL_LEN + 1];   /* the order's: a cached record may move between the stages */
    const order_record *order;           /* the worker's cached order, current after the call */
    volume_result r;                     /* the script's answer */
    Activation__V1__VolumeStatus status; /* the answer's VolumeStatus (points into order) */
    char *features[ORDER_LIST_MAX];      /* the license terms' feature names (point into order) */
} volume_grant;

/* Activate's volume steps (docs/volume.md, steps 3-4) in the stages a
 * batch takes together (docs/batching.md, activate_stages.h), after the
 * key was found genuine and its audit decided. The fields up to `vg` are
 * the caller's (they must outlive the stages); the rest is set here. */
typedef struct volume_seat {
    const volume_ask *ask;      /* what the request says of the machine */
    const pk_fields *key;       /* the volume key */
    const uint8_t *machine_id;  /* MACHINE_ID_LEN bytes */
    const uint8_t *holder;      /* the place key's digest; NULL: none sent */
    const char *address_key;    /* the caller's rate-limit bucket; NULL: taken already (Redis Cluster batch) */
    const char *revoked;        /* Redis Cluster batch: "1"/"0" read with the address take; NULL: not read */
    const policy_audit *outbox; /* the offline-audit record for the script; NULL: none */
    const uint8_t *random;      /* LICENSE_RANDOM_LEN fresh bytes, offered for the license id */
    volume_grant vg;            /* the order, the script's answer, the VolumeStatus */
    char *facts;                /* the facts the order collects (JSON, malloc'd); NULL: none */
    bool on_premises;           /* the order's: no outbox record */
} volume_seat;

typedef enum volume_seat_step {
    VOLUME_SEAT_SCRIPT,   /* volume.lua is next */
    VOLUME_SEAT_DECIDED,  /* *p is set already (UNAVAILABLE): on to the retail refusal, no script */
    VOLUME_SEAT_ANSWERED, /* refused here (the order's dates, state, platform) */
} volume_seat_step;

/* Step 3: the order in memory. */
volume_seat_step volume_seat_begin(worker *w, rpc_ctx *ctx, volume_seat *s, policy_result *p, rpc_reply *reply);
/* Step 4: one volume.lua call by itself, or appended to the worker's
 * pipeline (0 or -1: run it by itself) and read (false: NOSCRIPT, run it
 * by itself once the pipeline is read). */
void volume_seat_script(worker *w, volume_seat *s);
int volume_seat_append(worker *w, volume_seat *s);
bool volume_seat_read(worker *w, volume_seat *s);
/* The script's answer: true with *p set as policy_activate sets it -- OK,
 * or a status the retail code refuses (rate limit, revocation, Redis
 * away, a full outbox) -- and s->vg for the license; false when the reply
 * is set here: a refusal only volume keys have, or a pending answer. */
bool volume_seat_end(worker *w, rpc_ctx *ctx, volume_seat *s, policy_result *p, rpc_reply *reply);
/* The granted license's terms, for signing with the batch; the order as
 * held now (no reload, so other calls' terms stay valid). False when the
 * order is gone. */
bool volume_seat_terms(worker *w, volume_seat *s, const char *license_id, const policy_result *p, license_terms *t);
/* Frees what the seat holds (always, once; again is harmless). */
void volume_seat_free(volume_seat *s);

/* The stages one after the other (the online-audit pool's calls): true
 * as volume_seat_end, or with *p UNAVAILABLE. */
bool volume_activate_seat(worker *w, rpc_ctx *ctx, volume_seat *s, policy_result *p, rpc_reply *reply);

/* Signs the granted license (license_grant_sign_order). 0 or -1. */
int volume_activate_sign(worker *w, const volume_grant *vg, const char *license_id, const uint8_t *machine_id,
                         const pk_fields *key, const policy_result *p, signed_license *out);

/* Adds the VolumeStatus (and on-premises the signed order) to an
 * ActivateResponse or RenewResponse `resp` (same fields, distinct types). */
#define VOLUME_GRANT_FILL(resp, vg, on_premises)                                                                    \
    do {                                                                                                            \
        (resp)->volume = &(vg)->status;                                                                             \
        if (on_premises) {                                                                                          \
            (resp)->order = (ProtobufCBinaryData){.len = (vg)->order->order_len, .data = (vg)->order->order_bytes}; \
            (resp)->order_signature = (ProtobufCBinaryData){.len = sizeof(vg)->order->order_signature,              \
                                                            .data = (uint8_t *)(vg)->order->order_signature};       \
            (resp)->order_key_id = (char *)(vg)->order->order_key_id;                                               \
        }                                                                                                           \
    } while (0)

/* A Renew of a volume license (a concurrent order's heartbeat, a lease's
 * renewal) in the stages renew_stages.h cuts Renew into, after renew.c's
 * rate hold and proof check. The fields up to `vg` are the caller's. */
typedef struct volume_renewal {
    const char *license_id;    /* the request's */
    const uint8_t *machine_id; /* MACHINE_ID_LEN bytes */
    uint32_t group, serial;    /* the license id's key */
    const uint8_t *random;     /* the license id's random part */
    const uint8_t *holder;     /* the proven place key's digest */
    const caller *who;         /* the client address and its bucket */
    bool address_taken;        /* Redis Cluster batch: its bucket's tokens are taken already */
    const char *revoked;       /* Redis Cluster batch: "1"/"0" read with the address take; NULL: not read */
    volume_grant vg;           /* the order (by serial), the script's answer, the VolumeStatus */
    policy_result p;           /* the granted lease, as policy_renew gives it */
} volume_renewal;

/* The renewal of a license of `o` (the fields up to vg set). */
void volume_renewal_begin(volume_renewal *v, const order_record *o);
/* volume.lua by itself, or pipelined as volume_seat_append and _read. */
void volume_renewal_script(worker *w, volume_renewal *v);
int volume_renewal_append(worker *w, volume_renewal *v);
bool volume_renewal_read(worker *w, volume_renewal *v);
/* The script's answer: false when refused (answered, counted, logged). */
bool volume_renewal_check(worker *w, rpc_ctx *ctx, volume_renewal *v, rpc_reply *reply);
/* The renewed license's terms, as volume_seat_terms. */
bool volume_renewal_terms(worker *w, volume_renewal *v, license_terms *t);
/* The answer with the license signed (NULL: signing failed, INTERNAL). */
void volume_renewal_answer(worker *w, rpc_ctx *ctx, volume_renewal *v, signed_license *sl, rpc_reply *reply);

/* A Deactivate of a volume license in the stages renew_stages.h cuts
 * Deactivate into, after renew.c's rate hold and proof check (as
 * volume_renewal for Renew). The fields up to `order` are the caller's. */
typedef struct volume_deactivating {
    const uint8_t *machine_id;        /* MACHINE_ID_LEN bytes */
    uint32_t group, serial;           /* the license id's key */
    const uint8_t *random;            /* the license id's random part */
    const uint8_t *holder;            /* the proven place key's digest */
    const caller *who;                /* the client address and its bucket */
    bool address_taken;               /* Redis Cluster batch: its bucket's tokens are taken already */
    char order[ORDER_SERIAL_LEN + 1]; /* the order's serial: a cached record may move between the stages */
    volume_result r;                  /* the script's answer */
} volume_deactivating;

/* The Deactivate of a license of `o` (the fields up to `order` set). */
void volume_deactivating_begin(volume_deactivating *v, const order_record *o);
/* volume.lua by itself, or pipelined as volume_renewal_append and _read. */
void volume_deactivating_script(worker *w, volume_deactivating *v);
int volume_deactivating_append(worker *w, volume_deactivating *v);
bool volume_deactivating_read(worker *w, volume_deactivating *v);
/* The order settled, then the answer: the refusal, or the freed seat (or
 * the deactivation awaiting the operator) with the VolumeStatus; counted
 * and logged. */
void volume_deactivating_answer(worker *w, rpc_ctx *ctx, volume_deactivating *v, rpc_reply *reply);

#endif
