-- list_revocations.lua -- a page of the revocation log together with the
-- last sequence handed out and the log's epoch, read at one instant; and,
-- for the caller's last sequence, whether the log still holds that entry
-- and its entry_id, so a caller can tell "the log I follow" from "a log
-- restored from a backup that reuses my sequences".
--
-- KEYS[LIST_KEY_*] and ARGV positions: audit_script_args.h, whose names the
-- build defines as locals in front of this file.
--
-- Returns {last sequence, epoch or '', 1/0 entry at ARGV[LIST_ARG_AFTER]
-- found, its entry_id or '', entries}.
local found, anchor = 0, ''
if ARGV[LIST_ARG_AFTER] ~= '0' then
  local at = ARGV[LIST_ARG_AFTER] .. '-0'
  local e = redis.call('XRANGE', KEYS[LIST_KEY_REVOCATIONS], at, at)
  if #e > 0 then
    found = 1
    local f = e[1][2]
    for i = 1, #f - 1, 2 do if f[i] == 'entry_id' then anchor = f[i + 1] end end
  end
end
return {redis.call('GET', KEYS[LIST_KEY_SEQ]) or '0', redis.call('GET', KEYS[LIST_KEY_EPOCH]) or '', found, anchor,
        redis.call('XRANGE', KEYS[LIST_KEY_REVOCATIONS], ARGV[LIST_ARG_START], '+', 'COUNT',
          ARGV[LIST_ARG_COUNT])}
