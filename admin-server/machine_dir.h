/* machine_dir.h -- the machine directory's store: machine_dir.lua (records
 * and the ordered index, with ordered_index.lua in front of it) and the C
 * side of its records (docs/admin.md "The machine directory", "Directory
 * layout").
 *
 * The script is run by SHA on whatever connection the caller has (a
 * request's, the ingest task's), so no connection needs it registered
 * first: on NOSCRIPT it is sent whole once and run again. */
#ifndef PA_ADMIN_MACHINE_DIR_H
#define PA_ADMIN_MACHINE_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine_rows.h"
#include "redis_store.h"

#define MD_ID_LEN 12 /* bytes of a machine id (machine_dir.lua, machine_id) */
#define MACHINE_HISTORY_MAX 4
#define MD_REC_BUCKETS 32768u /* record hash buckets: machine_dir.lua REC_BUCKETS, the same number */

/* The fields of a machine log entry, in the order the ingest passes them
 * (docs/admin.md): op m g s o t ip h mac hs os e was (an entry without one,
 * as written before re-binds existed, passes ''). */
#define MD_ENTRY_FIELDS 13
extern const char *const md_entry_fields[MD_ENTRY_FIELDS];

/* One event of a machine's history. */
typedef struct machine_event {
    char op;   /* the log's op letter: a b r d x p q, or m (the machine's place was re-bound to another) */
    int64_t t; /* unix s */
} machine_event;

/* A record as stored, decoded. */
typedef struct machine_record {
    machine_row row;                            /* the search row (status derived at decode time) */
    size_t n_history;                           /* events in history */
    machine_event history[MACHINE_HISTORY_MAX]; /* newest first */
} machine_record;

/* Runs machine_dir.lua's `op` with `n` more arguments (after the key
 * prefixes the script takes first). The reply, or NULL with the store's
 * error (rstore_error). */
redisReply *machine_dir_call(rstore *r, const char *op, size_t n, const char **argv, const size_t *lens);

/* Decodes a record as machine_dir.lua packs it, deriving its status at
 * `now`. False when it is not one (then *out is zeroed). */
bool machine_record_decode(const uint8_t id[MD_ID_LEN], const char *rec, size_t len, int64_t now, machine_record *out);

/* The record of machine `id`: 1 found, 0 none, -1 store error. */
int machine_dir_get(rstore *r, const uint8_t id[MD_ID_LEN], int64_t now, machine_record *out);

/* base64url (unpadded) of an id, and back; parse is false on anything but
 * MACHINE_ID_TEXT_LEN characters of base64url. */
void machine_id_text(const uint8_t id[MD_ID_LEN], char out[MACHINE_ID_TEXT_LEN + 1]);
bool machine_id_parse(const char *text, uint8_t id[MD_ID_LEN]);

#endif
