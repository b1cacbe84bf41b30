/* activate.h -- the installer's client library: check a product key, activate
 * this machine, keep its license renewed, and read what the license grants.
 *
 * This is the only header an installer includes. The handle is opaque and
 * every call is verb-first, in the manner of hiredis:
 *
 *   pa_options o;
 *   pa_options_init(&o);
 *   o.srv_domain = "example.com";           // or o.servers / o.n_servers, or o.mdns = true
 *   o.tls_ca_pem = ca_pem;                  // the CA of the servers' certificates
 *   char err[256];
 *   pa_client *c = pa_client_new(&o, err, sizeof err);
 *   if (!c) { fprintf(stderr, "%s\n", err); return 1; }
 *
 *   pa_key_problem p;
 *   char key[PA_KEY_TEXT_LEN + 1];
 *   if (pa_key_check(typed, key, &p) != PA_OK) ... show p.message, ask again
 *   if (pa_activate(c, key) != PA_OK) ... show pa_error(c)
 *   if (pa_has_feature(c, "pro")) ...
 *   pa_client_free(c);
 *
 * What it guarantees:
 *   - a key that fails its checksum never leaves the machine;
 *   - every license is accepted only after its Ed25519 signature verifies
 *     with the vendor's public key and it names this machine (and, when
 *     pa_options.product is set, that product); the stored copy is verified
 *     again on every load, so an edited file is refused;
 *   - a license from an on-premises server of a volume order (signed by the
 *     server's own key) is accepted only with the order the vendor signed:
 *     the order's signature verifies with a vendor key, the order delegates
 *     the key that signed the license, and the license names that order and
 *     keeps within its product, edition, groups, features and dates
 *     (docs/volume.md); the order is stored with the license and checked
 *     again on every load;
 *   - the stored license is replaced atomically (never half-written);
 *   - the machine's place on the server is bound to a key pair made at
 *     activation and kept in the state directory (place-key.pem, 0600, like
 *     every state file, in a 0700 directory): a copied license file can
 *     neither renew nor deactivate it;
 *   - servers are reached over TLS only, their certificate checked against
 *     tls_ca_pem (plain text needs `insecure`, for development servers); a
 *     server found by SRV must lie inside srv_domain and present a
 *     certificate for its own name (docs/activation-flow.md); a server found
 *     by mDNS is dialled at its announced address and must present a
 *     certificate for its announced host name (HOST.local), unless
 *     tls_target_name names another (docs/machines.md).
 *
 * A handle is not thread-safe: use one per thread, or lock around it. */
#ifndef PA_ACTIVATE_H
#define PA_ACTIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PA_KEY_TEXT_LEN 29       /* canonical key: five groups of five and four hyphens */
#define PA_MACHINE_ID_LEN 32     /* bytes of the machine id (a SHA-256 sized hash) */
#define PA_DEFAULT_STATE_DIR "/var/lib/activate"

/* Result of every call. The numbers are stable: the `activate` CLI uses them
 * as its exit codes (2 is kept for command-line usage errors). */
typedef enum pa_err {
    PA_OK = 0,
    PA_ERR_INTERNAL = 1,       /* out of memory or an unexpected library failure */
    PA_ERR_KEY = 3,            /* the key failed the local check (typo, legacy format) */
    PA_ERR_NOT_ACTIVATED = 4,  /* no license is stored on this machine */
    PA_ERR_STATE = 5,          /* the stored license is damaged, altered, or for another machine */
    PA_ERR_EXPIRED = 6,        /* the stored license is genuine but past its expiry */
    PA_ERR_DENIED = 7,         /* server: the key is not genuine */
    PA_ERR_REVOKED = 8,        /* server: the key is revoked (final: activating again is refused too) */
    PA_ERR_EXHAUSTED = 9,      /* server: no place left on the key, or rate-limited */
    PA_ERR_REJECTED = 10,      /* server: the request was malformed (message names the field) */
    PA_ERR_NOT_FOUND = 11,     /* server: it does not hold this license (renew) */
    PA_ERR_UNAVAILABLE = 12,   /* no activation server answered */
    PA_ERR_BAD_LICENSE = 13,   /* a license (from a server or a file) failed verification */
    PA_ERR_CONFIG = 14,        /* bad options: public key, server list, DNS, state dir */
    PA_ERR_IO = 15,            /* a file could not be read or written */
    PA_ERR_MACHINE = 16,       /* no hardware fact to identify this machine */
    PA_ERR_LEASE_EXPIRED = 17, /* server (renew): the lease lapsed before it was renewed; the license
                                  id is dead, but activating again with the key takes the place back
                                  (pa_maintain does that when it has the key) */
    PA_ERR_PROOF = 18,         /* server (renew, deactivate): this machine could not prove it holds the
                                  place (its place key is missing or not the one the place is bound to:
                                  the license was copied, or the key was lost; activating again with the
                                  key binds a new one -- pa_maintain does that when it has the key), or
                                  the machine's clock is more than 5 minutes off */
    PA_ERR_PRODUCT = 19,       /* the license is for another product or edition than pa_options names */
    PA_ERR_PENDING = 20,       /* volume order: no license yet -- fewer machines than the order's KMS
                                  threshold have asked, or the operator has not designated this machine
                                  (pa_next_check: the server's check-in time, 2 hours by default); or
                                  (deactivate) the deactivation waits for the operator's approval: the
                                  license stays until a renewal brings the decision */
    PA_ERR_DEACTIVATED = 21,   /* volume order (renew): the operator deactivated this machine, or approved
                                  its deactivation request; the license is removed and pa_maintain does not
                                  activate again on its own (pa_activate does, when a person asks) */
    PA_ERR_ORDER = 22,         /* volume order: not valid yet, ended, retired, or not for this OS version or
                                  architecture (the message says which); not final: retried at the next check */
    PA_ERR_CLOCK = 23,         /* this machine's clock is more than max_clock_skew_s behind a time it has already
                                  seen (turned back, or broken), or off from the server's: the license is judged
                                  at the latest time seen and not renewed until the clock is right */
} pa_err;

/* Short stable name of an error ("ok", "key", "denied", ...) for scripts. */
const char *pa_err_name(pa_err e);

/* ---- Keys ------------------------------------------------------------- */

/* What is wrong with a typed key, in words that help the user retype it. */
typedef struct pa_key_problem {
    char message[256];    /* one or two sentences for the user */
    const char *reason;   /* stable short name: "empty", "length", "character", "legacy", "checksum", ... */
    int group;            /* 1..5: the group of five to look at; 0 when it cannot be told */
} pa_key_problem;

/* Normalises `text` (case, hyphens and spaces are free) and checks its
 * checksum locally. On PA_OK `canonical` holds the key as printed on the
 * box; otherwise PA_ERR_KEY and `problem` (may be NULL) says why. */
pa_err pa_key_check(const char *text, char canonical[PA_KEY_TEXT_LEN + 1], pa_key_problem *problem);

/* ---- The client ------------------------------------------------------- */

typedef struct pa_client pa_client;

typedef struct pa_options {
    const char *state_dir;            /* where the license lives (default PA_DEFAULT_STATE_DIR) */
    const char *const *servers;       /* explicit "host:port" list, tried in order */
    size_t n_servers;                 /* entries in `servers` */
    const char *srv_domain;           /* else DNS SRV _activation._tcp.<srv_domain> */
    const char *dns_server;           /* "IP:PORT" to ask for SRV records; NULL: the system's */
    bool mdns;                        /* then, when neither found a server, browse the LAN for on-premises
                                         servers (DNS-SD _pa-activation._tcp via the Avahi daemon) */
    int mdns_timeout_ms;              /* how long that browse waits for answers (default 2000) */
    const char *public_key_pem;       /* vendor key(s), PEM; NULL: the compiled-in key */
    const char *vendor_salt;          /* salts the machine id per vendor; NULL: compiled-in */
    const char *facts_root;           /* where /sys and /etc are read from; NULL: "/" (tests change it) */
    const char *tls_ca_pem;           /* trust anchors for TLS to the servers (required unless insecure) */
    const char *tls_target_name;      /* expected certificate name when it differs from the host */
    bool insecure;                    /* plain text to the servers: development servers only */
    int timeout_ms;                   /* deadline of one call to one server (default 10000) */
    int connect_timeout_ms;           /* a server not connected within this is skipped (default 3000) */
    const char *client_version;       /* reported to the server (default "activate-c/<version>") */
    const char *product;              /* the product this installer is for: a license for another one is
                                         refused (PA_ERR_PRODUCT; a stored one PA_ERR_STATE); NULL: any */
    const char *edition;              /* the same for the edition; NULL: any */
    int64_t max_clock_skew_s;         /* how far the clock may be behind the latest time seen, or off from a
                                         server's, before it counts as wrong (PA_ERR_CLOCK); default 300 */
    int64_t clock_offset_s;           /* tests only: seconds added to the system clock wherever the library
                                         reads it (to show a clock turned back); 0 in production */
} pa_options;

/* Fills `o` with the defaults above. */
void pa_options_init(pa_options *o);

/* Checks the options and reads the machine's identity. Returns NULL with a
 * message in `err` when an option is wrong. Nothing touches the network. */
pa_client *pa_client_new(const pa_options *o, char *err, size_t errlen);
void pa_client_free(pa_client *c);

/* The message of the last call that did not return PA_OK (or a notice the
 * last successful call left, e.g. "already deactivated on the server"). */
const char *pa_error(const pa_client *c);

/* Activates this machine with `key` and stores the license. Activating the
 * same key again on the same machine costs no extra place. */
pa_err pa_activate(pa_client *c, const char *key);
/* Renews the stored license (needed for leased licenses). PA_ERR_LEASE_EXPIRED
 * when the lease lapsed first (activate again), PA_ERR_REVOKED when the key
 * was revoked (do not). Without a place key in the state directory (a
 * machine activated before place keys existed) it makes one first: the
 * server binds a place that has none to the first key that proves itself. */
pa_err pa_renew(pa_client *c);
/* Gives up this machine's place on the key and removes the stored license.
 * PA_ERR_EXHAUSTED when the key's deactivations for the period are used up
 * (the vendor limits them): the license stays, pa_retry_after says how
 * many seconds until the next is allowed and pa_error when.
 * PA_ERR_PENDING when the volume order needs the operator's approval: the
 * license stays, the request is recorded (pa_deactivation_requested), and a
 * later renewal reports the decision (denied: a note in pa_error; approved:
 * PA_ERR_DEACTIVATED, the license removed). */
pa_err pa_deactivate(pa_client *c);
/* Loads and verifies the stored license; no network. PA_OK, PA_ERR_NOT_ACTIVATED,
 * PA_ERR_EXPIRED (accessors still work), PA_ERR_CLOCK (the same) or
 * PA_ERR_STATE. Inside the license's grace period (past expires_at, less
 * than grace_seconds later) it is PA_OK with the features kept,
 * pa_grace_left() > 0 and a note in pa_error. A license is judged at the
 * latest time the client has seen, never earlier: turning the clock back
 * extends neither the license nor its grace. */
pa_err pa_status(pa_client *c);
/* Seconds of grace left when the last call found the license past its
 * expiry but inside its grace period (pa_maintain keeps retrying the
 * renewal until then); 0 otherwise. */
int64_t pa_grace_left(const pa_client *c);

/* Waits until an activation server can be reached -- discovery and a
 * connection, tried again with a growing pause -- or `timeout_s` seconds
 * have passed (activate --wait-online, at boot). PA_OK, PA_ERR_UNAVAILABLE
 * when none came, PA_ERR_CONFIG for options no wait mends. */
pa_err pa_wait_online(pa_client *c, int timeout_s);

/* ---- Machines on the key (self-service, docs/machines.md) ----------------
 * For a key whose places are all taken, one by a machine that is dead or
 * gone: list the machines holding a place and free the dead one's place,
 * authorised by the product key alone (no license needed on this machine):
 *
 *   pa_machine_list l;
 *   if (pa_machines_list(c, key, &l) == PA_OK) {
 *       for (size_t i = 0; i < l.n; i++) ... show l.machines[i].hostname, .last_seen
 *       pa_machine_release(c, key, l.machines[k].handle);
 *       pa_machine_list_free(&l);
 *   }
 *
 * A listing shows hostnames and times, never machine ids. Releases are
 * limited per key and period by the vendor (PA_ERR_EXHAUSTED with
 * pa_retry_after and a message saying when the next is allowed); a key of
 * a volume order is refused (PA_ERR_ORDER: its operator manages it). */

#define PA_MACHINE_HANDLE_LEN 16          /* hex characters of a pa_machine's handle */
#define PA_RELEASES_UNLIMITED 4294967295u /* releases_left when the key's releases are not limited */

/* One machine holding a place on the key. */
typedef struct pa_machine {
    char handle[PA_MACHINE_HANDLE_LEN + 1]; /* names the place for pa_machine_release (not the machine's id) */
    char hostname[65];                      /* as the machine last sent it (64 characters kept); "" if it never did */
    int64_t last_seen;                      /* unix seconds of its last activation or renewal; 0 when not known */
    int64_t expires_at;                     /* unix seconds its license ends; 0: never */
    bool this_machine;                      /* the place of the machine making the call */
} pa_machine;

/* The machines of a key, oldest last_seen first. */
typedef struct pa_machine_list {
    pa_machine *machines; /* `n` entries (free with pa_machine_list_free) */
    size_t n;
    unsigned max_machines;   /* places the key allows; 0: unlimited */
    unsigned releases_left;  /* releases allowed this period; PA_RELEASES_UNLIMITED: no limit */
    int64_t next_release_at; /* when none is left: unix time the next is allowed; else 0 */
} pa_machine_list;

/* Lists the machines holding a place on `key`. PA_ERR_KEY (local check),
 * PA_ERR_DENIED (not genuine), PA_ERR_REVOKED, PA_ERR_ORDER (volume key),
 * PA_ERR_EXHAUSTED (rate-limited), PA_ERR_UNAVAILABLE, ... On PA_OK free
 * `out` with pa_machine_list_free; on failure it is empty. */
pa_err pa_machines_list(pa_client *c, const char *key, pa_machine_list *out);
void pa_machine_list_free(pa_machine_list *l);
/* Frees the place named by `handle` (pa_machine.handle) on `key`; then
 * pa_activation_count says how many machines remain. PA_ERR_NOT_FOUND when
 * no place of the key has that handle (any more); PA_ERR_EXHAUSTED when
 * the key's releases for the period are used up (pa_retry_after: seconds
 * until the next is allowed; pa_error says when). Releasing this machine's
 * own place leaves its license file: its next renewal finds the place gone. */
pa_err pa_machine_release(pa_client *c, const char *key, const char *handle);

/* ---- Keeping the license (what `activate --daemon` runs) --------------- */

/* Unix time at which pa_maintain() next has work: renew at renew_after
 * (with jitter that never carries a heartbeat past its lease), retry every 2
 * hours (with jitter) while not activated or after a failure -- sooner when
 * a lease would lapse first --, at a pending volume order's check-in time,
 * at a server's retry-after when it gave one (never before). INT64_MAX:
 * nothing left to do (also after the operator deactivated this machine). */
int64_t pa_next_check(pa_client *c, int64_t now);
/* Does what is due: renews a leased license (or any license while no place
 * key is stored, to bind one), or activates with `key` (may be NULL) when no
 * valid license is stored, or when the server no longer holds the license
 * (its place was freed, or its lease lapsed before renewal), or its place is
 * bound to another place key. A revoked key is never activated again, nor a
 * machine the operator of its volume order deactivated (PA_ERR_DEACTIVATED).
 * Inside a license's grace period it keeps renewing (retried halfway to the
 * grace's end after each failure); while the clock is wrong (PA_ERR_CLOCK)
 * it renews nothing. Records the outcome for pa_next_check. */
pa_err pa_maintain(pa_client *c, const char *key);

/* ---- Offline activation (air-gapped machines) ---------------------------
 * 1. On the air-gapped machine: pa_request_write(key, "req.txt").
 * 2. On any connected machine: pa_fulfil("req.txt", "license.txt").
 * 3. Back on the air-gapped machine: pa_install("license.txt"). */

/* Writes a signed activation request for this machine to `path`. It carries
 * the public half of the machine's place key (made now if there is none),
 * so the license it brings back is bound to this machine's key. */
pa_err pa_request_write(pa_client *c, const char *key, const char *path);
/* Verifies the request's signature, activates on its behalf, verifies the
 * license (signature and binding to the request's machine) and writes it to
 * `license_path`. Does not touch this machine's own license. */
pa_err pa_fulfil(pa_client *c, const char *request_path, const char *license_path);
/* Verifies a license file (signature, this machine) and stores it. */
pa_err pa_install(pa_client *c, const char *license_path);
/* Fingerprint of the request key of the last pa_request_write / pa_fulfil
 * ("1a2b-3c4d-5e6f-7a8b"): read it out over the phone to be sure the
 * operator fulfils the request this machine made. */
const char *pa_request_fingerprint(const pa_client *c);

/* ---- The license the last call handled -----------------------------------
 * Valid after pa_activate, pa_renew, pa_status, pa_install, pa_fulfil
 * returned PA_OK (pa_status also on PA_ERR_EXPIRED); empty values otherwise.
 * Strings live until the next call on the handle. */
bool pa_is_licensed(const pa_client *c);
const char *pa_license_id(const pa_client *c);
const char *pa_product(const pa_client *c);
const char *pa_edition(const pa_client *c);
const char *pa_channel(const pa_client *c);      /* "retail", "oem", "volume", "unspecified" */
size_t pa_feature_count(const pa_client *c);
const char *pa_feature(const pa_client *c, size_t i);
bool pa_has_feature(const pa_client *c, const char *name);
int64_t pa_issued_at(const pa_client *c);       /* unix seconds */
int64_t pa_renew_after(const pa_client *c);     /* 0: no renewal needed */
int64_t pa_expires_at(const pa_client *c);      /* 0: never expires */
uint32_t pa_key_group(const pa_client *c);
uint32_t pa_key_serial(const pa_client *c);
unsigned pa_activation_count(const pa_client *c); /* machines on the key at the last server answer */
/* True when the last pa_activate found this machine's earlier place by its
 * hardware components (its machine id had changed: a new MAC, a new board)
 * and moved it, taking no new place (docs/machines.md). */
bool pa_rebound(const pa_client *c);

/* ---- Volume orders (docs/volume.md) ----------------------------------------
 * From the license (signed) when there is one, else from the last answer
 * (a pending one has no license); the counters are the server's last word,
 * shown to people, never signed. Empty / 0 for keys that are not volume keys. */
const char *pa_order_serial(const pa_client *c); /* the order's 8-digit service serial */
uint32_t pa_order_revision(const pa_client *c);
const char *pa_seat_mode(const pa_client *c); /* "permanent", "timed-reclaim", "concurrent", "unlimited", "vendor" */
unsigned pa_volume_count(const pa_client *c); /* machines that asked within the order's window (KMS count) */
unsigned pa_volume_threshold(const pa_client *c); /* the order's KMS threshold; 0: none */
unsigned pa_volume_seats(const pa_client *c);     /* seats sold; 0: unlimited */
unsigned pa_volume_seats_used(const pa_client *c);
bool pa_deactivation_requested(const pa_client *c); /* a deactivation awaits the operator's approval */

/* ---- About this machine and the last call --------------------------------- */
const uint8_t *pa_machine_id(const pa_client *c);   /* PA_MACHINE_ID_LEN bytes */
const char *pa_machine_id_hex(const pa_client *c);
const char *pa_machine_id_source(const pa_client *c); /* "dmi", "mac" or "machine-id" */
/* Hex of the first 16 bytes of SHA-256(machine id): the name a volume
 * order's operator sees this machine by (order machines, designate, ...). */
const char *pa_machine_digest(const pa_client *c);
/* The hardware components the client reads and sends, hashed, with
 * Activate (docs/machines.md): their names for i = 0, 1, ... (NULL past the
 * last), and whether this machine has a usable one of that name. Only the
 * salted digests ever leave the machine. */
const char *pa_component_name(size_t i);
bool pa_has_component(const pa_client *c, const char *name);
const char *pa_server(const pa_client *c);     /* "host:port" that answered the last call, or "" */
int pa_retry_after(const pa_client *c);         /* seconds a server asked us to wait, or 0 */

#endif
