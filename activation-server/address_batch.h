/* address_batch.h -- a batch's first round trip on Redis Cluster: the
 * address takes of all its calls (docs/cluster.md, "The address bucket";
 * docs/batching.md).
 *
 * On Redis Cluster the address bucket lies in a slot of its own, so a
 * batch handler (activate_batch.c, renew_batch.c, deactivate_batch.c)
 * takes every call's address tokens with address_take.lua first, then runs
 * the calls' scripts without the bucket. Those takes are one pipeline:
 * every EVALSHA written, then every reply read; a take whose reply is
 * NOSCRIPT (or that could not be written) runs again by itself once every
 * reply is read, which loads the script. A volume call that reads its key's
 * revocation beside the take (volume.lua cannot read the group's set
 * there) has its SISMEMBER written right after its take, in the same
 * pipeline.
 *
 * Each handler describes its calls to it with an address_take per call (a
 * view: the handler's own call state stays where it is) and reads the
 * outcome back from the same views. */
#ifndef PA_ACTIVATION_ADDRESS_BATCH_H
#define PA_ACTIVATION_ADDRESS_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "volume_policy.h"

/* One call of the batch, as the takes see it. The handler sets the fields
 * up to `p`; address_batch_take sets the rest. */
typedef struct address_take {
    const char *bucket;     /* the caller's address bucket; NULL: the call takes nothing here */
    bool failure;           /* a refused check: spends the failure cost, not one token */
    policy_result *p;       /* the take's answer (OK, RATE_LIMITED, UNAVAILABLE) goes here */
    volume_result *vr;      /* a volume call's script answer, set to the take's refusal; NULL: retail */
    const char **revoked;   /* a volume call's revocation, "1"/"0", read with the take; NULL: not read */
    uint32_t group, serial; /* with `revoked`: the key whose revocation is read */
    bool taken;             /* out: the tokens are spent; the script runs without the bucket */
    bool answered;          /* out: the call's answer is set (*p, or *vr for a volume call): no script */
    bool again;             /* inside: its take runs by itself after the pipeline */
    bool asked;             /* inside: its SISMEMBER is in the pipeline */
} address_take;

/* The takes of v[0..n) in one round trip (each to the masters touched).
 * A refused take leaves its answer in *p (and, for a volume call, as the
 * script's in *vr); a revocation that could not be read sets *vr
 * UNAVAILABLE. Either way `answered` is set and the call runs no script. */
void address_batch_take(rstore *r, int script, const policy_limits *l, address_take *v, size_t n);

/* The same for a handler's array of n calls of `size` bytes each: view()
 * fills each call's address_take, settled() reads the outcome back into
 * the call. The views are allocated here (out of memory: one round trip
 * per call, the same answers). */
typedef void address_view_fn(void *call, address_take *t);
typedef void address_settled_fn(void *call, const address_take *t);
void address_batch_calls(rstore *r, int script, const policy_limits *l, void *calls, size_t n, size_t size,
                         address_view_fn *view, address_settled_fn *settled);

#endif
