/* test_activation_volume_match.c -- component matching of a volume order
 * end to end (activation.volume_match): the real activation-server over
 * gRPC, the order's control set with the real `activation-server order
 * set-match`, machines sending ActivateRequest.components.
 *
 * The machines are the ones docs/machines.md names when choosing K: a
 * container whose MAC and machine-id file change on every start (three of
 * five components still match), a cloned disk in another machine (two
 * match), and the same container after the order went back to exact. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act_env.h"
#include "order_env.h"
#include "volume_calls.h"

static act_env env;
static order_env oe;

enum { G_MATCH = 721 };
#define SERIAL "30000021"

static void tune_volume(group_record *r) { r->channel = GROUP_CHANNEL_VOLUME; }

static int setup(void **state) {
    static const char *flags[] = {"--order-public-key", oe.vendor_pub, "--group-refresh-ms", "300", NULL};
    if (env_start_stores(&env) != 0 || order_env_init(&oe, &env) != 0) return -1;
    volume_calls_init(&env, &oe);
    if (env_create_group(&env, G_MATCH, tune_volume) != 0) return -1;
    return env_start_server(&env, flags);
}

static int teardown(void **state) {
    int st = env.server >= 0 ? env_stop_server(&env) : 0;
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

/* `activation-server order set-match ARGS` as the store's keystore user
 * (it writes the order hash); err gets stderr. Returns the exit status. */
static int set_match(const char *serial, const char *k, char **err) {
    const char *args[] = {"set-match", serial, k, NULL};
    char *out = NULL;
    int st = order_env_cli(&oe, NULL, args, &out, err);
    free(out);
    return st;
}

/* Start number `start` of the container: the host's DMI facts and the disk
 * stay, the MAC and the machine-id file are new, and so its machine_id. */
static grant start_container(const char *key, unsigned machine, unsigned start, const char *disk) {
    char mac[40], mid[40];
    snprintf(mac, sizeof mac, "mac=02:00:00:00:00:%02x", start);
    snprintf(mid, sizeof mid, "machine_id_file=container-%u", start);
    const char *parts[] = {"dmi_uuid=host-a", "board_serial=board-a", disk, mac, mid, NULL};
    return activate_on(env.ch, key, machine, 1, &(machine_ask){.components = parts});
}

static unsigned seats_used(const grant *g) {
    assert_int_equal(g->status, GRPC_STATUS_OK);
    assert_non_null(g->resp->volume);
    return g->resp->volume->seats_used;
}

static void test_container_keeps_its_seat(void **state) {
    order(SERIAL, G_MATCH, "permanent", "10", NULL);
    char key[PK_TEXT_LEN + 1], *err = NULL;
    assert_int_equal(env_make_key(&env, G_MATCH, 1, false, 0, key), 0);

    /* Bad K values: usage errors naming what is wrong; an unknown order fails. */
    static const char *const bad[] = {"17", "3x", "", "exactly", "100"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(set_match(SERIAL, bad[i], &err), 2);
        assert_non_null(strstr(err, "is not 'exact' or a number of components from 1 to 16"));
        free(err);
    }
    assert_int_equal(set_match(SERIAL, "-1", &err), 2); /* read as an option: a usage error naming it */
    assert_non_null(strstr(err, "-1"));
    free(err);
    assert_int_equal(set_match("39999999", "3", &err), 1);
    assert_non_null(strstr(err, "no order 39999999"));
    free(err);
    assert_int_equal(set_match(SERIAL, "3", &err), 0);
    free(err);
    char *out = NULL;
    assert_int_equal(order_cmd((const char *[]){"show", SERIAL, "--json", NULL}, &out), 0);
    assert_non_null(strstr(out, "\"machine_match\":3"));
    free(out);

    /* Five starts, five machine ids: one seat, re-bound each time after the first. */
    double before = env_metric(&env, "pa_activations_rebound_total");
    grant first = start_container(key, 1, 1, "disk_serial=disk-a");
    assert_int_equal(seats_used(&first), 1);
    assert_false(first.resp->rebound);
    char last_id[64];
    snprintf(last_id, sizeof last_id, "%s", first.license_id);
    for (unsigned s = 2; s <= 5; s++) {
        grant g = start_container(key, s, s, "disk_serial=disk-a");
        assert_int_equal(seats_used(&g), 1);
        assert_true(g.resp->rebound);
        assert_non_null(g.lic);
        assert_string_not_equal(g.license_id, last_id); /* the license names the new machine */
        assert_int_equal(renew_status(g.license_id, s, 1, NULL, NULL), GRPC_STATUS_OK);
        assert_int_not_equal(renew_status(last_id, s - 1, 1, NULL, NULL), GRPC_STATUS_OK); /* the old one is gone */
        snprintf(last_id, sizeof last_id, "%s", g.license_id);
        grant_free(&g);
    }
    grant_free(&first);
    assert_true(env_metric(&env, "pa_activations_rebound_total") >= before + 4);
    char *log = env_read_log(&env);
    assert_non_null(log);
    assert_non_null(strstr(log, "activate.rebound"));
    free(log);

    /* The disk cloned into another machine: disk and machine-id file match, two: a new seat. */
    const char *clone[] = {"dmi_uuid=host-b",       "board_serial=board-b",        "disk_serial=disk-a",
                           "mac=02:00:00:00:01:01", "machine_id_file=container-5", NULL};
    grant c = activate_on(env.ch, key, 20, 1, &(machine_ask){.components = clone});
    assert_int_equal(seats_used(&c), 2);
    assert_false(c.resp->rebound);
    grant_free(&c);

    /* Exact again: every new machine id takes a new seat. */
    assert_int_equal(set_match(SERIAL, "exact", &err), 0);
    free(err);
    for (unsigned s = 6; s <= 7; s++) {
        grant g = start_container(key, s, s, "disk_serial=disk-a");
        assert_int_equal(seats_used(&g), s - 3);
        assert_false(g.resp->rebound);
        grant_free(&g);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_container_keeps_its_seat),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
