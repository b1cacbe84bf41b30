/* serials.c -- serial batches from the per-group counter in Redis A.
 *
 * Design: {g:ID}:serial holds the next serial to hand out (0 before the
 * first batch). A batch is reserved by a Lua script that checks the group
 * exists and that the batch stays within the 30-bit serial space, then
 * INCRBYs the counter -- all in one atomic step. Concurrent generators
 * therefore receive disjoint ranges, and a request that would pass
 * PK_SERIAL_MAX is refused before the counter moves, so there is nothing to
 * roll back and no serial beyond the limit is ever handed out. The counter
 * and the record share the {g:ID} hash tag, so the script touches one slot. */
#include "serials.h"

#include <stdio.h>
#include <string.h>

#include "errbuf.h"
#include "group.h"
#include "keycodec.h"
#include "redis_keys.h"

/* KEYS[1] counter, KEYS[2] group record; ARGV[1] count, ARGV[2] limit
 * (PK_SERIAL_MAX + 1, the number of serials). Returns the new counter. */
static const char RESERVE_SCRIPT[] =
    "if redis.call('EXISTS', KEYS[2]) == 0 then\n"
    "  return redis.error_reply('NOGROUP no such group')\n"
    "end\n"
    "local cur = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if cur == nil then return redis.error_reply('BADCOUNTER serial counter is not a number') end\n"
    "local n, limit = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "if cur + n > limit then\n"
    "  return redis.error_reply('EXHAUSTED ' .. (limit - cur) .. ' serials left')\n"
    "end\n"
    "return redis.call('INCRBY', KEYS[1], n)\n";

int serial_reserve(redisContext *activation, uint32_t id, uint32_t count,
                   uint32_t *first, char *err, size_t errlen) {
    char ckey[PA_RKEY_MAX], gkey[PA_RKEY_MAX];
    if (count == 0) return err_set(err, errlen, "group %u: a batch needs at least one serial", id);
    if ((unsigned long long)count > (unsigned long long)PK_SERIAL_MAX + 1)
        return err_set(err, errlen, "group %u: %u serials is more than a group can ever have", id, count);
    pa_rkey_serial(ckey, sizeof ckey, id);
    pa_rkey_group(gkey, sizeof gkey, id);
    redisReply *r = redisCommand(activation, "EVAL %s 2 %s %s %u %llu", RESERVE_SCRIPT, ckey, gkey,
                                 (unsigned)count, (unsigned long long)PK_SERIAL_MAX + 1);
    if (!r)
        return err_set(err, errlen, "activation store: %s", activation->errstr[0] ? activation->errstr : "no reply");
    int rc = 0;
    if (r->type == REDIS_REPLY_INTEGER && r->integer >= (long long)count &&
        r->integer <= (long long)PK_SERIAL_MAX + 1) {
        *first = (uint32_t)(r->integer - count);
    } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "EXHAUSTED", 9) == 0) {
        rc = err_set(err, errlen, "group %u: cannot reserve %u serials, only%s (serials end at %u)", id, count,
                     r->str + 9, PK_SERIAL_MAX);
    } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOGROUP", 7) == 0) {
        rc = err_set(err, errlen, "group %u does not exist in the activation store", id);
    } else {
        rc = err_set(err, errlen, "group %u: reserving serials failed: %s", id,
                     r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    freeReplyObject(r);
    return rc;
}
