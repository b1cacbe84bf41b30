-- ordered_index.lua -- a lexically ordered set of strings kept as many small
-- sorted sets, for the machine directory (machine_dir.lua runs with this
-- file in front of it; docs/admin.md "Directory layout").
--
-- Why buckets: one sorted set of millions of members is a skiplist, about
-- 100 bytes per member; a sorted set of at most 128 short members stays a
-- listpack, a packed array costing little more than the bytes themselves.
-- So the index is:
--   root      zset (lex, score 0): one member per bucket, its lower
--             boundary followed by the bucket's number (4 bytes,
--             big-endian); the first bucket's boundary is "\1", below
--             every member
--   bucket N  zset (lex, score 0) "PREFIX..N": the members from its
--             boundary up to the next bucket's boundary
--   counter   string: the last bucket number handed out
-- A bucket that grows past IX_MAX splits in two (the upper half moves to a
-- new bucket, whose boundary is its first member); a bucket that empties is
-- dropped (the first one stays). Buckets never merge: churn leaves some
-- half-full ones, which costs a little memory, never correctness.
--
-- Members must not be proper prefixes of one another (the directory's end
-- in a fixed-length id after a NUL-free value): the root's members are
-- compared with a member followed by 0xff bytes to find its bucket.

local IX_MAX = 120
local IX_FIRST = '\1'
local IX_AFTER = '\255\255\255\255\255'   -- after any bucket number

-- ix: {root = key, prefix = bucket key prefix, counter = key}
local function ix_bucket_key(ix, entry)
    return ix.prefix .. (struct.unpack('>I4', entry, #entry - 3))
end

-- The root entry of the bucket whose range holds what `bound` (a ZRANGE
-- lex bound, exclusive) is just above, or nil when the index is empty.
local function ix_seek(ix, bound)
    local r = redis.call('ZRANGE', ix.root, bound, '-', 'BYLEX', 'REV', 'LIMIT', 0, 1)
    return r[1]
end

-- The bucket a member belongs in; makes the first one in an empty index.
local function ix_home(ix, m)
    local b = ix_seek(ix, '(' .. m .. IX_AFTER)
    if b then return b end
    b = IX_FIRST .. struct.pack('>I4', redis.call('INCR', ix.counter))
    redis.call('ZADD', ix.root, 0, b)
    return b
end

local function ix_split(ix, key)
    local half = math.floor(redis.call('ZCARD', key) / 2)
    local upper = redis.call('ZRANGE', key, half, -1)
    redis.call('ZREMRANGEBYRANK', key, half, -1)
    local n = redis.call('INCR', ix.counter)
    local args = {}
    for _, m in ipairs(upper) do
        args[#args + 1] = 0
        args[#args + 1] = m
    end
    redis.call('ZADD', ix.prefix .. n, unpack(args))
    redis.call('ZADD', ix.root, 0, upper[1] .. struct.pack('>I4', n))
end

local function ix_add(ix, m)
    local key = ix_bucket_key(ix, ix_home(ix, m))
    if redis.call('ZADD', key, 0, m) == 1 and redis.call('ZCARD', key) > IX_MAX then ix_split(ix, key) end
end

local function ix_del(ix, m)
    local b = ix_seek(ix, '(' .. m .. IX_AFTER)
    if not b then return end
    local key = ix_bucket_key(ix, b)
    if redis.call('ZREM', key, m) == 1 and string.sub(b, 1, 1) ~= IX_FIRST and redis.call('EXISTS', key) == 0 then
        redis.call('ZREM', ix.root, b)
    end
end

-- A bucket grown past IX_MAX by a batch splits into as many buckets of
-- 60..90 members as it takes (ix_split's halves, generalised).
local function ix_split_many(ix, key, card)
    local pieces = math.floor(card / (IX_MAX / 2))
    local size = math.ceil(card / pieces)
    local upper = redis.call('ZRANGE', key, size, -1)
    redis.call('ZREMRANGEBYRANK', key, size, -1)
    for from = 1, #upper, size do
        local n = redis.call('INCR', ix.counter)
        local args = {}
        for i = from, math.min(from + size - 1, #upper) do
            args[#args + 1] = '0'
            args[#args + 1] = upper[i]
        end
        redis.call('ZADD', ix.prefix .. n, unpack(args))
        redis.call('ZADD', ix.root, '0', upper[from] .. struct.pack('>I4', n))
    end
end

local IX_CHUNK = 2000 -- arguments per command: unpack() has a limit

local function ix_call_chunked(cmd, key, list, scored)
    local args = {}
    for _, m in ipairs(list) do
        if scored then args[#args + 1] = '0' end
        args[#args + 1] = m
        if #args >= IX_CHUNK then
            redis.call(cmd, key, unpack(args))
            args = {}
        end
    end
    if #args > 0 then redis.call(cmd, key, unpack(args)) end
end

-- The changes of one bucket (root entry b): removals, then additions, then
-- a split or the bucket's drop as they call for.
local function ix_apply_bucket(ix, b, dels, adds)
    local key = ix_bucket_key(ix, b)
    if #dels > 0 then ix_call_chunked('ZREM', key, dels, false) end
    if #adds > 0 then ix_call_chunked('ZADD', key, adds, true) end
    local card = redis.call('ZCARD', key)
    if card > IX_MAX then
        ix_split_many(ix, key, card)
    elseif card == 0 and string.sub(b, 1, 1) ~= IX_FIRST then
        redis.call('ZREM', ix.root, b)
    end
end

local IX_PAGE = 32 -- root entries read past a seek: later members of a batch often fall in them

-- Applies many changes at once: `changes` lists members, `adding` maps each
-- to true (add) or false (remove); each member at most once. Sorted, they
-- are merged with the root read a page at a time, so members that share a
-- bucket cost one ZREM / ZADD / ZCARD together and most members need no
-- seek of their own. Splits only add root entries inside the bucket being
-- split, so the page read stays right for the members after it.
local function ix_apply(ix, changes, adding)
    table.sort(changes) -- plain strings: compared in C, no Lua comparator
    if #changes > 0 then ix_home(ix, changes[1]) end -- an empty index gets its first bucket
    local page, at = {}, 0 -- root entries from the current bucket's on; page[at] is the current one
    local dels, adds = {}, {}
    local function flush()
        if at > 0 and (#dels > 0 or #adds > 0) then ix_apply_bucket(ix, page[at], dels, adds) end
        dels, adds = {}, {}
    end
    for _, m in ipairs(changes) do
        local probe = m .. IX_AFTER
        local j = at
        while j > 0 and page[j + 1] and page[j + 1] < probe do j = j + 1 end
        if j == 0 or (not page[j + 1] and page.more) then
            flush() -- past the page (or none yet): seek the bucket and read on from it
            page = {ix_seek(ix, '(' .. probe)}
            local nexts = redis.call('ZRANGE', ix.root, '(' .. probe, '+', 'BYLEX', 'LIMIT', 0, IX_PAGE)
            for _, e in ipairs(nexts) do page[#page + 1] = e end
            page.more = #nexts == IX_PAGE
            at = 1
        elseif j ~= at then
            flush()
            at = j
        end
        if adding[m] then adds[#adds + 1] = m else dels[#dels + 1] = m end
    end
    flush()
end

-- Up to `n` members from the lex bound `lo` ("[x" from x on, "(x" after x)
-- that start with `pfx` and are not above `hi` ('' for no bound). Returns
-- them and true when nothing further can match (the walk is over).
local function ix_walk(ix, lo, pfx, hi, n)
    local out = {}
    local seek = string.sub(lo, 1, 1) == '(' and lo .. IX_AFTER or '(' .. string.sub(lo, 2)
    local b = ix_seek(ix, seek)
    while b do
        local got = redis.call('ZRANGE', ix_bucket_key(ix, b), lo, '+', 'BYLEX', 'LIMIT', 0, n - #out)
        for _, m in ipairs(got) do
            if string.sub(m, 1, #pfx) ~= pfx or (hi ~= '' and m > hi) then return out, true end
            out[#out + 1] = m
        end
        if #out >= n then return out, false end
        b = redis.call('ZRANGE', ix.root, '(' .. b, '+', 'BYLEX', 'LIMIT', 0, 1)[1]
    end
    return out, true
end
