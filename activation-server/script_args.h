/* script_args.h -- the argument list of one EVALSHA and the numbers in its
 * reply, shared by the C sides of the server's Lua scripts (policy.c,
 * volume_policy.c).
 *
 * Arguments are binary-safe (pointer, length) pairs straight from the
 * caller's buffers: building the list copies nothing, so every buffer must
 * live until the call returns. */
#ifndef PA_ACTIVATION_SCRIPT_ARGS_H
#define PA_ACTIVATION_SCRIPT_ARGS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCRIPT_ARGS_MAX 64

typedef struct script_args {
    const char *v[SCRIPT_ARGS_MAX]; /* keys first, then arguments (rstore_eval's order) */
    size_t len[SCRIPT_ARGS_MAX];
    int n;
    bool overflow; /* more than SCRIPT_ARGS_MAX were added: the call must not be made */
} script_args;

void script_args_add(script_args *a, const void *p, size_t len);
void script_args_add_str(script_args *a, const char *s);

/* Element i of an array reply as a number (0 when absent or not a number
 * type); a string that is not a whole number sets *bad, so a damaged
 * record never reads as 0. */
int64_t script_reply_int(const redisReply *r, size_t i, bool *bad);

/* The MACs as the machine log spells them: comma-separated. Returns its
 * length (cut to fit n). */
size_t script_join_macs(const char *const *macs, size_t n_macs, char *out, size_t n);

#endif
