/* machine_scan.h -- every record of the machine directory, read bucket by
 * bucket (docs/admin.md "Directory layout", "Export").
 *
 * An export of all machines (or of all with a given status or last
 * contact) needs no index: the records' hash buckets hold them all. This
 * reads MACHINE_SCAN_BUCKETS buckets per round trip (pipelined HGETALL)
 * and decodes them in C, several times faster than the index walk, which
 * makes one script call per 200 members and one HGET per member. Rows come
 * in bucket order (bucket number, then the bucket's own order): stable
 * while the directory does not change, but no order a reader could use;
 * a record written during the scan may be missed or seen (never twice in
 * one bucket). */
#ifndef PA_ADMIN_MACHINE_SCAN_H
#define PA_ADMIN_MACHINE_SCAN_H

#include <stdbool.h>

#include "machine_dir.h"
#include "machine_rows.h"
#include "redis_store.h"

#define MACHINE_SCAN_BUCKETS 256 /* hash buckets per round trip */

typedef struct machine_scan machine_scan;

/* Whether f can be answered by a scan: it holds only filters checked on
 * the record for free (status, last contact), none that selects few. */
bool machine_scan_fits(const machine_filters *f);

/* A scan through `r` for the records matching f (machine_filters_match).
 * NULL when out of memory. */
machine_scan *machine_scan_open(rstore *r, const machine_filters *f);

/* The next matching record: 1, 0 at the end, -1 store error
 * (machine_scan_error). Valid until the next call. */
int machine_scan_next(machine_scan *s, const machine_record **rec);

const char *machine_scan_error(const machine_scan *s);
void machine_scan_close(machine_scan *s);

#endif
