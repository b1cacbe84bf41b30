/* license_grant.h -- the signed license a granted Activate or Renew returns.
 *
 * Both calls end the same way once policy.lua has granted a place: the
 * group's product fields and the script's lease become license terms, this
 * worker signs them, and the response carries the signed bytes, their place
 * in the signed tree (index, size, path), the key id and the lease. ActivateResponse and RenewResponse are distinct protobuf-c
 * types with the same fields, so filling them is a macro: it serves either
 * type and the compiler still checks every field. The response points into
 * the signed_license (no copy, no allocation), so that must stay alive
 * until the reply is packed. */
#ifndef PA_ACTIVATION_LICENSE_GRANT_H
#define PA_ACTIVATION_LICENSE_GRANT_H

#include <stdint.h>

#include "group_cache.h"
#include "license.h"
#include "order_record.h"
#include "policy.h"

/* The terms license_grant_sign signs (they point into g and the caller's
 * strings), for a batch signed at once (license_issue_batch). */
void license_grant_terms(const group_entry *g, const char *license_id, const uint8_t *machine_id, uint32_t group,
                         uint32_t serial, const policy_result *p, license_terms *out);

/* Signs the license for the place (group, serial) that machine_id (32 bytes)
 * holds, on g's product fields and the lease in the granted `p`.
 * Returns 0, or -1 when the license cannot be packed or signed. */
int license_grant_sign(license_signer *s, const group_entry *g, const char *license_id,
                       const uint8_t *machine_id, uint32_t group, uint32_t serial,
                       const policy_result *p, signed_license *out);

/* The same for a volume key (docs/volume.md): the order's product,
 * edition and features, channel volume, and the order's serial, revision
 * and seat mode, with the lease the volume script decided (in `p` as for
 * retail: now, renew_after, expires_at). */
int license_grant_sign_order(license_signer *s, const order_record *o, const char *license_id,
                             const uint8_t *machine_id, uint32_t group, uint32_t serial, const policy_result *p,
                             signed_license *out);

/* The terms license_grant_sign_order signs, for a batch signed at once;
 * they point into o, the caller's strings and `features` (room for the
 * order's feature names, kept until the license is signed). */
void license_grant_order_terms(const order_record *o, const char *license_id, const uint8_t *machine_id, uint32_t group,
                               uint32_t serial, const policy_result *p, char *features[ORDER_LIST_MAX],
                               license_terms *out);

/* Fills an ActivateResponse or RenewResponse `resp` from the signed license
 * `sl`, the key id of `signer` and the lease in `p`. */
#define LICENSE_GRANT_FILL(resp, sl, signer, p)                                                                      \
    do {                                                                                                             \
        (resp)->license = (ProtobufCBinaryData){.len = (sl)->body_len, .data = (sl)->body};                          \
        (resp)->signature = (ProtobufCBinaryData){.len = sizeof(sl)->sig, .data = (sl)->sig};                        \
        (resp)->key_id = (char *)license_signer_key_id(signer);                                                      \
        (resp)->activation_count = (p)->count;                                                                       \
        (resp)->renew_after = (p)->renew_after;                                                                      \
        (resp)->expires_at = (p)->expires_at;                                                                        \
        (resp)->tree_index = (sl)->tree_index;                                                                       \
        (resp)->tree_size = (sl)->tree_size;                                                                         \
        for (size_t tp_ = 0; tp_ < (sl)->tree_path_len; tp_++)                                                       \
            (sl)->tree_path_data[tp_] = (ProtobufCBinaryData){.len = MERKLE_HASH_LEN, .data = (sl)->tree_path[tp_]}; \
        (resp)->n_tree_path = (sl)->tree_path_len;                                                                   \
        (resp)->tree_path = (sl)->tree_path_data;                                                                    \
    } while (0)

#endif
