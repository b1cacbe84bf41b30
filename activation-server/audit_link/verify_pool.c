/* verify_pool.c -- a fixed set of threads taking jobs from a bounded FIFO
 * (see verify_pool.h). One mutex and one condition variable: jobs arrive at
 * the rate of online audits, far below where that lock would matter. */
#include "verify_pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct pool_thread {
    verify_pool *pool;
    pthread_t thread;
    bool started;
    void *state; /* from thread_init */
} pool_thread;

struct verify_pool {
    verify_pool_config cfg; /* defaults applied */
    pthread_mutex_t mu;
    pthread_cond_t ready; /* a job was queued, or stopping */
    void **ring;          /* threads + queue slots: every place taken fits */
    size_t slots;
    size_t head, count; /* queued jobs: ring[head], ... (count of them) */
    size_t taken;       /* places reserved: queued + about to be pushed + running */
    bool stopping;
    pool_thread *threads;
};

static void *thread_main(void *arg) {
    pool_thread *t = arg;
    verify_pool *p = t->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->count == 0 && !p->stopping) pthread_cond_wait(&p->ready, &p->mu);
        if (p->count == 0) break; /* stopping, and nothing left */
        void *job = p->ring[p->head];
        p->head = (p->head + 1) % p->slots;
        p->count--;
        pthread_mutex_unlock(&p->mu);
        p->cfg.run(t->state, job);
        pthread_mutex_lock(&p->mu);
        p->taken--;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

verify_pool *verify_pool_start(const verify_pool_config *cfg, char *err, size_t errlen) {
    verify_pool *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    if (p->cfg.threads <= 0) p->cfg.threads = 4;
    if (p->cfg.queue <= 0) p->cfg.queue = 16 * p->cfg.threads;
    p->slots = (size_t)p->cfg.threads + (size_t)p->cfg.queue;
    p->ring = calloc(p->slots, sizeof *p->ring);
    p->threads = calloc((size_t)p->cfg.threads, sizeof *p->threads);
    if (!p->ring || !p->threads || pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p->ring), free(p->threads), free(p);
        snprintf(err, errlen, "online audit pool: out of memory");
        return NULL;
    }
    pthread_cond_init(&p->ready, NULL);
    for (int i = 0; i < p->cfg.threads; i++) {
        pool_thread *t = &p->threads[i];
        t->pool = p;
        if (p->cfg.thread_init && !(t->state = p->cfg.thread_init(i, p->cfg.arg))) {
            snprintf(err, errlen, "online audit pool: thread %d failed to initialise", i);
            verify_pool_stop(p);
            return NULL;
        }
        if (pthread_create(&t->thread, NULL, thread_main, t) != 0) {
            snprintf(err, errlen, "online audit pool: cannot start thread %d", i);
            verify_pool_stop(p);
            return NULL;
        }
        t->started = true;
    }
    return p;
}

bool verify_pool_reserve(verify_pool *p) {
    pthread_mutex_lock(&p->mu);
    bool ok = !p->stopping && p->taken < p->slots;
    if (ok) p->taken++;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

void verify_pool_release(verify_pool *p) {
    pthread_mutex_lock(&p->mu);
    p->taken--;
    pthread_mutex_unlock(&p->mu);
}

void verify_pool_push(verify_pool *p, void *job) {
    pthread_mutex_lock(&p->mu);
    /* Queued jobs are among the places taken, which never exceed the slots. */
    p->ring[(p->head + p->count) % p->slots] = job;
    p->count++;
    pthread_cond_signal(&p->ready);
    pthread_mutex_unlock(&p->mu);
}

void verify_pool_stop(verify_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->ready);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->cfg.threads; i++) {
        pool_thread *t = &p->threads[i];
        if (t->started) pthread_join(t->thread, NULL);
        if (t->state && p->cfg.thread_free) p->cfg.thread_free(t->state);
    }
    pthread_cond_destroy(&p->ready);
    pthread_mutex_destroy(&p->mu);
    free(p->ring), free(p->threads), free(p);
}
