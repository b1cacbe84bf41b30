-- volume.lua -- the seats of a volume order (docs/volume.md): one call per
-- Activate, Renew (a heartbeat in concurrent mode) or Deactivate of a volume
-- key, per operator decision, and per background sweep. The machine table,
-- the seat count, the KMS activation count and threshold, designation and
-- the ageing wheel change together in that one call, so machines racing for
-- the last seats cannot overshoot and no reader sees half a decision. It is
-- embedded into the server binary with the positions of
-- volume_script_args.h defined in front of it (VOL_KEY_*, VOL_ARG_*, VOL_R_*)
-- and registered once per connection (EVALSHA).
--
-- ARGV[VOL_ARG_OP] names the operation:
--   activate    KEYS the order's seven + audit outbox[, revoked][, address bucket]
--   renew       KEYS the order's seven[, revoked][, address bucket] (a heartbeat)
--   deactivate  the same (revoked is not read)
--   sweep       the order's seven: age the wheel (the server's background task)
--   approve     the order's seven: the operator approves a deactivation request
--   deny        the order's seven: ... or denies it (reported at the next renew)
--   force       the order's seven: forced deactivation of a machine
-- The order's seven: {o:S}:m, {o:S}:n, {o:S}:wheel, {o:S}:designated,
-- {o:S}:facts, {o:S}:mlog (the machine log, docs/admin.md "The machine
-- directory": one entry per grant, renew, pending answer, deactivation
-- (request) and seat or machine reclaimed by the ageing, see L.mlog),
-- {o:S}:seen (component matching's candidates, see L.find_match). The order hash {o:S}:order comes in ARGV (VOL_ARG_ORDER), not
-- KEYS: it is only read here, and Redis 7.0 requires read-write rights on
-- every key passed to EVALSHA; it shares the {o:S} hash tag. The wheel's
-- bucket sets are named here, VOL_ARG_WHEEL_PREFIX .. NAME (also {o:S}):
-- they come and go with time, so no caller could name them in advance.
-- The revoked set and the address bucket are outside the order's slot: on
-- a single node they come last in KEYS (this one call reads both); on Redis
-- Cluster both are left out (docs/cluster.md, "volume.lua"): the caller
-- took the address's tokens with address_take.lua and read the key's
-- revocation just before, and says what it read in VOL_ARG_REVOKED. The
-- outbox is then the shard of the order's slot.
--
-- ARGV (volume_script_args.h): op, order hash key, wheel prefix, ageing
-- budget, then machine digest (16 bytes); activate, renew and deactivate add
-- the place-key digest (11 bytes, "" on an Activate without place_key), the
-- random (activate: 8 fresh bytes; renew, deactivate: the license id's), the
-- key's serial, address rate and burst, the client address, the key's
-- group, the revocation as read before ("" on a single node); activate adds the collected facts
-- (JSON, "" if none), the offline audit (mode: 0 none, 1 sampled, 2 only on
-- the key's first use in the order; the outbox cap; '1' to grant
-- unaudited at the cap, '0' to refuse; how many outbox field/value
-- arguments follow, then those: audit_record_outbox_fields), and the
-- machine's designation names ("m:HEX", "s:SERIAL", "mac:MAC") to the end.
--
-- The order's terms are read from its hash (activation-server/order_record.h
-- ORDER_F_*), a 0 or a missing term meaning the default of docs/volume.md.
-- Time is Redis's own L.clock (TIME), so every replica agrees on leases.
--
-- Reply: an array of VOL_R_N positions (VOL_R_*), the first a status:
local L = {} -- the functions and the shared tables: the one upvalue of every function
L.S = {OK = 0, RATE_LIMITED = 1, UNKNOWN_ORDER = 2, REVOKED = 3, NO_SEAT = 4, NOT_FOUND = 5, EXPIRED = 6,
    WRONG_KEY = 9, OUTBOX_FULL = 10, NOT_STARTED = 11, ENDED = 12, RETIRED = 13, DEACTIVATED = 14, NOT_REQUESTED = 15,
    MACHINE_ENDED = 16}
-- (7 and 8 keep policy.lua's meanings; 8 is the C side's UNAVAILABLE)
--   OK             every field that applies; a pending answer (VOL_R_PENDING) is
--                  OK with no license terms and the check-in time
--   RATE_LIMITED   retry (VOL_R_RETRY) and scope
--   UNKNOWN_ORDER  no order hash (removed since the caller cached it)
--   REVOKED        activate, renew: the key is in {g:ID}:revoked (on Redis
--                  Cluster: the caller read it so, VOL_ARG_REVOKED)
--   NO_SEAT        activate: every seat is held (nothing was written); a
--                  concurrent order says when the first lease ends (VOL_R_RETRY)
--   NOT_FOUND      renew, deactivate: no such machine, or another license id;
--                  approve, deny, force: no such machine
--   EXPIRED        renew: the machine holds no seat now (its lease lapsed):
--                  Activate again
--   WRONG_KEY      renew, deactivate: the machine is bound to another place key
--   OUTBOX_FULL    activate: a sampled grant met the audit outbox at its cap and
--                  the group fails closed (nothing was written)
--   NOT_STARTED, ENDED, RETIRED   activate, renew: the order's dates or state
--   DEACTIVATED    renew: the operator deactivated the machine (or approved
--                  its request)
--   NOT_REQUESTED  approve, deny: the machine asked for no deactivation
--   MACHINE_ENDED  activate, renew (vendor mode): the machine's own validity,
--                  from its first activation, has passed
--
-- Why everything hangs off one table L: Redis runs this whole chunk on every
-- call, so each function below is made anew each time, and Lua 5.1 finds a
-- closure's upvalues by walking the list of open ones. Functions that
-- captured the positions, constants and each other one by one spent more
-- of a call than its Redis commands before doing any work; with L as the
-- only upvalue each closure finds its one upvalue at once.
L.K = {machines = KEYS[VOL_KEY_MACHINES], counts = KEYS[VOL_KEY_COUNTS], wheel = KEYS[VOL_KEY_WHEEL],
    designated = KEYS[VOL_KEY_DESIGNATED], facts = KEYS[VOL_KEY_FACTS], mlog = KEYS[VOL_KEY_MLOG],
    seen = KEYS[VOL_KEY_SEEN]}
do -- the caller's keys after the seven, each only where it applies (volume_script_args.h)
    local at = VOL_ORDER_KEYS + 1
    if ARGV[VOL_ARG_OP] == 'activate' then L.K.outbox, at = KEYS[at], at + 1 end
    if ARGV[VOL_ARG_REVOKED] == '' then L.K.revoked, at = KEYS[at], at + 1 end
    L.K.address = KEYS[at] -- nil: taken before (Redis Cluster), or an operator call
end
L.A = {op = ARGV[VOL_ARG_OP], order = ARGV[VOL_ARG_ORDER], prefix = ARGV[VOL_ARG_WHEEL_PREFIX],
    age_max = tonumber(ARGV[VOL_ARG_AGE_MAX]), machine = ARGV[VOL_ARG_MACHINE], holder = ARGV[VOL_ARG_HOLDER],
    random = ARGV[VOL_ARG_RANDOM], serial = ARGV[VOL_ARG_SERIAL], rate = tonumber(ARGV[VOL_ARG_ADDRESS_RATE]),
    burst = tonumber(ARGV[VOL_ARG_ADDRESS_BURST]), facts = ARGV[VOL_ARG_FACTS], audit_mode = ARGV[VOL_ARG_AUDIT_MODE],
    outbox_max = tonumber(ARGV[VOL_ARG_OUTBOX_MAX]), grant_when_full = ARGV[VOL_ARG_GRANT_WHEN_FULL] == '1',
    ip = ARGV[VOL_ARG_IP] or '', group = ARGV[VOL_ARG_GROUP] or '', revoked = ARGV[VOL_ARG_REVOKED], hostname = ARGV[VOL_ARG_HOSTNAME] or '', os = ARGV[VOL_ARG_OS] or '',
    host_serial = ARGV[VOL_ARG_HOST_SERIAL] or '', macs = ARGV[VOL_ARG_MACS] or '',
    tokens = ARGV[VOL_ARG_TOKENS] or '', audit_fields = {}, names = {}}
if #L.A.tokens % 8 ~= 0 or #L.A.tokens > 8 * 16 then L.A.tokens = '' end -- C sends whole tokens only
if L.A.op == 'activate' then
    local n = tonumber(ARGV[VOL_ARG_AUDIT_N])
    for i = 1, n do L.A.audit_fields[i] = ARGV[VOL_ARG_AUDIT_N + i] end
    for i = VOL_ARG_AUDIT_N + n + 1, #ARGV do L.A.names[#L.A.names + 1] = ARGV[i] end
end
L.P = {status = VOL_R_STATUS, version = VOL_R_VERSION, now = VOL_R_NOW, count = VOL_R_COUNT,
    seats = VOL_R_SEATS, pending = VOL_R_PENDING, check_in = VOL_R_CHECK_IN, expires = VOL_R_EXPIRES,
    renew = VOL_R_RENEW, random = VOL_R_RANDOM, again = VOL_R_AGAIN, deact = VOL_R_DEACT, retry = VOL_R_RETRY,
    aged = VOL_R_AGED, more = VOL_R_MORE, over_term = VOL_R_OVER_TERM, scope = VOL_R_SCOPE, audited = VOL_R_AUDITED,
    changes = VOL_R_CHANGES, rebound = VOL_R_REBOUND, was = VOL_R_WAS, n = VOL_R_N}
local R = {} -- the operations

-- ---- the order's terms --------------------------------------------------------
L.MODE = {PERMANENT = 1, TIMED = 2, CONCURRENT = 3, UNLIMITED = 4, VENDOR = 5}
L.DAY = 86400

function L.term(v, default)
    local n = tonumber(v) or 0
    if n <= 0 then return default end
    return n
end

-- The order's terms with the defaults applied, or nil when there is no order.
function L.terms()
    local A, MODE, DAY, term = L.A, L.MODE, L.DAY, L.term
    local o = redis.call('HMGET', A.order, 'version', 'retired', 'mode', 'seats', 'valid_from', 'valid_until',
        'after_end', 'renew_seconds', 'reclaim_seconds', 'heartbeat_seconds', 'missed_heartbeats', 'license_seconds',
        'machine_validity_seconds', 'retention_seconds', 'pending_retry_seconds', 'threshold', 'auto_activation',
        'deactivation_approval', 'machine_match')
    if not o[1] or not o[3] then return nil end
    local t = {version = o[1], retired = o[2] == '1', mode = tonumber(o[3]) or 0, seats = tonumber(o[4]) or 0,
        from = tonumber(o[5]) or 0, ends = tonumber(o[6]) or 0, after_end = tonumber(o[7]) or 0,
        renew = term(o[8], 7 * DAY), reclaim = term(o[9], 30 * DAY), hb = term(o[10], 60), missed = term(o[11], 3),
        license = term(o[12], 180 * DAY), retention = term(o[14], 30 * DAY), pending_retry = term(o[15], 7200),
        threshold = tonumber(o[16]) or 0, auto = o[17] ~= '0', approval = o[18] == '1', aged = 0,
        match = tonumber(o[19]) or 0}
    if t.match < 0 or t.match > 16 then t.match = 0 end -- only the operator's control writes it, 1..16
    t.validity = term(o[13], t.license)
    t.counted = t.mode ~= MODE.UNLIMITED
    t.leased = t.mode == MODE.TIMED or t.mode == MODE.CONCURRENT
    t.continues = t.mode == MODE.UNLIMITED and t.after_end == 2 -- AFTER_END_CONTINUE_COUNTED
    t.lwidth = t.mode == MODE.CONCURRENT and t.hb or math.max(1, math.floor(t.reclaim / 30))
    t.twidth = math.max(1, math.floor(t.retention / 30))
    return t
end

-- activate, renew: the order's dates and state. Returns a refusal status or
-- nil; sets t.after_end_now for a call after the end (continue-counted).
function L.date_check(t, now)
    local S = L.S
    t.after_end_now = false
    if t.retired then return S.RETIRED end
    if now < t.from then return S.NOT_STARTED end
    if t.ends > 0 and now >= t.ends then
        if not t.continues then return S.ENDED end
        t.after_end_now = true
    end
    return nil
end

-- ---- the machine record (28 bytes, then the matching tail) -----------------------
-- flags (1) | first seen (u32 LE) | last contact | lease until | generation (4)
-- | place-key digest (11; zero: none bound yet). A deactivated machine's
-- "lease until" is when its tombstone may go. Then, only while there is
-- something to keep (so an order without component matching keeps its
-- 28-byte records): re-binds so far (1, saturating) | n (1) | n component
-- tokens of 8 bytes, sorted (L.find_match).
L.F = {SEAT = 1, PENDING = 2, ASKED = 4, DENIED = 8, GONE = 16, OVER = 32, OUT = 64,
    NO_HOLDER = string.rep('\0', 11)}

function L.unpack_rec(v)
    local flags, first, last, lease = struct.unpack('<BI4I4I4', v)
    local n = string.byte(v, 30) or 0
    return {flags = flags, first = first, last = last, lease = lease, gen = string.sub(v, 14, 17),
        holder = string.sub(v, 18, 28), rebinds = string.byte(v, 29) or 0, tokens = string.sub(v, 31, 30 + 8 * n)}
end

function L.pack_rec(r)
    local base = struct.pack('<BI4I4I4', r.flags, r.first, r.last, r.lease) .. r.gen .. r.holder
    if r.rebinds == 0 and r.tokens == '' then return base end
    return base .. string.char(r.rebinds, #r.tokens / 8) .. r.tokens
end
-- The record as read, kept beside the one a call changes (no second unpack).
function L.copy_rec(r)
    return {flags = r.flags, first = r.first, last = r.last, lease = r.lease, gen = r.gen, holder = r.holder,
        rebinds = r.rebinds, tokens = r.tokens}
end
function L.has(r, f) return bit.band(r.flags, f) ~= 0 end
function L.set(r, f) r.flags = bit.bor(r.flags, f) end
function L.clear(r, f) r.flags = bit.band(r.flags, bit.bnot(f)) end

-- In the activation count: every machine that asked within the window, but
-- not one that left it (OUT, still holding its seat) or was deactivated.
function L.in_window(r)
    local F = L.F
    return bit.band(r.flags, F.OUT + F.GONE) == 0
end

-- Holds its grant: a seat (counted modes), or L.granted (unlimited).
function L.holding(r, t)
    local F = L.F
    if bit.band(r.flags, F.GONE + F.PENDING) ~= 0 then return false end
    return not t.counted or L.has(r, F.SEAT)
end

-- The license id's random part: the generation, then the digest's first
-- four bytes, so a retry or a reinstall gets the same id back.
function L.license_random(r)
    local A = L.A
    return r.gen .. string.sub(A.machine, 1, 4)
end

-- ---- counters ---------------------------------------------------------------------
-- Read once per call, changed in memory, written once at the end (reply).
-- `changes` counts the writes, so a reader of two replies can tell which
-- saw the later counters (order_gauges.c: workers answer out of order).
L.C = {seats = 0, machines = 0, over_term = 0, changes = 0, dirty = false}

function L.load_counts()
    local K, C = L.K, L.C
    local n = redis.call('HMGET', K.counts, 'seats', 'machines', 'over_term', 'changes')
    C.seats, C.machines, C.over_term = tonumber(n[1]) or 0, tonumber(n[2]) or 0, tonumber(n[3]) or 0
    C.changes = tonumber(n[4]) or 0
end

function L.bump(field, delta)
    local C = L.C
    if delta == 0 then return end
    C[field] = C[field] + delta
    C.dirty = true
end

-- ---- the wheel ----------------------------------------------------------------------
-- Every record but one out of the window sits in one bucket set, named by
-- when the bucket falls due: 'l:' buckets hold leased seats by their lease's
-- end, 't:' buckets everything else by when it leaves the window (last
-- contact + retention) or, deactivated, by when its tombstone goes.
function L.due(at, width) return (math.floor(at / width) + 1) * width end

-- The record's next deadline, its bucket's name and due time; nil when it is
-- in none (out of the window, holding a permanent or vendor seat).
function L.deadline(r, t)
    local F = L.F
    local f = r.flags
    if bit.band(f, F.OUT) ~= 0 then return nil end
    local d, kind, width = r.last + t.retention, 't:', t.twidth
    if bit.band(f, F.GONE) ~= 0 then
        d = r.lease
    elseif bit.band(f, F.SEAT) ~= 0 and t.leased and r.lease > 0 then
        d, kind, width = r.lease, 'l:', t.lwidth
    end
    local at = L.due(d, width)
    return d, kind .. at, at
end

function L.unfile(digest, r, t)
    local A = L.A
    local _, name = L.deadline(r, t)
    if name then redis.call('SREM', A.prefix .. name, digest) end
end

-- Writes the record `r` of `digest`, moving it from the bucket its old
-- state `old` (nil: new) put it in.
function L.store(digest, old, r, t)
    local K, A = L.K, L.A
    if L.RB and not L.RB.done and digest == A.machine then L.move(old, t) end
    local was = old and select(2, L.deadline(old, t))
    local _, now_in, at = L.deadline(r, t) -- once: a heartbeat stays in its bucket most of the time
    if was ~= now_in then
        if was then redis.call('SREM', A.prefix .. was, digest) end
        if now_in then
            redis.call('SADD', A.prefix .. now_in, digest)
            redis.call('ZADD', K.wheel, at, now_in)
        end
    end
    redis.call('HSET', K.machines, digest, L.pack_rec(r))
end

-- The machine leaves the table.
function L.remove(digest, r, t)
    local K, F = L.K, L.F
    L.unfile(digest, r, t)
    redis.call('HDEL', K.machines, digest)
    redis.call('HDEL', K.facts, digest)
    if r.tokens ~= '' then redis.call('ZREM', K.seen, digest) end
    if L.has(r, F.SEAT) then L.bump('seats', -1) end
    if L.in_window(r) then L.bump('machines', -1) end
end

-- Ageing: takes the buckets that fell due, at most `budget` members in all,
-- and moves each member on: a lapsed lease frees its seat (and the machine
-- waits in its 't:' bucket), a machine past the window leaves the table, or
-- only the count when it holds a permanent or vendor seat. A member whose
-- record says otherwise (its terms changed since it was filed) is filed
-- where its record belongs now. Each batch is written before the next is
-- read, so a machine met twice (filed under old terms too) is seen as it is
-- now. Returns how many members it took and whether due buckets are left.
L.AGE_BATCH = 1000 -- members per SPOP (unpack() has a limit)

function L.age_one(digest, r, t, now, out)
    local F = L.F
    local d, name, at = nil, nil, nil
    if r then d, name, at = L.deadline(r, t) end
    if not name then return end -- gone, or out of the window: nothing to do
    if d <= now then
        if L.has(r, F.SEAT) and t.leased and r.lease > 0 and not L.has(r, F.GONE) then
            L.clear(r, F.SEAT) -- the lease lapsed: the seat is free
            r.lease = 0
            L.bump('seats', -1)
            L.mlog('x', digest, now)
            d, name, at = L.deadline(r, t)
        end
        if d <= now and L.has(r, F.SEAT) then
            L.set(r, F.OUT) -- out of the window, keeps its seat
            L.bump('machines', -1)
            name = nil
        elseif d <= now then
            if L.in_window(r) then L.bump('machines', -1) end
            out.gone[#out.gone + 1] = digest
            if not L.has(r, F.GONE) then L.mlog('x', digest, now) end -- a tombstone's 'd' said it already
            return
        end
        out.writes[#out.writes + 1] = digest
        out.writes[#out.writes + 1] = L.pack_rec(r)
    end
    if name then
        local list = out.refile[name]
        if not list then
            list = {at = at}
            out.refile[name] = list
        end
        list[#list + 1] = digest
    end
end

function L.age(t, now, budget)
    local K, A, AGE_BATCH = L.K, L.A, L.AGE_BATCH
    local done = 0
    while done < budget do
        local b = redis.call('ZRANGEBYSCORE', K.wheel, '-inf', now, 'LIMIT', 0, 1)
        if #b == 0 then break end
        local want = math.min(budget - done, AGE_BATCH)
        local members = redis.call('SPOP', A.prefix .. b[1], want)
        if #members < want then redis.call('ZREM', K.wheel, b[1]) end
        done = done + #members
        if #members > 0 then
            local recs = redis.call('HMGET', K.machines, unpack(members))
            local out = {writes = {}, gone = {}, refile = {}}
            for i, digest in ipairs(members) do
                L.age_one(digest, recs[i] and L.unpack_rec(recs[i]), t, now, out)
            end
            if #out.writes > 0 then redis.call('HSET', K.machines, unpack(out.writes)) end
            if #out.gone > 0 then
                redis.call('HDEL', K.machines, unpack(out.gone))
                redis.call('HDEL', K.facts, unpack(out.gone))
                if t.match > 0 then redis.call('ZREM', K.seen, unpack(out.gone)) end -- else L.find_match prunes
            end
            for name, list in pairs(out.refile) do
                redis.call('SADD', A.prefix .. name, unpack(list))
                redis.call('ZADD', K.wheel, list.at, name)
            end
        end
    end
    t.aged = done
    return done >= budget and #redis.call('ZRANGEBYSCORE', K.wheel, '-inf', now, 'LIMIT', 0, 1) > 0
end

-- A full concurrent order: seconds until the first lease ends (its 'l:' bucket
-- falls due). The wheel holds a few dozen buckets at most.
function L.first_lease_end(t, now)
    local K = L.K
    local b = redis.call('ZRANGE', K.wheel, 0, 99, 'WITHSCORES')
    for i = 1, #b, 2 do
        if string.sub(b[i], 1, 2) == 'l:' then return math.max(1, tonumber(b[i + 1]) - now) end
    end
    return t.hb
end

-- ---- token bucket -------------------------------------------------------------------
-- The client address's bucket, the same value policy.lua keeps under the
-- same key (data-model.md, "Token buckets": tokens and ms as two doubles,
-- expiring once full again), so a caller's retail and volume calls draw on
-- one budget. Returns 0, or the seconds to wait.
function L.take_token(key, rate, burst, now_ms)
    if not key or rate <= 0 then return 0 end
    local level = burst
    local v = redis.call('GET', key)
    if v then
        local l, ts = struct.unpack('<dd', v)
        level = math.min(burst, l + math.max(0, now_ms - ts) * rate / 1000)
    end
    if level < 1 then return math.max(1, math.ceil((1 - level) / rate)) end
    level = level - 1
    redis.call('SET', key, struct.pack('<dd', level, now_ms), 'PX', math.ceil((burst - level) / rate * 1000) + 1000)
    return 0
end

function L.clock()
    local tm = redis.call('TIME')
    local s = tonumber(tm[1])
    L.now_us = s * 1000000 + tonumber(tm[2]) -- {o:S}:seen's order: no two calls share a microsecond
    return s, s * 1000 + math.floor(tonumber(tm[2]) / 1000)
end

-- ---- the machine log ----------------------------------------------------------------
-- One entry per change the admin server's directory shows, in the call that
-- made it, every field always present (a stream stores entries of the same
-- fields compactly): op (a grant, b a grant that re-bound the record of
-- another digest by components, r renew, p pending, q deactivation
-- requested, d deactivated, x seat or machine reclaimed by the ageing), m the
-- machine digest, g (the key's group, VOL_ARG_GROUP; '' for
-- operator calls and the sweep), s, o (the order), t, ip, h, mac, hs, os
-- (what an Activate says of the machine; '' otherwise), e (the license's
-- expires_at, '' when not known), was (a re-bind, op b or p: the digest
-- the record moved from; '' otherwise). Bounded: XADD MAXLEN ~.
L.MLOG_MAXLEN = 100000

function L.mlog(op, digest, now, expires, was)
    local K, A = L.K, L.A
    local own = op ~= 'x' -- the ageing's entries are other machines': not the caller's key or address
    local asks = own and A.op == 'activate'
    redis.call('XADD', K.mlog, 'MAXLEN', '~', L.MLOG_MAXLEN, '*', 'op', op, 'm', digest, 'g',
        own and A.group or '', 's', own and A.serial or '', 'o',
        string.match(K.mlog, '^{o:([^}]*)}') or '', 't', now, 'ip', own and A.ip or '', 'h',
        asks and A.hostname or '', 'mac', asks and A.macs or '', 'hs', asks and A.host_serial or '', 'os',
        asks and A.os or '', 'e', expires or '', 'was', was or '')
end

-- ---- replies ------------------------------------------------------------------------
-- The L.reply (f: fields by P's names), after writing the counters if the call
-- changed them.
function L.reply(status, t, now, f)
    local K, P, C = L.K, L.P, L.C
    if C.dirty then
        C.changes = C.changes + 1
        redis.call('HSET', K.counts, 'seats', C.seats, 'machines', C.machines, 'over_term', C.over_term,
            'changes', C.changes)
        C.dirty = false
    end
    local out = {}
    for i = 1, P.n do out[i] = 0 end
    out[P.status], out[P.version], out[P.now] = status, t and t.version or '0', now
    out[P.count], out[P.seats], out[P.over_term] = C.machines, C.seats, C.over_term
    out[P.changes] = C.changes
    out[P.random], out[P.scope], out[P.was] = '', '', ''
    if t then out[P.aged] = t.aged end
    if L.RB and L.RB.done then out[P.rebound], out[P.was] = L.RB.shared, L.RB.from end
    if f then
        for k, v in pairs(f) do out[P[k]] = v end
    end
    return out
end

-- Is the caller's key revoked? Its group's set here, or on Redis Cluster
-- what the caller read of it just before this call.
function L.revoked()
    local K, A = L.K, L.A
    if not K.revoked then return A.revoked == '1' end
    return redis.call('SISMEMBER', K.revoked, A.serial) == 1
end

-- The caller's operations begin alike: the address token, the order, its
-- dates (activate, renew), the revocation, then ageing. Returns the terms,
-- now, and a reply when the call ends there.
function L.begin(check_dates)
    local S, K, A = L.S, L.K, L.A
    local now, now_ms = L.clock()
    local wait = L.take_token(K.address, A.rate, A.burst, now_ms)
    if wait > 0 then return nil, now, L.reply(S.RATE_LIMITED, nil, now, {retry = wait, scope = 'address'}) end
    local t = L.terms()
    if not t then return nil, now, L.reply(S.UNKNOWN_ORDER, nil, now) end
    if check_dates then
        local refused = L.date_check(t, now)
        if refused then return nil, now, L.reply(refused, t, now) end
        if L.revoked() then return nil, now, L.reply(S.REVOKED, t, now) end
    end
    L.load_counts()
    L.age(t, now, A.age_max)
    return t, now, nil
end

-- ---- granting -----------------------------------------------------------------------
-- The license terms and the seat's lease for a grant now: lease until,
-- renew_after, expires_at. No license outlives the order's end date, except
-- under continue-counted.
function L.grant_times(r, t, now)
    local MODE = L.MODE
    local lease, renew_after, expires = 0, now + t.renew, now + t.license
    if t.mode == MODE.TIMED then
        lease, expires = now + t.reclaim, now + t.reclaim
    elseif t.mode == MODE.CONCURRENT then
        lease, renew_after, expires = now + t.hb * t.missed, now + t.hb, now + t.hb * t.missed
    elseif t.mode == MODE.VENDOR then
        renew_after, expires = 0, r.first + t.validity
    end
    if t.ends > 0 and not t.continues then
        expires = math.min(expires, t.ends)
        if renew_after > expires then renew_after = expires end
    end
    return lease, renew_after, expires
end

-- The machine's contact as a grant: refreshed, leased, counted after the end
-- date, back in the window. Changes r and the counters; the caller stores r.
function L.refresh(r, t, now)
    local F = L.F
    if L.has(r, F.OUT) then
        L.clear(r, F.OUT)
        L.bump('machines', 1)
    end
    if t.after_end_now and not L.has(r, F.OVER) then
        L.set(r, F.OVER)
        L.bump('over_term', 1)
    end
    r.last = now
    local lease, renew_after, expires = L.grant_times(r, t, now)
    r.lease = (L.has(r, F.SEAT) and t.leased) and lease or 0
    return renew_after, expires
end

function L.designated()
    local K, A = L.K, L.A
    if #A.names == 0 then return false end
    for _, hit in ipairs(redis.call('SMISMEMBER', K.designated, unpack(A.names))) do
        if hit == 1 then return true end
    end
    return false
end

function L.deact_state(r)
    local F = L.F
    if L.has(r, F.ASKED) then return 1 end
    if L.has(r, F.DENIED) then return 2 end
    return 0
end

function L.granted(r, t, now, again, renew_after, expires, deact, audit)
    local S = L.S
    return L.reply(S.OK, t, now, L.audit_write(audit, {check_in = renew_after, expires = expires,
        renew = renew_after, random = L.license_random(r), again = again and 1 or 0,
        deact = deact or L.deact_state(r)}))
end

function L.save_facts()
    local K, A = L.K, L.A
    if A.facts ~= '' then redis.call('HSET', K.facts, A.machine, A.facts) end
end

-- The offline audit of a grant (vendor-hosted keys): sampled always (mode
-- 1), or only on the key's first use in this order (mode 2, the counters'
-- 'k:SERIAL' field still absent). The outbox has a cap, checked before
-- anything is written: at the cap a sampled grant is refused, or granted
-- without its audit record. Returns nil (not sampled), 'write', 'unaudited'
-- or 'full'.
function L.audit_check()
    local K, A = L.K, L.A
    local sampled = A.audit_mode == '1' or
        (A.audit_mode == '2' and redis.call('HEXISTS', K.counts, 'k:' .. A.serial) == 0)
    if not sampled then return nil end
    if redis.call('XLEN', K.outbox) < A.outbox_max then return 'write' end
    if A.grant_when_full then return 'unaudited' end
    return 'full'
end

-- After a grant: the outbox record, if sampled; the reply says what became
-- of the audit (1 written, 2 sampled but granted unaudited).
function L.audit_write(audit, f)
    local K, A = L.K, L.A
    if audit == 'write' then
        redis.call('XADD', K.outbox, '*', unpack(A.audit_fields))
        f.audited = 1
    elseif audit == 'unaudited' then
        f.audited = 2
    end
    return f
end

-- ---- component matching (docs/machines.md, "Matching a machine to a place") -------
-- The order's machine_match K (the operator's control; 0: exact) lets a new
-- machine digest take over the record of a machine sharing at least K of
-- its component tokens: the seat and the history move, never copy.

-- The record's matching tail after this Activate: the request's tokens
-- while the order matches, none otherwise (so an exact order keeps 28-byte
-- records), and one more re-bind when it re-binds.
function L.keep_tokens(r, t)
    local K, A = L.K, L.A
    r.tokens = t.match > 0 and A.tokens or ''
    if L.RB then r.rebinds = math.min(255, r.rebinds + 1) end
    if t.match == 0 then return end -- an exact order neither reads nor writes the index
    if r.tokens ~= '' then
        redis.call('ZADD', K.seen, L.now_us, A.machine)
    else
        redis.call('ZREM', K.seen, A.machine)
    end
end

L.MATCH_SCAN = 64 -- candidates read at most per Activate (docs/volume.md, "Component matching")

-- The candidates: the L.MATCH_SCAN machines of {o:S}:seen activated last.
-- Every record with tokens is in it, by its last Activate; a record leaves
-- it when it leaves the table, moves (L.move) or is deactivated, and one
-- that left while the order was exact (nothing writes the index then) when
-- L.find_match next meets it.
function L.candidates()
    local K = L.K
    return redis.call('ZREVRANGE', K.seen, 0, L.MATCH_SCAN - 1)
end

-- Tokens the record `r` shares with the request (`mine`: token -> true).
function L.shared(r, mine)
    local n = 0
    for p = 1, #r.tokens, 8 do
        if mine[string.sub(r.tokens, p, p + 7)] then n = n + 1 end
    end
    return n
end

-- The machine of the order this Activate's machine is, by components: the
-- candidate sharing the most tokens, at least K (ties: the latest seen), not
-- deactivated, in the window. Returns {from = digest, v = record, shared}
-- or nil.
function L.find_match(t, now)
    local K, A, F = L.K, L.A, L.F
    if t.match == 0 or #A.tokens / 8 < t.match then return nil end
    local mine = {}
    for p = 1, #A.tokens, 8 do mine[string.sub(A.tokens, p, p + 7)] = true end
    local c = L.candidates()
    if #c == 0 then return nil end
    local recs = redis.call('HMGET', K.machines, unpack(c))
    local best, best_last, stale = nil, -1, {}
    for i, d in ipairs(c) do
        local r = recs[i] and L.unpack_rec(recs[i])
        if not r or r.tokens == '' then stale[#stale + 1] = d end -- left while the order was exact
        if r and d ~= A.machine and not L.has(r, F.GONE) and r.last + t.retention > now then
            local n = L.shared(r, mine)
            if n >= t.match and (not best or n > best.shared or (n == best.shared and r.last > best_last)) then
                best, best_last = {from = d, v = recs[i], shared = n}, r.last
            end
        end
    end
    if #stale > 0 then redis.call('ZREM', K.seen, unpack(stale)) end
    return best
end

-- The first write of a re-binding Activate: the record leaves its old digest
-- (its bucket membership passes to the new one, which L.store then moves as
-- for any contact) and counts one more re-bind. `old` is the record as read.
function L.move(old, t)
    local K, A, RB = L.K, L.A, L.RB
    local _, name = L.deadline(old, t)
    if name then
        redis.call('SREM', A.prefix .. name, RB.from)
        redis.call('SADD', A.prefix .. name, A.machine)
    end
    redis.call('HDEL', K.machines, RB.from)
    redis.call('HDEL', K.facts, RB.from)
    redis.call('ZREM', K.seen, RB.from)
    RB.done = true
end

-- The machine-log entry of a grant: 'a', or 'b' with `was` when it re-bound
-- (as policy.lua's: the admin directory marks the old machine moved).
function L.grant_log(now, expires)
    local A, RB = L.A, L.RB
    L.mlog(RB and 'b' or 'a', A.machine, now, expires, RB and RB.from)
end

-- A machine without its grant asks: a new one, one back after a
-- deactivation, a pending one, or a lapsed lease. Decides first and writes
-- after: a refusal for lack of a seat changes nothing.
function L.admit(v, old, t, now)
    local S, A, F, MODE, C = L.S, L.A, L.F, L.MODE, L.C
    local r = old and L.unpack_rec(v)
    local fresh = not r or L.has(r, F.GONE)
    local joins = fresh or L.has(r, F.OUT)
    local pending = 0
    if not t.auto and not L.designated() then
        pending = 2
    elseif t.threshold > 1 and C.machines + (joins and 1 or 0) < t.threshold then
        pending = 1
    end
    if pending == 0 and t.counted and C.seats >= t.seats then
        local retry = t.mode == MODE.CONCURRENT and L.first_lease_end(t, now) or 0
        return L.reply(S.NO_SEAT, t, now, {retry = retry})
    end
    local audit = pending == 0 and L.audit_check() or nil
    if audit == 'full' then return L.reply(S.OUTBOX_FULL, t, now) end
    if fresh then
        r = {flags = r and bit.band(r.flags, F.OVER) or 0, first = r and r.first or now, last = now, lease = 0,
            gen = string.sub(A.random, 1, 4), holder = F.NO_HOLDER, rebinds = 0, tokens = ''}
    end
    L.keep_tokens(r, t)
    L.clear(r, F.OUT + F.ASKED + F.DENIED)
    if joins then L.bump('machines', 1) end
    if A.holder ~= '' then r.holder = A.holder end
    L.save_facts()
    if pending > 0 then
        L.set(r, F.PENDING)
        r.last = now
        L.store(A.machine, old, r, t)
        L.mlog('p', A.machine, now, nil, L.RB and L.RB.from) -- a pending re-bind names its old digest too
        return L.reply(S.OK, t, now, {pending = pending, check_in = now + t.pending_retry})
    end
    L.clear(r, F.PENDING)
    if t.counted then
        L.set(r, F.SEAT)
        L.bump('seats', 1)
    end
    redis.call('HINCRBY', L.K.counts, 'k:' .. A.serial, 1) -- the key's uses in this order
    local renew_after, expires = L.refresh(r, t, now)
    L.store(A.machine, old, r, t)
    L.grant_log(now, expires)
    return L.granted(r, t, now, false, renew_after, expires, nil, audit)
end

function R.activate()
    local S, K, A, F, MODE = L.S, L.K, L.A, L.F, L.MODE
    local t, now, early = L.begin(true)
    if early then return early end
    local v = redis.call('HGET', K.machines, A.machine)
    if not v then
        L.RB = L.find_match(t, now) -- a new digest: maybe a known machine whose machine_id changed
        if L.RB then
            L.RB.now = now
            v = L.RB.v
        end
    end
    local old = v and L.unpack_rec(v)
    if old and t.mode == MODE.VENDOR and not L.has(old, F.GONE) and old.first + t.validity <= now then
        return L.reply(S.MACHINE_ENDED, t, now)
    end
    if not (old and L.holding(old, t)) then return L.admit(v, old, t, now) end
    -- The machine holds its grant: the same seat and license id (a retry,
    -- a reinstall). A new place key rebinds it; none keeps the bound one.
    local audit = L.audit_check()
    if audit == 'full' then return L.reply(S.OUTBOX_FULL, t, now) end
    local r = L.unpack_rec(v)
    if A.holder ~= '' then r.holder = A.holder end
    L.keep_tokens(r, t)
    L.save_facts()
    local renew_after, expires = L.refresh(r, t, now)
    L.store(A.machine, old, r, t)
    L.grant_log(now, expires)
    return L.granted(r, t, now, not L.RB, renew_after, expires, nil, audit) -- re-bound: a new license id
end

-- renew, deactivate: the machine named by the license id and proven by its
-- place key. Returns the record and the record as stored, or nil and a
-- reply. A machine with no key bound yet is bound to this one (the caller
-- stores the record).
function L.own_record(t, now)
    local S, K, A, F = L.S, L.K, L.A, L.F
    local v = redis.call('HGET', K.machines, A.machine)
    if not v then return nil, L.reply(S.NOT_FOUND, t, now) end
    local r = L.unpack_rec(v)
    if L.license_random(r) ~= A.random then return nil, L.reply(S.NOT_FOUND, t, now) end
    local old = L.copy_rec(r)
    if r.holder == F.NO_HOLDER then
        r.holder = A.holder
    elseif r.holder ~= A.holder then
        return nil, L.reply(S.WRONG_KEY, t, now)
    end
    return r, old
end

function R.renew()
    local S, A, F, MODE = L.S, L.A, L.F, L.MODE
    local t, now, early = L.begin(true)
    if early then return early end
    local r, old = L.own_record(t, now)
    if not r then return old end
    if L.has(r, F.GONE) then return L.reply(S.DEACTIVATED, t, now) end
    if not L.holding(r, t) then return L.reply(S.EXPIRED, t, now) end
    if t.mode == MODE.VENDOR and r.first + t.validity <= now then return L.reply(S.MACHINE_ENDED, t, now) end
    local deact = L.deact_state(r)
    L.clear(r, F.DENIED) -- a denial is reported once
    local renew_after, expires = L.refresh(r, t, now)
    L.store(A.machine, old, r, t)
    L.mlog('r', A.machine, now, expires)
    return L.granted(r, t, now, true, renew_after, expires, deact)
end

function R.deactivate()
    local S, A, F = L.S, L.A, L.F
    local t, now, early = L.begin(false)
    if early then return early end
    local r, old = L.own_record(t, now)
    if not r then return old end
    if L.has(r, F.GONE) then return L.reply(S.OK, t, now) end -- done already
    if t.approval and L.holding(r, t) then
        L.set(r, F.ASKED)
        L.clear(r, F.DENIED)
        L.store(A.machine, old, r, t)
        L.mlog('q', A.machine, now)
        return L.reply(S.OK, t, now, {deact = 1})
    end
    L.remove(A.machine, r, t)
    L.mlog('d', A.machine, now)
    return L.reply(S.OK, t, now)
end

-- ---- operator decisions and the sweep ----------------------------------------------
function L.operator_begin()
    local S, K, A = L.S, L.K, L.A
    local now = L.clock()
    local t = L.terms()
    if not t then return nil, now, nil, L.reply(S.UNKNOWN_ORDER, nil, now) end
    L.load_counts()
    L.age(t, now, A.age_max)
    local v = redis.call('HGET', K.machines, A.machine)
    if not v then return nil, now, nil, L.reply(S.NOT_FOUND, t, now) end
    return t, now, L.unpack_rec(v)
end

-- The machine is deactivated: its seat frees at once, it leaves the count,
-- and its record stays as a tombstone for the retention period so that its
-- next Renew answers DEACTIVATED.
function L.tombstone(r, t, now)
    local A, F = L.A, L.F
    local old = L.unpack_rec(L.pack_rec(r))
    if L.has(r, F.SEAT) then L.bump('seats', -1) end
    if L.in_window(r) then L.bump('machines', -1) end
    r.flags = F.GONE + bit.band(r.flags, F.OVER)
    r.lease = now + t.retention
    if r.tokens ~= '' then redis.call('ZREM', L.K.seen, A.machine) end -- a tombstone is no machine to follow
    L.store(A.machine, old, r, t)
    L.mlog('d', A.machine, now)
end

function R.approve()
    local S, F = L.S, L.F
    local t, now, r, early = L.operator_begin()
    if early then return early end
    if not L.has(r, F.ASKED) or L.has(r, F.GONE) then return L.reply(S.NOT_REQUESTED, t, now) end
    L.tombstone(r, t, now)
    return L.reply(S.OK, t, now)
end

function R.deny()
    local S, K, A, F = L.S, L.K, L.A, L.F
    local t, now, r, early = L.operator_begin()
    if early then return early end
    if not L.has(r, F.ASKED) or L.has(r, F.GONE) then return L.reply(S.NOT_REQUESTED, t, now) end
    L.clear(r, F.ASKED)
    L.set(r, F.DENIED)
    redis.call('HSET', K.machines, A.machine, L.pack_rec(r))
    L.mlog('r', A.machine, now) -- denied: it keeps its seat, as after a renew
    return L.reply(S.OK, t, now)
end

function R.force()
    local S, F = L.S, L.F
    local t, now, r, early = L.operator_begin()
    if early then return early end
    if not L.has(r, F.GONE) then L.tombstone(r, t, now) end
    return L.reply(S.OK, t, now)
end

function R.sweep()
    local S, A = L.S, L.A
    local now = L.clock()
    local t = L.terms()
    if not t then return L.reply(S.UNKNOWN_ORDER, nil, now) end
    L.load_counts()
    local more = L.age(t, now, A.age_max)
    return L.reply(S.OK, t, now, {more = more and 1 or 0})
end

local op = R[L.A.op]
if not op then return redis.error_reply('ERR volume.lua: unknown operation') end
return op()
