/* order_controls.h -- the operator's seat controls on a stored order, shared
 * by `activation-server order designate|undesignate|set-match|machines` and
 * the admin server's routes (docs/volume.md, "Operator controls").
 *
 * The decisions on one machine (approve, deny, force) are volume_decide
 * (volume_policy.h): one script call, atomic with the seats. Designation is
 * one SADD or SREM on {o:S}:designated of the name volume_designation_name
 * builds, so the command line, the API and the server name a device alike.
 * The machine table is read with HSCAN pages, never in one reply. */
#ifndef PA_ACTIVATION_ORDER_CONTROLS_H
#define PA_ACTIVATION_ORDER_CONTROLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "order_record.h"
#include "redis_store.h"
#include "volume_policy.h"

/* Adds (add) or removes the designated device `name` (a
 * volume_designation_name) of the order. *changed: the set changed.
 * 0, 1 when no such order is imported, -1 with err. */
int order_designate(rstore *r, const char *serial, const char *name, bool add, bool *changed, char *err, size_t errlen);

/* Component matching (docs/machines.md): the order's machine_match K, 1..
 * ORDER_MATCH_MAX, or 0 for exact. The text forms are "exact" and the
 * number; order_match_parse returns 0, or -1 for anything else (so "17",
 * "-1", "3x" and "" are refused). */
int order_match_parse(const char *text, unsigned *k);

/* Sets the order's machine_match to k (at most ORDER_MATCH_MAX), bumping its
 * version so every server's cache reloads it. *version: the version after.
 * 0 set, 2 it was k already, 1 no such order, -1 with err. */
int order_set_match(rstore *r, const char *serial, unsigned k, uint64_t *version, char *err, size_t errlen);

/* One machine of a table page: its digest, decoded record and facts (a
 * string reply, or NULL when the order collects none or `with_facts` was
 * false). Returns 0 to go on, anything else to stop with that value. */
typedef int (*order_machine_fn)(void *arg, const uint8_t digest[VOLUME_DIGEST_LEN], const volume_record *m,
                                const redisReply *facts);

/* Calls fn for every machine record of the order (entries that are not a
 * record are skipped). 0, fn's value when it stopped, -1 with err. */
int order_machines_each(rstore *r, const order_record *rec, bool with_facts, order_machine_fn fn, void *arg, char *err,
                        size_t errlen);

#endif
