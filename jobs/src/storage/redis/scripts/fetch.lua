-- Leases up to `max` jobs of one queue, after promoting due scheduled jobs and reaping expired
-- leases (at most `limit` of each). Returns {now, next event ms or -1, id, token, record, ...}.
-- KEYS: 1 pending, 2 jobs, 3 leases, 4 tokens, 5 scheduled, 6 hist, 7 stats, 8 wake
-- ARGV: 1 max, 2 lease_ms, 3 limit, 4 maintain ('1': promote, reap and report the next event;
--       '0': only lease, for back-to-back fetches of a busy worker — the caller maintains every
--       few milliseconds and always before it waits)
local max = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local maintain = ARGV[4] ~= '0'
local now = now_ms()

local due = {}
local expired = {}
if maintain then
  due = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, limit)
  expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)
end
if #due > 0 then
  batched('ZREM', KEYS[5], due)
  batched('RPUSH', KEYS[1], due)
  append_history(KEYS[6], due, {}, entry('E', now, ''))
end

if #expired > 0 then
  batched('ZREM', KEYS[3], expired)
  batched('HDEL', KEYS[4], expired)
  local recs = hmget(KEYS[2], expired)
  local kv = {}
  for i = 1, #expired do
    if recs[i] then
      kv[#kv + 1] = expired[i]
      kv[#kv + 1] = with_attempts(recs[i], function(a) return a + 1 end)
    end
  end
  batched('HSET', KEYS[2], kv)
  append_history(KEYS[6], expired, recs,
    entry('E', now, 'lease expired: the worker performing it stopped or hung'))
  batched('LPUSH', KEYS[1], expired)
end

local out = {now, -1}
local ids = redis.call('LPOP', KEYS[1], max)
if ids then
  local recs = hmget(KEYS[2], ids)
  -- One fencing token per fetch: a job fetched again later always gets a newer one, which is all
  -- fencing needs, and one string for the whole batch spares a number formatting per job.
  local token = fmt(redis.call('HINCRBY', KEYS[7], 'token', 1))
  local deadline = fmt(now + lease)
  local leases, tokens = {}, {}
  -- Records are returned as stored: the caller decodes them and fails the ones it cannot
  -- (a pattern match per record here cost more than a seventh of the whole fetch and complete).
  for i = 1, #ids do
    local rec = recs[i]
    if rec then
      leases[#leases + 1] = deadline
      leases[#leases + 1] = ids[i]
      tokens[#tokens + 1] = ids[i]
      tokens[#tokens + 1] = token
      out[#out + 1] = ids[i]
      out[#out + 1] = token
      out[#out + 1] = rec
    end
  end
  batched('ZADD', KEYS[3], leases)
  batched('HSET', KEYS[4], tokens)
end

-- Wake another waiting worker while work remains; clear a stale signal otherwise.
if redis.call('LLEN', KEYS[1]) > 0 then
  wake(KEYS[8])
else
  redis.call('DEL', KEYS[8])
end

local nxt = -1
if maintain then
  local s = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
  if s[2] then
    nxt = tonumber(s[2])
  end
  local l = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if l[2] and (nxt < 0 or tonumber(l[2]) < nxt) then
    nxt = tonumber(l[2])
  end
end
out[2] = nxt
return out
