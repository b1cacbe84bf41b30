-- policy.lua -- everything the activation server asks of Redis A, one call
-- per request: rate limits, revocation, the group's policy applied to the
-- key's activation record, and the optional offline-audit outbox record.
-- Running it as one script makes each decision atomic (no half-written
-- record, no race between two machines taking the last place) and costs
-- exactly one round trip. It is embedded into the server binary at build time
-- and registered once per connection (EVALSHA).
--
-- ARGV[1] names the operation:
--   activate    KEYS revoked, record, group bucket, outbox, group failure
--                    bucket, record's place index, machine log[, address bucket]
--   renew       KEYS revoked, record, place index, machine log[, address bucket]
--   deactivate  KEYS record, place index, machine log[, address bucket]
--   reject      KEYS group failure bucket[, address bucket]
--                                      (a failed genuineness check costs tokens)
--   list        KEYS revoked, record, place index[, address bucket]
--   release     KEYS revoked, record, place index, machine log[, address bucket]
--                                      (self-service, docs/machines.md)
--   batch       several of the calls above in one (docs/batching.md, "One
--               script call per batch"): ARGV[2] the entry count n, then per
--               entry its key count and its argument count (ARGV[3], ARGV[4]
--               for the first, ...), then the entries' arguments one after
--               the other, each entry's exactly the ARGV of its single call
--               (its operation first); KEYS the entries' keys, one after the
--               other, each entry's exactly its single call's. Reply: an
--               array of the entries' replies in order; an entry whose call
--               raised an error (a redis.call that failed) is that error,
--               and the other entries still run. A layout that does not add
--               up is one error reply and no entry runs.
-- The address bucket comes last and may be left out: on Redis Cluster it
-- lies in a slot of its own, so the caller takes its tokens first with
-- address_take.lua and runs this script without it (docs/cluster.md); the
-- address step is then skipped here. On a single node it is always passed
-- and the whole decision stays one atomic call.
local FIXED_KEYS = {activate = 7, renew = 4, deactivate = 3, reject = 1, list = 3, release = 4}
-- The running call's KEYS, ARGV and address bucket (nil: none), set before
-- its operation runs: KEYS and ARGV themselves for a single call, an
-- entry's slices of them in a batch. The operations read only these.
local K, A, ADDRESS
-- activate, renew, deactivate, list and release get the group record's key name in ARGV[2],
-- not in KEYS: the activation ACL user may only read group records (%R~),
-- and Redis 7.0 requires read-write rights on every key passed to EVALSHA
-- (it cannot tell how a script uses them). The record shares its {g:ID}
-- hash tag with the KEYS, so the call still targets one slot.
--
-- Keys (every per-group key carries the hash tag {g:ID}):
--   {g:ID}:group     hash    group record (keystore/group.h); read here:
--                            version, max_machines, lease_seconds, renew_seconds,
--                            machine_match, grace_seconds, max_deactivations,
--                            max_transfers, churn_period_seconds (group_policy)
--   {g:ID}:revoked   set     revoked serials, decimal
--   {g:ID}:k:SERIAL  hash    the key's activation record:
--                              "n"      uses of the key: places granted to a
--                                       machine that held none (a machine
--                                       activating again, a Renew, a refusal
--                                       for lack of a place do not count)
--                              "c"      seat churn this period: period start
--                                       u32 LE, deactivations u16 LE, releases
--                                       u16 LE (see "Seat churn" below)
--                              <place>  one field per machine holding a place:
--                                       the first 16 bytes of SHA-256(machine_id)
--                                       -> the place (see "places" below: random,
--                                          expires_at, place-key digest, last seen,
--                                          re-binds, component tokens, hostname)
--                            Sized for memory: one machine with a key, 5 components
--                            and a 12-character hostname makes an 86-byte place,
--                            about 227 bytes of Redis memory per activated key in
--                            all (docs/data-model.md); the record stays a listpack
--                            under Redis A's hash-max-listpack-value (1024).
--                            The 128-bit digests halve the field and the key;
--                            making two machine ids (or two place keys) share
--                            one takes ~2^64 work, and matching a given one
--                            ~2^128.
--   {g:ID}:k:SERIAL:places  zset  the record's places by when they may be
--                            forgotten (see "Retention" below); only for
--                            records of two places or more
--   {g:ID}:rl        string  the group's token bucket: tokens, ms (2 doubles)
--   {g:ID}:rl:f      string  the group's failure bucket: keys of the group
--                            refused as not genuine, from any address; kept
--                            for made-up group IDs as well, so no limit
--                            tells whether a group exists
--   rl:a:ADDR        string  one client address's token bucket (IPv6: its /64)
--   audit:outbox     stream  offline-audit records (fields in docs/data-model.md);
--                            on Redis Cluster the group's shard {ob:N}:outbox,
--                            in the group's slot (common/outbox_shards.h)
--   {g:ID}:mlog      stream  the group's machine log (docs/admin.md "The machine
--                            directory"): one entry per grant, renew, deactivation
--                            and place reclaimed, for the admin server's directory
-- The address bucket is outside the group's hash slot: on Redis Cluster
-- it moves to a first call (address_take.lua, see above).
--
-- Time is Redis's own clock (TIME), so every replica of the server agrees on
-- leases. Places whose lease lapsed are reclaimed when a key is full, and
-- every place is forgotten once idle for the retention period (below).
--
-- Reply: an array whose first element is a status:
local OK, RATE_LIMITED, UNKNOWN_GROUP, REVOKED, NO_PLACE, NOT_FOUND, EXPIRED, NOT_GENUINE =
    0, 1, 2, 3, 4, 5, 6, 7
local WRONG_KEY = 9   -- 8 is the C side's UNAVAILABLE (policy.h)
local OUTBOX_FULL = 10
local CHURN_LIMITED = 11
--   OK            activate: {0, version, count, expires, renew_after, now, random, again,
--                            audited (1 when the outbox record was written, 2 when it was
--                            sampled but granted unaudited: the outbox is full),
--                            rebound (1 when a place found by components was moved here),
--                            shared (its tokens in common), was (its earlier field, or '')}
--                 renew:    {0, version, count, expires, renew_after, now, random, 1}
--                 deactivate:     {0, version, count}
--   RATE_LIMITED  {1, retry_after_seconds, "address" | "group"}
--   UNKNOWN_GROUP {2}
--   REVOKED       {3, version}
--   NO_PLACE      {4, version, places_held}
--   NOT_FOUND     {5, version}     (no such place, or the license id does not match)
--   EXPIRED       {6, version}
--   NOT_GENUINE   {7, exists (1 when the group is in `groups`)}
--   WRONG_KEY     {9, version}     renew, deactivate: the place is bound to another place key
--   OUTBOX_FULL   {10, version}    (sampled, the outbox is at its cap, the group fails closed)
--   CHURN_LIMITED {11, version, retry_after_seconds, "deactivation" | "transfer",
--                  unix time the next one is allowed}
--                 list:     {0, version, max_machines, releases_left, next_release_at,
--                            places, then per place listed: handle, hostname,
--                            last seen, expires, this machine (1 or 0)}
--                 release:  {0, version, count, releases_left}

-- ---- what one script call reads once (docs/batching.md "Per-entry costs in
-- Redis") --------------------------------------------------------------------
-- A script runs atomically, so within one call nothing else writes: the
-- time, a group's policy and a token bucket read by one entry of a batch
-- hold for the next. These locals are made anew with each call (the chunk
-- runs per EVALSHA), so nothing outlives it.
local NOW_S, NOW_MS    -- the call's TIME, read by its first entry that asks
local POLICIES = {}    -- group record key -> policy table, or false: no such group
local BUCKETS = {}     -- bucket key -> {level, ts[, rate, burst of its last take]}, or {}: absent (full)
local HELD = nil       -- batch only: the set of bucket keys flush_buckets writes

local function clock()
    if not NOW_S then
        local t = redis.call('TIME')
        NOW_S = tonumber(t[1])
        NOW_MS = NOW_S * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    return NOW_S, NOW_MS
end

-- Token buckets: `level` tokens at time `ts`, refilled at `rate` per second
-- up to `burst`. An absent bucket is full; a bucket expires once it would be
-- full again, so idle addresses cost no memory.
local function bucket_level(key, rate, burst, now_ms)
    local b = BUCKETS[key]
    if not b then
        local v = redis.call('GET', key)
        b = {}
        if v then b[1], b[2] = struct.unpack('<dd', v) end
        BUCKETS[key] = b
    end
    if not b[1] then return burst end
    local dt = now_ms - b[2]
    if dt < 0 then dt = 0 end
    return math.min(burst, b[1] + dt * rate / 1000)
end

local function bucket_write(key, b)
    redis.call('SET', key, struct.pack('<dd', b[1], b[2]), 'PX', math.ceil((b[4] - b[1]) / b[3] * 1000) + 1000)
end

-- A single call writes the bucket at once; a batch keeps its buckets'
-- levels here and writes each bucket once, after its last entry
-- (flush_buckets): the same final value and expiry as a write per entry.
local function bucket_store(key, level, rate, burst, now_ms)
    local b = {level, now_ms, rate, burst}
    BUCKETS[key] = b
    if HELD then
        HELD[key] = true
    else
        bucket_write(key, b)
    end
end

local function flush_buckets()
    for key in pairs(HELD) do bucket_write(key, BUCKETS[key]) end
    HELD = nil
end

local function seconds_until(level, cost, rate)
    local s = math.ceil((cost - level) / rate)
    if s < 1 then s = 1 end
    return s
end

-- Checks that every bucket holds at least `need` tokens and then takes
-- `take` from each (down to 0, never below), or takes nothing when one is
-- short. buckets: list of {key, rate, burst, scope, need, take}; rate 0
-- or no key (the address bucket left out, see ADDRESS) disables a bucket;
-- take 0 only checks it. Returns 0, or the seconds to
-- wait and the scope that refused.
local function take_tokens(buckets, now_ms)
    local wait, scope = 0, nil
    for _, b in ipairs(buckets) do
        if b[1] and b[2] > 0 then
            b.level = bucket_level(b[1], b[2], b[3], now_ms)
            if b.level < b[5] then
                local s = seconds_until(b.level, b[5], b[2])
                if s > wait then wait, scope = s, b[4] end
            end
        end
    end
    if wait > 0 then return wait, scope end
    for _, b in ipairs(buckets) do
        if b[1] and b[2] > 0 and b[6] > 0 then bucket_store(b[1], math.max(0, b.level - b[6]), b[2], b[3], now_ms) end
    end
    return 0
end

-- ---- places (docs/machines.md "Place format") -------------------------------
-- A place, the value of a machine's 16-byte field in the key's record:
--   random (8) | expires_at (u32 LE, 0 never) | place-key digest (16; zero
--   while no key is bound) | last seen (u32 LE) | re-binds (u8, saturating) |
--   n (u8) | n component tokens (8 bytes each, sorted) | hostname (<= 64)
-- Places written before this layout are 12 bytes (no key) or 28 (a key):
-- they read as seen never, no components, no hostname, and are written in
-- this layout by their next Activate or Renew. Only these helpers know the
-- layout.
local NO_HOLDER = string.rep('\0', 16)
local PLACE_HEAD = 34   -- bytes before the tokens
local TOKEN_LEN = 8
local HOST_MAX = 64

-- Is (field, value) a place (not the use counter 'n' or another record field)?
local function is_place(field, value)
    return #field == 16 and (#value == 12 or #value == 28 or #value >= PLACE_HEAD)
end

-- expires_at alone, without unpacking the rest (the retention scans).
local function place_expires(value)
    return struct.unpack('<I4', value, 9)
end

-- The place as a table: random, expires, holder ('' while unbound), seen
-- (0: never), rebinds, tokens (the sorted tokens as one string), host.
local function unpack_place(value)
    local p = {random = string.sub(value, 1, 8), expires = place_expires(value), holder = '', seen = 0,
        rebinds = 0, tokens = '', host = ''}
    if #value >= 28 then
        p.holder = string.sub(value, 13, 28)
        if p.holder == NO_HOLDER then p.holder = '' end
    end
    if #value >= PLACE_HEAD then
        local n
        p.seen, p.rebinds, n = struct.unpack('<I4BB', value, 29)
        p.tokens = string.sub(value, PLACE_HEAD + 1, PLACE_HEAD + TOKEN_LEN * n)
        p.host = string.sub(value, PLACE_HEAD + 1 + TOKEN_LEN * n)
    end
    return p
end

local function pack_place(p)
    local holder = p.holder ~= '' and p.holder or NO_HOLDER
    return p.random .. struct.pack('<I4', p.expires) .. holder ..
        struct.pack('<I4BB', p.seen, math.min(p.rebinds, 255), #p.tokens / TOKEN_LEN) .. p.tokens ..
        string.sub(p.host, 1, HOST_MAX)
end
-- ---- end of places ------------------------------------------------------------

-- The place argument names the place and who claims it: the machine's field
-- (16 bytes), then the place-key digest (16 bytes; absent on an Activate
-- without place_key). Returns field, holder ('' when absent).
local function place_arg(arg)
    return string.sub(arg, 1, 16), string.sub(arg, 17)
end

-- Frees the places whose lease lapsed at or before `cutoff`; returns how
-- many, and adds their fields to `out` if given. Reads the whole record:
-- for small ones only (see "Retention").
local function reclaim_lapsed(record, cutoff, out)
    local all = redis.call('HGETALL', record)
    local freed = 0
    for i = 1, #all, 2 do
        local field, place = all[i], all[i + 1]
        if is_place(field, place) then
            local e = place_expires(place)
            if e ~= 0 and e <= cutoff then
                redis.call('HDEL', record, field)
                freed = freed + 1
                if out then out[#out + 1] = field end
            end
        end
    end
    return freed
end

-- The places held on a key: every field but the use counter and the churn
-- counters (is_place, without reading every value).
local function places(record)
    local n = redis.call('HLEN', record)
    if n == 0 then return 0 end
    local f = redis.call('HMGET', record, 'n', 'c')
    return n - (f[1] and 1 or 0) - (f[2] and 1 or 0)
end

-- The same when whether 'n' and 'c' exist is already known (one HLEN).
local function places_known(record, has_n, has_c)
    return redis.call('HLEN', record) - (has_n and 1 or 0) - (has_c and 1 or 0)
end

-- The group's policy as a table, or nil if the group is gone (one HMGET):
--   version, max (places per key, 0 unlimited), lease, renew (seconds),
--   match (machine_match: components to re-bind a place; 0 exact),
--   grace (seconds past expires_at), max_deact, max_transfers (per key and
--   churn period; 0 unlimited), churn_period (seconds).
-- Fields absent from records written before they existed read as their
-- defaults (keystore/group.h).
local function group_policy_read(key)
    local g = redis.call('HMGET', key, 'version', 'max_machines', 'lease_seconds', 'renew_seconds',
        'product', 'machine_match', 'grace_seconds', 'max_deactivations', 'max_transfers', 'churn_period_seconds')
    if not (g[1] or g[2] or g[5]) then return nil end
    local lease = tonumber(g[3]) or 0
    local renew = tonumber(g[4]) or 0
    if lease > 0 and (renew <= 0 or renew >= lease) then renew = math.floor(lease / 2) end
    return {version = g[1] or '0', max = tonumber(g[2]) or 1, lease = lease, renew = renew,
        match = tonumber(g[6]) or 0, grace = tonumber(g[7]) or 0, max_deact = tonumber(g[8]) or 0,
        max_transfers = tonumber(g[9]) or 3, churn_period = tonumber(g[10]) or 2592000}
end

-- The same, read once per script call (POLICIES): no operation writes a
-- group record, and the callers only read the table.
local function group_policy(key)
    local g = POLICIES[key]
    if g == nil then
        g = group_policy_read(key) or false
        POLICIES[key] = g
    end
    return g or nil
end

-- ---- Retention: places forgotten once idle ----------------------------------
-- A place is forgotten (its field deleted) `keep` seconds (ARGV; 0: never)
-- after nothing depends on it any more:
--   leased place                after its lease and grace lapsed (until then Renew
--                               answers EXPIRED and the machine may return)
--   permanent, unlimited key    after it was last activated
--   permanent, limited key      never: it is the machine's claim on one of
--                               the key's places (Deactivate frees it)
-- Each Activate and Renew of the key forgets its idle places first, and a
-- full key reclaims its lapsed ones, without reading every place when there
-- can be many:
--   - a key of an unlimited group, or of one allowing more than SCAN_MAX
--     places, gets {g:ID}:k:SERIAL:places, a sorted set of its places scored
--     by when they lapse (leased) or were last seen (permanent); due places
--     are one ZRANGEBYSCORE away. It is made once the record holds two
--     places (one scan of the record, which also takes in a record written
--     before the index existed);
--   - a key of at most SCAN_MAX places is read whole (HGETALL of a small
--     listpack): an index would cost more memory than the scan costs time.
-- Every write also sets the record's expiry (and its index's) to when the
-- place just written may be forgotten, the latest of its places, so a key
-- nobody uses any more disappears by itself, and a record of one place, by
-- far the most, needs nothing else. The rules follow the group's policy at
-- the time of the write.

local TRIM_MAX = 100   -- places forgotten per call at most; the rest at the next
local SCAN_MAX = 16    -- keys of at most this many places are scanned, not indexed

local function indexed(max) return max == 0 or max > SCAN_MAX end

-- The score a place is indexed under (and its record kept until, plus
-- `keep`), or nil when it is never forgotten.
local function place_score(max, lease, expires, now_s, keep)
    if lease > 0 then return expires ~= 0 and expires or nil end
    if max == 0 and keep > 0 then return now_s end
    return nil
end

-- Deletes the indexed places scored at or before `cutoff`; returns how many
-- (their fields added to `out` if given).
local function drop_places(record, index, cutoff, out)
    local gone = redis.call('ZRANGEBYSCORE', index, '-inf', cutoff, 'LIMIT', 0, TRIM_MAX)
    if #gone == 0 then return 0 end
    if out then
        for _, f in ipairs(gone) do out[#out + 1] = f end
    end
    redis.call('ZREM', index, unpack(gone))
    return redis.call('HDEL', record, unpack(gone))
end

-- Indexes the place `field` (just written) under `score`; makes the index
-- from the record when it first holds two places.
local function index_place(record, index, field, score, lease, keep, now_ms)
    if redis.call('EXISTS', index) == 1 then
        redis.call('ZADD', index, score, field)
        return
    end
    if places(record) < 2 then return end
    -- The other places: leased ones by their expiry; permanent ones (of an
    -- unlimited key) as last seen when the record was last written, which
    -- its expiry tells (now when it has none).
    local now_s = math.floor(now_ms / 1000)
    local seen, ttl = now_s, redis.call('PTTL', record)
    if ttl > 0 then seen = math.min(now_s, math.floor((now_ms + ttl + 500) / 1000) - keep) end
    local all, batch = redis.call('HGETALL', record), {}
    for i = 1, #all, 2 do
        local f, s = all[i], nil
        if f == field then
            s = score
        elseif is_place(f, all[i + 1]) and lease > 0 then
            s = place_score(0, lease, place_expires(all[i + 1]), now_s, keep)
        elseif is_place(f, all[i + 1]) then
            s = seen
        end
        if s then
            batch[#batch + 1] = s
            batch[#batch + 1] = f
        end
        if #batch >= 1000 then
            redis.call('ZADD', index, unpack(batch))
            batch = {}
        end
    end
    if #batch > 0 then redis.call('ZADD', index, unpack(batch)) end
end

-- After a place was written under `score` (nil: never forgotten): index it
-- if its key is indexed, and keep the record until it may be forgotten.
local function retain(record, index, field, score, max, lease, keep, now_ms)
    if not score then return end
    if indexed(max) then index_place(record, index, field, score, lease, keep, now_ms) end
    if keep > 0 then
        redis.call('EXPIREAT', record, score + keep)
        if indexed(max) then redis.call('EXPIREAT', index, score + keep) end
    end
end

-- Forgets the places idle for `keep` seconds, if the group's can be. Every
-- kind of group reads once (a group whose places are never forgotten, or a
-- group that does not exist, asks the index for nothing), so the commands
-- do not tell a group that exists from one that does not.
local function forget_idle(record, index, max, lease, keep, now_s)
    if keep > 0 and lease > 0 and not indexed(max) then
        reclaim_lapsed(record, now_s - keep)
        return
    end
    drop_places(record, index, (keep > 0 and (lease > 0 or max == 0)) and now_s - keep or '-inf')
end

-- Frees the places of a full key whose lease lapsed; returns how many, their
-- fields in `out`. Permanent places never lapse: nothing to look for.
local function reclaim(record, index, max, lease, now_s, out)
    if lease <= 0 then return 0 end
    if indexed(max) and redis.call('EXISTS', index) == 1 then return drop_places(record, index, now_s, out) end
    return reclaim_lapsed(record, now_s, out)   -- at most SCAN_MAX places (or one, or from before the index)
end

-- Grace (docs/machines.md "Grace period"): a leased place lapses `grace`
-- seconds after its expires_at, not at it: Renew takes it back until then,
-- and neither a full key's reclaim nor retention frees it before. Places
-- stay indexed by expires_at; the callers move their "now" back by the grace
-- (lapsed_at) and keep the record that much longer (kept_for).
local function grace_of(g) return (g and g.lease > 0) and g.grace or 0 end
local function lapsed_at(g, now_s) return now_s - grace_of(g) end
local function kept_for(g, keep) return keep > 0 and keep + grace_of(g) or 0 end
-- ---- end of retention --------------------------------------------------------

-- ---- component matching (docs/machines.md "Matching a machine to a place") ----
-- An Activate whose machine_id holds no place may find the machine's
-- earlier place by its components: the place sharing the most tokens with
-- the request, at least the group's machine_match (ties: the one seen
-- last). Only keys of at most SCAN_MAX places, whose record is read whole
-- anyway; an indexed key matches exactly only. Tokens are compared as a set
-- (no ordering of binary strings in Lua, whose comparison follows the
-- locale).

local function token_set(tokens)
    local set = {}
    for i = 1, #tokens, TOKEN_LEN do set[string.sub(tokens, i, i + TOKEN_LEN - 1)] = true end
    return set
end

local function shared_tokens(set, tokens)
    local n = 0
    for i = 1, #tokens, TOKEN_LEN do
        if set[string.sub(tokens, i, i + TOKEN_LEN - 1)] then n = n + 1 end
    end
    return n
end

-- The best place for `tokens`: its field, the place (unpacked) and the
-- tokens shared, or nil when no place shares at least k.
local function best_match(record, tokens, k)
    local want, all = token_set(tokens), redis.call('HGETALL', record)
    local field, place, most = nil, nil, 0
    for i = 1, #all, 2 do
        if is_place(all[i], all[i + 1]) then
            local p = unpack_place(all[i + 1])
            local n = shared_tokens(want, p.tokens)
            if n >= k and (n > most or (n == most and p.seen > place.seen)) then
                field, place, most = all[i], p, n
            end
        end
    end
    return field, place, most
end

-- Moves the place `old` (at field `was`) to the request's place `p`: its
-- random (no new use of the key), its history, and its key unless the
-- request brings one. The old field and its index entry go in the same
-- call, so the machine never holds two places.
local function rebind(record, index, was, old, p, holder)
    redis.call('HDEL', record, was)
    redis.call('ZREM', index, was)
    p.random, p.rebinds = old.random, old.rebinds + 1
    if holder == '' then p.holder = old.holder end
    if p.host == '' then p.host = old.host end
end
-- ---- end of component matching -------------------------------------------------

-- ---- the machine log (docs/admin.md "The machine directory") ----------------
-- One entry per grant (a), re-bind (b: a grant that moved a place found by
-- its components), renew (r), deactivation (d) and place reclaimed (x), in the call that made it, with every field always present (a stream
-- stores entries of the same fields compactly): op, m (the place's field:
-- the machine digest), g, s, o (retail: ''), t, ip, h hostname, mac
-- (comma-separated), hs host serial, os, e expires at ('' when not known),
-- was: the place's earlier field when a re-bind (b) moved it ('' in every
-- other entry). Renew and Deactivate know only the address. Bounded: XADD
-- MAXLEN ~.
local MLOG_MAXLEN = 100000

local function mlog(key, op, field, serial, now_s, ip, h, mac, hs, os, e, was)
    redis.call('XADD', key, 'MAXLEN', '~', MLOG_MAXLEN, '*', 'op', op, 'm', field, 'g',
        string.match(key, '^{g:(%d+)}') or '', 's', serial, 'o', '', 't', now_s, 'ip', ip, 'h', h, 'mac', mac,
        'hs', hs, 'os', os, 'e', e, 'was', was or '')
end

local function lease_times(lease, renew, now_s)
    if lease <= 0 then return 0, 0 end
    return now_s + lease, now_s + renew
end

-- ARGV: op, group record key, serial, place (machine digest and place-key
--       digest, see place_arg), random,
--       address rate, address burst, group rate, group burst, group failure
--       rate, group failure burst, place retention (s), for the machine log
--       the client address, hostname, os, host serial and MACs
--       (comma-separated), the request's component tokens (8 bytes each,
--       sorted, as one string; '' for none), audit mode (0 none,
--       1 sampled, 2 only if this is the key's first use), then with an
--       audit mode: request_id, group, upgrade, security_first,
--       security_second, client_address, received_at, sample_reason,
--       machine_id (audit_record_script_args in audit_record.c builds them;
--       the reason is already the audit API's spelling, e.g.
--       "first-activation"), outbox cap (--audit-outbox-max), and '1' to
--       grant unaudited at the cap or '0' to refuse (the group's
--       audit_outbox_full)
local function activate()
    if #A[18] % TOKEN_LEN ~= 0 or #A[18] > 16 * TOKEN_LEN then
        return redis.error_reply('ERR policy.lua: component tokens are not whole 8-byte tokens (at most 16)')
    end
    local now_s, now_ms = clock()
    -- One token from the address and one from the group; a group whose
    -- failure budget is spent takes no activation either, or a guesser
    -- spread over many addresses would see its right guess succeed.
    local wait, scope = take_tokens({
        {ADDRESS, tonumber(A[6]), tonumber(A[7]), 'address', 1, 1},
        {K[3], tonumber(A[8]), tonumber(A[9]), 'group', 1, 1},
        {K[5], tonumber(A[10]), tonumber(A[11]), 'group', 1, 0}}, now_ms)
    if wait > 0 then return {RATE_LIMITED, wait, scope} end

    local g = group_policy(A[2])
    if not g then return {UNKNOWN_GROUP} end
    local version, max, lease, renew = g.version, g.max, g.lease, g.renew
    if redis.call('SISMEMBER', K[1], A[3]) == 1 then return {REVOKED, version} end

    -- The outbox has a cap, checked before anything is written: at the cap a
    -- sampled activation is refused, or granted without its audit record.
    local mode = A[19]
    local sampled = mode == '1' or (mode == '2' and (tonumber(redis.call('HGET', K[2], 'n')) or 0) == 0)
    local unaudited = sampled and redis.call('XLEN', K[4]) >= tonumber(A[29])
    if unaudited and A[30] ~= '1' then return {OUTBOX_FULL, version} end

    local record, index, keep = K[2], K[6], tonumber(A[12])
    local field, holder = place_arg(A[4])
    forget_idle(record, index, max, lease, keep, lapsed_at(g, now_s))
    -- The place, and whether the counters exist (so counting places takes one HLEN).
    local got = redis.call('HMGET', record, field, 'n', 'c')
    local value, has_c = got[1], got[3]
    local p = {random = A[5], holder = holder, rebinds = 0, tokens = A[18], host = A[14]}
    local again, uses, was, shared, count = 0, 0, '', 0, nil
    if value then
        -- Same machine: same place, same license id, and not another use.
        -- This also makes a retry safe after a reply that got lost once the
        -- place was written (signing failed, the caller's deadline passed).
        local old = unpack_place(value)
        p.random, p.rebinds, again = old.random, old.rebinds, 1
        if holder == '' then p.holder = old.holder end   -- no new key: keep the bound one
        if p.tokens == '' then p.tokens = old.tokens end  -- a client that sends none keeps what is known
        if p.host == '' then p.host = old.host end
    else
        if g.match > 0 and #p.tokens / TOKEN_LEN >= g.match and max > 0 and not indexed(max) then
            local f, old, n = best_match(record, p.tokens, g.match)
            if f then
                rebind(record, index, f, old, p, holder)
                was, shared, again = f, n, 1
            end
        end
        if was == '' and max > 0 then
            local held = places_known(record, got[2], has_c)
            if held >= max then
                local freed = {}
                held = held - reclaim(record, index, max, lease, lapsed_at(g, now_s), freed)
                for _, f in ipairs(freed) do mlog(K[7], 'x', f, A[3], now_s, '', '', '', '', '', '') end
            end
            -- Refused for lack of a place: nothing changes, not even the count.
            if held >= max then return {NO_PLACE, version, held} end
            count = held + 1   -- with the place written below
        end
        if was == '' then uses = redis.call('HINCRBY', record, 'n', 1) end
    end

    local expires, renew_after = lease_times(lease, renew, now_s)
    p.expires, p.seen = expires, now_s
    redis.call('HSET', record, field, pack_place(p))
    retain(record, index, field, place_score(max, lease, expires, now_s, keep), max, lease, kept_for(g, keep), now_ms)
    mlog(K[7], was ~= '' and 'b' or 'a', field, A[3], now_s, A[13], A[14], A[17], A[16], A[15],
        expires, was)

    local audited = 0
    if unaudited then
        audited = 2
    elseif sampled then
        redis.call('XADD', K[4], '*', 'request_id', A[20], 'group', A[21],
            'serial', A[3], 'upgrade', A[22], 'security_first', A[23],
            'security_second', A[24], 'machine_id', A[28], 'client_address', A[25],
            'received_at', A[26], 'sample_reason', A[27])
        audited = 1
    end
    count = count or places_known(record, got[2] or uses > 0, has_c)
    return {OK, version, count, expires, renew_after, now_s, p.random,
        again, audited, was ~= '' and 1 or 0, shared, was}
end

-- ---- seat churn (docs/machines.md "Seat churn") -----------------------------
-- Each key has per-period budgets of Deactivate and ReleaseMachine calls
-- (the group's max_deactivations and max_transfers, 0: unlimited), counted
-- in the record's field "c". The period starts at the first counted call
-- after the last period ended. A call over budget changes nothing.
-- The budgets and the period come from group_policy (max_deact,
-- max_transfers, churn_period).
local UNLIMITED = 4294967295           -- releases_left when max_transfers is 0

local function churn_period(g) return math.max(1, g.churn_period) end

-- The current period's start, deactivations and releases.
local function churn_read(record, now_s, period)
    local c = redis.call('HGET', record, 'c')
    if c and #c == 8 then
        local start, d, r = struct.unpack('<I4I2I2', c)
        if now_s < start + period then return start, d, r end
    end
    return now_s, 0, 0
end

-- Counts one call of `which` ('deactivation' or 'transfer') against `max`;
-- returns nil, or the CHURN_LIMITED reply when the budget is used up.
local function churn_take(record, now_s, period, max, which, version)
    if max <= 0 then return nil end
    local start, d, r = churn_read(record, now_s, period)
    if (which == 'deactivation' and d or r) >= max then
        return {CHURN_LIMITED, version, start + period - now_s, which, start + period}
    end
    if which == 'deactivation' then d = d + 1 else r = r + 1 end
    redis.call('HSET', record, 'c', struct.pack('<I4I2I2', start, math.min(d, 65535), math.min(r, 65535)))
    return nil
end

-- Releases left this period and when the next is allowed (0: now).
local function releases_left(record, now_s, max, period)
    if max <= 0 then return UNLIMITED, 0 end
    local start, _, r = churn_read(record, now_s, period)
    if r >= max then return 0, start + period end
    return max - r, 0
end
-- ---- end of seat churn --------------------------------------------------------

-- The place named by a license and held by the proven place key: the place,
-- or an error reply. A place with no key yet is taken by this one (renew
-- writes it back with the key).
-- ARGV: op, group record key, serial, place (machine digest and place-key
--       digest), random, address rate, address burst, place retention (s),
--       client address (the machine log)
local function find_place(record, address_key, index)
    local now_s, now_ms = clock()
    local wait, scope = take_tokens({{address_key, tonumber(A[6]), tonumber(A[7]), 'address', 1, 1}},
        now_ms)
    if wait > 0 then return nil, {RATE_LIMITED, wait, scope} end
    local g = group_policy(A[2])
    local keep = tonumber(A[8])
    forget_idle(record, index, g and g.max or 1, g and g.lease or 0, keep, lapsed_at(g, now_s))   -- a gone group too
    local field, holder = place_arg(A[4])
    local place = redis.call('HGET', record, field)   -- also for a group that is gone: same work
    if not g then return nil, {NOT_FOUND, '0'} end
    local version, max, lease, renew = g.version, g.max, g.lease, g.renew
    if not place or string.sub(place, 1, 8) ~= A[5] then return nil, {NOT_FOUND, version} end
    local bound = unpack_place(place).holder
    if bound ~= '' and bound ~= holder then return nil, {WRONG_KEY, version} end
    return {version = version, max = max, lease = lease, renew = renew, place = place, now = now_s,
        now_ms = now_ms, keep = keep, field = field, holder = holder, policy = g}
end

local function renew_license()
    local record, index = K[2], K[3]
    local p, err = find_place(record, ADDRESS, index)
    if not p then return err end
    if redis.call('SISMEMBER', K[1], A[3]) == 1 then return {REVOKED, p.version} end
    local e = place_expires(p.place)
    if e ~= 0 and e <= lapsed_at(p.policy, p.now) then return {EXPIRED, p.version} end
    local expires, renew_after = lease_times(p.lease, p.renew, p.now)
    local kept = unpack_place(p.place)   -- its tokens, hostname and history stay
    kept.expires, kept.holder, kept.seen = expires, p.holder, p.now
    redis.call('HSET', record, p.field, pack_place(kept))
    retain(record, index, p.field, place_score(p.max, p.lease, expires, p.now, p.keep), p.max, p.lease,
        kept_for(p.policy, p.keep), p.now_ms)
    mlog(K[4], 'r', p.field, A[3], p.now, A[9], '', '', '', '', expires)
    return {OK, p.version, places(record), expires, renew_after, p.now, A[5], 1}
end

local function deactivate()
    local record, index = K[1], K[2]
    local p, err = find_place(record, ADDRESS, index)
    if not p then return err end
    local limited = churn_take(record, p.now, churn_period(p.policy), p.policy.max_deact, 'deactivation', p.version)
    if limited then return limited end
    redis.call('HDEL', record, p.field)
    redis.call('ZREM', index, p.field)
    mlog(K[3], 'd', p.field, A[3], p.now, A[9], '', '', '', '', '')
    return {OK, p.version, places(record)}
end

-- ---- self-service: listing and releasing machines -------------------------------
-- A place is named to its key's owner by a handle: the first 8 bytes of
-- SHA-1(RELEASE_TAG 0x00 serial (decimal) 0x00 field), in hex, by Redis's own
-- redis.sha1hex. It tells nothing of the machine id (the field is already a
-- one-way digest of it), so a listing cannot be used to claim a place; the
-- hash only has to keep handles of one key apart.
local RELEASE_TAG = 'pa-release-v1'
local LIST_MAX = 100   -- places listed at most, the oldest seen first

local function release_handle(serial, field)
    return string.sub(redis.sha1hex(RELEASE_TAG .. '\0' .. serial .. '\0' .. field), 1, 16)
end

-- What list and release check first: one address token, the group, the
-- key not revoked; then idle places are forgotten, as an Activate would.
-- ARGV: op, group record key, serial, (list: caller's field | release:
--       handle), address rate, address burst, place retention (s),
--       release: the client address (the machine log)
-- KEYS: revoked, record, place index[, machine log][, address bucket]
local function self_service()
    local now_s, now_ms = clock()
    local wait, scope = take_tokens({{ADDRESS, tonumber(A[5]), tonumber(A[6]), 'address', 1, 1}}, now_ms)
    if wait > 0 then return nil, {RATE_LIMITED, wait, scope} end
    local g = group_policy(A[2])
    if not g then return nil, {UNKNOWN_GROUP} end
    if redis.call('SISMEMBER', K[1], A[3]) == 1 then return nil, {REVOKED, g.version} end
    forget_idle(K[2], K[3], g.max, g.lease, tonumber(A[7]), now_s)
    return {version = g.version, max = g.max, now = now_s, max_t = g.max_transfers, period = churn_period(g)}
end

local function list_machines()
    local s, err = self_service()
    if not s then return err end
    local all, entries = redis.call('HGETALL', K[2]), {}
    for i = 1, #all, 2 do
        local f, place = all[i], all[i + 1]
        if is_place(f, place) then   -- places of the earlier formats have no hostname, were seen never
            local p = unpack_place(place)
            entries[#entries + 1] = {release_handle(A[3], f), p.host, p.seen, p.expires, f == A[4] and 1 or 0}
        end
    end
    table.sort(entries, function(x, y)
        if x[3] ~= y[3] then return x[3] < y[3] end
        return x[1] < y[1]
    end)
    local left, next_at = releases_left(K[2], s.now, s.max_t, s.period)
    local reply = {OK, s.version, s.max, left, next_at, #entries}
    for i = 1, math.min(#entries, LIST_MAX) do
        for _, v in ipairs(entries[i]) do reply[#reply + 1] = v end
    end
    return reply
end

local function release_machine()
    local s, err = self_service()
    if not s then return err end
    local record, field = K[2], nil
    local all = redis.call('HGETALL', record)
    for i = 1, #all, 2 do
        if is_place(all[i], all[i + 1]) and release_handle(A[3], all[i]) == A[4] then
            field = all[i]
            break
        end
    end
    if not field then return {NOT_FOUND, s.version} end
    local limited = churn_take(record, s.now, s.period, s.max_t, 'transfer', s.version)
    if limited then return limited end
    redis.call('HDEL', record, field)
    redis.call('ZREM', K[3], field)
    mlog(K[4], 'd', field, A[3], s.now, A[8], '', '', '', '', '')
    local left = releases_left(record, s.now, s.max_t, s.period)
    return {OK, s.version, places(record), left}
end
-- ---- end of self-service ----------------------------------------------------------

-- ARGV: op, address rate, address burst, cost, `groups` key (read only,
-- hence not in KEYS), group ID, group failure rate, group failure burst.
-- On Redis Cluster `groups` lies in another slot than the group's keys,
-- which a script may not read there: the caller then passes the group
-- record's key (same slot) in place of `groups` and '' for the ID, and
-- the record's existence answers instead.
-- A wrong key takes `cost` tokens from its address and one from its
-- group's failure bucket; once either is below one token, every key from
-- that address, or of that group from anywhere, is refused, so a
-- brute-force run learns nothing and slows to the refill rate, however
-- many addresses it is spread over. The reply says whether the group
-- exists, asked for every key refused (a known group with a wrong value as
-- much as a made-up one), so the server can find a group created since it
-- last read `groups` (group_ids.h) at no extra cost.
local function reject()
    local exists = A[6] == '' and redis.call('EXISTS', A[5]) or redis.call('SISMEMBER', A[5], A[6])
    local _, now_ms = clock()
    local wait, scope = take_tokens({
        {ADDRESS, tonumber(A[2]), tonumber(A[3]), 'address', 1, tonumber(A[4])},
        {K[1], tonumber(A[7]), tonumber(A[8]), 'group', 1, 1}}, now_ms)
    if wait > 0 then return {RATE_LIMITED, wait, scope} end
    return {NOT_GENUINE, exists}
end

local ops = {activate = activate, renew = renew_license, deactivate = deactivate, reject = reject,
    list = list_machines, release = release_machine}

-- Checks one call's operation and key count; nil, or the error's text.
local function call_error(name, nkeys)
    local fixed = FIXED_KEYS[name]
    if not fixed then return 'ERR policy.lua: unknown operation' end
    if nkeys ~= fixed and nkeys ~= fixed + 1 then
        return 'ERR policy.lua: ' .. name .. ' takes ' .. fixed .. ' keys and the address bucket'
    end
    return nil
end

-- Runs one call: its keys and arguments become K and A (KEYS and ARGV are
-- Redis's globals, which a script may not assign).
local function run(keys, args)
    K, A = keys, args
    ADDRESS = keys[FIXED_KEYS[args[1]] + 1]   -- nil: the caller took the address tokens already (address_take.lua)
    return ops[args[1]]()
end

-- ---- batch: several calls in one (docs/batching.md "One script call per batch") ----
-- The layout (see the header): ARGV[2] the entry count n, then per entry
-- its key count and argument count, then every entry's arguments, each
-- entry's exactly the single call's ARGV (its operation first); KEYS holds
-- every entry's keys, in the same order. The whole layout is checked before
-- any entry runs: a bad one is one error reply and nothing is written.
local BATCH_MAX = 1000

-- The entries' {keys, args}, or nil and the error's text.
local function batch_entries()
    local n = tonumber(ARGV[2])
    if not n or n ~= math.floor(n) or n < 1 or n > BATCH_MAX then
        return nil, 'ERR policy.lua: batch: ARGV[2] must be the entry count, 1 to ' .. BATCH_MAX
    end
    local head = 2 + 2 * n
    if #ARGV < head then return nil, 'ERR policy.lua: batch: fewer arguments than the counts of ' .. n .. ' entries' end
    local entries, ki, ai = {}, 1, head + 1
    for i = 1, n do
        local nk, na = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
        if not nk or not na or nk < 0 or na < 1 or nk ~= math.floor(nk) or na ~= math.floor(na) then
            return nil, 'ERR policy.lua: batch: entry ' .. i .. ': key and argument counts must be whole, arguments at least 1'
        end
        if ki + nk - 1 > #KEYS or ai + na - 1 > #ARGV then
            return nil, 'ERR policy.lua: batch: entry ' .. i .. ' runs past the end of KEYS or ARGV'
        end
        local e = {{unpack(KEYS, ki, ki + nk - 1)}, {unpack(ARGV, ai, ai + na - 1)}}
        local bad = call_error(e[2][1], nk)   -- 'batch' itself is no entry's operation (not in FIXED_KEYS)
        if bad then return nil, 'ERR policy.lua: batch: entry ' .. i .. ': ' .. string.sub(bad, #'ERR policy.lua: ' + 1) end
        entries[i], ki, ai = e, ki + nk, ai + na
    end
    if ki - 1 ~= #KEYS or ai - 1 ~= #ARGV then
        return nil, 'ERR policy.lua: batch: KEYS or ARGV hold more than the entries\' counts'
    end
    return entries
end

-- Every entry's reply in order; an entry whose call raised an error (a
-- failed redis.call) gets that error as its element, the others still run.
-- Its writes before the error stay, as in a single call that fails.
local function batch()
    local entries, err = batch_entries()
    if not entries then return redis.error_reply(err) end
    local replies = {}
    HELD = {}
    for i, e in ipairs(entries) do
        local ok, r = pcall(run, e[1], e[2])
        if ok then
            replies[i] = r
        elseif type(r) == 'table' and r.err then
            replies[i] = {err = r.err}
        elseif type(r) == 'string' and string.match(r, '^%u+ ') then
            replies[i] = {err = r}   -- Redis's own error, its code first (WRONGTYPE, OOM, ...)
        else
            replies[i] = {err = 'ERR policy.lua: ' .. tostring(r)}
        end
    end
    flush_buckets()
    return replies
end
-- ---- end of batch ---------------------------------------------------------------

if ARGV[1] == 'batch' then return batch() end
local bad = call_error(ARGV[1], #KEYS)
if bad then return redis.error_reply(bad) end
return run(KEYS, ARGV)
