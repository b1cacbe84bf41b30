/* activate_volume.h -- the volume way of Activate, Renew and Deactivate
 * (docs/volume.md, "An activation under an order").
 *
 * A key whose group belongs to an imported order is a volume key. Its
 * Activate checks the key as activate.c does for every key -- vendor-hosted:
 * the first security value, revocation and audit sampling; on-premises:
 * the order's salted key hashes (volume_key_accepted) -- and then, in place
 * of policy.lua, takes the steps here: the order's dates, state and
 * platform in memory, one volume.lua call, and the license with the order's
 * terms. volume_activate_seat hands activate.c a policy_result shaped as
 * policy_activate's, so the retail code refuses, retries and signs the same
 * way; what only volume keys have (a seat refused, pending answers, the
 * VolumeStatus) is answered here.
 *
 * Renew and Deactivate of a volume license (its id names the key's group
 * and serial, as every license id does; renew.c finds the order by the
 * group) are whole here, after renew.c's rate hold and proof check. */
#ifndef PA_ACTIVATION_ACTIVATE_VOLUME_H
#define PA_ACTIVATION_ACTIVATE_VOLUME_H

#include <stdbool.h>
#include <stdint.h>

#include "activation/v1/activation.pb-c.h"
#include "component_tokens.h"
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

/* A granted volume Activate, between the script and the reply. */
typedef struct volume_grant {
    const order_record *order;           /* the worker's cached order, current after the call */
    volume_result r;                     /* the script's answer */
    Activation__V1__VolumeStatus status; /* the answer's VolumeStatus (points into order) */
} volume_grant;

/* Activate's volume steps (docs/volume.md, steps 3-4) for the key's order,
 * after the key was found genuine and its audit decided (`outbox`: the
 * offline-audit record for the script, or NULL). Returns true with *p set
 * as policy_activate sets it -- OK, or a status the retail code refuses
 * (rate limit, revocation, Redis away, a full outbox) -- and *vg for
 * volume_activate_sign and VOLUME_GRANT_FILL; false when the reply is set
 * here: a refusal only volume keys have, or a pending answer. */
bool volume_activate_seat(worker *w, rpc_ctx *ctx, const volume_ask *ask, const pk_fields *key,
                          const uint8_t *machine_id, const uint8_t *holder, const char *address_key,
                          const policy_audit *outbox, const uint8_t random[LICENSE_RANDOM_LEN], volume_grant *vg,
                          policy_result *p, rpc_reply *reply);

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

/* Renew and Deactivate of a license of `o` (its key's group and serial,
 * the license id's random part, the proven place key's digest). */
void volume_handle_renew(worker *w, rpc_ctx *ctx, const order_record *o, const char *license_id,
                         const uint8_t *machine_id, uint32_t group, uint32_t serial,
                         const uint8_t random[LICENSE_RANDOM_LEN], const uint8_t holder[PLACE_KEY_DIGEST_LEN],
                         const caller *who, rpc_reply *reply);
void volume_handle_deactivate(worker *w, rpc_ctx *ctx, const order_record *o, const uint8_t *machine_id, uint32_t group,
                              uint32_t serial, const uint8_t random[LICENSE_RANDOM_LEN],
                              const uint8_t holder[PLACE_KEY_DIGEST_LEN], const caller *who, rpc_reply *reply);

#endif
