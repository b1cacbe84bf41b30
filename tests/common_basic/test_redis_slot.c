/* test_redis_slot.c -- the Redis Cluster key slot (redis_slot.h): the CRC
 * against the specification's check value, the hash-tag rule's edge cases,
 * and slots checked once against `redis-server --cluster-enabled yes`
 * (CLUSTER KEYSLOT, Redis 7.0), so a change to the rule cannot pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_keys.h"
#include "redis_slot.h"

static unsigned slot(const char *key) { return redis_slot_of(key, strlen(key)); }

static void test_crc16_check_value(void **state) {
    (void)state;
    assert_int_equal(redis_crc16("123456789", 9), 0x31C3);
    assert_int_equal(redis_crc16("", 0), 0);
}

static void test_known_slots(void **state) {
    (void)state;
    /* Values as CLUSTER KEYSLOT answers them. */
    assert_int_equal(slot("foo"), 12182);
    assert_int_equal(slot("bar"), 5061);
    assert_int_equal(slot("hello"), 866);
    assert_int_equal(slot("somekey"), 11058);
    assert_int_equal(slot("{user1000}.following"), 3443);
    assert_int_equal(slot("{g:4365}:group"), 11825);
    assert_int_equal(slot("rl:a:192.0.2.7"), 10583);
    assert_int_equal(slot("audit:outbox"), 14014);
    assert_int_equal(slot(""), 0);
}

static void test_hash_tags(void **state) {
    (void)state;
    assert_int_equal(slot("foo{bar}{zap}"), slot("bar"));  /* the first tag only */
    assert_int_equal(slot("foo{}{bar}"), 8363);            /* empty first tag: whole key */
    assert_int_equal(slot("foo{{bar}}zap"), 4015);         /* the tag is "{bar" */
    assert_int_equal(slot("foo{{bar}}zap"), slot("{bar")); /* "{bar" has no tag itself */
    assert_int_equal(slot("{"), 4092);                     /* no closing brace */
    assert_int_equal(slot("a{b"), 13340);
    assert_int_equal(slot("}{a}"), 15495); /* a '}' before the '{' does not count */
    assert_int_equal(slot("}{a}"), slot("a"));
    const char *part;
    size_t n;
    redis_hash_part("x{ab}y", 6, &part, &n);
    assert_int_equal(n, 2);
    assert_memory_equal(part, "ab", 2);
    /* Binary-safe: a NUL inside the tag is hashed, not an end. */
    assert_int_equal(redis_slot_of("{a\0b}", 5), redis_crc16("a\0b", 3) & (REDIS_SLOTS - 1));
}

static void test_group_keys_share_a_slot(void **state) {
    (void)state;
    char a[PA_RKEY_MAX], b[PA_RKEY_MAX], c[PA_RKEY_MAX];
    snprintf(a, sizeof a, PA_RKEY_GROUP_FMT, 4365u);
    snprintf(b, sizeof b, PA_RKEY_RECORD_FMT, 4365u, 77u);
    snprintf(c, sizeof c, PA_RKEY_GROUP_MLOG_FMT, 4365u);
    assert_int_equal(slot(a), slot(b));
    assert_int_equal(slot(a), slot(c));
    /* What docs/cluster.md sets out to split: the address bucket is elsewhere. */
    snprintf(c, sizeof c, PA_RKEY_ADDRESS_BUCKET_FMT, "192.0.2.7");
    assert_int_not_equal(slot(a), slot(c));
}

static void test_slot_tags_cover_every_slot(void **state) {
    (void)state;
    uint32_t *tags = malloc(REDIS_SLOTS * sizeof *tags);
    assert_non_null(tags);
    assert_int_equal(redis_slot_tags("ob:", tags), 0);
    assert_int_equal(tags[slot("ob:0")], 0); /* the smallest n wins */
    assert_int_equal(slot("{ob:0}:outbox"), 9274);
    for (unsigned s = 0; s < REDIS_SLOTS; s++) {
        char key[32];
        snprintf(key, sizeof key, "{ob:%u}:outbox", (unsigned)tags[s]);
        assert_int_equal(slot(key), s);
    }
    char longp[80];
    memset(longp, 'p', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    assert_int_equal(redis_slot_tags(longp, tags), -1);
    free(tags);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_check_value),
        cmocka_unit_test(test_known_slots),
        cmocka_unit_test(test_hash_tags),
        cmocka_unit_test(test_group_keys_share_a_slot),
        cmocka_unit_test(test_slot_tags_cover_every_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
