/* machine_ref.c -- a directory id's order (machine_ref.h). */
#include "machine_ref.h"

#include <stdio.h>
#include <time.h>

#include "errbuf.h"
#include "machine_dir.h"

int machine_ref_order(rstore *r, const char *text, char *serial, size_t cap, char *err, size_t errlen) {
    uint8_t id[MD_ID_LEN];
    machine_record rec;
    if (!machine_id_parse(text, id)) return 0;
    int found = machine_dir_get(r, id, (int64_t)time(NULL), &rec);
    if (found < 0) return err_set(err, errlen, "machine directory: %s", rstore_error(r));
    if (found == 0) return 0;
    if (!rec.row.order[0]) return 2;
    snprintf(serial, cap, "%s", rec.row.order);
    return 1;
}
