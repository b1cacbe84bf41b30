/* activate_batch.c -- Activate calls that arrived together, answered
 * together (docs/batching.md, "Natural batching").
 *
 * The calls go through the single call's stages (activate_stages.h), stage
 * by stage for all of them:
 *   1. activate_front for each: decode, rate hold, key check, audit plan
 *      (a volume key: the order in memory). A call refused there is
 *      answered there -- except a key whose first security value is
 *      wrong: its reject call (the address's and group's failure tokens)
 *      stays for the pipeline; online audits leave the batch (they are
 *      finished on the audit pool);
 *   2. the scripts of the others (policy.lua, its reject call, or
 *      volume.lua for volume keys: activate_volume.h) as ONE pipeline:
 *      every EVALSHA
 *      written, then every reply read -- one Redis round trip for the
 *      batch. With --batch-script on (single node), the retail calls'
 *      policy.lua calls (two or more) are ONE EVALSHA of its batch
 *      operation instead, each call given its entry of the reply (the
 *      volume.lua calls stay EVALSHAs of their own in the pipeline). A
 *      reply that says NOSCRIPT (Redis restarted, SCRIPT FLUSH)
 *      is run again by itself once the pipeline is read, which loads the
 *      script; a broken connection fails the calls whose replies it took;
 *   3. for each: the script's refusals and the group reload; with
 *      --redis-wait-replicas, ONE WAIT for every grant of the pipeline
 *      (a shortfall answers them all UNAVAILABLE, as a single call's
 *      would be); then the
 *      licenses of the granted calls, signed together (license_issue_batch:
 *      one signature over their Merkle tree, docs/batching.md), then the
 *      answers.
 * Threat counts, rate holds, the machine log, audit records, metrics and
 * log lines are the single path's own, per call.
 *
 * The calls' state lives in a per-worker array kept between batches, so a
 * batch allocates nothing of its own; its log lines (one "activate.granted"
 * per grant) are written together at its end (log_hold). Stage 2's time is shared: each call
 * of the batch counts the whole round trip as its Redis stage. */
#include <stdlib.h>

#include "activate_stages.h"
#include "address_batch.h"
#include "log.h"
#include "merkle.h"

/* A worker's room for a batch, kept between batches. */
struct activate_batch {
    size_t cap;               /* calls it has room for */
    activate_call *calls;     /* each call between its stages */
    license_terms *terms;     /* the granted calls' terms, in order */
    signed_license *licenses; /* their signed licenses, same order */
    activate_call **granted;  /* which call each terms[i] belongs to */
    policy_batch *script;     /* --batch-script: the retail calls' one policy.lua call; NULL until first used */
};

void activate_batch_free(struct activate_batch *b) {
    if (!b) return;
    free(b->calls);
    free(b->terms);
    free(b->licenses);
    free(b->granted);
    policy_batch_free(b->script);
    free(b);
}

/* The worker's room for n calls, grown as needed; NULL when out of memory. */
static struct activate_batch *room_for(worker *w, size_t n) {
    struct activate_batch *b = w->batch;
    if (b && n <= b->cap) return b;
    activate_batch_free(b);
    w->batch = b = calloc(1, sizeof *b);
    if (!b) return NULL;
    if (n < RPC_DEFAULT_BATCH_MAX) n = RPC_DEFAULT_BATCH_MAX; /* grown once, not batch by batch */
    b->calls = calloc(n, sizeof *b->calls);
    b->terms = calloc(n, sizeof *b->terms);
    b->licenses = calloc(n, sizeof *b->licenses);
    b->granted = calloc(n, sizeof *b->granted);
    if (!b->calls || !b->terms || !b->licenses || !b->granted) {
        activate_batch_free(b);
        w->batch = NULL;
        return NULL;
    }
    b->cap = n;
    return b;
}

/* A call whose address the batch takes first: every waiting one but a
 * volume call already decided without its script. */
static bool takes(const activate_call *c) { return c->waiting && !(c->volume && c->decided); }

/* The call as the batch's address takes see it (address_batch.h): a
 * volume call that is not rejected reads its key's revocation beside its
 * take (volume.lua cannot read the group's set on Redis Cluster). */
static void take_view(void *call, address_take *t) {
    activate_call *c = call;
    bool reads = c->volume && !c->rejecting;
    *t = (address_take){.bucket = takes(c) ? c->who.bucket : NULL,
                        .failure = c->rejecting,
                        .p = &c->p,
                        .vr = reads ? &c->seat.vg.r : NULL,
                        .revoked = reads ? &c->seat.revoked : NULL,
                        .group = c->key.group,
                        .serial = c->key.serial};
}

/* What the takes settled: a call refused there (or whose revocation
 * could not be read) keeps that answer and runs no script; a volume call
 * whose bucket is taken runs its script without it. */
static void take_settled(void *call, const address_take *t) {
    activate_call *c = call;
    c->by_address = t->answered;
    if (!t->bucket) return;
    c->address_taken = t->taken;
    if (c->volume && !c->rejecting && t->taken && !t->answered) c->seat.address_key = NULL;
}

/* Redis Cluster (docs/cluster.md): the waiting calls' address takes
 * first, and volume calls' revocations, in one round trip of their own
 * (address_batch.h). A call they refuse keeps that answer (c->p; a volume
 * call's in its seat's result) and runs no script; the others' scripts
 * then run without the address bucket. */
static void take_addresses(worker *w, activate_call *c, size_t n) {
    address_batch_calls(w->redis, w->script, &w->app->limits, c, n, sizeof *c, take_view, take_settled);
}

static bool scripted(const activate_call *c) { return c->waiting && !c->by_address; }

/* Stage 2 with one EVALSHA per call, in one pipeline (after the address
 * takes on Redis Cluster). */
static void run_scripts_each(worker *w, activate_call *c, size_t n) {
    if (policy_split(w->redis)) take_addresses(w, c, n);
    for (size_t i = 0; i < n; i++) /* a call that cannot even be written runs by itself below */
        c[i].again = scripted(&c[i]) && activate_append(&c[i]) != 0;
    for (size_t i = 0; i < n; i++)
        if (scripted(&c[i]) && !c[i].again) c[i].again = !activate_read(&c[i]); /* policy, reject or volume */
    for (size_t i = 0; i < n; i++)
        if (c[i].again) activate_script(&c[i]); /* NOSCRIPT: loads the script; or fails as UNAVAILABLE */
}

/* A call whose script is policy.lua's (activate, or its reject call). */
static bool retail(const activate_call *c) { return scripted(c) && !c->volume; }

/* --batch-script on a single node, and two retail calls or more: their
 * scripts go to one script call. */
static bool one_script_call(worker *w, const activate_call *c, size_t n) {
    if (!w->app->batch_script || policy_split(w->redis)) return false;
    size_t k = 0;
    for (size_t i = 0; i < n && k < 2; i++) k += retail(&c[i]);
    return k >= 2;
}

/* Stage 2 with ONE EVALSHA for every retail call (policy.lua's batch
 * operation: the script's fixed cost once per batch), the volume calls'
 * volume.lua EVALSHAs after it in the same pipeline. Each call is given its
 * entry of the reply as its own reply was; NOSCRIPT, or a call that could
 * not be added, runs by itself below, as with one EVALSHA per call. */
static void run_script_batch(worker *w, struct activate_batch *b, size_t n) {
    activate_call *c = b->calls;
    if (!b->script && !(b->script = policy_batch_new())) {
        run_scripts_each(w, c, n);
        return;
    }
    policy_batch_clear(b->script);
    for (size_t i = 0; i < n; i++) c[i].again = retail(&c[i]) && activate_batch_add(&c[i], b->script) != 0;
    bool sent = policy_batch_size(b->script) > 0 && policy_batch_append(w->redis, w->script, b->script) == 0;
    for (size_t i = 0; i < n; i++) /* volume.lua's calls; a call that cannot even be written runs by itself */
        if (scripted(&c[i]) && c[i].volume) c[i].again = activate_append(&c[i]) != 0;
    bool known = sent && policy_batch_read(w->redis, b->script); /* false: NOSCRIPT */
    for (size_t i = 0; i < n; i++)
        if (scripted(&c[i]) && c[i].volume && !c[i].again) c[i].again = !activate_read(&c[i]);
    for (size_t i = 0, k = 0; i < n; i++) {
        if (!retail(&c[i]) || c[i].again) continue;
        if (known) policy_batch_result(b->script, k, &c[i].p);
        c[i].again = !known;
        k++;
    }
    policy_batch_clear(b->script); /* frees the reply now */
    for (size_t i = 0; i < n; i++)
        if (c[i].again) activate_script(&c[i]);
}

/* Stage 2: the waiting calls' scripts in one round trip (two on Redis
 * Cluster: the address takes, then the scripts). */
static void run_scripts(worker *w, struct activate_batch *b, size_t n) {
    if (one_script_call(w, b->calls, n)) run_script_batch(w, b, n);
    else run_scripts_each(w, b->calls, n);
}

/* Stage 3: refusals and group reloads first (a reload may replace an entry
 * other calls' terms would point into), the batch's WAIT, then every granted license signed
 * with one signature per MERKLE_MAX_LEAVES, then the answers. */
static void sign_and_answer(worker *w, struct activate_batch *b, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) b->calls[i].waiting = b->calls[i].waiting && activate_back_check(&b->calls[i]);
    activate_wait_replicas(b->calls, n); /* one WAIT covers the whole pipeline */
    for (size_t i = 0; i < n; i++) {
        if (!b->calls[i].waiting) continue;
        if (activate_terms(&b->calls[i], &b->terms[k])) b->granted[k++] = &b->calls[i];
        else activate_answer(&b->calls[i], NULL);
    }
    for (size_t off = 0; off < k; off += MERKLE_MAX_LEAVES) {
        size_t m = k - off < MERKLE_MAX_LEAVES ? k - off : MERKLE_MAX_LEAVES;
        bool ok = license_issue_batch(w->signer, &b->terms[off], m, &b->licenses[off]) == 0;
        for (size_t j = off; j < off + m; j++) activate_answer(b->granted[j], ok ? &b->licenses[j] : NULL);
    }
}

void handle_activate_batch(rpc_batch_call *calls, size_t n) {
    worker *w = rpc_ctx_worker(calls[0].ctx);
    struct activate_batch *b = room_for(w, n);
    if (!b) { /* no room for the batch: the calls one by one */
        for (size_t i = 0; i < n; i++) handle_activate(calls[i].ctx, calls[i].req, calls[i].req_len, calls[i].reply);
        return;
    }
    activate_call *c = b->calls;
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
        run_scripts(w, b, n);
    }
    if (n_waiting > 0) sign_and_answer(w, b, n);
    for (size_t i = 0; i < n; i++) activate_call_end(&c[i]);
    log_release();
}
