/* address_batch.c -- the address takes of a batch in one pipeline, and a
 * volume call's revocation read beside its take (address_batch.h). The
 * replies come back in the order written, so the read loop walks the
 * views in the order the write loop did. */
#include "address_batch.h"

#include <stdlib.h>

/* Writes the call's take, and its revocation read, to the pipeline. */
static void append(rstore *r, int script, const policy_limits *l, address_take *t) {
    t->again = policy_address_take_append(r, script, l, t->bucket, t->failure) != 0;
    t->asked = t->revoked && volume_revoked_append(r, t->group, t->serial) == 0;
}

/* Reads what append wrote, in the same order. */
static void read_back(rstore *r, address_take *t) {
    if (!t->again) t->again = !policy_address_take_read(r, t->p);
    if (t->asked && !volume_revoked_read(r, t->revoked, t->vr)) t->answered = true;
}

/* The outcome, once the take has answered: a volume call refused by its
 * take gets the refusal as its script's answer. */
static void settle(address_take *t) {
    t->taken = t->p->status == POLICY_OK;
    if (t->answered) return; /* a volume call whose revocation could not be read */
    t->answered = !t->taken;
    if (t->vr && !t->taken) volume_result_of_take(t->p, t->vr);
}

void address_batch_take(rstore *r, int script, const policy_limits *l, address_take *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        v[i].taken = v[i].answered = v[i].again = v[i].asked = false;
        if (v[i].bucket) append(r, script, l, &v[i]);
    }
    for (size_t i = 0; i < n; i++)
        if (v[i].bucket) read_back(r, &v[i]);
    for (size_t i = 0; i < n; i++) /* NOSCRIPT, or not written: by itself, which loads the script */
        if (v[i].again) policy_address_take(r, script, l, v[i].bucket, v[i].failure, v[i].p);
    for (size_t i = 0; i < n; i++)
        if (v[i].bucket) settle(&v[i]);
}

void address_batch_calls(rstore *r, int script, const policy_limits *l, void *calls, size_t n, size_t size,
                         address_view_fn *view, address_settled_fn *settled) {
    address_take one, *v = calloc(n ? n : 1, sizeof *v);
    size_t step = v ? n : 1;
    if (!v) v = &one;
    char *call = calls;
    for (size_t off = 0; off < n; off += step) {
        for (size_t j = 0; j < step; j++) view(call + (off + j) * size, &v[j]);
        address_batch_take(r, script, l, v, step);
        for (size_t j = 0; j < step; j++) settled(call + (off + j) * size, &v[j]);
    }
    if (v != &one) free(v);
}
