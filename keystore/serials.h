/* serials.h -- serial numbers for a group's keys, handed out in batches.
 *
 * The counter lives in the activation store ({g:ID}:serial) and moves with
 * one INCRBY per batch, so any number of generators running at once receive
 * disjoint ranges and never issue the same serial twice. */
#ifndef PA_SERIALS_H
#define PA_SERIALS_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

/* Reserves `count` consecutive serials for group `id` with one atomic
 * INCRBY, so concurrent generators never overlap. Refuses to pass
 * PK_SERIAL_MAX. On success *first is the first serial of the batch. */
int serial_reserve(redisContext *activation, uint32_t id, uint32_t count,
                   uint32_t *first, char *err, size_t errlen);

#endif
