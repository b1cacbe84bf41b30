/* usage_store.c -- {o:S}:usage (usage_store.h). */
#include "usage_store.h"

#include <stdio.h>
#include <string.h>

#include "errbuf.h"
#include "redis_keys.h"

/* KEYS[1] {o:S}:usage. ARGV[1] revision, ARGV[2] generated_at, then the
 * field/value pairs to write. 1 written, 0 a report at least as new is held. */
static const char STORE_SCRIPT[] =
    "local rev, at = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local held = redis.call('HMGET', KEYS[1], '" USAGE_F_REVISION "', '" USAGE_F_GENERATED_AT
    "')\n"
    "local hr, ha = tonumber(held[1]) or 0, tonumber(held[2]) or 0\n"
    "if hr > rev or (hr == rev and ha >= at) then return 0 end\n"
    "redis.call('HSET', KEYS[1], unpack(ARGV, 3))\n"
    "return 1\n";

int usage_store_report(rstore *r, const Volume__V1__UsageReport *u, const usage_summary *s, int64_t now, char *err,
                       size_t errlen) {
    char key[PA_RKEY_MAX], rev[16], at[24], recv[24], seats[24], machines[24], over[24];
    if (pa_rkey_order_usage(key, sizeof key, s->serial) < 0) return err_set(err, errlen, "bad serial");
    snprintf(rev, sizeof rev, "%u", s->revision);
    snprintf(at, sizeof at, "%lld", (long long)s->generated_at);
    snprintf(recv, sizeof recv, "%lld", (long long)now);
    snprintf(seats, sizeof seats, "%llu", (unsigned long long)s->seats_held);
    snprintf(machines, sizeof machines, "%llu", (unsigned long long)s->machines);
    snprintf(over, sizeof over, "%llu", (unsigned long long)s->over_term);
    const char *argv[] = {"EVAL",
                          STORE_SCRIPT,
                          "1",
                          key,
                          rev,
                          at,
                          USAGE_F_REPORT,
                          (const char *)u->report.data,
                          USAGE_F_SIGNATURE,
                          (const char *)u->signature.data,
                          USAGE_F_REVISION,
                          rev,
                          USAGE_F_GENERATED_AT,
                          at,
                          USAGE_F_RECEIVED_AT,
                          recv,
                          USAGE_F_SERVER_KEY_ID,
                          s->server_key_id,
                          USAGE_F_SEATS,
                          seats,
                          USAGE_F_MACHINES,
                          machines,
                          USAGE_F_OVER_TERM,
                          over};
    size_t n = sizeof argv / sizeof *argv, lens[sizeof argv / sizeof *argv];
    for (size_t i = 0; i < n; i++) /* 7 and 9 are bytes, not text */
        lens[i] = i == 7 ? u->report.len : i == 9 ? u->signature.len : strlen(argv[i]);
    redisReply *rep = rstore_commandargv(r, (int)n, argv, lens);
    int rc = rep && rep->type == REDIS_REPLY_INTEGER
                 ? (int)rep->integer
                 : err_set(err, errlen, "storing the report: %s", rep && rep->str ? rep->str : rstore_error(r));
    if (rep) freeReplyObject(rep);
    return rc;
}

int usage_store_uploaded(rstore *r, const char *serial, int64_t generated_at, int64_t now, char *err, size_t errlen) {
    char key[PA_RKEY_MAX];
    if (pa_rkey_order_usage(key, sizeof key, serial) < 0) return err_set(err, errlen, "bad serial");
    redisReply *rep = rstore_command(r, "HSET %s " USAGE_F_UPLOADED_AT " %lld " USAGE_F_UPLOADED_REPORT_AT " %lld", key,
                                     (long long)now, (long long)generated_at);
    int rc = rep && rep->type == REDIS_REPLY_INTEGER
                 ? 0
                 : err_set(err, errlen, "recording the upload: %s", rep && rep->str ? rep->str : rstore_error(r));
    if (rep) freeReplyObject(rep);
    return rc;
}
