/* task.c -- background tasks (task.h): a thread, a stop flag and a
 * condition variable the sleeps wait on, so a stop never waits out a sleep. */
#include "task.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct task {
    pthread_t thread;
    pthread_mutex_t mu;  /* guards stopping; the condition's mutex */
    pthread_cond_t wake; /* signalled by a stop request (CLOCK_MONOTONIC) */
    bool stopping;
    task_fn fn;
    void *arg;
    char name[32]; /* for messages */
};

static void *run(void *p) {
    task *t = p;
    t->fn(t, t->arg);
    return NULL;
}

/* The condition waits on the monotonic clock, so a wall-clock step neither
 * stretches nor cuts a sleep. */
static int init_sync(task *t) {
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) return -1;
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0) rc = pthread_cond_init(&t->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) return -1;
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        pthread_cond_destroy(&t->wake);
        return -1;
    }
    return 0;
}

task *task_start(const char *name, task_fn fn, void *arg, char *err, size_t errlen) {
    task *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    t->fn = fn;
    t->arg = arg;
    snprintf(t->name, sizeof t->name, "%s", name);
    if (init_sync(t) != 0) {
        snprintf(err, errlen, "%s: cannot create its mutex or condition", name);
        free(t);
        return NULL;
    }
    int rc = pthread_create(&t->thread, NULL, run, t);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot start its thread: %s", name, strerror(rc));
        pthread_cond_destroy(&t->wake);
        pthread_mutex_destroy(&t->mu);
        free(t);
        return NULL;
    }
    return t;
}

bool task_stopping(task *t) {
    pthread_mutex_lock(&t->mu);
    bool s = t->stopping;
    pthread_mutex_unlock(&t->mu);
    return s;
}

bool task_sleep(task *t, int ms) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    long long ns = (long long)until.tv_nsec + (long long)(ms > 0 ? ms : 0) * 1000000LL;
    until.tv_sec += (time_t)(ns / 1000000000LL);
    until.tv_nsec = (long)(ns % 1000000000LL);
    pthread_mutex_lock(&t->mu);
    int rc = 0;
    while (!t->stopping && rc == 0) rc = pthread_cond_timedwait(&t->wake, &t->mu, &until);
    bool slept = !t->stopping;
    pthread_mutex_unlock(&t->mu);
    return slept;
}

void task_request_stop(task *t) {
    pthread_mutex_lock(&t->mu);
    t->stopping = true;
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->mu);
}

void task_stop(task *t) {
    if (!t) return;
    task_request_stop(t);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
