/* fault_load.h -- the load the fault tests put on an activation server:
 * threads that activate fresh keys (one key, one machine per call) and
 * remember which activations they saw acknowledged, so a test can check
 * afterwards that the store holds every one of them.
 *
 * Each thread has its own gRPC channel and its own slice of the keys; a
 * call is acknowledged only when it returned OK. Anything else is counted
 * by its status and the call's key is not retried (a fresh key follows),
 * so an acknowledgement always names exactly one stored activation. */
#ifndef TEST_FAULT_LOAD_H
#define TEST_FAULT_LOAD_H

#include <pthread.h>
#include <stdbool.h>

#include "act_env.h"

enum { FAULT_LOAD_THREADS = 4 };

typedef struct fault_load {
    act_env *env;                                     /* the server and stores under test */
    uint32_t group;                                   /* the keys' group */
    unsigned per_thread;                              /* keys in each thread's slice */
    char (*keys)[PK_TEXT_LEN + 1];                    /* FAULT_LOAD_THREADS * per_thread keys, serials 1.. */
    bool *acked;                                      /* per key: its Activate returned OK */
    unsigned ok, unavailable, other;                  /* answers by status (summed at the join) */
    grpc_status_code other_status;                    /* the first unexpected status, to print (set at the join) */
    char other_msg[256];                              /* and its message */
    char unavailable_msg[256];                        /* the first UNAVAILABLE answer's message */
    grpc_status_code first_other[FAULT_LOAD_THREADS]; /* per thread, so threads never share a buffer */
    char first_msg[FAULT_LOAD_THREADS][2][256];       /* per thread: first UNAVAILABLE, first other */
    int pause_ms;                                     /* sleep after each call (0: closed loop) */
    volatile int stop;                                /* set by fault_load_stop */
    pthread_t threads[FAULT_LOAD_THREADS];            /* running between start and stop */
    unsigned counts[FAULT_LOAD_THREADS][3];           /* per thread ok/unavailable/other, summed at the join */
} fault_load;

/* Makes FAULT_LOAD_THREADS * per_thread genuine keys of `group` (serials
 * from 1). Returns 0 or -1. */
int fault_load_prepare(fault_load *l, act_env *e, uint32_t group, unsigned per_thread);
/* Starts the threads against e->target. */
int fault_load_start(fault_load *l);
/* Stops and joins them, summing the counts. */
void fault_load_stop(fault_load *l);
/* Of the acknowledged activations, how many Redis A holds no record of
 * (read as the keystore user); -1 when Redis cannot be asked. */
long fault_load_missing(fault_load *l, unsigned *acked);
void fault_load_free(fault_load *l);

#endif
