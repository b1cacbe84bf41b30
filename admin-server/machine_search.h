/* machine_search.h -- a search of the machine directory: the filters are
 * turned into one walk of the ordered index (the most selective filter's
 * part of it), and every other filter is checked on the records the walk
 * brings back (docs/admin.md "Machine search").
 *
 * Order of preference for the walk: group+serial, then an exact host
 * serial, MAC, hostname, IP, order, then the same as prefixes, then the
 * group alone, then last contact (from/to, or everything). The walk takes
 * the index a batch at a time (one script call each), so a caller pages
 * with a bounded amount of work per page and resumes from a cursor: the
 * index member it stopped at, base64url. */
#ifndef PA_ADMIN_MACHINE_SEARCH_H
#define PA_ADMIN_MACHINE_SEARCH_H

#include <stdbool.h>
#include <stddef.h>

#include "machine_dir.h"
#include "machine_rows.h"
#include "redis_store.h"

#define MACHINE_CURSOR_MAX 128 /* room for any cursor's text */

typedef struct machine_search machine_search;

/* Starts a search for `f` after `cursor` (NULL: from the start). NULL with
 * a message in err for a cursor of other filters or no memory. */
machine_search *machine_search_open(rstore *r, const machine_filters *f, const char *cursor, char *err, size_t errlen);

/* The next matching record: 1, 0 at the end, -1 store error
 * (machine_search_error). Stops once `budget` index entries have been
 * examined since open (0: no bound); 0 is then returned before the end:
 * machine_search_done tells the two apart. */
int machine_search_next(machine_search *s, size_t budget, const machine_record **rec);

/* True once the walk reached the end (no next page). */
bool machine_search_done(const machine_search *s);

/* The cursor after the last record returned (or examined): resumes the
 * search there. */
void machine_search_cursor(const machine_search *s, char out[MACHINE_CURSOR_MAX]);

const char *machine_search_error(const machine_search *s);
void machine_search_close(machine_search *s);

/* Whether record `rec` passes every filter of f (exact or prefix). */
bool machine_filters_match(const machine_filters *f, const machine_record *rec);

#endif
