/* activate_batch.c -- Activate calls that arrived together, answered
 * together (docs/batching.md, "Natural batching").
 *
 * The calls go through the single call's stages (activate_stages.h), stage
 * by stage for all of them:
 *   1. activate_front for each: decode, rate hold, key check, audit plan.
 *      A call refused there is answered there; volume keys, on-premises
 *      keys and online audits leave the batch the same way (they are
 *      finished as single calls, online audits on the audit pool);
 *   2. the policy scripts of the others as ONE pipeline: every EVALSHA
 *      written, then every reply read -- one Redis round trip for the
 *      batch. A reply that says NOSCRIPT (Redis restarted, SCRIPT FLUSH)
 *      is run again by itself once the pipeline is read, which loads the
 *      script; a broken connection fails the calls whose replies it took;
 *   3. activate_back for each: refusals, group reload, the license, the
 *      answer.
 * Threat counts, rate holds, the machine log, audit records, metrics and
 * log lines are the single path's own, per call.
 *
 * The calls' state lives in a per-worker array kept between batches, so a
 * batch allocates nothing of its own; its log lines (one "activate.granted"
 * per grant) are written together at its end (log_hold). Stage 2's time is shared: each call
 * of the batch counts the whole round trip as its Redis stage. */
#include <stdlib.h>

#include "activate_stages.h"
#include "log.h"

/* The worker's array of at least n calls, grown as needed; NULL when out of memory. */
static activate_call *calls_for(worker *w, size_t n) {
    if (n <= w->batch_cap) return w->batch;
    activate_call *nb = realloc(w->batch, n * sizeof *nb);
    if (!nb) return NULL;
    w->batch = nb;
    w->batch_cap = n;
    return nb;
}

/* Stage 2: the waiting calls' scripts in one round trip. */
static void run_scripts(worker *w, activate_call *c, size_t n) {
    for (size_t i = 0; i < n; i++) /* a call that cannot even be written runs by itself below */
        c[i].again = c[i].waiting && activate_append(&c[i]) != 0;
    for (size_t i = 0; i < n; i++)
        if (c[i].waiting && !c[i].again) c[i].again = !policy_activate_read(w->redis, &c[i].p);
    for (size_t i = 0; i < n; i++)
        if (c[i].again) activate_script(&c[i]); /* NOSCRIPT: loads the script; or fails as UNAVAILABLE */
}

void handle_activate_batch(rpc_batch_call *calls, size_t n) {
    worker *w = rpc_ctx_worker(calls[0].ctx);
    activate_call *c = calls_for(w, n);
    if (!c) { /* no room for the batch: the calls one by one */
        for (size_t i = 0; i < n; i++) handle_activate(calls[i].ctx, calls[i].req, calls[i].req_len, calls[i].reply);
        return;
    }
    log_hold(); /* the batch's log lines in one write */
    size_t n_waiting = 0;
    for (size_t i = 0; i < n; i++) {
        c[i].waiting = activate_front(calls[i].ctx, calls[i].req, calls[i].req_len, calls[i].reply, &c[i]);
        n_waiting += c[i].waiting;
    }
    if (n_waiting == 1) {
        for (size_t i = 0; i < n; i++)
            if (c[i].waiting) activate_script(&c[i]); /* no pipeline for one */
    } else if (n_waiting > 1) {
        run_scripts(w, c, n);
    }
    for (size_t i = 0; i < n; i++)
        if (c[i].waiting) activate_back(&c[i]);
    for (size_t i = 0; i < n; i++) activate_call_end(&c[i]);
    log_release();
}
