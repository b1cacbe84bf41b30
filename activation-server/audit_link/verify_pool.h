/* verify_pool.h -- the threads that wait for online audits, so the gRPC
 * workers never do.
 *
 * An online audit (Verify) waits for the audit server, up to
 * --audit-verify-timeout-ms. Done on a gRPC worker, that wait holds the
 * worker and every call queued on it: a slow audit server (one that answers
 * in 250 ms, not one that is down) would stall the activations of groups
 * that never use online audit. So the worker defers the call
 * (rpc_ctx_defer), hands it here, and goes on with the next call; a pool
 * thread waits for the verdict and finishes the activation with its own
 * state (Redis connection, group cache, signer).
 *
 * The pool is bounded: `threads` verdicts awaited at once, `queue` calls
 * waiting for a thread. A call that finds it full is not deferred: its
 * worker treats the audit as unanswered at once (the group's
 * audit_unreachable: fail closed, or the outbox). A call that waited in the
 * queue has that much less of its timeout left for the Verify itself, so
 * the online audit of an activation never takes longer than the timeout.
 *
 * Stop the pool only after the gRPC server has shut down: the server waits
 * for deferred calls, and this pool is what answers them. */
#ifndef PA_VERIFY_POOL_H
#define PA_VERIFY_POOL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct verify_pool verify_pool;

typedef struct verify_pool_config {
    int threads; /* default 4 */
    int queue;   /* jobs waiting for a thread at most (default 16 per thread) */
    /* Per-thread state, made on the starting thread before any job runs;
     * NULL fails the start. Freed by thread_free after the thread ended. */
    void *(*thread_init)(int index, void *arg);
    void (*thread_free)(void *state);
    void *arg;
    void (*run)(void *state, void *job); /* does the job and frees it */
} verify_pool_config;

/* NULL with err when a thread or its state cannot be made. */
verify_pool *verify_pool_start(const verify_pool_config *cfg, char *err, size_t errlen);

/* Takes a place for one job; false when threads and queue are all taken
 * (the caller does the job's fallback itself). A place taken must be
 * followed by exactly one verify_pool_push or verify_pool_release. */
bool verify_pool_reserve(verify_pool *p);
void verify_pool_release(verify_pool *p);
/* Queues a job into the place reserved for it; never fails. */
void verify_pool_push(verify_pool *p, void *job);

/* Runs what is queued, then stops and joins the threads and frees them. */
void verify_pool_stop(verify_pool *p);

#endif
