/* test_client_machines.c -- `activate machines` and `activate release`
 * against a real activation server (real Redis, keys and a group from the
 * keystore CLI), as a user whose key is full and whose old machine is dead
 * would run them: the new machine is refused, lists the key's machines
 * (hostnames and times, never machine ids), releases the dead one by its
 * number and activates. Also: a number out of range, an unknown handle,
 * --key-file, and a deactivation over the key's budget (exit 9 saying when
 * the next is allowed, the license kept). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "client_env.h"

static client_env env;

static int setup(void **state) {
    if (env_start(&env) == 0 && env_start_server(&env, 0, NULL) == 0) return 0;
    env_stop(&env); /* cmocka skips the teardown when setup fails */
    return -1;
}

static int teardown(void **state) {
    env_stop(&env);
    return 0;
}

/* `activate ARGS... --server SERVER0` on machine `m`; returns the exit code. */
#define RUN(m, out, ...) run_on(m, out, (const char *[]){__VA_ARGS__, "--server", env.target[0], NULL})

static int run_on(const char *machine, char **out, const char **args) {
    char root[300], state[300];
    env_machine(&env, machine, root, state);
    return env_activate_cli(&env, root, state, args, out);
}

/* This machine's id, as `activate machine-id` shows it. */
static void machine_id(const char *machine, char id[80]) {
    char *out;
    assert_int_equal(run_on(machine, &out, (const char *[]){"machine-id", NULL}), 0);
    json_str(out, "machine_id", id, 80);
    assert_int_equal(strlen(id), 64);
    free(out);
}

/* The listing of `activate machines`, parsed. */
static json_t *machines(const char *machine, const char *key) {
    char *out;
    assert_int_equal(RUN(machine, &out, "machines", "--key", key), 0);
    json_error_t err;
    json_t *o = json_loads(out, 0, &err);
    free(out);
    assert_non_null(o);
    return o;
}

static void full_key_dead_machine_released(void **state) {
    const char *g[] = {"--max-machines", "2", "--max-transfers", "2", "--churn-period", "3600", NULL};
    assert_int_equal(env_group(&env, 301, g), 0);
    char keys[1][KEY_TEXT], *out, dead_id[80], live_id[80];
    assert_int_equal(env_keys(&env, 301, 1, keys), 0);
    const char *key = keys[0];
    assert_int_equal(RUN("dead", NULL, key), 0);
    sleep(1); /* the dead machine is seen first, so it lists first */
    assert_int_equal(RUN("live", NULL, key), 0);
    assert_int_equal(RUN("new", NULL, key), 9); /* the key is full */
    machine_id("dead", dead_id);
    machine_id("live", live_id);

    /* The new machine lists the key: two machines, neither of them it. */
    assert_int_equal(RUN("new", &out, "machines", "--key", key), 0);
    assert_null(strstr(out, dead_id));
    assert_null(strstr(out, live_id));
    assert_null(strstr(out, key));
    free(out);
    json_t *l = machines("new", key);
    json_t *list = json_object_get(l, "machines");
    assert_int_equal(json_array_size(list), 2);
    assert_int_equal(json_integer_value(json_object_get(l, "max_machines")), 2);
    assert_int_equal(json_integer_value(json_object_get(l, "releases_left")), 2);
    char host[256] = "";
    assert_int_equal(gethostname(host, sizeof host - 1), 0);
    for (size_t i = 0; i < 2; i++) {
        json_t *m = json_array_get(list, i);
        assert_int_equal(json_integer_value(json_object_get(m, "number")), (json_int_t)i + 1);
        assert_false(json_is_true(json_object_get(m, "this_machine")));
        assert_true(json_integer_value(json_object_get(m, "last_seen")) > (json_int_t)time(NULL) - 60);
        assert_int_equal(strncmp(json_string_value(json_object_get(m, "hostname")), host, 64), 0);
    }
    char dead_handle[32];
    snprintf(dead_handle, sizeof dead_handle, "%s",
             json_string_value(json_object_get(json_array_get(list, 0), "handle")));
    json_decref(l);

    /* The live machine sees itself as number 2, reading the key from a file. */
    char key_file[300];
    snprintf(key_file, sizeof key_file, "%s/machines-key", env.dir);
    FILE *f = fopen(key_file, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", key);
    fclose(f);
    assert_int_equal(RUN("live", &out, "machines", "--key-file", key_file), 0);
    json_t *o = json_loads(out, 0, NULL);
    free(out);
    assert_true(json_is_true(json_object_get(json_array_get(json_object_get(o, "machines"), 1), "this_machine")));
    json_decref(o);
    /* ... and for people: numbered, in UTC, this machine marked. */
    assert_int_equal(RUN("live", &out, "machines", "--key-file", key_file, "--no-json"), 0);
    assert_non_null(strstr(out, "LAST SEEN (UTC)"));
    assert_non_null(strstr(out, "\n  1   "));
    assert_non_null(strstr(out, "\n  2   "));
    assert_non_null(strstr(out, "Z  never\n"));
    assert_non_null(strstr(out, " this machine\n"));
    assert_non_null(strstr(out, "2 of 2 places taken; 2 releases left this period."));
    free(out);

    /* No machine 3; release number 1, the dead one, and say so. */
    assert_int_equal(RUN("new", NULL, "release", "3", "--key", key), 2);
    assert_int_equal(RUN("new", NULL, "release", "--key", key), 2);
    assert_int_equal(RUN("new", &out, "release", "1", "--key", key), 0);
    o = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(o);
    json_t *r = json_object_get(o, "released");
    assert_string_equal(json_string_value(json_object_get(r, "handle")), dead_handle);
    assert_int_equal(json_integer_value(json_object_get(r, "number")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "activation_count")), 1);
    json_decref(o);

    /* The new machine takes the freed place; the handle names nothing now. */
    assert_int_equal(RUN("new", NULL, key), 0);
    assert_int_equal(RUN("new", &out, "release", "--handle", dead_handle, "--key", key), 11);
    free(out);
    l = machines("new", key);
    assert_int_equal(json_array_size(json_object_get(l, "machines")), 2);
    assert_int_equal(json_integer_value(json_object_get(l, "releases_left")), 1);
    json_decref(l);
}

static void deactivation_limit_keeps_the_license(void **state) {
    const char *g[] = {"--max-machines", "2", "--max-deactivations", "1", "--churn-period", "3600", NULL};
    assert_int_equal(env_group(&env, 302, g), 0);
    char keys[1][KEY_TEXT], *out;
    assert_int_equal(env_keys(&env, 302, 1, keys), 0);
    assert_int_equal(RUN("d1", NULL, keys[0]), 0);
    assert_int_equal(RUN("d1", NULL, "deactivate"), 0);
    assert_int_equal(RUN("d1", NULL, keys[0]), 0);
    assert_int_equal(RUN("d1", &out, "deactivate"), 9);
    assert_non_null(strstr(out, "next deactivation allowed at 20"));
    assert_true(json_int(out, "retry_after") > 3500);
    free(out);
    assert_int_equal(run_on("d1", NULL, (const char *[]){"status", NULL}), 0); /* still activated */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_key_dead_machine_released),
        cmocka_unit_test(deactivation_limit_keeps_the_license),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
