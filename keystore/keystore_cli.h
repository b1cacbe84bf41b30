/* keystore_cli.h -- what the keystore CLI's command files share: the exit
 * codes, the error and JSON helpers, the store options every command
 * accepts, and the shape of a command table entry (keystore_cli.c
 * dispatches; order_cli.c and usage_cli.c hold the volume commands). */
#ifndef PA_KEYSTORE_CLI_H
#define PA_KEYSTORE_CLI_H

#include <jansson.h>
#include <stddef.h>

#include "config.h"

#define ENV_PREFIX "PA_KEYSTORE"

/* The exit codes of every command. A key that is not genuine or does not
 * decode is an answer (1), not a usage error: the command was given right. */
enum {
    EXIT_OK = 0,
    EXIT_FAILED = 1, /* the operation failed, or a check said no */
    EXIT_USAGE = 2,  /* unknown command or option, extra argument, missing required option, malformed value */
};
#define EXIT_HELP                                                                                        \
    "Exit codes: 0 success; 1 the operation failed or the answer is no (key not genuine, group\n"        \
    "not found, store unreachable); 2 usage error (unknown command or option, extra argument, missing\n" \
    "required option, malformed value)."

/* Prints the error and returns `code`: `return fail(EXIT_USAGE, ...)`. */
__attribute__((format(printf, 2, 3))) int fail(int code, const char *fmt, ...);

/* The two ways a command goes wrong, spelled out at every error path. */
#define die(...) fail(EXIT_FAILED, __VA_ARGS__)
#define usage_error(...) fail(EXIT_USAGE, __VA_ARGS__)

/* Writes one JSON value as a compact line, keys in insertion order, and
 * releases it. NULL (a failed json_pack) means the value could not be built. */
int print_json(json_t *j, const char *what);

/* Parses a decimal number within [0, max]; -1 if not one. Digits only, so
 * no sign, blank or "0x" slips through as strtoll would let it. */
long long parse_num(const char *s, long long max);

/* EXIT_USAGE if more than `max` positional arguments were given. */
int check_args(const config *c, size_t max);

/* Connects to the store of option `url_opt` (password file `pw_opt`). A URL
 * that does not parse is a usage error; one that parses but does not
 * connect (or authenticate) is a failed operation. */
struct rstore;
int open_store(const config *c, const char *url_opt, const char *pw_opt, struct rstore **out);

#define STORE_OPT_A_URL                                         \
    {                                                           \
        "activation-redis", "URL",                              \
            "activation store (Redis A) as its keystore user, " \
            "redis://keystore:PASSWORD@HOST:PORT",              \
            NULL                                                \
    }
#define STORE_OPT_B_URL                                    \
    {                                                      \
        "audit-redis", "URL",                              \
            "audit store (Redis B) as its keystore user, " \
            "redis://keystore:PASSWORD@HOST:PORT",         \
            NULL                                           \
    }
/* Each password option comes with the sentinels' password for a
 * redis-sentinel:// URL (docs/operations.md, "Redis Sentinel"). */
#define STORE_OPT_A_PW                                                                                            \
    {"activation-redis-password-file", "FILE", "read the Redis A password from FILE instead of the URL", NULL}, { \
        "activation-redis-sentinel-password-file", "FILE",                                                        \
            "with a redis-sentinel:// URL: the Redis A sentinels' password", NULL                                 \
    }
#define STORE_OPT_B_PW                                                                                                 \
    {"audit-redis-password-file", "FILE", "read the Redis B password from FILE instead of the URL", NULL}, {           \
        "audit-redis-sentinel-password-file", "FILE", "with a redis-sentinel:// URL: the Redis B sentinels' password", \
            NULL                                                                                                       \
    }
#define STORE_OPT_A_KEK                                   \
    {                                                     \
        "activation-kek", "FILE",                         \
            "key-encryption key of the activation store " \
            "(keystore kek create)",                      \
            NULL                                          \
    }
#define STORE_OPT_B_KEK \
    { "audit-kek", "FILE", "key-encryption key of the audit store", NULL }
#define HIDDEN(name, meta) \
    { name, meta, NULL, NULL }
/* Store options a command does not use are still accepted (hidden), so one
 * config file or environment serves every command. */
#define HIDDEN_STORE_OPTS                                                                                              \
    HIDDEN("activation-redis", "URL"), HIDDEN("audit-redis", "URL"), HIDDEN("activation-redis-password-file", "FILE"), \
        HIDDEN("audit-redis-password-file", "FILE"), HIDDEN("activation-redis-sentinel-password-file", "FILE"),        \
        HIDDEN("audit-redis-sentinel-password-file", "FILE"), HIDDEN("activation-kek", "FILE"),                        \
        HIDDEN("audit-kek", "FILE")

typedef struct command {
    const char *noun, *verb; /* "group", "create" */
    const char *usage;       /* the usage line and a description */
    const config_option *opts;
    size_t nopts;
    int (*run)(config *c);
} command;

/* Every command's --help ends with the one exit-code rule. */
#define CMD(n, v, u, o, f) \
    { n, v, u "\n\n" EXIT_HELP, o, sizeof o / sizeof o[0], f }
/* The order commands (order_cli.c) and the usage commands (usage_cli.c). */
extern const command order_commands[];
extern const size_t n_order_commands;
extern const command usage_commands[];
extern const size_t n_usage_commands;

#endif
