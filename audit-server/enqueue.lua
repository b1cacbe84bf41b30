-- enqueue.lua -- stores a Submit batch: each new request_id is marked seen
-- (queued) and its record added to the queue; a known one is only counted
-- as a duplicate. One script, so a duplicate is counted once whatever the
-- interleaving of Submit calls.
--
-- KEYS[ENQUEUE_KEY_*] and ARGV positions: audit_script_args.h, whose names
-- the build defines as locals in front of this file. After the fixed keys
-- comes one request key per record. From ARGV[ENQUEUE_ARG_FIRST] on, each
-- record is its request_id followed by ARGV[ENQUEUE_ARG_PAIRS] field/value
-- pairs. A request key is created with SET NX EX: it expires by itself
-- after ARGV[ENQUEUE_ARG_RETENTION] seconds, so no scan ever trims them.
--
-- Returns {accepted, duplicates}.
local per, ttl = tonumber(ARGV[ENQUEUE_ARG_PAIRS]), ARGV[ENQUEUE_ARG_RETENTION]
local accepted, dup, i, k = 0, 0, ENQUEUE_ARG_FIRST, ENQUEUE_KEYS + 1
while i <= #ARGV do
  local rid = ARGV[i]
  if redis.call('SET', KEYS[k], 'queued', 'NX', 'EX', ttl) then
    local args = {'XADD', KEYS[ENQUEUE_KEY_QUEUE], '*', 'request_id', rid}
    for j = 1, per * 2 do args[#args + 1] = ARGV[i + j] end
    redis.call(unpack(args))
    accepted = accepted + 1
  else dup = dup + 1 end
  i, k = i + 1 + per * 2, k + 1
end
return {accepted, dup}
