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

#include "address_batch.h"
#include "log.h"
#include "merkle.h"
#include "renew_stages.h"

/* The call as the batch's address takes see it (address_batch.h): a
 * refused proof's take spends the failure cost; a volume call reads its
 * key's revocation beside its take (volume.lua cannot read the group's set
 * on Redis Cluster). */
static void take_view(void *call, address_take *t) {
    renew_call *c = call;
    *t = (address_take){.bucket = c->waiting ? c->pc.who.bucket : NULL,
                        .failure = c->bad_proof.pending,
                        .p = &c->p,
                        .vr = c->volume ? &c->vol.vg.r : NULL,
                        .revoked = c->volume ? &c->vol.revoked : NULL,
                        .group = c->pc.group,
                        .serial = c->pc.serial};
}

/* What the takes settled: a call refused there keeps that answer and runs
 * no script; the others' run without the bucket. */
static void take_settled(void *call, const address_take *t) {
    renew_call *c = call;
    c->address_taken = t->bucket && t->taken;
    c->by_address = t->answered;
    if (c->volume && t->bucket && !t->answered) c->vol.address_taken = true;
}

/* Redis Cluster (docs/cluster.md): the waiting calls' address takes
 * first (a refused proof's with the failure cost), and volume calls'
 * revocations, in one round trip of their own (address_batch.h). A call
 * they refuse keeps that answer (c->p; a volume call's as its script's
 * result) and runs no script; the others' scripts then run without the
 * address bucket. */
static void take_addresses(worker *w, renew_call *c, size_t n) {
    address_batch_calls(w->redis, w->script, &w->app->limits, c, n, sizeof *c, take_view, take_settled);
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
