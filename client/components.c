/* components.c -- see components.h.
 *
 * The machine id (machine_id.c) is one hash of the first usable tier of
 * facts, so it changes whenever that tier does: a container's new MAC on
 * every start, a replaced board. The components are the same facts and one
 * more, each hashed on its own, so the server can tell that most of the
 * machine is still there (docs/machines.md, "Matching a machine to a
 * place"). What is read:
 *   dmi_uuid         sys/class/dmi/id/product_uuid, lower case
 *   board_serial     sys/class/dmi/id/board_serial
 *   disk_serial      the serial of the disk holding "/" (below)
 *   mac              the lowest permanent MAC of a built-in NIC
 *   machine_id_file  etc/machine-id, lower case
 * The values are exactly those machine_facts_read normalises (placeholders
 * already dropped), so the two never disagree about what a fact is.
 *
 * The disk holding "/": the last mountinfo line (proc/self/mountinfo)
 * mounted at "/" names its device as major:minor; sys/dev/block/MAJ:MIN
 * is that device in sysfs, and for a partition (it has a `partition` file)
 * its parent directory is the disk. The serial is the first of
 * device/serial (NVMe, many SCSI/SATA disks), serial (virtio-blk),
 * device/wwid and wwid that is readable and not a placeholder. A root on
 * device-mapper (LVM, LUKS), md RAID, overlay, tmpfs or a btrfs subvolume
 * (major 0) has no such disk: then disk_serial is left out rather than
 * guessed. Every path is read under the facts root, so tests describe the
 * disk with a fake tree (a sys/dev/block link into it, and a mountinfo).
 *
 * Digests are HMAC-SHA256 keyed with the vendor salt (the machine id's
 * key) over "pa-component-v1" 0x00 name 0x00 value: the name is inside the
 * hash, so two components with the same value (a board whose serial is
 * its UUID) still give different digests, and raw serials never leave the
 * machine. */
#include "components.h"

#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "hex.h"
#include "machine_id.h"

#define COMPONENT_TAG "pa-component-v1"
#define DISK_SERIAL_MAX 128

const char *const component_names[COMPONENTS_KNOWN] = {"dmi_uuid", "board_serial", "disk_serial", "mac",
                                                       "machine_id_file"};

int component_digest(const char *salt, const char *name, const char *value, uint8_t out[COMPONENT_DIGEST_LEN]) {
    unsigned char msg[sizeof COMPONENT_TAG + COMPONENT_NAME_MAX + 1 + 256];
    size_t tag = sizeof COMPONENT_TAG, nlen = strlen(name), vlen = strlen(value);
    if (nlen > COMPONENT_NAME_MAX || vlen > 256) return -1;
    memcpy(msg, COMPONENT_TAG, tag); /* with its NUL: the 0x00 after the tag */
    memcpy(msg + tag, name, nlen + 1);
    memcpy(msg + tag + nlen + 1, value, vlen);
    unsigned int len = COMPONENT_DIGEST_LEN;
    if (!HMAC(EVP_sha256(), salt, (int)strlen(salt), msg, tag + nlen + 1 + vlen, out, &len)) return -1;
    return len == COMPONENT_DIGEST_LEN ? 0 : -1;
}

/* major:minor of what is mounted at "/": the last such mountinfo line,
 * since a later mount covers an earlier one. */
static bool root_device(const char *root, unsigned *maj, unsigned *min) {
    char path[PATH_MAX], line[1024], mnt[8];
    if (snprintf(path, sizeof path, "%s/proc/self/mountinfo", root) >= (int)sizeof path) return false;
    FILE *fp = fopen(path, "r");
    if (!fp) return false;
    bool found = false;
    unsigned a, b;
    /* Fields: id, parent id, MAJ:MIN, root within the fs, mount point. */
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "%*s %*s %u:%u %*s %7s", &a, &b, mnt) == 3 && strcmp(mnt, "/") == 0) {
            *maj = a;
            *min = b;
            found = true;
        }
    fclose(fp);
    return found;
}

static void read_disk_serial(const char *root, char out[DISK_SERIAL_MAX]) {
    static const char *const files[] = {"device/serial", "serial", "device/wwid", "wwid"};
    unsigned maj = 0, min = 0;
    char rel[PATH_MAX], probe[32];
    out[0] = '\0';
    if (!root_device(root, &maj, &min) || maj == 0) return;
    snprintf(rel, sizeof rel, "sys/dev/block/%u:%u/partition", maj, min);
    const char *up = machine_fact_read(root, rel, probe, sizeof probe) == 0 ? "/.." : "";
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(rel, sizeof rel, "sys/dev/block/%u:%u%s/%s", maj, min, up, files[i]);
        if (machine_fact_read(root, rel, out, DISK_SERIAL_MAX) == 0 && !machine_fact_placeholder(out)) return;
    }
    out[0] = '\0';
}

int components_read(const char *root, const char *salt, components *out) {
    memset(out, 0, sizeof *out);
    if (!root || !*root) root = "/";
    machine_facts f;
    char why[8]; /* a machine with no fact at all is not an error here */
    (void)machine_facts_read(root, &f, why, sizeof why);
    char disk[DISK_SERIAL_MAX];
    read_disk_serial(root, disk);
    const char *values[COMPONENTS_KNOWN] = {f.product_uuid, f.board_serial, disk, f.mac, f.os_machine_id};
    for (size_t i = 0; i < COMPONENTS_KNOWN; i++) {
        if (!values[i][0]) continue;
        component *c = &out->item[out->n];
        snprintf(c->name, sizeof c->name, "%s", component_names[i]);
        if (component_digest(salt, c->name, values[i], c->digest) != 0) {
            memset(out, 0, sizeof *out);
            return -1;
        }
        out->n++;
    }
    return 0;
}

bool component_name_valid(const char *name) {
    size_t n = strlen(name);
    if (n < 1 || n > COMPONENT_NAME_MAX) return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-'))
            return false;
    return true;
}

const component *components_find(const components *l, const char *name) {
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->item[i].name, name) == 0) return &l->item[i];
    return NULL;
}

int components_format(const components *l, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l->n; i++) {
        char hex[2 * COMPONENT_DIGEST_LEN + 1];
        pa_hex_encode(l->item[i].digest, COMPONENT_DIGEST_LEN, hex);
        int k = snprintf(buf + used, n - used, "%s%s=%s", i ? "," : "", l->item[i].name, hex);
        if (k < 0 || (size_t)k >= n - used) return -1;
        used += (size_t)k;
    }
    return 0;
}

/* One "name=HEX" entry (the `len` bytes at `s`) appended to `out`. */
static int parse_entry(const char *s, size_t len, components *out, char *err, size_t errlen) {
    size_t at = out->n + 1;
    if (out->n == COMPONENTS_MAX) {
        snprintf(err, errlen, "components: more than %d entries", COMPONENTS_MAX);
        return -1;
    }
    const char *eq = memchr(s, '=', len);
    size_t nlen = eq ? (size_t)(eq - s) : len;
    component *c = &out->item[out->n];
    snprintf(c->name, sizeof c->name, "%.*s", (int)(nlen <= COMPONENT_NAME_MAX ? nlen : 0), s);
    if (!eq || nlen > COMPONENT_NAME_MAX || !component_name_valid(c->name)) {
        snprintf(err, errlen, "components entry %zu: the name is not 1-%d characters of [a-z0-9_.-]", at,
                 COMPONENT_NAME_MAX);
        return -1;
    }
    if (components_find(out, c->name)) {
        snprintf(err, errlen, "components entry %zu: duplicate \"%s\"", at, c->name);
        return -1;
    }
    size_t hlen = len - nlen - 1;
    if (hlen != 2 * COMPONENT_DIGEST_LEN ||
        pa_hex_decode(eq + 1, hlen, c->digest, COMPONENT_DIGEST_LEN) != COMPONENT_DIGEST_LEN) {
        snprintf(err, errlen, "components entry %zu (\"%s\"): the digest is not %d hex characters", at, c->name,
                 2 * COMPONENT_DIGEST_LEN);
        return -1;
    }
    out->n++;
    return 0;
}

int components_parse(const char *text, components *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    for (const char *s = text; *s;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (parse_entry(s, len, out, err, errlen) != 0) {
            memset(out, 0, sizeof *out);
            return -1;
        }
        s += len;
        if (comma && !*++s) {
            snprintf(err, errlen, "components: an empty entry after the last comma");
            memset(out, 0, sizeof *out);
            return -1;
        }
    }
    return 0;
}
