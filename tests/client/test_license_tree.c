/* test_license_tree.c -- batch signatures on the client (docs/batching.md):
 * a license is a leaf of a signed Merkle tree, and the client hashes it up
 * the path it carries and checks the one signature over the root.
 *
 * The licenses here are leaf 2 of a five-leaf tree (tu_sign_tree), so the
 * path is real. Each tampering a file or an answer could carry -- another
 * index or size, a changed, missing or extra path hash, a changed
 * signature -- is refused as a bad license (PA_ERR_BAD_LICENSE) when
 * installed, and as untrusted state (PA_ERR_STATE) when found stored. A
 * license file of the format before batch signatures (v1: a signature over
 * the license alone) is refused with "older format: activate again". All
 * through the public API with a fake machine; no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activate.h"
#include "client_testutil.h"
#include "fixture.h"
#include "state.h"

typedef struct env {
    char dir[256];      /* everything lives here */
    char root[300];     /* this machine's facts */
    char state[300];    /* its state directory */
    char incoming[320]; /* a license file to install */
    EVP_PKEY *vendor;   /* signs licenses */
    char *vendor_pub;   /* PEM the client trusts */
    pa_client *c;
} env;

static int setup(void **state) {
    env *e = calloc(1, sizeof *e);
    if (!e || fixture_tmpdir(e->dir, sizeof e->dir, "client-tree") != 0) return -1;
    snprintf(e->root, sizeof e->root, "%s/machine", e->dir);
    snprintf(e->state, sizeof e->state, "%s/state", e->dir);
    snprintf(e->incoming, sizeof e->incoming, "%s/incoming.lic", e->dir);
    tu_fake_machine(e->root, "4c4c4544-0035-4a10-8051-b3c04f4a4e32", "CN1234", NULL, NULL);
    e->vendor = tu_vendor_key(&e->vendor_pub);
    pa_options o;
    pa_options_init(&o);
    o.state_dir = e->state;
    o.facts_root = e->root;
    o.public_key_pem = e->vendor_pub;
    o.vendor_salt = "test-salt";
    char err[256];
    e->c = pa_client_new(&o, err, sizeof err);
    if (!e->c) fprintf(stderr, "pa_client_new: %s\n", err);
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

static void write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void write_license(const char *path, const signed_license *s) {
    char *text = license_file_format(s);
    assert_non_null(text);
    write_text(path, text);
    free(text);
}

static void stored_path(env *e, char *buf, size_t n) { snprintf(buf, n, "%s/%s", e->state, STATE_LICENSE); }

/* A good license for this machine, `mutate`d, installed. */
static pa_err install_after(env *e, void (*mutate)(signed_license *)) {
    signed_license s;
    tu_sign_license(e->vendor, pa_machine_id(e->c), 0, 0, &s);
    if (mutate) mutate(&s);
    write_license(e->incoming, &s);
    signed_license_clear(&s);
    return pa_install(e->c, e->incoming);
}

/* A good license stored, then rewritten after `mutate`, then loaded. */
static pa_err status_after(env *e, void (*mutate)(signed_license *)) {
    assert_int_equal(install_after(e, NULL), PA_OK);
    char path[400];
    stored_path(e, path, sizeof path);
    signed_license s;
    tu_sign_license(e->vendor, pa_machine_id(e->c), 0, 0, &s);
    mutate(&s);
    write_license(path, &s);
    signed_license_clear(&s);
    return pa_status(e->c);
}

static void next_index(signed_license *s) { s->tree_index++; }
static void previous_index(signed_license *s) { s->tree_index--; }
static void larger_tree(signed_license *s) { s->tree_size++; }
static void smaller_tree(signed_license *s) { s->tree_size--; }
static void one_leaf_tree(signed_license *s) {
    s->tree_index = 0;
    s->tree_size = 1;
    s->tree_path_len = 0;
}
static void flip_path_hash(signed_license *s) { s->tree_path[1][7] ^= 0x04; }
static void extra_path_hash(signed_license *s) {
    memcpy(s->tree_path[s->tree_path_len], s->tree_path[0], MERKLE_HASH_LEN);
    s->tree_path_len++;
}
static void missing_path_hash(signed_license *s) { s->tree_path_len--; }
static void swapped_path_hashes(signed_license *s) {
    merkle_hash t;
    memcpy(t, s->tree_path[0], sizeof t);
    memcpy(s->tree_path[0], s->tree_path[1], sizeof t);
    memcpy(s->tree_path[1], t, sizeof t);
}
static void flip_signature(signed_license *s) { s->signature[40] ^= 0x01; }
static void flip_license(signed_license *s) { s->license[s->license_len - 3] ^= 0x20; }

typedef struct tampering {
    const char *name;
    void (*mutate)(signed_license *);
} tampering;

static const tampering TAMPERINGS[] = {
    {"next index", next_index},
    {"previous index", previous_index},
    {"larger tree", larger_tree},
    {"smaller tree", smaller_tree},
    {"one-leaf tree", one_leaf_tree},
    {"a path hash changed", flip_path_hash},
    {"an extra path hash", extra_path_hash},
    {"a path hash missing", missing_path_hash},
    {"path hashes swapped", swapped_path_hashes},
    {"signature changed", flip_signature},
    {"license changed", flip_license},
};

static void the_tree_license_is_accepted(void **state) {
    env *e = *state;
    assert_int_equal(install_after(e, NULL), PA_OK);
    assert_int_equal(pa_status(e->c), PA_OK);
    /* What is stored keeps its place in the tree and verifies again. */
    char path[400], *text, err[256];
    size_t len;
    stored_path(e, path, sizeof path);
    assert_int_equal(state_read_file(path, &text, &len, err, sizeof err), 0);
    assert_non_null(strstr(text, "# activate license v2"));
    assert_non_null(strstr(text, "\ntree_index: 2\n"));
    assert_non_null(strstr(text, "\ntree_size: 5\n"));
    signed_license s;
    assert_int_equal(license_file_parse(text, &s, err, sizeof err), 0);
    free(text);
    assert_int_equal(s.tree_index, TU_TREE_INDEX);
    assert_int_equal(s.tree_size, TU_TREE_SIZE);
    assert_int_equal(s.tree_path_len, 3); /* leaf 2 of 5: its pair, the pair beside, the fifth leaf */
    signed_license_clear(&s);
}

static void tampered_trees_are_refused_on_install(void **state) {
    env *e = *state;
    for (size_t i = 0; i < sizeof TAMPERINGS / sizeof TAMPERINGS[0]; i++) {
        pa_err got = install_after(e, TAMPERINGS[i].mutate);
        if (got != PA_ERR_BAD_LICENSE) fail_msg("%s: got %d (%s)", TAMPERINGS[i].name, got, pa_error(e->c));
        assert_non_null(strstr(pa_error(e->c), "does not verify"));
        assert_false(pa_is_licensed(e->c));
    }
}

static void tampered_trees_are_refused_when_stored(void **state) {
    env *e = *state;
    for (size_t i = 0; i < sizeof TAMPERINGS / sizeof TAMPERINGS[0]; i++) {
        pa_err got = status_after(e, TAMPERINGS[i].mutate);
        if (got != PA_ERR_STATE) fail_msg("%s: got %d (%s)", TAMPERINGS[i].name, got, pa_error(e->c));
        assert_non_null(strstr(pa_error(e->c), "not trusted"));
    }
}

/* A path hash of the wrong length or a path longer than any tree's is the
 * file's shape, refused before any verification. */
static void malformed_tree_lines_are_damage(void **state) {
    env *e = *state;
    signed_license s;
    tu_sign_license(e->vendor, pa_machine_id(e->c), 0, 0, &s);
    char *good = license_file_format(&s);
    signed_license_clear(&s);
    assert_non_null(good);
    const char *edits[][2] = {
        {"\ntree_size: 5\n", "\ntree_size: five\n"},
        {"\ntree_index: 2\n", "\n"},
        {"\ntree_path: ", "\ntree_path: AAAA"}, /* three more bytes: not whole hashes */
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char text[8192];
        const char *at = strstr(good, edits[i][0]);
        assert_non_null(at);
        snprintf(text, sizeof text, "%.*s%s%s", (int)(at - good), good, edits[i][1], at + strlen(edits[i][0]));
        write_text(e->incoming, text);
        assert_int_equal(pa_install(e->c, e->incoming), PA_ERR_BAD_LICENSE);
        assert_non_null(strstr(pa_error(e->c), "not a usable license file"));
    }
    free(good);
}

/* A v1 file: the format before batch signatures, signed over the license
 * bytes alone. */
static char *v1_text(env *e) {
    signed_license s;
    tu_sign_license(e->vendor, pa_machine_id(e->c), 0, 0, &s);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t n = sizeof s.signature;
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, e->vendor), 1);
    assert_int_equal(EVP_DigestSign(ctx, s.signature, &n, s.license, s.license_len), 1);
    EVP_MD_CTX_free(ctx);
    char *sig = b64_encode(s.signature, n), *lic = b64_encode(s.license, s.license_len);
    char *text = malloc(8192);
    assert_non_null(text);
    snprintf(text, 8192,
             "# activate license v1 -- signed by the vendor; any edit makes it invalid\n"
             "key_id: %s\nactivation_count: 3\nsignature: %s\nlicense: %s\n",
             s.key_id, sig, lic);
    free(sig);
    free(lic);
    signed_license_clear(&s);
    return text;
}

static void older_format_asks_to_activate_again(void **state) {
    env *e = *state;
    assert_int_equal(install_after(e, NULL), PA_OK);
    char path[400];
    stored_path(e, path, sizeof path);
    char *text = v1_text(e);
    write_text(path, text);
    assert_int_equal(pa_status(e->c), PA_ERR_STATE);
    assert_non_null(strstr(pa_error(e->c), "stored in an older format: activate again"));
    assert_false(pa_is_licensed(e->c));
    /* The same text as an offline license file. */
    write_text(e->incoming, text);
    assert_int_equal(pa_install(e->c, e->incoming), PA_ERR_BAD_LICENSE);
    assert_non_null(strstr(pa_error(e->c), "older version"));
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(the_tree_license_is_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(tampered_trees_are_refused_on_install, setup, teardown),
        cmocka_unit_test_setup_teardown(tampered_trees_are_refused_when_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_tree_lines_are_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(older_format_asks_to_activate_again, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
