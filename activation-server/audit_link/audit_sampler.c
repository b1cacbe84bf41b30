/* audit_sampler.c -- sampling decisions (see audit_sampler.h).
 *
 * The draw uses a per-thread xorshift64* generator seeded from OpenSSL once
 * per thread: sampling needs to be unpredictable to a client, not
 * cryptographic, and must not take a lock or a syscall per request.
 *
 * Per-group rate series live in a small fixed open-addressing table. A
 * group gets one the first time it alerts (registration takes a mutex, a
 * cold path bounded by max_group_series); afterwards every decision for it
 * stores its effective rate, so the gauge falls back to the base rate when
 * the alert ends. Alert onsets and ends are logged once per transition. */
#include "audit_sampler.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

typedef struct group_series {
    _Atomic uint32_t key;            /* group + 1 once published; 0 = empty */
    metric *rate;                    /* pa_audit_group_sample_rate_ppm{group} */
    atomic_bool alerting;            /* last state seen, for transition logs */
} group_series;

struct audit_sampler {
    audit_sampler_config cfg;        /* defaults applied */
    threat_signal *signals;          /* borrowed */
    metric *decisions[3][AUDIT_REASON_COUNT]; /* by mode and reason; NULL for impossible pairs */
    metric *alerts_group;            /* pa_audit_threat_alerts_total{kind="group"} */
    metric *alerts_address;          /* pa_audit_threat_alerts_total{kind="address"} */
    pthread_mutex_t series_lock;     /* guards registration only */
    size_t series_cap;               /* power of two >= 2 * max_group_series */
    size_t series_used;              /* registered series (under series_lock) */
    group_series *series;
    _Atomic int64_t address_log_ms;  /* last address-alert log line, for rate limiting */
};

const char *audit_reason_name(audit_reason r) {
    switch (r) {
    case AUDIT_REASON_BASE_RATE: return "base-rate";
    case AUDIT_REASON_THREAT_GROUP: return "threat-group";
    case AUDIT_REASON_THREAT_ADDRESS: return "threat-address";
    case AUDIT_REASON_FIRST_ACTIVATION: return "first-activation";
    default: return "none";
    }
}

const char *audit_sample_mode_name(audit_sample_mode m) {
    return m == AUDIT_SAMPLE_ALWAYS ? "audit" : m == AUDIT_SAMPLE_IF_FIRST ? "audit-if-first" : "skip";
}

static void register_decision(audit_sampler *s, audit_sample_mode m, audit_reason r) {
    char labels[96];
    snprintf(labels, sizeof labels, "mode=\"%s\",reason=\"%s\"", audit_sample_mode_name(m), audit_reason_name(r));
    s->decisions[m][r] = metric_counter("pa_audit_decisions_total",
                                        "Audit sampling decisions by mode and reason", labels);
}

audit_sampler *audit_sampler_new(const audit_sampler_config *cfg, threat_signal *signals) {
    audit_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (cfg) s->cfg = *cfg;
    if (s->cfg.threat_group_rate_ppm == 0 || s->cfg.threat_group_rate_ppm > AUDIT_RATE_ALL)
        s->cfg.threat_group_rate_ppm = AUDIT_RATE_ALL;
    if (s->cfg.threat_address_rate_ppm == 0 || s->cfg.threat_address_rate_ppm > AUDIT_RATE_ALL)
        s->cfg.threat_address_rate_ppm = AUDIT_RATE_ALL;
    if (s->cfg.max_group_series == 0) s->cfg.max_group_series = 64;
    s->signals = signals;
    for (s->series_cap = 4; s->series_cap < 2 * s->cfg.max_group_series; s->series_cap *= 2) {
    }
    s->series = calloc(s->series_cap, sizeof *s->series);
    if (!s->series || pthread_mutex_init(&s->series_lock, NULL) != 0) {
        free(s->series);
        free(s);
        return NULL;
    }
    register_decision(s, AUDIT_SAMPLE_NONE, AUDIT_REASON_NONE);
    for (audit_reason r = AUDIT_REASON_BASE_RATE; r <= AUDIT_REASON_THREAT_ADDRESS; r++)
        register_decision(s, AUDIT_SAMPLE_ALWAYS, r);
    register_decision(s, AUDIT_SAMPLE_IF_FIRST, AUDIT_REASON_FIRST_ACTIVATION);
    s->alerts_group = metric_counter("pa_audit_threat_alerts_total",
                                     "Requests sampled because a threat signal raised the rate", "kind=\"group\"");
    s->alerts_address = metric_counter("pa_audit_threat_alerts_total",
                                       "Requests sampled because a threat signal raised the rate", "kind=\"address\"");
    return s;
}

void audit_sampler_free(audit_sampler *s) {
    if (!s) return;
    pthread_mutex_destroy(&s->series_lock);
    free(s->series);
    free(s);
}

/* xorshift64* per thread, seeded once from OpenSSL (time as a fallback). */
static uint32_t draw_ppm(void) {
    static _Thread_local uint64_t state;
    if (state == 0) {
        if (RAND_bytes((unsigned char *)&state, sizeof state) != 1 || state == 0)
            state = (uint64_t)time(NULL) * UINT64_C(0x9e3779b97f4a7c15) | 1;
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return (uint32_t)(((state * UINT64_C(0x2545f4914f6cdd1d)) >> 32) % AUDIT_RATE_ALL);
}

static group_series *series_find(audit_sampler *s, uint32_t group) {
    uint32_t key = group + 1;
    for (size_t i = 0, h = (group * 2654435761u) & (s->series_cap - 1); i < s->series_cap;
         i++, h = (h + 1) & (s->series_cap - 1)) {
        uint32_t k = atomic_load_explicit(&s->series[h].key, memory_order_acquire);
        if (k == key) return &s->series[h];
        if (k == 0) return NULL;
    }
    return NULL;
}

/* Registers a rate series for `group` (cold path); NULL when over the cap. */
static group_series *series_add(audit_sampler *s, uint32_t group) {
    pthread_mutex_lock(&s->series_lock);
    group_series *g = series_find(s, group);
    if (!g && s->series_used < s->cfg.max_group_series) {
        size_t h = (group * 2654435761u) & (s->series_cap - 1);
        while (atomic_load_explicit(&s->series[h].key, memory_order_relaxed) != 0) h = (h + 1) & (s->series_cap - 1);
        char labels[32];
        snprintf(labels, sizeof labels, "group=\"%u\"", group);
        g = &s->series[h];
        g->rate = metric_gauge("pa_audit_group_sample_rate_ppm",
                               "Effective audit sample rate of groups that have been under a threat alert",
                               labels);
        atomic_store_explicit(&g->key, group + 1, memory_order_release);
        s->series_used++;
    }
    pthread_mutex_unlock(&s->series_lock);
    return g;
}

static void note_group(audit_sampler *s, uint32_t group, bool alert, uint32_t rate) {
    group_series *g = series_find(s, group);
    if (!g && alert) g = series_add(s, group);
    if (!g) return;
    metric_set(g->rate, rate);
    if (atomic_exchange(&g->alerting, alert) != alert) {
        uint32_t req, fail;
        threat_group_counts(s->signals, group, &req, &fail);
        log_warn(alert ? "audit.threat.group.start" : "audit.threat.group.end", LOG_U("group", group),
                 LOG_U("requests", req), LOG_U("failures", fail), LOG_U("rate_ppm", rate), LOG_END);
    }
}

static void note_address(audit_sampler *s, const char *address) {
    int64_t now = pa_mono_ms();
    int64_t last = atomic_load_explicit(&s->address_log_ms, memory_order_relaxed);
    if (now - last < 1000 || !atomic_compare_exchange_strong(&s->address_log_ms, &last, now)) return;
    log_warn("audit.threat.address", LOG_S("address", address),
             LOG_U("requests", threat_address_requests(s->signals, address)), LOG_END);
}

audit_decision audit_sampler_decide(audit_sampler *s, uint32_t group, const group_policy *policy,
                                    const char *client_address) {
    audit_decision d = {AUDIT_SAMPLE_NONE, AUDIT_REASON_NONE, 0};
    uint32_t rate = policy->audit_rate_ppm > AUDIT_RATE_ALL ? AUDIT_RATE_ALL : policy->audit_rate_ppm;
    audit_reason why = AUDIT_REASON_BASE_RATE;
    bool group_alert = threat_group_alert(s->signals, group);
    if (group_alert && s->cfg.threat_group_rate_ppm > rate)
        rate = s->cfg.threat_group_rate_ppm, why = AUDIT_REASON_THREAT_GROUP;
    if (client_address && threat_address_alert(s->signals, client_address)) {
        note_address(s, client_address);
        if (s->cfg.threat_address_rate_ppm > rate)
            rate = s->cfg.threat_address_rate_ppm, why = AUDIT_REASON_THREAT_ADDRESS;
    }
    note_group(s, group, group_alert, rate);
    d.rate_ppm = rate;
    if (rate > 0 && draw_ppm() < rate) {
        d.mode = AUDIT_SAMPLE_ALWAYS;
        d.reason = why;
        if (why == AUDIT_REASON_THREAT_GROUP) metric_inc(s->alerts_group);
        if (why == AUDIT_REASON_THREAT_ADDRESS) metric_inc(s->alerts_address);
    } else if (policy->audit_first_activation) {
        d.mode = AUDIT_SAMPLE_IF_FIRST;
        d.reason = AUDIT_REASON_FIRST_ACTIVATION;
    }
    metric_inc(s->decisions[d.mode][d.reason]);
    return d;
}
