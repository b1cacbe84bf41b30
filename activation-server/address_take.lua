-- address_take.lua -- the client address's token bucket by itself, for
-- Redis A on Redis Cluster (docs/cluster.md, "The address bucket"): the
-- bucket rl:a:ADDR lies in a slot of its own, so there the callers take
-- its tokens with this call first and run policy.lua without the bucket
-- only if it granted. On a single node policy.lua takes them in its own
-- call, as one atomic step; this script is not used there.
--
-- It answers as policy.lua's address step does, so rate_hold.c and the
-- callers read both alike:
--   {0}                                  granted: `take` tokens are spent
--   {1, retry_after_seconds, "address"}  refused: nothing is spent
--
-- KEYS: the address bucket.
-- ARGV: rate (tokens per second; 0 disables the bucket), burst, need
--       (tokens the bucket must hold), take (tokens spent when it does).
--
-- The bucket's value and expiry are policy.lua's (bucket_level,
-- bucket_store): two doubles, level and milliseconds, expiring once full
-- again. The two scripts must keep this format alike, since a bucket may
-- have been written by either.
local OK, RATE_LIMITED = 0, 1

local key, rate, burst = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local need, take = tonumber(ARGV[3]), tonumber(ARGV[4])
if not (rate and burst and need and take) then
    return redis.error_reply('ERR address_take.lua: rate, burst, need and take must be numbers')
end
if rate <= 0 then return {OK} end

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local level = burst
local v = redis.call('GET', key)
if v then
    local l, ts = struct.unpack('<dd', v)
    local dt = now_ms - ts
    if dt < 0 then dt = 0 end
    level = math.min(burst, l + dt * rate / 1000)
end
if level < need then
    local s = math.ceil((need - level) / rate)
    if s < 1 then s = 1 end
    return {RATE_LIMITED, s, 'address'}
end
if take > 0 then
    level = math.max(0, level - take)
    redis.call('SET', key, struct.pack('<dd', level, now_ms), 'PX', math.ceil((burst - level) / rate * 1000) + 1000)
end
return {OK}
