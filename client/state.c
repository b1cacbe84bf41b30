/* state.c -- the client's files under its state directory.
 *
 * The license is the one file that matters: if a power cut or a full disk
 * left it half-written, the machine would lose its activation. So every
 * write goes to a temporary file beside the target, is fsync()ed, renamed
 * over the target (atomic on POSIX) and the directory is fsync()ed so the
 * rename itself survives a crash. A reader sees the old license or the new
 * one, never a mix.
 *
 * Nothing read back from disk is trusted: the license file is plain text a
 * user can edit, so the caller verifies its signature and machine binding on
 * every load (client.c), and this file only checks the shape. The format is
 * text with base64 fields so a support engineer can read it and a file
 * mangled by an editor or a mail client fails cleanly.
 *
 * `activate --daemon` and an administrator's `activate renew` may run at the
 * same time; a flock() on STATE_LOCK serialises changes. */
#include "state.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int state_path(char *buf, size_t n, const char *dir, const char *name) {
    int w = snprintf(buf, n, "%s/%s", dir, name);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

int state_dir_ensure(const char *dir, char *err, size_t errlen) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        snprintf(err, errlen, "state directory path too long");
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create state directory %s: %s", path, strerror(errno));
            return -1;
        }
        *p = saved;
        if (saved == '\0') break;
    }
    return 0;
}

int state_lock(const char *dir, char *err, size_t errlen) {
    char path[PATH_MAX];
    if (state_dir_ensure(dir, err, errlen) != 0) return -1;
    if (state_path(path, sizeof path, dir, STATE_LOCK) != 0) {
        snprintf(err, errlen, "state directory path too long");
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void state_unlock(int fd) {
    if (fd >= 0) close(fd);  /* closing releases the flock */
}

static int write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int state_write_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err, size_t errlen) {
    char dir[PATH_MAX], tmp[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) > 0 ? (int)(slash - path) : 1, path);
    else snprintf(dir, sizeof dir, ".");
    if (snprintf(tmp, sizeof tmp, "%s/.%s.tmp.XXXXXX", dir, base) >= (int)sizeof tmp) {
        snprintf(err, errlen, "path too long: %s", path);
        return -1;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write in %s: %s", dir, strerror(errno));
        return -1;
    }
    const char *step = "write";
    if (fchmod(fd, mode) != 0) step = "chmod";
    else if (write_all(fd, data, len) != 0) step = "write";
    else if (fsync(fd) != 0) step = "fsync";
    else step = NULL;
    int saved = errno;
    if (close(fd) != 0 && !step) { step = "close"; saved = errno; }
    if (!step && rename(tmp, path) != 0) { step = "rename"; saved = errno; }
    if (step) {
        unlink(tmp);
        snprintf(err, errlen, "cannot write %s (%s): %s", path, step, strerror(saved));
        return -1;
    }
    if (fsync_dir(dir) != 0) {
        snprintf(err, errlen, "cannot sync directory %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int state_read_file(const char *path, char **data, size_t *len, char *err, size_t errlen) {
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 1;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(STATE_FILE_MAX + 1);
    size_t used = 0;
    ssize_t r = 0;
    while (buf && used <= STATE_FILE_MAX) {
        r = read(fd, buf + used, STATE_FILE_MAX + 1 - used);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        used += (size_t)r;
    }
    int saved = errno;
    close(fd);
    if (!buf || r < 0 || used > STATE_FILE_MAX) {
        if (!buf) snprintf(err, errlen, "out of memory");
        else if (r < 0) snprintf(err, errlen, "cannot read %s: %s", path, strerror(saved));
        else snprintf(err, errlen, "%s is larger than %d bytes: not a file of ours", path, STATE_FILE_MAX);
        free(buf);
        return -1;
    }
    buf[used] = '\0';
    *data = buf;
    *len = used;
    return 0;
}

/* ---- text fields and base64 ----------------------------------------------- */

int text_field(const char *text, const char *name, const char **val, size_t *len) {
    size_t nlen = strlen(name);
    int found = 0;
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t llen = end ? (size_t)(end - line) : strlen(line);
        if (llen > nlen && strncmp(line, name, nlen) == 0 && line[nlen] == ':') {
            if (found) return -1;
            found = 1;
            const char *v = line + nlen + 1;
            const char *stop = line + llen;
            while (v < stop && isspace((unsigned char)*v)) v++;
            while (stop > v && isspace((unsigned char)stop[-1])) stop--;
            *val = v;
            *len = (size_t)(stop - v);
        }
        line = end ? end + 1 : NULL;
    }
    return found ? 0 : 1;
}

int text_field_copy(const char *text, const char *name, char *out, size_t n) {
    const char *v;
    size_t len;
    int rc = text_field(text, name, &v, &len);
    if (rc != 0) return rc;
    if (len >= n) return -1;
    memcpy(out, v, len);
    out[len] = '\0';
    return 0;
}

char *b64_encode(const uint8_t *data, size_t len) {
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out) EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

int b64_decode(const char *text, uint8_t **out, size_t *len) {
    size_t n = strlen(text);
    *out = NULL;
    if (n % 4 != 0) return -1;
    uint8_t *buf = malloc(n / 4 * 3 + 1);
    if (!buf) return -1;
    int got = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)n);
    if (got < 0) {
        free(buf);
        return -1;
    }
    size_t pad = 0;
    if (n >= 1 && text[n - 1] == '=') pad++;
    if (n >= 2 && text[n - 2] == '=') pad++;
    *out = buf;
    *len = (size_t)got - pad;
    return 0;
}

/* ---- the license file ------------------------------------------------------ */

/* The lines of an on-premises license's order, or "" (malloc'd; NULL
 * without memory). */
static char *order_lines(const signed_license *s) {
    if (s->order_len == 0) return strdup("");
    char *sig = b64_encode(s->order_signature, s->order_signature_len);
    char *order = b64_encode(s->order, s->order_len);
    char *out = NULL;
    if (sig && order) {
        size_t n = strlen(sig) + strlen(order) + 128;
        out = malloc(n);
        if (out) snprintf(out, n, "order_key_id: %s\norder_signature: %s\norder: %s\n", s->order_key_id, sig, order);
    }
    free(sig);
    free(order);
    return out;
}

char *license_file_format(const signed_license *s) {
    char *sig = b64_encode(s->signature, s->signature_len);
    char *lic = b64_encode(s->license, s->license_len);
    char *path = b64_encode(s->tree_path[0], s->tree_path_len * MERKLE_HASH_LEN);
    char *order = order_lines(s);
    char *out = NULL;
    if (sig && lic && path && order) {
        const volume_counts *v = &s->volume;
        size_t n = strlen(sig) + strlen(lic) + strlen(path) + strlen(order) + 640;
        out = malloc(n);
        if (out)
            snprintf(out, n,
                     LICENSE_FILE_HEADER
                     " -- signed by the vendor; any edit makes it invalid\n"
                     "key_id: %s\nactivation_count: %u\nsignature: %s\ntree_index: %u\ntree_size: %u\n"
                     "tree_path: %s\nlicense: %s\n%s"
                     "volume_count: %u\nvolume_threshold: %u\nvolume_seats: %u\nvolume_seats_used: %u\n",
                     s->key_id, (unsigned)s->activation_count, sig, (unsigned)s->tree_index, (unsigned)s->tree_size,
                     path, lic, order, (unsigned)v->count, (unsigned)v->threshold, (unsigned)v->seats,
                     (unsigned)v->seats_used);
    }
    free(sig);
    free(lic);
    free(path);
    free(order);
    return out;
}

/* Decodes the base64 value of field `name`; -1 with `err` if absent or bad. */
static int field_bytes(const char *text, const char *name, uint8_t **out, size_t *len, char *err,
                       size_t errlen) {
    char *b64 = malloc(STATE_FILE_MAX + 1);
    int rc = b64 ? text_field_copy(text, name, b64, STATE_FILE_MAX + 1) : -1;
    if (rc == 0) rc = b64_decode(b64, out, len);
    else rc = -1;
    free(b64);
    if (rc != 0) snprintf(err, errlen, "field \"%s\" is missing, repeated or not base64", name);
    return rc;
}

/* Decimal digits only (no sign or blank) within 32 bits; 0 or -1. */
static int parse_u32(const char *s, uint32_t *out) {
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (!isdigit((unsigned char)s[0]) || *end || errno || n > UINT32_MAX) return -1;
    *out = (uint32_t)n;
    return 0;
}

/* An optional decimal field; 0 (absent reads as 0) or -1 with `err`. */
static int optional_u32(const char *text, const char *name, uint32_t *out, char *err, size_t errlen) {
    char value[16];
    int rc = text_field_copy(text, name, value, sizeof value);
    *out = 0;
    if (rc == 1) return 0;
    if (rc == 0 && parse_u32(value, out) == 0) return 0;
    snprintf(err, errlen, "field \"%s\" is repeated or not a number (0..%u)", name, UINT32_MAX);
    return -1;
}

/* A base64 field that must decode to exactly `want` bytes into `out`. */
static int fixed_bytes(const char *text, const char *name, uint8_t *out, size_t want, size_t *got, char *err,
                       size_t errlen) {
    uint8_t *b = NULL;
    size_t len = 0;
    if (field_bytes(text, name, &b, &len, err, errlen) != 0) return -1;
    if (len != want) {
        free(b);
        snprintf(err, errlen, "%s is %zu bytes, want %zu", name, len, want);
        return -1;
    }
    memcpy(out, b, len);
    *got = len;
    free(b);
    return 0;
}

/* The order of an on-premises license: its three lines, or none of them
 * (a license of the vendor's own servers, or a file older than orders). */
static int parse_order(const char *text, signed_license *s, char *err, size_t errlen) {
    const char *v;
    size_t len;
    int present = (text_field(text, "order", &v, &len) != 1) + (text_field(text, "order_signature", &v, &len) != 1) +
                  (text_field(text, "order_key_id", &v, &len) != 1);
    if (present == 0) return 0;
    if (present != 3) {
        snprintf(err, errlen, "fields \"order\", \"order_signature\" and \"order_key_id\" go together");
        return -1;
    }
    if (text_field_copy(text, "order_key_id", s->order_key_id, sizeof s->order_key_id) != 0) {
        snprintf(err, errlen, "field \"order_key_id\" is repeated or too long");
        return -1;
    }
    if (fixed_bytes(text, "order_signature", s->order_signature, SIGNATURE_LEN, &s->order_signature_len, err, errlen) !=
        0)
        return -1;
    if (field_bytes(text, "order", &s->order, &s->order_len, err, errlen) != 0) return -1;
    if (s->order_len == 0) {
        snprintf(err, errlen, "field \"order\" is empty");
        return -1;
    }
    return 0;
}

/* A required decimal field; 0 or -1 with `err`. */
static int required_u32(const char *text, const char *name, uint32_t *out, char *err, size_t errlen) {
    char value[16];
    if (text_field_copy(text, name, value, sizeof value) == 0 && parse_u32(value, out) == 0) return 0;
    snprintf(err, errlen, "field \"%s\" is missing, repeated or not a number (0..%u)", name, UINT32_MAX);
    return -1;
}

/* The license's place in its signed tree: index, size and path (the
 * path's hashes concatenated, empty for a one-leaf tree). Whether they fit
 * is for the verification to say. */
static int parse_tree(const char *text, signed_license *s, char *err, size_t errlen) {
    if (required_u32(text, "tree_index", &s->tree_index, err, errlen) != 0 ||
        required_u32(text, "tree_size", &s->tree_size, err, errlen) != 0)
        return -1;
    uint8_t *path = NULL;
    size_t len = 0;
    if (field_bytes(text, "tree_path", &path, &len, err, errlen) != 0) return -1;
    int rc = len % MERKLE_HASH_LEN == 0 && len <= sizeof s->tree_path ? 0 : -1;
    if (rc == 0) {
        if (len) memcpy(s->tree_path, path, len);
        s->tree_path_len = len / MERKLE_HASH_LEN;
    } else {
        snprintf(err, errlen, "field \"tree_path\" is %zu bytes, want a multiple of %d up to %zu", len, MERKLE_HASH_LEN,
                 sizeof s->tree_path);
    }
    free(path);
    return rc;
}

static int parse_fields(const char *text, signed_license *s, char *err, size_t errlen) {
    if (strncmp(text, LICENSE_FILE_HEADER_V1, strlen(LICENSE_FILE_HEADER_V1)) == 0 &&
        strchr(" \n", text[strlen(LICENSE_FILE_HEADER_V1)])) {
        snprintf(err, errlen,
                 "it is in an older format: its signature is over the license alone, which this version no "
                 "longer accepts (batch signatures)");
        return LICENSE_FILE_OLDER;
    }
    if (strncmp(text, LICENSE_FILE_HEADER, strlen(LICENSE_FILE_HEADER)) != 0) {
        snprintf(err, errlen, "not an activate license file (first line)");
        return -1;
    }
    if (text_field_copy(text, "key_id", s->key_id, sizeof s->key_id) != 0) {
        snprintf(err, errlen, "field \"key_id\" is missing, repeated or too long");
        return -1;
    }
    volume_counts *v = &s->volume;
    if (optional_u32(text, "activation_count", &s->activation_count, err, errlen) != 0 ||
        optional_u32(text, "volume_count", &v->count, err, errlen) != 0 ||
        optional_u32(text, "volume_threshold", &v->threshold, err, errlen) != 0 ||
        optional_u32(text, "volume_seats", &v->seats, err, errlen) != 0 ||
        optional_u32(text, "volume_seats_used", &v->seats_used, err, errlen) != 0)
        return -1;
    if (fixed_bytes(text, "signature", s->signature, SIGNATURE_LEN, &s->signature_len, err, errlen) != 0) return -1;
    if (parse_tree(text, s, err, errlen) != 0) return -1;
    if (field_bytes(text, "license", &s->license, &s->license_len, err, errlen) != 0) return -1;
    return parse_order(text, s, err, errlen);
}

int license_file_parse(const char *text, signed_license *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    int rc = parse_fields(text, s, err, errlen);
    if (rc != 0) signed_license_clear(s);
    return rc;
}
