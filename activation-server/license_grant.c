/* license_grant.c -- the terms of a granted place, signed (see license_grant.h).
 *
 * The terms point at the group entry's (or the order's) strings and the
 * caller's buffers, so nothing is copied or allocated here; license_issue
 * packs into `out`. */
#include "license_grant.h"

#include "activation/v1/activation.pb-c.h"

void license_grant_terms(const group_entry *g, const char *license_id, const uint8_t *machine_id, uint32_t group,
                         uint32_t serial, const policy_result *p, license_terms *out) {
    *out = (license_terms){
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
        .grace_seconds = g->rec.policy.grace_seconds, /* what policy.lua renews until (docs/machines.md) */
    };
}

int license_grant_sign(license_signer *s, const group_entry *g, const char *license_id, const uint8_t *machine_id,
                       uint32_t group, uint32_t serial, const policy_result *p, signed_license *out) {
    license_terms terms;
    license_grant_terms(g, license_id, machine_id, group, serial, p, &terms);
    return license_issue(s, &terms, out);
}

void license_grant_order_terms(const order_record *o, const char *license_id, const uint8_t *machine_id, uint32_t group,
                               uint32_t serial, const policy_result *p, char *features[ORDER_LIST_MAX],
                               license_terms *out) {
    size_t n = o->n_features < ORDER_LIST_MAX ? o->n_features : ORDER_LIST_MAX;
    for (size_t i = 0; i < n; i++) features[i] = (char *)o->features[i]; /* the record keeps them as arrays */
    *out = (license_terms){
        .license_id = license_id,
        .product = o->product,
        .edition = o->edition,
        .channel = ACTIVATION__V1__CHANNEL__CHANNEL_VOLUME,
        .features = features,
        .n_features = n,
        .machine_id = machine_id,
        .group = group,
        .serial = serial,
        .issued_at = p->now,
        .renew_after = p->renew_after,
        .expires_at = p->expires_at,
        .order_serial = o->serial,
        .order_revision = o->revision,
        .seat_mode = seat_mode_name(o->mode),
    };
}

int license_grant_sign_order(license_signer *s, const order_record *o, const char *license_id,
                             const uint8_t *machine_id, uint32_t group, uint32_t serial, const policy_result *p,
                             signed_license *out) {
    char *features[ORDER_LIST_MAX];
    license_terms terms;
    license_grant_order_terms(o, license_id, machine_id, group, serial, p, features, &terms);
    return license_issue(s, &terms, out);
}
