-- record_verdicts.lua -- records a batch of verdicts in one call (one round
-- trip, one XACK and one XDEL for all its queue entries). Records are taken
-- in order, each seeing the writes of those before it, so the outcome is
-- that of recording them one by one. Per record: a trail entry; for a
-- revocation, once per key, the next sequence, a revocation log entry (with
-- a random entry_id) and the audit:revoked index; the request marked done.
-- A redelivered queue entry whose request is already done is only
-- acknowledged.
--
-- The log's epoch: the first entry of a log (sequence 1: counter and stream
-- both empty, as after a wipe) gets a fresh epoch, ARGV[RECORD_ARG_EPOCH];
-- so does the first entry written to a log that has none (one from before
-- epochs existed). Pullers that see the epoch change start again from 0.
--
-- KEYS[RECORD_KEY_*] and ARGV positions: audit_script_args.h, whose names
-- the build defines as locals in front of this file; after the fixed keys
-- comes one request key per record. A request marked done keeps its key for
-- ARGV[RECORD_ARG_RETENTION] seconds (SET EX), then it expires by itself.
-- Every read comes before the writes that depend on it: Redis does not roll
-- back a script whose command fails, so checking first keeps each record all
-- or nothing (even with a revocation stream ahead of the counter after a
-- partial restore).
--
-- Returns {queue length or -1, then recorded, sequence, newly_revoked per
-- record}.
local now, ttl, out, qids = ARGV[RECORD_ARG_NOW], ARGV[RECORD_ARG_RETENTION], {-1}, {}
local k = RECORD_KEYS
for i = RECORD_ARG_FIRST, #ARGV, RECORD_ARGS do
  local rid, qid = ARGV[i + RECORD_REQUEST_ID], ARGV[i + RECORD_QUEUE_ID]
  k = k + 1
  local rkey = KEYS[k]
  local group, serial = ARGV[i + RECORD_GROUP], ARGV[i + RECORD_SERIAL]
  if qid ~= '' then qids[#qids + 1] = qid end
  if qid ~= '' and rid ~= '' and redis.call('GET', rkey) == 'done' then
    out[#out + 1] = 0; out[#out + 1] = 0; out[#out + 1] = 0
  else
    local seq, new = 0, 0
    local member = ARGV[i + RECORD_REVOKED_MEMBER]
    if ARGV[i + RECORD_REVOKE] == '1' then
      local have = redis.call('HGET', KEYS[RECORD_KEY_REVOKED], member)
      if have then seq = tonumber(have) else
        seq = tonumber(redis.call('GET', KEYS[RECORD_KEY_SEQ]) or '0') + 1
        local last = redis.call('XREVRANGE', KEYS[RECORD_KEY_REVOCATIONS], '+', '-', 'COUNT', 1)
        if #last > 0 then
          local top = tonumber(string.match(last[1][1], '^(%d+)'))
          if top >= seq then seq = top + 1 end
        end
        new = 1
      end
    end
    local fresh = new == 1 and (seq == 1 or redis.call('EXISTS', KEYS[RECORD_KEY_EPOCH]) == 0)
    redis.call('XADD', KEYS[RECORD_KEY_TRAIL], '*', 'time', now, 'group', group, 'serial', serial,
      'verdict', ARGV[i + RECORD_VERDICT], 'reason', ARGV[i + RECORD_REASON],
      'machine', ARGV[i + RECORD_MACHINE], 'client', ARGV[i + RECORD_CLIENT],
      'origin', ARGV[i + RECORD_ORIGIN], 'peer', ARGV[i + RECORD_PEER],
      'sample_reason', ARGV[i + RECORD_SAMPLE_REASON], 'received_at', ARGV[i + RECORD_RECEIVED_AT],
      'source', ARGV[i + RECORD_SOURCE], 'request_id', rid, 'sequence', seq)
    if new == 1 then
      if fresh then redis.call('SET', KEYS[RECORD_KEY_EPOCH], ARGV[RECORD_ARG_EPOCH]) end
      redis.call('SET', KEYS[RECORD_KEY_SEQ], seq)
      redis.call('XADD', KEYS[RECORD_KEY_REVOCATIONS], seq .. '-0', 'group', group, 'serial', serial,
        'reason', ARGV[i + RECORD_REVOKE_REASON], 'revoked_at', now, 'entry_id', ARGV[i + RECORD_ENTRY_ID])
      redis.call('HSET', KEYS[RECORD_KEY_REVOKED], member, seq)
    end
    if rid ~= '' then redis.call('SET', rkey, 'done', 'EX', ttl) end
    out[#out + 1] = 1; out[#out + 1] = seq; out[#out + 1] = new
  end
end
if #qids > 0 then
  redis.call('XACK', KEYS[RECORD_KEY_QUEUE], ARGV[RECORD_ARG_QUEUE_GROUP], unpack(qids))
  redis.call('XDEL', KEYS[RECORD_KEY_QUEUE], unpack(qids))
  out[1] = redis.call('XLEN', KEYS[RECORD_KEY_QUEUE])
end
return out
