/* config.h -- one way to configure every program: a file, then environment
 * variables, then command-line flags, each overriding the one before.
 *
 * A program declares its options once in a table:
 *   static const config_option opts[] = {
 *     {"listen", "ADDR", "address:port to serve gRPC on", "[::]:50051"},
 *     {"redis-url", "URL", "activation store", "redis://127.0.0.1:6379"},
 *     ...
 *   };
 * and they can be set as
 *   file     listen = [::]:50051          (--config FILE; '#' comments)
 *   env      PA_ACTIVATION_LISTEN=...     (prefix given by the program)
 *   flags    --listen [::]:50051  or  --listen=[::]:50051
 * `--help` prints the table. An option may be given several times on the
 * command line when the program reads it as a list (config_get_list).
 * A boolean option (metavar NULL) is set by `--name` alone, cleared by
 * `--no-name`, and takes true/false/1/0/yes/no/on/off in files and env.
 * The config file may also be named by the environment (PREFIX_CONFIG). */
#ifndef PA_CONFIG_H
#define PA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef struct config_option {
    const char *name;         /* long flag name without "--"; file key; env suffix */
    const char *metavar;      /* placeholder shown in --help; NULL for a boolean flag */
    const char *help;         /* one line; NULL hides the option from --help (it is
                                 still accepted, e.g. from a config file shared by
                                 several commands) */
    const char *default_value;/* NULL: unset unless given */
} config_option;

typedef struct config config;

/* Loads the configuration. On --help prints usage to stdout and sets
 * *exit_code to 0; on a bad flag, file or value prints the error to stderr
 * and sets *exit_code to 2; in both cases returns NULL. `usage` is the first
 * help line, e.g. "activation-server [OPTIONS]". Positional arguments are
 * kept (config_args). */
config *config_load(const char *usage, const config_option *opts, size_t n_opts,
                    const char *env_prefix, int argc, char **argv, int *exit_code);
void config_free(config *c);

/* The effective value, or NULL when unset. */
const char *config_get(const config *c, const char *name);
/* Integer value with range check; on a bad value prints an error naming the
 * option and returns -1 (and *ok = false). *ok is never set to true, so one
 * flag can collect the result of several calls. Unset returns 0. */
long long config_get_int(const config *c, const char *name, long long min, long long max, bool *ok);
/* The same for a decimal number (e.g. a percentage). */
double config_get_double(const config *c, const char *name, double min, double max, bool *ok);
bool config_get_bool(const config *c, const char *name);
/* All values given for a repeatable option (flags, else the file/env value
 * split on commas). Valid until config_free. */
size_t config_get_list(const config *c, const char *name, const char *const **values);

/* Positional arguments left after the flags. */
size_t config_args(const config *c, char *const **args);

#endif
