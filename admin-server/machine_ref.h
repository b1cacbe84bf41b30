/* machine_ref.h -- which volume order a machine directory id belongs to,
 * for the seat controls (machines_control.h), which take the directory's
 * ids (GET /api/v1/machines answers them) as well as ORDER-DIGEST.
 *
 * A directory id is derived one way (machine_dir.lua, machine_id) from the
 * order and the machine digest, so it names the order through the
 * directory's record and the digest only by trying the order's machines;
 * machines_control.c does the second step with the order's table. */
#ifndef PA_ADMIN_MACHINE_REF_H
#define PA_ADMIN_MACHINE_REF_H

#include <stddef.h>

#include "redis_store.h"

/* The order serial (into serial, `cap` bytes) of directory id `text`:
 * 1 found, 0 no such machine, 2 a retail machine (no order), -1 with err. */
int machine_ref_order(rstore *r, const char *text, char *serial, size_t cap, char *err, size_t errlen);

#endif
