/* config.c -- a file, then environment variables, then flags.
 *
 * Design: every layer writes into the same per-option slot in a fixed
 * order (default, file, environment, flags), so "flags win" is simply "flags
 * are applied last". Nothing is parsed lazily: all values, including the
 * booleans, are checked while loading, so a typo stops the program at
 * start-up with a message naming the flag, variable or file line instead of
 * surfacing as odd behaviour later. Values are copied, so the table, argv
 * and the environment may change after config_load returns.
 *
 * Lists: an option read with config_get_list may be repeated on the command
 * line (--peer a --peer b); in a file or the environment, where a name can
 * only appear once, it is one comma-separated value. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What we know about one option while and after loading. */
typedef struct opt_state {
    char *value;     /* effective value (malloc'd), NULL when unset */
    char **flags;    /* every value given as a flag, in order */
    size_t nflags;
    char **list;     /* `value` split on commas, for config_get_list */
    size_t nlist;
} opt_state;

struct config {
    const config_option *opts;  /* the program's table (static storage) */
    size_t n;                   /* entries in opts */
    opt_state *st;              /* one per option, same index */
    char **args;                /* positional arguments (point into argv) */
    size_t nargs;
    char prog[64];              /* first word of the usage line, for messages */
};

static const char *bool_true[] = {"1", "true", "yes", "on"};
static const char *bool_false[] = {"0", "false", "no", "off"};

/* 1 true, 0 false, -1 not a boolean. */
static int parse_bool(const char *s) {
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, bool_true[i]) == 0) return 1;
        if (strcasecmp(s, bool_false[i]) == 0) return 0;
    }
    return -1;
}

static int find_opt(const config *c, const char *name, size_t len) {
    for (size_t i = 0; i < c->n; i++)
        if (strlen(c->opts[i].name) == len && strncmp(c->opts[i].name, name, len) == 0) return (int)i;
    return -1;
}

static int set_value(opt_state *s, const char *v) {
    char *copy = strdup(v);
    if (!copy) return -1;
    free(s->value);
    s->value = copy;
    return 0;
}

/* PREFIX_NAME with dashes as underscores, upper case. */
static void env_name(const char *prefix, const char *name, char *buf, size_t n) {
    size_t pl = strlen(prefix);
    int sep = pl > 0 && prefix[pl - 1] != '_';
    snprintf(buf, n, "%s%s%s", prefix, sep ? "_" : "", name);
    for (char *p = buf + pl; *p; p++) *p = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
}

static void print_help(const char *usage, const config_option *opts, size_t n, const char *prefix) {
    char env[160], left[96];
    int w = 20;
    for (size_t i = 0; i < n; i++) {
        if (!opts[i].help) continue;
        int l = snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].metavar ? " " : "",
                         opts[i].metavar ? opts[i].metavar : "");
        if (l > w && l <= 26) w = l;
    }
    printf("Usage: %s\n\nOptions (flags override environment variables, which override the config "
           "file):\n", usage);
    for (size_t i = 0; i < n; i++) {
        const config_option *o = &opts[i];
        if (!o->help) continue;   /* accepted, but not this command's business */
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        env_name(prefix, o->name, env, sizeof env);
        if ((int)strlen(left) > w) printf("  %s\n  %-*s  %s\n", left, w, "", o->help);
        else printf("  %-*s  %s\n", w, left, o->help);
        if (o->default_value && *o->default_value) printf("  %-*s  default: %s; env: %s\n", w, "", o->default_value, env);
        else printf("  %-*s  env: %s\n", w, "", env);
    }
    env_name(prefix, "config", env, sizeof env);
    printf("  %-*s  %s\n  %-*s  env: %s\n", w, "--config FILE", "read 'name = value' lines from FILE "
           "('#' starts a comment)", w, "", env);
    printf("  %-*s  %s\n", w, "--help", "show this help and exit");
}

/* "PROG: error: WHAT DETAIL (see --help)" on stderr. */
static void cfg_error(const config *c, const char *what, const char *detail) {
    fprintf(stderr, "%s: error: %s%s%s (see --help)\n", c->prog, what, detail && *detail ? " " : "",
            detail ? detail : "");
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t l = strlen(s);
    while (l > 0 && isspace((unsigned char)s[l - 1])) s[--l] = '\0';
    return s;
}

/* Checks a value for option i (booleans must parse); `where` names the
 * source for the message. */
static int check_value(const config *c, int i, const char *v, const char *where) {
    if (c->opts[i].metavar || parse_bool(v) >= 0) return 0;
    fprintf(stderr, "%s: error: %s: option '%s' is a switch and takes true or false, not '%s'\n",
            c->prog, where, c->opts[i].name, v);
    return -1;
}

static int load_file(config *c, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: error: cannot read config file %s: %s\n", c->prog, path, strerror(errno));
        return -1;
    }
    char *line = NULL, where[600];
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        lineno++;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        char *s = trim(line);
        if (*s == '\0' || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            fprintf(stderr, "%s: error: %s: expected 'name = value', got '%s'\n", c->prog, where, s);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
            val[vl - 1] = '\0';
            val++;
        }
        for (char *p = key; *p; p++)
            if (*p == '_') *p = '-';
        int i = find_opt(c, key, strlen(key));
        if (i < 0) {
            fprintf(stderr, "%s: error: %s: unknown option '%s'\n", c->prog, where, key);
            rc = -1;
        } else if (check_value(c, i, val, where) != 0 || set_value(&c->st[i], val) != 0) {
            rc = -1;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

static int load_env(config *c, const char *prefix) {
    char env[160];
    for (size_t i = 0; i < c->n; i++) {
        env_name(prefix, c->opts[i].name, env, sizeof env);
        const char *v = getenv(env);
        if (!v) continue;
        if (check_value(c, (int)i, v, env) != 0 || set_value(&c->st[i], v) != 0) return -1;
    }
    return 0;
}

static int add_flag(config *c, int i, const char *v) {
    opt_state *s = &c->st[i];
    char **n = realloc(s->flags, (s->nflags + 1) * sizeof *n);
    if (!n) return -1;
    s->flags = n;
    if (!(s->flags[s->nflags] = strdup(v))) return -1;
    s->nflags++;
    return 0;
}

/* Handles argv[*k] = "--name[=value]"; may consume the next argument. */
static int parse_flag(config *c, int argc, char **argv, int *k, const char **config_path) {
    const char *arg = argv[*k] + 2, *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    const char *val = eq ? eq + 1 : NULL;
    if (len == 6 && strncmp(arg, "config", 6) == 0) {
        if (!val && *k + 1 >= argc) return cfg_error(c, "option --config needs a value (FILE)", NULL), -1;
        *config_path = val ? val : argv[++*k];
        return 0;
    }
    int i = find_opt(c, arg, len);
    int negated = 0;
    if (i < 0 && len > 3 && strncmp(arg, "no-", 3) == 0 && !val) {
        i = find_opt(c, arg + 3, len - 3);
        negated = i >= 0 && !c->opts[i].metavar;
        if (!negated) i = -1;
    }
    char flag[128];
    snprintf(flag, sizeof flag, "--%.*s", (int)len, arg);
    if (i < 0) return cfg_error(c, "unknown option", flag), -1;
    if (!c->opts[i].metavar) {
        if (!val) val = negated ? "false" : "true";
        if (check_value(c, i, val, flag) != 0) return -1;
    } else if (!val) {
        if (*k + 1 >= argc || (strncmp(argv[*k + 1], "--", 2) == 0 && argv[*k + 1][2] != '\0')) {
            fprintf(stderr, "%s: error: option %s needs a value (%s) (see --help)\n", c->prog, flag,
                    c->opts[i].metavar);
            return -1;
        }
        val = argv[++*k];
    }
    return add_flag(c, i, val);
}

static int parse_argv(config *c, int argc, char **argv, const char **config_path) {
    c->args = calloc((size_t)argc + 1, sizeof *c->args);
    if (!c->args) return -1;
    int only_args = 0;
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];
        if (only_args || a[0] != '-' || strcmp(a, "-") == 0) {
            c->args[c->nargs++] = argv[k];
        } else if (strcmp(a, "--") == 0) {
            only_args = 1;
        } else if (a[1] != '-') {
            fprintf(stderr, "%s: error: unknown option %s (options are spelled --name) (see --help)\n", c->prog, a);
            return -1;
        } else if (parse_flag(c, argc, argv, &k, config_path) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Splits `v` on commas into trimmed, non-empty items. */
static int split_list(opt_state *s) {
    if (!s->value) return 0;
    size_t n = 1;
    for (const char *p = s->value; *p; p++) n += *p == ',';
    s->list = calloc(n, sizeof *s->list);
    if (!s->list) return -1;
    char *copy = strdup(s->value), *save = NULL;
    if (!copy) return -1;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *t = trim(tok);
        if (*t && !(s->list[s->nlist] = strdup(t))) return free(copy), -1;
        if (*t) s->nlist++;
    }
    free(copy);
    return 0;
}

static int wants_help(int argc, char **argv) {
    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--") == 0) return 0;
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) return 1;
    }
    return 0;
}

config *config_load(const char *usage, const config_option *opts, size_t n_opts,
                    const char *env_prefix, int argc, char **argv, int *exit_code) {
    *exit_code = 2;
    if (!env_prefix) env_prefix = "";
    if (wants_help(argc, argv)) {
        print_help(usage, opts, n_opts, env_prefix);
        *exit_code = 0;
        return NULL;
    }
    config *c = calloc(1, sizeof *c);
    if (!c || !(c->st = calloc(n_opts ? n_opts : 1, sizeof *c->st))) {
        free(c);
        fprintf(stderr, "out of memory\n");
        return NULL;
    }
    c->opts = opts;
    c->n = n_opts;
    sscanf(usage ? usage : "program", "%63s", c->prog);
    const char *config_path = NULL;
    char env[160];
    env_name(env_prefix, "config", env, sizeof env);
    int ok = parse_argv(c, argc, argv, &config_path) == 0;
    for (size_t i = 0; ok && i < n_opts; i++)
        if (opts[i].default_value && set_value(&c->st[i], opts[i].default_value) != 0) ok = 0;
    if (ok && !config_path) config_path = getenv(env);
    if (ok && config_path && *config_path) ok = load_file(c, config_path) == 0;
    if (ok) ok = load_env(c, env_prefix) == 0;
    for (size_t i = 0; ok && i < n_opts; i++)
        if (c->st[i].nflags && set_value(&c->st[i], c->st[i].flags[c->st[i].nflags - 1]) != 0) ok = 0;
    for (size_t i = 0; ok && i < n_opts; i++)
        if (split_list(&c->st[i]) != 0) ok = 0;
    if (!ok) {
        config_free(c);
        return NULL;
    }
    *exit_code = 0;
    return c;
}

void config_free(config *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        opt_state *s = &c->st[i];
        free(s->value);
        for (size_t j = 0; j < s->nflags; j++) free(s->flags[j]);
        free(s->flags);
        for (size_t j = 0; j < s->nlist; j++) free(s->list[j]);
        free(s->list);
    }
    free(c->st);
    free(c->args);
    free(c);
}

const char *config_get(const config *c, const char *name) {
    int i = find_opt(c, name, strlen(name));
    return i < 0 ? NULL : c->st[i].value;
}

long long config_get_int(const config *c, const char *name, long long min, long long max, bool *ok) {
    const char *v = config_get(c, name);
    if (!v) return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end != '\0' || errno == ERANGE) {
        fprintf(stderr, "%s: error: option --%s: '%s' is not an integer\n", c->prog, name, v);
    } else if (x < min || x > max) {
        fprintf(stderr, "%s: error: option --%s: %lld is out of range (%lld..%lld)\n", c->prog, name,
                x, min, max);
    } else {
        return x;
    }
    if (ok) *ok = false;
    return -1;
}

double config_get_double(const config *c, const char *name, double min, double max, bool *ok) {
    const char *v = config_get(c, name);
    if (!v) return 0;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || errno == ERANGE || x != x) {
        fprintf(stderr, "%s: error: option --%s: '%s' is not a number\n", c->prog, name, v);
    } else if (x < min || x > max) {
        fprintf(stderr, "%s: error: option --%s: %g is out of range (%g..%g)\n", c->prog, name, x,
                min, max);
    } else {
        return x;
    }
    if (ok) *ok = false;
    return -1;
}

bool config_get_bool(const config *c, const char *name) {
    const char *v = config_get(c, name);
    return v && parse_bool(v) == 1;
}

size_t config_get_list(const config *c, const char *name, const char *const **values) {
    int i = find_opt(c, name, strlen(name));
    if (i < 0) {
        *values = NULL;
        return 0;
    }
    const opt_state *s = &c->st[i];
    if (s->nflags) {
        *values = (const char *const *)s->flags;
        return s->nflags;
    }
    *values = (const char *const *)s->list;
    return s->nlist;
}

size_t config_args(const config *c, char *const **args) {
    *args = c->args;
    return c->nargs;
}
