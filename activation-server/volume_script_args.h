/* volume_script_args.h -- the KEYS[], ARGV[] and reply positions of
 * volume.lua, named once for C (volume_policy.c) and Lua.
 *
 * The build prepends `local NAME = value` for every `#define NAME value`
 * line here to the script (cmake/embed_text.cmake), so the C side fills its
 * argument list and the script reads it by the same names. Positions are
 * Lua's, from 1: C puts KEYS[k] at keys[k - 1] and ARGV[a] at args[a - 1].
 * Values must be plain integers. */
#ifndef PA_ACTIVATION_VOLUME_SCRIPT_ARGS_H
#define PA_ACTIVATION_VOLUME_SCRIPT_ARGS_H

/* ---- KEYS: every operation passes the order's seven ---- */
#define VOL_KEY_MACHINES 1   /* PA_RKEY_ORDER_MACHINES_FMT: digest -> 28-byte record */
#define VOL_KEY_COUNTS 2     /* PA_RKEY_ORDER_COUNTS_FMT: seats, machines, over_term */
#define VOL_KEY_WHEEL 3      /* PA_RKEY_ORDER_WHEEL_FMT: bucket name -> when it falls due */
#define VOL_KEY_DESIGNATED 4 /* PA_RKEY_ORDER_DESIGNATED_FMT */
#define VOL_KEY_FACTS 5      /* PA_RKEY_ORDER_FACTS_FMT */
#define VOL_KEY_MLOG 6       /* PA_RKEY_ORDER_MLOG_FMT: the machine log (docs/admin.md) */
#define VOL_KEY_SEEN 7       /* PA_RKEY_ORDER_SEEN_FMT: component matching's candidates by last Activate */
#define VOL_ORDER_KEYS 7
/* activate, renew, deactivate add, in this order, only those that apply
 * (so their positions are not fixed; volume.lua finds them by the op and
 * by VOL_ARG_REVOKED): activate the offline-audit outbox (PA_RKEY_OUTBOX;
 * on Redis Cluster the order's slot's shard, PA_RKEY_OUTBOX_SHARD_FMT);
 * on a single node the key's group's revoked set (PA_RKEY_REVOKED_FMT);
 * last the client address's bucket (PA_RKEY_ADDRESS_BUCKET_FMT), left out
 * on Redis Cluster, where address_take.lua took it first. */

/* ---- ARGV: every operation ---- */
#define VOL_ARG_OP 1           /* activate | renew | deactivate | sweep | approve | deny | force */
#define VOL_ARG_ORDER 2        /* PA_RKEY_ORDER_FMT: read only, hence not in KEYS */
#define VOL_ARG_WHEEL_PREFIX 3 /* PA_RKEY_ORDER_WHEEL_PREFIX_FMT: bucket key = prefix .. name */
#define VOL_ARG_AGE_MAX 4      /* wheel members aged in this call at most */
/* approve, deny, force and the caller's operations: */
#define VOL_ARG_MACHINE 5 /* machine digest: SHA-256(machine id), first 16 bytes */
/* activate, renew, deactivate: */
#define VOL_ARG_HOLDER 6       /* place-key digest, first 11 bytes; "" (activate only): none sent */
#define VOL_ARG_RANDOM 7       /* activate: 8 fresh random bytes; renew, deactivate: the license id's */
#define VOL_ARG_SERIAL 8       /* the key's serial, decimal (revocation) */
#define VOL_ARG_ADDRESS_RATE 9 /* tokens per second; 0: no limit */
#define VOL_ARG_ADDRESS_BURST 10
#define VOL_ARG_IP 11      /* the client address, for the machine log */
#define VOL_ARG_GROUP 12   /* the key's group, decimal (the machine log) */
#define VOL_ARG_REVOKED 13 /* "": read the revoked set in KEYS; Redis Cluster: "1"/"0" as read just before */
/* activate only: */
#define VOL_ARG_HOSTNAME 14 /* the machine log: what the request says of the machine */
#define VOL_ARG_OS 15
#define VOL_ARG_HOST_SERIAL 16
#define VOL_ARG_MACS 17            /* comma-separated */
#define VOL_ARG_FACTS 18           /* the collected facts as a JSON object, "" when none */
#define VOL_ARG_AUDIT_MODE 19      /* 0 none, 1 sampled, 2 sampled if the key's first use in the order */
#define VOL_ARG_OUTBOX_MAX 20      /* the outbox's cap (--audit-outbox-max) */
#define VOL_ARG_GRANT_WHEN_FULL 21 /* "1": at the cap grant unaudited; "0": refuse */
#define VOL_ARG_TOKENS 22          /* component tokens, 8 bytes each, sorted, at most 16; "" none */
#define VOL_ARG_AUDIT_N 23         /* how many outbox field/value arguments follow this one */
/* ... then those, then to the end the machine's designated-set names. */

/* ---- the reply: an array, every position present (0 when it does not apply) ---- */
#define VOL_R_STATUS 1     /* volume_status */
#define VOL_R_VERSION 2    /* the order hash's version, so the caller reloads a stale cache */
#define VOL_R_NOW 3        /* Redis clock, unix seconds */
#define VOL_R_COUNT 4      /* machines in the window (the KMS activation count) */
#define VOL_R_SEATS 5      /* seats held */
#define VOL_R_PENDING 6    /* 0 granted, 1 below the threshold, 2 not designated */
#define VOL_R_CHECK_IN 7   /* when to call again (unix seconds; 0: no need) */
#define VOL_R_EXPIRES 8    /* the license's expires_at (0: never) */
#define VOL_R_RENEW 9      /* the license's renew_after (0: no renewal) */
#define VOL_R_RANDOM 10    /* the license id's random part (8 bytes), "" if none */
#define VOL_R_AGAIN 11     /* 1: the machine held its grant already (same license id) */
#define VOL_R_DEACT 12     /* 0 none, 1 awaiting approval, 2 denied (reported once) */
#define VOL_R_RETRY 13     /* rate limited, or a full concurrent order: seconds to wait */
#define VOL_R_AGED 14      /* wheel members handled by this call's ageing */
#define VOL_R_MORE 15      /* 1: due buckets are left (sweep again) */
#define VOL_R_OVER_TERM 16 /* machines counted after the end date (continue-counted) */
#define VOL_R_SCOPE 17     /* rate limited: "address" */
#define VOL_R_AUDITED 18   /* 1: the outbox record was written; 2: sampled, granted unaudited (outbox full) */
#define VOL_R_CHANGES 19   /* writes of the counters so far: orders replies by the counters they saw */
#define VOL_R_REBOUND 20   /* activate: re-bound by components: how many it shared; 0 not re-bound */
#define VOL_R_WAS 21       /* re-bound: the machine digest the record moved from (16 bytes), else "" */
#define VOL_R_N 21

#endif
