/* machine_id.c -- a stable 32-byte identity of this machine's hardware.
 *
 * The activation server lets the same key re-activate the same machine
 * without spending another place (docs/activation-flow.md), so the id must survive what
 * customers do to machines -- reinstalling or upgrading the OS, renaming the
 * host, adding a USB network dongle -- yet differ between two machines.
 * Hardware facts do that; anything written by the OS installer does not.
 *
 * What goes in, in tiers. The first tier with a usable fact is the identity
 * and the lower tiers are ignored, so a change in a lower tier (a new NIC on
 * a machine with a good DMI UUID) never changes the id:
 *   1. "dmi": the SMBIOS system UUID (/sys/class/dmi/id/product_uuid) and the
 *      baseboard serial (board_serial). Written by the maker into firmware;
 *      unchanged by reinstalls and disk swaps. Known placeholder values
 *      ("03000200-0400-...", all zeros, "To be filled by O.E.M.", ...) are
 *      treated as missing. Both files are readable by root only, so run
 *      activation as root (the systemd unit does).
 *   2. "mac": the lowest permanent MAC address of a physical, non-USB NIC
 *      (one with a /sys/class/net/X/device link). The permanent address
 *      comes from the driver (ETHTOOL_GPERMADDR) so a MAC changed by the user
 *      does not count; virtual interfaces, USB dongles and locally
 *      administered or multicast addresses are skipped. The lowest address
 *      is used, not the set, so adding a card rarely changes the id.
 *   3. "machine-id": /etc/machine-id. Only for machines with neither (some
 *      containers). It does NOT survive a reinstall: such a machine spends a
 *      new place when reinstalled.
 * Hostnames, IP addresses, disk serials and CPU ids are left out: they
 * change with configuration, are absent in VMs, or identify a part rather
 * than the machine.
 *
 * The id is HMAC-SHA256 keyed with the vendor's salt over a versioned,
 * labelled encoding of the chosen tier. The salt means two vendors using this
 * library see unrelated ids for the same machine, and the raw serials never
 * leave the machine.
 *
 * Every path is read under a root directory ("/" normally) so tests can
 * describe any machine with a fake tree; in a fake tree the `address` file
 * stands in for the permanent address. */
#include "machine_id.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads the first line of root/rel into buf, trimmed. 0 if present. */
int machine_fact_read(const char *root, const char *rel, char *buf, size_t n) {
    char path[PATH_MAX];
    buf[0] = '\0';
    if (snprintf(path, sizeof path, "%s/%s", root, rel) >= (int)sizeof path) return -1;
    FILE *fp = fopen(path, "r");
    if (!fp) return -1;
    char *ok = fgets(buf, (int)n, fp);
    fclose(fp);
    if (!ok) { buf[0] = '\0'; return -1; }
    size_t len = strlen(buf);
    while (len > 0 && isspace((unsigned char)buf[len - 1])) buf[--len] = '\0';
    size_t start = 0;
    while (buf[start] && isspace((unsigned char)buf[start])) start++;
    memmove(buf, buf + start, len - start + 1);
    return buf[0] ? 0 : -1;
}

static void lowercase(char *s) {
    for (; *s; s++) *s = (char)tolower((unsigned char)*s);
}

/* Firmware placeholders that many machines share, so they identify nothing. */
bool machine_fact_placeholder(const char *v) {
    static const char *const junk[] = {
        "none", "not specified", "to be filled by o.e.m.", "default string", "not applicable",
        "system serial number", "base board serial number", "0123456789", "n/a", "oem", "invalid",
        "03000200-0400-0500-0006-000700080009", "ffffffff-ffff-ffff-ffff-ffffffffffff",
    };
    if (strlen(v) < 4) return true;
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        if (strcasecmp(v, junk[i]) == 0) return true;
    /* All one character apart from separators: "00000000-0000-...", "xxxxxxxx". */
    char first = 0;
    for (const char *s = v; *s; s++) {
        if (*s == '-' || *s == ' ' || *s == ':' || *s == '.') continue;
        if (!first) first = *s;
        else if (*s != first) return false;
    }
    return true;
}

static void read_dmi(const char *root, machine_facts *f) {
    if (machine_fact_read(root, "sys/class/dmi/id/product_uuid", f->product_uuid, sizeof f->product_uuid) == 0) {
        lowercase(f->product_uuid);
        if (machine_fact_placeholder(f->product_uuid)) f->product_uuid[0] = '\0';
    }
    if (machine_fact_read(root, "sys/class/dmi/id/board_serial", f->board_serial, sizeof f->board_serial) == 0)
        if (machine_fact_placeholder(f->board_serial)) f->board_serial[0] = '\0';
}

/* A burned-in address: not zero, not multicast, not locally administered. */
static bool is_hardware_mac(const unsigned char m[6]) {
    if (m[0] & 0x03) return false;
    return (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) != 0;
}

bool machine_fact_mac(const char *text, unsigned char m[6]) {
    unsigned v[6];
    char tail;
    if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
        return false;
    for (int i = 0; i < 6; i++) m[i] = (unsigned char)v[i];
    return true;
}

/* The driver's permanent address (unaffected by `ip link set address`). */
static bool permanent_mac(const char *ifname, unsigned char m[6]) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    union {
        struct ethtool_perm_addr pa;
        unsigned char raw[sizeof(struct ethtool_perm_addr) + 32];
    } req;
    memset(&req, 0, sizeof req);
    req.pa.cmd = ETHTOOL_GPERMADDR;
    req.pa.size = 32;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    ifr.ifr_data = (void *)&req;
    int rc = ioctl(fd, SIOCETHTOOL, &ifr);
    close(fd);
    if (rc != 0 || req.pa.size != 6) return false;
    memcpy(m, req.pa.data, 6);
    return is_hardware_mac(m);
}

/* Physical: has a bus device behind it. Built in: that device is not USB. */
static bool is_builtin_nic(const char *root, const char *ifname) {
    char path[PATH_MAX], link[PATH_MAX];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/sys/class/net/%s/device", root, ifname) >= (int)sizeof path) return false;
    if (stat(path, &st) != 0) return false;
    if (snprintf(path, sizeof path, "%s/sys/class/net/%s/device/subsystem", root, ifname) >= (int)sizeof path)
        return false;
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n > 0) {
        link[n] = '\0';
        const char *base = strrchr(link, '/');
        if (strcmp(base ? base + 1 : link, "usb") == 0) return false;
    }
    return true;
}

/* The address of one NIC if it is a usable permanent one. */
static bool nic_mac(const char *root, const char *ifname, unsigned char m[6]) {
    if (strcmp(root, "/") == 0 && permanent_mac(ifname, m)) return true;
    char rel[PATH_MAX], text[64];
    snprintf(rel, sizeof rel, "sys/class/net/%s/addr_assign_type", ifname);
    /* 0 = NET_ADDR_PERM; anything else was randomised or set by hand. */
    if (machine_fact_read(root, rel, text, sizeof text) == 0 && strcmp(text, "0") != 0) return false;
    snprintf(rel, sizeof rel, "sys/class/net/%s/address", ifname);
    if (machine_fact_read(root, rel, text, sizeof text) != 0) return false;
    return machine_fact_mac(text, m) && is_hardware_mac(m);
}

static void read_lowest_mac(const char *root, machine_facts *f) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sys/class/net", root);
    DIR *d = opendir(path);
    if (!d) return;
    unsigned char best[6], m[6];
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= IFNAMSIZ) continue;
        if (!is_builtin_nic(root, e->d_name) || !nic_mac(root, e->d_name, m)) continue;
        if (!found || memcmp(m, best, 6) < 0) memcpy(best, m, 6);
        found = true;
    }
    closedir(d);
    if (found)
        snprintf(f->mac, sizeof f->mac, "%02x:%02x:%02x:%02x:%02x:%02x", best[0], best[1], best[2], best[3],
                 best[4], best[5]);
}

int machine_facts_read(const char *root, machine_facts *f, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    if (!root || !*root) root = "/";
    read_dmi(root, f);
    read_lowest_mac(root, f);
    if (machine_fact_read(root, "etc/machine-id", f->os_machine_id, sizeof f->os_machine_id) == 0) {
        lowercase(f->os_machine_id);
        if (machine_fact_placeholder(f->os_machine_id)) f->os_machine_id[0] = '\0';
    }
    if (f->product_uuid[0] || f->board_serial[0]) f->source = "dmi";
    else if (f->mac[0]) f->source = "mac";
    else if (f->os_machine_id[0]) f->source = "machine-id";
    else {
        snprintf(err, errlen,
                 "cannot identify this machine: no DMI UUID or board serial (run as root?), no "
                 "permanent MAC address of a built-in NIC, and no /etc/machine-id under %s",
                 root);
        return -1;
    }
    return 0;
}

int machine_id_derive(const machine_facts *f, const char *salt, uint8_t out[MACHINE_ID_LEN]) {
    char msg[512];
    int n;
    if (strcmp(f->source, "dmi") == 0)
        n = snprintf(msg, sizeof msg, "pa-machine-id/v1\ndmi\nuuid:%s\nboard:%s\n", f->product_uuid,
                     f->board_serial);
    else if (strcmp(f->source, "mac") == 0)
        n = snprintf(msg, sizeof msg, "pa-machine-id/v1\nmac\nmac:%s\n", f->mac);
    else
        n = snprintf(msg, sizeof msg, "pa-machine-id/v1\nmachine-id\nid:%s\n", f->os_machine_id);
    if (n < 0 || (size_t)n >= sizeof msg) return -1;
    unsigned int len = MACHINE_ID_LEN;
    if (!HMAC(EVP_sha256(), salt, (int)strlen(salt), (const unsigned char *)msg, (size_t)n, out, &len))
        return -1;
    return len == MACHINE_ID_LEN ? 0 : -1;
}
