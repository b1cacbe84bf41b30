-- machine_dir.lua -- the machine directory (docs/admin.md "The machine
-- directory", "Directory layout"): one record per (key, machine), made from
-- the activation servers' machine logs, and an ordered index to search it.
-- Runs with ordered_index.lua in front of it (machine_dir.c joins them).
--
-- ARGV[1] op, ARGV[2] record bucket prefix, ARGV[3] index root, ARGV[4]
-- index bucket prefix, ARGV[5] index counter (redis_keys.h PA_RKEY_MD_*):
-- the script makes its bucket names from them, as volume.lua's wheel does.
--
-- Records: hash buckets "{md}:r:N", N = the id's first two bytes mod
-- REC_BUCKETS, field id (12 bytes) -> record, so each bucket stays a
-- listpack (the Redis configuration raises hash-max-listpack-value for
-- records: docker/redis/redis.conf.in). A record (struct formats):
--   B version (1) | c1 state (the last op) | >I4 group | >I4 serial |
--   >I4 first_seen | >I4 last_seen | >I4 expires_at |
--   s order | s hostname | s ip | s macs (comma-separated) | s host serial | s os |
--     (cut to 15, 253, 47, 160, 64, 64 bytes: a record stays under 700)
--   B history length | per event, newest first: c1 op | >I4 time
-- (s: NUL-terminated; NUL bytes are dropped from what the log says). The
-- history keeps HIST_MAX events; a renew after a renew only moves the time.
--
-- Index members: type (1 byte) | value | NUL | id (12 bytes), score 0:
--   h hostname (lower case)   i ip   m each MAC (lower case)   s host serial
--   k group and serial (>I4 >I4)   o order   t last contact (>I4)
-- Text values are cut to VAL_MAX bytes so every member stays short enough
-- for a listpack bucket; an exact search on a longer value checks the
-- record (the C side does).
--
-- Ops:
--   ingest  ARGV[6] position hash, ARGV[7] log key, ARGV[8] last entry id,
--           then per entry the 13 fields op m g s o t ip h mac hs os e was
--           (machine_dir.h MD_ENTRY_FIELDS): upserts each, then saves the
--           log's position and trims the log up to it, in one call.
--           Reply: records made. The whole call is one batch: each record
--           is read and written once however often it appears, and the
--           index changes (old members out, new in) are applied sorted,
--           bucket by bucket (ordered_index.lua ix_apply).
--   ingestn ARGV[6] position hash, ARGV[7] number of logs L, then L pairs
--           {log key, last entry id}, then the entries of all of them, 13
--           fields each: ingest for many logs in one batch, every log's
--           position saved after all entries are in. Reply: records made.
--   ingestn_keep  ingestn without trimming the logs (Redis Cluster: they
--           are in other slots; the caller trims them).
--   walk    ARGV[6] lo, ARGV[7] prefix, ARGV[8] hi, ARGV[9] count: the index
--           walk of ordered_index.lua with each member's record. Reply:
--           {done (0|1), member, record, member, record, ...} (a record
--           is false when it is gone).
--   get     ARGV[6] id. Reply: the record or nil.
--   lease   ARGV[6] lease key, ARGV[7] token, ARGV[8] milliseconds: takes
--           the ingest lease, or extends it when `token` holds it. Reply:
--           1 held, 0 another holds it.

local REC_BUCKETS = 32768
local HIST_MAX = 4
local VAL_MAX = 48

local rec_prefix = ARGV[2]
local ix = {root = ARGV[3], prefix = ARGV[4], counter = ARGV[5]}

local function rec_key(id)
    local a, b = string.byte(id, 1, 2)
    return rec_prefix .. ((a * 256 + b) % REC_BUCKETS)
end

-- What the log says, without NUL bytes and cut to `max` bytes, so a record
-- stays under hash-max-listpack-value whatever a log holds.
local function clean(s, max)
    if not s then return '' end
    if string.find(s, '\0', 1, true) then s = string.gsub(s, '%z', '') end
    return string.sub(s, 1, max)
end

local function unpack_record(r)
    local v = {}
    local pos
    v.version, v.state, v.g, v.s, v.first, v.last, v.e, v.o, v.h, v.ip, v.mac, v.hs, v.os, v.nh, pos =
        struct.unpack('Bc1>I4>I4>I4>I4>I4ssssssB', r)
    v.hist = {}
    for _ = 1, v.nh do
        local op, t
        op, t, pos = struct.unpack('c1>I4', r, pos)
        v.hist[#v.hist + 1] = {op, t}
    end
    return v
end

local function pack_record(v)
    local parts = {struct.pack('Bc1>I4>I4>I4>I4>I4ssssssB', 1, v.state, v.g, v.s, v.first, v.last, v.e, v.o, v.h,
        v.ip, v.mac, v.hs, v.os, #v.hist)}
    for _, ev in ipairs(v.hist) do parts[#parts + 1] = struct.pack('c1>I4', ev[1], ev[2]) end
    return table.concat(parts)
end

-- The index members of record v (id `id`), as a set.
local function members(v, id)
    local set = {}
    local function add(t, value)
        if value ~= '' then set[t .. string.sub(value, 1, VAL_MAX) .. '\0' .. id] = true end
    end
    add('h', string.lower(v.h))
    add('i', v.ip)
    for mac in string.gmatch(v.mac, '[^,]+') do add('m', string.lower(mac)) end
    add('s', v.hs)
    if v.g ~= 0 then add('k', struct.pack('>I4>I4', v.g, v.s)) end
    add('o', v.o)
    add('t', struct.pack('>I4', v.last))
    return set
end

-- The 12-byte id of the machine `m` on its key: a volume order's machine
-- by the order, a retail one by group and serial.
local function machine_id(f)
    local who = f.o ~= '' and ('o' .. f.o) or ('g' .. f.g .. ':' .. f.s)
    local hex = string.sub(redis.sha1hex(who .. '\0' .. f.m), 1, 24)
    return (string.gsub(hex, '..', function(h) return string.char(tonumber(h, 16)) end))
end

local function add_history(v, op, t)
    local top = v.hist[1]
    if top and top[1] == 'r' and op == 'r' then
        top[2] = t
        return
    end
    table.insert(v.hist, 1, {op, t})
    while #v.hist > HIST_MAX do table.remove(v.hist) end
end

-- Takes one log entry into `seen` (id -> {key, v, before}), the batch's
-- records: a machine met twice in a batch is read once and its second
-- entry applies on top of the first. Returns 1 when it made a record.
local function upsert(seen, f)
    local id = machine_id(f)
    local r = seen[id]
    local made = 0
    if not r then
        local key = rec_key(id)
        local old = redis.call('HGET', key, id)
        local v
        if old then
            v = unpack_record(old)
        else
            v = {g = 0, s = 0, first = f.t, last = 0, e = 0, o = '', h = '', ip = '', mac = '', hs = '', os = '',
                hist = {}}
            made = 1
        end
        r = {key = key, v = v, before = old and members(v, id) or {}}
        seen[id] = r
        seen[#seen + 1] = id
    end
    local v = r.v
    v.state = f.op
    if f.t > v.last then v.last = f.t end
    if f.t < v.first then v.first = f.t end
    if f.g ~= 0 then v.g, v.s = f.g, f.s end
    if f.e then v.e = f.e end
    for _, name in ipairs({'o', 'h', 'ip', 'mac', 'hs', 'os'}) do
        if f[name] ~= '' then v[name] = f[name] end
    end
    add_history(v, f.op, f.t)
    return made
end

-- Writes the batch's records and, in one ordered pass, the index members
-- that changed between each record's state before the batch and after it
-- (a hostname changed twice in a batch leaves only the last).
local function write_batch(seen)
    local changes, adding = {}, {}
    local by_key = {}
    for _, id in ipairs(seen) do
        local r = seen[id]
        local after = members(r.v, id)
        for m in pairs(r.before) do
            if not after[m] then
                changes[#changes + 1] = m
                adding[m] = false
            end
        end
        for m in pairs(after) do
            if not r.before[m] then
                changes[#changes + 1] = m
                adding[m] = true
            end
        end
        local fv = by_key[r.key]
        if not fv then
            fv = {}
            by_key[r.key] = fv
        end
        fv[#fv + 1] = id
        fv[#fv + 1] = pack_record(r.v)
    end
    for key, fv in pairs(by_key) do redis.call('HSET', key, unpack(fv)) end
    ix_apply(ix, changes, adding)
end

local ENTRY_FIELDS = 13

-- A re-bind (op b) moved the place of machine `was` to the entry's
-- machine: the old machine's record ends with a 'm' (moved) event at the
-- same time, so the directory shows where its place went (the same key,
-- the same moment) and no longer counts it as active.
local function moved(seen, f, was)
    return upsert(seen, {op = 'm', m = was, g = f.g, s = f.s, o = f.o, t = f.t, ip = '', h = '', mac = '', hs = '',
        os = '', e = nil})
end

-- The log entries ARGV[from..to], ENTRY_FIELDS each, into `seen`.
local function ingest_entries(seen, from, to)
    local made = 0
    for i = from, to, ENTRY_FIELDS do
        local op = string.sub(ARGV[i], 1, 1)
        if op ~= '' and ARGV[i + 1] ~= '' then
            local f = {op = op, m = ARGV[i + 1], g = tonumber(ARGV[i + 2]) or 0,
                s = tonumber(ARGV[i + 3]) or 0, o = clean(ARGV[i + 4], 15), t = tonumber(ARGV[i + 5]) or 0,
                ip = clean(ARGV[i + 6], 47), h = clean(ARGV[i + 7], 253), mac = clean(ARGV[i + 8], 160),
                hs = clean(ARGV[i + 9], 64), os = clean(ARGV[i + 10], 64), e = tonumber(ARGV[i + 11])}
            made = made + upsert(seen, f)
            if op == 'b' and ARGV[i + 12] ~= '' then made = made + moved(seen, f, ARGV[i + 12]) end
        end
    end
    return made
end

-- The position of each log in the batch is saved (and the log trimmed up
-- to it) only after all of its entries are in.
-- On Redis Cluster the logs are in other slots than {md}: ingestn_keep
-- leaves them to the caller, which trims each after this call.
local trim_logs = true

local function save_position(pos, log, last)
    redis.call('HSET', pos, log, last)
    -- What the directory holds the log need not: it shrinks to what is not
    -- taken in yet (whole stream nodes, hence ~), so its MAXLEN only
    -- matters while no admin server ingests.
    if trim_logs then redis.call('XTRIM', log, 'MINID', '~', last) end
end

local function ingest()
    local seen = {}
    local made = ingest_entries(seen, 9, #ARGV)
    write_batch(seen)
    save_position(ARGV[6], ARGV[7], ARGV[8])
    return made
end

local function ingestn()
    local nlogs = tonumber(ARGV[7])
    local at = 8 + 2 * nlogs
    local seen = {}
    local made = ingest_entries(seen, at, #ARGV)
    write_batch(seen)
    for l = 0, nlogs - 1 do save_position(ARGV[6], ARGV[8 + 2 * l], ARGV[9 + 2 * l]) end
    return made
end

local function walk()
    local got, done = ix_walk(ix, ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9]))
    local out = {done and 1 or 0}
    for _, m in ipairs(got) do
        local id = string.sub(m, -12)
        out[#out + 1] = m
        out[#out + 1] = redis.call('HGET', rec_key(id), id)
    end
    return out
end

local function get()
    return redis.call('HGET', rec_key(ARGV[6]), ARGV[6])
end

local function lease()
    if redis.call('SET', ARGV[6], ARGV[7], 'NX', 'PX', ARGV[8]) then return 1 end
    if redis.call('GET', ARGV[6]) ~= ARGV[7] then return 0 end
    redis.call('PEXPIRE', ARGV[6], ARGV[8])
    return 1
end

local function ingestn_keep()
    trim_logs = false
    return ingestn()
end

local ops = {ingest = ingest, ingestn = ingestn, ingestn_keep = ingestn_keep, walk = walk, get = get, lease = lease}
local op = ops[ARGV[1]]
if not op then return redis.error_reply('ERR machine_dir.lua: unknown operation') end
return op()
