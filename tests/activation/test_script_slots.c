/* test_script_slots.c -- every script call the activation server makes on
 * Redis A stays inside one hash slot in its Redis Cluster form
 * (docs/cluster.md, "Scripts that cross slots"), its KEYS built by the code
 * that builds the call (policy_call_keys, policy_machines_call_keys), for
 * groups, serials and client addresses spread over many slots. The
 * single-node form keeps the address bucket inside the group's call (one
 * round trip): the test checks that too, so it sees a key list that does
 * cross slots. The same for every volume.lua call (volume_call_keys): in
 * its cluster form only the order's slot, on a single node the group's
 * revoked set and the address bucket in the one call. Also: each outbox shard lies in its slot, and the revocation
 * position's keys share one. No Redis: slots are computed (redis_slot.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "group_cache.h"
#include "outbox_shards.h"
#include "policy.h"
#include "policy_machines.h"
#include "redis_keys.h"
#include "redis_slot.h"
#include "volume_policy.h"

static unsigned slot(const char *k) { return redis_slot_of(k, strlen(k)); }

/* Fails naming the two keys when the list (and the key read through ARGV)
 * spans slots. */
static void assert_one_slot(const policy_keys *k, const char *what) {
    assert_true(k->n > 0);
    if (k->read[0] && slot(k->read) != slot(k->name[0])) {
        fprintf(stderr, "%s: %s (slot %u) and %s read through ARGV (slot %u)\n", what, k->name[0], slot(k->name[0]),
                k->read, slot(k->read));
        fail();
    }
    for (int i = 1; i < k->n; i++) {
        if (slot(k->name[i]) == slot(k->name[0])) continue;
        fprintf(stderr, "%s: %s (slot %u) and %s (slot %u)\n", what, k->name[0], slot(k->name[0]), k->name[i],
                slot(k->name[i]));
        fail();
    }
}

static bool names(const policy_keys *k, const char *key) {
    for (int i = 0; i < k->n; i++)
        if (strcmp(k->name[i], key) == 0) return true;
    return false;
}

/* A client address's bucket as the server names it (IPv4, IPv6 /64). */
static void address_of(unsigned i, char *out, size_t n) {
    char ip[64];
    if (i % 2) snprintf(ip, sizeof ip, "2001:db8:%x::%x", i, i * 7);
    else snprintf(ip, sizeof ip, "198.51.%u.%u", (i / 256) % 256, i % 256);
    policy_address_key(ip, out, n);
}

static void test_cluster_calls_stay_in_one_slot(void **state) {
    (void)state;
    static const policy_call ops[] = {POLICY_CALL_ACTIVATE, POLICY_CALL_RENEW, POLICY_CALL_DEACTIVATE,
                                      POLICY_CALL_REJECT, POLICY_CALL_ADDRESS_TAKE};
    static const char *op_names[] = {"activate", "renew", "deactivate", "reject", "address take"};
    for (uint32_t group = 1; group < (1u << 20); group += 997) {
        group_entry g;
        memset(&g, 0, sizeof g);
        g.rec.id = group;
        group_entry_name_keys(&g, group);
        uint32_t serial = group * 31 + 5;
        char address[PA_RKEY_MAX];
        address_of(group, address, sizeof address);
        for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
            policy_keys k;
            policy_call_keys(ops[i], true, &g, serial, address, &k);
            assert_one_slot(&k, op_names[i]);
            assert_int_equal(names(&k, address), ops[i] == POLICY_CALL_ADDRESS_TAKE);
        }
        policy_keys k;
        policy_machines_call_keys(true, group, serial, NULL, &k);
        assert_one_slot(&k, "list");
        policy_machines_call_keys(false, group, serial, NULL, &k);
        assert_one_slot(&k, "release");
        /* The grant's outbox record: the group's shard, not audit:outbox. */
        policy_call_keys(POLICY_CALL_ACTIVATE, true, &g, serial, address, &k);
        assert_false(names(&k, PA_RKEY_OUTBOX));
    }
}

/* Single node: one call with the address bucket, and audit:outbox. */
static void test_single_node_keeps_one_call(void **state) {
    (void)state;
    group_entry g;
    memset(&g, 0, sizeof g);
    g.rec.id = 4365;
    group_entry_name_keys(&g, 4365);
    char address[PA_RKEY_MAX];
    address_of(4, address, sizeof address);
    policy_keys k;
    policy_call_keys(POLICY_CALL_ACTIVATE, false, &g, 77, address, &k);
    assert_int_equal(k.n, 8);
    assert_string_equal(k.name[7], address); /* last: policy.lua's optional key */
    assert_true(names(&k, PA_RKEY_OUTBOX));
    assert_int_not_equal(slot(address), slot(g.key_group)); /* the list this test would refuse */
    policy_call_keys(POLICY_CALL_REJECT, false, &g, 77, address, &k);
    assert_int_equal(k.n, 2);
    assert_string_equal(k.name[1], address);
    assert_string_equal(k.read, PA_RKEY_GROUPS); /* read through ARGV: another slot, fine on one node */
    policy_call_keys(POLICY_CALL_REJECT, true, &g, 77, address, &k);
    assert_string_equal(k.read, g.key_group);
    policy_machines_call_keys(false, 4365, 77, address, &k);
    assert_int_equal(k.n, 5);
    assert_string_equal(k.name[4], address);
}

static const char *const volume_ops[] = {"activate", "renew", "deactivate", "sweep", "approve", "deny", "force"};

/* Every volume.lua call of an order, for serials spread over many slots:
 * the order's slot only, no address bucket, no revoked set, and activate's
 * outbox the order's shard. */
static void test_volume_cluster_calls_stay_in_one_slot(void **state) {
    (void)state;
    static const policy_limits none = {"0", "1", "0", "1", "1", "0", "1", "0"};
    for (unsigned i = 0; i < 400; i++) {
        char serial[32], address[PA_RKEY_MAX], revoked[PA_RKEY_MAX], shard[PA_RKEY_MAX];
        snprintf(serial, sizeof serial, "VO-%u-%u", i, i * 7919u);
        address_of(i, address, sizeof address);
        uint32_t group = 1 + i * 131u;
        pa_rkey_revoked(revoked, sizeof revoked, group);
        volume_caller c = {.group = group, .serial = i + 1, .address_key = address, .limits = &none};
        for (size_t o = 0; o < sizeof volume_ops / sizeof *volume_ops; o++) {
            policy_keys k;
            volume_call_keys(volume_ops[o], true, serial, &c, &k);
            assert_true(k.n >= 7);
            assert_one_slot(&k, volume_ops[o]);
            assert_false(names(&k, address));
            assert_false(names(&k, revoked));
            assert_false(names(&k, PA_RKEY_OUTBOX));
            assert_int_equal(k.n, o == 0 ? 8 : 7);
        }
        policy_keys k;
        volume_call_keys("activate", true, serial, &c, &k);
        assert_int_equal(outbox_shard_for_key(k.name[0], shard, sizeof shard), 0);
        assert_string_equal(k.name[7], shard);
    }
}

/* Single node: the keys of one call each, as before the split: the
 * order's seven, activate's audit:outbox, the revoked set, the address
 * bucket last; the operator's calls and the sweep the seven. */
static void test_volume_single_node_keeps_one_call(void **state) {
    (void)state;
    static const policy_limits none = {"0", "1", "0", "1", "1", "0", "1", "0"};
    char address[PA_RKEY_MAX], revoked[PA_RKEY_MAX];
    address_of(6, address, sizeof address);
    pa_rkey_revoked(revoked, sizeof revoked, 4365);
    volume_caller c = {.group = 4365, .serial = 3, .address_key = address, .limits = &none};
    policy_keys k;
    volume_call_keys("activate", false, "VO-1", &c, &k);
    assert_int_equal(k.n, 10);
    assert_string_equal(k.name[7], PA_RKEY_OUTBOX);
    assert_string_equal(k.name[8], revoked);
    assert_string_equal(k.name[9], address);
    assert_int_not_equal(slot(address), slot(k.name[0])); /* the list the cluster test would refuse */
    for (size_t o = 1; o < 3; o++) {
        volume_call_keys(volume_ops[o], false, "VO-1", &c, &k);
        assert_int_equal(k.n, 9);
        assert_string_equal(k.name[7], revoked);
        assert_string_equal(k.name[8], address);
    }
    for (size_t o = 3; o < sizeof volume_ops / sizeof *volume_ops; o++) {
        volume_call_keys(volume_ops[o], false, "VO-1", &c, &k);
        assert_int_equal(k.n, 7);
        assert_one_slot(&k, volume_ops[o]);
    }
}

static void test_outbox_shards_lie_in_their_slots(void **state) {
    (void)state;
    char key[PA_RKEY_MAX];
    for (unsigned s = 0; s < REDIS_SLOTS; s++) {
        assert_int_equal(outbox_shard_of_slot(s, key, sizeof key), 0);
        assert_int_equal(slot(key), s);
    }
    assert_int_equal(outbox_shard_of_slot(REDIS_SLOTS, key, sizeof key), -1);
    assert_int_equal(outbox_shard_for_key("{g:7}:group", key, sizeof key), 0);
    assert_int_equal(slot(key), slot("{g:7}:k:12"));
}

static void test_revocation_position_shares_a_slot(void **state) {
    (void)state;
    assert_int_equal(slot(PA_RKEY_REVOCATIONS_LAST_SEQ), slot(PA_RKEY_REVOCATIONS_EPOCH));
    assert_int_equal(slot(PA_RKEY_REVOCATIONS_LAST_SEQ), slot(PA_RKEY_REVOCATIONS_LAST_ID));
    assert_int_not_equal(slot(PA_RKEY_REVOCATIONS_OLD_LAST_SEQ), slot(PA_RKEY_REVOCATIONS_OLD_EPOCH));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_calls_stay_in_one_slot),
        cmocka_unit_test(test_single_node_keeps_one_call),
        cmocka_unit_test(test_volume_cluster_calls_stay_in_one_slot),
        cmocka_unit_test(test_volume_single_node_keeps_one_call),
        cmocka_unit_test(test_outbox_shards_lie_in_their_slots),
        cmocka_unit_test(test_revocation_position_shares_a_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
