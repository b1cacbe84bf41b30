/* policy_machines.h -- the C side of policy.lua's self-service operations
 * (docs/machines.md "Self-service: listing and releasing machines"): list
 * the places of a key and release one, each one EVALSHA. The script names a
 * place by its handle (policy.lua, release_handle), never by its field, so
 * nothing here sees or returns anything derived from a machine id but the
 * caller's own. */
#ifndef PA_ACTIVATION_POLICY_MACHINES_H
#define PA_ACTIVATION_POLICY_MACHINES_H

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"

#define POLICY_HANDLE_LEN 16        /* hex characters of a place's handle */
#define POLICY_LIST_MAX 100         /* places a listing shows at most (policy.lua LIST_MAX) */
#define POLICY_HOSTNAME_MAX 64      /* what a place keeps of the hostname */
#define POLICY_UNLIMITED UINT32_MAX /* releases_left when the group allows any number */

/* One listed place. */
typedef struct policy_listed {
    char handle[POLICY_HANDLE_LEN + 1];     /* names the place for release */
    char hostname[POLICY_HOSTNAME_MAX + 1]; /* as the machine last sent it; "" when not known */
    int64_t last_seen;                      /* unix seconds; 0 for places older than the format */
    int64_t expires_at;                     /* 0: never */
    bool this_machine;                      /* the place of the machine id the caller sent */
} policy_listed;

/* A key's listing, oldest last seen first. */
typedef struct policy_list_result {
    policy_result r;         /* status (refusals as for every operation) and version */
    uint32_t max_machines;   /* the group's max_machines (0: unlimited) */
    uint32_t releases_left;  /* this period; POLICY_UNLIMITED when max_transfers is 0 */
    int64_t next_release_at; /* when the next release is allowed, when none is left; else 0 */
    uint32_t places;         /* places the key holds (more than `n` beyond POLICY_LIST_MAX) */
    size_t n;                /* entries in `e` */
    policy_listed e[POLICY_LIST_MAX];
} policy_list_result;

/* Lists the places of (group, serial). `machine_id` (32 bytes, or NULL)
 * marks the caller's own place. */
void policy_list(rstore *r, int script, const policy_limits *l, uint32_t group, uint32_t serial,
                 const uint8_t *machine_id, const char *address_key, policy_list_result *out);

/* Frees the place named by `handle` (POLICY_HANDLE_LEN lowercase hex):
 * NOT_FOUND when no place of the key has it, CHURN_LIMITED when the key's
 * releases for the period are used up. On OK out->count is the places left
 * and *releases_left the releases left this period. `ip` goes to the
 * machine log. */
void policy_release(rstore *r, int script, const policy_limits *l, uint32_t group, uint32_t serial, const char *handle,
                    const char *address_key, const char *ip, policy_result *out, uint32_t *releases_left);

/* The KEYS of a list (`list`) or release call as policy_list and
 * policy_release build them (policy_call_keys; `address_key` NULL: the
 * Redis Cluster form, the address taken by its own call). */
void policy_machines_call_keys(bool list, uint32_t group, uint32_t serial, const char *address_key, policy_keys *out);

#endif
