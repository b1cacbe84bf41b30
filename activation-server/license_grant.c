/* license_grant.c -- the terms of a granted place, signed (see license_grant.h).
 *
 * The terms point at the group entry's strings and the caller's buffers, so
 * nothing is copied or allocated here; license_issue packs into `out`. */
#include "license_grant.h"

int license_grant_sign(license_signer *s, const group_entry *g, const char *license_id,
                       const uint8_t *machine_id, uint32_t group, uint32_t serial,
                       const policy_result *p, signed_license *out) {
    license_terms terms = {
        .license_id = license_id,
        .product = g->rec.product,
        .edition = g->rec.edition,
        .channel = (int)g->rec.channel,
        .features = (char **)g->features,
        .n_features = g->n_features,
        .machine_id = machine_id,
        .group = group,
        .serial = serial,
        .issued_at = p->now,
        .renew_after = p->renew_after,
        .expires_at = p->expires_at,
    };
    return license_issue(s, &terms, out);
}
