/* test_order_chain.c -- licenses of on-premises servers: accepted only
 * through vendor key -> order -> delegated key -> license, with the order
 * kept in the stored license file and checked again on every load. Each way
 * the chain can break is refused with a message saying which link failed:
 * an order signed by an unknown key or altered, an order signature without
 * its tag, a license signed by another key than the one the order delegates
 * (a rogue server), a license naming another order or revision, or
 * stepping outside the order's product, edition, groups, features or dates.
 * License files written before orders existed still load. Orders and
 * licenses are made here with test keys; no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "activate.h"
#include "client_testutil.h"
#include "fixture.h"
#include "state.h"
#include "tagged_signature.h"

typedef struct env {
    char dir[256];       /* everything lives here */
    char root[300];      /* this machine's facts */
    char state[300];     /* its state directory */
    char incoming[320];  /* a license file to install */
    EVP_PKEY *vendor;    /* the vendor's license key */
    EVP_PKEY *order_key; /* the vendor's order key */
    EVP_PKEY *server;    /* the on-premises server's key, which the order delegates */
    char *bundle;        /* both vendor public keys: what the client trusts */
    pa_client *c;
    tu_chain chain; /* the chain the current test signs */
} env;

static pa_client *client_for(env *e) {
    pa_options o;
    pa_options_init(&o);
    o.state_dir = e->state;
    o.facts_root = e->root;
    o.public_key_pem = e->bundle;
    o.vendor_salt = "test-salt";
    char err[256];
    pa_client *c = pa_client_new(&o, err, sizeof err);
    if (!c) fprintf(stderr, "pa_client_new: %s\n", err);
    return c;
}

static int setup(void **state) {
    env *e = calloc(1, sizeof *e);
    if (fixture_tmpdir(e->dir, sizeof e->dir, "order-chain") != 0) return -1;
    snprintf(e->root, sizeof e->root, "%s/machine", e->dir);
    snprintf(e->state, sizeof e->state, "%s/state", e->dir);
    snprintf(e->incoming, sizeof e->incoming, "%s/incoming.lic", e->dir);
    tu_fake_machine(e->root, "4c4c4544-0035-4a10-8051-b3c04f4a4e32", "CN1234", NULL, NULL);
    char *license_pub, *order_pub, *server_pub;
    e->vendor = tu_vendor_key(&license_pub);
    e->order_key = tu_vendor_key(&order_pub);
    e->server = tu_vendor_key(&server_pub);
    free(server_pub); /* the installer never holds the server's key */
    size_t n = strlen(license_pub) + strlen(order_pub) + 1;
    e->bundle = malloc(n);
    snprintf(e->bundle, n, "%s%s", license_pub, order_pub);
    free(license_pub);
    free(order_pub);
    e->c = client_for(e);
    *state = e;
    return e->c ? 0 : -1;
}

static int teardown(void **state) {
    env *e = *state;
    pa_client_free(e->c);
    EVP_PKEY_free(e->vendor);
    EVP_PKEY_free(e->order_key);
    EVP_PKEY_free(e->server);
    free(e->bundle);
    fixture_rmtree(e->dir);
    free(e);
    return 0;
}

/* Each test starts from a fresh state directory and a good chain. */
static int fresh(void **state) {
    env *e = *state;
    fixture_rmtree(e->state);
    tu_chain_init(&e->chain, e->order_key, e->server, pa_machine_id(e->c));
    return 0;
}

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static char *read_text(const char *path) {
    char *text, err[256];
    size_t len;
    assert_int_equal(state_read_file(path, &text, &len, err, sizeof err), 0);
    return text;
}

static void write_license(const char *path, const signed_license *s) {
    char *text = license_file_format(s);
    assert_non_null(text);
    write_file(path, text);
    free(text);
}

/* Signs the env's chain, lets `mutate` (may be NULL) change the signed
 * result, and installs it. */
static pa_err install_chain(env *e, void (*mutate)(env *, signed_license *)) {
    signed_license s;
    tu_chain_sign(&e->chain, &s);
    if (mutate) mutate(e, &s);
    write_license(e->incoming, &s);
    signed_license_clear(&s);
    return pa_install(e->c, e->incoming);
}

/* Refused at install with `why` in the message, and nothing stored. */
static void refused(env *e, void (*mutate)(env *, signed_license *), const char *why) {
    pa_err got = install_chain(e, mutate);
    if (got != PA_ERR_BAD_LICENSE || !strstr(pa_error(e->c), why))
        fail_msg("want %s with \"%s\"; got %s: %s", pa_err_name(PA_ERR_BAD_LICENSE), why, pa_err_name(got),
                 pa_error(e->c));
    fprintf(stderr, "refused: %s\n", pa_error(e->c));
    assert_false(pa_is_licensed(e->c));
    assert_int_equal(pa_status(e->c), PA_ERR_NOT_ACTIVATED);
}

static void stored_path(env *e, char *buf, size_t n) { snprintf(buf, n, "%s/license", e->state); }

/* ---- the good chain ------------------------------------------------------ */

static void good_chain_is_accepted_and_stored_with_its_order(void **state) {
    env *e = *state;
    assert_int_equal(install_chain(e, NULL), PA_OK);
    assert_string_equal(pa_channel(e->c), "volume");
    assert_string_equal(pa_order_serial(e->c), "12345678");
    assert_int_equal(pa_order_revision(e->c), 1);
    assert_string_equal(pa_seat_mode(e->c), "concurrent");
    assert_int_equal(pa_volume_count(e->c), 17);
    assert_int_equal(pa_volume_threshold(e->c), 5);
    assert_int_equal(pa_volume_seats(e->c), 500);
    assert_int_equal(pa_volume_seats_used(e->c), 17);
    char path[400];
    stored_path(e, path, sizeof path);
    char *text = read_text(path);
    assert_non_null(strstr(text, "\norder: "));
    assert_non_null(strstr(text, "\norder_signature: "));
    assert_non_null(strstr(text, "\norder_key_id: "));
    free(text);
    /* Another process loads and verifies the whole chain again. */
    pa_client *other = client_for(e);
    assert_non_null(other);
    assert_int_equal(pa_status(other), PA_OK);
    assert_string_equal(pa_order_serial(other), "12345678");
    assert_int_equal(pa_volume_count(other), 17);
    assert_int_equal(pa_volume_seats(other), 500);
    pa_client_free(other);
}

/* The machine digest operators name the machine by: SHA-256(machine id), 16 bytes, hex. */
static void machine_digest_is_the_first_half_of_sha256_of_the_id(void **state) {
    env *e = *state;
    uint8_t d[32];
    EVP_Digest(pa_machine_id(e->c), 32, d, NULL, EVP_sha256(), NULL);
    char hex[33];
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    assert_string_equal(pa_machine_digest(e->c), hex);
}

/* A vendor-hosted volume license is signed by the vendor's key: no order needed. */
static void vendor_signed_volume_license_needs_no_order(void **state) {
    env *e = *state;
    e->chain.signer = e->vendor;
    signed_license s;
    tu_chain_sign(&e->chain, &s);
    free(s.order);
    s.order = NULL;
    s.order_len = 0;
    write_license(e->incoming, &s);
    signed_license_clear(&s);
    assert_int_equal(pa_install(e->c, e->incoming), PA_OK);
    assert_string_equal(pa_order_serial(e->c), "12345678");
}

/* ---- the order link ------------------------------------------------------ */

static void order_signed_by_unknown_key_is_refused(void **state) {
    env *e = *state;
    char *pub;
    EVP_PKEY *other = tu_vendor_key(&pub);
    free(pub);
    e->chain.order_key = other;
    refused(e, NULL, "the order is not signed by the vendor (it names key");
    EVP_PKEY_free(other);
}

/* Another key's signature under the vendor's order key id. */
static void claim_vendor_order_key(env *e, signed_license *s) {
    assert_int_equal(signing_key_id(e->order_key, s->order_key_id), 0);
}

static void order_signed_by_another_key_under_the_vendors_id_is_refused(void **state) {
    env *e = *state;
    char *pub;
    EVP_PKEY *other = tu_vendor_key(&pub);
    free(pub);
    e->chain.order_key = other;
    refused(e, claim_vendor_order_key, "the order is not signed by the vendor (its signature does not verify");
    EVP_PKEY_free(other);
}

static void flip_order_byte(env *e, signed_license *s) { s->order[s->order_len / 2] ^= 0x01; }
static void tampered_order_is_refused(void **state) {
    refused(*state, flip_order_byte, "the order is not signed by the vendor");
}

/* The vendor key's plain signature over the order bytes (as it signs a
 * license) is not an order signature: the tag is part of the message. */
static void untagged(env *e, signed_license *s) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t n = sizeof s->order_signature;
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, e->order_key), 1);
    assert_int_equal(EVP_DigestSign(ctx, s->order_signature, &n, s->order, s->order_len), 1);
    EVP_MD_CTX_free(ctx);
}
static void order_signature_without_its_tag_is_refused(void **state) {
    refused(*state, untagged, "the order is not signed by the vendor");
}

static void order_that_delegates_no_key_is_refused(void **state) {
    env *e = *state;
    e->chain.delegated = NULL; /* delegated_key stays empty: a vendor-hosted order */
    refused(e, NULL, "the license is not signed by the order's delegated server key (order 12345678 delegates none)");
}

/* ---- the license link: the rogue server ---------------------------------- */

/* A server with a key of its own serves a genuine order that delegates
 * another server's key. */
static void license_signed_by_another_key_than_the_delegated_is_refused(void **state) {
    env *e = *state;
    char *pub;
    EVP_PKEY *rogue = tu_vendor_key(&pub);
    free(pub);
    e->chain.signer = rogue;
    refused(e, NULL, "the license is not signed by the order's delegated server key (signed by key");
    EVP_PKEY_free(rogue);
}

/* ...and claiming the delegated key's id does not help it. */
static void claim_delegated_key(env *e, signed_license *s) {
    assert_int_equal(signing_key_id(e->server, s->key_id), 0);
}
static void rogue_license_under_the_delegated_id_is_refused(void **state) {
    env *e = *state;
    char *pub;
    EVP_PKEY *rogue = tu_vendor_key(&pub);
    free(pub);
    e->chain.signer = rogue;
    refused(e, claim_delegated_key, "the license is not signed by the order's delegated server key (its signature");
    EVP_PKEY_free(rogue);
}

static void flip_license_byte(env *e, signed_license *s) { s->license[s->license_len / 2] ^= 0x01; }
static void altered_license_is_refused(void **state) {
    refused(*state, flip_license_byte, "the license is not signed by the order's delegated server key");
}

/* ---- the license keeps within the order ---------------------------------- */

static void serial_or_revision_mismatch_is_refused(void **state) {
    env *e = *state;
    e->chain.license.order_serial = "87654321";
    refused(e, NULL, "the license names order \"87654321\" revision 1, but came with order \"12345678\" revision 1");
    fresh(state);
    e->chain.license.order_revision = 2;
    refused(e, NULL, "the license names order \"12345678\" revision 2, but came with order \"12345678\" revision 1");
    fresh(state);
    e->chain.order.revision = 3; /* the server serves a newer order than it signed for */
    refused(e, NULL, "revision 1, but came with order \"12345678\" revision 3");
}

static void product_edition_group_features_and_channel_are_the_orders(void **state) {
    env *e = *state;
    e->chain.license.product = "Demo Studio";
    refused(e, NULL,
            "the license is for \"Demo Studio\" edition \"Professional\", but order 12345678 is for \"Demo "
            "Office\" edition \"Professional\"");
    fresh(state);
    e->chain.license.edition = "Enterprise";
    refused(e, NULL, "edition \"Enterprise\", but order 12345678");
    fresh(state);
    e->chain.license.key_group = 8;
    e->chain.license.license_id = "000000080000000b0123456789abcdef";
    refused(e, NULL, "the license's key group 8 is not one of order 12345678's groups");
    fresh(state);
    char *more[] = {"editor", "admin"};
    e->chain.license.features = more;
    refused(e, NULL, "the license grants feature \"admin\", which order 12345678 does not");
    fresh(state);
    e->chain.license.channel = ACTIVATION__V1__CHANNEL__CHANNEL_RETAIL;
    refused(e, NULL, "not of the volume channel");
}

static void license_outside_the_orders_dates_is_refused(void **state) {
    env *e = *state;
    Volume__V1__Order *o = &e->chain.order;
    Activation__V1__License *l = &e->chain.license;
    l->issued_at = o->valid_from - 1;
    refused(e, NULL, "outside order 12345678's validity");
    fresh(state);
    o->valid_until = l->issued_at - 1; /* the order had ended when the server signed */
    l->expires_at = 0;
    refused(e, NULL, "the license was issued at");
    fresh(state);
    l->expires_at = o->valid_until + 1;
    refused(e, NULL, "after order 12345678 ends");
    fresh(state);
    l->expires_at = 0;
    refused(e, NULL, "the license never expires, but order 12345678 ends");
}

/* continue-counted orders keep activating after their end date. */
static void continue_counted_order_licenses_after_its_end(void **state) {
    env *e = *state;
    Volume__V1__Order *o = &e->chain.order;
    o->mode = VOLUME__V1__SEAT_MODE__SEAT_MODE_UNLIMITED;
    o->seats = 0;
    o->after_end = VOLUME__V1__AFTER_END__AFTER_END_CONTINUE_COUNTED;
    o->valid_until = e->chain.license.issued_at - 86400;
    e->chain.license.seat_mode = "unlimited";
    assert_int_equal(install_chain(e, NULL), PA_OK);
    /* Not before its start, though. */
    fresh(state);
    e->chain.order.after_end = VOLUME__V1__AFTER_END__AFTER_END_CONTINUE_COUNTED;
    e->chain.order.valid_from = e->chain.license.issued_at + 1;
    refused(e, NULL, "outside order 12345678's validity");
}

/* ---- the stored file --------------------------------------------------------- */

/* Rewrites the stored license after `edit` changed its text; returns pa_status. */
static pa_err status_after_edit(env *e, void (*edit)(char *text, char *out, size_t n)) {
    char path[400], out[65536];
    stored_path(e, path, sizeof path);
    char *text = read_text(path);
    edit(text, out, sizeof out);
    free(text);
    write_file(path, out);
    return pa_status(e->c);
}

/* Drops the line starting with `name: ` from text. */
static void drop_line(const char *text, const char *name, char *out, size_t n) {
    char needle[64];
    snprintf(needle, sizeof needle, "\n%s: ", name);
    const char *at = strstr(text, needle);
    assert_non_null(at);
    const char *end = strchr(at + 1, '\n');
    snprintf(out, n, "%.*s%s", (int)(at - text), text, end ? end : "");
}

static void without_order_lines(char *text, char *out, size_t n) {
    char a[65536], b[65536];
    drop_line(text, "order", a, sizeof a);
    drop_line(a, "order_signature", b, sizeof b);
    drop_line(b, "order_key_id", out, n);
}
static void without_order_signature(char *text, char *out, size_t n) { drop_line(text, "order_signature", out, n); }

/* One base64 character of the stored order changed. */
static void edited_order(char *text, char *out, size_t n) {
    snprintf(out, n, "%s", text);
    char *v = strstr(out, "\norder: ") + 12;
    *v = *v == 'A' ? 'B' : 'A';
}

static void stored_order_is_verified_on_every_load(void **state) {
    env *e = *state;
    assert_int_equal(install_chain(e, NULL), PA_OK);
    assert_int_equal(status_after_edit(e, edited_order), PA_ERR_STATE);
    assert_non_null(strstr(pa_error(e->c), "not trusted"));
    assert_false(pa_is_licensed(e->c));
    /* Without its order, the server's license is signed by a key nobody trusts. */
    assert_int_equal(install_chain(e, NULL), PA_OK);
    assert_int_equal(status_after_edit(e, without_order_lines), PA_ERR_STATE);
    assert_non_null(strstr(pa_error(e->c), "which this client does not hold"));
    /* Half an order is a damaged file. */
    assert_int_equal(install_chain(e, NULL), PA_OK);
    assert_int_equal(status_after_edit(e, without_order_signature), PA_ERR_STATE);
    assert_non_null(strstr(pa_error(e->c), "go together"));
}

static void license_file_round_trips_the_order(void **state) {
    env *e = *state;
    signed_license s, t;
    tu_chain_sign(&e->chain, &s);
    char *text = license_file_format(&s), err[256];
    assert_non_null(text);
    assert_int_equal(license_file_parse(text, &t, err, sizeof err), 0);
    free(text);
    assert_int_equal(t.order_len, s.order_len);
    assert_memory_equal(t.order, s.order, s.order_len);
    assert_int_equal(t.order_signature_len, TAGGED_SIG_LEN);
    assert_memory_equal(t.order_signature, s.order_signature, TAGGED_SIG_LEN);
    assert_string_equal(t.order_key_id, s.order_key_id);
    assert_int_equal(t.license_len, s.license_len);
    assert_memory_equal(t.license, s.license, s.license_len);
    assert_string_equal(t.key_id, s.key_id);
    assert_memory_equal(&t.volume, &s.volume, sizeof s.volume);
    signed_license_clear(&s);
    signed_license_clear(&t);
}

/* A file without the optional lines (orders, volume counters): the
 * required ones only. (Files older than batch signatures are refused:
 * client.license_tree.) */
static void old_license_files_still_load(void **state) {
    env *e = *state;
    signed_license s;
    tu_sign_license(e->vendor, pa_machine_id(e->c), 0, 0, &s);
    char *sig = b64_encode(s.signature, s.signature_len), *lic = b64_encode(s.license, s.license_len);
    char *path_b64 = b64_encode(s.tree_path[0], s.tree_path_len * MERKLE_HASH_LEN);
    char text[8192], path[400];
    snprintf(text, sizeof text,
             "# activate license v2 -- signed by the vendor; any edit makes it invalid\n"
             "key_id: %s\nactivation_count: 3\nsignature: %s\ntree_index: %u\ntree_size: %u\ntree_path: %s\n"
             "license: %s\n",
             s.key_id, sig, (unsigned)s.tree_index, (unsigned)s.tree_size, path_b64, lic);
    free(sig);
    free(lic);
    free(path_b64);
    signed_license_clear(&s);
    char err[256];
    assert_int_equal(state_dir_ensure(e->state, err, sizeof err), 0);
    stored_path(e, path, sizeof path);
    write_file(path, text);
    assert_int_equal(pa_status(e->c), PA_OK);
    assert_int_equal(pa_activation_count(e->c), 3);
    assert_string_equal(pa_order_serial(e->c), "");
    assert_string_equal(pa_seat_mode(e->c), "");
    assert_int_equal(pa_volume_count(e->c), 0);
    /* The same text through install (the offline file of an older fulfil). */
    write_file(e->incoming, text);
    assert_int_equal(pa_install(e->c, e->incoming), PA_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(good_chain_is_accepted_and_stored_with_its_order, fresh),
        cmocka_unit_test_setup(machine_digest_is_the_first_half_of_sha256_of_the_id, fresh),
        cmocka_unit_test_setup(vendor_signed_volume_license_needs_no_order, fresh),
        cmocka_unit_test_setup(order_signed_by_unknown_key_is_refused, fresh),
        cmocka_unit_test_setup(order_signed_by_another_key_under_the_vendors_id_is_refused, fresh),
        cmocka_unit_test_setup(tampered_order_is_refused, fresh),
        cmocka_unit_test_setup(order_signature_without_its_tag_is_refused, fresh),
        cmocka_unit_test_setup(order_that_delegates_no_key_is_refused, fresh),
        cmocka_unit_test_setup(license_signed_by_another_key_than_the_delegated_is_refused, fresh),
        cmocka_unit_test_setup(rogue_license_under_the_delegated_id_is_refused, fresh),
        cmocka_unit_test_setup(altered_license_is_refused, fresh),
        cmocka_unit_test_setup(serial_or_revision_mismatch_is_refused, fresh),
        cmocka_unit_test_setup(product_edition_group_features_and_channel_are_the_orders, fresh),
        cmocka_unit_test_setup(license_outside_the_orders_dates_is_refused, fresh),
        cmocka_unit_test_setup(continue_counted_order_licenses_after_its_end, fresh),
        cmocka_unit_test_setup(stored_order_is_verified_on_every_load, fresh),
        cmocka_unit_test_setup(license_file_round_trips_the_order, fresh),
        cmocka_unit_test_setup(old_license_files_still_load, fresh),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
