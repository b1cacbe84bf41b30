/* renew_batch.c -- Renew calls that arrived together, answered together
 * (docs/batching.md, "Natural batching"), the way activate_batch.c answers
 * Activates.
 *
 * The calls go through the single call's stages (renew_stages.h), stage by
 * stage for all of them:
 *   1. renew_front for each: decode, license reference, rate hold, proof
 *      of the place key (checked here, without Redis), volume order. A call
 *      refused there is answered there. A refused proof stays, for its
 *      reject call (failure tokens);
 *   2. the scripts of the others (policy.lua's renew, or reject for a
 *      refused proof; volume.lua's renew for a volume key: a concurrent
 *      order's heartbeat) as ONE pipeline: every EVALSHA
 *      written, then every reply read. A NOSCRIPT reply runs again by
 *      itself once the pipeline is read (which loads the script); a broken
 *      connection fails the calls whose replies it took;
 *   3. for each: the script's refusals and the group record (a reload may
 *      replace the entry other calls point into, so every check runs before
 *      any terms are taken); then the granted calls' licenses, signed
 *      together (license_issue_batch: one signature per MERKLE_MAX_LEAVES),
 *      then the answers.
 * Refusal counts, rate holds, metrics and log lines are the single path's.
 *
 * The calls' state is allocated once per batch (one calloc of each array);
 * when that fails the calls run one by one. The batch's log lines are
 * written together at its end (log_hold). */
#include <stdlib.h>

#include "log.h"
#include "merkle.h"
#include "renew_stages.h"

/* A volume call's revocation read with the takes (volume.lua cannot read
 * the group's set on Redis Cluster): "1"/"0" into its renewal, or its
 * answer (UNAVAILABLE) set as the script's, which then does not run. */
static bool read_revoked(renew_call *c) { return !volume_revoked_read(c->w->redis, &c->vol.revoked, &c->vol.vg.r); }

/* Redis Cluster (docs/cluster.md): the waiting calls' address takes
 * first (a refused proof's with the failure cost), and volume calls'
 * revocations, in one round trip of their own. A call they refuse keeps
 * that answer (c->p; a volume call's as its script's result) and runs no
 * script; the others' scripts then run without the address bucket. */
static void take_addresses(worker *w, renew_call *c, size_t n) {
    const policy_limits *l = &w->app->limits;
    bool *asked = calloc(n ? n : 1, sizeof *asked);       /* a volume call's SISMEMBER is in the pipeline */
    bool *answered = calloc(n ? n : 1, sizeof *answered); /* ... which could not be read */
    for (size_t i = 0; i < n; i++) {
        c[i].again = c[i].waiting && policy_address_take_append(w->redis, w->script, l, c[i].pc.who.bucket,
                                                                c[i].bad_proof.pending) != 0;
        if (asked && c[i].waiting && c[i].volume)
            asked[i] = volume_revoked_append(w->redis, c[i].pc.group, c[i].pc.serial) == 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (c[i].waiting && !c[i].again) c[i].again = !policy_address_take_read(w->redis, &c[i].p);
        if (asked && asked[i] && read_revoked(&c[i]) && answered) answered[i] = true;
    }
    for (size_t i = 0; i < n; i++)
        if (c[i].again)
            policy_address_take(w->redis, w->script, l, c[i].pc.who.bucket, c[i].bad_proof.pending, &c[i].p);
    for (size_t i = 0; i < n; i++) {
        bool taken = c[i].waiting;
        bool failed = answered && answered[i];
        c[i].address_taken = taken && c[i].p.status == POLICY_OK;
        c[i].by_address = taken && (failed || !c[i].address_taken);
        if (!taken || !c[i].volume || failed) continue;
        c[i].vol.address_taken = c[i].address_taken;
        if (!c[i].address_taken) volume_result_of_take(&c[i].p, &c[i].vol.vg.r);
    }
    free(asked);
    free(answered);
}

static bool scripted(const renew_call *c) { return c->waiting && !c->by_address; }

/* Stage 2: the waiting calls' scripts in one round trip (two on Redis
 * Cluster: the address takes, then the scripts). */
static void run_scripts(worker *w, renew_call *c, size_t n) {
    if (policy_split(w->redis)) take_addresses(w, c, n);
    for (size_t i = 0; i < n; i++) /* a call that cannot even be written runs by itself below */
        c[i].again = scripted(&c[i]) && renew_append(&c[i]) != 0;
    for (size_t i = 0; i < n; i++)
        if (scripted(&c[i]) && !c[i].again) c[i].again = !renew_read(&c[i]);
    for (size_t i = 0; i < n; i++)
        if (c[i].again) renew_script(&c[i]); /* NOSCRIPT: loads the script; or fails as UNAVAILABLE */
}

/* Stage 3: refusals and group records first, then every granted license
 * signed in trees of up to MERKLE_MAX_LEAVES, then the answers. */
static void sign_and_answer(worker *w, renew_call *c, size_t n, license_terms *terms, signed_license *licenses,
                            renew_call **granted) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) c[i].waiting = c[i].waiting && renew_back_check(&c[i]);
    for (size_t i = 0; i < n; i++) {
        if (!c[i].waiting) continue;
        if (renew_terms(&c[i], &terms[k])) granted[k++] = &c[i];
        else renew_answer(&c[i], NULL);
    }
    for (size_t off = 0; off < k; off += MERKLE_MAX_LEAVES) {
        size_t m = k - off < MERKLE_MAX_LEAVES ? k - off : MERKLE_MAX_LEAVES;
        bool ok = license_issue_batch(w->signer, &terms[off], m, &licenses[off]) == 0;
        for (size_t j = off; j < off + m; j++) renew_answer(granted[j], ok ? &licenses[j] : NULL);
    }
}

/* The stages for calls c[0..n), which renew_front has not seen yet. */
static void run_batch(worker *w, rpc_batch_call *calls, size_t n, renew_call *c, license_terms *terms,
                      signed_license *licenses, renew_call **granted) {
    size_t n_waiting = 0;
    for (size_t i = 0; i < n; i++) {
        c[i].waiting = renew_front(calls[i].ctx, calls[i].req, calls[i].req_len, calls[i].reply, &c[i]);
        n_waiting += c[i].waiting;
    }
    if (n_waiting == 1) {
        for (size_t i = 0; i < n; i++)
            if (c[i].waiting) renew_script(&c[i]); /* no pipeline for one */
    } else if (n_waiting > 1) {
        run_scripts(w, c, n);
    }
    if (n_waiting > 0) sign_and_answer(w, c, n, terms, licenses, granted);
    for (size_t i = 0; i < n; i++) renew_call_end(&c[i]);
}

void handle_renew_batch(rpc_batch_call *calls, size_t n) {
    worker *w = rpc_ctx_worker(calls[0].ctx);
    renew_call *c = calloc(n, sizeof *c);
    license_terms *terms = calloc(n, sizeof *terms);
    signed_license *licenses = calloc(n, sizeof *licenses);
    renew_call **granted = calloc(n, sizeof *granted);
    if (c && terms && licenses && granted) {
        log_hold(); /* the batch's log lines in one write */
        run_batch(w, calls, n, c, terms, licenses, granted);
        log_release();
    } else { /* no room for the batch: the calls one by one */
        for (size_t i = 0; i < n; i++) handle_renew(calls[i].ctx, calls[i].req, calls[i].req_len, calls[i].reply);
    }
    free(c);
    free(terms);
    free(licenses);
    free(granted);
}
