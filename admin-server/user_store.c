/* user_store.c -- operator accounts (user_store.h).
 *
 * Writes go through small scripts so an account is created, changed or
 * removed whole: no account without its name in admin:users, no password
 * set on an account removed meanwhile. A new password bumps `gen`, which
 * every session of the account remembers (session.c), so a password
 * change logs the account out everywhere; role changes and removal need
 * nothing more, as each request reads the account again. */
#include "user_store.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis_keys.h"

#define ARGON2_T 3
#define ARGON2_P 1
#define SALT_LEN 16
#define HASH_LEN 32

const char user_add_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'role', ARGV[2], 'hash', ARGV[3], 'created_at', ARGV[4],"
    " 'gen', '1')\n"
    "if KEYS[2] then redis.call('SADD', KEYS[2], ARGV[1]) end\n"
    "return 1\n";

/* ARGV: field, value, and "1" to bump gen. */
const char user_set_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[1], 'gen', 1) end\n"
    "return 1\n";

const char user_remove_lua[] =
    "local n = redis.call('DEL', KEYS[1])\n"
    "if KEYS[2] then redis.call('SREM', KEYS[2], ARGV[1]) end\n"
    "return n\n";

static const char *const ROLE_NAMES[] = {"none", "viewer", "operator", "admin"};

bool user_name_ok(const char *name) {
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > USER_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) return false;
    }
    return true;
}

admin_role user_role_parse(const char *s) {
    for (int r = ROLE_VIEWER; r <= ROLE_ADMIN; r++)
        if (s && strcmp(s, ROLE_NAMES[r]) == 0) return (admin_role)r;
    return ROLE_NONE;
}

const char *user_role_name(admin_role r) { return r >= ROLE_NONE && r <= ROLE_ADMIN ? ROLE_NAMES[r] : "none"; }

int user_hash_password(const admin_app *app, const char *password, char *out, size_t n) {
    unsigned char salt[SALT_LEN];
    if (RAND_bytes(salt, sizeof salt) != 1) return -1;
    if (argon2_encodedlen(ARGON2_T, app->argon2_memory_kib, ARGON2_P, SALT_LEN, HASH_LEN, Argon2_id) > n) return -1;
    int rc = argon2id_hash_encoded(ARGON2_T, app->argon2_memory_kib, ARGON2_P, password, strlen(password), salt,
                                   sizeof salt, HASH_LEN, out, n);
    return rc == ARGON2_OK ? 0 : -1;
}

static user_result bad(char *err, size_t errlen, const char *msg) {
    snprintf(err, errlen, "%s", msg);
    return USER_BAD;
}

static user_result check_name(const char *name, char *err, size_t errlen) {
    if (user_name_ok(name)) return USER_OK;
    return bad(err, errlen, "name: 1 to 32 of a-z, 0-9, '.', '_' and '-'");
}

static user_result check_password(const char *pw, char *err, size_t errlen) {
    size_t n = pw ? strlen(pw) : 0;
    if (n < USER_PASSWORD_MIN) return bad(err, errlen, "password: at least 12 characters");
    if (n > USER_PASSWORD_MAX) return bad(err, errlen, "password: at most 1024 characters");
    for (size_t i = 1; i < n; i++)
        if (pw[i] != pw[0]) return USER_OK;
    return bad(err, errlen, "password: one character repeated is too weak");
}

/* A reply that should be an integer: its value, or -1 after filling err. */
static long long int_reply(rstore *r, redisReply *rep, char *err, size_t errlen) {
    long long v = -1;
    if (!rep) snprintf(err, errlen, "Redis: %s", rstore_error(r));
    else if (rep->type == REDIS_REPLY_INTEGER) v = rep->integer;
    else snprintf(err, errlen, "Redis: %s", rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    if (rep) freeReplyObject(rep);
    return v;
}

/* On Redis Cluster an account's record and the list of names are in two
 * slots, so they are two calls, ordered so the list may name an account
 * that is not there (the list skips it) but an account never exists
 * unlisted: add lists the name first, remove deletes the record first. */
static long long user_add_split(rstore *r, const char **argv, char *err, size_t errlen) {
    redisReply *rep = rstore_command(r, "SADD %s %s", argv[1], argv[2]);
    if (int_reply(r, rep, err, errlen) < 0) return -1;
    const char *one[] = {argv[0], argv[2], argv[3], argv[4], argv[5]};
    return int_reply(r, rstore_eval(r, ADMIN_SCRIPT_USER_ADD, 1, 4, one, NULL), err, errlen);
}

static long long user_remove_split(rstore *r, const char **argv, char *err, size_t errlen) {
    const char *one[] = {argv[0], argv[2]};
    long long n = int_reply(r, rstore_eval(r, ADMIN_SCRIPT_USER_REMOVE, 1, 1, one, NULL), err, errlen);
    if (n < 0) return -1;
    return int_reply(r, rstore_command(r, "SREM %s %s", argv[1], argv[2]), err, errlen) < 0 ? -1 : n;
}

user_result user_add(rstore *r, const admin_app *app, const char *name, const char *role, const char *password,
                     char *err, size_t errlen) {
    if (check_name(name, err, errlen) != USER_OK) return USER_BAD;
    if (user_role_parse(role) == ROLE_NONE) return bad(err, errlen, "role: viewer, operator or admin");
    if (check_password(password, err, errlen) != USER_OK) return USER_BAD;
    char key[PA_RKEY_MAX], hash[160], now[24];
    pa_rkey_admin_user(key, sizeof key, name);
    if (user_hash_password(app, password, hash, sizeof hash) != 0) {
        snprintf(err, errlen, "cannot hash the password");
        return USER_STORE;
    }
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    const char *argv[] = {key, PA_RKEY_ADMIN_USERS, name, role, hash, now};
    long long v = rstore_is_cluster(r)
                      ? user_add_split(r, argv, err, errlen)
                      : int_reply(r, rstore_eval(r, ADMIN_SCRIPT_USER_ADD, 2, 4, argv, NULL), err, errlen);
    OPENSSL_cleanse(hash, sizeof hash);
    if (v < 0) return USER_STORE;
    if (v == 0) {
        snprintf(err, errlen, "user '%s' exists", name);
        return USER_EXISTS;
    }
    return USER_OK;
}

static user_result set_field(rstore *r, const char *name, const char *field, const char *value, bool bump, char *err,
                             size_t errlen) {
    char key[PA_RKEY_MAX];
    pa_rkey_admin_user(key, sizeof key, name);
    const char *argv[] = {key, field, value, bump ? "1" : "0"};
    long long v = int_reply(r, rstore_eval(r, ADMIN_SCRIPT_USER_SET, 1, 3, argv, NULL), err, errlen);
    if (v < 0) return USER_STORE;
    if (v == 0) {
        snprintf(err, errlen, "no user '%s'", name);
        return USER_NOT_FOUND;
    }
    return USER_OK;
}

user_result user_set_password(rstore *r, const admin_app *app, const char *name, const char *password, char *err,
                              size_t errlen) {
    if (check_name(name, err, errlen) != USER_OK || check_password(password, err, errlen) != USER_OK) return USER_BAD;
    char hash[160];
    if (user_hash_password(app, password, hash, sizeof hash) != 0) {
        snprintf(err, errlen, "cannot hash the password");
        return USER_STORE;
    }
    user_result res = set_field(r, name, "hash", hash, true, err, errlen);
    OPENSSL_cleanse(hash, sizeof hash);
    return res;
}

user_result user_set_role(rstore *r, const char *name, const char *role, char *err, size_t errlen) {
    if (check_name(name, err, errlen) != USER_OK) return USER_BAD;
    if (user_role_parse(role) == ROLE_NONE) return bad(err, errlen, "role: viewer, operator or admin");
    return set_field(r, name, "role", role, false, err, errlen);
}

user_result user_remove(rstore *r, const char *name, char *err, size_t errlen) {
    if (check_name(name, err, errlen) != USER_OK) return USER_BAD;
    char key[PA_RKEY_MAX];
    pa_rkey_admin_user(key, sizeof key, name);
    const char *argv[] = {key, PA_RKEY_ADMIN_USERS, name};
    long long v = rstore_is_cluster(r)
                      ? user_remove_split(r, argv, err, errlen)
                      : int_reply(r, rstore_eval(r, ADMIN_SCRIPT_USER_REMOVE, 2, 1, argv, NULL), err, errlen);
    if (v < 0) return USER_STORE;
    if (v == 0) {
        snprintf(err, errlen, "no user '%s'", name);
        return USER_NOT_FOUND;
    }
    return USER_OK;
}

user_result user_get(rstore *r, const char *name, user_record *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (check_name(name, err, errlen) != USER_OK) return USER_BAD;
    char key[PA_RKEY_MAX];
    pa_rkey_admin_user(key, sizeof key, name);
    redisReply *rep = rstore_command(r, "HMGET %s role hash created_at gen", key);
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 4) {
        snprintf(err, errlen, "Redis: %s", !rep ? rstore_error(r) : rep->type == REDIS_REPLY_ERROR ? rep->str : "?");
        if (rep) freeReplyObject(rep);
        return USER_STORE;
    }
    user_result res = USER_NOT_FOUND;
    redisReply **e = rep->element;
    if (e[0]->type == REDIS_REPLY_STRING && e[1]->type == REDIS_REPLY_STRING && e[1]->len < sizeof out->hash) {
        snprintf(out->name, sizeof out->name, "%s", name);
        out->role = user_role_parse(e[0]->str);
        memcpy(out->hash, e[1]->str, e[1]->len);
        out->created_at = e[2]->type == REDIS_REPLY_STRING ? atoll(e[2]->str) : 0;
        out->gen = e[3]->type == REDIS_REPLY_STRING ? atoll(e[3]->str) : 0;
        res = out->role == ROLE_NONE ? USER_NOT_FOUND : USER_OK;
    }
    if (res == USER_NOT_FOUND) snprintf(err, errlen, "no user '%s'", name);
    freeReplyObject(rep);
    return res;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const user_record *)a)->name, ((const user_record *)b)->name);
}

user_result user_list(rstore *r, user_record **out, size_t *n, char *err, size_t errlen) {
    *out = NULL;
    *n = 0;
    redisReply *rep = rstore_command(r, "SMEMBERS %s", PA_RKEY_ADMIN_USERS);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "Redis: %s", !rep ? rstore_error(r) : rep->type == REDIS_REPLY_ERROR ? rep->str : "?");
        if (rep) freeReplyObject(rep);
        return USER_STORE;
    }
    user_record *list = calloc(rep->elements ? rep->elements : 1, sizeof *list);
    user_result res = list ? USER_OK : USER_STORE;
    for (size_t i = 0; res == USER_OK && i < rep->elements; i++) {
        user_result one = user_get(r, rep->element[i]->str, &list[*n], err, errlen);
        if (one == USER_OK) {
            OPENSSL_cleanse(list[*n].hash, sizeof list[*n].hash);
            (*n)++;
        } else if (one != USER_NOT_FOUND && one != USER_BAD) {
            res = one; /* removed meanwhile, or a stray name: skipped */
        }
    }
    freeReplyObject(rep);
    if (res != USER_OK) {
        free(list);
        *n = 0;
        return res;
    }
    qsort(list, *n, sizeof *list, by_name);
    *out = list;
    return USER_OK;
}

user_result user_check_login(rstore *r, const admin_app *app, const char *name, const char *password, user_record *out,
                             char *err, size_t errlen) {
    user_result res = user_name_ok(name) ? user_get(r, name, out, err, errlen) : USER_NOT_FOUND;
    if (res == USER_STORE) return res;
    const char *hash = res == USER_OK ? out->hash : app->dummy_hash;
    size_t pwlen = password ? strlen(password) : 0;
    bool match = argon2id_verify(hash, password ? password : "", pwlen) == ARGON2_OK;
    OPENSSL_cleanse(out->hash, sizeof out->hash);
    if (res == USER_OK && match) return USER_OK;
    snprintf(err, errlen, "wrong user name or password");
    return USER_NOT_FOUND;
}
