/* host_facts.c -- see host_facts.h.
 *
 * Unlike the machine id (machine_id.c), these facts are sent as they are:
 * they exist so that an operator can find a machine by the serial on its
 * label or the MAC address in a DHCP log, and the server stores them only
 * for orders that collect them. They never feed the machine id, so a new
 * network card changes what is reported, not who the machine is.
 *
 * The serial is DMI product_serial (readable by root only; a placeholder
 * such as "To be filled by O.E.M." counts as none). The MAC addresses are
 * every interface's current address under /sys/class/net but the loopback
 * and all-zero ones (tunnels), at most HOST_MACS_MAX of them: the lowest
 * ones, so the selection does not depend on the order the kernel lists
 * interfaces in. */
#include "host_facts.h"

#include <dirent.h>
#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine_id.h"

static void read_serial(const char *root, host_facts *f) {
    char buf[256];
    if (machine_fact_read(root, "sys/class/dmi/id/product_serial", buf, sizeof buf) != 0) return;
    if (machine_fact_placeholder(buf)) return;
    size_t k = 0;
    for (const char *p = buf; *p && k < HOST_SERIAL_MAX; p++)
        if ((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f) f->serial[k++] = *p;
    f->serial[k] = '\0';
}

static int by_text(const void *a, const void *b) { return strcmp(a, b); }

/* Adds `text` if it is a MAC address, not zero and not already there; keeps
 * the lowest HOST_MACS_MAX (one spare slot holds the candidate). */
static void add_mac(char (*macs)[HOST_MAC_TEXT], size_t *n, const char *text) {
    unsigned char m[6];
    if (!machine_fact_mac(text, m) || (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) == 0) return;
    char norm[HOST_MAC_TEXT];
    snprintf(norm, sizeof norm, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    for (size_t i = 0; i < *n; i++)
        if (strcmp(macs[i], norm) == 0) return;
    memcpy(macs[(*n)++], norm, sizeof norm);
    qsort(macs, *n, HOST_MAC_TEXT, by_text);
    if (*n > HOST_MACS_MAX) *n = HOST_MACS_MAX;
}

static void read_macs(const char *root, host_facts *f) {
    char path[PATH_MAX], rel[PATH_MAX], text[64];
    char macs[HOST_MACS_MAX + 1][HOST_MAC_TEXT];
    size_t n = 0;
    if (snprintf(path, sizeof path, "%s/sys/class/net", root) >= (int)sizeof path) return;
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "lo") == 0 || strlen(e->d_name) >= IFNAMSIZ) continue;
        snprintf(rel, sizeof rel, "sys/class/net/%s/address", e->d_name);
        if (machine_fact_read(root, rel, text, sizeof text) == 0) add_mac(macs, &n, text);
    }
    closedir(d);
    memcpy(f->macs, macs, n * HOST_MAC_TEXT);
    f->n_macs = n;
}

void host_facts_read(const char *root, host_facts *f) {
    memset(f, 0, sizeof *f);
    if (!root || !*root) root = "/";
    read_serial(root, f);
    read_macs(root, f);
}
