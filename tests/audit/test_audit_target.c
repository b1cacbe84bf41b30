/* test_audit_target.c -- the name an activation server checks in the audit
 * server's certificate when --audit-server-name is not given: the host
 * part of --audit-target (audit_target_host), for every target spelling
 * gRPC accepts that has a host. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "audit_client.h"

static void test_host_of_target(void **state) {
    struct {
        const char *target, *host;
    } ok[] = {
        {"audit.internal:50052", "audit.internal"},
        {"127.0.0.1:50052", "127.0.0.1"},
        {"[::1]:50052", "::1"},
        {"[fd00::7]", "fd00::7"},
        {"dns:///audit.internal:443", "audit.internal"},
        {"dns:audit.internal:443", "audit.internal"},
        {"ipv4:10.0.0.5:50052", "10.0.0.5"},
        {"ipv6:[fd00::5]:50052", "fd00::5"},
        {"audit.internal", "audit.internal"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char host[64] = "";
        if (audit_target_host(ok[i].target, host, sizeof host) != 0 || strcmp(host, ok[i].host) != 0)
            fail_msg("%s: got '%s', want '%s'", ok[i].target, host, ok[i].host);
    }
    const char *bad[] = {"",       ":50052", "unix:/run/audit.sock", "unix-abstract:audit", "::1:50052", "[::1",
                         "[::1]x", NULL};
    for (size_t i = 0; bad[i]; i++) {
        char host[64];
        if (audit_target_host(bad[i], host, sizeof host) == 0) fail_msg("%s: accepted as '%s'", bad[i], host);
    }
    char tiny[4];
    assert_int_equal(audit_target_host("audit.internal:1", tiny, sizeof tiny), -1);
    assert_int_equal(audit_target_host(NULL, tiny, sizeof tiny), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_host_of_target)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
