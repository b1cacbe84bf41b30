/* test_client_identity.c -- a place follows its machine (docs/machines.md,
 * "Matching a machine to a place"), end to end: the `activate` CLI on fake
 * machines (facts trees with all five components) against a real
 * activation server, keys of groups made with `keystore group create
 * --machine-match K`.
 *
 * Each "start" is a fresh state directory (a reinstalled or re-created
 * machine), so every Activate is a first one from that machine's point of
 * view and only the server can know it was there before. What the server
 * says is read from the CLI's --json: the key's activation_count and
 * "rebound". The machine id the client computes is read there too, to be
 * sure each case really changed (or kept) it.
 *
 * The machine id comes from DMI when the firmware has usable DMI facts
 * (machine_id.c): then a new MAC does not change it and nothing needs
 * re-binding. A machine whose id changes with its MAC has no DMI facts, so
 * it has three components (disk_serial, mac, machine_id_file) and a new
 * MAC leaves two. A copy of its disk on another disk in another machine
 * brings one (machine_id_file); a VM copied with its disk's serial brings
 * two, as many as the new MAC leaves. All cases are here, as the limits
 * docs/machines.md states. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_env.h"
#include "client_testutil.h"

enum { G_MATCH3 = 401, G_MATCH2 = 402 };

static client_env env;

static int setup(void **state) {
    const char *m3[] = {"--max-machines", "8", "--machine-match", "3", NULL};
    const char *m2[] = {"--max-machines", "8", "--machine-match", "2", NULL};
    if (env_start(&env) == 0 && env_start_server(&env, 0, NULL) == 0 && env_group(&env, G_MATCH3, m3) == 0 &&
        env_group(&env, G_MATCH2, m2) == 0)
        return 0;
    env_stop(&env); /* cmocka skips the teardown when setup fails */
    return -1;
}

static int teardown(void **state) {
    env_stop(&env);
    return 0;
}

/* The hardware of one fake machine; NULL: that fact is absent. */
typedef struct hw {
    const char *uuid;  /* dmi_uuid */
    const char *board; /* board_serial */
    const char *disk;  /* disk_serial (the disk holding "/") */
    const char *mac;   /* mac (eth0, a built-in NIC) */
    const char *os_id; /* machine_id_file */
} hw;

typedef struct outcome {
    long long count;     /* the key's activation_count after the call */
    bool rebound;        /* the server moved an earlier place */
    char machine_id[80]; /* what the client sent */
} outcome;

/* Builds machine `name` with `h` anew and a fresh state directory, and
 * activates `key` there; asserts the activation succeeded. */
static outcome start(const char *name, const hw *h, const char *key) {
    static unsigned n;
    char root[300], state[300];
    snprintf(root, sizeof root, "%s/machines/%s", env.dir, name);
    snprintf(state, sizeof state, "%s/state/%s-%u", env.dir, name, n++);
    fixture_rmtree(root);
    tu_fake_machine(root, h->uuid, h->board, h->mac, h->os_id);
    if (h->disk) tu_root_disk(root, "8:1", 1, "device/serial", h->disk);
    const char *args[] = {key, "--server", env.target[0], NULL};
    char *out = NULL;
    int rc = env_activate_cli(&env, root, state, args, &out);
    if (rc != 0) fprintf(stderr, "activate on %s exited %d: %s\n", name, rc, out ? out : "");
    assert_int_equal(rc, 0);
    outcome o = {json_int(out, "activation_count"), strstr(out, "\"rebound\":true") != NULL, ""};
    json_str(out, "machine_id", o.machine_id, sizeof o.machine_id);
    assert_int_equal(strlen(o.machine_id), 64);
    free(out);
    return o;
}

#define UUID_A "4c4c4544-0035-4a10-8051-b3c04f4a4e32"
#define UUID_B "4c4c4544-0035-4a10-8051-b3c04f4a4e33"
#define UUID_C "4c4c4544-0035-4a10-8051-b3c04f4a4e34"
#define OS_A "0123456789abcdef0123456789abcdef"

/* K = 3 with five components: one or two changed facts that change the
 * machine id keep the place (rebound); a new MAC under DMI keeps the id
 * (nothing to re-bind); all new is a new machine; so is a cloned disk in
 * another machine (two shared). */
static void place_follows_changed_components(void **state) {
    char keys[1][KEY_TEXT];
    assert_int_equal(env_keys(&env, G_MATCH3, 1, keys), 0);
    hw h = {UUID_A, "BSN-1001", "S4EWNX0R100001", "3c:ec:ef:10:20:30", OS_A};
    outcome first = start("pc", &h, keys[0]);
    assert_int_equal(first.count, 1);
    assert_false(first.rebound);

    /* A new NIC: the DMI id stays, so the place is found exactly. */
    h.mac = "3c:ec:ef:10:20:99";
    outcome same = start("pc", &h, keys[0]);
    assert_string_equal(same.machine_id, first.machine_id);
    assert_int_equal(same.count, 1);
    assert_false(same.rebound);

    /* One changed: a new system UUID (a re-created VM) -- a new id, four shared. */
    h.uuid = UUID_B;
    outcome one = start("pc", &h, keys[0]);
    assert_string_not_equal(one.machine_id, first.machine_id);
    assert_int_equal(one.count, 1);
    assert_true(one.rebound);

    /* Two changed: a replaced board (UUID and board serial) -- three shared. */
    h.uuid = UUID_C;
    h.board = "BSN-2002";
    outcome two = start("pc", &h, keys[0]);
    assert_string_not_equal(two.machine_id, one.machine_id);
    assert_int_equal(two.count, 1);
    assert_true(two.rebound);

    /* The disk itself (or a VM copy keeping its serial) in another machine:
     * disk_serial and machine_id_file match, two. */
    hw other = {"4c4c4544-0035-4a10-8051-b3c04f4a4e40", "BSN-3003", h.disk, "3c:ec:ef:10:20:40", OS_A};
    outcome clone = start("other", &other, keys[0]);
    assert_int_equal(clone.count, 2);
    assert_false(clone.rebound);

    /* All changed: a different machine. */
    hw fresh = {"4c4c4544-0035-4a10-8051-b3c04f4a4e50", "BSN-4004", "S4EWNX0R500005", "3c:ec:ef:10:20:50",
                "fedcba9876543210fedcba9876543210"};
    outcome all = start("fresh", &fresh, keys[0]);
    assert_int_equal(all.count, 3);
    assert_false(all.rebound);

    /* The moved place is still this machine's: its next start finds it exactly. */
    outcome again = start("pc", &h, keys[0]);
    assert_string_equal(again.machine_id, two.machine_id);
    assert_int_equal(again.count, 3);
    assert_false(again.rebound);
}

/* Docker style: no DMI, so the id is the MAC's, and every start has a fresh
 * MAC. Three components; a start shares two with the one before. K = 2
 * keeps one place over five starts, re-bound each time; K = 3 cannot. A
 * clone of the disk onto another disk in another machine shares one
 * (machine_id_file) and takes a place of its own. */
static void fresh_mac_on_every_start(void **state) {
    char keys[2][KEY_TEXT], mac[32], seen[5][80];
    assert_int_equal(env_keys(&env, G_MATCH2, 1, keys), 0);
    assert_int_equal(env_keys(&env, G_MATCH3, 1, keys + 1), 0);
    hw h = {NULL, NULL, "S4EWNX0R600006", mac, OS_A};
    for (int i = 0; i < 5; i++) {
        snprintf(mac, sizeof mac, "3c:ec:ef:60:00:%02x", i);
        outcome o = start("container", &h, keys[0]);
        snprintf(seen[i], sizeof seen[i], "%s", o.machine_id);
        for (int j = 0; j < i; j++) assert_string_not_equal(seen[i], seen[j]);
        assert_int_equal(o.count, 1);
        assert_int_equal(o.rebound, i > 0);
    }
    hw copy = {NULL, NULL, "S4EWNX0R600099", "3c:ec:ef:60:00:99", OS_A};
    outcome clone = start("clone", &copy, keys[0]);
    assert_int_equal(clone.count, 2);
    assert_false(clone.rebound);
    for (int i = 0; i < 2; i++) {
        snprintf(mac, sizeof mac, "3c:ec:ef:70:00:%02x", i);
        outcome o = start("container3", &h, keys[1]);
        assert_int_equal(o.count, i + 1); /* two shared of three: a new place each start */
        assert_false(o.rebound);
    }
}

/* An offline request carries the components: a machine activated through
 * request / fulfil / install, whose UUID then changes, is re-bound online. */
static void offline_activation_carries_components(void **state) {
    char keys[1][KEY_TEXT], root[300], st[300], req[400], lic[400], *out = NULL;
    assert_int_equal(env_keys(&env, G_MATCH3, 1, keys), 0);
    snprintf(root, sizeof root, "%s/machines/airgapped", env.dir);
    snprintf(st, sizeof st, "%s/state/airgapped", env.dir);
    snprintf(req, sizeof req, "%s/airgapped-request.txt", env.dir);
    snprintf(lic, sizeof lic, "%s/airgapped-license.txt", env.dir);
    hw h = {UUID_A, "BSN-8008", "S4EWNX0R800008", "3c:ec:ef:80:00:01", "88889999aaaabbbb88889999aaaabbbb"};
    fixture_rmtree(root);
    tu_fake_machine(root, h.uuid, h.board, h.mac, h.os_id);
    tu_root_disk(root, "8:1", 1, "device/serial", h.disk);
    const char *request[] = {"request", "--out", req, keys[0], NULL};
    assert_int_equal(env_activate_cli(&env, root, st, request, &out), 0);
    free(out);
    char helper_root[300], helper_state[300];
    env_machine(&env, "connected", helper_root, helper_state);
    const char *fulfil[] = {"fulfil", req, "--out", lic, "--server", env.target[0], NULL};
    assert_int_equal(env_activate_cli(&env, helper_root, helper_state, fulfil, &out), 0);
    free(out);
    const char *install[] = {"install", lic, NULL};
    assert_int_equal(env_activate_cli(&env, root, st, install, &out), 0);
    free(out);
    h.uuid = UUID_B; /* the same machine, re-created with a new UUID */
    outcome o = start("airgapped", &h, keys[0]);
    assert_int_equal(o.count, 1);
    assert_true(o.rebound);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(place_follows_changed_components),
        cmocka_unit_test(fresh_mac_on_every_start),
        cmocka_unit_test(offline_activation_carries_components),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
