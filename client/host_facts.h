/* host_facts.h -- (internal) the facts a volume order may collect about a
 * machine (ActivateRequest.host_serial, mac_addresses): how an operator
 * recognises and designates devices (docs/volume.md, "Operator controls"). */
#ifndef PA_HOST_FACTS_H
#define PA_HOST_FACTS_H

#include <stddef.h>

#define HOST_SERIAL_MAX 64 /* printable characters ActivateRequest.host_serial allows */
#define HOST_MACS_MAX 8    /* entries ActivateRequest.mac_addresses allows */
#define HOST_MAC_TEXT 18   /* "aa:bb:cc:dd:ee:ff" and its NUL */

typedef struct host_facts {
    char serial[HOST_SERIAL_MAX + 1];        /* DMI product serial; "" when unreadable or a placeholder */
    char macs[HOST_MACS_MAX][HOST_MAC_TEXT]; /* distinct, lower case, sorted, so a request is stable */
    size_t n_macs;
} host_facts;

/* Reads them under `root` ("/" or NULL on a real system; tests pass a fake
 * tree, as for machine_facts_read). Missing facts stay empty: none is needed. */
void host_facts_read(const char *root, host_facts *f);

#endif
