/* test_machine_id.c -- the machine id: stable for the same hardware, salted
 * per vendor, built from the right tier of facts (fake facts trees); and
 * the host facts a volume order may collect (host serial, MAC addresses). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "client_testutil.h"
#include "fixture.h"
#include "host_facts.h"
#include "machine_id.h"

#define UUID "4c4c4544-0035-4a10-8051-b3c04f4a4e32"
#define MAC_A "3c:ec:ef:10:20:30"
#define MAC_B "3c:ec:ef:10:20:31"

typedef struct fake {
    char dir[256];      /* holds one or more machine roots */
    char root[2][300];  /* two machines to compare */
} fake;

static int setup(void **state) {
    static fake f;
    if (fixture_tmpdir(f.dir, sizeof f.dir, "machine-id") != 0) return -1;
    snprintf(f.root[0], sizeof f.root[0], "%s/m0", f.dir);
    snprintf(f.root[1], sizeof f.root[1], "%s/m1", f.dir);
    *state = &f;
    return 0;
}

static int teardown(void **state) {
    fake *f = *state;
    fixture_rmtree(f->dir);
    return 0;
}

static void read_ok(const char *root, machine_facts *mf) {
    char err[256];
    assert_int_equal(machine_facts_read(root, mf, err, sizeof err), 0);
}

static void same_hardware_same_id_and_salt_separates_vendors(void **state) {
    fake *f = *state;
    tu_fake_machine(f->root[0], UUID, "CN1234567", MAC_A, "0123456789abcdef0123456789abcdef");
    /* The same hardware after a reinstall: new machine-id, same firmware. */
    tu_fake_machine(f->root[1], UUID, "CN1234567", MAC_A, "fedcba9876543210fedcba9876543210");
    uint8_t a[32], b[32], c[32];
    tu_machine_id(f->root[0], "vendor-one", a);
    tu_machine_id(f->root[1], "vendor-one", b);
    assert_memory_equal(a, b, 32);
    tu_machine_id(f->root[0], "vendor-two", c);
    assert_memory_not_equal(a, c, 32);
    machine_facts mf;
    read_ok(f->root[0], &mf);
    assert_string_equal(mf.source, "dmi");
    assert_string_equal(mf.product_uuid, UUID);
}

static void dmi_tier_ignores_nic_changes(void **state) {
    fake *f = *state;
    tu_fake_machine(f->root[0], UUID, NULL, MAC_A, NULL);
    tu_fake_machine(f->root[1], UUID, NULL, MAC_B, NULL);
    uint8_t a[32], b[32];
    tu_machine_id(f->root[0], "s", a);
    tu_machine_id(f->root[1], "s", b);
    assert_memory_equal(a, b, 32);
}

static void different_uuid_different_machine(void **state) {
    fake *f = *state;
    tu_fake_machine(f->root[0], UUID, NULL, NULL, NULL);
    tu_fake_machine(f->root[1], "4c4c4544-0035-4a10-8051-b3c04f4a4e33", NULL, NULL, NULL);
    uint8_t a[32], b[32];
    tu_machine_id(f->root[0], "s", a);
    tu_machine_id(f->root[1], "s", b);
    assert_memory_not_equal(a, b, 32);
}

static void placeholders_fall_through_to_mac(void **state) {
    fake *f = *state;
    tu_fake_machine(f->root[0], "03000200-0400-0500-0006-000700080009", "To be filled by O.E.M.", MAC_A, NULL);
    machine_facts mf;
    read_ok(f->root[0], &mf);
    assert_string_equal(mf.source, "mac");
    assert_string_equal(mf.mac, MAC_A);
    assert_string_equal(mf.product_uuid, "");
    tu_fake_machine(f->root[1], "00000000-0000-0000-0000-000000000000", "Default string", MAC_A, NULL);
    uint8_t a[32], b[32];
    tu_machine_id(f->root[0], "s", a);
    tu_machine_id(f->root[1], "s", b);
    assert_memory_equal(a, b, 32);
}

static void mac_tier_takes_lowest_builtin_permanent_mac(void **state) {
    fake *f = *state;
    tu_fake_machine(f->root[0], NULL, NULL, MAC_B, NULL);
    tu_add_nic(f->root[0], "eth1", MAC_A, 1, 0, 0);            /* lowest: chosen */
    tu_add_nic(f->root[0], "docker0", "02:42:ac:11:00:01", 0, 0, 0); /* virtual */
    tu_add_nic(f->root[0], "usb0", "00:0e:c6:00:00:01", 1, 1, 0);   /* USB dongle */
    tu_add_nic(f->root[0], "wlan0", "00:00:00:00:00:02", 1, 0, 1);  /* randomised address */
    tu_add_nic(f->root[0], "eth9", "06:11:22:33:44:55", 1, 0, 0);   /* locally administered */
    machine_facts mf;
    read_ok(f->root[0], &mf);
    assert_string_equal(mf.source, "mac");
    assert_string_equal(mf.mac, MAC_A);
    /* Adding a card with a higher address keeps the id. */
    tu_fake_machine(f->root[1], NULL, NULL, MAC_A, NULL);
    uint8_t a[32], b[32];
    tu_machine_id(f->root[0], "s", a);
    tu_machine_id(f->root[1], "s", b);
    assert_memory_equal(a, b, 32);
}

static void machine_id_file_is_the_last_resort(void **state) {
    fake *f = *state;
    tu_fake_machine(f->root[0], NULL, NULL, NULL, "0123456789ABCDEF0123456789ABCDEF");
    tu_add_nic(f->root[0], "lo", "00:00:00:00:00:00", 0, 0, 0);
    machine_facts mf;
    read_ok(f->root[0], &mf);
    assert_string_equal(mf.source, "machine-id");
    assert_string_equal(mf.os_machine_id, "0123456789abcdef0123456789abcdef");
}

static void no_facts_is_an_error(void **state) {
    fake *f = *state;
    tu_fake_machine(f->root[0], NULL, NULL, NULL, NULL);
    machine_facts mf;
    char err[256];
    assert_int_equal(machine_facts_read(f->root[0], &mf, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot identify"));
}

/* The serial from DMI product_serial; every interface's address but lo and
 * all-zero ones, distinct, lower case, the lowest eight in order. */
static void host_facts_serial_and_macs(void **state) {
    fake *f = *state;
    tu_fake_machine(f->root[0], UUID, NULL, NULL, NULL);
    tu_write(f->root[0], "sys/class/dmi/id/product_serial", "  SN-4711\x01X  ");
    tu_add_nic(f->root[0], "lo", "00:00:00:00:00:00", 0, 0, 0);
    tu_add_nic(f->root[0], "tun0", "00:00:00:00:00:00", 0, 0, 0);
    tu_add_nic(f->root[0], "eth1", "3C:EC:EF:10:20:31", 1, 0, 0);
    tu_add_nic(f->root[0], "eth0", MAC_A, 1, 0, 0);
    tu_add_nic(f->root[0], "bond0", MAC_A, 0, 0, 3); /* the same address twice counts once */
    tu_add_nic(f->root[0], "junk", "not a mac", 0, 0, 0);
    for (int i = 0; i < 9; i++) {
        char name[16], mac[32];
        snprintf(name, sizeof name, "veth%d", i);
        snprintf(mac, sizeof mac, "fe:00:00:00:00:%02x", 9 - i);
        tu_add_nic(f->root[0], name, mac, 0, 0, 3);
    }
    host_facts h;
    host_facts_read(f->root[0], &h);
    assert_string_equal(h.serial, "SN-4711X");
    assert_int_equal(h.n_macs, HOST_MACS_MAX);
    assert_string_equal(h.macs[0], MAC_A);
    assert_string_equal(h.macs[1], MAC_B);
    assert_string_equal(h.macs[2], "fe:00:00:00:00:01");
    assert_string_equal(h.macs[7], "fe:00:00:00:00:06");
    /* A placeholder serial, and no network at all: nothing. */
    tu_write(f->root[1], "sys/class/dmi/id/product_serial", "To be filled by O.E.M.");
    host_facts_read(f->root[1], &h);
    assert_string_equal(h.serial, "");
    assert_int_equal(h.n_macs, 0);
}

/* Each test gets fresh roots. */
static int fresh(void **state) {
    fake *f = *state;
    fixture_rmtree(f->root[0]);
    fixture_rmtree(f->root[1]);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(same_hardware_same_id_and_salt_separates_vendors, fresh),
        cmocka_unit_test_setup(dmi_tier_ignores_nic_changes, fresh),
        cmocka_unit_test_setup(different_uuid_different_machine, fresh),
        cmocka_unit_test_setup(placeholders_fall_through_to_mac, fresh),
        cmocka_unit_test_setup(mac_tier_takes_lowest_builtin_permanent_mac, fresh),
        cmocka_unit_test_setup(machine_id_file_is_the_last_resort, fresh),
        cmocka_unit_test_setup(no_facts_is_an_error, fresh),
        cmocka_unit_test_setup(host_facts_serial_and_macs, fresh),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
