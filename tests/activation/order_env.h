/* order_env.h -- volume orders for activation tests: the vendor's order
 * key pair (and a foreign vendor's), order files made with the real
 * `keystore order create`, and the real `activation-server order ...`
 * commands run against the test's Redis A. */
#ifndef TEST_ORDER_ENV_H
#define TEST_ORDER_ENV_H

#include <stddef.h>

#include "act_env.h"

typedef struct order_env {
    act_env *e;
    char vendor_key[300], vendor_pub[300];   /* the vendor's order-signing key pair (PEM) */
    char foreign_key[300], foreign_pub[300]; /* another vendor's */
} order_env;

/* Makes both key pairs in e->dir. Returns 0 or -1. */
int order_env_init(order_env *o, act_env *e);

/* Runs `keystore order create --order-key KEY --out e->dir/NAME ARGS...`
 * (args NULL-terminated; key NULL: the vendor's) and puts the file's path
 * into path. Returns the exit status. */
int order_env_create(order_env *o, const char *key, const char *name, const char *const *args, char *path, size_t n);

/* Runs `activation-server order ARGS... --redis-url URL-of-USER` (user NULL:
 * keystore); out and err (may be NULL) get its output. Returns the exit
 * status. */
int order_env_cli(order_env *o, const char *user, const char *const *args, char **out, char **err);

/* Imports a file as the vendor-hosted server (--order-public-key of the
 * vendor); `extra` flags may be NULL. Returns the exit status. */
int order_env_import(order_env *o, const char *path, const char *const *extra, char **out, char **err);

#endif
