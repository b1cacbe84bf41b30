/* synth_rows.h -- a made-up machine row source for the exporter's tests and
 * bench/admin_export: n rows with the machine export's columns
 * (docs/admin.md, "Machine search"), each row a function of its number, so
 * a reader can check any row without keeping them. */
#ifndef PA_TEST_SYNTH_ROWS_H
#define PA_TEST_SYNTH_ROWS_H

#include <stdint.h>

#include "export.h"

/* The first row's first_seen; row i was first seen i seconds later. */
#define SYNTH_T0 1796000000

/* A source of n rows (close frees it). NULL fields stay NULL on failure. */
export_source synth_machine_rows(uint64_t n);

/* Row i's hostname, as the source writes it ("ws-0000017"). */
void synth_hostname(uint64_t i, char *buf, size_t n);

#endif
