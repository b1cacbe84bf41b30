-- policy.lua -- everything the activation server asks of Redis A, one call
-- per request: rate limits, revocation, the group's policy applied to the
-- key's activation record, and the optional offline-audit outbox record.
-- Running it as one script makes each decision atomic (no half-written
-- record, no race between two machines taking the last place) and costs
-- exactly one round trip. It is embedded into the server binary at build time
-- and registered once per connection (EVALSHA).
--
-- ARGV[1] names the operation:
--   activate    KEYS group, revoked, record, group bucket, address bucket, outbox
--   renew       KEYS group, revoked, record, address bucket
--   deactivate  KEYS group, record, address bucket
--   reject      KEYS address bucket     (a failed genuineness check costs tokens)
--
-- Keys (every per-group key carries the hash tag {g:ID}):
--   {g:ID}:group     hash    group record (keystore/group.h); read here:
--                            version, max_machines, lease_seconds, renew_seconds
--   {g:ID}:revoked   set     revoked serials, decimal
--   {g:ID}:k:SERIAL  hash    the key's activation record:
--                              "n"      uses of the key: Activate and Renew
--                                       calls that reached the record
--                              <place>  one field per machine holding a place:
--                                       the first 16 bytes of SHA-256(machine_id)
--                                       -> license random (8 bytes) |
--                                          expires_at (u32 LE, 0 = never)
--                            Sized for memory: with one machine the hash is a
--                            44-byte listpack (jemalloc's 48-byte class), about
--                            140 bytes of Redis memory per activated key in all.
--                            The 128-bit digest halves the field; making two
--                            machine ids share one takes ~2^64 work.
--   {g:ID}:rl        string  the group's token bucket: tokens, ms (2 doubles)
--   rl:a:ADDR        string  one client address's token bucket (IPv6: its /64)
--   audit:outbox     stream  offline-audit records (fields in docs/data-model.md)
-- The address bucket and the outbox are outside the group's hash slot; on
-- Redis Cluster they would move to a second call.
--
-- Time is Redis's own clock (TIME), so every replica of the server agrees on
-- leases. Places whose lease lapsed are reclaimed only when a key is full.
--
-- Reply: an array whose first element is a status:
local OK, RATE_LIMITED, UNKNOWN_GROUP, REVOKED, NO_PLACE, NOT_FOUND, EXPIRED, NOT_GENUINE =
    0, 1, 2, 3, 4, 5, 6, 7
local OUTBOX_FULL = 9   -- 8 is the C side's UNAVAILABLE
--   OK            activate: {0, version, count, expires, renew_after, now, random, again,
--                            audited (1 when the outbox record was written, 2 when it was
--                            sampled but granted unaudited: the outbox is full)}
--                 renew:    {0, version, count, expires, renew_after, now, random, 1}
--                 deactivate:     {0, version, count}
--   RATE_LIMITED  {1, retry_after_seconds, "address" | "group"}
--   UNKNOWN_GROUP {2}
--   REVOKED       {3, version}
--   NO_PLACE      {4, version, places_held}
--   NOT_FOUND     {5, version}     (no such place, or the license id does not match)
--   EXPIRED       {6, version}
--   NOT_GENUINE   {7}
--   OUTBOX_FULL   {9, version}     (sampled, the outbox is at its cap, the group fails closed)

local function clock()
    local t = redis.call('TIME')
    local s = tonumber(t[1])
    return s, s * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Token buckets: `level` tokens at time `ts`, refilled at `rate` per second
-- up to `burst`. An absent bucket is full; a bucket expires once it would be
-- full again, so idle addresses cost no memory.
local function bucket_level(key, rate, burst, now_ms)
    local v = redis.call('GET', key)
    if not v then return burst end
    local level, ts = struct.unpack('<dd', v)
    local dt = now_ms - ts
    if dt < 0 then dt = 0 end
    return math.min(burst, level + dt * rate / 1000)
end

local function bucket_store(key, level, rate, burst, now_ms)
    redis.call('SET', key, struct.pack('<dd', level, now_ms), 'PX',
        math.ceil((burst - level) / rate * 1000) + 1000)
end

local function seconds_until(level, cost, rate)
    local s = math.ceil((cost - level) / rate)
    if s < 1 then s = 1 end
    return s
end

-- Takes `cost` tokens from every bucket, or from none when one is short.
-- buckets: list of {key, rate, burst, scope}; rate 0 disables a bucket.
-- Returns 0, or the seconds to wait and the scope that refused.
local function take_tokens(buckets, cost, now_ms)
    local wait, scope = 0, nil
    for _, b in ipairs(buckets) do
        if b[2] > 0 then
            b.level = bucket_level(b[1], b[2], b[3], now_ms)
            if b.level < cost then
                local s = seconds_until(b.level, cost, b[2])
                if s > wait then wait, scope = s, b[4] end
            end
        end
    end
    if wait > 0 then return wait, scope end
    for _, b in ipairs(buckets) do
        if b[2] > 0 then bucket_store(b[1], b.level - cost, b[2], b[3], now_ms) end
    end
    return 0
end

local function place_expires(place)
    return struct.unpack('<I4', place, 9)
end

local function pack_place(random, expires)
    return random .. struct.pack('<I4', expires)
end

-- Frees the places whose lease lapsed; returns how many.
local function reclaim_lapsed(record, now_s)
    local all = redis.call('HGETALL', record)
    local freed = 0
    for i = 1, #all, 2 do
        local field, place = all[i], all[i + 1]
        if #field == 16 and #place == 12 then
            local e = place_expires(place)
            if e ~= 0 and e <= now_s then
                redis.call('HDEL', record, field)
                freed = freed + 1
            end
        end
    end
    return freed
end

-- The places held on a key: every field but the use counter.
local function places(record)
    local n = redis.call('HLEN', record)
    if n > 0 and redis.call('HEXISTS', record, 'n') == 1 then n = n - 1 end
    return n
end

-- version, max_machines, lease, renew of the group, or nil if it is gone.
local function group_policy(key)
    local g = redis.call('HMGET', key, 'version', 'max_machines', 'lease_seconds', 'renew_seconds',
        'product')
    if not (g[1] or g[2] or g[5]) then return nil end
    local lease = tonumber(g[3]) or 0
    local renew = tonumber(g[4]) or 0
    if lease > 0 and (renew <= 0 or renew >= lease) then renew = math.floor(lease / 2) end
    return g[1] or '0', tonumber(g[2]) or 1, lease, renew
end

local function lease_times(lease, renew, now_s)
    if lease <= 0 then return 0, 0 end
    return now_s + lease, now_s + renew
end

-- ARGV: op, serial, place (machine digest), random, address rate, address
--       burst, group rate, group burst, audit mode (0 none, 1 sampled,
--       2 only if this is the key's first use), then with an audit mode:
--       request_id, group, upgrade, security_first, security_second,
--       client_address, received_at, sample_reason, machine_id
--       (audit_record_script_args in audit_record.c builds them; the reason
--       is already the audit API's spelling, e.g. "first-activation"),
--       outbox cap (--audit-outbox-max), and '1' to grant unaudited at the
--       cap or '0' to refuse (the group's audit_outbox_full)
local function activate()
    local now_s, now_ms = clock()
    local wait, scope = take_tokens({
        {KEYS[5], tonumber(ARGV[5]), tonumber(ARGV[6]), 'address'},
        {KEYS[4], tonumber(ARGV[7]), tonumber(ARGV[8]), 'group'}}, 1, now_ms)
    if wait > 0 then return {RATE_LIMITED, wait, scope} end

    local version, max, lease, renew = group_policy(KEYS[1])
    if not version then return {UNKNOWN_GROUP} end
    if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then return {REVOKED, version} end

    -- The outbox has a cap, checked before anything is written: at the cap a
    -- sampled activation is refused, or granted without its audit record.
    local mode = ARGV[9]
    local sampled = mode == '1' or (mode == '2' and (tonumber(redis.call('HGET', KEYS[3], 'n')) or 0) == 0)
    local unaudited = sampled and redis.call('XLEN', KEYS[6]) >= tonumber(ARGV[19])
    if unaudited and ARGV[20] ~= '1' then return {OUTBOX_FULL, version} end

    local record, field = KEYS[3], ARGV[3]
    redis.call('HINCRBY', record, 'n', 1)
    local place = redis.call('HGET', record, field)
    local random, again = ARGV[4], 0
    if place then
        random, again = string.sub(place, 1, 8), 1   -- same machine: same place, same license id
    elseif max > 0 then
        local held = redis.call('HLEN', record) - 1   -- every field but "n"
        if held >= max then held = held - reclaim_lapsed(record, now_s) end
        if held >= max then return {NO_PLACE, version, held} end
    end

    local expires, renew_after = lease_times(lease, renew, now_s)
    redis.call('HSET', record, field, pack_place(random, expires))

    local audited = 0
    if unaudited then
        audited = 2
    elseif sampled then
        redis.call('XADD', KEYS[6], '*', 'request_id', ARGV[10], 'group', ARGV[11],
            'serial', ARGV[2], 'upgrade', ARGV[12], 'security_first', ARGV[13],
            'security_second', ARGV[14], 'machine_id', ARGV[18], 'client_address', ARGV[15],
            'received_at', ARGV[16], 'sample_reason', ARGV[17])
        audited = 1
    end
    return {OK, version, redis.call('HLEN', record) - 1, expires, renew_after, now_s, random,
        again, audited}
end

-- The place named by a license: {version, place} or an error reply.
-- ARGV: op, serial, place (machine digest), random, address rate, address burst
local function find_place(group_key, record, address_key)
    local now_s, now_ms = clock()
    local wait, scope = take_tokens({{address_key, tonumber(ARGV[5]), tonumber(ARGV[6]), 'address'}},
        1, now_ms)
    if wait > 0 then return nil, {RATE_LIMITED, wait, scope} end
    local version, max, lease, renew = group_policy(group_key)
    if not version then return nil, {NOT_FOUND, '0'} end
    local place = redis.call('HGET', record, ARGV[3])
    if not place or string.sub(place, 1, 8) ~= ARGV[4] then return nil, {NOT_FOUND, version} end
    return {version = version, lease = lease, renew = renew, place = place, now = now_s}
end

local function renew_license()
    local p, err = find_place(KEYS[1], KEYS[3], KEYS[4])
    if not p then return err end
    if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then return {REVOKED, p.version} end
    local e = place_expires(p.place)
    if e ~= 0 and e <= p.now then return {EXPIRED, p.version} end
    redis.call('HINCRBY', KEYS[3], 'n', 1)
    local expires, renew_after = lease_times(p.lease, p.renew, p.now)
    redis.call('HSET', KEYS[3], ARGV[3], pack_place(ARGV[4], expires))
    return {OK, p.version, places(KEYS[3]), expires, renew_after, p.now, ARGV[4], 1}
end

local function deactivate()
    local p, err = find_place(KEYS[1], KEYS[2], KEYS[3])
    if not p then return err end
    redis.call('HDEL', KEYS[2], ARGV[3])
    return {OK, p.version, places(KEYS[2])}
end

-- ARGV: op, address rate, address burst, cost. A wrong key takes `cost`
-- tokens; once the bucket is empty the address is refused for every key, so
-- a brute-force run learns nothing and slows to the refill rate.
local function reject()
    local rate, burst, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
    if rate <= 0 then return {NOT_GENUINE} end
    local _, now_ms = clock()
    local level = bucket_level(KEYS[1], rate, burst, now_ms)
    if level < 1 then return {RATE_LIMITED, seconds_until(level, 1, rate), 'address'} end
    bucket_store(KEYS[1], math.max(0, level - cost), rate, burst, now_ms)
    return {NOT_GENUINE}
end

local ops = {activate = activate, renew = renew_license, deactivate = deactivate, reject = reject}
local op = ops[ARGV[1]]
if not op then return redis.error_reply('ERR policy.lua: unknown operation') end
return op()
