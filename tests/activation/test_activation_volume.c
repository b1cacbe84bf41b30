/* test_activation_volume.c -- volume keys end to end (activation.volume):
 * the real activation-server over gRPC, orders made with `keystore order
 * create` and imported with `activation-server order import`, the seat
 * controls through `activation-server order ...`, against a private Redis A.
 *
 * Every seat mode's answers (licenses signed with the order's terms, the
 * VolumeStatus), machines racing for the last seats of a concurrent order,
 * heartbeats keeping seats and silence losing them through the server's
 * background sweep, the KMS threshold, designation then activation at the
 * next call, deactivation with approval and denial, forced deactivation
 * then DEACTIVATED at Renew, reinstalls, the order's dates, retirement and
 * platform, the order gauges, and an on-premises server checking keys by
 * the order's hashes and sending the signed order with each license.
 * Times are a few seconds (order terms and --order-sweep-ms). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "act_env.h"
#include "clock.h"
#include "hex.h"
#include "order_env.h"
#include "redis_keys.h"
#include "rpc_methods.h"
#include "tagged_signature.h"
#include "volume_calls.h"
#include "volume_policy.h"

static act_env env;
static order_env oe;

/* One group and order per test, so the tests do not share seats. */
enum {
    G_PERM = 701,
    G_CONC = 702,
    G_KMS = 703,
    G_DESIG = 704,
    G_APPROVE = 705,
    G_AGE = 706,
    G_DATES = 707,
    G_ONPREM = 708,
    G_VENDOR = 709,
    G_TIMED = 710
};

static void tune_volume(group_record *r) { r->channel = GROUP_CHANNEL_VOLUME; }

static const char *const *server_flags(void) {
    static const char *flags[] = {
        "--order-public-key", oe.vendor_pub, "--order-sweep-ms", "200", "--group-refresh-ms", "300", NULL};
    return flags;
}

static int setup(void **state) {
    if (env_start_stores(&env) != 0 || order_env_init(&oe, &env) != 0) return -1;
    volume_calls_init(&env, &oe);
    const unsigned groups[] = {G_PERM, G_CONC, G_KMS, G_DESIG, G_APPROVE, G_AGE, G_DATES, G_VENDOR, G_TIMED};
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++)
        if (env_create_group(&env, groups[i], tune_volume) != 0) return -1;
    return env_start_server(&env, server_flags());
}

/* The server must exit cleanly (under the sanitizers: no leak, no error). */
static int teardown(void **state) {
    int st = env.server >= 0 ? env_stop_server(&env) : 0;
    env_stop(&env);
    return st == 0 ? 0 : -1;
}

/* Permanent seats: the license carries the order's terms, a repeat (a
 * reinstall, with a new place key) gets the same license id and seat, a
 * full order refuses without retry-after, the gauges follow. */
static void test_permanent(void **state) {
    order("30000001", G_PERM, "permanent", "2", (const char *[]){"--renew-s", "30", NULL});
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_PERM, 1, false, 0, key), 0);
    grant a = activate(key, 1);
    assert_int_equal(a.status, GRPC_STATUS_OK);
    assert_non_null(a.lic);
    assert_int_equal(a.lic->channel, ACTIVATION__V1__CHANNEL__CHANNEL_VOLUME);
    assert_string_equal(a.lic->product, "Office");
    assert_string_equal(a.lic->edition, "Enterprise");
    assert_int_equal(a.lic->n_features, 2);
    assert_string_equal(a.lic->order_serial, "30000001");
    assert_int_equal(a.lic->order_revision, 1);
    assert_string_equal(a.lic->seat_mode, "permanent");
    assert_int_equal(a.lic->renew_after, a.lic->issued_at + 30);
    assert_non_null(a.resp->volume);
    assert_string_equal(a.resp->volume->order_serial, "30000001");
    assert_string_equal(a.resp->volume->mode, "permanent");
    assert_int_equal(a.resp->volume->seats, 2);
    assert_int_equal(a.resp->volume->seats_used, 1);
    assert_int_equal(a.resp->volume->pending, ACTIVATION__V1__VOLUME_STATUS__PENDING__PENDING_NONE);
    assert_int_equal(a.resp->order.len, 0); /* vendor-hosted: the vendor's key signed it */

    /* A reinstall with a new place key: same license id, same seat; the old key is refused. */
    grant re = activate_on(env.ch, key, 1, 77, NULL);
    assert_int_equal(re.status, GRPC_STATUS_OK);
    assert_string_equal(re.license_id, a.license_id);
    assert_int_equal(re.resp->volume->seats_used, 1);
    char reason[64];
    assert_int_equal(renew_status(a.license_id, 1, 1, reason, NULL), GRPC_STATUS_UNAUTHENTICATED);
    assert_string_equal(reason, "PROOF_WRONG_KEY");
    assert_int_equal(renew_status(a.license_id, 1, 77, NULL, NULL), GRPC_STATUS_OK);

    grant b = activate(key, 2);
    assert_int_equal(b.status, GRPC_STATUS_OK);
    grant full = activate(key, 3);
    assert_int_equal(full.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(full.retry_after, 0);
    /* A sweep that read the counters before these calls may set the gauges
     * after them; the next sweep (200 ms) sets them right. */
    assert_true(gauge_wait("pa_order_seats_used", "30000001", 2, 5000) == 2);
    assert_true(gauge_wait("pa_order_seats_free", "30000001", 0, 5000) == 0);
    assert_true(gauge_wait("pa_order_machines", "30000001", 2, 5000) == 2);
    assert_true(env_metric(&env, "pa_activations_refused_total{reason=\"no_seat\"}") >= 1);

    /* A Deactivate (no approval on this order) frees the seat at once. */
    license_call d = by_license(PA_RPC_DEACTIVATE, b.license_id, 2, 2);
    assert_int_equal(d.status, GRPC_STATUS_OK);
    assert_non_null(d.deact->volume);
    assert_int_equal(d.deact->volume->seats_used, 1);
    assert_int_equal(d.deact->volume->deactivation, ACTIVATION__V1__VOLUME_STATUS__DEACTIVATION__DEACTIVATION_NONE);
    license_call_free(&d);
    grant c = activate(key, 3);
    assert_int_equal(c.status, GRPC_STATUS_OK);
    grant_free(&a), grant_free(&re), grant_free(&b), grant_free(&full), grant_free(&c);
}

/* Concurrent: clients on their own connections race for the last seats;
 * exactly `seats` win, the others hear when the first seat frees. Then
 * heartbeats keep one seat while silence loses the others (the server's
 * sweep), and a waiting machine gets in. */
enum { RACERS = 6, PER_RACER = 4, CONC_SEATS = 5 };

typedef struct racer {
    int index;
    const char *key;
    int granted, full, other;
    char ids[PER_RACER][64];
    unsigned machines[PER_RACER];
} racer;

/* One of several channels a process opens at once to itself now and then
 * fails its first connect, and its calls then fail fast with UNAVAILABLE
 * for gRPC's 1 s reconnect backoff (common.rpc_batch meets it too). The
 * race is about seats, not connecting: each racer's channel is connected
 * by a health check first, for at most about 5 s, so no seat's lease runs
 * meanwhile. */
static void connect_first(rpc_channel *ch) {
    rpc_client_method *m = rpc_channel_method(ch, PA_RPC_HEALTH_CHECK);
    static const uint8_t empty[1];
    for (int tries = 0; m && tries < 20; tries++) {
        rpc_result res;
        grpc_status_code st = rpc_call(ch, m, empty, 0, 2000, &res);
        rpc_result_clear(&res);
        if (st != GRPC_STATUS_UNAVAILABLE) return;
        struct timespec pause = {0, 250 * 1000000L};
        nanosleep(&pause, NULL);
    }
}

static void *race(void *arg) {
    racer *r = arg;
    rpc_channel *ch = rpc_channel_new(env.target, NULL);
    if (ch) connect_first(ch);
    for (int i = 0; ch && i < PER_RACER; i++) {
        unsigned n = 100 + (unsigned)(r->index * PER_RACER + i);
        grant g = activate_on(ch, r->key, n, n, NULL);
        if (g.status == GRPC_STATUS_OK) {
            snprintf(r->ids[r->granted], 64, "%s", g.license_id);
            r->machines[r->granted++] = n;
        } else if (g.status == GRPC_STATUS_RESOURCE_EXHAUSTED && g.retry_after >= 1) {
            r->full++;
        } else {
            fprintf(stderr, "racer %d, machine %u: status %d (%s)\n", r->index, n, g.status, g.reason);
            r->other++;
        }
        grant_free(&g);
    }
    rpc_channel_free(ch);
    rpc_client_thread_done();
    return NULL;
}

static void test_concurrent_race_and_heartbeats(void **state) {
    order("30000002", G_CONC, "concurrent", "5",
          (const char *[]){"--heartbeat-s", "1", "--missed-heartbeats", "2", NULL});
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_CONC, 1, false, 0, key), 0);
    pthread_t th[RACERS];
    racer rc[RACERS];
    for (int i = 0; i < RACERS; i++) {
        rc[i] = (racer){.index = i, .key = key};
        assert_int_equal(pthread_create(&th[i], NULL, race, &rc[i]), 0);
    }
    int granted = 0, full = 0, other = 0;
    const char *beat_id = NULL;
    unsigned beat_machine = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(th[i], NULL);
        granted += rc[i].granted;
        full += rc[i].full;
        other += rc[i].other;
        if (rc[i].granted && !beat_id) beat_id = rc[i].ids[0], beat_machine = rc[i].machines[0];
    }
    assert_int_equal(other, 0);
    assert_int_equal(granted, CONC_SEATS);
    assert_int_equal(full, RACERS * PER_RACER - CONC_SEATS);
    /* Racing workers may set the gauge out of order; the sweep sets it right. */
    assert_true(gauge_wait("pa_order_seats_used", "30000002", CONC_SEATS, 1500) == CONC_SEATS);

    /* One machine beats every half second, for 4 s and then until the
     * sweep has freed the silent machines' seats (a slow machine sweeps late). */
    for (int i = 0; i < 8 || (gauge("pa_order_seats_used", "30000002") != 1 && i < 30); i++) {
        license_call hb = by_license(PA_RPC_RENEW, beat_id, beat_machine, beat_machine);
        assert_int_equal(hb.status, GRPC_STATUS_OK);
        assert_non_null(hb.renew->volume);
        assert_string_equal(hb.renew->volume->mode, "concurrent");
        assert_int_equal(hb.renew->expires_at - hb.renew->renew_after, 1); /* 2 beats lease, renew after 1 */
        license_call_free(&hb);
        usleep(500 * 1000);
    }
    assert_true(gauge("pa_order_seats_used", "30000002") == 1);
    for (int i = 0; i < RACERS; i++)
        for (int j = 0; j < rc[i].granted; j++) {
            if (rc[i].machines[j] == beat_machine) continue;
            char reason[64];
            assert_int_equal(renew_status(rc[i].ids[j], rc[i].machines[j], rc[i].machines[j], reason, NULL),
                             GRPC_STATUS_FAILED_PRECONDITION);
            assert_string_equal(reason, "LEASE_EXPIRED");
        }
    grant late = activate(key, 999);
    assert_int_equal(late.status, GRPC_STATUS_OK);
    assert_int_equal(late.resp->volume->seats_used, 2);
    grant_free(&late);
}

/* KMS threshold: pending with the count until the third machine asks; it
 * and the earlier ones (at their next call) are granted. */
static void test_threshold(void **state) {
    order("30000003", G_KMS, "permanent", "10", (const char *[]){"--threshold", "3", "--pending-retry-s", "5", NULL});
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_KMS, 1, false, 0, key), 0);
    grant p1 = activate(key, 1);
    assert_int_equal(p1.status, GRPC_STATUS_OK);
    assert_int_equal(p1.resp->license.len, 0);
    assert_non_null(p1.resp->volume);
    assert_int_equal(p1.resp->volume->pending, ACTIVATION__V1__VOLUME_STATUS__PENDING__PENDING_THRESHOLD);
    assert_int_equal(p1.resp->volume->activation_count, 1);
    assert_int_equal(p1.resp->volume->threshold, 3);
    int64_t now = (int64_t)time(NULL);
    assert_true(p1.resp->volume->check_in_at >= now + 3 && p1.resp->volume->check_in_at <= now + 6);
    grant p2 = activate(key, 2);
    assert_int_equal(p2.resp->volume->pending, ACTIVATION__V1__VOLUME_STATUS__PENDING__PENDING_THRESHOLD);
    grant g3 = activate(key, 3);
    assert_non_null(g3.lic);
    assert_int_equal(g3.resp->volume->activation_count, 3);
    grant g1 = activate(key, 1);
    assert_non_null(g1.lic);
    assert_int_equal(g1.resp->volume->seats_used, 2);
    assert_true(env_metric(&env, "pa_activations_pending_total{reason=\"threshold\"}") >= 2);
    grant_free(&p1), grant_free(&p2), grant_free(&g3), grant_free(&g1);
}

/* Auto-activation off: a device waits until the operator designates it
 * (by machine digest, host serial or MAC), then activates at its next call;
 * the facts the order collects are in `order machines`. */
static void test_designation(void **state) {
    order("30000004", G_DESIG, "permanent", "10",
          (const char *[]){"--auto-activation", "off", "--collect", "hostname,host_serial,mac", NULL});
    char key[PK_TEXT_LEN + 1], hex[33];
    assert_int_equal(env_make_key(&env, G_DESIG, 1, false, 0, key), 0);
    machine_ask serial_ask = {.host_serial = "SN-0042"}, mac_ask = {.mac = "02:AA:BB:CC:DD:EE"};
    grant p = activate(key, 1);
    assert_int_equal(p.resp->volume->pending, ACTIVATION__V1__VOLUME_STATUS__PENDING__PENDING_NOT_DESIGNATED);
    digest_hex(1, hex);
    assert_int_equal(order_cmd((const char *[]){"designate", "30000004", "--machine-id", hex, NULL}, NULL), 0);
    grant g = activate(key, 1);
    assert_non_null(g.lic);
    assert_int_equal(order_cmd((const char *[]){"designate", "30000004", "--host-serial", "SN-0042", NULL}, NULL), 0);
    grant s = activate_on(env.ch, key, 2, 2, &serial_ask);
    assert_non_null(s.lic);
    assert_int_equal(order_cmd((const char *[]){"designate", "30000004", "--mac", "02:aa:bb:cc:dd:ee", NULL}, NULL), 0);
    grant m = activate_on(env.ch, key, 3, 3, &mac_ask);
    assert_non_null(m.lic);
    assert_int_equal(order_cmd((const char *[]){"undesignate", "30000004", "--mac", "02:aa:bb:cc:dd:ee", NULL}, NULL),
                     0);
    grant other = activate_on(env.ch, key, 4, 4, &mac_ask);
    assert_int_equal(other.resp->volume->pending, ACTIVATION__V1__VOLUME_STATUS__PENDING__PENDING_NOT_DESIGNATED);
    assert_int_equal(order_cmd((const char *[]){"designate", "30000004", "--mac", "nonsense", NULL}, NULL), 2);

    char *out = NULL;
    assert_int_equal(order_cmd((const char *[]){"machines", "30000004", "--json", NULL}, &out), 0);
    assert_non_null(strstr(out, "\"hostname\":\"host-2\""));
    assert_non_null(strstr(out, "\"host_serial\":\"SN-0042\""));
    assert_non_null(strstr(out, "\"status\":\"pending\""));
    assert_non_null(strstr(out, hex));
    free(out);
    grant_free(&p), grant_free(&g), grant_free(&s), grant_free(&m), grant_free(&other);
}

/* How often the log says the order's free seats fell low and recovered. */
static void seat_notes(const char *serial, int *low, int *ok) {
    char *log = env_read_log(&env), order_field[32];
    snprintf(order_field, sizeof order_field, "\"order\":\"%s\"", serial);
    *low = *ok = 0;
    for (const char *p = log; (p = strstr(p, "\"order.seats_")); p++) {
        const char *at = strstr(p, order_field), *eol = strchr(p, '\n');
        if (!at || (eol && at > eol)) continue;
        if (strncmp(p, "\"order.seats_low\"", 17) == 0) ++*low;
        else ++*ok;
    }
    free(log);
}

/* Deactivation with approval: awaiting (the seat held), denied (reported
 * at the next Renew), approved (the seat frees, Renew answers DEACTIVATED);
 * forced deactivation of another machine; the operator's refusals. */
static void test_approval_and_forced(void **state) {
    const char *o = "30000005";
    order(o, G_APPROVE, "permanent", "1",
          (const char *[]){"--deactivation-approval", "on", "--seat-warning", "1", NULL});
    char key[PK_TEXT_LEN + 1], hex1[33], hex2[33], reason[64];
    int deact;
    assert_int_equal(env_make_key(&env, G_APPROVE, 1, false, 0, key), 0);
    digest_hex(1, hex1);
    digest_hex(2, hex2);
    grant a = activate(key, 1);
    assert_non_null(a.lic);
    assert_int_equal(order_cmd((const char *[]){"approve", o, hex1, NULL}, NULL), 1); /* nothing asked */

    license_call d = by_license(PA_RPC_DEACTIVATE, a.license_id, 1, 1);
    assert_int_equal(d.status, GRPC_STATUS_OK);
    assert_int_equal(d.deact->volume->deactivation,
                     ACTIVATION__V1__VOLUME_STATUS__DEACTIVATION__DEACTIVATION_AWAITING_APPROVAL);
    assert_int_equal(d.deact->volume->seats_used, 1);
    license_call_free(&d);
    grant b = activate(key, 2);
    assert_int_equal(b.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(order_cmd((const char *[]){"deny", o, hex1, NULL}, NULL), 0);
    assert_int_equal(renew_status(a.license_id, 1, 1, NULL, &deact), GRPC_STATUS_OK);
    assert_int_equal(deact, ACTIVATION__V1__VOLUME_STATUS__DEACTIVATION__DEACTIVATION_DENIED);
    assert_int_equal(renew_status(a.license_id, 1, 1, NULL, &deact), GRPC_STATUS_OK);
    assert_int_equal(deact, ACTIVATION__V1__VOLUME_STATUS__DEACTIVATION__DEACTIVATION_NONE);

    d = by_license(PA_RPC_DEACTIVATE, a.license_id, 1, 1);
    license_call_free(&d);
    assert_int_equal(order_cmd((const char *[]){"approve", o, hex1, NULL}, NULL), 0);
    assert_int_equal(renew_status(a.license_id, 1, 1, reason, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(reason, "DEACTIVATED");

    grant b2 = activate(key, 2);
    assert_non_null(b2.lic);
    assert_int_equal(order_cmd((const char *[]){"deactivate", o, hex2, NULL}, NULL), 0);
    assert_int_equal(renew_status(b2.license_id, 2, 2, reason, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(reason, "DEACTIVATED");
    assert_true(env_metric(&env, "pa_renewals_refused_total{reason=\"deactivated\"}") >= 2);
    char *out = NULL;
    assert_int_equal(order_cmd((const char *[]){"machines", o, NULL}, &out), 0);
    assert_non_null(strstr(out, "deactivated"));
    free(out);

    /* The seat warning: low when the seat was taken, ok when approval
     * freed it, low again for b2, ok after the forced deactivation (the
     * sweep's note); once per crossing, not per call. */
    int low = 0, ok = 0;
    int64_t until = pa_mono_ms() + 10000; /* the sweep runs every 200 ms; a slow machine logs later */
    do {
        if (ok < 2) usleep(100 * 1000);
        seat_notes(o, &low, &ok);
    } while (ok < 2 && pa_mono_ms() < until);
    assert_int_equal(low, 2);
    assert_int_equal(ok, 2);
    assert_int_equal(order_cmd((const char *[]){"deactivate", o, "00112233445566778899aabbccddeeff", NULL}, NULL), 1);
    assert_int_equal(order_cmd((const char *[]){"deactivate", o, "xyz", NULL}, NULL), 2);
    grant_free(&a), grant_free(&b), grant_free(&b2);
}

/* Ageing: machines leave the table and the count a retention period after
 * their last contact, by the server's background sweep alone. */
static void test_ageing(void **state) {
    const char *o = "30000006";
    order(o, G_AGE, "unlimited", "0", (const char *[]){"--retention-s", "2", NULL});
    char key[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_AGE, 1, false, 0, key), 0);
    for (unsigned i = 1; i <= 3; i++) {
        grant g = activate(key, i);
        assert_non_null(g.lic);
        grant_free(&g);
    }
    assert_true(gauge_wait("pa_order_machines", o, 3, 1500) == 3); /* a late sweep may have set an older value */
    /* 2 s of retention, 1 s of bucket, the sweep every 200 ms; a slow machine takes longer. */
    assert_true(gauge_wait("pa_order_machines", o, 0, 15000) == 0);
    char *out = NULL;
    assert_int_equal(order_cmd((const char *[]){"machines", o, "--json", NULL}, &out), 0);
    assert_string_equal(out, "[]\n");
    free(out);
    assert_true(env_metric(&env, "pa_order_sweep_aged_total") >= 3);
}

/* The order's dates, platform and retirement, refused with their reasons. */
static void test_dates_platform_retired(void **state) {
    char until[32], key[PK_TEXT_LEN + 1];
    long long end = (long long)time(NULL) + 8; /* room for creating and importing the order first */
    snprintf(until, sizeof until, "%lld", end);
    order("30000007", G_DATES, "timed-reclaim", "5",
          (const char *[]){"--valid-until", until, "--os-version", "Debian GNU/Linux 12", "--arch", "x86_64", NULL});
    assert_int_equal(env_make_key(&env, G_DATES, 1, false, 0, key), 0);
    machine_ask win = {.os = "Windows 11", .arch = "x86_64"},
                deb = {.os = "Debian GNU/Linux 12 (bookworm)", .arch = "x86_64"};
    grant w = activate_on(env.ch, key, 1, 1, &win);
    assert_int_equal(w.status, GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(w.reason, "PLATFORM_NOT_ALLOWED");
    grant d = activate_on(env.ch, key, 2, 2, &deb);
    assert_non_null(d.lic);
    assert_string_equal(d.lic->seat_mode, "timed-reclaim");
    assert_true(d.lic->expires_at <= end); /* never past the order's end */
    while ((long long)time(NULL) <= end) usleep(200 * 1000);
    grant late = activate_on(env.ch, key, 3, 3, &deb);
    assert_int_equal(late.status, GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(late.reason, "ORDER_ENDED");
    char reason[64];
    assert_int_equal(renew_status(d.license_id, 2, 2, reason, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(reason, "ORDER_ENDED");

    /* Retired (by the store's keystore user): refused at once. */
    char *err = NULL;
    assert_int_equal(order_env_cli(&oe, NULL, (const char *[]){"retire", "30000001", NULL}, NULL, &err), 0);
    free(err);
    usleep(500 * 1000);
    char pkey[PK_TEXT_LEN + 1];
    assert_int_equal(env_make_key(&env, G_PERM, 1, false, 0, pkey), 0);
    grant r = activate(pkey, 1);
    assert_int_equal(r.status, GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(r.reason, "ORDER_RETIRED");
    grant_free(&w), grant_free(&d), grant_free(&late), grant_free(&r);
}

/* Vendor mode: no renewal, each machine's validity from its own first
 * activation, no platform check. Timed reclaim: a seat not renewed within
 * reclaim_seconds goes to the next machine. */
static void test_vendor_and_timed(void **state) {
    order("30000009", G_VENDOR, "vendor", "3",
          (const char *[]){"--machine-validity-s", "600", "--os-version", "Factory OS", NULL});
    char vkey[PK_TEXT_LEN + 1], tkey[PK_TEXT_LEN + 1], reason[64];
    assert_int_equal(env_make_key(&env, G_VENDOR, 1, false, 0, vkey), 0);
    machine_ask other_os = {.os = "Windows 11", .arch = "arm64"};
    grant v = activate_on(env.ch, vkey, 1, 1, &other_os);
    assert_non_null(v.lic);
    assert_string_equal(v.lic->seat_mode, "vendor");
    assert_int_equal(v.lic->renew_after, 0);
    assert_int_equal(v.lic->expires_at, v.lic->issued_at + 600);
    sleep(1);
    grant again = activate_on(env.ch, vkey, 1, 1, &other_os);
    assert_int_equal(again.lic->expires_at, v.lic->expires_at); /* from the first activation */

    order("30000010", G_TIMED, "timed-reclaim", "1", (const char *[]){"--renew-s", "1", "--reclaim-s", "2", NULL});
    assert_int_equal(env_make_key(&env, G_TIMED, 1, false, 0, tkey), 0);
    grant t1 = activate(tkey, 1);
    assert_non_null(t1.lic);
    assert_int_equal(t1.lic->expires_at, t1.lic->issued_at + 2);
    grant t2 = activate(tkey, 2);
    assert_int_equal(t2.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    /* The lease of 2 s ends, its bucket of 1 s falls due, the seat frees
     * (a call or the sweep ages it); machine 2 asks until it gets it. */
    grant t2b = {0};
    int64_t until = pa_mono_ms() + 15000;
    do {
        grant_free(&t2b);
        usleep(200 * 1000);
        t2b = activate(tkey, 2);
    } while (t2b.status == GRPC_STATUS_RESOURCE_EXHAUSTED && pa_mono_ms() < until);
    assert_int_equal(t2b.status, GRPC_STATUS_OK);
    assert_non_null(t2b.lic);
    assert_true(t2b.lic->issued_at >= t1.lic->expires_at); /* not while t1's lease ran */
    assert_int_equal(renew_status(t1.license_id, 1, 1, reason, NULL), GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(reason, "LEASE_EXPIRED");
    grant_free(&v), grant_free(&again), grant_free(&t1), grant_free(&t2), grant_free(&t2b);
}

/* On-premises: no group secret, no audit; the key is checked against the
 * order's hashes, and every answer carries the vendor-signed order that
 * delegates this server's key. A key not in the order reads as not genuine. */
static void test_on_premises(void **state) {
    char keys_file[300], good[PK_TEXT_LEN + 1], other[PK_TEXT_LEN + 1], vendor_key[PK_TEXT_LEN + 1];
    env_forge_key(G_ONPREM, 5, good);
    env_forge_key(G_ONPREM, 6, other);
    snprintf(keys_file, sizeof keys_file, "%s/onprem-keys.txt", env.dir);
    FILE *f = fopen(keys_file, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", good);
    fclose(f);
    char g[16], path[300];
    snprintf(g, sizeof g, "%u", G_ONPREM);
    const char *args[] = {"--serial",     "30000008",   "--customer",
                          "Example Corp", "--group",    g,
                          "--product",    "Office",     "--mode",
                          "permanent",    "--seats",    "3",
                          "--valid-from", "2020-01-01", "--valid-until",
                          "2099-12-31",   "--delegate", env.public_key,
                          "--keys-file",  keys_file,    NULL};
    assert_int_equal(order_env_create(&oe, NULL, "onprem.license", args, path, sizeof path), 0);
    char *out = NULL, *err = NULL;
    int st = order_env_import(&oe, path, (const char *[]){"--on-premises", "--signing-key", env.signing_key, NULL},
                              &out, &err);
    if (st) fprintf(stderr, "import: %s\n", err ? err : "");
    assert_int_equal(st, 0);
    free(out), free(err);
    const char *flags[] = {"--order-public-key", oe.vendor_pub, "--on-premises", "--order-sweep-ms", "200", NULL};
    assert_int_equal(env_restart_server(&env, flags), 0);

    grant a = activate(good, 1);
    assert_int_equal(a.status, GRPC_STATUS_OK);
    assert_non_null(a.lic); /* verified with the server's key: the one the order delegates */
    assert_string_equal(a.lic->order_serial, "30000008");
    assert_true(a.resp->order.len > 0);
    assert_int_equal(a.resp->order_signature.len, TAGGED_SIG_LEN);
    assert_true(a.resp->order_key_id && strlen(a.resp->order_key_id) == 16);
    EVP_PKEY *vendor = fixture_public_key_load(oe.vendor_pub);
    assert_true(tagged_verify(vendor, TAG_ORDER, a.resp->order.data, a.resp->order.len, a.resp->order_signature.data,
                              a.resp->order_signature.len));
    EVP_PKEY_free(vendor);
    license_call rn = by_license(PA_RPC_RENEW, a.license_id, 1, 1);
    assert_int_equal(rn.status, GRPC_STATUS_OK);
    assert_true(rn.renew->order.len > 0);
    license_call_free(&rn);

    grant no = activate(other, 2);
    assert_int_equal(no.status, GRPC_STATUS_PERMISSION_DENIED);
    assert_int_equal(env_make_key(&env, G_CONC, 1, false, 0, vendor_key), 0); /* a vendor-hosted order's key */
    grant no2 = activate(vendor_key, 3);
    assert_int_equal(no2.status, GRPC_STATUS_PERMISSION_DENIED);
    grant_free(&a), grant_free(&no), grant_free(&no2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_permanent),
        cmocka_unit_test(test_concurrent_race_and_heartbeats),
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_designation),
        cmocka_unit_test(test_approval_and_forced),
        cmocka_unit_test(test_ageing),
        cmocka_unit_test(test_dates_platform_retired),
        cmocka_unit_test(test_vendor_and_timed),
        cmocka_unit_test(test_on_premises),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
