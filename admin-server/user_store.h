/* user_store.h -- operator accounts in Redis A (docs/admin.md, "Accounts,
 * sessions, roles"): admin:user:NAME holds role, the Argon2id encoded
 * hash, created_at and gen; admin:users lists the names.
 *
 * The `user` commands and the /api/v1/users routes both call these, so
 * the rules (names, password strength, roles) are checked in one place.
 * Each call returns a user_result; on USER_BAD and USER_STORE `err` says
 * why, naming the field. */
#ifndef PA_ADMIN_USER_STORE_H
#define PA_ADMIN_USER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin_app.h"
#include "http_api.h"
#include "redis_store.h"

#define USER_NAME_MAX 32
#define USER_PASSWORD_MIN 12
#define USER_PASSWORD_MAX 1024

typedef enum user_result {
    USER_OK = 0,
    USER_BAD,       /* bad input: name, role or password (err says which) */
    USER_EXISTS,    /* add: the name is taken */
    USER_NOT_FOUND, /* no such account */
    USER_STORE,     /* Redis failed or refused */
} user_result;

typedef struct user_record {
    char name[USER_NAME_MAX + 1]; /* the account's name */
    admin_role role;              /* what it may do */
    long long created_at;         /* unix seconds */
    long long gen;                /* bumped by a new password; sessions remember it */
    char hash[160];               /* Argon2id encoded string */
} user_record;

/* Scripts the admin connections register (admin_app.c). */
extern const char user_add_lua[], user_set_lua[], user_remove_lua[];

/* Names are [a-z0-9._-]{1,32}. */
bool user_name_ok(const char *name);
/* "viewer", "operator", "admin" -> the role; ROLE_NONE if none of them. */
admin_role user_role_parse(const char *s);
const char *user_role_name(admin_role r);

/* Argon2id encoded hash of `password` (t=3, m=app->argon2_memory_kib,
 * p=1, 16-byte random salt). 0 or -1. */
int user_hash_password(const admin_app *app, const char *password, char *out, size_t n);

user_result user_add(rstore *r, const admin_app *app, const char *name, const char *role, const char *password,
                     char *err, size_t errlen);
user_result user_get(rstore *r, const char *name, user_record *out, char *err, size_t errlen);
user_result user_set_password(rstore *r, const admin_app *app, const char *name, const char *password, char *err,
                              size_t errlen);
user_result user_set_role(rstore *r, const char *name, const char *role, char *err, size_t errlen);
user_result user_remove(rstore *r, const char *name, char *err, size_t errlen);
/* Every account, sorted by name, into a malloc'd array (*n of them; hashes
 * left empty). */
user_result user_list(rstore *r, user_record **out, size_t *n, char *err, size_t errlen);

/* Checks a login: USER_OK and *out filled when `password` is the
 * account's; USER_NOT_FOUND for an unknown name or a wrong password alike
 * (both cost one Argon2id verification); USER_STORE when Redis failed. */
user_result user_check_login(rstore *r, const admin_app *app, const char *name, const char *password, user_record *out,
                             char *err, size_t errlen);

#endif
