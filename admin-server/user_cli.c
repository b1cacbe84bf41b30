/* user_cli.c -- `admin-server user add|list|passwd|role|remove`
 * (user_cli.h). Parsing and printing only: the rules are user_store.c's,
 * shared with the /api/v1/users routes.
 *
 * A password comes from --password-file (its first line) or, without it,
 * one line of standard input (not echoed on a terminal); it never appears
 * on the command line, where other users could read it. Changes are
 * written to the admin trail as user "(cli)" from address "local". */
#include "user_cli.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "admin_app.h"
#include "trail.h"
#include "user_store.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

static const config_option USER_OPTIONS[] = {
    {"role", "ROLE", "viewer, operator or admin (add)", NULL},
    {"password-file", "FILE", "read the password from the first line of FILE (default: standard input)", NULL},
};
#define N_USER_OPTIONS (sizeof USER_OPTIONS / sizeof *USER_OPTIONS)

/* The daemon options a `user` command's --help shows; the rest are hidden. */
static const char *const SHOWN[] = {"redis-url", "redis-password-file", "config", NULL};

static const char USAGE[] =
    "admin-server user add NAME --role viewer|operator|admin [--password-file F]\n"
    "       admin-server user list | passwd NAME [--password-file F] | role NAME ROLE | remove NAME\n\n"
    "Operator accounts of the admin server, in its Redis A (the server's --config, PA_ADMIN_*\n"
    "variables and --redis-url apply). Names are 1 to 32 of a-z 0-9 . _ -; passwords at least\n"
    "12 characters. Exit codes: 0 done, 1 failed, 2 usage error.";

/* One line of `f` into buf without its newline; -1 when there is none. */
static int read_line(FILE *f, char *buf, size_t n) {
    if (!fgets(buf, (int)n, f)) return -1;
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

static int read_password(const config *c, char *buf, size_t n) {
    const char *path = config_get(c, "password-file");
    if (path && *path) {
        FILE *f = fopen(path, "r");
        int rc = f ? read_line(f, buf, n) : -1;
        if (f) fclose(f);
        if (rc) fprintf(stderr, "admin-server user: error: --password-file %s: cannot read a line\n", path);
        return rc;
    }
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        fputs("password: ", stderr);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        (void)tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    int rc = read_line(stdin, buf, n);
    if (tty) {
        (void)tcsetattr(STDIN_FILENO, TCSANOW, &old);
        fputs("\n", stderr);
    }
    if (rc) fprintf(stderr, "admin-server user: error: no password on standard input\n");
    return rc;
}

static int exit_of(user_result r) { return r == USER_OK ? EXIT_OK : r == USER_BAD ? EXIT_USAGE : EXIT_FAILED; }

/* Trails the change (as user "(cli)" from "local"), prints its outcome and
 * returns the exit code. */
static int report(rstore *store, const char *action, const char *name, user_result r, const char *err,
                  const char *done) {
    if (r != USER_BAD) (void)trail_append(store, "(cli)", action, name, "local", r == USER_OK ? "ok" : err);
    if (r == USER_OK) printf("%s\n", done);
    else fprintf(stderr, "admin-server user: error: %s\n", err);
    return exit_of(r);
}

static int cmd_list(rstore *r) {
    user_record *list;
    size_t n;
    char err[160];
    user_result res = user_list(r, &list, &n, err, sizeof err);
    if (res != USER_OK) {
        fprintf(stderr, "admin-server user: error: %s\n", err);
        return EXIT_FAILED;
    }
    for (size_t i = 0; i < n; i++) {
        char when[32];
        time_t t = (time_t)list[i].created_at;
        struct tm tm;
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
        printf("%s\t%s\t%s\n", list[i].name, user_role_name(list[i].role), when);
    }
    free(list);
    return EXIT_OK;
}

/* Runs the command with its positional arguments args[0..n). */
static int run(const char *cmd, char *const *args, size_t n, const config *c, const admin_app *app, rstore *r) {
    char err[160] = "", done[128], pw[USER_PASSWORD_MAX + 2] = "";
    int code = EXIT_USAGE;
    const char *name = n > 0 ? args[0] : "";
    snprintf(done, sizeof done, "user %s: %s done", name, cmd);
    if (strcmp(cmd, "list") == 0 && n == 0) code = cmd_list(r);
    else if (strcmp(cmd, "add") == 0 && n == 1) {
        const char *role = config_get(c, "role");
        if (!role) fprintf(stderr, "admin-server user: error: --role is required (viewer, operator or admin)\n");
        else if (read_password(c, pw, sizeof pw) == 0)
            code = report(r, "user.add", name, user_add(r, app, name, role, pw, err, sizeof err), err, done);
    } else if (strcmp(cmd, "passwd") == 0 && n == 1) {
        if (read_password(c, pw, sizeof pw) == 0)
            code = report(r, "user.passwd", name, user_set_password(r, app, name, pw, err, sizeof err), err, done);
    } else if (strcmp(cmd, "role") == 0 && n == 2) {
        code = report(r, "user.role", name, user_set_role(r, name, args[1], err, sizeof err), err, done);
    } else if (strcmp(cmd, "remove") == 0 && n == 1) {
        code = report(r, "user.remove", name, user_remove(r, name, err, sizeof err), err, done);
    } else {
        fprintf(stderr, "admin-server user %s: error: wrong arguments (see --help)\n", cmd);
    }
    OPENSSL_cleanse(pw, sizeof pw);
    return code;
}

static const char *const COMMANDS[] = {"add", "list", "passwd", "role", "remove", NULL};

static bool known(const char *cmd) {
    for (const char *const *c = COMMANDS; *c; c++)
        if (strcmp(*c, cmd) == 0) return true;
    return false;
}

/* The command's options, then the daemon's (hidden unless SHOWN). */
static config_option *table_for(const daemon_spec *spec, size_t *n) {
    size_t nd;
    config_option *d = daemon_options(spec, &nd);
    config_option *t = d ? calloc(N_USER_OPTIONS + nd, sizeof *t) : NULL;
    if (t) {
        memcpy(t, USER_OPTIONS, sizeof USER_OPTIONS);
        for (size_t i = 0; i < nd; i++) {
            t[N_USER_OPTIONS + i] = d[i];
            bool shown = false;
            for (const char *const *s = SHOWN; *s; s++) shown |= strcmp(*s, d[i].name) == 0;
            if (!shown) t[N_USER_OPTIONS + i].help = NULL;
        }
        *n = N_USER_OPTIONS + nd;
    }
    free(d);
    return t;
}

int user_cli_main(int argc, char **argv, const daemon_spec *spec) {
    const char *cmd = argc > 1 ? argv[1] : NULL;
    if (!cmd || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fprintf(cmd ? stdout : stderr, "%s\n", USAGE);
        return cmd ? EXIT_OK : EXIT_USAGE;
    }
    if (!known(cmd)) {
        fprintf(stderr, "admin-server user: error: unknown command '%s'\n\n%s\n", cmd, USAGE);
        return EXIT_USAGE;
    }
    size_t n = 0;
    int code = EXIT_FAILED;
    config_option *table = table_for(spec, &n);
    config *c = table ? config_load(USAGE, table, n, spec->env_prefix, argc - 1, argv + 1, &code) : NULL;
    admin_app app;
    if (c && (code = admin_app_configure(&app, c)) == 0) {
        char err[256];
        rstore *r = admin_store_open(&app, false, err, sizeof err);
        char *const *args;
        size_t nargs = config_args(c, &args);
        if (!r) fprintf(stderr, "admin-server user: error: Redis: %s\n", err);
        code = r ? run(cmd, args, nargs, c, &app, r) : EXIT_FAILED;
        rstore_free(r);
    }
    config_free(c);
    free(table);
    return code;
}
