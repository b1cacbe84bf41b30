/* fault_load.c -- activations under fault, and the check of what was
 * acknowledged against what the store holds (see fault_load.h). */
#include "fault_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redis_keys.h"

typedef struct slice {
    fault_load *l; /* the run */
    unsigned t;    /* which thread */
} slice;

static slice slices[FAULT_LOAD_THREADS]; /* one run at a time per program */

int fault_load_prepare(fault_load *l, act_env *e, uint32_t group, unsigned per_thread) {
    memset(l, 0, sizeof *l);
    l->env = e;
    l->group = group;
    l->per_thread = per_thread;
    size_t n = (size_t)FAULT_LOAD_THREADS * per_thread;
    l->keys = calloc(n, sizeof *l->keys);
    l->acked = calloc(n, sizeof *l->acked);
    if (!l->keys || !l->acked) return -1;
    for (size_t i = 0; i < n; i++)
        if (env_make_key(e, group, (uint32_t)i + 1, false, 0, l->keys[i]) != 0) return -1;
    return 0;
}

/* One Activate of key `k` (machine k + 1), 3 s deadline. */
static grpc_status_code activate_one(rpc_channel *ch, rpc_client_method *m, fault_load *l, size_t k, char *msg,
                                     size_t msglen) {
    uint8_t id[32], buf[512];
    env_machine(id, (unsigned)k + 1);
    Activation__V1__ActivateRequest rq = ACTIVATION__V1__ACTIVATE_REQUEST__INIT;
    rq.product_key = l->keys[k];
    rq.machine_id = (ProtobufCBinaryData){.len = sizeof id, .data = id};
    rq.hostname = "fault-load";
    size_t len = activation__v1__activate_request__pack(&rq, buf);
    rpc_result res;
    grpc_status_code st = rpc_call(ch, m, buf, len, 3000, &res);
    snprintf(msg, msglen, "%s", res.message);
    rpc_result_clear(&res);
    return st;
}

static void *run(void *p) {
    slice *s = p;
    fault_load *l = s->l;
    rpc_channel *ch = rpc_channel_new(l->env->target, NULL);
    rpc_client_method *m = ch ? rpc_channel_method(ch, PA_RPC_ACTIVATE) : NULL;
    char msg[256];
    for (unsigned i = 0; m && !l->stop && i < l->per_thread; i++) {
        size_t k = (size_t)s->t * l->per_thread + i;
        grpc_status_code st = activate_one(ch, m, l, k, msg, sizeof msg);
        if (st == GRPC_STATUS_OK) {
            l->acked[k] = true;
            l->counts[s->t][0]++;
        } else if (st == GRPC_STATUS_UNAVAILABLE) {
            if (l->counts[s->t][1]++ == 0) snprintf(l->first_msg[s->t][0], sizeof l->first_msg[s->t][0], "%s", msg);
            usleep(20 * 1000); /* a refusing store: do not spin */
        } else if (l->counts[s->t][2]++ == 0) {
            l->first_other[s->t] = st;
            snprintf(l->first_msg[s->t][1], sizeof l->first_msg[s->t][1], "%s", msg);
        }
        if (l->pause_ms) usleep((useconds_t)l->pause_ms * 1000);
    }
    rpc_channel_free(ch);
    rpc_client_thread_done();
    return NULL;
}

int fault_load_start(fault_load *l) {
    l->stop = 0;
    for (unsigned t = 0; t < FAULT_LOAD_THREADS; t++) {
        slices[t] = (slice){.l = l, .t = t};
        if (pthread_create(&l->threads[t], NULL, run, &slices[t]) != 0) {
            l->stop = 1;
            while (t-- > 0) pthread_join(l->threads[t], NULL);
            return -1;
        }
    }
    return 0;
}

void fault_load_stop(fault_load *l) {
    l->stop = 1;
    l->ok = l->unavailable = l->other = 0;
    for (unsigned t = 0; t < FAULT_LOAD_THREADS; t++) {
        pthread_join(l->threads[t], NULL);
        l->ok += l->counts[t][0];
        l->unavailable += l->counts[t][1];
        l->other += l->counts[t][2];
        if (!l->unavailable_msg[0] && l->counts[t][1])
            snprintf(l->unavailable_msg, sizeof l->unavailable_msg, "%s", l->first_msg[t][0]);
        if (!l->other_msg[0] && l->counts[t][2]) {
            l->other_status = l->first_other[t];
            snprintf(l->other_msg, sizeof l->other_msg, "%s", l->first_msg[t][1]);
        }
    }
}

long fault_load_missing(fault_load *l, unsigned *acked) {
    long missing = 0;
    *acked = 0;
    for (size_t k = 0; k < (size_t)FAULT_LOAD_THREADS * l->per_thread; k++) {
        if (!l->acked[k]) continue;
        (*acked)++;
        redisReply *r = redisCommand(l->env->ks_a, "HGET " PA_RKEY_RECORD_FMT " n", l->group, (unsigned)k + 1);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            if (r) freeReplyObject(r);
            return -1;
        }
        if (r->type != REDIS_REPLY_STRING || atoi(r->str) < 1) missing++;
        freeReplyObject(r);
    }
    return missing;
}

void fault_load_free(fault_load *l) {
    free(l->keys);
    free(l->acked);
    l->keys = NULL;
    l->acked = NULL;
}
