/* webhook_delivery.c -- see webhook_delivery.h. One task per admin server
 * sends one delivery at a time: claim (script), read the delivery and its
 * endpoint, POST, then record the try and either finish the delivery or
 * set its next due time. */
#include "webhook_delivery.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hex.h"
#include "log.h"
#include "redis_keys.h"
#include "task.h"
#include "webhooks.h"

/* KEYS[1] the due zset; ARGV: now (ms), lease end (ms). The first due
 * delivery's ID, its due time moved to the lease end; nil when none. */
static const char CLAIM_LUA[] =
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)\n"
    "if #ids == 0 then return false end\n"
    "redis.call('ZADD', KEYS[1], ARGV[2], ids[1])\n"
    "return ids[1]\n";

struct webhook_delivery {
    webhook_delivery_config cfg; /* with the defaults applied */
    rstore *redis;               /* the sender's own connection */
    int claim_script;            /* CLAIM_LUA's index */
    task *task;                  /* the send loop */
};

/* One claimed delivery and what its try found. */
typedef struct attempt {
    char id[WEBHOOK_ID_LEN + 1];      /* the delivery */
    char webhook[WEBHOOK_ID_LEN + 1]; /* its endpoint */
    char event[64];                   /* event name */
    char event_id[WEBHOOK_ID_LEN + 1];
    char *body;      /* the JSON posted (malloc'd) */
    int tries;       /* tries before this one */
    long status;     /* HTTP status, 0 when none came */
    char error[256]; /* why the try failed, "" when it did not */
} attempt;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void webhook_signature(const char *secret, const char *body, size_t body_len, char out[72]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    memcpy(out, "sha256=", 7);
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, body_len, md, &md_len) ||
        md_len != 32) {
        out[7] = '\0'; /* no signature: the receiver refuses it, as it should */
        return;
    }
    pa_hex_encode(md, md_len, out + 7);
    out[7 + 64] = '\0';
}

static size_t discard(char *p, size_t size, size_t n, void *arg) {
    (void)p, (void)arg;
    return size * n;
}

/* POSTs the body; fills a->status or a->error. */
static void post(const webhook_delivery *d, attempt *a, const char *url, const char *secret) {
    char sig[72], h_event[96], h_sig[96], h_id[48];
    webhook_signature(secret, a->body, strlen(a->body), sig);
    snprintf(h_event, sizeof h_event, "X-PA-Event: %s", a->event);
    snprintf(h_id, sizeof h_id, "X-PA-Delivery: %s", a->id);
    snprintf(h_sig, sizeof h_sig, "X-PA-Signature: %s", sig);
    struct curl_slist *hdr = NULL, *next;
    const char *lines[] = {"Content-Type: application/json", h_event, h_id, h_sig, "Expect:"};
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        if (!(next = curl_slist_append(hdr, lines[i]))) break;
        hdr = next;
    }
    CURL *c = curl_easy_init();
    if (!c || !hdr) {
        snprintf(a->error, sizeof a->error, "out of memory");
    } else {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, a->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(a->body));
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)d->cfg.timeout_ms);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK) snprintf(a->error, sizeof a->error, "%s", curl_easy_strerror(rc));
        else curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
        if (rc == CURLE_OK && (a->status < 200 || a->status > 299))
            snprintf(a->error, sizeof a->error, "answered HTTP %ld", a->status);
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(hdr);
}

/* The claimed delivery's ID into a->id; 1 claimed, 0 none due, -1 error. */
static int claim(webhook_delivery *d, attempt *a) {
    char now[24], until[24];
    int64_t t = now_ms();
    snprintf(now, sizeof now, "%lld", (long long)t);
    snprintf(until, sizeof until, "%lld", (long long)(t + d->cfg.lease_ms));
    const char *argv[] = {PA_RKEY_ADMIN_DELIVERY_DUE, now, until};
    redisReply *rep = rstore_eval(d->redis, d->claim_script, 1, 2, argv, NULL);
    int rc = !rep || rep->type == REDIS_REPLY_ERROR ? -1 : rep->type == REDIS_REPLY_STRING ? 1 : 0;
    if (rc == 1) snprintf(a->id, sizeof a->id, "%s", rep->str);
    if (rc < 0) log_warn("webhook.claim_failed", LOG_S("error", rep ? rep->str : rstore_error(d->redis)), LOG_END);
    if (rep) freeReplyObject(rep);
    return rc;
}

static const char *field(const redisReply *arr, size_t i) {
    return i < arr->elements && arr->element[i]->type == REDIS_REPLY_STRING ? arr->element[i]->str : NULL;
}

/* Reads the delivery record; false when it is gone or broken. */
static bool load(webhook_delivery *d, attempt *a) {
    char rkey[PA_RKEY_MAX];
    pa_rkey_admin_delivery(rkey, sizeof rkey, a->id);
    redisReply *h = rstore_command(d->redis, "HMGET %s webhook event event_id body tries", rkey);
    bool ok = h && h->type == REDIS_REPLY_ARRAY && h->elements == 5 && field(h, 0) && field(h, 1) && field(h, 2) &&
              field(h, 3);
    if (ok) {
        snprintf(a->webhook, sizeof a->webhook, "%s", field(h, 0));
        snprintf(a->event, sizeof a->event, "%s", field(h, 1));
        snprintf(a->event_id, sizeof a->event_id, "%s", field(h, 2));
        a->tries = field(h, 4) ? atoi(field(h, 4)) : 0;
        ok = (a->body = strdup(field(h, 3))) != NULL;
    }
    if (h) freeReplyObject(h);
    return ok;
}

/* The try into admin:deliveries and the log. */
static void record(webhook_delivery *d, const attempt *a, const char *outcome, int64_t next_ms) {
    char try_no[16], status[16], next[24], at[24];
    snprintf(try_no, sizeof try_no, "%d", a->tries + 1);
    snprintf(status, sizeof status, "%ld", a->status);
    snprintf(next, sizeof next, "%lld", (long long)next_ms);
    snprintf(at, sizeof at, "%lld", (long long)time(NULL));
    char maxlen[16];
    snprintf(maxlen, sizeof maxlen, "%d", PA_ADMIN_DELIVERIES_MAX);
    const char *argv[] = {"XADD",       PA_RKEY_ADMIN_DELIVERIES,
                          "MAXLEN",     "~",
                          maxlen,       "*",
                          "delivery",   a->id,
                          "webhook",    a->webhook,
                          "event",      a->event,
                          "event_id",   a->event_id,
                          "try",        try_no,
                          "status",     status,
                          "error",      a->error,
                          "outcome",    outcome,
                          "next_at_ms", next,
                          "at",         at};
    redisReply *rep = rstore_commandargv(d->redis, (int)(sizeof argv / sizeof *argv), argv, NULL);
    if (!rep || rep->type == REDIS_REPLY_ERROR)
        log_warn("webhook.log_failed", LOG_S("error", rep ? rep->str : rstore_error(d->redis)), LOG_END);
    if (rep) freeReplyObject(rep);
    log_emit(a->error[0] ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, "webhook.delivery", LOG_S("delivery", a->id),
             LOG_S("webhook", a->webhook), LOG_S("event", a->event), LOG_S("event_id", a->event_id),
             LOG_I("try", a->tries + 1), LOG_I("status", a->status), LOG_S("error", a->error),
             LOG_S("outcome", outcome), LOG_I("next_at_ms", next_ms), LOG_END);
}

/* Removes the delivery: sent, given up, or its endpoint gone. */
static void finish(webhook_delivery *d, const char *id) {
    char rkey[PA_RKEY_MAX];
    pa_rkey_admin_delivery(rkey, sizeof rkey, id);
    redisReply *a = rstore_command(d->redis, "DEL %s", rkey);
    redisReply *b = a ? rstore_command(d->redis, "ZREM %s %s", PA_RKEY_ADMIN_DELIVERY_DUE, id) : NULL;
    if (!a || !b)
        log_warn("webhook.finish_failed", LOG_S("delivery", id), LOG_S("error", rstore_error(d->redis)), LOG_END);
    if (a) freeReplyObject(a);
    if (b) freeReplyObject(b);
}

/* The wait before try number `tries + 1` (tries >= 1 failed so far). */
static int64_t backoff(const webhook_delivery *d, int tries) {
    int64_t wait = d->cfg.backoff_ms;
    for (int i = 1; i < tries && wait < d->cfg.backoff_max_ms; i++) wait *= 2;
    return wait < d->cfg.backoff_max_ms ? wait : d->cfg.backoff_max_ms;
}

static void reschedule(webhook_delivery *d, const attempt *a, int64_t due) {
    char rkey[PA_RKEY_MAX], tries[16], at[24];
    pa_rkey_admin_delivery(rkey, sizeof rkey, a->id);
    snprintf(tries, sizeof tries, "%d", a->tries + 1);
    snprintf(at, sizeof at, "%lld", (long long)due);
    redisReply *x = rstore_command(d->redis, "HSET %s tries %s", rkey, tries);
    redisReply *y = x ? rstore_command(d->redis, "ZADD %s %s %s", PA_RKEY_ADMIN_DELIVERY_DUE, at, a->id) : NULL;
    if (!x || !y)
        log_warn("webhook.reschedule_failed", LOG_S("delivery", a->id), LOG_S("error", rstore_error(d->redis)),
                 LOG_END);
    if (x) freeReplyObject(x);
    if (y) freeReplyObject(y);
}

/* The endpoint's url and secret; false when it was deleted. */
static bool endpoint(webhook_delivery *d, const char *webhook, char **url, char **secret) {
    char rkey[PA_RKEY_MAX];
    pa_rkey_admin_webhook(rkey, sizeof rkey, webhook);
    redisReply *h = rstore_command(d->redis, "HMGET %s url secret", rkey);
    bool ok = h && h->type == REDIS_REPLY_ARRAY && h->elements == 2 && field(h, 0) && field(h, 1);
    *url = ok ? strdup(field(h, 0)) : NULL;
    *secret = ok ? strdup(field(h, 1)) : NULL;
    if (h) freeReplyObject(h);
    return *url && *secret;
}

/* One delivery: 1 when one was handled, 0 when none was due, -1 on a Redis failure. */
static int send_one(webhook_delivery *d) {
    attempt a = {0};
    int c = claim(d, &a);
    if (c <= 0) return c;
    char *url = NULL, *secret = NULL;
    if (!load(d, &a)) {
        log_warn("webhook.delivery_gone", LOG_S("delivery", a.id), LOG_END);
        finish(d, a.id);
    } else if (!endpoint(d, a.webhook, &url, &secret)) {
        snprintf(a.error, sizeof a.error, "the webhook was deleted");
        record(d, &a, "dropped", 0);
        finish(d, a.id);
    } else {
        post(d, &a, url, secret);
        bool last = a.tries + 1 >= d->cfg.max_tries;
        int64_t due = a.error[0] && !last ? now_ms() + backoff(d, a.tries + 1) : 0;
        record(d, &a, !a.error[0] ? "delivered" : last ? "failed" : "retry", due);
        if (due) reschedule(d, &a, due);
        else finish(d, a.id);
    }
    free(url);
    if (secret) OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
    free(a.body);
    return 1;
}

static void loop(task *t, void *arg) {
    webhook_delivery *d = arg;
    while (!task_stopping(t))
        if (send_one(d) <= 0) task_sleep(t, d->cfg.poll_ms);
}

webhook_delivery *webhook_delivery_start(const webhook_delivery_config *cfg, char *err, size_t errlen) {
    webhook_delivery *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->cfg = *cfg;
    if (d->cfg.poll_ms <= 0) d->cfg.poll_ms = 200;
    if (d->cfg.timeout_ms <= 0) d->cfg.timeout_ms = 5000;
    if (d->cfg.backoff_ms <= 0) d->cfg.backoff_ms = 1000;
    if (d->cfg.backoff_max_ms <= 0) d->cfg.backoff_max_ms = 300000;
    if (d->cfg.max_tries <= 0) d->cfg.max_tries = 8;
    if (d->cfg.lease_ms <= 0) d->cfg.lease_ms = d->cfg.timeout_ms + 25000;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "libcurl did not start");
        free(d);
        return NULL;
    }
    if (!(d->redis = rstore_new(&d->cfg.store, true, err, errlen)) ||
        (d->claim_script = rstore_script_add(d->redis, CLAIM_LUA)) < 0 ||
        !(d->task = task_start("webhook-delivery", loop, d, err, errlen))) {
        if (d->redis && d->claim_script < 0) snprintf(err, errlen, "registering the claim script failed");
        webhook_delivery_stop(d);
        return NULL;
    }
    return d;
}

void webhook_delivery_stop(webhook_delivery *d) {
    if (!d) return;
    task_stop(d->task);
    rstore_free(d->redis);
    curl_global_cleanup();
    free(d);
}
