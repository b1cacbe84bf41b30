/* audit_sampler.h -- which activations the audit server gets to see.
 *
 * Every group has a base rate (its record's audit_rate_ppm). The rate goes
 * up by itself while a threat signal fires: the group's failure ratio over
 * the sliding window (someone is guessing keys of this product), or the
 * request rate of the calling address (one client hammering the service).
 * Independently, a group's policy may ask for every key's first activation
 * to be audited -- whether this *is* the first activation only the policy
 * script knows, so that rule comes back as a mode the script applies
 * (AUDIT_SAMPLE_IF_FIRST), at no extra round trip.
 *
 * The mode values are exactly the policy script's "audit mode" argument.
 * Deciding costs a random draw and two window reads; counting it is one
 * atomic add. Metrics (label sets are fixed, never per address):
 *   pa_audit_decisions_total{mode,reason}     every decision
 *   pa_audit_threat_alerts_total{kind}        requests sampled because a signal raised the rate
 *   pa_audit_group_sample_rate_ppm{group}     the effective rate of a group that
 *                                             has been under alert (at most
 *                                             max_group_series groups get a series) */
#ifndef PA_AUDIT_SAMPLER_H
#define PA_AUDIT_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "group.h"
#include "threat_signal.h"

#define AUDIT_RATE_ALL 1000000u      /* parts per million: every request */

typedef enum audit_sample_mode {
    AUDIT_SAMPLE_NONE = 0,           /* not audited */
    AUDIT_SAMPLE_ALWAYS = 1,         /* audit this request */
    AUDIT_SAMPLE_IF_FIRST = 2,       /* audit only if it is the key's first activation */
} audit_sample_mode;

typedef enum audit_reason {
    AUDIT_REASON_NONE = 0,
    AUDIT_REASON_BASE_RATE,          /* the group's base rate drew it */
    AUDIT_REASON_THREAT_GROUP,       /* raised: the group's failure ratio */
    AUDIT_REASON_THREAT_ADDRESS,     /* raised: the client address's request rate */
    AUDIT_REASON_FIRST_ACTIVATION,   /* the policy audits every first activation */
    AUDIT_REASON_COUNT
} audit_reason;

typedef struct audit_decision {
    audit_sample_mode mode;          /* what to do (the policy script's audit mode) */
    audit_reason reason;             /* why; AUDIT_REASON_NONE with AUDIT_SAMPLE_NONE */
    uint32_t rate_ppm;               /* the effective sample rate used for the draw */
} audit_decision;

typedef struct audit_sampler_config {
    uint32_t threat_group_rate_ppm;  /* rate while the group alerts (default AUDIT_RATE_ALL) */
    uint32_t threat_address_rate_ppm;/* rate while the address alerts (default AUDIT_RATE_ALL) */
    size_t max_group_series;         /* per-group rate gauges at most (default 64) */
} audit_sampler_config;

typedef struct audit_sampler audit_sampler;

/* `signals` is borrowed (the caller also records into it); `cfg` may be NULL. */
audit_sampler *audit_sampler_new(const audit_sampler_config *cfg, threat_signal *signals);
void audit_sampler_free(audit_sampler *s);

/* Decides for one activation of a key of `group` (whose record gave
 * `policy`) from `client_address`, and counts the decision. Thread-safe. */
audit_decision audit_sampler_decide(audit_sampler *s, uint32_t group, const group_policy *policy,
                                    const char *client_address);

/* "base-rate", "threat-group", "threat-address", "first-activation", "none":
 * the audit.v1.AuditRecord.sample_reason values. */
const char *audit_reason_name(audit_reason r);
const char *audit_sample_mode_name(audit_sample_mode m);

#endif
