/* order_cli.c -- `keystore order create` and `keystore order show`: the
 * vendor makes a signed `.license` file and looks into one
 * (docs/volume.md, "Vendor side").
 *
 * create builds a volume.v1.Order from the options (every term has its own
 * option; 0 or unset means the documented default), reads the on-premises
 * key list if there is one, signs with the vendor's order-signing key and
 * writes the armoured text. The library validates the order again before
 * signing, so a value the options let through cannot make a bad file; its
 * message names the field, which the option names mirror. The file is
 * written to a temporary name beside the target and linked into place only
 * when complete (mode 0644: an order is no secret), never over an existing
 * file. Neither command needs a store. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "file_atomic.h"
#include "keycodec.h"
#include "keystore_cli.h"
#include "order_armour.h"
#include "order_file.h"
#include "order_json.h"
#include "order_keyring.h"

#define TERM(name, what) \
    { name, "S", what " (0: the default)", NULL }
static const config_option order_create_opts[] = {
    {"order-key", "FILE", "the vendor's order-signing key (Ed25519 private key, PEM), required", NULL},
    {"serial", "NNNNNNNN", "service serial number, exactly 8 digits, required", NULL},
    {"revision", "N", "revision; a higher one replaces an imported order and keeps its machines", "1"},
    {"customer", "TEXT", "who bought it, required", NULL},
    {"vendor", "NAME", "vendor name shown to operators", ""},
    {"group", "ID", "a volume key group the order covers (repeatable or comma-separated), required", NULL},
    {"product", "NAME", "product name in the licenses, required", NULL},
    {"edition", "NAME", "edition name in the licenses", ""},
    {"features", "LIST", "comma-separated features the licenses grant (repeatable)", NULL},
    {"mode", "MODE", "permanent | timed-reclaim | concurrent | unlimited | vendor, required", NULL},
    {"seats", "N", "seats sold (required; 0 and only 0 for unlimited)", NULL},
    {"valid-from", "DATE", "YYYY-MM-DD (UTC) or unix seconds, required", NULL},
    {"valid-until", "DATE", "YYYY-MM-DD (UTC) or unix seconds; unset: no end (not for unlimited)", NULL},
    {"after-end", "WHAT", "unlimited orders after valid-until: stop | continue-counted (default stop)", NULL},
    TERM("renew-s", "renewal interval, seconds"),
    TERM("reclaim-s", "timed reclaim: a seat not renewed for this long is freed"),
    TERM("heartbeat-s", "concurrent: heartbeat interval"),
    {"missed-heartbeats", "N", "concurrent: missed beats that free a seat (0: the default)", NULL},
    TERM("license-s", "license validity"),
    TERM("machine-validity-s", "vendor mode: validity from each machine's first activation"),
    TERM("retention-s", "machine table window: a machine leaves after this long without contact"),
    TERM("pending-retry-s", "a pending machine checks in again after this long"),
    {"threshold", "N", "KMS threshold: activate only once N distinct machines asked (0: none)", "0"},
    {"seat-warning", "N", "warn when free seats fall below N (0: never)", "0"},
    {"auto-activation", "on|off", "off: only designated devices activate", "on"},
    {"deactivation-approval", "on|off", "on: a deactivation waits for the operator's approval", "off"},
    {"os-version", "TEXT", "an accepted OS version (repeatable; none: any)", NULL},
    {"arch", "TEXT", "an accepted architecture (repeatable; none: any)", NULL},
    {"collect", "LIST", "machine facts to collect: hostname,ip,mac,host_serial,os,arch", NULL},
    {"delegate", "FILE", "on-premises: the server's Ed25519 public key (PEM) that will sign licenses", NULL},
    {"keys-file", "FILE", "on-premises: the volume keys the server accepts, one a line ('#' comments)", NULL},
    {"out", "FILE", "write the order file here (mode 0644, never overwritten) instead of stdout", NULL},
    HIDDEN_STORE_OPTS,
};
#undef TERM

/* Everything create allocates for the Order, freed in one place. */
typedef struct order_draft {
    Volume__V1__Order o;
    Volume__V1__OrderKeys k;
    uint32_t groups[ORDER_GROUPS_MAX];
    char *lists[4][ORDER_LIST_MAX + 1]; /* features, os_versions, architectures, collect_facts */
    char *split_buf[4];                 /* storage of lists[i] */
    uint8_t delegated[ORDER_DELEGATED_KEY_LEN];
    uint8_t salt[ORDER_KEY_SALT_LEN];
    uint8_t (*hashes)[ORDER_KEY_HASH_LEN]; /* the keys file's hashes, sorted, unique */
    ProtobufCBinaryData *hash_refs;        /* k.key_hashes: point into hashes */
} order_draft;

static void draft_free(order_draft *d) {
    for (int i = 0; i < 4; i++) free(d->split_buf[i]);
    free(d->hashes);
    free(d->hash_refs);
}

/* Unix seconds from "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SSZ" or digits; -1 if none. */
static long long parse_date(const char *s) {
    long long n = parse_num(s, (long long)1 << 40);
    if (n >= 0) return n;
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%d", &tm);
    if (end && *end == 'T') end = strptime(end + 1, "%H:%M:%SZ", &tm);
    if (!end || *end) return -1;
    return (long long)timegm(&tm);
}

/* All values of a list option, each also split on commas, into d->lists[slot]. */
static int split_list(const config *c, const char *opt, order_draft *d, int slot, size_t *n_out) {
    const char *const *v;
    size_t n = config_get_list(c, opt, &v), total = 0, count = 0;
    for (size_t i = 0; i < n; i++) total += strlen(v[i]) + 1;
    char *buf = d->split_buf[slot] = malloc(total + 1), *p = buf;
    if (!buf) return die("out of memory");
    for (size_t i = 0; i < n; i++) {
        strcpy(p, v[i]);
        for (char *save = NULL, *t = strtok_r(p, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ') t++;
            for (char *e = t + strlen(t); e > t && e[-1] == ' ';) *--e = '\0';
            if (!*t) continue;
            if (count == ORDER_LIST_MAX) return usage_error("--%s: more than %d entries", opt, ORDER_LIST_MAX);
            d->lists[slot][count++] = t;
        }
        p += strlen(v[i]) + 1;
    }
    *n_out = count;
    return EXIT_OK;
}

static int on_off(const config *c, const char *opt, protobuf_c_boolean *out) {
    const char *v = config_get(c, opt);
    if (strcmp(v, "on") && strcmp(v, "off")) return usage_error("--%s must be on or off, not '%s'", opt, v);
    *out = strcmp(v, "on") == 0;
    return EXIT_OK;
}

static int parse_groups(const config *c, order_draft *d) {
    size_t n;
    int rc = split_list(c, "group", d, 3, &n); /* slot 3 is reused for collect below */
    if (rc) return rc;
    if (n == 0) return usage_error("--group is required");
    if (n > ORDER_GROUPS_MAX) return usage_error("--group: more than %d groups", ORDER_GROUPS_MAX);
    for (size_t i = 0; i < n; i++) {
        long long g = parse_num(d->lists[3][i], PK_GROUP_MAX);
        if (g < 0) return usage_error("--group '%s' is not a group ID (0..%u)", d->lists[3][i], PK_GROUP_MAX);
        d->groups[i] = (uint32_t)g;
    }
    d->o.groups = d->groups;
    d->o.n_groups = n;
    free(d->split_buf[3]);
    d->split_buf[3] = NULL;
    return EXIT_OK;
}

static int parse_identity(const config *c, order_draft *d) {
    Volume__V1__Order *o = &d->o;
    const char *req[] = {"serial", "customer", "product", "mode", "valid-from"};
    for (size_t i = 0; i < sizeof req / sizeof *req; i++)
        if (!config_get(c, req[i])) return usage_error("--%s is required", req[i]);
    bool ok = true;
    o->format_version = ORDER_FORMAT_VERSION;
    o->service_serial = (char *)config_get(c, "serial");
    o->revision = (uint32_t)config_get_int(c, "revision", 1, UINT32_MAX, &ok);
    o->customer = (char *)config_get(c, "customer");
    o->vendor = (char *)config_get(c, "vendor");
    o->product = (char *)config_get(c, "product");
    o->edition = (char *)config_get(c, "edition");
    o->issued_at = (int64_t)time(NULL);
    return ok ? parse_groups(c, d) : EXIT_USAGE;
}

static int parse_counting(const config *c, Volume__V1__Order *o) {
    bool ok = true;
    o->mode = order_mode_parse(config_get(c, "mode"));
    if (!o->mode)
        return usage_error("--mode must be permanent, timed-reclaim, concurrent, unlimited or vendor, not '%s'",
                           config_get(c, "mode"));
    bool unlimited = o->mode == VOLUME__V1__SEAT_MODE__SEAT_MODE_UNLIMITED;
    if (!config_get(c, "seats") && !unlimited) return usage_error("--seats is required");
    o->seats = (uint32_t)config_get_int(c, "seats", 0, UINT32_MAX, &ok);
    long long from = parse_date(config_get(c, "valid-from"));
    const char *u = config_get(c, "valid-until");
    long long until = u ? parse_date(u) : 0;
    if (from <= 0)
        return usage_error("--valid-from '%s' is not YYYY-MM-DD or unix seconds", config_get(c, "valid-from"));
    if (until < 0) return usage_error("--valid-until '%s' is not YYYY-MM-DD or unix seconds", u);
    o->valid_from = from;
    o->valid_until = until;
    const char *after = config_get(c, "after-end");
    o->after_end = after ? order_after_end_parse(after) : unlimited ? VOLUME__V1__AFTER_END__AFTER_END_STOP : 0;
    if (after && !o->after_end) return usage_error("--after-end must be stop or continue-counted, not '%s'", after);
    struct {
        const char *opt;
        uint32_t *field;
    } terms[] = {
        {"renew-s", &o->renew_seconds},
        {"reclaim-s", &o->reclaim_seconds},
        {"heartbeat-s", &o->heartbeat_seconds},
        {"missed-heartbeats", &o->missed_heartbeats},
        {"license-s", &o->license_seconds},
        {"machine-validity-s", &o->machine_validity_seconds},
        {"retention-s", &o->machine_retention_seconds},
        {"pending-retry-s", &o->pending_retry_seconds},
        {"threshold", &o->kms_threshold},
        {"seat-warning", &o->seat_warning},
    };
    for (size_t i = 0; i < sizeof terms / sizeof *terms; i++)
        *terms[i].field = (uint32_t)config_get_int(c, terms[i].opt, 0, UINT32_MAX, &ok);
    if (!ok) return EXIT_USAGE;
    int rc = on_off(c, "auto-activation", &o->auto_activation);
    return rc ? rc : on_off(c, "deactivation-approval", &o->deactivation_approval);
}

static int parse_lists(const config *c, order_draft *d) {
    Volume__V1__Order *o = &d->o;
    int rc = split_list(c, "features", d, 0, &o->n_features);
    if (!rc) rc = split_list(c, "os-version", d, 1, &o->n_os_versions);
    if (!rc) rc = split_list(c, "arch", d, 2, &o->n_architectures);
    if (!rc) rc = split_list(c, "collect", d, 3, &o->n_collect_facts);
    o->features = d->lists[0];
    o->os_versions = d->lists[1];
    o->architectures = d->lists[2];
    o->collect_facts = d->lists[3];
    for (size_t i = 0; !rc && i < o->n_collect_facts; i++)
        if (!order_fact_bit(o->collect_facts[i]))
            rc = usage_error("--collect: '%s' is not hostname, ip, mac, host_serial, os or arch", o->collect_facts[i]);
    return rc;
}

static EVP_PKEY *read_pem(const char *path, bool private_key, const char *opt) {
    FILE *f = fopen(path, "r");
    if (!f) return die("--%s %s: %s", opt, path, strerror(errno)), NULL;
    EVP_PKEY *k = private_key ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (!k || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(k);
        die("--%s %s: not an Ed25519 %s key in PEM", opt, path, private_key ? "private" : "public");
        return NULL;
    }
    return k;
}

static int hash_cmp(const void *a, const void *b) { return memcmp(a, b, ORDER_KEY_HASH_LEN); }

static bool in_groups(const Volume__V1__Order *o, uint32_t g) {
    for (size_t i = 0; i < o->n_groups; i++)
        if (o->groups[i] == g) return true;
    return false;
}

/* One line of the keys file into d->hashes[*n]; blank and '#' lines are skipped. */
static int hash_line(order_draft *d, char *line, size_t lineno, const char *path, size_t *n) {
    char *s = line, msg[200];
    while (*s == ' ' || *s == '\t') s++;
    size_t len = strcspn(s, "#\r\n");
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    if (len == 0) return EXIT_OK;
    s[len] = '\0';
    pk_fields f;
    pk_error e;
    if (pk_decode(s, len, &f, &e) != PK_OK)
        return die("%s line %zu: %s", path, lineno, pk_strerror(&e, msg, sizeof msg));
    if (!in_groups(&d->o, f.group))
        return die("%s line %zu: the key is of group %u, which the order does not cover", path, lineno, f.group);
    if (*n == ORDER_KEYS_MAX) return die("%s: more than %d keys", path, ORDER_KEYS_MAX);
    if (*n % 4096 == 0) {
        void *more = realloc(d->hashes, (*n + 4096) * sizeof *d->hashes);
        if (!more) return die("out of memory");
        d->hashes = more;
    }
    if (order_key_hash(d->salt, s, d->hashes[*n]) != 0) return die("%s line %zu: not a key", path, lineno);
    (*n)++;
    return EXIT_OK;
}

static int read_keys(order_draft *d, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return die("--keys-file %s: %s", path, strerror(errno));
    if (RAND_bytes(d->salt, sizeof d->salt) != 1) return fclose(f), die("no random bytes for the salt");
    char *line = NULL;
    size_t cap = 0, n = 0, lineno = 0;
    int rc = EXIT_OK;
    while (!rc && getline(&line, &cap, f) >= 0) rc = hash_line(d, line, ++lineno, path, &n);
    if (!rc && ferror(f)) rc = die("--keys-file %s: read error", path);
    free(line);
    fclose(f);
    if (rc) return rc;
    if (n == 0) return die("--keys-file %s holds no key", path);
    qsort(d->hashes, n, sizeof *d->hashes, hash_cmp);
    size_t u = 0; /* a key listed twice is accepted once */
    for (size_t i = 0; i < n; i++)
        if (u == 0 || memcmp(d->hashes[u - 1], d->hashes[i], ORDER_KEY_HASH_LEN))
            memmove(d->hashes[u++], d->hashes[i], ORDER_KEY_HASH_LEN);
    if (!(d->hash_refs = malloc(u * sizeof *d->hash_refs))) return die("out of memory");
    for (size_t i = 0; i < u; i++)
        d->hash_refs[i] = (ProtobufCBinaryData){.len = ORDER_KEY_HASH_LEN, .data = d->hashes[i]};
    volume__v1__order_keys__init(&d->k);
    d->k.salt = (ProtobufCBinaryData){.len = sizeof d->salt, .data = d->salt};
    d->k.key_hashes = d->hash_refs;
    d->k.n_key_hashes = u;
    return EXIT_OK;
}

static int parse_delegation(const config *c, order_draft *d, bool *on_prem) {
    const char *del = config_get(c, "delegate"), *keys = config_get(c, "keys-file");
    *on_prem = del || keys;
    if (!*on_prem) return EXIT_OK;
    if (!del || !keys) return usage_error("an on-premises order needs both --delegate and --keys-file");
    EVP_PKEY *k = read_pem(del, false, "delegate");
    if (!k) return EXIT_FAILED;
    size_t len = sizeof d->delegated;
    int ok = EVP_PKEY_get_raw_public_key(k, d->delegated, &len) == 1 && len == sizeof d->delegated;
    EVP_PKEY_free(k);
    if (!ok) return die("--delegate %s: no raw Ed25519 public key", del);
    d->o.delegated_key = (ProtobufCBinaryData){.len = sizeof d->delegated, .data = d->delegated};
    return read_keys(d, keys);
}

/* Writes `text` to `out` atomically (file_atomic.h), mode 0644, never over
 * an existing file. */
static int write_order_file(const char *out, const char *text) {
    if (pa_file_write_atomic(out, text, strlen(text), 0644, false) == 0) return EXIT_OK;
    if (errno == EEXIST) return die("--out %s exists; refusing to overwrite it", out);
    return die("writing %s: %s", out, strerror(errno));
}

static int sign_and_write(const config *c, order_draft *d, bool on_prem) {
    char err[512];
    EVP_PKEY *key = read_pem(config_get(c, "order-key"), true, "order-key");
    if (!key) return EXIT_FAILED;
    order_file f;
    int rc = order_file_sign(&f, key, &d->o, on_prem ? &d->k : NULL, err, sizeof err);
    EVP_PKEY_free(key);
    if (rc != 0) {
        order_file_clear(&f);
        return usage_error("%s", err); /* an option's value was out of range */
    }
    char *text = order_armour_write(&f);
    const char *out = config_get(c, "out");
    if (!text) rc = die("out of memory");
    else if (out) rc = write_order_file(out, text);
    else rc = fputs(text, stdout) == EOF ? die("writing the order failed") : EXIT_OK;
    if (!rc && out)
        fprintf(stderr, "keystore: wrote order %s revision %u (%s, %s, %zu accepted keys) to %s\n", f.o->service_serial,
                f.o->revision, order_mode_name(f.o->mode), on_prem ? "on-premises" : "vendor-hosted",
                f.k ? f.k->n_key_hashes : 0, out);
    free(text);
    order_file_clear(&f);
    return rc;
}

static int cmd_order_create(config *c) {
    order_draft d;
    memset(&d, 0, sizeof d);
    volume__v1__order__init(&d.o);
    bool on_prem = false;
    int rc = check_args(c, 0);
    if (!rc && !config_get(c, "order-key")) rc = usage_error("--order-key is required");
    if (!rc) rc = parse_identity(c, &d);
    if (!rc) rc = parse_counting(c, &d.o);
    if (!rc) rc = parse_lists(c, &d);
    if (!rc) rc = parse_delegation(c, &d, &on_prem);
    if (!rc) rc = sign_and_write(c, &d, on_prem);
    draft_free(&d);
    return rc;
}

/* ---- order show ---- */

static const config_option order_show_opts[] = {
    {"order-public-key", "FILE", "verify the signature with the vendor's order key(s) (PEM; repeatable)", NULL},
    {"json", NULL, "print one JSON object", NULL},
    HIDDEN_STORE_OPTS,
};

/* Reads a whole file (up to 64 MiB) into a malloc'd buffer. */
static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return die("%s: %s", path, strerror(errno)), NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap || cap >= (64u << 20)) break;
        char *more = realloc(buf, cap *= 2);
        if (!more) free(buf);
        buf = more;
    }
    bool bad = ferror(f) || (buf && n == cap);
    fclose(f);
    if (!buf || bad) return free(buf), die("%s: cannot read it (or larger than 64 MiB)", path), NULL;
    *len = n;
    return buf;
}

/* ORDER_OK, or the verification's answer (printed). */
static int verify_with(const config *c, const order_file *f, const char **verdict) {
    const char *const *keys;
    size_t n = config_get_list(c, "order-public-key", &keys);
    char err[512];
    *verdict = "not checked (no --order-public-key)";
    if (n == 0) return EXIT_OK;
    order_keyring *ring = order_keyring_new();
    int rc = ring ? EXIT_OK : die("out of memory");
    for (size_t i = 0; !rc && i < n; i++)
        if (order_keyring_load(ring, keys[i], err, sizeof err) != 0) rc = die("--order-public-key: %s", err);
    order_status st = rc ? ORDER_OK : order_file_verify(f, ring, err, sizeof err);
    order_keyring_free(ring);
    if (!rc && st != ORDER_OK) rc = die("%s: %s", order_status_reason(st), err);
    if (!rc) *verdict = "verified";
    return rc;
}

static int cmd_order_show(config *c) {
    char *const *args, err[512];
    size_t n = config_args(c, &args), len;
    if (n == 0) return usage_error("FILE is required");
    int rc = check_args(c, 1);
    if (rc) return rc;
    char *text = slurp(args[0], &len);
    if (!text) return EXIT_FAILED;
    order_file f;
    order_status st = order_armour_read(&f, text, len, err, sizeof err);
    free(text);
    const char *verdict = "";
    if (st != ORDER_OK) rc = die("%s: %s: %s", args[0], order_status_reason(st), err);
    if (!rc) rc = verify_with(c, &f, &verdict);
    json_t *j = rc ? NULL : order_json(&f);
    if (j && json_object_set_new(j, "signature", json_string(verdict)) != 0) json_decref(j), j = NULL;
    if (!rc && config_get_bool(c, "json")) rc = print_json(j, "the order");
    else if (!rc && j) {
        printf("order %s revision %lld\n", f.o->service_serial, (long long)f.o->revision);
        order_json_print_text(j, stdout, 2);
        json_decref(j);
    } else if (!rc) rc = die("cannot describe the order (out of memory)");
    order_file_clear(&f);
    return rc;
}

#define ORDER_CMD(v, u, o, f) \
    { "order", v, u "\n\n" EXIT_HELP, o, sizeof o / sizeof o[0], f }
const command order_commands[] = {
    ORDER_CMD("create",
              "keystore order create --order-key FILE --serial N --customer TEXT --group G --product NAME\n"
              "    --mode MODE --seats N --valid-from DATE [--valid-until DATE] [TERMS] [--delegate PEM\n"
              "    --keys-file FILE] [--out FILE]\n\n"
              "Signs a volume order with the vendor's order key and writes it as a .license file\n"
              "(docs/volume.md). With --delegate and --keys-file it is an on-premises order: the server\n"
              "with that key signs licenses, for the listed keys only (stored as salted hashes).",
              order_create_opts, cmd_order_create),
    ORDER_CMD("show",
              "keystore order show FILE [--order-public-key PEM] [--json]\n\n"
              "Prints an order file's terms; with --order-public-key also checks its signature (exit 1\n"
              "when it does not verify). A file whose headers disagree with its body is refused.",
              order_show_opts, cmd_order_show),
};
const size_t n_order_commands = sizeof order_commands / sizeof order_commands[0];
