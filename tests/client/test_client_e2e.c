/* test_client_e2e.c -- the `activate` CLI against real activation servers
 * (real Redis, keys from the keystore CLI): activate, status, renew,
 * deactivate, re-activation after a wiped state directory, places per key,
 * tampered and foreign licenses, failover, offline activation, the daemon,
 * a lapsed lease (activated again) against a revoked key (refused for good),
 * --json output that stays valid JSON whatever the text holds, a copied
 * license file that cannot renew or deactivate without the place key, a
 * place made before place keys that maintain binds, private state files, and
 * --product / --edition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "client_env.h"
#include "keycodec.h"

static client_env env;

static int setup(void **state) {
    if (env_start(&env) == 0 && env_start_server(&env, 0, NULL) == 0) return 0;
    env_stop(&env);  /* cmocka skips the teardown when setup fails */
    return -1;
}

static int teardown(void **state) {
    env_stop(&env);
    return 0;
}

/* `activate ARGS... --server SERVER0` on machine `m`; returns the exit code. */
#define RUN(m, out, ...) run_on(m, out, (const char *[]){__VA_ARGS__, "--server", env.target[0], NULL})
#define RUN_LOCAL(m, out, ...) run_on(m, out, (const char *[]){__VA_ARGS__, NULL})

static int run_on(const char *machine, char **out, const char **args) {
    char root[300], state[300];
    env_machine(&env, machine, root, state);
    return env_activate_cli(&env, root, state, args, out);
}

static void state_file(const char *machine, const char *name, char *buf, size_t n) {
    snprintf(buf, n, "%s/state/%s/%s", env.dir, machine, name);
}

static void activate_status_renew_deactivate(void **state) {
    const char *g[] = {"--max-machines", "2", "--lease-seconds", "3600", "--renew-seconds", "1", NULL};
    assert_int_equal(env_group(&env, 101, g), 0);
    char keys[1][KEY_TEXT], *out, id[64], id2[64], server[64];
    assert_int_equal(env_keys(&env, 101, 1, keys), 0);

    assert_int_equal(RUN("m1", &out, keys[0]), 0);
    assert_int_equal(json_int(out, "activation_count"), 1);
    assert_int_equal(json_int(out, "key_group"), 101);
    assert_non_null(strstr(out, "\"product\":\"Demo Office\""));
    assert_non_null(strstr(out, "\"features\":[\"editor\",\"spreadsheet\"]"));
    assert_null(strstr(out, keys[0]));  /* the key itself is never echoed */
    long long renew1 = json_int(out, "renew_after"), exp1 = json_int(out, "expires_at");
    assert_true(renew1 > 0 && exp1 > renew1);
    json_str(out, "license_id", id, sizeof id);
    json_str(out, "server", server, sizeof server);
    assert_string_equal(server, env.target[0]);
    free(out);

    assert_int_equal(RUN_LOCAL("m1", &out, "status"), 0);
    json_str(out, "license_id", id2, sizeof id2);
    assert_string_equal(id, id2);
    free(out);

    sleep(2);  /* renew_after (1 s) has come */
    assert_int_equal(RUN("m1", &out, "renew"), 0);
    assert_true(json_int(out, "expires_at") >= exp1);
    free(out);
    sleep(2);
    assert_int_equal(RUN("m1", &out, "maintain"), 0);  /* due again: renews */
    assert_true(json_int(out, "renew_after") > renew1);
    free(out);

    assert_int_equal(RUN("m1", &out, "deactivate"), 0);
    assert_int_equal(json_int(out, "activation_count"), 0);
    free(out);
    assert_int_equal(RUN_LOCAL("m1", NULL, "status"), 4);
    assert_int_equal(RUN("m1", NULL, "renew"), 4);
}

static void reactivation_after_wipe_costs_no_place(void **state) {
    const char *g[] = {"--max-machines", "2", NULL};
    assert_int_equal(env_group(&env, 102, g), 0);
    char keys[1][KEY_TEXT], *out, dir[300];
    assert_int_equal(env_keys(&env, 102, 1, keys), 0);
    assert_int_equal(RUN("w1", &out, keys[0]), 0);
    assert_int_equal(json_int(out, "activation_count"), 1);
    assert_int_equal(json_int(out, "renew_after"), 0);  /* permanent */
    free(out);
    /* OS reinstall: the state directory is gone, the hardware is the same. */
    snprintf(dir, sizeof dir, "%s/state/w1", env.dir);
    fixture_rmtree(dir);
    assert_int_equal(RUN_LOCAL("w1", NULL, "status"), 4);
    assert_int_equal(RUN("w1", &out, keys[0]), 0);
    assert_int_equal(json_int(out, "activation_count"), 1);
    free(out);
    assert_int_equal(RUN("w2", &out, keys[0]), 0);
    assert_int_equal(json_int(out, "activation_count"), 2);
    free(out);
    assert_int_equal(RUN("w3", &out, keys[0]), 9);  /* no place left */
    assert_non_null(strstr(out, "\"result\":\"exhausted\""));
    free(out);
    assert_int_equal(RUN("w2", NULL, "deactivate"), 0);
    assert_int_equal(RUN("w3", &out, keys[0]), 0);
    assert_int_equal(json_int(out, "activation_count"), 2);
    free(out);
}

static void copy_file(const char *from, const char *to) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\" && cp '%s' '%s'", to, from, to);
    assert_int_equal(system(cmd), 0);
}

/* Replaces the character `at` places into the value of `field` with another
 * base64 letter, as an editor would. */
static void change_field_char(const char *path, const char *field, size_t at) {
    FILE *fp = fopen(path, "r+");
    assert_non_null(fp);
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, fp);
    text[n] = '\0';
    char *v = strstr(text, field);
    assert_non_null(v);
    v += strlen(field) + at;
    *v = *v == 'A' ? 'B' : 'A';
    rewind(fp);
    assert_int_equal(fwrite(text, 1, n, fp), n);
    fclose(fp);
}

static void tampered_and_foreign_licenses_are_refused(void **state) {
    assert_int_equal(env_group(&env, 103, NULL), 0);
    char keys[1][KEY_TEXT], *out, lic[400], other[400];
    assert_int_equal(env_keys(&env, 103, 1, keys), 0);
    assert_int_equal(RUN("t1", NULL, keys[0]), 0);
    /* The license copied onto another machine. */
    state_file("t1", "license", lic, sizeof lic);
    state_file("t2", "license", other, sizeof other);
    env_machine(&env, "t2", (char[300]){0}, (char[300]){0});
    copy_file(lic, other);
    assert_int_equal(RUN_LOCAL("t2", &out, "status"), 5);
    assert_non_null(strstr(out, "another machine"));
    free(out);
    /* One character of the signed license changed, still valid base64. */
    change_field_char(lic, "license: ", 30);
    assert_int_equal(RUN_LOCAL("t1", &out, "status"), 5);
    assert_non_null(strstr(out, "\"result\":\"state\""));
    assert_non_null(strstr(out, "altered"));
    free(out);
    assert_int_equal(RUN("t1", NULL, "renew"), 5);  /* an untrusted file is never used */
    /* Activating again replaces it. */
    assert_int_equal(RUN("t1", NULL, keys[0]), 0);
    assert_int_equal(RUN_LOCAL("t1", NULL, "status"), 0);
}

static void key_problems(void **state) {
    assert_int_equal(env_group(&env, 104, NULL), 0);
    char keys[1][KEY_TEXT], *out;
    assert_int_equal(env_keys(&env, 104, 1, keys), 0);
    /* A typo: refused locally, exit 3, with a hint. */
    char typo[KEY_TEXT];
    snprintf(typo, sizeof typo, "%s", keys[0]);
    /* Change a character that is not the key's `N` (changing that one would
     * make an older-format key, a different error). */
    int at = typo[7] == 'N' ? 8 : 7;
    typo[at] = typo[at] == 'B' ? 'C' : 'B';
    int rc = RUN("k1", &out, typo);
    if (rc != 7) {  /* 1 in 1024 typos pass the checksum; the server then says "not genuine" */
        assert_int_equal(rc, 3);
        assert_non_null(strstr(out, "\"reason\":\"checksum\""));
    }
    free(out);
    /* Genuine checksum, wrong security value: not genuine, exit 7. */
    pk_fields f;
    assert_int_equal(pk_decode(keys[0], strlen(keys[0]), &f, NULL), PK_OK);
    f.security_first ^= 1;
    char forged[PK_TEXT_LEN + 1];
    assert_int_equal(pk_encode(&f, forged), 0);
    assert_int_equal(RUN("k1", &out, forged), 7);
    assert_non_null(strstr(out, "\"result\":\"denied\""));
    free(out);
    assert_int_equal(RUN("k1", NULL, "BCDFG-HJKMP-QRTVW-XY234-6789B"), 3);  /* legacy */
    assert_int_equal(RUN("k1", NULL, "notacommand"), 2);
}

static void failover_to_the_next_server(void **state) {
    assert_int_equal(env_group(&env, 105, NULL), 0);
    char keys[1][KEY_TEXT], *out, server[64], dead[64], path[400];
    assert_int_equal(env_keys(&env, 105, 1, keys), 0);
    snprintf(dead, sizeof dead, "127.0.0.1:%d", fixture_free_port());
    assert_int_equal(RUN_LOCAL("f1", &out, keys[0], "--server", dead, "--server", env.target[0]), 0);
    json_str(out, "server", server, sizeof server);
    assert_string_equal(server, env.target[0]);
    free(out);
    state_file("f1", "last-server", path, sizeof path);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char last[64] = "";
    assert_non_null(fgets(last, sizeof last, fp));
    fclose(fp);
    assert_string_equal(last, env.target[0]);
    /* Nobody answers: exit 12, naming what each server said. */
    assert_int_equal(RUN_LOCAL("f1", &out, "renew", "--server", dead), 12);
    assert_non_null(strstr(out, dead));
    free(out);
}

static void offline_request_fulfil_install(void **state) {
    assert_int_equal(env_group(&env, 106, NULL), 0);
    char keys[1][KEY_TEXT], *out, req[400], lic[400], fp1[32], fp2[32];
    assert_int_equal(env_keys(&env, 106, 1, keys), 0);
    snprintf(req, sizeof req, "%s/offline-request.txt", env.dir);
    snprintf(lic, sizeof lic, "%s/offline-license.txt", env.dir);
    /* On the air-gapped machine: no server configured at all. */
    assert_int_equal(RUN_LOCAL("air", &out, "request", "--out", req, keys[0]), 0);
    json_str(out, "request_fingerprint", fp1, sizeof fp1);
    assert_int_equal(strlen(fp1), 19);
    free(out);
    /* On the operator's connected machine. */
    assert_int_equal(RUN("operator", &out, "fulfil", req, "--out", lic), 0);
    json_str(out, "request_fingerprint", fp2, sizeof fp2);
    assert_string_equal(fp1, fp2);
    assert_int_equal(json_int(out, "activation_count"), 1);
    free(out);
    assert_int_equal(RUN_LOCAL("operator", NULL, "status"), 4);  /* the operator's own state untouched */
    /* Back on the air-gapped machine. */
    assert_int_equal(RUN_LOCAL("air", NULL, "install", lic), 0);
    assert_int_equal(RUN_LOCAL("air", &out, "status"), 0);
    assert_int_equal(json_int(out, "key_group"), 106);
    free(out);
    /* The place is bound to the air-gapped machine's own place key: the
     * operator never held it, the machine does once it is connected. */
    assert_int_equal(RUN("air", &out, "renew"), 0);
    free(out);
    /* Any other machine: refused. */
    assert_int_equal(RUN_LOCAL("elsewhere", &out, "install", lic), 13);
    assert_non_null(strstr(out, "another machine"));
    free(out);
}

static void daemon_activates_at_start_and_stops_on_sigterm(void **state) {
    assert_int_equal(env_group(&env, 107, NULL), 0);
    char keys[1][KEY_TEXT], root[300], st[300], keyfile[400], log[400], bin[512];
    assert_int_equal(env_keys(&env, 107, 1, keys), 0);
    env_machine(&env, "d1", root, st);
    snprintf(keyfile, sizeof keyfile, "%s/product-key", st);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && printf '%%s\\n' '%s' > '%s'", st, keys[0], keyfile);
    assert_int_equal(system(cmd), 0);
    snprintf(log, sizeof log, "%s/daemon.log", env.dir);
    snprintf(bin, sizeof bin, "%s", fixture_bin("client/activate"));
    const char *argv[] = {bin,           "--daemon", "--public-key", env.public_key, "--facts-root", root,
                          "--state-dir", st,         "--server",     env.target[0],  "--insecure",   NULL};
    pid_t pid = fixture_spawn((char *const *)argv, log, 0, 0);
    assert_true(pid > 0);
    int rc = -1;
    for (int i = 0; i < 100 && rc != 0; i++) {
        usleep(100 * 1000);
        rc = RUN_LOCAL("d1", NULL, "status");
    }
    assert_int_equal(rc, 0);
    assert_int_equal(fixture_stop(pid, SIGTERM, 5000), 0);
    char *text = NULL;
    FILE *fp = fopen(log, "r");
    assert_non_null(fp);
    text = calloc(1, 65536);
    size_t n = fread(text, 1, 65535, fp);
    fclose(fp);
    text[n] = '\0';
    assert_non_null(strstr(text, "daemon.licensed"));
    assert_non_null(strstr(text, "daemon.stop"));
    assert_null(strstr(text, keys[0]));  /* never a full key in the log */
    free(text);
}

/* On a terminal a mistyped key is asked for again (script(1) gives the
 * CLI a pseudo-terminal). */
static void typo_on_a_terminal_is_asked_again(void **state) {
    assert_int_equal(env_group(&env, 108, NULL), 0);
    char keys[1][KEY_TEXT], root[300], st[300], typo[KEY_TEXT], cmd[4096];
    assert_int_equal(env_keys(&env, 108, 1, keys), 0);
    env_machine(&env, "tty", root, st);
    snprintf(typo, sizeof typo, "%s", keys[0]);
    typo[13] = 'O';  /* never in a key */
    snprintf(cmd, sizeof cmd,
             "(printf '%%s\\n%%s\\n' '%s' '%s'; sleep 5) | /usr/bin/script -qec "
             "\"'%s' --public-key '%s' --facts-root '%s' --state-dir '%s' --server %s --insecure\" /dev/null",
             typo, keys[0], fixture_bin("client/activate"), env.public_key, root, st, env.target[0]);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    char *out = NULL;
    int rc = fixture_run((char *const *)argv, &out, NULL);
    fprintf(stderr, "%s\n", out ? out : "");
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "group 3, character 2"));
    assert_non_null(strstr(out, "Please type it again"));
    assert_non_null(strstr(out, "This machine is activated."));
    free(out);
}

/* TLS to the servers: the server certificate from scripts/make-certs.sh. */
static void tls_to_the_server(void **state) {
    char certs[300], cert[400], key[400], ca[400], script[600], keys[1][KEY_TEXT], *out;
    snprintf(certs, sizeof certs, "%s/certs", env.dir);
    snprintf(script, sizeof script, "%s/scripts/make-certs.sh", env_source_dir());
    const char *mk[] = {"/bin/bash", script, certs, NULL};
    assert_int_equal(fixture_run((char *const *)mk, NULL, NULL), 0);
    snprintf(cert, sizeof cert, "%s/audit-server.pem", certs);
    snprintf(key, sizeof key, "%s/audit-server.key", certs);
    snprintf(ca, sizeof ca, "%s/ca.pem", certs);
    const char *tls[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    assert_int_equal(env_start_server(&env, 2, tls), 0);
    assert_int_equal(env_group(&env, 109, NULL), 0);
    assert_int_equal(env_keys(&env, 109, 1, keys), 0);
    assert_int_equal(RUN_LOCAL("tls1", &out, keys[0], "--server", env.target[2], "--tls-ca", ca), 0);
    assert_int_equal(json_int(out, "key_group"), 109);
    free(out);
    /* Plain text to a TLS server, or TLS trusting another CA: nobody answers. */
    assert_int_equal(RUN_LOCAL("tls2", NULL, keys[0], "--server", env.target[2], "--insecure"), 12);
    /* Neither TLS nor --insecure: a configuration error, before any connection. */
    assert_int_equal(RUN_LOCAL("tls2", &out, keys[0], "--server", env.target[2], "--no-insecure"), 14);
    assert_non_null(strstr(out, "--tls-ca"));
    free(out);
    assert_int_equal(RUN_LOCAL("tls2", NULL, keys[0], "--server", env.target[2], "--tls-ca", env.public_key), 12);
    env_stop_server(&env, 2);
}

/* The daemon's log so far (malloc'd, "" if none). */
static char *read_text(const char *path) {
    char *text = calloc(1, 65536);
    assert_non_null(text);
    FILE *fp = fopen(path, "r");
    if (fp) {
        size_t n = fread(text, 1, 65535, fp);
        text[n] = '\0';
        fclose(fp);
    }
    return text;
}

/* Writes `key` to `path` (a key file, as an administrator would). */
static void write_key_file(const char *key, const char *path) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\" && printf '%%s\\n' '%s' > '%s'", path, key, path);
    assert_int_equal(system(cmd), 0);
}

/* A lease that lapsed is not a revocation: without the key, renew says so
 * with its own exit code (17, lease_expired); with it -- --key-file or the
 * stored STATE-DIR/product-key -- renew, maintain and the daemon activate
 * again and get the same place back. */
static void lapsed_lease_is_activated_again(void **state) {
    const char *g[] = {"--lease-seconds", "2", "--max-machines", "1", NULL};
    assert_int_equal(env_group(&env, 110, g), 0);
    char keys[3][KEY_TEXT], *out, keyfile[3][400], id[64], id2[64];
    assert_int_equal(env_keys(&env, 110, 3, keys), 0);
    snprintf(keyfile[0], sizeof keyfile[0], "%s/keys/l1.key", env.dir);          /* --key-file */
    snprintf(keyfile[1], sizeof keyfile[1], "%s/state/l2/product-key", env.dir); /* stored */
    snprintf(keyfile[2], sizeof keyfile[2], "%s/keys/l3.key", env.dir);          /* the daemon's */
    assert_int_equal(RUN("l1", &out, keys[0]), 0);
    json_str(out, "license_id", id, sizeof id);
    free(out);
    assert_int_equal(RUN("l2", NULL, keys[1]), 0);
    assert_int_equal(RUN("l3", NULL, keys[2]), 0);
    for (int i = 0; i < 3; i++) write_key_file(keys[i], keyfile[i]);

    sleep(3); /* the 2 s leases lapse */
    assert_int_equal(RUN_LOCAL("l1", NULL, "status"), 6);
    assert_int_equal(RUN("l1", &out, "renew"), 17); /* no key at hand */
    assert_non_null(strstr(out, "\"result\":\"lease_expired\""));
    assert_non_null(strstr(out, "lease has expired"));
    free(out);
    assert_int_equal(RUN_LOCAL("l1", NULL, "status"), 6); /* a failed renewal changes nothing */

    long long before = (long long)time(NULL);
    assert_int_equal(RUN("l1", &out, "maintain", "--key-file", keyfile[0]), 0);
    assert_non_null(strstr(out, "\"result\":\"ok\""));
    assert_non_null(strstr(out, "lease had lapsed"));
    assert_true(json_int(out, "expires_at") >= before + 2);
    json_str(out, "license_id", id2, sizeof id2);
    assert_string_equal(id, id2); /* the same place, taken again */
    assert_int_equal(json_int(out, "activation_count"), 1);
    free(out);

    assert_int_equal(RUN("l2", &out, "renew"), 0); /* the stored key */
    assert_true(json_int(out, "expires_at") >= before + 2);
    free(out);

    char root[300], st[300], log[400], bin[512];
    env_machine(&env, "l3", root, st);
    snprintf(log, sizeof log, "%s/daemon-lease.log", env.dir);
    snprintf(bin, sizeof bin, "%s", fixture_bin("client/activate"));
    const char *argv[] = {bin,           "--daemon", "--public-key", env.public_key, "--facts-root", root,
                          "--state-dir", st,         "--key-file",   keyfile[2],     "--server",     env.target[0],
                          "--insecure",  NULL};
    pid_t pid = fixture_spawn((char *const *)argv, log, 0, 0);
    assert_true(pid > 0);
    char *text = NULL;
    for (int i = 0; i < 100; i++) {
        usleep(100 * 1000);
        free(text);
        text = read_text(log);
        if (strstr(text, "daemon.licensed") || strstr(text, "daemon.attempt_failed")) break;
    }
    assert_int_equal(fixture_stop(pid, SIGTERM, 5000), 0);
    free(text);
    text = read_text(log);
    fprintf(stderr, "%s", text);
    assert_non_null(strstr(text, "daemon.licensed"));
    assert_null(strstr(text, "daemon.attempt_failed"));
    free(text);
}

/* A revoked key stays refused: renew and maintain exit 8 (revoked) and
 * neither tries to activate again, even with the key at hand. */
static void revoked_key_is_not_activated_again(void **state) {
    const char *g[] = {"--lease-seconds", "3600", "--renew-seconds", "1", NULL};
    assert_int_equal(env_group(&env, 111, g), 0);
    char keys[1][KEY_TEXT], *out, keyfile[400];
    assert_int_equal(env_keys(&env, 111, 1, keys), 0);
    snprintf(keyfile, sizeof keyfile, "%s/state/r1/product-key", env.dir);
    assert_int_equal(RUN("r1", &out, keys[0]), 0);
    long long serial = json_int(out, "key_serial");
    free(out);
    write_key_file(keys[0], keyfile); /* the stored key renew would use */
    /* Revoked as the revocation puller records it in Redis A. */
    redisContext *ks = redis_fixture_connect(&env.a, "keystore", FIXTURE_PW_KEYSTORE);
    assert_non_null(ks);
    redisReply *r = redisCommand(ks, "SADD {g:111}:revoked %lld", serial);
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(ks);

    /* A server of its own, logging every refusal, to see which calls came. */
    const char *info[] = {"--log-level", "info", NULL};
    assert_int_equal(env_start_server(&env, 1, info), 0);
    sleep(2); /* renew_after (1 s) has come: maintain has a renewal due */
    assert_int_equal(RUN_LOCAL("r1", &out, "renew", "--server", env.target[1]), 8);
    assert_non_null(strstr(out, "\"result\":\"revoked\""));
    free(out);
    assert_int_equal(RUN_LOCAL("r1", &out, "maintain", "--key-file", keyfile, "--server", env.target[1]), 8);
    assert_non_null(strstr(out, "\"result\":\"revoked\""));
    free(out);
    env_stop_server(&env, 1);
    char log[400];
    snprintf(log, sizeof log, "%s/server1.log", env.dir);
    char *text = read_text(log);
    assert_non_null(strstr(text, "\"event\":\"renew.refused\""));
    assert_null(strstr(text, "\"event\":\"activate.")); /* no Activate was sent */
    free(text);
    assert_int_equal(RUN_LOCAL("r1", NULL, "status"), 0); /* the stored license is untouched */
}

static mode_t mode_of(const char *dir, const char *name) {
    char path[600];
    struct stat st;
    snprintf(path, sizeof path, "%s%s%s", dir, name ? "/" : "", name ? name : "");
    if (stat(path, &st) != 0) fail_msg("%s: missing", path);
    return st.st_mode & 0777;
}

/* A license file copied to another installation of the same machine (or
 * read by anyone who can read it) names the place, but cannot renew or
 * deactivate it: that needs the place key, which only the installation that
 * activated holds (exit 18, "proof"). With the key it works; activating
 * again with the product key binds a new key. Every state file is 0600 in
 * a 0700 directory. */
static void copied_license_file_cannot_renew_or_deactivate(void **state) {
    const char *g[] = {"--max-machines", "2", "--lease-seconds", "3600", "--renew-seconds", "1", NULL};
    assert_int_equal(env_group(&env, 113, g), 0);
    char keys[1][KEY_TEXT], *out, root[300], st[300], copy[400], from[500], to[500], keyfile[500];
    assert_int_equal(env_keys(&env, 113, 1, keys), 0);
    assert_int_equal(RUN("p1", &out, keys[0]), 0);
    free(out);
    env_machine(&env, "p1", root, st);
    assert_int_equal(mode_of(st, NULL), 0700);
    const char *files[] = {"license", "place-key.pem", "last-server", "lock"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) assert_int_equal(mode_of(st, files[i]), 0600);

    snprintf(copy, sizeof copy, "%s-copy", st);
    assert_int_equal(mkdir(copy, 0700), 0);
    snprintf(from, sizeof from, "%s/license", st);
    snprintf(to, sizeof to, "%s/license", copy);
    copy_file(from, to);
#define RUN_COPY(out, ...) \
    env_activate_cli(&env, root, copy, (const char *[]){__VA_ARGS__, "--server", env.target[0], NULL}, out)
    assert_int_equal(RUN_COPY(NULL, "status"), 0); /* the file itself is genuine */
    assert_int_equal(RUN_COPY(&out, "renew"), 18);
    assert_non_null(strstr(out, "\"result\":\"proof\""));
    assert_non_null(strstr(out, "bound to another place key"));
    free(out);
    assert_int_equal(RUN_COPY(&out, "deactivate"), 18);
    free(out);
    assert_int_equal(RUN_COPY(NULL, "status"), 0); /* refused, so the copy kept its license */
    assert_int_equal(RUN("p1", NULL, "renew"), 0); /* the installation that activated renews */

    /* The key makes the installation: copied with it, the copy renews. */
    snprintf(from, sizeof from, "%s/place-key.pem", st);
    snprintf(to, sizeof to, "%s/place-key.pem", copy);
    copy_file(from, to);
    assert_int_equal(RUN_COPY(NULL, "renew"), 0);
    unlink(to);

    /* Activating again with the product key binds a new key: maintain does
     * that when the place is bound to another key. */
    snprintf(keyfile, sizeof keyfile, "%s/product-key", copy);
    write_key_file(keys[0], keyfile);
    assert_int_equal(RUN_COPY(&out, "maintain", "--key-file", keyfile), 0);
    assert_non_null(strstr(out, "the place was bound to another place key; activated again"));
    free(out);
    assert_int_equal(RUN("p1", NULL, "renew"), 18); /* now the first installation's key is the stale one */
    assert_int_equal(RUN_COPY(&out, "deactivate"), 0);
    assert_int_equal(json_int(out, "activation_count"), 0);
    free(out);
    assert_int_equal(access(to, F_OK), -1); /* the place is gone, and so is its key */
#undef RUN_COPY
}

/* A place made before place keys existed (12 bytes, no key digest) and an
 * installation without place-key.pem: `maintain` renews once to bind a key,
 * even though the license is permanent, and from then on the place answers
 * to that key only. */
static void maintain_binds_a_place_made_before_place_keys(void **state) {
    assert_int_equal(env_group(&env, 114, NULL), 0); /* permanent */
    char keys[1][KEY_TEXT], *out, root[300], st[300], path[500], record[64];
    assert_int_equal(env_keys(&env, 114, 1, keys), 0);
    assert_int_equal(RUN("u1", &out, keys[0]), 0);
    snprintf(record, sizeof record, "{g:114}:k:%lld", json_int(out, "key_serial"));
    free(out);
    redisContext *ks = redis_fixture_connect(&env.a, "keystore", FIXTURE_PW_KEYSTORE);
    assert_non_null(ks);
    redisReply *r = redisCommand(ks, "HGETALL %s", record);
    assert_true(r && r->type == REDIS_REPLY_ARRAY && r->elements == 4);
    size_t i = strcmp(r->element[0]->str, "n") == 0 ? 2 : 0;
    assert_true(r->element[i + 1]->len >= 34); /* the place format of docs/machines.md; it starts as the old one */
    redisReply *w = redisCommand(ks, "HSET %s %b %b", record, r->element[i]->str, r->element[i]->len,
                                 r->element[i + 1]->str, (size_t)12); /* the old layout */
    assert_non_null(w);
    freeReplyObject(w);
    env_machine(&env, "u1", root, st);
    snprintf(path, sizeof path, "%s/place-key.pem", st);
    assert_int_equal(unlink(path), 0);

    assert_int_equal(RUN("u1", &out, "maintain"), 0);
    free(out);
    assert_int_equal(mode_of(st, "place-key.pem"), 0600);
    redisReply *after = redisCommand(ks, "HGET %s %b", record, r->element[i]->str, r->element[i]->len);
    assert_true(after && after->type == REDIS_REPLY_STRING);
    static const char unbound[16];
    assert_true(after->len >= 34);                                     /* rewritten in the current place format ... */
    assert_memory_not_equal(after->str + 12, unbound, sizeof unbound); /* ... and bound */
    freeReplyObject(after);
    freeReplyObject(r);
    redisFree(ks);
    assert_int_equal(RUN("u1", NULL, "maintain"), 0); /* nothing due now */
    assert_int_equal(RUN("u1", NULL, "deactivate"), 0);
}

/* An installer for one product refuses a key of another product of the
 * same vendor (exit 19, "product"), and a stored license of another
 * product is not trusted (exit 5). */
static void license_for_another_product_is_refused(void **state) {
    assert_int_equal(env_group(&env, 115, NULL), 0); /* "Demo Office", "Professional" */
    char keys[1][KEY_TEXT], *out;
    assert_int_equal(env_keys(&env, 115, 1, keys), 0);
    assert_int_equal(RUN("q1", &out, "--product", "Demo Studio", keys[0]), 19);
    assert_non_null(strstr(out, "\"result\":\"product\""));
    assert_non_null(strstr(out, "is for \\\"Demo Office\\\" edition \\\"Professional\\\""));
    free(out);
    assert_int_equal(RUN_LOCAL("q1", NULL, "status"), 4); /* nothing stored */
    assert_int_equal(RUN("q1", NULL, "--product", "Demo Office", "--edition", "Home", keys[0]), 19);
    assert_int_equal(RUN("q1", NULL, "--product", "Demo Office", "--edition", "Professional", keys[0]), 0);
    assert_int_equal(RUN_LOCAL("q1", NULL, "status", "--product", "Demo Office"), 0);
    assert_int_equal(RUN_LOCAL("q1", &out, "status", "--product", "Demo Studio"), 5);
    assert_non_null(strstr(out, "Demo Studio"));
    free(out);
}

/* --json stays valid JSON and round-trips every byte of the text it
 * reports: quotes and backslashes (a product name), control characters (a
 * path in a message), and bytes that are not UTF-8 (replaced, never copied). */
static void json_output_is_valid_whatever_the_text(void **state) {
    const char *g[] = {"--product", "Demo \"Quoted\" \\ Office", "--edition", "Pro\\fessional \"X\"", NULL};
    assert_int_equal(env_group(&env, 112, g), 0);
    char keys[1][KEY_TEXT], *out;
    assert_int_equal(env_keys(&env, 112, 1, keys), 0);
    assert_int_equal(RUN("j1", &out, keys[0]), 0);
    json_error_t jerr;
    json_t *doc = json_loads(out, 0, &jerr);
    if (!doc) fail_msg("not JSON (%s at %d): %s", jerr.text, jerr.position, out);
    json_t *lic = json_object_get(doc, "license");
    assert_true(json_is_object(lic));
    assert_string_equal(json_string_value(json_object_get(lic, "product")), "Demo \"Quoted\" \\ Office");
    assert_string_equal(json_string_value(json_object_get(lic, "edition")), "Pro\\fessional \"X\"");
    assert_int_equal(json_integer_value(json_object_get(lic, "key_group")), 112);
    assert_string_equal(json_string_value(json_object_get(doc, "result")), "ok");
    json_decref(doc);
    free(out);

    /* A state directory named with every awkward character: "not activated"
     * names it in the message. */
    char root[300], st[300], odd[600];
    env_machine(&env, "j2", root, st);
    snprintf(odd, sizeof odd, "%s/q\"uote b\\ack tab\t nl\n bell\a esc\x1b del\x7f", env.dir);
    const char *args[] = {"status", NULL};
    assert_int_equal(env_activate_cli(&env, root, odd, args, &out), 4);
    doc = json_loads(out, 0, &jerr);
    if (!doc) fail_msg("not JSON (%s at %d): %s", jerr.text, jerr.position, out);
    const char *msg = json_string_value(json_object_get(doc, "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, odd));
    assert_int_equal(json_integer_value(json_object_get(doc, "exit_code")), 4);
    assert_string_equal(json_string_value(json_object_get(doc, "result")), "not_activated");
    json_decref(doc);
    free(out);

    /* Bytes that are not UTF-8 cannot be JSON text: they are replaced. */
    snprintf(odd, sizeof odd, "%s/latin1-\xe9t\xe9-\xff", env.dir);
    assert_int_equal(env_activate_cli(&env, root, odd, args, &out), 4);
    doc = json_loads(out, 0, &jerr);
    if (!doc) fail_msg("not JSON (%s at %d): %s", jerr.text, jerr.position, out);
    msg = json_string_value(json_object_get(doc, "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "latin1-"));
    json_decref(doc);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(activate_status_renew_deactivate),
        cmocka_unit_test(reactivation_after_wipe_costs_no_place),
        cmocka_unit_test(tampered_and_foreign_licenses_are_refused),
        cmocka_unit_test(key_problems),
        cmocka_unit_test(failover_to_the_next_server),
        cmocka_unit_test(offline_request_fulfil_install),
        cmocka_unit_test(daemon_activates_at_start_and_stops_on_sigterm),
        cmocka_unit_test(typo_on_a_terminal_is_asked_again),
        cmocka_unit_test(tls_to_the_server),
        cmocka_unit_test(lapsed_lease_is_activated_again),
        cmocka_unit_test(revoked_key_is_not_activated_again),
        cmocka_unit_test(json_output_is_valid_whatever_the_text),
        cmocka_unit_test(copied_license_file_cannot_renew_or_deactivate),
        cmocka_unit_test(maintain_binds_a_place_made_before_place_keys),
        cmocka_unit_test(license_for_another_product_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
