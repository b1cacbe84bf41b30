/* fuzz_config.c -- libFuzzer target for the configuration loader
 * (common/config.c): a config file's text, and command-line flags beside it,
 * through the public config_load.
 *
 * The input is the file's text, then optionally a NUL and NUL-separated
 * command-line arguments. The text goes into a memfd opened by path
 * (/proc/self/fd/N), so config_load reads it with fopen/getline exactly as
 * it reads a file, without touching the disk. Arguments that mention
 * "config" are dropped so the only file read is ours, and so are "--help"
 * and "-h" (the help text does not depend on the input, and printing it
 * for every such input would flood stdout). config.c reports bad
 * input on stderr; run with -close_fd_mask=2 to keep the log readable (the
 * ctest entry does).
 *
 * The target checks:
 *   - config_load returns a config exactly when *exit_code is 0;
 *   - without arguments, the result matches a small model of the documented
 *     file format (config.h): "name = value" lines, blanks and '#' lines
 *     skipped, names with '_' or '-', one pair of matching quotes stripped,
 *     the last line for a name wins, a switch takes only true/false/1/0/
 *     yes/no/on/off, anything else fails the load -- value for value,
 *     defaults included;
 *   - every switch's value is one of those spellings and config_get_bool
 *     agrees with it; list items from the file are non-empty, trimmed and
 *     comma-free; the typed getters never crash. */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_util.h"

static const config_option opts[] = {
    {"listen", "ADDR", "address to serve on", "[::]:50051"},
    {"redis-url", "URL", "activation store", "redis://127.0.0.1:6379"},
    {"workers", "N", "worker threads", "4"},
    {"sample-rate", "PCT", "a percentage", NULL},
    {"verbose", NULL, "log more", NULL},
    {"tls", NULL, "a switch that defaults on", "true"},
    {"peer", "ADDR", "a peer (repeatable)", NULL},
    {"secret-thing", "X", NULL, NULL}, /* hidden from --help */
};
#define NOPTS (sizeof opts / sizeof opts[0])
#define PREFIX "PA_FUZZCFG"
#define MAX_ARGS 16

static int memfd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    memfd = memfd_create("fuzz-config", MFD_CLOEXEC);
    if (memfd < 0) {
        perror("memfd_create");
        exit(1);
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    /* nothing from the environment: the model knows only the file */
    char env[64];
    for (size_t i = 0; i < NOPTS; i++) {
        snprintf(env, sizeof env, PREFIX "_%s", opts[i].name);
        for (char *p = env; *p; p++) *p = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        unsetenv(env);
    }
    unsetenv(PREFIX "_CONFIG");
    return 0;
}

/* ---- the model of the file format -------------------------------------- */

static const char *const spellings[] = {"1", "true", "yes", "on", "0", "false", "no", "off"};

/* 1 true, 0 false, -1 neither. */
static int model_bool(const char *s) {
    for (size_t i = 0; i < 8; i++)
        if (strcasecmp(s, spellings[i]) == 0) return i < 4;
    return -1;
}

static int model_find(const char *name, size_t len) {
    for (size_t i = 0; i < NOPTS; i++)
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0) return (int)i;
    return -1;
}

/* [start, end) without surrounding white space. */
static void model_trim(const char **start, const char **end) {
    while (*start < *end && isspace((unsigned char)**start)) (*start)++;
    while (*end > *start && isspace((unsigned char)(*end)[-1])) (*end)--;
}

/* Fills values[] (malloc'd or NULL) as the file sets them over the
 * defaults; false when the file must be refused. */
static bool model_load(const char *text, char *values[NOPTS]) {
    for (size_t i = 0; i < NOPTS; i++) values[i] = opts[i].default_value ? strdup(opts[i].default_value) : NULL;
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        const char *end = nl ? nl : line + strlen(line), *s = line;
        line = nl ? nl + 1 : end;
        model_trim(&s, &end);
        if (s == end || *s == '#') continue;
        const char *eq = memchr(s, '=', (size_t)(end - s));
        if (!eq) return false;
        const char *ks = s, *ke = eq, *vs = eq + 1, *ve = end;
        model_trim(&ks, &ke);
        model_trim(&vs, &ve);
        if (ve - vs >= 2 && (*vs == '"' || *vs == '\'') && ve[-1] == *vs) vs++, ve--;
        char name[256];
        size_t kl = (size_t)(ke - ks);
        if (kl >= sizeof name) return false; /* no option has such a name */
        for (size_t i = 0; i < kl; i++) name[i] = ks[i] == '_' ? '-' : ks[i];
        int i = model_find(name, kl);
        if (i < 0) return false;
        char *v = strndup(vs, (size_t)(ve - vs));
        CHECK(v);
        if (!opts[i].metavar && model_bool(v) < 0) {
            free(v);
            return false;
        }
        free(values[i]);
        values[i] = v;
    }
    return true;
}

/* ---- the target ------------------------------------------------------------ */

static void check_loaded(const config *c, const char *const *args, size_t nargs) {
    for (size_t i = 0; i < NOPTS; i++) {
        const char *v = config_get(c, opts[i].name);
        if (!opts[i].metavar) {
            CHECK(!v || model_bool(v) >= 0);
            CHECK(config_get_bool(c, opts[i].name) == (v && model_bool(v) == 1));
        }
        bool ok = true;
        (void)config_get_int(c, opts[i].name, -1000, 1000, &ok);
        (void)config_get_double(c, opts[i].name, 0, 100, &ok);
    }
    /* list items: from flags as given, else split from the value */
    bool peer_flag = false;
    for (size_t k = 0; k < nargs; k++) peer_flag |= strstr(args[k], "peer") != NULL;
    const char *const *items;
    size_t n = config_get_list(c, "peer", &items);
    for (size_t k = 0; !peer_flag && k < n; k++) {
        size_t len = strlen(items[k]);
        CHECK(len > 0 && !strchr(items[k], ','));
        CHECK(!isspace((unsigned char)items[k][0]) && !isspace((unsigned char)items[k][len - 1]));
    }
    char *const *pos;
    size_t np = config_args(c, &pos);
    CHECK(np <= nargs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the file's text up to the first NUL, then the arguments */
    size_t text_len = strnlen((const char *)data, size);
    char *text = fuzz_text(data, text_len);
    char *rest = fuzz_text(data + text_len, size - text_len); /* starts with the NUL, if any */
    size_t rest_len = size - text_len;
    char *argv[3 + MAX_ARGS + 1] = {"fuzz-config", "--config", path};
    int argc = 3;
    const char *args[MAX_ARGS];
    size_t nargs = 0;
    for (size_t i = 1; i < rest_len && nargs < MAX_ARGS;) {
        char *a = rest + i;
        size_t len = strnlen(a, rest_len - i);
        a[len] = '\0'; /* the copy has a NUL at rest_len */
        if (!strstr(a, "config") && strcmp(a, "--help") != 0 && strcmp(a, "-h") != 0) {
            argv[argc++] = a;
            args[nargs++] = a;
        }
        i += len + 1;
    }
    argv[argc] = NULL;

    CHECK(ftruncate(memfd, 0) == 0);
    CHECK(pwrite(memfd, text, text_len, 0) == (ssize_t)text_len);

    int exit_code = -1;
    config *c = config_load("fuzz-config [OPTIONS]", opts, NOPTS, PREFIX, argc, argv, &exit_code);
    if (!c) {
        CHECK(exit_code == 2);
    } else {
        CHECK(exit_code == 0);
        check_loaded(c, args, nargs);
    }

    if (nargs == 0) {
        char *values[NOPTS];
        bool model_ok = model_load(text, values);
        CHECK(model_ok == (c != NULL));
        for (size_t i = 0; c && i < NOPTS; i++) {
            const char *v = config_get(c, opts[i].name);
            CHECK((v == NULL) == (values[i] == NULL));
            CHECK(!v || strcmp(v, values[i]) == 0);
        }
        for (size_t i = 0; i < NOPTS; i++) free(values[i]);
    }
    config_free(c);
    free(text);
    free(rest);
    return 0;
}
