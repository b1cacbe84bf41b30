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
