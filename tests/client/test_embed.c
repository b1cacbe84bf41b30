/* test_embed.c -- an installer as a vendor writes it: it links only
 * libpa_activate.a (and the system libraries) and has functions of its own
 * named like the library's internals (log_info, config_load, pk_decode,
 * state_lock, ...). If the archive exported any of them the link would fail
 * with a duplicate definition; the calls below prove the public API works
 * from the archive alone and that the vendor's functions are the ones that run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "activate.h"

/* The vendor's own code, with names our internals use. */
int log_info(void);
int config_load(void);
int pk_decode(void);
int state_lock(void);
int transport_call(void);
int b64_encode(void);
int err_set(void);
int rpc_channel_new(void);

int log_info(void) { return 41; }
int config_load(void) { return 42; }
int pk_decode(void) { return 43; }
int state_lock(void) { return 44; }
int transport_call(void) { return 45; }
int b64_encode(void) { return 46; }
int err_set(void) { return 47; }
int rpc_channel_new(void) { return 48; }

static void test_vendor_names_are_the_vendors(void **state) {
    (void)state;
    assert_int_equal(log_info() + config_load() + pk_decode() + state_lock(), 41 + 42 + 43 + 44);
    assert_int_equal(transport_call() + b64_encode() + err_set() + rpc_channel_new(), 45 + 46 + 47 + 48);
}

static void test_key_check_from_the_archive(void **state) {
    (void)state;
    char key[PA_KEY_TEXT_LEN + 1];
    pa_key_problem p;
    assert_int_equal(pa_key_check(" w269nwfgwxyvc9b4j6c9t83gx ", key, &p), PA_OK);
    assert_string_equal(key, "W269N-WFGWX-YVC9B-4J6C9-T83GX");
    assert_int_equal(pa_key_check("W269N-WFGWX-YVC9B-4J6C9-T83GY", key, &p), PA_ERR_KEY);
    assert_string_equal(p.reason, "checksum");
    assert_string_equal(pa_err_name(PA_ERR_KEY), "key");
}

/* Any Ed25519 public key will do: nothing here gets as far as a signature. */
static const char VENDOR_KEY[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEARcaL2wSGzhzXeglwemrto+ocZTgIwZrYMm8todqMSks=\n"
    "-----END PUBLIC KEY-----\n";

static void test_client_from_the_archive(void **state) {
    (void)state;
    char dir[] = "/tmp/pa-embed-XXXXXX";
    assert_non_null(mkdtemp(dir));
    static const char *const servers[] = {"127.0.0.1:1"};
    pa_options o;
    pa_options_init(&o);
    o.state_dir = dir;
    o.servers = servers;
    o.n_servers = 1;
    o.public_key_pem = VENDOR_KEY;
    char err[256];
    pa_client *c = pa_client_new(&o, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(pa_status(c), PA_ERR_NOT_ACTIVATED);
    assert_false(pa_is_licensed(c));
    /* A mistyped key never leaves the machine. */
    assert_int_equal(pa_activate(c, "W269N-WFGWX-YVC9B-4J6C9-T83GY"), PA_ERR_KEY);
    pa_client_free(c);
    assert_int_equal(rmdir(dir), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vendor_names_are_the_vendors),
        cmocka_unit_test(test_key_check_from_the_archive),
        cmocka_unit_test(test_client_from_the_archive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
