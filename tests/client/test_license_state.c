/* test_license_state.c -- the stored license: written atomically, verified
 * on every load, refused when altered, damaged, signed by someone else or
 * made for another machine or product; state files private to their owner.
 * Also the offline request's own signature and strictness (nothing after
 * the signature, no NUL, a place key). Everything through the public API
 * with fake machines; no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "activate.h"
#include "client_testutil.h"
#include "fixture.h"
#include "state.h"

typedef struct env {
    char dir[256];          /* everything lives here */
    char root[300];         /* this machine's facts */
    char state[300];        /* its state directory */
    EVP_PKEY *vendor;       /* signs licenses */
    char *vendor_pub;       /* PEM the client trusts */
    pa_client *c;
} env;

static pa_client *client_of(env *e, const char *pub, const char *product, const char *edition) {
    pa_options o;
    pa_options_init(&o);
    o.state_dir = e->state;
    o.facts_root = e->root;
    o.public_key_pem = pub;
    o.vendor_salt = "test-salt";
    o.product = product;
    o.edition = edition;
    char err[256];
    pa_client *c = pa_client_new(&o, err, sizeof err);
    if (!c) fprintf(stderr, "pa_client_new: %s\n", err);
    return c;
}

static pa_client *client_for(env *e, const char *pub) { return client_of(e, pub, NULL, NULL); }

static int setup(void **state) {
    env *e = calloc(1, sizeof *e);
    if (fixture_tmpdir(e->dir, sizeof e->dir, "client-state") != 0) return -1;
    snprintf(e->root, sizeof e->root, "%s/machine", e->dir);
    snprintf(e->state, sizeof e->state, "%s/state", e->dir);
    tu_fake_machine(e->root, "4c4c4544-0035-4a10-8051-b3c04f4a4e32", "CN1234", NULL, NULL);
    e->vendor = tu_vendor_key(&e->vendor_pub);
    e->c = client_for(e, e->vendor_pub);
    *state = e;
    return e->c ? 0 : -1;
}

static int teardown(void **state) {
    env *e = *state;
    pa_client_free(e->c);
    EVP_PKEY_free(e->vendor);
    free(e->vendor_pub);
    fixture_rmtree(e->dir);
    free(e);
    return 0;
}

/* Writes a license file (format of the state dir) to `path`. */
static void write_license(const char *path, const signed_license *s) {
    char dir[400], err[256];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    assert_int_equal(state_dir_ensure(dir, err, sizeof err), 0);
    char *text = license_file_format(s);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    free(text);
}

static void stored_path(env *e, char *buf, size_t n) { snprintf(buf, n, "%s/license", e->state); }

/* A license for this machine, installed through the public API. */
static void install_good(env *e, int64_t renew_after, int64_t expires_at) {
    signed_license s;
    tu_sign_license(e->vendor, pa_machine_id(e->c), renew_after, expires_at, &s);
    char path[400];
    snprintf(path, sizeof path, "%s/incoming.lic", e->dir);
    write_license(path, &s);
    signed_license_clear(&s);
    assert_int_equal(pa_install(e->c, path), PA_OK);
}

static int count_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) n += strstr(de->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

static void not_activated_at_first(void **state) {
    env *e = *state;
    assert_int_equal(pa_status(e->c), PA_ERR_NOT_ACTIVATED);
    assert_false(pa_is_licensed(e->c));
    assert_non_null(strstr(pa_error(e->c), "not activated"));
}

static void installed_license_verifies_and_reads(void **state) {
    env *e = *state;
    int64_t renew = time(NULL) + 7 * 86400, exp = time(NULL) + 180 * 86400;
    install_good(e, renew, exp);
    assert_int_equal(pa_status(e->c), PA_OK);
    assert_string_equal(pa_product(e->c), "Demo Office");
    assert_string_equal(pa_edition(e->c), "Professional");
    assert_string_equal(pa_channel(e->c), "retail");
    assert_true(pa_has_feature(e->c, "spreadsheet"));
    assert_false(pa_has_feature(e->c, "admin"));
    assert_int_equal(pa_feature_count(e->c), 2);
    assert_int_equal(pa_key_group(e->c), 4365);
    assert_int_equal(pa_key_serial(e->c), 11);
    assert_true(pa_renew_after(e->c) == renew);
    assert_true(pa_expires_at(e->c) == exp);
    char path[400];
    stored_path(e, path, sizeof path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(count_temp_files(e->state), 0);
    /* A second handle (another process) trusts the same file. */
    pa_client *other = client_for(e, e->vendor_pub);
    assert_int_equal(pa_status(other), PA_OK);
    pa_client_free(other);
}

/* Rewrites the stored file after `mutate` changed the decoded license. */
static pa_err status_after(env *e, void (*mutate)(signed_license *)) {
    char path[400], *text, err[256];
    size_t len;
    stored_path(e, path, sizeof path);
    assert_int_equal(state_read_file(path, &text, &len, err, sizeof err), 0);
    signed_license s;
    assert_int_equal(license_file_parse(text, &s, err, sizeof err), 0);
    free(text);
    mutate(&s);
    write_license(path, &s);
    signed_license_clear(&s);
    return pa_status(e->c);
}

static void flip_license_byte(signed_license *s) { s->license[s->license_len / 2] ^= 0x01; }
static void flip_signature_byte(signed_license *s) { s->signature[10] ^= 0x80; }
static void other_key_id(signed_license *s) { memcpy(s->key_id, "0123456789abcdef", 16); }

static void flipped_bytes_are_refused(void **state) {
    env *e = *state;
    install_good(e, 0, 0);
    assert_int_equal(status_after(e, flip_license_byte), PA_ERR_STATE);
    assert_non_null(strstr(pa_error(e->c), "altered"));
    assert_false(pa_is_licensed(e->c));
    install_good(e, 0, 0);
    assert_int_equal(status_after(e, flip_signature_byte), PA_ERR_STATE);
    install_good(e, 0, 0);
    assert_int_equal(status_after(e, other_key_id), PA_ERR_STATE);
    assert_non_null(strstr(pa_error(e->c), "does not hold"));
}

static void damaged_files_are_refused(void **state) {
    env *e = *state;
    const char *bad[] = {"", "hello\n", "# activate license v2\nkey_id: x\n",
                         "# activate license v2\nkey_id: 0123456789abcdef\nsignature: !!!!\nlicense: AAAA\n"};
    char path[400];
    stored_path(e, path, sizeof path);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        install_good(e, 0, 0);
        FILE *fp = fopen(path, "w");
        fputs(bad[i], fp);
        fclose(fp);
        assert_int_equal(pa_status(e->c), PA_ERR_STATE);
        assert_non_null(strstr(pa_error(e->c), "damaged"));
    }
    /* A text edit of one base64 character. */
    install_good(e, 0, 0);
    char *text, err[256];
    size_t len;
    assert_int_equal(state_read_file(path, &text, &len, err, sizeof err), 0);
    char *lic = strstr(text, "license: ") + 20;
    *lic = *lic == 'A' ? 'B' : 'A';
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    free(text);
    assert_int_equal(pa_status(e->c), PA_ERR_STATE);
}

static void license_for_another_machine_is_refused(void **state) {
    env *e = *state;
    uint8_t other[32];
    memset(other, 0x5a, sizeof other);
    signed_license s;
    tu_sign_license(e->vendor, other, 0, 0, &s);
    char path[400], incoming[400];
    snprintf(incoming, sizeof incoming, "%s/other.lic", e->dir);
    write_license(incoming, &s);
    assert_int_equal(pa_install(e->c, incoming), PA_ERR_BAD_LICENSE);
    assert_non_null(strstr(pa_error(e->c), "another machine"));
    assert_int_equal(pa_status(e->c), PA_ERR_NOT_ACTIVATED);  /* nothing was stored */
    /* Copied straight into the state directory: refused on load. */
    stored_path(e, path, sizeof path);
    write_license(path, &s);
    signed_license_clear(&s);
    assert_int_equal(pa_status(e->c), PA_ERR_STATE);
    assert_non_null(strstr(pa_error(e->c), "another machine"));
}

static void license_from_another_vendor_is_refused(void **state) {
    env *e = *state;
    char *pub;
    EVP_PKEY *mallory = tu_vendor_key(&pub);
    signed_license s;
    tu_sign_license(mallory, pa_machine_id(e->c), 0, 0, &s);
    char incoming[400];
    snprintf(incoming, sizeof incoming, "%s/mallory.lic", e->dir);
    write_license(incoming, &s);
    assert_int_equal(pa_install(e->c, incoming), PA_ERR_BAD_LICENSE);
    /* ...and with our key id pasted in, the signature fails. */
    install_good(e, 0, 0);
    assert_int_equal(pa_status(e->c), PA_OK);
    char our_id[KEY_ID_LEN + 1];
    assert_int_equal(signing_key_id(e->vendor, our_id), 0);
    memcpy(s.key_id, our_id, sizeof our_id);
    write_license(incoming, &s);
    assert_int_equal(pa_install(e->c, incoming), PA_ERR_BAD_LICENSE);
    assert_non_null(strstr(pa_error(e->c), "altered"));
    assert_int_equal(pa_status(e->c), PA_OK);  /* the good license stayed */
    signed_license_clear(&s);
    EVP_PKEY_free(mallory);
    free(pub);
}

static void expired_license(void **state) {
    env *e = *state;
    signed_license s;
    tu_sign_license(e->vendor, pa_machine_id(e->c), 0, time(NULL) - 60, &s);
    char path[400];
    snprintf(path, sizeof path, "%s/expired.lic", e->dir);
    write_license(path, &s);
    assert_int_equal(pa_install(e->c, path), PA_ERR_EXPIRED);
    stored_path(e, path, sizeof path);
    write_license(path, &s);
    signed_license_clear(&s);
    assert_int_equal(pa_status(e->c), PA_ERR_EXPIRED);
    assert_true(pa_is_licensed(e->c));  /* still readable, e.g. to renew it */
}

static void atomic_writes_leave_no_debris(void **state) {
    env *e = *state;
    char path[400], err[256], *text;
    size_t len;
    assert_int_equal(state_dir_ensure(e->state, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/file", e->state);
    assert_int_equal(state_write_atomic(path, "old", 3, 0600, err, sizeof err), 0);
    assert_int_equal(state_write_atomic(path, "new!", 4, 0600, err, sizeof err), 0);
    assert_int_equal(state_read_file(path, &text, &len, err, sizeof err), 0);
    assert_string_equal(text, "new!");
    free(text);
    /* The target is a directory: rename fails, the old state and no temp file remain. */
    char dir_target[400];
    snprintf(dir_target, sizeof dir_target, "%s/adir", e->state);
    mkdir(dir_target, 0700);
    char sub[450];
    snprintf(sub, sizeof sub, "%s/x", dir_target);
    FILE *fp = fopen(sub, "w");
    fclose(fp);
    assert_int_equal(state_write_atomic(dir_target, "x", 1, 0600, err, sizeof err), -1);
    assert_non_null(strstr(err, "rename"));
    assert_int_equal(count_temp_files(e->state), 0);
    /* No such directory: a clear error. */
    snprintf(path, sizeof path, "%s/missing/file", e->dir);
    assert_int_equal(state_write_atomic(path, "x", 1, 0600, err, sizeof err), -1);
    assert_non_null(strstr(err, "missing"));
}

static void license_content_checks(void **state) {
    env *e = *state;
    vendor_keys k = {0};
    char err[256];
    assert_int_equal(vendor_keys_load(&k, e->vendor_pub, err, sizeof err), 0);
    assert_int_equal(vendor_keys_load(&(vendor_keys){0}, "not pem", err, sizeof err), -1);
    signed_license s;
    tu_sign_license(e->vendor, pa_machine_id(e->c), 0, 0, &s);
    Activation__V1__License *l;
    assert_int_equal(license_verify(&k, &s, pa_machine_id(e->c), &l, err, sizeof err), VERIFY_OK);
    activation__v1__license__free_unpacked(l, NULL);
    s.signature_len = 63;
    assert_int_equal(license_verify(&k, &s, pa_machine_id(e->c), &l, err, sizeof err), VERIFY_BAD_SIGNATURE);
    signed_license_clear(&s);
    vendor_keys_clear(&k);
}

/* activation_count is optional, but when present it is a whole 32-bit number. */
static void activation_count_must_be_a_number(void **state) {
    env *e = *state;
    install_good(e, 0, 0);
    char path[400], *text, err[256];
    size_t len;
    stored_path(e, path, sizeof path);
    assert_int_equal(state_read_file(path, &text, &len, err, sizeof err), 0);
    char *line = strstr(text, "activation_count: ");
    assert_non_null(line);
    char *rest = strchr(line, '\n');
    assert_non_null(rest);
    const char *values[] = {
        "7", "4294967295", "", "7x", "-1", "+7", "4294967296", "99999999999999", "7\nactivation_count: 8"};
    const int ok[] = {1, 1, 0, 0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char edited[8192];
        snprintf(edited, sizeof edited, "%.*sactivation_count: %s%s", (int)(line - text), text, values[i], rest);
        signed_license s;
        int rc = license_file_parse(edited, &s, err, sizeof err);
        if ((rc == 0) != ok[i]) fprintf(stderr, "activation_count '%s': rc %d (%s)\n", values[i], rc, err);
        assert_int_equal(rc == 0, ok[i]);
        if (rc == 0) {
            assert_int_equal(s.activation_count, strtoul(values[i], NULL, 10));
            signed_license_clear(&s);
        } else {
            assert_non_null(strstr(err, "activation_count"));
        }
    }
    /* Without the field it reads as 0. */
    char edited[8192];
    snprintf(edited, sizeof edited, "%.*s%s", (int)(line - text), text, rest + 1);
    signed_license s;
    assert_int_equal(license_file_parse(edited, &s, err, sizeof err), 0);
    assert_int_equal(s.activation_count, 0);
    signed_license_clear(&s);
    free(text);
}

static void offline_request_is_signed(void **state) {
    env *e = *state;
    char req[400], lic[400];
    snprintf(req, sizeof req, "%s/request.txt", e->dir);
    snprintf(lic, sizeof lic, "%s/license.txt", e->dir);
    assert_int_equal(pa_request_write(e->c, "qpm6n7j2wjp88hhp3yrhyy74h", req), PA_OK);
    char fp1[32];
    snprintf(fp1, sizeof fp1, "%s", pa_request_fingerprint(e->c));
    assert_int_equal(strlen(fp1), 19);
    struct stat st;
    char keyfile[400];
    snprintf(keyfile, sizeof keyfile, "%s/request-key.pem", e->state);
    assert_int_equal(stat(keyfile, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(req, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Intact: passes its checks and stops only for want of a server. */
    assert_int_equal(pa_fulfil(e->c, req, lic), PA_ERR_CONFIG);
    assert_string_equal(pa_request_fingerprint(e->c), fp1);
    /* The same machine key signs the next request. */
    assert_int_equal(pa_request_write(e->c, "QPM6N-7J2WJ-P88HH-P3YRH-YY74H", req), PA_OK);
    assert_string_equal(pa_request_fingerprint(e->c), fp1);
    /* One changed character in the machine id: refused before any network. */
    char *text, err[256];
    size_t len;
    assert_int_equal(state_read_file(req, &text, &len, err, sizeof err), 0);
    char *mid = strstr(text, "machine_id: ") + 12;
    *mid = *mid == '0' ? '1' : '0';
    FILE *f = fopen(req, "w");
    fputs(text, f);
    fclose(f);
    free(text);
    assert_int_equal(pa_fulfil(e->c, req, lic), PA_ERR_BAD_LICENSE);
    assert_non_null(strstr(pa_error(e->c), "altered"));
    assert_int_equal(stat(lic, &st), -1);
    /* A typo never makes a request. */
    assert_int_equal(pa_request_write(e->c, "QPM6N-7J2WJ-P88HH-P3YRH-YY74X", req), PA_ERR_KEY);
}

static mode_t mode_of(const char *dir, const char *name) {
    char path[600];
    struct stat st;
    snprintf(path, sizeof path, "%s%s%s", dir, name ? "/" : "", name ? name : "");
    if (stat(path, &st) != 0) fail_msg("%s: missing", path);
    return st.st_mode & 0777;
}

/* Nothing in the state directory is for other users: the license, the
 * request key and the place key are 0600, the directory 0700, whatever the
 * umask. */
static void state_files_are_private(void **state) {
    env *e = *state;
    mode_t old = umask(0);
    char req[400];
    snprintf(req, sizeof req, "%s/request.txt", e->dir);
    assert_int_equal(pa_request_write(e->c, "qpm6n7j2wjp88hhp3yrhyy74h", req), PA_OK);
    assert_int_equal(mode_of(e->state, NULL), 0700);
    assert_int_equal(mode_of(e->state, "request-key.pem"), 0600);
    assert_int_equal(mode_of(e->state, "place-key.pending.pem"), 0600); /* no confirmed key yet */
    assert_int_equal(mode_of(req, NULL), 0600);
    install_good(e, 0, 0); /* the license the request brought back: its key is confirmed */
    assert_int_equal(mode_of(e->state, "license"), 0600);
    assert_int_equal(mode_of(e->state, "place-key.pem"), 0600);
    char pending[400];
    snprintf(pending, sizeof pending, "%s/place-key.pending.pem", e->state);
    assert_int_equal(access(pending, F_OK), -1);
    umask(old);
}

/* An installer for one product refuses a license for another (or another
 * edition): at install (and activation, tests/client/test_client_e2e.c) and
 * when loading the stored license. */
static void license_for_another_product_is_refused(void **state) {
    env *e = *state;
    signed_license s;
    tu_sign_license(e->vendor, pa_machine_id(e->c), 0, 0, &s); /* "Demo Office", "Professional" */
    char path[400];
    snprintf(path, sizeof path, "%s/incoming.lic", e->dir);
    write_license(path, &s);
    signed_license_clear(&s);

    pa_client *other = client_of(e, e->vendor_pub, "Demo Studio", NULL);
    assert_non_null(other);
    assert_int_equal(pa_install(other, path), PA_ERR_PRODUCT);
    assert_non_null(strstr(pa_error(other), "is for \"Demo Office\" edition \"Professional\""));
    assert_non_null(strstr(pa_error(other), "this installer is for \"Demo Studio\""));
    assert_false(pa_is_licensed(other));
    assert_int_equal(pa_status(other), PA_ERR_NOT_ACTIVATED); /* nothing was stored */
    pa_client *home = client_of(e, e->vendor_pub, "Demo Office", "Home");
    assert_non_null(home);
    assert_int_equal(pa_install(home, path), PA_ERR_PRODUCT);
    assert_non_null(strstr(pa_error(home), "edition \"Home\""));

    pa_client *ours = client_of(e, e->vendor_pub, "Demo Office", "Professional");
    assert_non_null(ours);
    assert_int_equal(pa_install(ours, path), PA_OK);
    assert_int_equal(pa_status(ours), PA_OK);
    /* The stored license, loaded by an installer of another product. */
    assert_int_equal(pa_status(other), PA_ERR_STATE);
    assert_non_null(strstr(pa_error(other), "Demo Studio"));
    assert_false(pa_is_licensed(other));
    assert_int_equal(pa_status(home), PA_ERR_STATE);
    pa_client_free(other);
    pa_client_free(home);
    pa_client_free(ours);
}

static void write_bytes(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* What `fulfil` reads is exactly what was signed: a line after the
 * signature, a NUL byte anywhere, or a request without a place key (an
 * older client's) is refused with a message saying which. */
static void offline_request_is_strict(void **state) {
    env *e = *state;
    char req[400], lic[400], *text, err[256], edited[8192];
    size_t len;
    snprintf(req, sizeof req, "%s/request.txt", e->dir);
    snprintf(lic, sizeof lic, "%s/license.txt", e->dir);
    assert_int_equal(pa_request_write(e->c, "qpm6n7j2wjp88hhp3yrhyy74h", req), PA_OK);
    assert_int_equal(state_read_file(req, &text, &len, err, sizeof err), 0);
    assert_non_null(strstr(text, "\nplace_key: "));
    assert_int_equal(pa_fulfil(e->c, req, lic), PA_ERR_CONFIG); /* intact: only the server is missing */

    /* An unsigned line after the signature, even one the request lacks. */
    const char *tails[] = {"hostname: elsewhere\n", "\n", "comment: nothing\n"};
    for (size_t i = 0; i < sizeof tails / sizeof *tails; i++) {
        snprintf(edited, sizeof edited, "%s%s", text, tails[i]);
        write_bytes(req, edited, strlen(edited));
        assert_int_equal(pa_fulfil(e->c, req, lic), PA_ERR_BAD_LICENSE);
        assert_non_null(strstr(pa_error(e->c), "lines after its signature line"));
    }

    /* A NUL inside the product key would have cut it short. */
    memcpy(edited, text, len);
    char *key = strstr(edited, "product_key: ") + 13;
    key[5] = '\0';
    write_bytes(req, edited, len);
    assert_int_equal(pa_fulfil(e->c, req, lic), PA_ERR_BAD_LICENSE);
    assert_non_null(strstr(pa_error(e->c), "holds a NUL byte on line 3 (field \"product_key\")"));

    /* A request without place_key, signed as an older client signed it. */
    char *place = strstr(text, "place_key: "), *place_end = strchr(place, '\n') + 1;
    char *sig = strstr(text, "signature: ");
    snprintf(edited, sizeof edited, "%.*s%.*s", (int)(place - text), text, (int)(sig - place_end), place_end);
    tu_sign_request(e->state, edited, req);
    assert_int_equal(pa_fulfil(e->c, req, lic), PA_ERR_BAD_LICENSE);
    assert_non_null(strstr(pa_error(e->c), "no single place_key line"));
    free(text);

    /* A license file with a NUL is refused as well. */
    install_good(e, 0, 0);
    char stored[400];
    stored_path(e, stored, sizeof stored);
    assert_int_equal(state_read_file(stored, &text, &len, err, sizeof err), 0);
    strstr(text, "key_id: ")[9] = '\0';
    write_bytes(lic, text, len);
    free(text);
    assert_int_equal(pa_install(e->c, lic), PA_ERR_BAD_LICENSE);
    assert_non_null(strstr(pa_error(e->c), "holds a NUL byte on line 2 (field \"key_id\")"));
}

static int fresh_state(void **state) {
    env *e = *state;
    fixture_rmtree(e->state);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(not_activated_at_first, fresh_state),
        cmocka_unit_test_setup(installed_license_verifies_and_reads, fresh_state),
        cmocka_unit_test_setup(flipped_bytes_are_refused, fresh_state),
        cmocka_unit_test_setup(damaged_files_are_refused, fresh_state),
        cmocka_unit_test_setup(license_for_another_machine_is_refused, fresh_state),
        cmocka_unit_test_setup(license_from_another_vendor_is_refused, fresh_state),
        cmocka_unit_test_setup(expired_license, fresh_state),
        cmocka_unit_test_setup(atomic_writes_leave_no_debris, fresh_state),
        cmocka_unit_test_setup(license_content_checks, fresh_state),
        cmocka_unit_test_setup(activation_count_must_be_a_number, fresh_state),
        cmocka_unit_test_setup(offline_request_is_signed, fresh_state),
        cmocka_unit_test_setup(state_files_are_private, fresh_state),
        cmocka_unit_test_setup(license_for_another_product_is_refused, fresh_state),
        cmocka_unit_test_setup(offline_request_is_strict, fresh_state),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
