/* activate_volume.c -- the volume way (see activate_volume.h).
 *
 * The order in memory (order_cache.h) decides what can be decided without
 * Redis: dates, retirement and platform are refused before the script, so
 * a closed order costs no round trip. volume.lua decides the rest and is
 * authoritative: it reads the order's terms itself and returns the order's
 * version, and a cache that is behind is reloaded before the license is
 * signed with its terms. Its statuses that mean what policy.lua's mean
 * (rate limited, revoked, no such license, lapsed lease, wrong place key,
 * Redis away, full outbox) become policy statuses and are answered as for
 * retail keys; the others are answered here, with the error-reasons of
 * activation.proto. */
#include "activate_volume.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "license_grant.h"
#include "log.h"
#include "order_cache.h"
#include "order_gauges.h"
#include "rate_hold.h"

static void copy(char *dst, size_t n, const char *src) { snprintf(dst, n, "%s", src ? src : ""); }

void volume_ask_from(volume_ask *v, const Activation__V1__ActivateRequest *rq, const char *ip) {
    copy(v->hostname, sizeof v->hostname, rq->hostname);
    copy(v->os, sizeof v->os, rq->os);
    copy(v->arch, sizeof v->arch, rq->arch);
    copy(v->host_serial, sizeof v->host_serial, rq->host_serial);
    copy(v->ip, sizeof v->ip, ip);
    v->n_macs = rq->n_mac_addresses < MACS_MAX ? rq->n_mac_addresses : MACS_MAX;
    for (size_t i = 0; i < v->n_macs; i++) copy(v->macs[i], sizeof v->macs[i], rq->mac_addresses[i]);
    v->n_tokens = component_tokens(rq, v->tokens);
}

bool volume_key_accepted(const order_record *o, const char *product_key) {
    char canonical[PK_TEXT_LEN + 1];
    pk_error err;
    const char *text = product_key ? product_key : "";
    return pk_normalize(text, strlen(text), canonical, &err) == PK_OK && order_key_accepted(o, canonical);
}

/* ---- the order, in memory ----------------------------------------------------------- */

/* An entry of os_versions or architectures names the request's text: the
 * same text (either case), or its beginning followed by a space, '(' or
 * '/' ("Debian GNU/Linux 12" covers "Debian GNU/Linux 12 (bookworm)"). */
static bool listed(const char (*list)[ORDER_TEXT_BYTES], size_t n, const char *text) {
    if (n == 0) return true;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(list[i]);
        if (len && strncasecmp(list[i], text, len) == 0 && strchr(" (/", text[len]) != NULL) return true;
    }
    return false;
}

/* Why the order takes no activation now, or REFUSED_N when it does. */
static refusal order_closed(const order_record *o, const volume_ask *ask, int64_t now) {
    if (o->retired) return REFUSED_ORDER_RETIRED;
    if (now < o->valid_from) return REFUSED_ORDER_NOT_STARTED;
    bool continues = o->mode == SEAT_MODE_UNLIMITED && o->after_end == AFTER_END_CONTINUE_COUNTED;
    if (o->valid_until && now >= o->valid_until && !continues) return REFUSED_ORDER_ENDED;
    if (o->mode != SEAT_MODE_VENDOR && (!listed(o->os_versions, o->n_os_versions, ask->os) ||
                                        !listed(o->architectures, o->n_architectures, ask->arch)))
        return REFUSED_PLATFORM;
    return REFUSED_N;
}

/* The facts the order collects, as the JSON object the machine table keeps
 * (malloc'd), or NULL when it collects none. */
static char *facts_json(const order_record *o, const volume_ask *ask) {
    if (!o->collect_facts) return NULL;
    json_t *j = json_object();
    if (!j) return NULL;
    unsigned c = o->collect_facts;
    if (c & ORDER_FACT_HOSTNAME) json_object_set_new(j, "hostname", json_string(ask->hostname));
    if (c & ORDER_FACT_IP) json_object_set_new(j, "ip", json_string(ask->ip));
    if (c & ORDER_FACT_HOST_SERIAL) json_object_set_new(j, "host_serial", json_string(ask->host_serial));
    if (c & ORDER_FACT_OS) json_object_set_new(j, "os", json_string(ask->os));
    if (c & ORDER_FACT_ARCH) json_object_set_new(j, "arch", json_string(ask->arch));
    if (c & ORDER_FACT_MAC) {
        json_t *macs = json_array();
        for (size_t i = 0; macs && i < ask->n_macs; i++) json_array_append_new(macs, json_string(ask->macs[i]));
        json_object_set_new(j, "mac", macs);
    }
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return text;
}

/* The script saw another version of the order: the cache's copy is behind
 * (or ahead); read it again. False when that fails. */
static bool order_current(worker *w, const order_record **o, uint64_t version) {
    if (version == 0 || version == (*o)->version) return true;
    char serial[ORDER_SERIAL_LEN + 1];
    snprintf(serial, sizeof serial, "%s", (*o)->serial); /* *o is invalid once the cache reloads */
    return order_cache_check_version(w->orders, serial, version, o) == ORDER_FOUND;
}

static void status_fill(Activation__V1__VolumeStatus *vs, const order_record *o, const volume_result *r) {
    Activation__V1__VolumeStatus init = ACTIVATION__V1__VOLUME_STATUS__INIT;
    *vs = init;
    vs->order_serial = (char *)o->serial;
    vs->order_revision = o->revision;
    vs->mode = (char *)seat_mode_name(o->mode);
    vs->activation_count = r->count;
    vs->threshold = o->threshold;
    vs->pending = (Activation__V1__VolumeStatus__Pending)r->pending;
    vs->check_in_at = r->check_in_at;
    vs->deactivation = (Activation__V1__VolumeStatus__Deactivation)r->deactivation;
    vs->seats = o->seats;
    vs->seats_used = r->seats_used;
}

/* ---- refusals ---------------------------------------------------------------------- */

/* The policy status with the same meaning, or -1 when only volume keys have it. */
static int as_policy_status(volume_status s) {
    switch (s) {
    case VOLUME_RATE_LIMITED: return POLICY_RATE_LIMITED;
    case VOLUME_REVOKED: return POLICY_REVOKED;
    case VOLUME_NOT_FOUND: return POLICY_NOT_FOUND;
    case VOLUME_EXPIRED: return POLICY_EXPIRED;
    case VOLUME_WRONG_KEY: return POLICY_WRONG_KEY;
    case VOLUME_OUTBOX_FULL: return POLICY_OUTBOX_FULL;
    case VOLUME_UNAVAILABLE:
    case VOLUME_UNKNOWN_ORDER: return POLICY_UNAVAILABLE;
    default: return -1;
    }
}

/* The script's answer as policy_activate/policy_renew would give it. */
static void as_policy(const volume_result *r, policy_status status, uint64_t version, policy_result *p) {
    memset(p, 0, sizeof *p);
    p->status = status;
    p->version = version;
    p->count = r->count;
    p->now = r->now;
    p->expires_at = r->expires_at;
    p->renew_after = r->renew_after;
    memcpy(p->random, r->random, sizeof p->random);
    p->again = r->again;
    p->audited = r->audited;
    p->unaudited = r->unaudited;
    p->rebound = r->rebound; /* activate.c logs and counts it as for retail keys */
    p->shared = r->rebound_shared;
    memcpy(p->was, r->rebound_from, sizeof p->was);
    p->retry_after_s = r->retry_after_s;
    p->scope = "address";
    p->redis_error = r->redis_error;
    snprintf(p->error, sizeof p->error, "%s",
             r->status == VOLUME_UNKNOWN_ORDER ? "volume.lua: the order is no longer in the store" : r->error);
}

static refusal refusal_of(volume_status s) {
    switch (s) {
    case VOLUME_NO_SEAT: return REFUSED_NO_SEAT;
    case VOLUME_NOT_STARTED: return REFUSED_ORDER_NOT_STARTED;
    case VOLUME_ENDED:
    case VOLUME_MACHINE_ENDED: return REFUSED_ORDER_ENDED;
    case VOLUME_RETIRED: return REFUSED_ORDER_RETIRED;
    case VOLUME_DEACTIVATED: return REFUSED_DEACTIVATED;
    default: return REFUSED_INTERNAL;
    }
}

/* Status, message and error-reason of a refusal only volume keys have. */
static void reply_refusal(rpc_reply *reply, refusal why, const order_record *o, const volume_result *r) {
    switch (why) {
    case REFUSED_NO_SEAT:
        reply->retry_after_s = r ? r->retry_after_s : 0; /* a concurrent order: when the first seat frees */
        rpc_reply_error(reply, GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "every seat of order %s is in use (%u of %u); deactivate a machine first%s", o->serial,
                        r ? r->seats_used : o->seats, o->seats, reply->retry_after_s ? ", or retry later" : "");
        break;
    case REFUSED_ORDER_NOT_STARTED:
        rpc_reply_error(reply, GRPC_STATUS_FAILED_PRECONDITION, "order %s is not valid yet", o->serial);
        reply->reason = "ORDER_NOT_STARTED";
        break;
    case REFUSED_ORDER_ENDED:
        rpc_reply_error(reply, GRPC_STATUS_FAILED_PRECONDITION,
                        r && r->status == VOLUME_MACHINE_ENDED ? "this machine's validity under order %s has ended"
                                                               : "order %s has ended",
                        o->serial);
        reply->reason = "ORDER_ENDED";
        break;
    case REFUSED_ORDER_RETIRED:
        rpc_reply_error(reply, GRPC_STATUS_FAILED_PRECONDITION, "order %s has been retired", o->serial);
        reply->reason = "ORDER_RETIRED";
        break;
    case REFUSED_PLATFORM:
        rpc_reply_error(reply, GRPC_STATUS_FAILED_PRECONDITION,
                        "order %s does not cover this OS version or architecture (os, arch)", o->serial);
        reply->reason = "PLATFORM_NOT_ALLOWED";
        break;
    case REFUSED_DEACTIVATED:
        rpc_reply_error(reply, GRPC_STATUS_FAILED_PRECONDITION,
                        "this machine was deactivated under order %s; remove its license", o->serial);
        reply->reason = "DEACTIVATED";
        break;
    default: rpc_reply_error(reply, GRPC_STATUS_INTERNAL, "unexpected volume result"); break;
    }
}

/* A refusal only volume keys have, counted in `family` (NULL: nowhere) and logged. */
static void refuse(worker *w, rpc_ctx *ctx, rpc_reply *reply, metric *const *family, const char *event, refusal why,
                   const order_record *o, const volume_result *r, const pk_fields *key) {
    reply_refusal(reply, why, o, r);
    if (family && family[why]) metric_inc(family[why]);
    log_info(event, LOG_S("reason", r ? volume_status_name(r->status) : "order_closed"), LOG_S("order", o->serial),
             LOG_U("group", key->group), LOG_U("serial", key->serial), LOG_S("peer", rpc_ctx_peer(ctx)), LOG_END);
}

/* The order's gauges from the script's counters (not for answers without them). */
static void note_counts(worker *w, const order_record *o, const volume_result *r) {
    if (r->status != VOLUME_RATE_LIMITED && r->status != VOLUME_UNAVAILABLE && r->status != VOLUME_UNKNOWN_ORDER)
        order_gauges_note(w->app->order_gauges, o, r->seats_used, r->count, r->changes);
}

/* After the script: the order the answer belongs to, read again when the
 * cache is behind. False with *p UNAVAILABLE when the order is gone from
 * the store (the cache's next refresh drops it) or cannot be read; then
 * *o must not be used any more. */
static bool settle_order(worker *w, const order_record **o, const volume_result *r, policy_result *p) {
    if (r->status == VOLUME_RATE_LIMITED || r->status == VOLUME_UNAVAILABLE) return true;
    if (r->status != VOLUME_UNKNOWN_ORDER && order_current(w, o, r->version)) return true;
    as_policy(r, POLICY_UNAVAILABLE, 0, p);
    if (r->status != VOLUME_UNKNOWN_ORDER) snprintf(p->error, sizeof p->error, "order record reload failed");
    return false;
}

/* ---- Activate ---------------------------------------------------------------------- */

/* A pending answer: no license, the VolumeStatus says why and when to ask again. */
static void answer_pending(worker *w, rpc_ctx *ctx, const order_record *o, const volume_result *r, const pk_fields *key,
                           rpc_reply *reply) {
    Activation__V1__ActivateResponse resp = ACTIVATION__V1__ACTIVATE_RESPONSE__INIT;
    Activation__V1__VolumeStatus vs;
    status_fill(&vs, o, r);
    resp.volume = &vs;
    resp.activation_count = r->count;
    if (rpc_reply_message(reply, &resp.base) != 0) return;
    bool threshold = r->pending == VOLUME_PENDING_THRESHOLD;
    metric_inc(w->app->m.volume_pending[threshold ? 0 : 1]);
    log_info("activate.pending", LOG_S("order", o->serial), LOG_S("why", threshold ? "threshold" : "not_designated"),
             LOG_U("count", r->count), LOG_U("threshold", o->threshold), LOG_I("check_in_at", r->check_in_at),
             LOG_U("group", key->group), LOG_U("serial", key->serial), LOG_S("peer", rpc_ctx_peer(ctx)), LOG_END);
}

/* The order is not in this worker's cache (gone since the call began; a
 * pool thread's cache may lag): Redis-away, answered the retail way. */
static void not_cached(policy_result *p, uint32_t group) {
    memset(p, 0, sizeof *p);
    p->status = POLICY_UNAVAILABLE;
    snprintf(p->error, sizeof p->error, "order of group %u: not in this worker's cache", (unsigned)group);
}

volume_seat_step volume_seat_begin(worker *w, rpc_ctx *ctx, volume_seat *s, policy_result *p, rpc_reply *reply) {
    s->facts = NULL;
    const order_record *o = NULL;
    if (order_cache_for_group(w->orders, s->key->group, &o) != ORDER_FOUND) {
        not_cached(p, s->key->group);
        return VOLUME_SEAT_DECIDED;
    }
    /* 3. The order's dates, state and platform, in memory. */
    refusal closed = order_closed(o, s->ask, (int64_t)time(NULL));
    if (closed != REFUSED_N) {
        refuse(w, ctx, reply, w->app->m.refused, "activate.refused", closed, o, NULL, s->key);
        return VOLUME_SEAT_ANSWERED;
    }
    snprintf(s->vg.serial, sizeof s->vg.serial, "%s", o->serial);
    s->on_premises = o->on_premises;
    s->facts = facts_json(o, s->ask);
    return VOLUME_SEAT_SCRIPT;
}

/* 4. The script's arguments (`macs` holds the pointers m refers to). */
static void seat_args(worker *w, const volume_seat *s, const char *macs[MACS_MAX], volume_caller *c,
                      volume_machine *m) {
    const volume_ask *ask = s->ask;
    for (size_t i = 0; i < ask->n_macs; i++) macs[i] = ask->macs[i];
    *m = (volume_machine){.machine_id = s->machine_id,
                          .holder = s->holder,
                          .facts_json = s->facts,
                          .hostname = ask->hostname,
                          .os = ask->os,
                          .host_serial = ask->host_serial,
                          .macs = macs,
                          .n_macs = ask->n_macs,
                          .tokens = ask->tokens,
                          .n_tokens = ask->n_tokens,
                          .audit = s->on_premises ? NULL : s->outbox};
    *c = (volume_caller){.group = s->key->group,
                         .serial = s->key->serial,
                         .address_key = s->address_key,
                         .address_script = policy_address_script(w->script),
                         .revoked = s->revoked,
                         .limits = &w->app->limits,
                         .ip = ask->ip};
}

void volume_seat_script(worker *w, volume_seat *s) {
    const char *macs[MACS_MAX];
    volume_caller c;
    volume_machine m;
    seat_args(w, s, macs, &c, &m);
    volume_activate(w->redis, w->volume_script, s->vg.serial, &c, &m, s->random, &s->vg.r);
}

int volume_seat_append(worker *w, volume_seat *s) {
    const char *macs[MACS_MAX];
    volume_caller c;
    volume_machine m;
    seat_args(w, s, macs, &c, &m);
    return volume_activate_append(w->redis, w->volume_script, s->vg.serial, &c, &m, s->random);
}

bool volume_seat_read(worker *w, volume_seat *s) { return volume_read(w->redis, "activate", &s->vg.r); }

bool volume_seat_end(worker *w, rpc_ctx *ctx, volume_seat *s, policy_result *p, rpc_reply *reply) {
    volume_seat_free(s);
    const volume_result *r = &s->vg.r;
    const order_record *o = NULL;
    if (order_cache_get(w->orders, s->vg.serial, &o) != ORDER_FOUND) {
        not_cached(p, s->key->group);
        return true;
    }
    if (!settle_order(w, &o, r, p)) return true; /* answered UNAVAILABLE the retail way */
    note_counts(w, o, r);
    int shared = r->status == VOLUME_OK ? POLICY_OK : as_policy_status(r->status);
    if (shared < 0) {
        refuse(w, ctx, reply, w->app->m.refused, "activate.refused", refusal_of(r->status), o, r, s->key);
        return false;
    }
    if (r->status == VOLUME_OK && r->pending != VOLUME_PENDING_NONE) {
        answer_pending(w, ctx, o, r, s->key, reply);
        return false;
    }
    as_policy(r, (policy_status)shared, r->version, p);
    s->vg.order = o;
    status_fill(&s->vg.status, o, r);
    return true;
}

bool volume_seat_terms(worker *w, volume_seat *s, const char *license_id, const policy_result *p, license_terms *t) {
    const order_record *o = NULL;
    if (order_cache_held(w->orders, s->vg.serial, &o) != ORDER_FOUND) return false;
    s->vg.order = o; /* another call's reload may have replaced the record */
    status_fill(&s->vg.status, o, &s->vg.r);
    license_grant_order_terms(o, license_id, s->machine_id, s->key->group, s->key->serial, p, s->vg.features, t);
    return true;
}

void volume_seat_free(volume_seat *s) {
    free(s->facts);
    s->facts = NULL;
}

bool volume_activate_seat(worker *w, rpc_ctx *ctx, volume_seat *s, policy_result *p, rpc_reply *reply) {
    volume_seat_step step = volume_seat_begin(w, ctx, s, p, reply);
    if (step != VOLUME_SEAT_SCRIPT) return step == VOLUME_SEAT_DECIDED;
    volume_seat_script(w, s);
    return volume_seat_end(w, ctx, s, p, reply);
}

int volume_activate_sign(worker *w, const volume_grant *vg, const char *license_id, const uint8_t *machine_id,
                         const pk_fields *key, const policy_result *p, signed_license *out) {
    return license_grant_sign_order(w->signer, vg->order, license_id, machine_id, key->group, key->serial, p, out);
}

/* ---- Renew, Deactivate ---------------------------------------------------------------- */

/* A refusal the retail code knows, answered, counted and logged as renew.c does. */
static void refuse_as_policy(worker *w, rpc_reply *reply, metric *const *family, refusal why, const char *event,
                             const policy_result *p, const char *order, uint32_t group, uint32_t serial) {
    reply_policy_refusal(reply, p);
    note_policy_refusal(&w->app->m, p);
    if (family && family[why]) metric_inc(family[why]);
    bool routine = p->status == POLICY_RATE_LIMITED;
    log_emit(p->status == POLICY_UNAVAILABLE ? LOG_LEVEL_WARN
             : routine                       ? LOG_LEVEL_DEBUG
                                             : LOG_LEVEL_INFO,
             event, LOG_S("reason", p->status == POLICY_UNAVAILABLE ? p->error : policy_status_name(p->status)),
             LOG_S("order", order), LOG_U("group", group), LOG_U("serial", serial), LOG_END);
}

static refusal retail_refusal(policy_status s) {
    switch (s) {
    case POLICY_RATE_LIMITED: return REFUSED_RATE_LIMITED;
    case POLICY_REVOKED: return REFUSED_REVOKED;
    case POLICY_NOT_FOUND: return REFUSED_NOT_FOUND;
    case POLICY_EXPIRED: return REFUSED_LEASE_EXPIRED;
    case POLICY_WRONG_KEY: return REFUSED_BAD_PROOF;
    case POLICY_UNAVAILABLE: return REFUSED_UNAVAILABLE;
    default: return REFUSED_INTERNAL;
    }
}

/* A script answer other than OK for Renew or Deactivate: answered. */
static void refuse_by_license(worker *w, rpc_ctx *ctx, rpc_reply *reply, metric *const *family, const char *event,
                              const order_record *o, const volume_result *r, uint32_t group, uint32_t serial,
                              const caller *who) {
    int shared = as_policy_status(r->status);
    if (shared < 0) {
        pk_fields key = {.group = group, .serial = serial};
        refuse(w, ctx, reply, family, event, refusal_of(r->status), o, r, &key);
        return;
    }
    policy_result p;
    as_policy(r, (policy_status)shared, 0, &p);
    rate_hold_note(w->holds, who->bucket, group, &p);
    refuse_as_policy(w, reply, family, retail_refusal(p.status), event, &p, o->serial, group, serial);
}

/* After the script of a renew or deactivate: the order settled, its
 * gauges, and the refusals. False when the reply is set (a refusal);
 * `order` names the order for the log once *o may be gone. */
static bool license_checked(worker *w, rpc_ctx *ctx, bool renewing, const char *order, const order_record **o,
                            uint32_t group, uint32_t serial, const caller *who, const volume_result *r,
                            rpc_reply *reply) {
    metric *const *family = renewing ? w->app->m.renew_refused : NULL;
    const char *event = renewing ? "renew.refused" : "deactivate.refused";
    policy_result p;
    if (!settle_order(w, o, r, &p)) {
        refuse_as_policy(w, reply, family, REFUSED_UNAVAILABLE, event, &p, order, group, serial);
        return false;
    }
    note_counts(w, *o, r);
    if (r->status == VOLUME_OK) return true;
    refuse_by_license(w, ctx, reply, family, event, *o, r, group, serial, who);
    return false;
}

void volume_renewal_begin(volume_renewal *v, const order_record *o) {
    snprintf(v->vg.serial, sizeof v->vg.serial, "%s", o->serial);
}

static volume_caller renewal_caller(worker *w, const volume_renewal *v) {
    return (volume_caller){.group = v->group,
                           .serial = v->serial,
                           .address_key = v->address_taken ? NULL : v->who->bucket,
                           .address_script = policy_address_script(w->script),
                           .revoked = v->revoked,
                           .limits = &w->app->limits,
                           .ip = v->who->ip};
}

void volume_renewal_script(worker *w, volume_renewal *v) {
    volume_caller c = renewal_caller(w, v);
    volume_renew(w->redis, w->volume_script, v->vg.serial, &c, v->machine_id, v->holder, v->random, &v->vg.r);
}

int volume_renewal_append(worker *w, volume_renewal *v) {
    volume_caller c = renewal_caller(w, v);
    return volume_renew_append(w->redis, w->volume_script, v->vg.serial, &c, v->machine_id, v->holder, v->random);
}

bool volume_renewal_read(worker *w, volume_renewal *v) { return volume_read(w->redis, "renew", &v->vg.r); }

bool volume_renewal_check(worker *w, rpc_ctx *ctx, volume_renewal *v, rpc_reply *reply) {
    const order_record *o = NULL;
    if (order_cache_get(w->orders, v->vg.serial, &o) != ORDER_FOUND) {
        not_cached(&v->p, v->group);
        refuse_as_policy(w, reply, w->app->m.renew_refused, REFUSED_UNAVAILABLE, "renew.refused", &v->p, v->vg.serial,
                         v->group, v->serial);
        return false;
    }
    if (!license_checked(w, ctx, true, v->vg.serial, &o, v->group, v->serial, v->who, &v->vg.r, reply)) return false;
    as_policy(&v->vg.r, POLICY_OK, 0, &v->p);
    v->vg.order = o;
    return true;
}

bool volume_renewal_terms(worker *w, volume_renewal *v, license_terms *t) {
    const order_record *o = NULL;
    if (order_cache_held(w->orders, v->vg.serial, &o) != ORDER_FOUND) return false;
    v->vg.order = o; /* another call's reload may have replaced the record */
    status_fill(&v->vg.status, o, &v->vg.r);
    license_grant_order_terms(o, v->license_id, v->machine_id, v->group, v->serial, &v->p, v->vg.features, t);
    return true;
}

void volume_renewal_answer(worker *w, rpc_ctx *ctx, volume_renewal *v, signed_license *sl, rpc_reply *reply) {
    if (!sl) {
        rpc_reply_error(reply, GRPC_STATUS_INTERNAL, "license signing failed");
        metric_inc(w->app->m.renew_refused[REFUSED_INTERNAL]);
        return;
    }
    const order_record *o = v->vg.order;
    Activation__V1__RenewResponse resp = ACTIVATION__V1__RENEW_RESPONSE__INIT;
    LICENSE_GRANT_FILL(&resp, sl, w->signer, &v->p);
    VOLUME_GRANT_FILL(&resp, &v->vg, o->on_premises);
    if (rpc_reply_message(reply, &resp.base) == 0)
        log_info("renew.granted", LOG_S("order", o->serial), LOG_U("group", v->group), LOG_U("serial", v->serial),
                 LOG_I("expires_at", v->p.expires_at), LOG_U("seats_used", v->vg.r.seats_used),
                 LOG_S("peer", rpc_ctx_peer(ctx)), LOG_END);
}

void volume_deactivating_begin(volume_deactivating *v, const order_record *o) {
    snprintf(v->order, sizeof v->order, "%s", o->serial);
}

static volume_caller deactivating_caller(worker *w, const volume_deactivating *v) {
    return (volume_caller){.group = v->group,
                           .serial = v->serial,
                           .address_key = v->address_taken ? NULL : v->who->bucket,
                           .address_script = policy_address_script(w->script),
                           .limits = &w->app->limits,
                           .ip = v->who->ip};
}

void volume_deactivating_script(worker *w, volume_deactivating *v) {
    volume_caller c = deactivating_caller(w, v);
    volume_deactivate(w->redis, w->volume_script, v->order, &c, v->machine_id, v->holder, v->random, &v->r);
}

int volume_deactivating_append(worker *w, volume_deactivating *v) {
    volume_caller c = deactivating_caller(w, v);
    return volume_deactivate_append(w->redis, w->volume_script, v->order, &c, v->machine_id, v->holder, v->random);
}

bool volume_deactivating_read(worker *w, volume_deactivating *v) { return volume_read(w->redis, "deactivate", &v->r); }

void volume_deactivating_answer(worker *w, rpc_ctx *ctx, volume_deactivating *v, rpc_reply *reply) {
    const order_record *o = NULL;
    if (order_cache_held(w->orders, v->order, &o) != ORDER_FOUND) { /* another call's reload found it gone */
        policy_result p;
        not_cached(&p, v->group);
        refuse_as_policy(w, reply, NULL, REFUSED_UNAVAILABLE, "deactivate.refused", &p, v->order, v->group, v->serial);
        return;
    }
    const volume_result *r = &v->r;
    if (!license_checked(w, ctx, false, v->order, &o, v->group, v->serial, v->who, r, reply)) return;
    Activation__V1__DeactivateResponse resp = ACTIVATION__V1__DEACTIVATE_RESPONSE__INIT;
    Activation__V1__VolumeStatus vs;
    status_fill(&vs, o, r);
    resp.activation_count = r->count;
    resp.volume = &vs;
    bool waiting = r->deactivation == VOLUME_DEACTIVATION_AWAITING;
    if (rpc_reply_message(reply, &resp.base) == 0)
        log_info(waiting ? "deactivate.requested" : "deactivate.done", LOG_S("order", o->serial),
                 LOG_U("group", v->group), LOG_U("serial", v->serial), LOG_U("count", r->count),
                 LOG_U("seats_used", r->seats_used), LOG_S("peer", rpc_ctx_peer(ctx)), LOG_END);
}
