/* offline.c -- activation for machines that never reach a server.
 *
 * Three steps, two machines:
 *   1. air-gapped:  `activate request --out req.txt KEY`
 *   2. connected:   `activate fulfil req.txt --server ... --out license.txt`
 *   3. air-gapped:  `activate install license.txt`
 *
 * The request is a small text file: the key, the machine id and the facts
 * an online Activate would send (the hashed components among them, so the
 * fulfilled activation can follow the machine as an online one does), a
 * random request id and creation time,
 * the public half of the machine's place key (place_key.h: the license the
 * request brings back is bound to it, so only this machine can renew or
 * deactivate it later), the public half of a per-machine Ed25519 "request
 * key", and a signature by that key over every line before it. The
 * signature line is the last line; `fulfil` refuses a file with anything
 * after it (it would not be signed) or with a NUL byte anywhere (C strings
 * would silently end there), and reads fields from the signed lines only.
 * The request key is made on first use and kept in the state directory
 * (request-key.pem, mode 0600), so all requests of one machine carry the
 * same fingerprint.
 *
 * Why sign it at all, since the vendor never sees the request key? Because
 * the request crosses hands (USB stick, mail, a ticket system): the
 * signature makes `fulfil` refuse a file that was edited or damaged on the
 * way -- a changed machine id would spend a place on a machine nobody owns
 * -- and the fingerprint, printed on both sides, lets the operator confirm
 * by phone that the request came from the machine they think it did. It
 * does not make the request secret: it holds the product key in the clear,
 * so it must be handled like the key itself.
 *
 * The license file that comes back needs no such care: it is the same
 * format as the stored license, signed by the vendor and bound to the
 * machine id, so `install` verifies it exactly as a stored license is
 * verified and another machine cannot use it. */
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_internal.h"
#include "hex.h"
#include "place_key.h"
#include "state.h"

#define REQUEST_HEADER "# activate offline request v1"
#define REQUEST_TEXT_MAX 4096
/* "name=HEX" entries, comma-separated: what COMPONENTS_MAX of them take. */
#define COMPONENTS_TEXT_MAX (COMPONENTS_MAX * (COMPONENT_NAME_MAX + 2 + 2 * COMPONENT_DIGEST_LEN) + 1)

/* ---- the request key ---------------------------------------------------- */

static pa_err make_request_key(pa_client *c, const char *path, EVP_PKEY **out) {
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    BIO *mem = BIO_new(BIO_s_mem());
    char *pem = NULL, err[256];
    long len = 0;
    if (key && mem && PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL) == 1)
        len = BIO_get_mem_data(mem, &pem);
    bool ok = len > 0 && state_write_atomic(path, pem, (size_t)len, 0600, err, sizeof err) == 0;
    BIO_free(mem);
    if (!ok) {
        EVP_PKEY_free(key);
        return client_fail(c, PA_ERR_IO, "cannot create the request key %s: %s", path,
                           len > 0 ? err : "OpenSSL failed");
    }
    *out = key;
    return PA_OK;
}

/* The machine's request key, made on first use. */
static pa_err request_key(pa_client *c, EVP_PKEY **out) {
    char path[PATH_MAX], err[256];
    *out = NULL;
    if (state_path(path, sizeof path, c->state_dir, STATE_REQUEST_KEY) != 0 ||
        state_dir_ensure(c->state_dir, err, sizeof err) != 0)
        return client_fail(c, PA_ERR_IO, "cannot use state directory %s", c->state_dir);
    FILE *fp = fopen(path, "r");
    if (!fp) return make_request_key(c, path, out);
    EVP_PKEY *key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    ERR_clear_error();
    if (!key || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(key);
        return client_fail(c, PA_ERR_STATE, "the request key %s is damaged; remove it to make a new one", path);
    }
    *out = key;
    return PA_OK;
}

/* "1a2b-3c4d-5e6f-7a8b" from SHA-256 of the raw public key. */
static void fingerprint(const uint8_t raw[32], char out[24]) {
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256(raw, 32, d);
    snprintf(out, 24, "%02x%02x-%02x%02x-%02x%02x-%02x%02x", d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]);
}

static int sign(EVP_PKEY *key, const char *data, size_t len, uint8_t sig[SIGNATURE_LEN]) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sig_len = SIGNATURE_LEN;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestSign(ctx, sig, &sig_len, (const uint8_t *)data, len) == 1 && sig_len == SIGNATURE_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* ---- step 1: the request ------------------------------------------------- */

/* The place key a request binds: the confirmed one when the machine has
 * one (several requests may be outstanding, and `install` could not tell
 * which one a license answers), else the pending one, made now if needed. */
static pa_err request_place_key(pa_client *c, uint8_t pub[PLACE_KEY_LEN]) {
    char err[256];
    EVP_PKEY *k;
    int rc = place_key_load(c->state_dir, &k, err, sizeof err);
    if (rc == PLACE_KEY_NONE) rc = place_key_pending(c->state_dir, &k, err, sizeof err);
    if (rc != 0) return client_fail(c, rc == PLACE_KEY_DAMAGED ? PA_ERR_STATE : PA_ERR_IO, "%s", err);
    rc = place_key_public(k, pub);
    EVP_PKEY_free(k);
    return rc == 0 ? PA_OK : client_fail(c, PA_ERR_INTERNAL, "cannot read the place key's public half");
}

static pa_err write_request(pa_client *c, EVP_PKEY *key, const char *canonical, const char *out_path) {
    uint8_t raw[32], nonce[16], sig[SIGNATURE_LEN], place[PLACE_KEY_LEN];
    size_t raw_len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key, raw, &raw_len) != 1 || RAND_bytes(nonce, sizeof nonce) != 1)
        return client_fail(c, PA_ERR_INTERNAL, "OpenSSL failed");
    pa_err e = request_place_key(c, place);
    if (e != PA_OK) return e;
    char host[PA_HOSTNAME_MAX + 1], os[PA_FACT_MAX + 1], arch[PA_FACT_MAX + 1], id[33];
    client_describe_machine(host, os, arch);
    pa_hex_encode(nonce, sizeof nonce, id);
    char *pub = b64_encode(raw, sizeof raw), *place_b64 = b64_encode(place, sizeof place);
    char text[REQUEST_TEXT_MAX], comps[COMPONENTS_TEXT_MAX];
    bool encoded = pub && place_b64 && components_format(&c->comps, comps, sizeof comps) == 0;
    int n = snprintf(text, sizeof text,
                     REQUEST_HEADER
                     " -- it holds a product key: handle it like the key\n"
                     "request_id: %s\nproduct_key: %s\nmachine_id: %s\nmachine_id_source: %s\n"
                     "hostname: %s\nos: %s\narch: %s\nclient_version: %s\ncreated_at: %lld\nplace_key: %s\n"
                     "components: %s\npublic_key: %s\n",
                     id, canonical, c->machine_id_hex, c->machine_source, host, os, arch, c->client_version,
                     (long long)time(NULL), place_b64 ? place_b64 : "", encoded ? comps : "", pub ? pub : "");
    free(pub);
    free(place_b64);
    if (!encoded || n < 0 || (size_t)n >= sizeof text - 200 || sign(key, text, (size_t)n, sig) != 0)
        return client_fail(c, PA_ERR_INTERNAL, "cannot build the request");
    char *sig_b64 = b64_encode(sig, sizeof sig);
    if (!sig_b64) return client_fail(c, PA_ERR_INTERNAL, "out of memory");
    snprintf(text + n, sizeof text - (size_t)n, "signature: %s\n", sig_b64);
    free(sig_b64);
    char err[256];
    if (state_write_atomic(out_path, text, strlen(text), 0600, err, sizeof err) != 0)
        return client_fail(c, PA_ERR_IO, "%s", err);
    fingerprint(raw, c->request_fp);
    return PA_OK;
}

pa_err pa_request_write(pa_client *c, const char *key, const char *path) {
    c->error[0] = '\0';
    c->request_fp[0] = '\0';
    char canonical[PA_KEY_TEXT_LEN + 1];
    pa_key_problem p;
    if (pa_key_check(key, canonical, &p) != PA_OK) return client_fail(c, PA_ERR_KEY, "%s", p.message);
    pa_err e = client_need_machine(c);
    if (e != PA_OK) return e;
    char err[256];
    int lock = state_lock(c->state_dir, err, sizeof err);
    if (lock < 0) return client_fail(c, PA_ERR_IO, "%s", err);
    EVP_PKEY *k;
    e = request_key(c, &k);
    if (e == PA_OK) e = write_request(c, k, canonical, path);
    EVP_PKEY_free(k);
    state_unlock(lock);
    return e;
}

/* ---- step 2: fulfil on a connected machine ------------------------------- */

/* The request's fields, checked. */
typedef struct request {
    char key[PA_KEY_TEXT_LEN + 1];          /* canonical product key */
    uint8_t machine_id[PA_MACHINE_ID_LEN];  /* the air-gapped machine */
    char hostname[PA_HOSTNAME_MAX + 1];     /* its facts, passed on as sent */
    char os[PA_FACT_MAX + 1];
    char arch[PA_FACT_MAX + 1];
    char client_version[PA_FACT_MAX + 1];
    uint8_t place_key[PLACE_KEY_LEN]; /* the place key the license is to be bound to */
    components comps;                 /* its hashed components, so its place can follow it (none: older requests) */
} request;

static bool printable(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) return false;
    return true;
}

/* Checks the signature over everything before the signature line, which
 * must be the last line. On PA_OK *signed_len is the length of the signed
 * part: the only part the caller reads fields from. */
static pa_err check_request_signature(pa_client *c, const char *text, size_t *signed_len) {
    const char *line = strstr(text, "\nsignature: ");
    const char *pub_b64;
    size_t pub_len;
    char sig_b64[128], pub_text[64];
    uint8_t *pub = NULL, *sig = NULL;
    size_t n_pub = 0, n_sig = 0;
    if (!line || text_field_copy(text, "signature", sig_b64, sizeof sig_b64) != 0 ||
        text_field(text, "public_key", &pub_b64, &pub_len) != 0 || pub_len >= sizeof pub_text || pub_b64 > line)
        return client_fail(c, PA_ERR_BAD_LICENSE, "the request has no single signature and public key");
    const char *end = strchr(line + 1, '\n');
    if (end && end[1] != '\0')
        return client_fail(c, PA_ERR_BAD_LICENSE,
                           "the request has lines after its signature line; they are not signed, so the "
                           "request was altered on the way: make a new one");
    *signed_len = (size_t)(line + 1 - text);
    memcpy(pub_text, pub_b64, pub_len);
    pub_text[pub_len] = '\0';
    pa_err e = PA_ERR_BAD_LICENSE;
    if (b64_decode(pub_text, &pub, &n_pub) == 0 && n_pub == 32 && b64_decode(sig_b64, &sig, &n_sig) == 0 &&
        n_sig == SIGNATURE_LEN) {
        EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (k && ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1 &&
            EVP_DigestVerify(ctx, sig, n_sig, (const uint8_t *)text, (size_t)(line + 1 - text)) == 1) {
            fingerprint(pub, c->request_fp);
            e = PA_OK;
        }
        EVP_MD_CTX_free(ctx);
        EVP_PKEY_free(k);
        ERR_clear_error();
    }
    free(pub);
    free(sig);
    if (e != PA_OK)
        return client_fail(c, e, "the request's signature does not verify: it was altered or damaged on the way");
    return PA_OK;
}

/* Reads the fields from the signed part of a request (signed_len bytes of
 * `text`). */
static pa_err request_fields(pa_client *c, const char *text, size_t signed_len, request *r) {
    char *body = strndup(text, signed_len);
    if (!body) return client_fail(c, PA_ERR_INTERNAL, "out of memory");
    char key[128], mid[2 * PA_MACHINE_ID_LEN + 2], place[64];
    struct {
        const char *name;
        char *out;
        size_t n;
    } f[] = {{"product_key", key, sizeof key},
             {"machine_id", mid, sizeof mid},
             {"hostname", r->hostname, sizeof r->hostname},
             {"os", r->os, sizeof r->os},
             {"arch", r->arch, sizeof r->arch},
             {"client_version", r->client_version, sizeof r->client_version},
             {"place_key", place, sizeof place}};
    const char *bad = NULL;
    for (size_t i = 0; !bad && i < sizeof f / sizeof f[0]; i++)
        if (text_field_copy(body, f[i].name, f[i].out, f[i].n) != 0 || !printable(f[i].out)) bad = f[i].name;
    free(body);
    if (bad && strcmp(bad, "place_key") == 0)
        return client_fail(c, PA_ERR_BAD_LICENSE,
                           "the request has no single place_key line: it was made by an older version of "
                           "activate; make a new request with this one");
    if (bad)
        return client_fail(c, PA_ERR_BAD_LICENSE, "the request's field \"%s\" is missing, repeated or malformed", bad);
    if (pa_hex_decode(mid, strlen(mid), r->machine_id, PA_MACHINE_ID_LEN) != PA_MACHINE_ID_LEN)
        return client_fail(c, PA_ERR_BAD_LICENSE, "the request's machine_id is not 64 hex characters");
    uint8_t *raw = NULL;
    size_t n_raw = 0;
    bool place_ok = b64_decode(place, &raw, &n_raw) == 0 && n_raw == PLACE_KEY_LEN;
    if (place_ok) memcpy(r->place_key, raw, PLACE_KEY_LEN);
    free(raw);
    if (!place_ok) return client_fail(c, PA_ERR_BAD_LICENSE, "the request's place_key is not 32 bytes of base64");
    pa_key_problem p;
    if (pa_key_check(key, r->key, &p) != PA_OK)
        return client_fail(c, PA_ERR_KEY, "the request's product key: %s", p.message);
    return PA_OK;
}

/* The request's "components" line (signed part only). Requests written
 * before components existed have none: the place then matches by machine
 * id only. */
static pa_err request_components(pa_client *c, const char *text, size_t signed_len, request *r) {
    char *body = strndup(text, signed_len), line[COMPONENTS_TEXT_MAX], err[160];
    if (!body) return client_fail(c, PA_ERR_INTERNAL, "out of memory");
    int rc = text_field_copy(body, "components", line, sizeof line);
    free(body);
    if (rc == 1) return PA_OK;
    if (rc != 0)
        return client_fail(c, PA_ERR_BAD_LICENSE, "the request's field \"components\" is repeated or too long");
    if (components_parse(line, &r->comps, err, sizeof err) != 0)
        return client_fail(c, PA_ERR_BAD_LICENSE, "the request's %s", err);
    return PA_OK;
}

static pa_err parse_request(pa_client *c, const char *text, request *r) {
    memset(r, 0, sizeof *r);
    if (strncmp(text, REQUEST_HEADER, strlen(REQUEST_HEADER)) != 0)
        return client_fail(c, PA_ERR_BAD_LICENSE, "not an activate offline request (first line)");
    size_t signed_len = 0;
    pa_err e = check_request_signature(c, text, &signed_len);
    if (e == PA_OK) e = request_fields(c, text, signed_len, r);
    return e == PA_OK ? request_components(c, text, signed_len, r) : e;
}

/* Reads an offline file (request or license). A NUL byte is refused: the
 * text is read as a C string, which would silently end there (a product key
 * "KEY\0..." would read as KEY, and the lines after it would vanish). */
static pa_err read_text(pa_client *c, const char *what, const char *path, char **text) {
    size_t len;
    char err[256];
    int rc = state_read_file(path, text, &len, err, sizeof err);
    if (rc == 1) return client_fail(c, PA_ERR_IO, "%s does not exist", path);
    if (rc != 0) return client_fail(c, PA_ERR_IO, "%s", err);
    const char *nul = memchr(*text, '\0', len);
    if (!nul) return PA_OK;
    const char *line = *text;
    unsigned line_no = 1;
    for (const char *p = *text; p < nul; p++)
        if (*p == '\n') {
            line = p + 1;
            line_no++;
        }
    size_t name = strcspn(line, ":\n");
    pa_err e = client_fail(c, PA_ERR_BAD_LICENSE,
                           "%s %s holds a NUL byte on line %u (field \"%.*s\"): it was altered or damaged", what, path,
                           line_no, (int)(name < 40 ? name : 40), line);
    free(*text);
    *text = NULL;
    return e;
}

pa_err offline_request_parse(pa_client *c, const char *text, char key[PA_KEY_TEXT_LEN + 1],
                             uint8_t machine_id[PA_MACHINE_ID_LEN]) {
    request r;
    pa_err e = parse_request(c, text, &r);
    if (e == PA_OK) {
        memcpy(key, r.key, sizeof r.key);
        memcpy(machine_id, r.machine_id, sizeof r.machine_id);
    }
    OPENSSL_cleanse(&r, sizeof r);
    return e;
}

pa_err pa_fulfil(pa_client *c, const char *request_path, const char *license_path) {
    c->error[0] = '\0';
    c->request_fp[0] = '\0';
    pa_err e = client_need_keys(c);
    char *text = NULL;
    if (e == PA_OK) e = read_text(c, "the request", request_path, &text);
    request r;
    if (e == PA_OK) e = parse_request(c, text, &r);
    free(text);
    if (e != PA_OK) return e;
    signed_license s;
    e = client_call_activate(c, r.key, r.machine_id, r.place_key, r.hostname, r.os, r.arch, r.client_version, NULL,
                             &r.comps, &s);
    if (e != PA_OK) return e;
    char what[350];
    snprintf(what, sizeof what, "the license from server %s", c->server);
    e = client_accept(c, &s, r.machine_id, what);
    char *out = e == PA_OK ? license_file_format(&s) : NULL;
    signed_license_clear(&s);
    if (e != PA_OK) return e;
    if (!out) return client_fail(c, PA_ERR_INTERNAL, "out of memory");
    char err[256];
    int rc = state_write_atomic(license_path, out, strlen(out), 0600, err, sizeof err);
    free(out);
    return rc == 0 ? PA_OK : client_fail(c, PA_ERR_IO, "%s", err);
}

/* ---- step 3: install ------------------------------------------------------ */

pa_err pa_install(pa_client *c, const char *license_path) {
    c->error[0] = '\0';
    pa_err e = client_need_machine(c);
    if (e == PA_OK) e = client_need_keys(c);
    char *text = NULL;
    if (e == PA_OK) e = read_text(c, "the license file", license_path, &text);
    if (e != PA_OK) return e;
    signed_license s;
    char err[256];
    int rc = license_file_parse(text, &s, err, sizeof err);
    free(text);
    if (rc == LICENSE_FILE_OLDER)
        return client_fail(c, PA_ERR_BAD_LICENSE,
                           "%s was made by an older version (%s): fulfil the request again with this one", license_path,
                           err);
    if (rc != 0) return client_fail(c, PA_ERR_BAD_LICENSE, "%s is not a usable license file: %s", license_path, err);
    e = client_accept(c, &s, c->machine_id, "the license file");
    if (e == PA_OK && c->lic->expires_at > 0 && c->lic->expires_at <= (int64_t)time(NULL))
        e = client_fail(c, PA_ERR_EXPIRED, "the license file expired at %lld; ask for a new one",
                        (long long)c->lic->expires_at);
    if (e == PA_OK) {
        int lock = state_lock(c->state_dir, err, sizeof err);
        if (lock < 0) e = client_fail(c, PA_ERR_IO, "%s", err);
        else {
            /* The request bound the pending place key when the machine had
             * no confirmed one (request_place_key): this license is its. */
            if (!place_key_confirmed(c->state_dir) && place_key_confirm(c->state_dir, err, sizeof err) != 0)
                e = client_fail(c, PA_ERR_IO, "%s", err);
            if (e == PA_OK) e = client_store(c, &s);
            if (e == PA_OK) e = volume_record_remove(c, STATE_DEACTIVATED); /* a person installed it */
            state_unlock(lock);
        }
    }
    signed_license_clear(&s);
    return e;
}
