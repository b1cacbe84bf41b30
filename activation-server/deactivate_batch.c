/* deactivate_batch.c -- Deactivate calls that arrived together, answered
 * together (docs/batching.md, "Natural batching"), the way renew_batch.c
 * answers Renews.
 *
 * The calls go through the single call's stages (renew_stages.h), stage by
 * stage for all of them:
 *   1. deactivate_front for each: decode, license reference, rate hold,
 *      proof of the place key (checked here, without Redis), volume order.
 *      A call refused there is answered there. A refused proof stays, for
 *      its reject call (failure tokens);
 *   2. the scripts of the others (policy.lua's deactivate, or reject for a
 *      refused proof; volume.lua's deactivate for a volume key) as ONE
 *      pipeline: every EVALSHA written, then every reply read. A NOSCRIPT
 *      reply runs again by itself once the pipeline is read (which loads
 *      the script); a broken connection fails the calls whose replies it
 *      took. On Redis Cluster the address takes go first, in a round trip
 *      of their own (address_batch.h);
 *   3. for each: the answer on its script's reply.
 * Nothing is signed, and no WAIT follows (a single Deactivate has none:
 * a freed place that a failover loses is only a place still held).
 * Refusals, rate holds, metrics and log lines are the single path's.
 *
 * The calls' state is allocated once per batch; when that fails the calls
 * run one by one. The batch's log lines are written together at its end
 * (log_hold). */
#include <stdlib.h>

#include "address_batch.h"
#include "log.h"
#include "renew_stages.h"

/* The call as the batch's address takes see it (address_batch.h): a
 * refused proof's take spends the failure cost. Deactivate reads no
 * revocation. */
static void take_view(void *call, address_take *t) {
    deactivate_call *c = call;
    *t = (address_take){.bucket = c->waiting ? c->pc.who.bucket : NULL,
                        .failure = c->bad_proof.pending,
                        .p = &c->p,
                        .vr = c->volume ? &c->vol.r : NULL};
}

/* What the takes settled: a call refused there keeps that answer and runs
 * no script; the others' run without the bucket. */
static void take_settled(void *call, const address_take *t) {
    deactivate_call *c = call;
    c->address_taken = t->bucket && t->taken;
    c->by_address = t->answered;
    if (c->volume && t->bucket && !t->answered) c->vol.address_taken = true;
}

static bool scripted(const deactivate_call *c) { return c->waiting && !c->by_address; }

/* Stage 2: the waiting calls' scripts in one round trip (two on Redis
 * Cluster: the address takes, then the scripts). */
static void run_scripts(worker *w, deactivate_call *c, size_t n) {
    if (policy_split(w->redis))
        address_batch_calls(w->redis, w->script, &w->app->limits, c, n, sizeof *c, take_view, take_settled);
    for (size_t i = 0; i < n; i++) /* a call that cannot even be written runs by itself below */
        c[i].again = scripted(&c[i]) && deactivate_append(&c[i]) != 0;
    for (size_t i = 0; i < n; i++)
        if (scripted(&c[i]) && !c[i].again) c[i].again = !deactivate_read(&c[i]);
    for (size_t i = 0; i < n; i++)
        if (c[i].again) deactivate_script(&c[i]); /* NOSCRIPT: loads the script; or fails as UNAVAILABLE */
}

/* The stages for calls c[0..n), which deactivate_front has not seen yet. */
static void run_batch(worker *w, rpc_batch_call *calls, size_t n, deactivate_call *c) {
    size_t n_waiting = 0;
    for (size_t i = 0; i < n; i++) {
        c[i].waiting = deactivate_front(calls[i].ctx, calls[i].req, calls[i].req_len, calls[i].reply, &c[i]);
        n_waiting += c[i].waiting;
    }
    if (n_waiting == 1) {
        for (size_t i = 0; i < n; i++)
            if (c[i].waiting) deactivate_script(&c[i]); /* no pipeline for one */
    } else if (n_waiting > 1) {
        run_scripts(w, c, n);
    }
    for (size_t i = 0; i < n; i++)
        if (c[i].waiting) deactivate_back(&c[i]);
    for (size_t i = 0; i < n; i++) deactivate_call_end(&c[i]);
}

void handle_deactivate_batch(rpc_batch_call *calls, size_t n) {
    worker *w = rpc_ctx_worker(calls[0].ctx);
    deactivate_call *c = calloc(n, sizeof *c);
    if (!c) { /* no room for the batch: the calls one by one */
        for (size_t i = 0; i < n; i++) handle_deactivate(calls[i].ctx, calls[i].req, calls[i].req_len, calls[i].reply);
        return;
    }
    log_hold(); /* the batch's log lines in one write */
    run_batch(w, calls, n, c);
    log_release();
    free(c);
}
