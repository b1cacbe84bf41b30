/* order_env.c -- see order_env.h. */
#include "order_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int key_pair(const char *dir, const char *name, char *key, char *pub, size_t n) {
    snprintf(key, n, "%s/%s.pem", dir, name);
    snprintf(pub, n, "%s/%s.pub.pem", dir, name);
    char *gen[] = {"/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out", key, NULL};
    char *out[] = {"/usr/bin/openssl", "pkey", "-in", key, "-pubout", "-out", pub, NULL};
    return fixture_run(gen, NULL, NULL) == 0 && fixture_run(out, NULL, NULL) == 0 ? 0 : -1;
}

int order_env_init(order_env *o, act_env *e) {
    memset(o, 0, sizeof *o);
    o->e = e;
    if (key_pair(e->dir, "order-vendor", o->vendor_key, o->vendor_pub, sizeof o->vendor_key) != 0 ||
        key_pair(e->dir, "order-foreign", o->foreign_key, o->foreign_pub, sizeof o->foreign_key) != 0) {
        fprintf(stderr, "order_env: openssl could not make the order keys\n");
        return -1;
    }
    return 0;
}

int order_env_create(order_env *o, const char *key, const char *name, const char *const *args, char *path, size_t n) {
    snprintf(path, n, "%s/%s", o->e->dir, name);
    const char *argv[96] = {fixture_bin("keystore/keystore"), "order", "create", "--order-key",
                            key ? key : o->vendor_key,        "--out", path};
    int k = 7;
    for (int i = 0; args && args[i] && k < 95; i++) argv[k++] = args[i];
    argv[k] = NULL;
    char *err = NULL;
    int st = fixture_run((char *const *)argv, NULL, &err);
    if (st != 0) fprintf(stderr, "order_env: keystore order create: %s", err ? err : "?\n");
    free(err);
    return st;
}

int order_env_cli(order_env *o, const char *user, const char *const *args, char **out, char **err) {
    char url[256];
    redis_fixture_url(&o->e->a, user ? user : "keystore", url, sizeof url);
    const char *argv[64] = {fixture_bin("activation-server/activation-server"), "order"};
    int k = 2;
    for (int i = 0; args && args[i] && k < 60; i++) argv[k++] = args[i];
    argv[k++] = "--redis-url";
    argv[k++] = url;
    argv[k] = NULL;
    return fixture_run((char *const *)argv, out, err);
}

int order_env_import(order_env *o, const char *path, const char *const *extra, char **out, char **err) {
    const char *args[32] = {"import", path, "--order-public-key", o->vendor_pub};
    int k = 4;
    for (int i = 0; extra && extra[i] && k < 31; i++) args[k++] = extra[i];
    args[k] = NULL;
    return order_env_cli(o, NULL, args, out, err);
}
