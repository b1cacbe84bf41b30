/* machine_id.h -- (internal) the stable identity of this machine's hardware.
 * See machine_id.c for what goes in and why. */
#ifndef PA_MACHINE_ID_H
#define PA_MACHINE_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MACHINE_ID_LEN 32

/* The hardware facts read from the system, already normalised. Empty
 * strings are facts that were missing or known placeholders. */
typedef struct machine_facts {
    char product_uuid[64];   /* DMI system UUID: set by the maker, kept across reinstalls */
    char board_serial[128];  /* DMI baseboard serial: same, for boards with a junk UUID */
    char mac[18];            /* lowest permanent MAC of a built-in physical NIC */
    char os_machine_id[64];  /* /etc/machine-id: last resort, changes on reinstall */
    const char *source;      /* which tier identifies the machine: "dmi", "mac", "machine-id" */
} machine_facts;

/* Reads the facts under `root` ("/" on a real system; tests pass a fake
 * tree with sys/class/dmi/id/..., sys/class/net/..., etc/machine-id).
 * Returns 0, or -1 with `err` when not a single fact is usable. */
int machine_facts_read(const char *root, machine_facts *f, char *err, size_t errlen);

/* The pieces host_facts.c shares: the first line of root/rel, trimmed (0
 * if present and not empty); whether a firmware value is a placeholder many
 * machines share; "aa:bb:cc:dd:ee:ff" (any case) into 6 bytes. */
int machine_fact_read(const char *root, const char *rel, char *buf, size_t n);
bool machine_fact_placeholder(const char *v);
bool machine_fact_mac(const char *text, unsigned char m[6]);

/* HMAC-SHA256(vendor salt, facts of the chosen tier). Pure; -1 only if
 * OpenSSL fails. */
int machine_id_derive(const machine_facts *f, const char *salt, uint8_t out[MACHINE_ID_LEN]);

#endif
