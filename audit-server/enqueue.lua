-- enqueue.lua -- stores a Submit batch: each new request_id is marked seen
-- (queued) and its record added to the queue; a known one is only counted
-- as a duplicate. One script, so a duplicate is counted once whatever the
-- interleaving of Submit calls.
--
-- KEYS[ENQUEUE_KEY_*] and ARGV positions: audit_script_args.h, whose names
-- the build defines as locals in front of this file. From
-- ARGV[ENQUEUE_ARG_FIRST] on, each record is its request_id followed by
-- ARGV[ENQUEUE_ARG_PAIRS] field/value pairs.
--
-- Returns {accepted, duplicates}.
local per = tonumber(ARGV[ENQUEUE_ARG_PAIRS])
local accepted, dup, i = 0, 0, ENQUEUE_ARG_FIRST
while i <= #ARGV do
  local rid = ARGV[i]
  if redis.call('HEXISTS', KEYS[ENQUEUE_KEY_REQUESTS], rid) == 0 then
    local args = {'XADD', KEYS[ENQUEUE_KEY_QUEUE], '*', 'request_id', rid}
    for j = 1, per * 2 do args[#args + 1] = ARGV[i + j] end
    redis.call(unpack(args))
    redis.call('HSET', KEYS[ENQUEUE_KEY_REQUESTS], rid, 'queued')
    accepted = accepted + 1
  else dup = dup + 1 end
  i = i + 1 + per * 2
end
return {accepted, dup}
