/* components.h -- (internal) the hardware components of this machine, each
 * named and hashed on its own (ActivateRequest.components,
 * docs/machines.md), so a place can follow a machine whose machine id
 * changed. See components.c for where each one comes from. */
#ifndef PA_COMPONENTS_H
#define PA_COMPONENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COMPONENTS_MAX 16     /* entries ActivateRequest.components allows */
#define COMPONENT_NAME_MAX 32 /* characters a component name may have */
#define COMPONENT_DIGEST_LEN 32
#define COMPONENTS_KNOWN 5 /* the names this client reads (component_names) */

typedef struct component {
    char name[COMPONENT_NAME_MAX + 1];    /* [a-z0-9_.-]{1,32}: the server matches by name */
    uint8_t digest[COMPONENT_DIGEST_LEN]; /* HMAC-SHA256(vendor salt, tagged name and value): no raw serials */
} component;

typedef struct components {
    component item[COMPONENTS_MAX]; /* distinct names; read ones in component_names order */
    size_t n;                       /* 0: nothing readable (exact matching only) */
} components;

/* The names this client reads, in the order of docs/machines.md. */
extern const char *const component_names[COMPONENTS_KNOWN];

/* Reads every known component under `root` ("/" or NULL on a real system;
 * tests pass a fake tree, as for machine_facts_read) and hashes it with
 * `salt`. Facts that cannot be read, or are firmware placeholders, are left
 * out. Returns 0, or -1 only when hashing fails (then out->n is 0). */
int components_read(const char *root, const char *salt, components *out);

/* HMAC-SHA256(salt, "pa-component-v1" 0x00 name 0x00 value). 0 or -1. */
int component_digest(const char *salt, const char *name, const char *value, uint8_t out[COMPONENT_DIGEST_LEN]);

/* Whether `name` is 1-32 characters of [a-z0-9_.-] (what the server accepts). */
bool component_name_valid(const char *name);

/* The entry called `name`, or NULL. */
const component *components_find(const components *l, const char *name);

/* The text form an offline request carries: "name=HEX,name=HEX" ("" for
 * none). Returns 0, or -1 if it does not fit in `n`. */
int components_format(const components *l, char *buf, size_t n);
/* Reads that form back, checking what the server checks (names valid and
 * unique, 32-byte digests, at most COMPONENTS_MAX). 0, or -1 with `err`
 * naming the entry that was wrong. */
int components_parse(const char *text, components *out, char *err, size_t errlen);

#endif
