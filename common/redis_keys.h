/* redis_keys.h -- every Redis key name the programs use, defined once.
 *
 * Key names are a contract between the keystore CLI, both daemons, the Lua
 * scripts and the ACL files (docker/redis/activation.acl.in and audit.acl.in
 * grant by these patterns), so each is spelled here and nowhere else in C.
 * Lua scripts receive their keys as KEYS[] (and hash fields built from
 * names, like the audit:revoked member, as ARGV) from the C side and build
 * none themselves. Every per-group key carries the hash tag {g:ID}, so one
 * group's keys share a cluster slot and a script may touch several of them.
 * "rkey" is a Redis key: a plain "key" is a product key in this code.
 *
 * The pa_rkey_* functions write the name into buf and return its length, or
 * -1 if it does not fit (PA_RKEY_MAX always does). The *_FMT strings are the
 * same names as printf formats, for hiredis format strings in tests and
 * benchmarks: redisCommand(c, "HGET " PA_RKEY_RECORD_FMT " n", group, serial).
 * Each line says what the key holds and who reads (r) or writes (w) it. */
#ifndef PA_COMMON_REDIS_KEYS_H
#define PA_COMMON_REDIS_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define PA_RKEY_MAX 96 /* room for any key name below, a client address's included */

/* ---- Redis A, the activation store ------------------------------------ */

/* hash: the group record (keystore/group.h GROUP_F_*) + wrapped first secret.
 * w keystore (group create); r activation server, policy.lua, keystore. */
#define PA_RKEY_GROUP_FMT "{g:%u}:group"
int pa_rkey_group(char *buf, size_t n, uint32_t id);

/* string: the next serial to hand out (INCRBY per batch). r/w keystore only. */
#define PA_RKEY_SERIAL_FMT "{g:%u}:serial"
int pa_rkey_serial(char *buf, size_t n, uint32_t id);

/* set: revoked serials of the group, decimal. w revocation puller (copied
 * from the audit server's log); r policy.lua. */
#define PA_RKEY_REVOKED_FMT "{g:%u}:revoked"
int pa_rkey_revoked(char *buf, size_t n, uint32_t id);

/* hash: one key's activation record (use counter and places, see
 * policy.lua). r/w policy.lua only. */
#define PA_RKEY_RECORD_FMT "{g:%u}:k:%u"
int pa_rkey_record(char *buf, size_t n, uint32_t id, uint32_t serial);

/* zset: the places of one key's record, scored by when each may be
 * forgotten (lapse or last seen, see policy.lua "Retention"); only for
 * records of two places or more. r/w policy.lua only. */
#define PA_RKEY_RECORD_INDEX_FMT "{g:%u}:k:%u:places"
int pa_rkey_record_index(char *buf, size_t n, uint32_t id, uint32_t serial);

/* string: the group's token bucket. r/w policy.lua only. */
#define PA_RKEY_GROUP_BUCKET_FMT "{g:%u}:rl"
int pa_rkey_group_bucket(char *buf, size_t n, uint32_t id);

/* string: the group's failure bucket: keys of the group refused as not
 * genuine, from any address. Exists for made-up group IDs too (so a group's
 * existence shows in no rate limit). r/w policy.lua only. */
#define PA_RKEY_GROUP_FAILURE_BUCKET_FMT "{g:%u}:rl:f"
int pa_rkey_group_failure_bucket(char *buf, size_t n, uint32_t id);

/* string: one client address's token bucket; `address` is the text the
 * activation server limits by (IPv6: its /64, policy_address_key).
 * r/w policy.lua only; expires when the bucket would be full again. */
#define PA_RKEY_ADDRESS_BUCKET_FMT "rl:a:%s"
int pa_rkey_address_bucket(char *buf, size_t n, const char *address);

/* stream: the group's machine log (retail keys), as PA_RKEY_ORDER_MLOG_FMT.
 * w policy.lua (XADD MAXLEN ~); r admin server (machine ingest). */
#define PA_RKEY_GROUP_MLOG_FMT "{g:%u}:mlog"
int pa_rkey_group_mlog(char *buf, size_t n, uint32_t id);
/* Bound of each machine log (XADD MAXLEN ~): enough for the admin server
 * to be down a while without losing an entry. */
#define PA_MLOG_MAXLEN "100000"

/* stream: offline-audit records. w policy.lua (XADD with the activation);
 * r/w outbox forwarder through consumer group PA_OUTBOX_GROUP. */
#define PA_RKEY_OUTBOX "audit:outbox"
#define PA_OUTBOX_GROUP "forwarders"
/* stream: the same records on Redis Cluster (docs/cluster.md), one shard
 * per hash slot: {ob:N}:outbox with N the slot's tag (redis_slot_tags with
 * PA_OUTBOX_SHARD_TAG_PREFIX), so a group's grant and its record share a
 * slot. Same fields, consumer group and writers as PA_RKEY_OUTBOX; the cap
 * is per shard. */
#define PA_RKEY_OUTBOX_SHARD_FMT "{ob:%u}:outbox"
#define PA_OUTBOX_SHARD_TAG_PREFIX "ob:"
int pa_rkey_outbox_shard(char *buf, size_t n, uint32_t tag);

/* The revocation puller's position in the audit server's log, r/w by the
 * puller only and moved together by one script (a compare-and-set); the
 * {rev} tag keeps the three in one hash slot on Redis Cluster:
 *   string: last revocation sequence applied to the {g:ID}:revoked sets */
#define PA_RKEY_REVOCATIONS_LAST_SEQ "{rev}:last_seq"
/*   string: the epoch (identity) of the log that sequence belongs to */
#define PA_RKEY_REVOCATIONS_EPOCH "{rev}:epoch"
/*   string: the entry_id of the entry at that sequence, so a log restored
 *   from a backup (same epoch, sequences reused) is noticed */
#define PA_RKEY_REVOCATIONS_LAST_ID "{rev}:last_id"
/* The same three before they had the tag: read once at the puller's start
 * and copied when the tagged ones are missing; then no longer used. */
#define PA_RKEY_REVOCATIONS_OLD_LAST_SEQ "revocations:last_seq"
#define PA_RKEY_REVOCATIONS_OLD_EPOCH "revocations:epoch"
#define PA_RKEY_REVOCATIONS_OLD_LAST_ID "revocations:last_id"

/* ---- Redis A: threat counters (docs/admin.md, "Threat view") ---------
 * Each activation server adds its in-memory counts every --threat-flush-ms;
 * the admin server reads them. Both expire PA_THREAT_RETENTION_S after
 * their last write, so memory is bounded by days x groups.
 *   hash: one existing group's counts for one UTC day (YYYYMMDD), field
 *   "MINUTE:KIND" (PA_THREAT_FIELD_FMT): minute of the day 0..1439 and one
 *   of the PA_THREAT_KIND_* letters. w activation server (HINCRBY); r admin. */
#define PA_RKEY_THREAT_GROUP_FMT "threat:g:%u:%u"
int pa_rkey_threat_group(char *buf, size_t n, uint32_t id, uint32_t yyyymmdd);
#define PA_THREAT_FIELD_FMT "%u:%c"
#define PA_THREAT_KIND_ATTEMPT 'a'       /* an Activate with a well-formed key */
#define PA_THREAT_KIND_NOT_GENUINE 'n'   /* refused as not genuine */
#define PA_THREAT_KIND_RATE_LIMITED 'r'  /* refused by a rate limit */
#define PA_THREAT_KIND_GRANT 'g'         /* granted */
#define PA_THREAT_KIND_MACHINE_LIMIT 'l' /* refused: the key's machine limit (no place) */
#define PA_THREAT_KIND_REVOKED 'v'       /* a revocation reached Redis A (the revocation puller) */
/*   zset: client addresses (IPv6: their /64) by refusals (not genuine or
 *   rate-limited) in one UTC hour (YYYYMMDDHH), trimmed to the
 *   PA_THREAT_TOP_KEEP highest. w activation server (ZINCRBY); r admin. */
#define PA_RKEY_THREAT_TOP_FMT "threat:top:%u"
int pa_rkey_threat_top(char *buf, size_t n, uint32_t yyyymmddhh);
#define PA_THREAT_TOP_KEEP 100
#define PA_THREAT_RETENTION_S (8 * 86400)

/* ---- Redis A: volume orders (docs/volume.md) --------------------------
 * Every key of one order carries the hash tag {o:SERIAL} (the 8-digit
 * service serial number), so an activation, renewal or heartbeat is one
 * script call in one slot. */

/* set: service serials of every imported order (retired ones too).
 * w order import; r activation server (order cache), order commands. */
#define PA_RKEY_ORDERS "orders"

/* hash: the imported order: the SignedOrder bytes and the terms
 * volume.lua reads, flattened (activation-server/order_record.h ORDER_F_*).
 * w order import / retire; r activation server, volume.lua. */
#define PA_RKEY_ORDER_FMT "{o:%s}:order"
int pa_rkey_order(char *buf, size_t n, const char *serial);

/* set: the accepted key hashes of an on-premises order (16 bytes each).
 * w order import; r activation server (loaded with the order). */
#define PA_RKEY_ORDER_KEYS_FMT "{o:%s}:keys"
int pa_rkey_order_keys(char *buf, size_t n, const char *serial);

/* hash: the machine table, machine digest (16 bytes) -> machine record
 * (28 bytes, docs/volume.md). r/w volume.lua; r order commands. */
#define PA_RKEY_ORDER_MACHINES_FMT "{o:%s}:m"
int pa_rkey_order_machines(char *buf, size_t n, const char *serial);

/* hash: machine digest -> the facts the order collects (JSON object).
 * w volume.lua; r order commands, usage report. */
#define PA_RKEY_ORDER_FACTS_FMT "{o:%s}:facts"
int pa_rkey_order_facts(char *buf, size_t n, const char *serial);

/* hash: the order's counters (seats held, machines in the window, ...).
 * r/w volume.lua; r order commands, metrics. */
#define PA_RKEY_ORDER_COUNTS_FMT "{o:%s}:n"
int pa_rkey_order_counts(char *buf, size_t n, const char *serial);

/* zset: the order's non-empty wheel buckets by the time they fall due.
 * Each bucket is a set of machine digests, "{o:SERIAL}:w:NAME": volume.lua
 * builds those names from PA_RKEY_ORDER_WHEEL_PREFIX_FMT (an exception to
 * "scripts build no key names": they are made as time passes and share the
 * order's hash tag). r/w volume.lua only. */
#define PA_RKEY_ORDER_WHEEL_FMT "{o:%s}:wheel"
#define PA_RKEY_ORDER_WHEEL_PREFIX_FMT "{o:%s}:w:"
int pa_rkey_order_wheel(char *buf, size_t n, const char *serial);
int pa_rkey_order_wheel_prefix(char *buf, size_t n, const char *serial);

/* zset: component matching's index of an order whose machine_match is
 * above 0: the digests of machines whose records keep component tokens,
 * by the time of their last Activate, so an Activate finds the most recent
 * ones in O(log n) (docs/volume.md, "Component matching"). r/w volume.lua
 * only. */
#define PA_RKEY_ORDER_SEEN_FMT "{o:%s}:seen"
int pa_rkey_order_seen(char *buf, size_t n, const char *serial);

/* set: designated devices ("m:" machine digest hex, "s:" host serial,
 * "mac:" MAC address). w order commands; r volume.lua. */
#define PA_RKEY_ORDER_DESIGNATED_FMT "{o:%s}:designated"
int pa_rkey_order_designated(char *buf, size_t n, const char *serial);

/* hash: usage return. Vendor side: the last verified report of the order;
 * on-premises side: when the last upload succeeded. w/r usage code. */
#define PA_RKEY_ORDER_USAGE_FMT "{o:%s}:usage"
int pa_rkey_order_usage(char *buf, size_t n, const char *serial);

/* stream: the order's machine log, one entry per grant, renew, pending,
 * deactivation (request) or reclaim (docs/admin.md, "The machine
 * directory" lists the fields). w volume.lua (XADD MAXLEN ~); r admin
 * server (machine ingest). */
#define PA_RKEY_ORDER_MLOG_FMT "{o:%s}:mlog"
int pa_rkey_order_mlog(char *buf, size_t n, const char *serial);

/* ---- Redis A: the admin server (docs/admin.md) ------------------------
 * Its own keys, r/w by the admin server and its `user` commands only. */

/* set: names of every operator account. */
#define PA_RKEY_ADMIN_USERS "admin:users"

/* hash: one account: role, hash (Argon2id encoded), created_at, gen (bumped
 * by a new password, which ends the account's sessions). */
#define PA_RKEY_ADMIN_USER_FMT "admin:user:%s"
int pa_rkey_admin_user(char *buf, size_t n, const char *name);

/* string: one session by the hex SHA-256 of its cookie: "GEN USER CSRF"
 * (the account's gen when it was made); expires after --session-ttl-s
 * of disuse (GETEX pushes it forward). */
#define PA_RKEY_ADMIN_SESSION_FMT "admin:session:%s"
int pa_rkey_admin_session(char *buf, size_t n, const char *id_hash_hex);

/* hash: the login token buckets of an account and of a client address
 * (tokens, ts); expire once full again. */
#define PA_RKEY_ADMIN_RL_USER_FMT "admin:rl:u:%s"
#define PA_RKEY_ADMIN_RL_ADDR_FMT "admin:rl:a:%s"
int pa_rkey_admin_rl_user(char *buf, size_t n, const char *name);
int pa_rkey_admin_rl_addr(char *buf, size_t n, const char *address);

/* stream: the admin trail, one entry per change: user, action, target,
 * addr, result, t (MAXLEN ~ 1000000). */
#define PA_RKEY_ADMIN_TRAIL "admin:trail"

/* hash: machine log key -> last entry ID taken into the directory.
 * r/w admin server (machine ingest) only. */
#define PA_RKEY_MLOG_POS "admin:mlog:pos"
/* string: the ingest lease, the holder's random token (SET NX PX), so one
 * admin server ingests at a time. r/w machine ingest. */
#define PA_RKEY_INGEST_LEASE "admin:ingest:lease"
/* The same two on Redis Cluster (docs/cluster.md), in the slot of {md}:
 * the directory's script saves the positions and takes the lease beside
 * the records it writes, and a script touches one slot. */
#define PA_RKEY_MLOG_POS_CLUSTER "{md}:mlog:pos"
#define PA_RKEY_INGEST_LEASE_CLUSTER "{md}:ingest:lease"
/* The machine directory (admin-server/machine_dir.lua describes the layout;
 * docs/admin.md "Directory layout"), all under the hash tag {md}. The
 * script makes bucket names from these prefixes and a number, as the
 * order wheel does. r/w machine_dir.lua only.
 *   hash: a bucket of machine records, "{md}:r:N", id (12 bytes) -> record */
#define PA_RKEY_MD_RECORD_PREFIX "{md}:r:"
/*   zset: the ordered index's bucket boundaries (lex) */
#define PA_RKEY_MD_INDEX "{md}:ix"
/*   zset: one bucket of the ordered index, "{md}:ix:N" (lex) */
#define PA_RKEY_MD_INDEX_PREFIX "{md}:ix:"
/*   string: the last index bucket number handed out */
#define PA_RKEY_MD_INDEX_NEXT "{md}:ixn"
/* ---- Redis A: admin server, events and webhooks (docs/admin.md) ------
 * r/w by the admin server only (user `admin`, ~admin:*). */
/* set: IDs of the webhook endpoints. */
#define PA_RKEY_ADMIN_WEBHOOKS "admin:webhooks"
/* hash: one endpoint: url, events (comma-separated), secret, created_at. */
#define PA_RKEY_ADMIN_WEBHOOK_FMT "admin:webhook:%s"
int pa_rkey_admin_webhook(char *buf, size_t n, const char *id);
/* hash: one delivery still to make: webhook, event, event_id, body, tries. */
#define PA_RKEY_ADMIN_DELIVERY_FMT "admin:delivery:%s"
int pa_rkey_admin_delivery(char *buf, size_t n, const char *id);
/* zset: pending delivery IDs by when they are due (unix ms); a claimed one
 * is pushed forward by the claim's lease, so a crashed sender's retries. */
#define PA_RKEY_ADMIN_DELIVERY_DUE "admin:delivery:due"
/* stream: every delivery try (MAXLEN ~ PA_ADMIN_DELIVERIES_MAX). */
#define PA_RKEY_ADMIN_DELIVERIES "admin:deliveries"
#define PA_ADMIN_DELIVERIES_MAX 10000
/* hash: what the event detection has already announced, so an event fires
 * once per crossing (field names: admin-server/events.c). */
#define PA_RKEY_ADMIN_EVENT_STATE "admin:event:state"
/* set: revoked serials of group ID already announced as key.revoked. */
#define PA_RKEY_ADMIN_EVENT_REVOKED_FMT "admin:event:revoked:%u"
int pa_rkey_admin_event_revoked(char *buf, size_t n, uint32_t id);
/* string: the admin server running the event detection (a lease). */
#define PA_RKEY_ADMIN_EVENT_LEASE "admin:event:lease"

/* ---- both stores ------------------------------------------------------- */

/* set: IDs of all groups, decimal. w keystore; r activation server (A),
 * audit server (B). */
#define PA_RKEY_GROUPS "groups"

/* ---- Redis A: the admin server's organisations and local revocations --
 * (docs/admin.md). Owned by the admin server's `admin` user (admin:*). */

/* set: IDs of every organisation, decimal. r/w admin server (organisations.c). */
#define PA_RKEY_ADMIN_ORGS "admin:orgs"
/* string: the last organisation ID handed out (INCR). r/w admin server. */
#define PA_RKEY_ADMIN_ORG_NEXT "admin:org:next"
/* hash: one organisation: name, created_at. r/w admin server. */
#define PA_RKEY_ADMIN_ORG_FMT "admin:org:%u"
int pa_rkey_admin_org(char *buf, size_t n, uint32_t id);
/* hash: organisation name folded to lower case -> ID, so names stay unique.
 * r/w admin server, changed in the same script as the organisation. */
#define PA_RKEY_ADMIN_ORG_NAMES "admin:org:names"
/* string: the organisation ID an order (service serial) belongs to; absent:
 * none. r/w admin server. */
#define PA_RKEY_ADMIN_ORG_OF_FMT "admin:org:of:%s"
int pa_rkey_admin_org_of(char *buf, size_t n, const char *serial);
/* stream: revocations made on premises (no audit server): group, serial,
 * reason, user, at. w/r admin server (revocations.c); the revocation itself
 * is the member added to {g:ID}:revoked. */
#define PA_RKEY_ADMIN_REVOCATIONS "admin:revocations"

/* ---- Redis B, the audit store ----------------------------------------- */

/* hash: alg, created_at and the wrapped second secret. w keystore; r audit
 * server (never written by it). Unreadable to every user of Redis A. */
#define PA_RKEY_AUDIT_FMT "{g:%u}:audit"
int pa_rkey_audit(char *buf, size_t n, uint32_t id);

/* The audit server's own keys, r/w by the audit server and its operator
 * commands only (audit-server/audit_store.h describes them in full):
 *   stream: every verdict (never the full key) */
#define PA_RKEY_AUDIT_TRAIL "audit:trail"
/*   stream: the revocation log, entry ID "<sequence>-0" */
#define PA_RKEY_AUDIT_REVOCATIONS "audit:revocations"
/*   string: last revocation sequence handed out */
#define PA_RKEY_AUDIT_REVOCATION_SEQ "audit:revocation_seq"
/*   string: the log's epoch, 32 hex: made with its first entry, replaced
 *   whenever the log starts again from empty (sequence 1) */
#define PA_RKEY_AUDIT_REVOCATION_EPOCH "audit:revocation_epoch"
/*   hash: member "group:serial" (pa_audit_revoked_member) -> sequence */
#define PA_RKEY_AUDIT_REVOKED "audit:revoked"
/*   stream: submitted records waiting for an audit, read through consumer
 *   group PA_AUDIT_QUEUE_GROUP */
#define PA_RKEY_AUDIT_QUEUE "audit:queue"
#define PA_AUDIT_QUEUE_GROUP "auditors"
/*   string: one submitted or verified request, "queued" | "done", by its
 *   request_id (Submit idempotency); expires after the retention
 *   (--request-retention-s), so the set of known ids cannot grow forever */
#define PA_RKEY_AUDIT_REQUEST_FMT "audit:request:%s"
int pa_rkey_audit_request(char *buf, size_t n, const char *request_id);

/* A field of PA_RKEY_AUDIT_REVOKED (not a key): "GROUP:SERIAL". */
#define PA_AUDIT_REVOKED_MEMBER_FMT "%u:%u"
int pa_audit_revoked_member(char *buf, size_t n, uint32_t group, uint32_t serial);

#endif
