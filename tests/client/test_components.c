/* test_components.c -- the hashed hardware components (client/components.c)
 * on fake machines: each one present, absent or a placeholder; the disk
 * holding "/" found through mountinfo and sysfs; digests as docs/machines.md
 * defines them, stable, salted and distinct per name; the text form an
 * offline request carries, and that a request carries them signed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "activate.h"
#include "client_testutil.h"
#include "components.h"
#include "fixture.h"
#include "hex.h"
#include "state.h"

#define UUID "4c4c4544-0035-4a10-8051-b3c04f4a4e32"
#define BOARD "CN1234567"
#define MAC "3c:ec:ef:10:20:30"
#define OS_ID "0123456789abcdef0123456789abcdef"
#define DISK "S4EWNX0R123456"
#define SALT "vendor-one"
#define H64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* a digest's 64 hex */

typedef struct fake {
    char dir[256];  /* removed at the end */
    char root[300]; /* the machine of the current test */
} fake;

static int setup(void **state) {
    static fake f;
    if (fixture_tmpdir(f.dir, sizeof f.dir, "components") != 0) return -1;
    snprintf(f.root, sizeof f.root, "%s/m", f.dir);
    *state = &f;
    return 0;
}

static int teardown(void **state) {
    fake *f = *state;
    fixture_rmtree(f->dir);
    return 0;
}

static int fresh(void **state) {
    fake *f = *state;
    fixture_rmtree(f->root);
    return 0;
}

/* A machine with all five, the root on partition 1 of a disk. */
static void full_machine(const char *root) {
    tu_fake_machine(root, UUID, BOARD, MAC, OS_ID);
    tu_root_disk(root, "8:1", 1, "device/serial", DISK);
}

/* The digest computed here from the documented format alone. */
static void expected(const char *salt, const char *name, const char *value, uint8_t out[32]) {
    unsigned char msg[512];
    size_t n = 0;
    memcpy(msg, "pa-component-v1", 15);
    n = 15;
    msg[n++] = 0;
    memcpy(msg + n, name, strlen(name));
    n += strlen(name);
    msg[n++] = 0;
    memcpy(msg + n, value, strlen(value));
    n += strlen(value);
    unsigned int len = 32;
    assert_non_null(HMAC(EVP_sha256(), salt, (int)strlen(salt), msg, n, out, &len));
}

static void assert_names(const components *l, const char *const *names, size_t n) {
    assert_int_equal(l->n, n);
    for (size_t i = 0; i < n; i++) assert_string_equal(l->item[i].name, names[i]);
}

static void all_five_with_documented_digests(void **state) {
    fake *f = *state;
    full_machine(f->root);
    components l;
    assert_int_equal(components_read(f->root, SALT, &l), 0);
    const char *names[] = {"dmi_uuid", "board_serial", "disk_serial", "mac", "machine_id_file"};
    const char *values[] = {UUID, BOARD, DISK, MAC, OS_ID};
    assert_names(&l, names, 5);
    for (size_t i = 0; i < 5; i++) {
        uint8_t want[32];
        expected(SALT, names[i], values[i], want);
        assert_memory_equal(l.item[i].digest, want, 32);
        for (size_t j = 0; j < i; j++) assert_memory_not_equal(l.item[i].digest, l.item[j].digest, 32);
    }
    /* The raw values never appear in what is sent. */
    char text[2048];
    assert_int_equal(components_format(&l, text, sizeof text), 0);
    for (size_t i = 0; i < 5; i++) assert_null(strstr(text, values[i]));
}

/* Same hardware read twice, or on a copy of the tree: same digests; another
 * vendor's salt: all different; the same value under two names differs. */
static void digests_stable_salted_and_distinct_per_name(void **state) {
    fake *f = *state;
    full_machine(f->root);
    components a, b, c;
    assert_int_equal(components_read(f->root, SALT, &a), 0);
    assert_int_equal(components_read(f->root, SALT, &b), 0);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(components_read(f->root, "vendor-two", &c), 0);
    assert_int_equal(c.n, a.n);
    for (size_t i = 0; i < a.n; i++) assert_memory_not_equal(a.item[i].digest, c.item[i].digest, 32);
    uint8_t x[32], y[32];
    assert_int_equal(component_digest(SALT, "dmi_uuid", "same", x), 0);
    assert_int_equal(component_digest(SALT, "board_serial", "same", y), 0);
    assert_memory_not_equal(x, y, 32);
}

/* Each one missing in turn: the others stay exactly as they were. */
static void each_absent_is_left_out(void **state) {
    fake *f = *state;
    components all;
    full_machine(f->root);
    assert_int_equal(components_read(f->root, SALT, &all), 0);
    const char *remove[] = {"sys/class/dmi/id/product_uuid", "sys/class/dmi/id/board_serial", "proc/self/mountinfo",
                            "sys/class/net/eth0/address", "etc/machine-id"};
    for (size_t i = 0; i < 5; i++) {
        fixture_rmtree(f->root);
        full_machine(f->root);
        char path[600];
        snprintf(path, sizeof path, "%s/%s", f->root, remove[i]);
        assert_int_equal(unlink(path), 0);
        components l;
        assert_int_equal(components_read(f->root, SALT, &l), 0);
        assert_int_equal(l.n, 4);
        assert_null(components_find(&l, component_names[i]));
        for (size_t k = 0; k < l.n; k++) {
            const component *same = components_find(&all, l.item[k].name);
            assert_non_null(same);
            assert_memory_equal(same->digest, l.item[k].digest, 32);
        }
    }
    /* Nothing at all: an empty list, not an error. */
    fixture_rmtree(f->root);
    tu_fake_machine(f->root, NULL, NULL, NULL, NULL);
    components none;
    assert_int_equal(components_read(f->root, SALT, &none), 0);
    assert_int_equal(none.n, 0);
}

/* Firmware placeholders identify nothing: left out (as for the machine id). */
static void placeholders_are_left_out(void **state) {
    fake *f = *state;
    tu_fake_machine(f->root, "03000200-0400-0500-0006-000700080009", "To be filled by O.E.M.", MAC,
                    "00000000000000000000000000000000");
    tu_root_disk(f->root, "8:1", 1, "device/serial", "0000000000");
    components l;
    assert_int_equal(components_read(f->root, SALT, &l), 0);
    const char *names[] = {"mac"};
    assert_names(&l, names, 1);
}

static void assert_disk(const char *root, const char *value) {
    components l;
    assert_int_equal(components_read(root, SALT, &l), 0);
    const component *d = components_find(&l, "disk_serial");
    if (!value) {
        assert_null(d);
        return;
    }
    assert_non_null(d);
    uint8_t want[32];
    expected(SALT, "disk_serial", value, want);
    assert_memory_equal(d->digest, want, 32);
}

/* The disk holding "/": the partition's parent or the whole disk; serial,
 * then wwid; nothing for a root that is no disk's (major 0: overlay,
 * tmpfs) or without mountinfo; the last mount on "/" counts. */
static void disk_serial_of_the_root_disk(void **state) {
    fake *f = *state;
    tu_fake_machine(f->root, NULL, NULL, NULL, OS_ID);
    tu_root_disk(f->root, "8:1", 1, "device/serial", "  " DISK " ");
    assert_disk(f->root, DISK);
    fixture_rmtree(f->root);
    tu_fake_machine(f->root, NULL, NULL, NULL, OS_ID);
    tu_root_disk(f->root, "254:0", 0, "serial", "virtio-disk-7"); /* a whole virtio disk */
    assert_disk(f->root, "virtio-disk-7");
    /* A placeholder serial falls through to the wwid. */
    fixture_rmtree(f->root);
    tu_fake_machine(f->root, NULL, NULL, NULL, OS_ID);
    tu_root_disk(f->root, "259:2", 1, "device/serial", "none");
    tu_write(f->root, "sys/devices/pci0000:00/0000:00:17.0/block/sda/device/wwid", "eui.0025388b91c3a1f2");
    assert_disk(f->root, "eui.0025388b91c3a1f2");
    /* No serial file at all. */
    fixture_rmtree(f->root);
    tu_fake_machine(f->root, NULL, NULL, NULL, OS_ID);
    tu_root_disk(f->root, "8:1", 1, "device/serial", NULL);
    assert_disk(f->root, NULL);
    /* An overlay root (a container), mounted over the disk's "/". */
    tu_root_disk(f->root, "8:1", 1, "device/serial", DISK);
    assert_disk(f->root, DISK);
    tu_write(f->root, "proc/self/mountinfo",
             "29 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
             "30 29 0:21 / /proc rw - proc proc rw\n"
             "31 29 0:52 / / rw,relatime - overlay overlay rw,lowerdir=/l");
    assert_disk(f->root, NULL);
    /* No mountinfo. */
    char path[600];
    snprintf(path, sizeof path, "%s/proc/self/mountinfo", f->root);
    assert_int_equal(unlink(path), 0);
    assert_disk(f->root, NULL);
}

static void text_form_round_trips_and_is_checked(void **state) {
    fake *f = *state;
    full_machine(f->root);
    components l, back;
    char text[2048], err[160];
    assert_int_equal(components_read(f->root, SALT, &l), 0);
    assert_int_equal(components_format(&l, text, sizeof text), 0);
    assert_int_equal(components_parse(text, &back, err, sizeof err), 0);
    assert_memory_equal(&l, &back, sizeof l);
    assert_int_equal(components_format(&l, text, 40), -1); /* does not fit */
    assert_int_equal(components_parse("", &back, err, sizeof err), 0);
    assert_int_equal(back.n, 0);

    struct {
        const char *in;
        const char *says;
    } bad[] = {
        {"mac=" H64 ",mac=" H64, "entry 2: duplicate \"mac\""},
        {"MAC=" H64, "entry 1: the name is not"},
        {"=" H64, "entry 1: the name is not"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=" H64, "entry 1: the name is not"}, /* 33 characters */
        {"mac" H64, "entry 1: the name is not"},
        {"mac=" H64 ",disk=abc", "entry 2 (\"disk\"): the digest is not 64 hex"},
        {"mac=" H64 "a", "entry 1 (\"mac\"): the digest is not 64 hex"},
        {"mac=g" H64, "entry 1 (\"mac\"): the digest is not 64 hex"},
        {"mac=" H64 ",", "empty entry after the last comma"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(components_parse(bad[i].in, &back, err, sizeof err), -1);
        if (!strstr(err, bad[i].says)) fail_msg("\"%s\": got \"%s\", want \"%s\"", bad[i].in, err, bad[i].says);
        assert_int_equal(back.n, 0); /* nothing half-read */
    }
    /* At most 16. */
    char many[2048] = "";
    for (int i = 0; i < 17; i++) {
        size_t used = strlen(many);
        snprintf(many + used, sizeof many - used, "%sc%d=%s", i ? "," : "", i, H64);
    }
    assert_int_equal(components_parse(many, &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "more than 16"));
    *strrchr(many, ',') = '\0';
    assert_int_equal(components_parse(many, &back, err, sizeof err), 0);
    assert_int_equal(back.n, 16);
}

/* What `activate machine-id` shows: names known, which are present. */
static void library_says_which_are_present(void **state) {
    fake *f = *state;
    tu_fake_machine(f->root, UUID, NULL, MAC, NULL);
    pa_options o;
    pa_options_init(&o);
    o.facts_root = f->root;
    o.vendor_salt = SALT;
    char err[256];
    pa_client *c = pa_client_new(&o, err, sizeof err);
    assert_non_null(c);
    size_t n = 0;
    while (pa_component_name(n)) n++;
    assert_int_equal(n, 5);
    assert_true(pa_has_component(c, "dmi_uuid"));
    assert_true(pa_has_component(c, "mac"));
    assert_false(pa_has_component(c, "board_serial"));
    assert_false(pa_has_component(c, "disk_serial"));
    assert_false(pa_has_component(c, "machine_id_file"));
    assert_false(pa_rebound(c));
    pa_client_free(c);
}

/* An offline request carries the components, signed: fulfil refuses one
 * whose digests were changed, and names a malformed entry in a request
 * signed that way; a request without the line (older clients) is read. */
static void offline_request_carries_them_signed(void **state) {
    fake *f = *state;
    full_machine(f->root);
    char st[400], req[400], lic[400], *text, err[256], edited[8192];
    snprintf(st, sizeof st, "%s/state", f->root);
    snprintf(req, sizeof req, "%s/request.txt", f->root);
    snprintf(lic, sizeof lic, "%s/license.txt", f->root);
    pa_options o;
    pa_options_init(&o);
    o.facts_root = f->root;
    o.vendor_salt = SALT;
    o.state_dir = st;
    char *pub;
    EVP_PKEY *vendor = tu_vendor_key(&pub);
    o.public_key_pem = pub;
    pa_client *c = pa_client_new(&o, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(pa_request_write(c, "qpm6n7j2wjp88hhp3yrhyy74h", req), PA_OK);
    size_t len;
    assert_int_equal(state_read_file(req, &text, &len, err, sizeof err), 0);
    components l;
    char want[2048];
    assert_int_equal(components_read(f->root, SALT, &l), 0);
    assert_int_equal(components_format(&l, want, sizeof want), 0);
    char line[2100];
    snprintf(line, sizeof line, "\ncomponents: %s\n", want);
    assert_non_null(strstr(text, line));
    assert_int_equal(pa_fulfil(c, req, lic), PA_ERR_CONFIG); /* intact: only the server is missing */

    /* One digest changed on the way: the signature no longer verifies. */
    memcpy(edited, text, len + 1);
    char *digit = strstr(edited, "\ncomponents: dmi_uuid=") + 22;
    *digit = *digit == '0' ? '1' : '0';
    FILE *fp = fopen(req, "w");
    fputs(edited, fp);
    fclose(fp);
    assert_int_equal(pa_fulfil(c, req, lic), PA_ERR_BAD_LICENSE);
    assert_non_null(strstr(pa_error(c), "altered"));

    /* Signed, but malformed (a duplicate name): named. */
    char *comps = strstr(text, "\ncomponents: ") + 1, *after = strchr(comps, '\n') + 1;
    char *sig = strstr(text, "signature: ");
    snprintf(edited, sizeof edited, "%.*scomponents: mac=" H64 ",mac=" H64 "\n%.*s", (int)(comps - text), text,
             (int)(sig - after), after);
    tu_sign_request(st, edited, req);
    assert_int_equal(pa_fulfil(c, req, lic), PA_ERR_BAD_LICENSE);
    assert_non_null(strstr(pa_error(c), "components entry 2: duplicate \"mac\""));

    /* An older client's request, without the line: read (matching by
     * machine id only). */
    snprintf(edited, sizeof edited, "%.*s%.*s", (int)(comps - text), text, (int)(sig - after), after);
    tu_sign_request(st, edited, req);
    assert_int_equal(pa_fulfil(c, req, lic), PA_ERR_CONFIG);
    free(text);
    pa_client_free(c);
    EVP_PKEY_free(vendor);
    free(pub);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(all_five_with_documented_digests, fresh),
        cmocka_unit_test_setup(digests_stable_salted_and_distinct_per_name, fresh),
        cmocka_unit_test_setup(each_absent_is_left_out, fresh),
        cmocka_unit_test_setup(placeholders_are_left_out, fresh),
        cmocka_unit_test_setup(disk_serial_of_the_root_disk, fresh),
        cmocka_unit_test_setup(text_form_round_trips_and_is_checked, fresh),
        cmocka_unit_test_setup(library_says_which_are_present, fresh),
        cmocka_unit_test_setup(offline_request_carries_them_signed, fresh),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
