/* activate_cli.c -- the `activate` command administrators and installers run.
 *
 * A thin shell over activate.h: every command is one library call plus
 * printing, so what the CLI can do an embedding installer can do too. The
 * commands read like sentences ("activate KEY", "activate status"), the
 * options come from config.h like every program of the project (flags over
 * ACTIVATE_* environment variables over a --config file), and each command
 * shows only its own options under --help.
 *
 * Output is for people by default and one JSON object with --json. The exit
 * code is the library's pa_err number (documented in --help), so scripts can
 * tell "typo" from "key not genuine" from "no server reachable" without
 * parsing text. A full product key is never printed or logged; a key is
 * named by group and serial.
 *
 * `activate KEY` on a terminal asks again after a typo, as an installer
 * would. The key can also come from a file or stdin ("-"), which keeps it
 * out of the process list. `--daemon` runs the renewal schedule with the
 * termination signals blocked and waited for (sigtimedwait), so SIGTERM
 * ends it cleanly between two steps and never in the middle of a write. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "activate.h"
#include "config.h"
#include "log.h"
#include "rpc_client.h"

#define EXIT_USAGE 2
#define DAEMON_MAX_SLEEP_S 900  /* re-read the clock and the state this often (suspend, admin changes) */

/* ---- options ----------------------------------------------------------------- */

static const config_option OPTIONS[] = {
    {"server", "HOST:PORT", "activation server (repeat for several; tried in order)", NULL},
    {"srv-domain", "DOMAIN", "find servers by DNS SRV records _activation._tcp.DOMAIN", NULL},
    {"dns-server", "IP:PORT", "DNS server for SRV lookups (default: the system's)", NULL},
    {"mdns", NULL,
     "when no --server is given and SRV finds none, look for on-premises servers on the LAN "
     "(DNS-SD _pa-activation._tcp, through the Avahi daemon); the certificate must name the "
     "announced host (HOST.local) unless --tls-name says otherwise",
     NULL},
    {"mdns-timeout-ms", "MS", "how long the LAN is asked for servers", "2000"},
    {"state-dir", "DIR", "where the license is kept", PA_DEFAULT_STATE_DIR},
    {"public-key", "FILE", "vendor license-verification public key(s), PEM (default: compiled in)", NULL},
    {"tls-ca", "FILE",
     "CA certificates (PEM) the servers' TLS certificates must chain to (required "
     "unless --insecure)",
     NULL},
    {"tls-name", "NAME", "expected server certificate name when it differs from the host", NULL},
    {"insecure", NULL, "talk to the servers in plain text: development servers only, never in production", NULL},
    {"timeout-ms", "MS", "deadline of one call to one server", "10000"},
    {"connect-timeout-ms", "MS", "a server not connected within this is skipped for the next one", "3000"},
    {"key-file", "FILE", "read the product key from FILE (--daemon default: STATE-DIR/product-key)", NULL},
    {"key", "KEY", "the product key (`machines`, `release`; --key-file keeps it out of the process list)", NULL},
    {"handle", "H", "`release`: the machine's handle, as `activate machines --json` shows it", NULL},
    {"out", "FILE", "file that `request` or `fulfil` writes", NULL},
    {"json", NULL, "print one JSON object instead of text", NULL},
    {"daemon", NULL, "stay running: activate if needed, renew on schedule, retry every 2 h", NULL},
    {"log-level", "LEVEL", "daemon log level: debug, info, warn, error", "info"},
    {"facts-root", "DIR", "read hardware facts under DIR instead of / (tests)", NULL},
    {"product", "NAME", "refuse licenses for any other product (exit 19)", NULL},
    {"edition", "NAME", "refuse licenses for any other edition (exit 19)", NULL},
    {"max-clock-skew", "SECONDS",
     "how far the clock may be behind the latest time seen, or off from a server's, before it counts as wrong "
     "(exit 23)",
     "300"},
    {"clock-offset", "SECONDS", "tests only: add SECONDS (may be negative) to the system clock", "0"},
    {"wait-online", "SECONDS", "first wait up to SECONDS until a server can be reached (boot); exit 12 if none can",
     NULL},
    {"non-interactive", NULL, "never prompt or read stdin (boot, scripts): fail with an error instead", NULL},
};
#define N_OPTIONS (sizeof OPTIONS / sizeof OPTIONS[0])

/* Per command: usage text and the options it uses. */
typedef struct cli_command {
    const char *name;      /* first positional word; NULL for "activate KEY" */
    const char *usage;     /* --help text */
    const char *options;   /* space-separated option names shown in its --help */
    size_t max_args;       /* positional arguments after the command word */
} cli_command;

#define NET_OPTS \
    "server srv-domain dns-server mdns mdns-timeout-ms tls-ca tls-name insecure timeout-ms connect-timeout-ms " \
    "wait-online "
#define LOCAL_OPTS "state-dir public-key facts-root product edition max-clock-skew non-interactive json"

static const cli_command COMMANDS[] = {
    {NULL,
     "activate [OPTIONS] KEY | COMMAND\n\n"
     "Activates this machine with a product key and keeps its license.\n\n"
     "  activate KEY             activate with KEY (\"-\": read it from stdin; on a terminal a\n"
     "                           mistyped key is asked for again)\n"
     "  activate --daemon        keep activated: activate at start if needed (key from\n"
     "                           --key-file), renew when due, retry every 2 hours\n"
     "  activate status          show the stored license (no network)\n"
     "  activate renew           renew the license now\n"
     "  activate deactivate      give this machine's place on the key back\n"
     "  activate maintain        one step of --daemon: activate or renew if due (for timers)\n"
     "  activate machine-id      show this machine's id and what it is made of\n"
     "  activate request --out FILE [KEY]     offline: write a signed activation request\n"
     "  activate fulfil REQUEST --out FILE    offline, on a connected machine: get its license\n"
     "  activate install FILE    offline: install a license file\n"
     "  activate machines --key KEY   list the machines holding a place on the key\n"
     "  activate release N --key KEY  free the place of machine N of that list (a dead one)\n"
     "  activate COMMAND --help  help on one command\n\n"
     "Exit codes: 0 ok; 1 internal error; 2 usage; 3 the key failed the local check;\n"
     "4 not activated; 5 stored license damaged, altered or for another machine;\n"
     "6 license expired (and its grace period over); 7 key not genuine; 8 key revoked;\n"
     "9 no place left on the key, rate-limited, or the key's deactivations or releases\n"
     "for the period are used up (the message says when the next is allowed); 10 request\n"
     "refused as malformed; 11 server does not hold the license (or, release, no such\n"
     "machine on the key); "
     "12 no server answered; 13 a license failed verification; 14 bad configuration;\n"
     "15 file error; 16 this machine cannot be identified; 17 the lease lapsed before it\n"
     "was renewed (activate again: renew and maintain do when they have the key);\n"
     "18 this machine could not prove it holds its place (place key missing or not the\n"
     "one the place is bound to, or the clock is off); 19 the license is for another\n"
     "product or edition than --product / --edition name; 20 pending on a volume order:\n"
     "fewer machines than its threshold have asked, or the operator has not designated\n"
     "this machine (the daemon asks again when the server says, 2 h by default), or a\n"
     "deactivation awaits the operator's approval; 21 the operator of the volume order\n"
     "deactivated this machine (its license is removed; the daemon does not activate it\n"
     "again); 22 the volume order refuses for now: not started, ended, retired, or not for\n"
     "this OS or architecture (retried at the next check), or (machines, release) the key\n"
     "belongs to a volume order, whose operator manages its machines; "
     "23 this machine's clock is wrong:\n"
     "behind a time it has already seen by more than --max-clock-skew (turned back), or\n"
     "off from the server's (the license is judged at the latest time seen and not\n"
     "renewed until the clock is right). With --wait-online, 12 also when no server\n"
     "became reachable in time (the command did not run).\n\n"
     "At boot (activate-boot.service): activate --non-interactive --wait-online 120\n"
     "maintain --key-file /var/lib/activate/product-key",
     NET_OPTS LOCAL_OPTS " key-file daemon log-level", 1},
    {"status",
     "activate status [OPTIONS]\n\nVerifies and shows the stored license. No network.\n"
     "For a volume license also its order, seat mode, the order's activation count and\n"
     "threshold, seats in use, this machine's digest (the name the order's operator sees)\n"
     "and a deactivation request awaiting approval, as the server last reported them.\n"
     "Inside the license's grace period (expired, renewal still retried) it is exit 0 and\n"
     "shows the grace left. Exit 0 when activated, 4 when not, 5 when the file is not\n"
     "trustworthy, 6 when expired (grace over), 23 when the clock is wrong.",
     LOCAL_OPTS, 0},
    {"renew",
     "activate renew [OPTIONS]\n\nRenews the stored license now (leased licenses need it). If "
     "the lease has already\nlapsed, activates again with the key from --key-file (default "
     "STATE-DIR/product-key);\nwithout a key that is exit 17. A revoked key is exit 8, key or not.",
     NET_OPTS LOCAL_OPTS " key-file", 0},
    {"deactivate",
     "activate deactivate [OPTIONS]\n\nFrees this machine's place on its key and removes "
     "the stored license\nand its place key. Exit 18 when this installation cannot prove it "
     "holds the place\n(a license file copied from elsewhere). Exit 20 when the volume order "
     "needs its operator's\napproval: the license stays until a renewal brings the decision. Exit 9 when the key's\n"
     "deactivations for the period are used up (the vendor limits them): the message says when\nthe next is "
     "allowed, and the license stays.",
     NET_OPTS LOCAL_OPTS, 0},
    {"maintain",
     "activate maintain [OPTIONS]\n\nDoes what is due now, once (activate-renew.timer runs it): "
     "activates with the key\nfrom --key-file (default STATE-DIR/product-key) when no valid "
     "license is stored,\nrenews when the license's renew-after time has come (activating "
     "again if the lease\nlapsed or the server no longer holds the place), else does nothing. "
     "--wait-online waits\nonly when something is due.",
     NET_OPTS LOCAL_OPTS " key-file", 0},
    {"machine-id",
     "activate machine-id [OPTIONS]\n\nPrints this machine's id (a salted hash of hardware "
     "facts) and which facts it is made of,\nand which hardware components (dmi_uuid, board_serial, "
     "disk_serial, mac,\nmachine_id_file) it sends hashed with Activate, so its place can follow it "
     "when\nits id changes. Names only: the values never leave the machine.",
     "facts-root json", 0},
    {"request",
     "activate request --out FILE [OPTIONS] [KEY]\n\nOffline activation, step 1 (on the "
     "air-gapped machine): writes a signed request\nfor KEY (or --key-file / \"-\" / asked "
     "for) to FILE. It contains the key: handle it like the key.\nPrints the fingerprint to "
     "read out to the operator.",
     "out key-file state-dir facts-root json", 1},
    {"fulfil",
     "activate fulfil REQUEST --out FILE [OPTIONS]\n\nOffline activation, step 2 (on a "
     "connected machine): checks the request's signature,\nactivates on its behalf and writes "
     "the verified license to FILE. Does not touch this\nmachine's own license.",
     NET_OPTS "out public-key state-dir product edition json", 1},
    {"machines",
     "activate machines (--key KEY | --key-file FILE) [OPTIONS]\n\nLists the machines holding a "
     "place on the key, oldest last seen first: number,\nhostname, when it was last seen (UTC), when "
     "its license expires, and which is this\nmachine. Needs only the product key, not a license. "
     "Machine ids are never shown.\nFree a dead machine's place with `activate release N`.",
     NET_OPTS "key key-file state-dir facts-root json", 0},
    {"release",
     "activate release N (--key KEY | --key-file FILE) [OPTIONS]\n"
     "activate release --handle H (--key KEY | --key-file FILE) [OPTIONS]\n\nFrees the place of "
     "machine N of `activate machines` (listed again first, so the\nnumber means what it means now; with "
     "--handle as well, refused unless machine N\nstill is that one), or of the machine whose handle is "
     "H. For a machine that is\ndead or gone: a machine released while running finds its license gone "
     "at its next\nrenewal. The vendor limits releases per key and period: exit 9 says when the next\n"
     "one is allowed. Exit 2 when there is no machine N, 11 when no machine has handle H.",
     NET_OPTS "key key-file handle state-dir facts-root json", 1},
    {"install",
     "activate install FILE [OPTIONS]\n\nOffline activation, step 3: verifies the license file "
     "(vendor signature, this machine)\nand stores it.",
     LOCAL_OPTS, 1},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static const cli_command *find_command(const char *word) {
    for (size_t i = 1; i < N_COMMANDS; i++)
        if (word && strcmp(COMMANDS[i].name, word) == 0) return &COMMANDS[i];
    return &COMMANDS[0];
}

static bool takes_value(const char *arg) {
    size_t len = strcspn(arg, "=");
    if (arg[len] == '=') return false;
    if (strcmp(arg, "config") == 0) return true;
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strcmp(OPTIONS[i].name, arg) == 0) return OPTIONS[i].metavar != NULL;
    return false;
}

/* The first positional word, found before the full parse so --help can be
 * specific to the command. */
static const char *first_word(int argc, char **argv) {
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];
        if (strcmp(a, "--") == 0) return k + 1 < argc ? argv[k + 1] : NULL;
        if (strncmp(a, "--", 2) == 0) {
            if (takes_value(a + 2)) k++;
            continue;
        }
        return a;
    }
    return NULL;
}

/* This command's view of the table: other options stay accepted but hidden. */
static void command_table(const cli_command *cmd, config_option out[N_OPTIONS]) {
    for (size_t i = 0; i < N_OPTIONS; i++) {
        out[i] = OPTIONS[i];
        char padded[64];
        snprintf(padded, sizeof padded, " %s ", OPTIONS[i].name);
        char list[512];
        snprintf(list, sizeof list, " %s ", cmd->options);
        if (!strstr(list, padded)) out[i].help = NULL;
    }
}

/* ---- output ------------------------------------------------------------------- */

static bool json_out;
static bool non_interactive; /* --non-interactive: nothing reads stdin or prompts */

/* "activate status" for messages; plain "activate" for activation itself. */
static const char *who(const char *command) {
    static char buf[64];
    if (strcmp(command, "activate") == 0) return "activate";
    snprintf(buf, sizeof buf, "activate %s", command);
    return buf;
}

/* ---- JSON (jansson) ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p, size_t left) {
    unsigned char c = p[0];
    if (c < 0x80) return 1;
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n == 0 || n > left) return 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c == 0xe0) lo = 0xa0;
    else if (c == 0xed) hi = 0x9f;
    else if (c == 0xf0) lo = 0x90;
    else if (c == 0xf4) hi = 0x8f;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf) return 0;
    return n;
}

/* A JSON string of `s` (NULL reads as ""). JSON text is UTF-8, and a path
 * or a server's message need not be: bytes that are not UTF-8 become U+FFFD
 * rather than making the whole output unreadable. NULL only without memory. */
static json_t *jstr(const char *s) {
    if (!s) s = "";
    json_t *j = json_string(s);
    if (j) return j;
    size_t len = strlen(s), k = 0;
    char *fixed = malloc(3 * len + 1);
    if (!fixed) return NULL;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_len((const unsigned char *)s + i, len - i);
        if (n) {
            memcpy(fixed + k, s + i, n);
            k += n;
            i += n;
        } else {
            memcpy(fixed + k, "\xef\xbf\xbd", 3);
            k += 3;
            i++;
        }
    }
    j = json_stringn(fixed, k);
    free(fixed);
    return j;
}

/* Sets o[key]; returns -1 when out of memory (then `v` is gone too). */
static int put(json_t *o, const char *key, json_t *v) { return v && json_object_set_new(o, key, v) == 0 ? 0 : -1; }

/* Prints `o` as one compact line on stdout and frees it. Returns 0 or -1. */
static int emit(json_t *o, int failed) {
    char *text = o && !failed ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text) {
        fprintf(stderr, "activate: out of memory writing the JSON output\n");
        return -1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

static void format_time(int64_t t, char *buf, size_t n, const char *zero) {
    if (t <= 0) {
        snprintf(buf, n, "%s", zero);
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *license_json(const pa_client *c) {
    json_t *l = json_object(), *features = json_array();
    int bad = !l || !features;
    for (size_t i = 0; !bad && i < pa_feature_count(c); i++)
        bad |= json_array_append_new(features, jstr(pa_feature(c, i)));
    if (bad) {
        json_decref(l);
        json_decref(features);
        return NULL;
    }
    bad |= put(l, "license_id", jstr(pa_license_id(c)));
    bad |= put(l, "product", jstr(pa_product(c)));
    bad |= put(l, "edition", jstr(pa_edition(c)));
    bad |= put(l, "channel", jstr(pa_channel(c)));
    bad |= put(l, "features", features);
    bad |= put(l, "key_group", json_integer(pa_key_group(c)));
    bad |= put(l, "key_serial", json_integer(pa_key_serial(c)));
    bad |= put(l, "issued_at", json_integer(pa_issued_at(c)));
    bad |= put(l, "renew_after", json_integer(pa_renew_after(c)));
    bad |= put(l, "expires_at", json_integer(pa_expires_at(c)));
    bad |= put(l, "grace_left", json_integer(pa_grace_left(c)));
    bad |= put(l, "activation_count", json_integer(pa_activation_count(c)));
    if (pa_seat_mode(c)[0]) bad |= put(l, "seat_mode", jstr(pa_seat_mode(c)));
    if (!bad) return l;
    json_decref(l);
    return NULL;
}

/* A volume order's view of this machine, when it is a volume key's. */
static json_t *volume_json(const pa_client *c) {
    json_t *v = json_object();
    int bad = !v;
    if (v) {
        bad |= put(v, "order_serial", jstr(pa_order_serial(c)));
        bad |= put(v, "order_revision", json_integer(pa_order_revision(c)));
        bad |= put(v, "mode", jstr(pa_seat_mode(c)));
        bad |= put(v, "activation_count", json_integer(pa_volume_count(c)));
        bad |= put(v, "threshold", json_integer(pa_volume_threshold(c)));
        bad |= put(v, "seats", json_integer(pa_volume_seats(c)));
        bad |= put(v, "seats_used", json_integer(pa_volume_seats_used(c)));
        bad |= put(v, "deactivation_requested", json_boolean(pa_deactivation_requested(c)));
    }
    if (!bad) return v;
    json_decref(v);
    return NULL;
}

static void print_volume_text(const pa_client *c) {
    printf("  order        %s revision %u, %s seats\n", pa_order_serial(c), (unsigned)pa_order_revision(c),
           pa_seat_mode(c)[0] ? pa_seat_mode(c) : "-");
    printf("  activations  %u machines asked", pa_volume_count(c));
    if (pa_volume_threshold(c)) printf(" (threshold %u)", pa_volume_threshold(c));
    if (pa_volume_seats(c)) printf("\n  seats        %u of %u in use\n", pa_volume_seats_used(c), pa_volume_seats(c));
    else printf("\n  seats        %u in use (unlimited)\n", pa_volume_seats_used(c));
    printf("  machine      %s (machine digest)\n", pa_machine_digest(c));
    if (pa_deactivation_requested(c)) printf("  deactivation requested, awaiting the operator's approval\n");
}

static void print_license_text(const pa_client *c) {
    char issued[32], renew[32], expires[32];
    format_time(pa_issued_at(c), issued, sizeof issued, "-");
    format_time(pa_renew_after(c), renew, sizeof renew, "not needed");
    format_time(pa_expires_at(c), expires, sizeof expires, "never");
    printf("  product      %s %s (%s)\n  features     ", pa_product(c), pa_edition(c), pa_channel(c));
    for (size_t i = 0; i < pa_feature_count(c); i++) printf("%s%s", i ? ", " : "", pa_feature(c, i));
    printf("%s\n  license id   %s\n  key          group %u, serial %u\n", pa_feature_count(c) ? "" : "-",
           pa_license_id(c), pa_key_group(c), pa_key_serial(c));
    printf("  issued       %s\n  renew after  %s\n  expires      %s\n", issued, renew, expires);
    if (pa_grace_left(c) > 0)
        printf("  grace        %lld s left (expired; kept while the renewal is retried)\n",
               (long long)pa_grace_left(c));
    if (pa_activation_count(c)) printf("  machines     %u on this key\n", pa_activation_count(c));
    if (pa_order_serial(c)[0]) print_volume_text(c);
}

/* Prints the outcome of a command and returns its exit code. */
static int report(const char *command, pa_err e, const pa_client *c, const char *ok_text) {
    bool show_license = c && pa_is_licensed(c);
    if (json_out) {
        json_t *o = json_object();
        int bad = !o;
        if (o) {
            bad |= put(o, "command", jstr(command));
            bad |= put(o, "result", jstr(pa_err_name(e)));
            bad |= put(o, "exit_code", json_integer(e));
            bad |= put(o, "message", jstr(c ? pa_error(c) : ""));
        }
        if (o && c) {
            if (!show_license) bad |= put(o, "activation_count", json_integer(pa_activation_count(c)));
            bad |= put(o, "machine_id", jstr(pa_machine_id_hex(c)));
            bad |= put(o, "machine_digest", jstr(pa_machine_digest(c)));
            bad |= put(o, "server", jstr(pa_server(c)));
            if (pa_order_serial(c)[0]) bad |= put(o, "volume", volume_json(c));
            if (pa_retry_after(c)) bad |= put(o, "retry_after", json_integer(pa_retry_after(c)));
            if (pa_request_fingerprint(c)[0]) bad |= put(o, "request_fingerprint", jstr(pa_request_fingerprint(c)));
            if (pa_rebound(c)) bad |= put(o, "rebound", json_true());
            if (show_license) bad |= put(o, "license", license_json(c));
        }
        if (emit(o, bad) != 0 && e == PA_OK) return PA_ERR_INTERNAL;
        return (int)e;
    }
    if (e == PA_OK || (e == PA_ERR_EXPIRED && show_license)) {
        if (e == PA_OK) printf("%s\n", ok_text);
        else printf("The license has expired: %s\n", pa_error(c));
        if (show_license) print_license_text(c);
        if (c && pa_server(c)[0]) printf("  server       %s\n", pa_server(c));
        if (e == PA_OK && c && pa_rebound(c))
            printf("  place        moved here: the key's place of this machine, found by its hardware components\n");
        if (e == PA_OK && c && pa_error(c)[0]) printf("note: %s\n", pa_error(c));
    } else {
        fprintf(stderr, "%s: %s\n", who(command), c ? pa_error(c) : "failed");
    }
    return (int)e;
}

/* ---- reading keys ------------------------------------------------------------------ */

/* One trimmed line from `in` into buf; false on end of input. */
static bool read_line(FILE *in, char *buf, size_t n) {
    if (!fgets(buf, (int)n, in)) return false;
    buf[strcspn(buf, "\r\n")] = '\0';
    return true;
}

static bool read_key_file(const char *path, char *buf, size_t n, char *err, size_t errlen) {
    if (non_interactive && strcmp(path, "-") == 0) {
        snprintf(err, errlen, "--non-interactive: the key is not read from stdin; give --key-file FILE");
        return false;
    }
    FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "cannot read the key from %s: %s", path, strerror(errno));
        return false;
    }
    bool ok = read_line(fp, buf, n);
    if (fp != stdin) fclose(fp);
    if (!ok) snprintf(err, errlen, "%s holds no key", path);
    return ok;
}

/* Gets a key that passes the local check: from the argument, a file or
 * stdin; on a terminal, asks again after a typo. Returns PA_OK or the error
 * to exit with (message printed). */
static pa_err obtain_key(const char *command, const char *arg, const char *key_file,
                         char canonical[PA_KEY_TEXT_LEN + 1]) {
    char typed[256] = "", err[300];
    bool tty = isatty(STDIN_FILENO) && !json_out && !non_interactive;
    const char *source = arg ? arg : key_file;
    if (source && (strcmp(source, "-") == 0 || !arg)) {
        if (!read_key_file(source, typed, sizeof typed, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", who(command), err);
            return PA_ERR_IO;
        }
        tty = false;  /* stdin or a file is not a person to ask again */
    } else if (arg) {
        snprintf(typed, sizeof typed, "%s", arg);
    } else if (tty) {
        fputs("Product key: ", stdout);
        fflush(stdout);
        if (!read_line(stdin, typed, sizeof typed)) return PA_ERR_KEY;
    } else {
        fprintf(stderr, "%s: no product key given%s (see --help)\n", who(command),
                non_interactive ? " and --non-interactive does not ask for one: give KEY or --key-file FILE" : "");
        return (pa_err)EXIT_USAGE;
    }
    for (;;) {
        pa_key_problem p;
        if (pa_key_check(typed, canonical, &p) == PA_OK) return PA_OK;
        if (!tty) {
            if (json_out) {
                json_t *o = json_object();
                int bad = !o;
                if (o) {
                    bad |= put(o, "command", jstr(command));
                    bad |= put(o, "result", jstr(pa_err_name(PA_ERR_KEY)));
                    bad |= put(o, "exit_code", json_integer(PA_ERR_KEY));
                    bad |= put(o, "reason", jstr(p.reason));
                    bad |= put(o, "group", json_integer(p.group));
                    bad |= put(o, "message", jstr(p.message));
                }
                (void)emit(o, bad); /* exit 3 either way */
            } else {
                fprintf(stderr, "%s: %s\n", who(command), p.message);
            }
            return PA_ERR_KEY;
        }
        printf("That key is not right: %s.\nPlease type it again (Enter alone gives up): ", p.message);
        fflush(stdout);
        if (!read_line(stdin, typed, sizeof typed) || typed[0] == '\0') return PA_ERR_KEY;
    }
}

/* ---- the daemon ------------------------------------------------------------------- */

static const char *daemon_key(const char *key_file, const char *state_dir, char *buf, size_t n) {
    char path[4096], err[300];
    if (!key_file) {
        snprintf(path, sizeof path, "%s/product-key", state_dir);
        if (access(path, R_OK) != 0) return NULL;
        key_file = path;
    }
    if (!read_key_file(key_file, buf, n, err, sizeof err)) {
        log_warn("daemon.key_file", LOG_S("error", err), LOG_END);
        return NULL;
    }
    return buf;
}

static void log_outcome(pa_client *c, pa_err e) {
    if (e == PA_ERR_PENDING)
        log_info("daemon.pending", LOG_S("order", pa_order_serial(c)), LOG_U("activation_count", pa_volume_count(c)),
                 LOG_U("threshold", pa_volume_threshold(c)), LOG_S("machine_digest", pa_machine_digest(c)),
                 LOG_S("message", pa_error(c)), LOG_END);
    else if (e == PA_ERR_DEACTIVATED)
        log_warn("daemon.deactivated", LOG_S("order", pa_order_serial(c)), LOG_S("message", pa_error(c)), LOG_END);
    else if (e == PA_OK && pa_is_licensed(c))
        log_info("daemon.licensed", LOG_U("group", pa_key_group(c)), LOG_U("serial", pa_key_serial(c)),
                 LOG_I("renew_after", pa_renew_after(c)), LOG_I("expires_at", pa_expires_at(c)),
                 LOG_S("server", pa_server(c)), LOG_END);
    else if (e != PA_OK)
        log_warn("daemon.attempt_failed", LOG_S("result", pa_err_name(e)), LOG_S("error", pa_error(c)),
                 LOG_I("retry_after", pa_retry_after(c)), LOG_END);
}

static int run_daemon(pa_client *c, const char *key_file, const char *state_dir, const sigset_t *stop) {
    log_info("daemon.start", LOG_S("state_dir", state_dir), LOG_S("machine_id_source", pa_machine_id_source(c)),
             LOG_END);
    for (;;) {
        int64_t now = (int64_t)time(NULL);
        int64_t next = pa_next_check(c, now);
        if (next <= now) {
            char buf[256];
            const char *key = daemon_key(key_file, state_dir, buf, sizeof buf);
            pa_err e = pa_maintain(c, key);
            OPENSSL_cleanse(buf, sizeof buf);
            log_outcome(c, e);
            continue;
        }
        int64_t wait = next - now;
        if (wait > DAEMON_MAX_SLEEP_S) wait = DAEMON_MAX_SLEEP_S;
        log_debug("daemon.sleep", LOG_I("seconds", wait), LOG_I("next_check", next), LOG_END);
        struct timespec ts = {(time_t)wait, 0};
        siginfo_t info;
        int sig = sigtimedwait(stop, &info, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("daemon.stop", LOG_S("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"), LOG_END);
            return 0;
        }
        /* SIGHUP, a timeout or EINTR: look again. */
    }
}

/* ---- main ---------------------------------------------------------------------- */

/* Fills library options from the configuration; PEM files are read here. */
static int build_options(const config *cfg, pa_options *o, char **pem, char **ca) {
    pa_options_init(o);
    o->state_dir = config_get(cfg, "state-dir");
    o->n_servers = config_get_list(cfg, "server", &o->servers);
    o->srv_domain = config_get(cfg, "srv-domain");
    o->dns_server = config_get(cfg, "dns-server");
    o->facts_root = config_get(cfg, "facts-root");
    o->tls_target_name = config_get(cfg, "tls-name");
    o->product = config_get(cfg, "product");
    o->edition = config_get(cfg, "edition");
    o->insecure = config_get_bool(cfg, "insecure");
    bool ok = true;
    o->timeout_ms = (int)config_get_int(cfg, "timeout-ms", 1, 600000, &ok);
    o->connect_timeout_ms = (int)config_get_int(cfg, "connect-timeout-ms", 1, 600000, &ok);
    o->mdns = config_get_bool(cfg, "mdns");
    o->mdns_timeout_ms = (int)config_get_int(cfg, "mdns-timeout-ms", 1, 600000, &ok);
    o->max_clock_skew_s = config_get_int(cfg, "max-clock-skew", 1, 365LL * 24 * 3600, &ok);
    o->clock_offset_s = config_get_int(cfg, "clock-offset", -100LL * 365 * 24 * 3600, 100LL * 365 * 24 * 3600, &ok);
    if (!ok) return -1;
    char err[256];
    const char *path = config_get(cfg, "public-key");
    if (path && !(*pem = rpc_read_pem(path, err, sizeof err))) {
        fprintf(stderr, "activate: --public-key: %s\n", err);
        return -1;
    }
    o->public_key_pem = *pem;
    path = config_get(cfg, "tls-ca");
    if (path && !(*ca = rpc_read_pem(path, err, sizeof err))) {
        fprintf(stderr, "activate: --tls-ca: %s\n", err);
        return -1;
    }
    o->tls_ca_pem = *ca;
    return 0;
}

static int cmd_activate(pa_client *c, const config *cfg, const char *arg, const sigset_t *stop) {
    const char *key_file = config_get(cfg, "key-file");
    if (config_get_bool(cfg, "daemon")) {
        if (arg) {
            fprintf(stderr, "activate --daemon takes no key argument; use --key-file\n");
            return EXIT_USAGE;
        }
        return run_daemon(c, key_file, config_get(cfg, "state-dir"), stop);
    }
    /* A short word without hyphens is a mistyped command, not a key. */
    if (arg && strlen(arg) <= 12 && !strchr(arg, '-')) {
        fprintf(stderr, "activate: \"%s\" is neither a command nor a product key (see --help)\n", arg);
        return EXIT_USAGE;
    }
    char key[PA_KEY_TEXT_LEN + 1];
    pa_err e = obtain_key("activate", arg, key_file, key);
    if (e != PA_OK) return (int)e;
    return report("activate", pa_activate(c, key), c, "This machine is activated.");
}

static int cmd_maintain(pa_client *c, const config *cfg) {
    char buf[256];
    const char *key = daemon_key(config_get(cfg, "key-file"), config_get(cfg, "state-dir"), buf, sizeof buf);
    pa_err e = pa_maintain(c, key);
    OPENSSL_cleanse(buf, sizeof buf);
    return report("maintain", e, c, "This machine is activated; nothing else is due.");
}

/* Renew; a lapsed lease is activated again when the key is at hand (as
 * maintain would), a revoked key never. */
static int cmd_renew(pa_client *c, const config *cfg) {
    pa_err e = pa_renew(c);
    if (e != PA_ERR_LEASE_EXPIRED) return report("renew", e, c, "The license is renewed.");
    char buf[256];
    const char *key = daemon_key(config_get(cfg, "key-file"), config_get(cfg, "state-dir"), buf, sizeof buf);
    if (key) e = pa_activate(c, key);
    OPENSSL_cleanse(buf, sizeof buf);
    return report("renew", e, c, "The lease had lapsed; this machine is activated again with its product key.");
}

static int cmd_request(pa_client *c, const config *cfg, const char *arg) {
    const char *out = config_get(cfg, "out");
    if (!out) {
        fprintf(stderr, "activate request: --out FILE is required (see --help)\n");
        return EXIT_USAGE;
    }
    char key[PA_KEY_TEXT_LEN + 1], text[512];
    pa_err e = obtain_key("request", arg, config_get(cfg, "key-file"), key);
    if (e != PA_OK) return (int)e;
    e = pa_request_write(c, key, out);
    snprintf(text, sizeof text, "Wrote the activation request to %s (fingerprint %s). It holds the product "
             "key: handle it like the key.", out, pa_request_fingerprint(c));
    return report("request", e, c, text);
}

static int cmd_fulfil(pa_client *c, const config *cfg, const char *request) {
    const char *out = config_get(cfg, "out");
    if (!request || !out) {
        fprintf(stderr, "activate fulfil: %s (see --help)\n", request ? "--out FILE is required" : "which request file?");
        return EXIT_USAGE;
    }
    pa_err e = pa_fulfil(c, request, out);
    char text[512];
    snprintf(text, sizeof text, "Wrote the license for request %s to %s; take it to the machine and run "
             "`activate install`.", pa_request_fingerprint(c), out);
    return report("fulfil", e, c, text);
}

/* {"dmi_uuid": true, "board_serial": false, ...}: which components this
 * machine sends (names only: their values are serials, never shown). */
static json_t *components_json(const pa_client *c) {
    json_t *o = json_object();
    for (size_t i = 0; o && pa_component_name(i); i++)
        if (put(o, pa_component_name(i), json_boolean(pa_has_component(c, pa_component_name(i)))) != 0) {
            json_decref(o);
            return NULL;
        }
    return o;
}

static void print_components_text(const pa_client *c) {
    for (int present = 1; present >= 0; present--) {
        printf("%s", present ? "components: " : "\nnot found:  ");
        int n = 0;
        for (size_t i = 0; pa_component_name(i); i++)
            if (pa_has_component(c, pa_component_name(i)) == (bool)present)
                printf("%s%s", n++ ? ", " : "", pa_component_name(i));
        if (!n) printf("-");
    }
    printf("\n");
}

static int cmd_machine_id(pa_client *c) {
    if (!pa_machine_id_source(c)[0]) {
        (void)pa_status(c);  /* fills pa_error with why the machine cannot be identified */
        return report("machine-id", PA_ERR_MACHINE, c, "");
    }
    if (!json_out) {
        printf("%s (from %s)\n", pa_machine_id_hex(c), pa_machine_id_source(c));
        print_components_text(c);
        return 0;
    }
    json_t *o = json_object();
    int bad = !o;
    if (o) {
        bad |= put(o, "command", jstr("machine-id"));
        bad |= put(o, "result", jstr(pa_err_name(PA_OK)));
        bad |= put(o, "exit_code", json_integer(PA_OK));
        bad |= put(o, "machine_id", jstr(pa_machine_id_hex(c)));
        bad |= put(o, "source", jstr(pa_machine_id_source(c)));
        bad |= put(o, "components", components_json(c));
    }
    return emit(o, bad) == 0 ? 0 : PA_ERR_INTERNAL;
}

/* ---- machines on the key ---------------------------------------------------------- */

static json_t *machine_json(const pa_machine *m, size_t number) {
    json_t *o = json_object();
    int bad = !o;
    if (o) {
        bad |= put(o, "number", json_integer((json_int_t)number));
        bad |= put(o, "handle", jstr(m->handle));
        bad |= put(o, "hostname", jstr(m->hostname));
        bad |= put(o, "last_seen", json_integer(m->last_seen));
        bad |= put(o, "expires_at", json_integer(m->expires_at));
        bad |= put(o, "this_machine", json_boolean(m->this_machine));
    }
    if (!bad) return o;
    json_decref(o);
    return NULL;
}

static int print_machines_json(const pa_machine_list *l) {
    json_t *o = json_object(), *list = json_array();
    int bad = !o || !list;
    for (size_t i = 0; !bad && i < l->n; i++) bad |= json_array_append_new(list, machine_json(&l->machines[i], i + 1));
    if (bad) {
        json_decref(list);
        return emit(o, 1) == 0 ? 0 : PA_ERR_INTERNAL;
    }
    bad |= put(o, "command", jstr("machines"));
    bad |= put(o, "result", jstr(pa_err_name(PA_OK)));
    bad |= put(o, "exit_code", json_integer(PA_OK));
    bad |= put(o, "max_machines", json_integer(l->max_machines));
    bad |= put(o, "releases_left",
               l->releases_left == PA_RELEASES_UNLIMITED ? json_null() : json_integer(l->releases_left));
    bad |= put(o, "next_release_at", json_integer(l->next_release_at));
    bad |= put(o, "machines", list);
    return emit(o, bad) == 0 ? 0 : PA_ERR_INTERNAL;
}

static void print_machines_text(const pa_machine_list *l) {
    printf("  %-3s %-32s %-20s  %s\n", "N", "HOSTNAME", "LAST SEEN (UTC)", "EXPIRES");
    for (size_t i = 0; i < l->n; i++) {
        const pa_machine *m = &l->machines[i];
        char seen[32], expires[32];
        format_time(m->last_seen, seen, sizeof seen, "-");
        format_time(m->expires_at, expires, sizeof expires, "never");
        printf("  %-3zu %-32s %-20s  ", i + 1, m->hostname[0] ? m->hostname : "(unknown)", seen);
        if (m->this_machine) printf("%-20s  this machine\n", expires);
        else printf("%s\n", expires);
    }
    if (l->max_machines) printf("%zu of %u places taken", l->n, l->max_machines);
    else printf("%zu machines (no limit)", l->n);
    if (l->releases_left == PA_RELEASES_UNLIMITED) {
        printf(".\n");
    } else if (l->releases_left == 0 && l->next_release_at > 0) {
        char when[32];
        format_time(l->next_release_at, when, sizeof when, "-");
        printf("; no release left this period (next allowed at %s).\n", when);
    } else {
        printf("; %u release%s left this period.\n", l->releases_left, l->releases_left == 1 ? "" : "s");
    }
}

/* The product key of `machines` and `release`: --key, else --key-file. */
static pa_err machines_key(const char *command, const config *cfg, char key[PA_KEY_TEXT_LEN + 1]) {
    const char *text = config_get(cfg, "key"), *file = config_get(cfg, "key-file");
    if (!text && !file) {
        fprintf(stderr, "activate %s: which key? give --key KEY or --key-file FILE (see --help)\n", command);
        return (pa_err)EXIT_USAGE;
    }
    return obtain_key(command, text, text ? NULL : file, key);
}

static int cmd_machines(pa_client *c, const config *cfg) {
    char key[PA_KEY_TEXT_LEN + 1];
    pa_err e = machines_key("machines", cfg, key);
    if (e != PA_OK) return (int)e;
    pa_machine_list l;
    e = pa_machines_list(c, key, &l);
    OPENSSL_cleanse(key, sizeof key);
    if (e != PA_OK) return report("machines", e, c, "");
    int rc = 0;
    if (json_out) rc = print_machines_json(&l);
    else print_machines_text(&l);
    pa_machine_list_free(&l);
    return rc;
}

/* Which machine `release` frees: number N of a fresh listing (checked
 * against --handle when both are given), or the handle alone. Returns 0
 * with *m (number 0 when named by handle only), or the exit code (message
 * printed). */
static int release_target(pa_client *c, const char *key, const char *arg, const char *want, pa_machine *m,
                          size_t *number) {
    char *end = NULL;
    unsigned long n = arg ? strtoul(arg, &end, 10) : 0;
    memset(m, 0, sizeof *m);
    *number = 0;
    if (arg && (!*arg || *end || n == 0)) {
        fprintf(stderr,
                "activate release: \"%s\" is not a machine number (1, 2, ... as `activate machines` "
                "shows them)\n",
                arg);
        return EXIT_USAGE;
    }
    if (!arg) {
        snprintf(m->handle, sizeof m->handle, "%s", want);
        return 0;
    }
    pa_machine_list l;
    pa_err e = pa_machines_list(c, key, &l);
    if (e != PA_OK) return report("release", e, c, "");
    int rc = 0;
    if (n > l.n) {
        fprintf(stderr, "activate release: there is no machine %lu: the key has %zu (see `activate machines`)\n", n,
                l.n);
        rc = EXIT_USAGE;
    } else if (want && strcasecmp(want, l.machines[n - 1].handle) != 0) {
        fprintf(stderr, "activate release: machine %lu is not the one with handle %s any more (list again)\n", n, want);
        rc = EXIT_USAGE;
    } else {
        *m = l.machines[n - 1];
        *number = n;
    }
    pa_machine_list_free(&l);
    return rc;
}

/* What `release` freed, for people or as JSON. */
static int released(pa_client *c, const pa_machine *m, size_t number) {
    if (json_out) {
        json_t *o = json_object();
        int bad = !o;
        if (o) {
            bad |= put(o, "command", jstr("release"));
            bad |= put(o, "result", jstr(pa_err_name(PA_OK)));
            bad |= put(o, "exit_code", json_integer(PA_OK));
            bad |= put(o, "activation_count", json_integer(pa_activation_count(c)));
            bad |= put(o, "server", jstr(pa_server(c)));
            bad |= put(o, "released", machine_json(m, number));
        }
        return emit(o, bad) == 0 ? 0 : PA_ERR_INTERNAL;
    }
    if (number) {
        char seen[32];
        format_time(m->last_seen, seen, sizeof seen, "-");
        printf("Released machine %zu, %s (last seen %s)%s.\n", number, m->hostname[0] ? m->hostname : "(unknown)", seen,
               m->this_machine ? ", this machine" : "");
    } else {
        printf("Released the machine with handle %s.\n", m->handle);
    }
    printf("%u machines remain on the key.\n", pa_activation_count(c));
    return 0;
}

static int cmd_release(pa_client *c, const config *cfg, const char *arg) {
    const char *want = config_get(cfg, "handle");
    if (!arg && !want) {
        fprintf(stderr, "activate release: which machine? give its number N or --handle H (see --help)\n");
        return EXIT_USAGE;
    }
    if (want && strlen(want) != PA_MACHINE_HANDLE_LEN) {
        fprintf(stderr, "activate release: --handle: want the %d hex characters `activate machines --json` shows\n",
                PA_MACHINE_HANDLE_LEN);
        return EXIT_USAGE;
    }
    char key[PA_KEY_TEXT_LEN + 1];
    pa_err e = machines_key("release", cfg, key);
    if (e != PA_OK) return (int)e;
    pa_machine m;
    size_t number;
    int rc = release_target(c, key, arg, want, &m, &number);
    if (rc == 0) {
        e = pa_machine_release(c, key, m.handle);
        rc = e == PA_OK ? released(c, &m, number) : report("release", e, c, "");
    }
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

/* --wait-online SECONDS: before a command that talks to a server (for
 * `maintain`, only when something is due), wait until one can be reached.
 * 0 to go on, else the exit code (12: none came in time). */
static int wait_online(const cli_command *cmd, pa_client *c, const config *cfg) {
    if (!config_get(cfg, "wait-online")) return 0;
    const char *name = cmd->name ? cmd->name : "activate";
    bool ok = true;
    int secs = (int)config_get_int(cfg, "wait-online", 0, 24 * 3600, &ok);
    if (!ok) return EXIT_USAGE;
    bool net = !strcmp(name, "activate") || !strcmp(name, "renew") || !strcmp(name, "deactivate") ||
               !strcmp(name, "maintain") || !strcmp(name, "fulfil");
    if (!net || (!cmd->name && config_get_bool(cfg, "daemon"))) return 0; /* the daemon retries on its own */
    int64_t now = (int64_t)time(NULL) + config_get_int(cfg, "clock-offset", INT64_MIN, INT64_MAX, &ok);
    if (!strcmp(name, "maintain") && pa_next_check(c, now) > now) return 0;
    pa_err e = pa_wait_online(c, secs);
    return e == PA_OK ? 0 : report(name, e, c, "");
}

static int run_command(const cli_command *cmd, pa_client *c, const config *cfg, char *const *args, size_t nargs,
                       const sigset_t *stop) {
    size_t skip = cmd->name ? 1 : 0;  /* the command word */
    if (nargs > skip + cmd->max_args) {
        fprintf(stderr, "activate %s: unexpected argument \"%s\" (see --help)\n", cmd->name ? cmd->name : "",
                args[skip + cmd->max_args]);
        return EXIT_USAGE;
    }
    const char *arg = nargs > skip ? args[skip] : NULL;
    int waited = wait_online(cmd, c, cfg);
    if (waited != 0) return waited;
    if (!cmd->name) return cmd_activate(c, cfg, arg, stop);
    const char *name = cmd->name;
    if (strcmp(name, "status") == 0) return report(name, pa_status(c), c, "This machine is activated.");
    if (strcmp(name, "renew") == 0) return cmd_renew(c, cfg);
    if (strcmp(name, "deactivate") == 0) {
        pa_err e = pa_deactivate(c);
        char text[160];
        snprintf(text, sizeof text, "This machine is deactivated; its place on the key is free (%u machines "
                 "remain on the key).", pa_activation_count(c));
        return report(name, e, c, text);
    }
    if (strcmp(name, "maintain") == 0) return cmd_maintain(c, cfg);
    if (strcmp(name, "request") == 0) return cmd_request(c, cfg, arg);
    if (strcmp(name, "fulfil") == 0) return cmd_fulfil(c, cfg, arg);
    if (strcmp(name, "machines") == 0) return cmd_machines(c, cfg);
    if (strcmp(name, "release") == 0) return cmd_release(c, cfg, arg);
    if (strcmp(name, "install") == 0) {
        if (!arg) {
            fprintf(stderr, "activate install: which license file? (see --help)\n");
            return EXIT_USAGE;
        }
        return report(name, pa_install(c, arg), c, "The license is installed.");
    }
    return cmd_machine_id(c);
}

int main(int argc, char **argv) {
    const cli_command *cmd = find_command(first_word(argc, argv));
    config_option table[N_OPTIONS];
    command_table(cmd, table);
    int code;
    config *cfg = config_load(cmd->usage, table, N_OPTIONS, "ACTIVATE", argc, argv, &code);
    if (!cfg) return code;
    json_out = config_get_bool(cfg, "json");
    non_interactive = config_get_bool(cfg, "non-interactive");
    log_set_component("activate");
    int level = log_level_parse(config_get(cfg, "log-level"));
    if (level < 0) {
        fprintf(stderr, "activate: --log-level: want debug, info, warn or error\n");
        config_free(cfg);
        return EXIT_USAGE;
    }
    log_set_level((log_level)level);

    /* Block the stop signals before gRPC starts threads, so only the
     * daemon's sigtimedwait sees them. Other commands keep the defaults. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    if (!cmd->name && config_get_bool(cfg, "daemon")) pthread_sigmask(SIG_BLOCK, &stop, NULL);

    char *pem = NULL, *ca = NULL, err[512];
    pa_options o;
    int rc = EXIT_USAGE;
    pa_client *c = NULL;
    if (build_options(cfg, &o, &pem, &ca) == 0) {
        c = pa_client_new(&o, err, sizeof err);
        if (!c) {
            fprintf(stderr, "activate: %s\n", err);
            rc = PA_ERR_CONFIG;
        }
    }
    if (c) {
        char *const *args;
        size_t nargs = config_args(cfg, &args);
        rc = run_command(cmd, c, cfg, args, nargs, &stop);
    }
    pa_client_free(c);
    free(pem);
    free(ca);
    config_free(cfg);
    return rc;
}
