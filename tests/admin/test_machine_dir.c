/* test_machine_dir.c -- the machine directory against a real redis-server:
 * machine logs written as the activation servers write them, taken in by
 * the ingest, searched by every field (exact and prefix), paged with a
 * cursor, filtered by status and time, with each machine's history; and
 * the ordered index itself (buckets split, emptied ones dropped, a changed
 * hostname leaves no stale entry). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixture.h"
#include "machine_dir.h"
#include "machine_ingest.h"
#include "machine_rows.h"
#include "machine_search.h"
#include "redis_keys.h"

typedef struct env {
    redis_fixture redis;  /* Redis A */
    redisContext *writer; /* as the keystore user: groups, orders, the logs */
    redisContext *look;   /* as the admin user: looks at the directory's keys */
    rstore *admin;        /* as the admin server */
    machine_ingest *in;
} env;

static int setup(void **state) {
    env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    assert_int_equal(redis_fixture_start(&e->redis, FIXTURE_STORE_ACTIVATION), 0);
    assert_non_null(e->writer = redis_fixture_connect(&e->redis, "keystore", FIXTURE_PW_KEYSTORE));
    assert_non_null(e->look = redis_fixture_connect(&e->redis, "admin", FIXTURE_PW_ADMIN));
    char url[256], err[200];
    redis_fixture_url(&e->redis, "admin", url, sizeof url);
    rstore_config cfg = {.url = url, .command_timeout_ms = 5000};
    assert_non_null(e->admin = rstore_new(&cfg, false, err, sizeof err));
    assert_non_null(e->in = machine_ingest_new(e->admin, 10000));
    *state = e;
    return 0;
}

static int teardown(void **state) {
    env *e = *state;
    machine_ingest_free(e->in);
    rstore_free(e->admin);
    redisFree(e->writer);
    redisFree(e->look);
    redis_fixture_stop(&e->redis);
    free(e);
    return 0;
}

static void cmd_ok(redisContext *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR) fail_msg("%s", r->str);
    freeReplyObject(r);
}

/* One log entry of a retail key, as policy.lua writes it. */
static void log_retail(env *e, char op, uint32_t g, uint32_t s, int m, long t, const char *ip, const char *host,
                       const char *mac, const char *hs, long expires) {
    char mdig[16] = {0}, ops[2] = {op, 0};
    snprintf(mdig, sizeof mdig, "m%07d", m);
    cmd_ok(e->writer, "SADD " PA_RKEY_GROUPS " %u", g);
    cmd_ok(e->writer,
           "XADD " PA_RKEY_GROUP_MLOG_FMT " * op %s m %b g %u s %u t %ld ip %s h %s mac %s hs %s os linux e %ld", g,
           ops, mdig, (size_t)16, g, s, t, ip, host, mac, hs, expires);
}

/* A volume order's entry: no group, the order's serial. */
static void log_volume(env *e, char op, const char *order, int m, long t, const char *host) {
    char mdig[16] = {0}, ops[2] = {op, 0};
    snprintf(mdig, sizeof mdig, "v%07d", m);
    cmd_ok(e->writer, "SADD " PA_RKEY_ORDERS " %s", order);
    cmd_ok(e->writer, "XADD " PA_RKEY_ORDER_MLOG_FMT " * op %s m %b o %s t %ld ip 10.9.0.1 h %s e 0", order, ops, mdig,
           (size_t)16, order, t, host);
}

static long drain(env *e) {
    long n = machine_ingest_drain(e->in, 500);
    if (n < 0) fail_msg("ingest: %s", machine_ingest_error(e->in));
    return n;
}

static machine_filters no_filters(void) { return (machine_filters){.status = MACHINE_STATUS_ANY}; }

/* Every match of f, through the row iterator; the first row's hostname into first. */
static int count_rows(env *e, const machine_filters *f, char *first, size_t n) {
    char err[160];
    machine_rows *it = machine_rows_open(e->admin, f, err, sizeof err);
    if (!it) fail_msg("open: %s", err);
    const machine_row *row;
    int count = 0, rc;
    while ((rc = machine_rows_next(it, &row)) == 1) {
        if (count == 0 && first) snprintf(first, n, "%s", row->hostname);
        count++;
    }
    if (rc < 0) fail_msg("rows: %s", machine_rows_error(it));
    machine_rows_close(it);
    return count;
}

static int count_by(env *e, const char *field, const char *value) {
    machine_filters f = no_filters();
    if (strcmp(field, "hostname") == 0) f.hostname = value;
    if (strcmp(field, "ip") == 0) f.ip = value;
    if (strcmp(field, "mac") == 0) f.mac = value;
    if (strcmp(field, "host_serial") == 0) f.host_serial = value;
    if (strcmp(field, "order") == 0) f.order = value;
    return count_rows(e, &f, NULL, 0);
}

static long redis_int(env *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(e->look, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR) fail_msg("%s", r->str);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long v = (long)r->integer;
    freeReplyObject(r);
    return v;
}

static void test_search_each_field(void **state) {
    env *e = *state;
    long now = (long)time(NULL);
    char host[32], ip[32], mac[32], hs[32];
    for (int i = 0; i < 300; i++) {
        snprintf(host, sizeof host, "WS-%04d", i);
        snprintf(ip, sizeof ip, "10.0.%d.%d", i / 100, i % 100);
        snprintf(mac, sizeof mac, "02:00:00:00:%02x:%02x", i / 256, i % 256);
        snprintf(hs, sizeof hs, "PF%05d", i);
        log_retail(e, 'a', 4343, (uint32_t)(1 + i / 3), i, now - 1000 + i, ip, host, mac, hs, now + 3600);
    }
    log_volume(e, 'a', "20261201", 1, now, "vol-0001");
    log_volume(e, 'p', "20261201", 2, now, "vol-0002");
    assert_int_equal(drain(e), 302);
    assert_int_equal(drain(e), 0); /* positions saved: nothing twice */

    assert_int_equal(count_by(e, "hostname", "ws-0042"), 1);  /* exact, any case */
    assert_int_equal(count_by(e, "hostname", "WS-004*"), 10); /* prefix */
    assert_int_equal(count_by(e, "hostname", "ws-02*"), 100);
    assert_int_equal(count_by(e, "hostname", "nothere"), 0);
    assert_int_equal(count_by(e, "ip", "10.0.1.5"), 1);
    assert_int_equal(count_by(e, "ip", "10.0.1.*"), 100);
    assert_int_equal(count_by(e, "ip", "10.0.1.1*"), 11);
    assert_int_equal(count_by(e, "mac", "02:00:00:00:00:2A"), 1);
    assert_int_equal(count_by(e, "mac", "02:00:00:00:01:*"), 44);
    assert_int_equal(count_by(e, "host_serial", "PF00007"), 1);
    assert_int_equal(count_by(e, "host_serial", "PF001*"), 100);
    assert_int_equal(count_by(e, "order", "20261201"), 2);
    assert_int_equal(count_by(e, "order", "2026*"), 2);

    machine_filters f = no_filters();
    f.has_group = true;
    f.group = 4343;
    assert_int_equal(count_rows(e, &f, NULL, 0), 300);
    f.has_serial = true;
    f.serial = 5;
    char first[MACHINE_FIELD_MAX] = "";
    assert_int_equal(count_rows(e, &f, first, sizeof first), 3);
    assert_true(strcmp(first, "WS-0012") == 0 || strcmp(first, "WS-0013") == 0 || strcmp(first, "WS-0014") == 0);
    /* combined: the walk takes group+serial, the hostname filters */
    f.hostname = "ws-0013";
    assert_int_equal(count_rows(e, &f, NULL, 0), 1);

    /* last contact */
    f = no_filters();
    f.from = now - 1000 + 100;
    f.to = now - 1000 + 149;
    assert_int_equal(count_rows(e, &f, NULL, 0), 50);
    f = no_filters();
    assert_int_equal(count_rows(e, &f, NULL, 0), 302);
    f.status = MACHINE_PENDING;
    assert_int_equal(count_rows(e, &f, first, sizeof first), 1);
    assert_string_equal(first, "vol-0002");
}

static void test_paging_with_cursor(void **state) {
    env *e = *state;
    long now = (long)time(NULL);
    char host[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(host, sizeof host, "pc-%05d", i);
        log_retail(e, 'a', 77, (uint32_t)i + 1, i, now, "192.0.2.1", host, "02:00:00:00:00:01", "X", 0);
    }
    assert_int_equal(drain(e), 1000);
    /* the ingest trims what it took in (whole stream nodes) */
    assert_true(redis_int(e, "XLEN " PA_RKEY_GROUP_MLOG_FMT, 77u) < 200);
    machine_filters f = no_filters();
    f.hostname = "pc-*";
    char cursor[MACHINE_CURSOR_MAX] = "", err[160], prev[MACHINE_FIELD_MAX] = "";
    int total = 0, pages = 0;
    for (;;) {
        machine_search *s = machine_search_open(e->admin, &f, cursor[0] ? cursor : NULL, err, sizeof err);
        assert_non_null(s);
        const machine_record *rec;
        int n = 0;
        while (n < 64 && machine_search_next(s, 5000, &rec) == 1) {
            assert_true(strcmp(rec->row.hostname, prev) > 0); /* in order, none twice */
            snprintf(prev, sizeof prev, "%s", rec->row.hostname);
            n++;
        }
        total += n;
        pages++;
        bool done = machine_search_done(s);
        machine_search_cursor(s, cursor);
        machine_search_close(s);
        if (done) break;
        assert_true(pages < 100);
    }
    assert_int_equal(total, 1000);
    assert_int_equal(pages, 16);
    /* the same machine under one IP: 1000 of them, one index entry each */
    assert_int_equal(count_by(e, "ip", "192.0.2.1"), 1000);
    /* a cursor of another search is refused */
    machine_filters g = no_filters();
    g.ip = "10.*";
    assert_null(machine_search_open(e->admin, &g, cursor, err, sizeof err));
    assert_non_null(strstr(err, "cursor"));
}

static void test_status_and_history(void **state) {
    env *e = *state;
    long now = (long)time(NULL);
    /* machine 1: activate, renew, renew, deactivate */
    log_retail(e, 'a', 9, 1, 1, now - 300, "10.1.0.1", "h-one", "", "", now + 600);
    log_retail(e, 'r', 9, 1, 1, now - 200, "10.1.0.2", "", "", "", now + 700);
    log_retail(e, 'r', 9, 1, 1, now - 100, "10.1.0.3", "", "", "", now + 800);
    log_retail(e, 'd', 9, 1, 1, now - 50, "10.1.0.3", "", "", "", 0);
    /* machine 2: active but its lease passed */
    log_retail(e, 'a', 9, 2, 2, now - 300, "10.1.0.4", "h-two", "", "", now - 10);
    /* machine 3: reclaimed; 4: asked to deactivate (volume) */
    log_retail(e, 'a', 9, 3, 3, now - 300, "10.1.0.5", "h-three", "", "", now + 100);
    log_retail(e, 'x', 9, 3, 3, now - 20, "", "", "", "", 0);
    log_volume(e, 'q', "30000001", 4, now, "h-four");
    log_retail(e, 'a', 9, 5, 5, now, "10.1.0.6", "h-five", "", "", 0);
    assert_int_equal(drain(e), 9);

    machine_filters f = no_filters();
    f.hostname = "h-one";
    char err[160];
    machine_search *s = machine_search_open(e->admin, &f, NULL, err, sizeof err);
    const machine_record *rec;
    assert_int_equal(machine_search_next(s, 0, &rec), 1);
    assert_int_equal(rec->row.status, MACHINE_DEACTIVATED);
    assert_string_equal(rec->row.ip, "10.1.0.3"); /* renews say the address, not the name */
    assert_string_equal(rec->row.os, "linux");
    assert_int_equal(rec->row.first_seen, now - 300);
    assert_int_equal(rec->row.last_seen, now - 50);
    assert_int_equal(rec->n_history, 3); /* a renew after a renew moves the time only */
    assert_int_equal(rec->history[0].op, 'd');
    assert_int_equal(rec->history[1].op, 'r');
    assert_int_equal(rec->history[1].t, now - 100);
    assert_int_equal(rec->history[2].op, 'a');
    /* by id, as GET /machines/{id} reads it */
    uint8_t id[MD_ID_LEN];
    assert_true(machine_id_parse(rec->row.id, id));
    machine_record got;
    assert_int_equal(machine_dir_get(e->admin, id, now, &got), 1);
    assert_string_equal(got.row.hostname, "h-one");
    machine_search_close(s);
    id[0] ^= 1;
    assert_int_equal(machine_dir_get(e->admin, id, now, &got), 0);
    assert_false(machine_id_parse("short", id));

    machine_status want[] = {MACHINE_ACTIVE, MACHINE_EXPIRED, MACHINE_DEACTIVATED, MACHINE_AWAITING, MACHINE_PENDING};
    int counts[] = {1, 2, 1, 1, 0};
    for (size_t i = 0; i < 5; i++) {
        f = no_filters();
        f.status = want[i];
        assert_int_equal(count_rows(e, &f, NULL, 0), counts[i]);
    }
    /* the old addresses are gone from the index */
    assert_int_equal(count_by(e, "ip", "10.1.0.1"), 0);
    assert_int_equal(count_by(e, "ip", "10.1.0.3"), 1);
}

/* A re-bind (op b, policy.lua): the place of machine 11 moved to machine 12.
 * The new machine is active and says so; the old one ends "moved". */
static void test_rebound_marks_the_old_machine_moved(void **state) {
    env *e = *state;
    long now = (long)time(NULL);
    char was[16] = {0}, mdig[16] = {0};
    snprintf(was, sizeof was, "m%07d", 11);
    snprintf(mdig, sizeof mdig, "m%07d", 12);
    log_retail(e, 'a', 9, 20, 11, now - 100, "10.2.0.1", "h-old", "", "", 0);
    cmd_ok(e->writer,
           "XADD " PA_RKEY_GROUP_MLOG_FMT
           " * op b m %b g 9 s 20 o %s t %ld ip 10.2.0.2 h h-new mac %s hs %s os linux "
           "e 0 was %b",
           9, mdig, (size_t)16, "", now, "", "", was, (size_t)16);
    assert_int_equal(drain(e), 2); /* one record made by each: the new machine's by the re-bind */

    machine_filters f = no_filters();
    f.hostname = "h-old";
    char err[160];
    machine_search *s = machine_search_open(e->admin, &f, NULL, err, sizeof err);
    const machine_record *rec;
    assert_int_equal(machine_search_next(s, 0, &rec), 1);
    assert_int_equal(rec->row.status, MACHINE_DEACTIVATED);
    assert_int_equal(rec->history[0].op, 'm');
    assert_int_equal(rec->history[0].t, now);
    assert_int_equal(rec->history[1].op, 'a');
    machine_search_close(s);
    f.hostname = "h-new";
    s = machine_search_open(e->admin, &f, NULL, err, sizeof err);
    assert_int_equal(machine_search_next(s, 0, &rec), 1);
    assert_int_equal(rec->row.status, MACHINE_ACTIVE);
    assert_int_equal(rec->row.serial, 20);
    assert_int_equal(rec->history[0].op, 'b');
    machine_search_close(s);
}

/* The index's buckets: split when full, a renamed machine leaves nothing
 * behind, emptied buckets are dropped. */
static void test_ordered_index(void **state) {
    env *e = *state;
    long now = (long)time(NULL);
    char host[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(host, sizeof host, "old-%05d", i);
        log_retail(e, 'a', 5, 1, i, now, "", host, "", "", 0);
    }
    assert_int_equal(drain(e), 2000);
    /* 2000 hostnames + 2000 group+serial + 2000 times: > 6000 / 120 buckets */
    long buckets = redis_int(e, "ZCARD " PA_RKEY_MD_INDEX);
    assert_true(buckets >= 6000 / 120);
    redisReply *r;
    assert_int_equal(count_by(e, "hostname", "old-*"), 2000);

    /* every machine renamed: the old names vanish, and the buckets that held
     * only them go */
    for (int i = 0; i < 2000; i++) {
        snprintf(host, sizeof host, "new-%05d", 1999 - i);
        log_retail(e, 'r', 5, 1, i, now + 1, "", host, "", "", 0);
    }
    assert_int_equal(drain(e), 2000);
    assert_int_equal(count_by(e, "hostname", "old-*"), 0);
    assert_int_equal(count_by(e, "hostname", "new-*"), 2000);
    assert_int_equal(count_by(e, "hostname", "new-00042"), 1);
    char first[MACHINE_FIELD_MAX] = "";
    machine_filters f = no_filters();
    f.hostname = "new-00*";
    assert_int_equal(count_rows(e, &f, first, sizeof first), 1000);
    assert_string_equal(first, "new-00000");
    long after = redis_int(e, "ZCARD " PA_RKEY_MD_INDEX);
    assert_true(after < buckets + 2000 / 60 + 2); /* emptied old-* buckets dropped */
    /* no bucket holds more than the split size */
    r = redisCommand(e->look, "ZRANGE " PA_RKEY_MD_INDEX " - + BYLEX");
    assert_non_null(r);
    assert_int_equal((long)r->elements, after);
    for (size_t i = 0; i < r->elements; i++) {
        const unsigned char *m = (const unsigned char *)r->element[i]->str + r->element[i]->len - 4;
        unsigned n = (unsigned)m[0] << 24 | (unsigned)m[1] << 16 | (unsigned)m[2] << 8 | m[3];
        long card = redis_int(e, "ZCARD " PA_RKEY_MD_INDEX_PREFIX "%u", n);
        assert_true(card <= 120);
        assert_true(card >= 1 || i == 0);
    }
    freeReplyObject(r);
    /* the records stay compact */
    r = redisCommand(e->look, "OBJECT ENCODING " PA_RKEY_MD_RECORD_PREFIX "0");
    assert_non_null(r);
    if (r->type == REDIS_REPLY_STRING) assert_string_equal(r->str, "listpack");
    freeReplyObject(r);
}

/* One batch (one ingest call) holding a machine three times under three
 * hostnames, beside 300 new machines: one record, only the last name in
 * the index, the position saved once the batch is in. */
static void test_batch_repeats(void **state) {
    env *e = *state;
    long now = (long)time(NULL);
    char host[32];
    for (int i = 0; i < 300; i++) {
        snprintf(host, sizeof host, "many-%05d", i);
        log_retail(e, 'a', 6, (uint32_t)i + 1, i, now, "10.1.0.1", host, "", "", 0);
        if (i == 100) log_retail(e, 'a', 7, 1, 9999, now, "10.2.0.1", "first-name", "02:00:00:00:00:01", "", 0);
        if (i == 200) log_retail(e, 'r', 7, 1, 9999, now + 1, "10.2.0.2", "second-name", "", "", 0);
    }
    log_retail(e, 'r', 7, 1, 9999, now + 2, "", "third-name", "", "", 0);
    assert_int_equal(machine_ingest_step(e->in, 1000), 303);
    machine_filters f = no_filters();
    assert_int_equal(count_rows(e, &f, NULL, 0), 301);
    assert_int_equal(count_by(e, "hostname", "first-name"), 0);
    assert_int_equal(count_by(e, "hostname", "second-name"), 0);
    assert_int_equal(count_by(e, "hostname", "third-name"), 1);
    assert_int_equal(count_by(e, "ip", "10.2.0.1"), 0);
    assert_int_equal(count_by(e, "ip", "10.2.0.2"), 1);
    assert_int_equal(count_by(e, "mac", "02:00:00:00:00:01"), 1);
    assert_int_equal(count_by(e, "hostname", "many-*"), 300);
    f.has_group = true;
    f.group = 7;
    assert_int_equal(count_rows(e, &f, NULL, 0), 1);
    /* the index holds exactly each record's members: 300 x (h, i, k, t)
     * + the machine's h, i, m, k, t */
    redisReply *r = redisCommand(e->look, "ZRANGE " PA_RKEY_MD_INDEX " - + BYLEX");
    assert_non_null(r);
    long members = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const unsigned char *m = (const unsigned char *)r->element[i]->str + r->element[i]->len - 4;
        unsigned n = (unsigned)m[0] << 24 | (unsigned)m[1] << 16 | (unsigned)m[2] << 8 | m[3];
        long card = redis_int(e, "ZCARD " PA_RKEY_MD_INDEX_PREFIX "%u", n);
        assert_true(card <= 120);
        members += card;
    }
    freeReplyObject(r);
    assert_int_equal(members, 300 * 4 + 5);
    /* the log's position is its last entry: nothing is read again */
    assert_int_equal(machine_ingest_step(e->in, 1000), 0);
}

static void test_lease(void **state) {
    env *e = *state;
    machine_ingest *other = machine_ingest_new(e->admin, 10000);
    assert_non_null(other);
    log_retail(e, 'a', 11, 1, 1, (long)time(NULL), "10.2.0.1", "leased", "", "", 0);
    assert_int_equal(machine_ingest_step(e->in, 100), 1);
    assert_true(machine_ingest_holds(e->in));
    log_retail(e, 'a', 11, 2, 2, (long)time(NULL), "10.2.0.2", "leased2", "", "", 0);
    assert_int_equal(machine_ingest_step(other, 100), 0); /* the first holds it */
    assert_false(machine_ingest_holds(other));
    assert_int_equal(machine_ingest_step(e->in, 100), 1);
    machine_ingest_free(other);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_search_each_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging_with_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_and_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebound_marks_the_old_machine_moved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ordered_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_repeats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
