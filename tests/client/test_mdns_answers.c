/* test_mdns_answers.c -- what the client makes of mDNS answers, without a
 * network: the TXT record (v=1, order=), the preference for the server
 * holding this machine's order, the endpoints (dialled at the address, the
 * certificate checked against the announced .local host), and the error
 * when no Avahi daemon is there (the system bus pointed at nothing). The
 * browse itself runs against real Avahi daemons in client.mdns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activate.h"
#include "discovery.h"
#include "keycodec.h"
#include "mdns_browse.h"

/* mdns_txt_read over NUL-terminated test strings. */
static int txt(const char *const *items, size_t n, char orders[MDNS_ORDERS_MAX], char *why) {
    const uint8_t *p[8];
    size_t lens[8];
    for (size_t i = 0; i < n; i++) {
        p[i] = (const uint8_t *)items[i];
        lens[i] = strlen(items[i]);
    }
    return mdns_txt_read(p, lens, n, orders, why, 120);
}

static void txt_version_and_orders(void **state) {
    char orders[MDNS_ORDERS_MAX], why[120];
    const char *one[] = {"v=1", "order=12345678"};
    assert_int_equal(txt(one, 2, orders, why), 0);
    assert_string_equal(orders, "12345678");
    const char *two[] = {"order=12345678,87654321", "other=x", "flag", "v=1"};
    assert_int_equal(txt(two, 4, orders, why), 0);
    assert_string_equal(orders, "12345678,87654321");
    const char *none[] = {"v=1"};
    assert_int_equal(txt(none, 1, orders, why), 0);
    assert_string_equal(orders, "");
}

static void txt_refused(void **state) {
    char orders[MDNS_ORDERS_MAX], why[120];
    const char *no_version[] = {"order=12345678"};
    assert_int_equal(txt(no_version, 1, orders, why), -1);
    assert_string_equal(why, "TXT has no v=1");
    const char *later[] = {"v=2"};
    assert_int_equal(txt(later, 1, orders, why), -1);
    assert_string_equal(why, "TXT version is not v=1");
    const char *v10[] = {"v=10"};
    assert_int_equal(txt(v10, 1, orders, why), -1);
    const char *bare_v[] = {"v"};
    assert_int_equal(txt(bare_v, 1, orders, why), -1);
    const char *bad_orders[][2] = {{"v=1", "order=1234567"},   {"v=1", "order=123456789"}, {"v=1", "order=1234567a"},
                                   {"v=1", "order=12345678,"}, {"v=1", "order="},          {"v=1", "order"}};
    for (size_t i = 0; i < sizeof bad_orders / sizeof *bad_orders; i++) {
        assert_int_equal(txt(bad_orders[i], 2, orders, why), -1);
        assert_string_equal(why, "TXT order is not a list of 8-digit serials");
    }
    /* A TXT string is bytes: a NUL inside is not the end of the value. */
    const uint8_t nul[] = {'v', '=', '1', 0, '2'};
    const uint8_t *p[] = {nul};
    size_t len[] = {sizeof nul};
    assert_int_equal(mdns_txt_read(p, len, 1, orders, why, sizeof why), -1);
}

static mdns_service svc(const char *host, const char *address, uint16_t port, const char *orders) {
    mdns_service s = {.port = port};
    snprintf(s.host, sizeof s.host, "%s", host);
    snprintf(s.address, sizeof s.address, "%s", address);
    snprintf(s.orders, sizeof s.orders, "%s", orders);
    return s;
}

static void orders_and_preference(void **state) {
    assert_true(mdns_orders_have("12345678", "12345678"));
    assert_true(mdns_orders_have("11111111,12345678", "12345678"));
    assert_false(mdns_orders_have("112345678", "12345678"));
    assert_false(mdns_orders_have("1234567", "12345678"));
    assert_false(mdns_orders_have("", "12345678"));
    assert_false(mdns_orders_have("12345678", ""));
    mdns_service s[4] = {svc("a.local", "10.0.0.1", 1, "11111111"), svc("b.local", "10.0.0.2", 1, "22222222,33333333"),
                         svc("c.local", "10.0.0.3", 1, ""), svc("d.local", "10.0.0.4", 1, "33333333")};
    mdns_prefer_order(s, 4, NULL);
    assert_string_equal(s[0].host, "a.local");
    mdns_prefer_order(s, 4, "33333333");
    const char *want[] = {"b.local", "d.local", "a.local", "c.local"}; /* stable within each part */
    for (int i = 0; i < 4; i++) assert_string_equal(s[i].host, want[i]);
}

static void endpoints_dial_the_address_and_check_the_host(void **state) {
    mdns_service s[] = {svc("pa-onprem.local", "10.231.0.1", 50051, ""),
                        svc("pa-onprem6.local.", "2001:db8::7", 443, ""),
                        svc("evil.example.com", "10.231.0.9", 50051, ""),
                        svc("bad_name.local", "10.231.0.9", 50051, ""),
                        svc("unix:/run/x.local", "10.231.0.9", 50051, ""),
                        svc("noaddr.local", "pa-onprem.local", 50051, ""),
                        svc("zero.local", "10.231.0.9", 0, "")};
    endpoint *e;
    size_t n;
    char err[256];
    assert_int_equal(endpoints_from_mdns(s, sizeof s / sizeof *s, &e, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(e[0].name, "pa-onprem.local:50051");
    assert_string_equal(e[0].target, "ipv4:10.231.0.1:50051");
    assert_string_equal(e[0].tls_name, "pa-onprem.local");
    assert_string_equal(e[1].name, "pa-onprem6.local:443");
    assert_string_equal(e[1].target, "ipv6:[2001:db8::7]:443");
    assert_string_equal(e[1].tls_name, "pa-onprem6.local");
    free(e);
    assert_int_equal(endpoints_from_mdns(&s[2], 1, &e, &n, err, sizeof err), -1);
    assert_null(e);
    assert_string_equal(err, "mDNS: no usable announcement: an announced host is outside .local");
    assert_int_equal(endpoints_from_mdns(&s[5], 1, &e, &n, err, sizeof err), -1);
    assert_string_equal(err, "mDNS: no usable announcement: an announced address is not an IP address");
}

/* The system bus pointed at a socket that does not exist: no Avahi. */
static void no_daemon(void **state) {
    assert_int_equal(setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/pa-test-bus", 1), 0);
    mdns_service *s;
    size_t n;
    char err[256];
    assert_int_equal(mdns_browse(500, &s, &n, err, sizeof err), -1);
    assert_null(s);
    assert_string_equal(err, "mDNS: the Avahi daemon is not running");
}

/* The same through the library: mDNS as the only source fails as
 * UNAVAILABLE with that reason, after SRV's when SRV was asked first. */
static void no_daemon_is_unavailable(void **state) {
    assert_int_equal(setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/pa-test-bus", 1), 0);
    char dir[] = "/tmp/pa-mdns-XXXXXX";
    assert_non_null(mkdtemp(dir));
    pa_options o;
    pa_options_init(&o);
    assert_int_equal(o.mdns_timeout_ms, 2000);
    assert_false(o.mdns);
    o.state_dir = dir;
    o.insecure = true;
    o.mdns = true;
    o.public_key_pem =
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
        "-----END PUBLIC KEY-----\n";
    char err[256], key[PK_TEXT_LEN + 1];
    pk_fields f = {.group = 7, .serial = 11, .security_first = 1234, .security_second = 5};
    f.checksum = pk_checksum(&f);
    assert_int_equal(pk_encode(&f, key), 0);
    pa_client *c = pa_client_new(&o, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(pa_activate(c, key), PA_ERR_UNAVAILABLE);
    assert_string_equal(pa_error(c), "mDNS: the Avahi daemon is not running");
    pa_client_free(c);
    o.srv_domain = "example.invalid";
    o.dns_server = "127.0.0.1:9"; /* nothing answers there */
    o.timeout_ms = 300;
    c = pa_client_new(&o, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(pa_activate(c, key), PA_ERR_UNAVAILABLE);
    printf("SRV then mDNS: %s\n", pa_error(c));
    assert_non_null(strstr(pa_error(c), "_activation._tcp.example.invalid"));
    assert_non_null(strstr(pa_error(c), "; mDNS: the Avahi daemon is not running"));
    pa_client_free(c);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(txt_version_and_orders),
        cmocka_unit_test(txt_refused),
        cmocka_unit_test(orders_and_preference),
        cmocka_unit_test(endpoints_dial_the_address_and_check_the_host),
        cmocka_unit_test(no_daemon),
        cmocka_unit_test(no_daemon_is_unavailable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
