/* session.c -- logins and sessions (session.h).
 *
 * A session is one string, admin:session:HEX = "GEN USER CSRF", where HEX
 * is the SHA-256 of the cookie's text. GETEX reads it and pushes its
 * expiry forward in one round trip; the account is then read again for
 * its role and gen. The cookie is sent again with every answer to a
 * logged-in request, so its Max-Age follows the session's.
 *
 * Login tries are limited by two token buckets, the account's and the
 * client address's, taken together by one script: a try takes a token
 * from each, a successful login gives them back, so only failures use
 * the allowance up. Unknown names and wrong passwords answer the same,
 * after the same work (user_check_login). */
#include "session.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "b64url.h"
#include "hex.h"
#include "http_server.h"
#include "log.h"
#include "trail.h"

#define SESSION_ID_BYTES 32
#define CSRF_BYTES 24

/* KEYS: the buckets. ARGV: "take" | "give", size, refill ms. Returns 0, or
 * the milliseconds until a try is allowed again. */
const char session_bucket_lua[] =
    "local cap, refill = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local function level(k)\n"
    "  local v = redis.call('HMGET', k, 'tokens', 'ts')\n"
    "  local tokens, ts = tonumber(v[1]), tonumber(v[2])\n"
    "  if not tokens then return cap, now end\n"
    "  tokens = math.min(cap, tokens) -- the size may have been lowered since\n"
    "  local gained = math.floor((now - ts) / refill)\n"
    "  if gained > 0 then tokens = math.min(cap, tokens + gained); ts = ts + gained * refill end\n"
    "  if tokens >= cap then ts = now end\n"
    "  return tokens, ts\n"
    "end\n"
    "local function save(k, tokens, ts)\n"
    "  redis.call('HSET', k, 'tokens', tokens, 'ts', ts)\n"
    "  redis.call('PEXPIRE', k, (cap - tokens + 1) * refill)\n"
    "end\n"
    "local lv, wait = {}, 0\n"
    "for i, k in ipairs(KEYS) do\n"
    "  local tk, ts = level(k)\n"
    "  lv[i] = {tk, ts}\n"
    "  if tk < 1 and ts + refill - now > wait then wait = ts + refill - now end\n"
    "end\n"
    "if ARGV[1] == 'give' then\n"
    "  for i, k in ipairs(KEYS) do save(k, math.min(cap, lv[i][1] + 1), lv[i][2]) end\n"
    "  return 0\n"
    "end\n"
    "if wait > 0 then return wait end\n"
    "for i, k in ipairs(KEYS) do save(k, lv[i][1] - 1, lv[i][2]) end\n"
    "return 0\n";

/* The address a login bucket counts: IPv4 as it is, IPv6 by its /64 (one
 * host holds a whole /64, so a bucket per address would not hold it). */
static void bucket_address(const char *addr, char *out, size_t n) {
    struct in6_addr a6;
    if (!strchr(addr, ':') || inet_pton(AF_INET6, addr, &a6) != 1) {
        snprintf(out, n, "%s", addr);
        return;
    }
    memset(a6.s6_addr + 8, 0, 8);
    char text[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a6, text, sizeof text);
    snprintf(out, n, "%s/64", text);
}

static int login_bucket_split(const http_request *rq, const char *ka, const char *ku, const char *const *args);
static int bucket_wait(const http_request *rq, redisReply *rep);

/* Takes (or gives back) a try from the buckets of `name` (when it is a
 * valid account name) and of the address. Returns the seconds to wait
 * (0: go on), or -1 when Redis failed. */
static int login_bucket(const http_request *rq, const char *name, bool give) {
    const admin_app *app = rq->app;
    char ku[PA_RKEY_MAX], ka[PA_RKEY_MAX], size[16], refill[24];
    snprintf(size, sizeof size, "%d", app->login_tries);
    snprintf(refill, sizeof refill, "%lld", (long long)app->login_refill_s * 1000);
    char addr[INET6_ADDRSTRLEN + 4];
    bucket_address(rq->client_addr, addr, sizeof addr);
    pa_rkey_admin_rl_addr(ka, sizeof ka, addr);
    bool with_user = user_name_ok(name) && pa_rkey_admin_rl_user(ku, sizeof ku, name) > 0;
    const char *argv[] = {ka, ku, give ? "give" : "take", size, refill};
    const char *without[] = {ka, give ? "give" : "take", size, refill};
    if (with_user && rstore_is_cluster(rq->redis)) return login_bucket_split(rq, ka, ku, argv + 2);
    redisReply *rep = with_user ? rstore_eval(rq->redis, ADMIN_SCRIPT_LOGIN_BUCKET, 2, 3, argv, NULL)
                                : rstore_eval(rq->redis, ADMIN_SCRIPT_LOGIN_BUCKET, 1, 3, without, NULL);
    return bucket_wait(rq, rep);
}

/* On Redis Cluster the two buckets live in different slots, so each is its
 * own call: the address first (a throttled address learns nothing of the
 * account), then the account. Not atomic: when the account refuses, the
 * address's try is spent all the same (the limit gets stricter, never
 * looser). A give returns the try to both. */
static int login_bucket_split(const http_request *rq, const char *ka, const char *ku, const char *const *args) {
    const char *one[] = {ka, args[0], args[1], args[2]};
    int wait = bucket_wait(rq, rstore_eval(rq->redis, ADMIN_SCRIPT_LOGIN_BUCKET, 1, 3, one, NULL));
    if (wait != 0 && strcmp(args[0], "give") != 0) return wait;
    one[0] = ku;
    int user_wait = bucket_wait(rq, rstore_eval(rq->redis, ADMIN_SCRIPT_LOGIN_BUCKET, 1, 3, one, NULL));
    return wait < 0 ? wait : user_wait;
}

/* The seconds a bucket call's answer says to wait, or -1 (logged) when
 * Redis failed; frees the answer. */
static int bucket_wait(const http_request *rq, redisReply *rep) {
    int wait = -1;
    if (rep && rep->type == REDIS_REPLY_INTEGER) wait = (int)((rep->integer + 999) / 1000);
    else log_error("admin.login.bucket", LOG_S("error", rep && rep->str ? rep->str : rstore_error(rq->redis)), LOG_END);
    if (rep) freeReplyObject(rep);
    return wait;
}

static void cookie_hash_key(const char *cookie, char key[PA_RKEY_MAX]) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    SHA256((const unsigned char *)cookie, strlen(cookie), d);
    pa_hex_encode(d, sizeof d, hex);
    pa_rkey_admin_session(key, PA_RKEY_MAX, hex);
}

/* Sets the pa_session cookie (an empty value with Max-Age=0 clears it). */
static void set_session_cookie(const http_request *rq, const char *value, int max_age) {
    char c[256];
    snprintf(c, sizeof c, "%s=%s; HttpOnly;%s SameSite=Strict; Path=/; Max-Age=%d", SESSION_COOKIE, value,
             rq->app->insecure_http ? "" : " Secure;", max_age);
    http_set_cookie(rq, c);
}

int session_lookup(rstore *r, const admin_app *app, const char *cookie, session_info *out) {
    memset(out, 0, sizeof *out);
    if (strlen(cookie) != B64URL_LEN(SESSION_ID_BYTES) - 1) return 0;
    cookie_hash_key(cookie, out->key);
    redisReply *rep = rstore_command(r, "GETEX %s EX %d", out->key, app->session_ttl_s);
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        if (rep) log_error("admin.session.lookup", LOG_S("error", rep->str), LOG_END);
        if (rep) freeReplyObject(rep);
        return -1;
    }
    long long gen = -1;
    int parsed = rep->type == REDIS_REPLY_STRING ? sscanf(rep->str, "%lld %32s %47s", &gen, out->user, out->csrf) : 0;
    freeReplyObject(rep);
    if (parsed != 3) return 0;
    user_record u;
    char err[160];
    user_result res = user_get(r, out->user, &u, err, sizeof err);
    OPENSSL_cleanse(u.hash, sizeof u.hash);
    if (res == USER_STORE) return -1;
    if (res != USER_OK || u.gen != gen) {
        redisReply *del = rstore_command(r, "DEL %s", out->key);
        if (del) freeReplyObject(del);
        return 0;
    }
    out->role = u.role;
    out->expires_at = (long long)time(NULL) + app->session_ttl_s;
    return 1;
}

/* Makes the session of `u`: cookie and CSRF token into the buffers. false
 * when Redis failed. */
static bool session_create(const http_request *rq, const user_record *u, char cookie[B64URL_LEN(SESSION_ID_BYTES)],
                           char csrf[B64URL_LEN(CSRF_BYTES)]) {
    unsigned char id[SESSION_ID_BYTES], tok[CSRF_BYTES];
    if (RAND_bytes(id, sizeof id) != 1 || RAND_bytes(tok, sizeof tok) != 1) return false;
    b64url_encode(id, sizeof id, cookie);
    b64url_encode(tok, sizeof tok, csrf);
    OPENSSL_cleanse(id, sizeof id);
    char key[PA_RKEY_MAX], value[128];
    cookie_hash_key(cookie, key);
    snprintf(value, sizeof value, "%lld %s %s", u->gen, u->name, csrf);
    redisReply *rep = rstore_command(rq->redis, "SET %s %s EX %d", key, value, rq->app->session_ttl_s);
    bool ok = rep && rep->type == REDIS_REPLY_STATUS;
    if (rep) freeReplyObject(rep);
    return ok;
}

static void reply_session(const http_request *rq, const char *user, admin_role role, const char *csrf,
                          long long expires_at) {
    http_reply_json(rq, 200,
                    json_pack("{s:s,s:s,s:s,s:I}", "user", user, "role", user_role_name(role), "csrf_token", csrf,
                              "expires_at", (json_int_t)expires_at));
}

/* The login's checks after the body: buckets, password, session. */
static void login(const http_request *rq, const char *name, const char *password) {
    int wait = login_bucket(rq, name, false);
    if (wait < 0) {
        http_reply_error(rq, 503, "the store is unavailable");
        return;
    }
    if (wait > 0) {
        http_reply_rate_limited(rq, wait);
        return;
    }
    user_record u;
    char err[160], cookie[B64URL_LEN(SESSION_ID_BYTES)], csrf[B64URL_LEN(CSRF_BYTES)];
    user_result res = user_check_login(rq->redis, rq->app, name, password, &u, err, sizeof err);
    const char *who = user_name_ok(name) ? name : "?";
    if (res == USER_STORE || (res == USER_OK && !session_create(rq, &u, cookie, csrf))) {
        http_reply_error(rq, 503, "the store is unavailable");
        return;
    }
    if (res != USER_OK) {
        trail_append(rq->redis, who, "session.login", who, rq->client_addr, "refused: wrong user name or password");
        http_reply_error(rq, 401, "wrong user name or password");
        return;
    }
    (void)login_bucket(rq, name, true);
    trail_append(rq->redis, name, "session.login", name, rq->client_addr, "ok");
    set_session_cookie(rq, cookie, rq->app->session_ttl_s);
    reply_session(rq, name, u.role, csrf, (long long)time(NULL) + rq->app->session_ttl_s);
    OPENSSL_cleanse(cookie, sizeof cookie);
}

void session_login(const http_request *rq) {
    static const char *const fields[] = {"user", "password", NULL};
    json_t *b = http_body_json(rq, fields);
    if (!b) return;
    const char *name = json_string_value(json_object_get(b, "user"));
    const char *password = json_string_value(json_object_get(b, "password"));
    if (!name) http_reply_error(rq, 400, "field \"user\": expected a string");
    else if (!password) http_reply_error(rq, 400, "field \"password\": expected a string");
    else if (!rq->redis) http_reply_error(rq, 503, "the store is unavailable");
    else login(rq, name, password);
    json_decref(b);
}

void session_get(const http_request *rq) {
    if (!rq->user) {
        http_reply_error(rq, 401, "not logged in");
        return;
    }
    reply_session(rq, rq->user, rq->role, http_session_csrf(rq), (long long)time(NULL) + rq->app->session_ttl_s);
}

void session_logout(const http_request *rq) {
    redisReply *rep = rstore_command(rq->redis, "DEL %s", http_session_key(rq));
    bool ok = rep && rep->type == REDIS_REPLY_INTEGER;
    if (rep) freeReplyObject(rep);
    if (!ok) {
        http_reply_error(rq, 503, "the store is unavailable");
        return;
    }
    http_trail(rq, "session.logout", rq->user, "ok");
    set_session_cookie(rq, "", 0);
    http_reply_json(rq, 200, json_object());
}

void session_refresh_cookie(const http_request *rq, const char *cookie) {
    set_session_cookie(rq, cookie, rq->app->session_ttl_s);
}
