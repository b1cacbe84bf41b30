-- list_revocations.lua -- a page of the revocation log together with the
-- last sequence handed out, read at one instant.
--
-- KEYS[LIST_KEY_*] and ARGV positions: audit_script_args.h, whose names the
-- build defines as locals in front of this file.
--
-- Returns {last sequence, entries}.
return {redis.call('GET', KEYS[LIST_KEY_SEQ]) or '0',
        redis.call('XRANGE', KEYS[LIST_KEY_REVOCATIONS], ARGV[LIST_ARG_START], '+', 'COUNT',
          ARGV[LIST_ARG_COUNT])}
