-- Grants concurrency / rate slots to leased jobs of one queue, or moves each job that gets none
-- back to Scheduled without counting an attempt. A concurrency slot is a member `seq|token` of
-- the limit's set, live exactly while that lease is held and unexpired, so completion, release
-- and a crashed holder's expired lease all free it. A slots set is indexed in `limit_keys` by
-- its latest grant, so that one left with only ended holders is found and dropped later
-- (`limits_sweep.lua`). Returns 1 (granted) or 0 per request.
-- KEYS: 1 lease groups, 2 tokens, 3 scheduled, 4 jobs, 5 hist, 6 wake, 7 lease counts,
--       8 limit keys, then per request: its slots set, its starts set
-- ARGV: 1 retry_ms, then per request: seq, token, concurrency (0 none), rate count (0 none),
--       rate window ms
local now = now_ms()
local retry = tonumber(ARGV[1])
local n = (#ARGV - 1) / 5
local res = {}
local postponed = false
for i = 1, n do
  local a = 1 + (i - 1) * 5
  local id, token = ARGV[a + 1], ARGV[a + 2]
  local conc, count, per = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  local slots, starts = KEYS[8 + 2 * i - 1], KEYS[8 + 2 * i]
  if redis.call('HGET', KEYS[2], id) ~= token then
    res[i] = 0
  else
    local wait_until = nil
    local member = id .. '|' .. token
    if conc > 0 then
      if live_holders(slots, KEYS[1], KEYS[2], now) >= conc then
        wait_until = now + retry
      end
    end
    if count > 0 then
      redis.call('ZREMRANGEBYSCORE', starts, '-inf', now - per)
      if redis.call('ZCARD', starts) >= count then
        local first = redis.call('ZRANGE', starts, 0, 0, 'WITHSCORES')
        local at = math.max(tonumber(first[2]) + per, now + math.min(retry, per))
        wait_until = math.max(wait_until or 0, at)
      end
    end
    if wait_until then
      -- Limits are asked for before a job starts: it has no start mark.
      end_leases(KEYS[1], KEYS[7], KEYS[2], nil, {id}, {token})
      redis.call('ZADD', KEYS[3], wait_until, id)
      local rec = redis.call('HGET', KEYS[4], id)
      append_history(KEYS[5], {id}, {rec},
        entry('S', now, 'waiting for a concurrency or rate limit slot'))
      postponed = true
      res[i] = 0
    else
      if conc > 0 then
        redis.call('SADD', slots, member)
        redis.call('ZADD', KEYS[8], now, slots)
      end
      if count > 0 then
        redis.call('ZADD', starts, now, member)
        redis.call('PEXPIRE', starts, per + 1000)
      end
      res[i] = 1
    end
  end
end
if postponed then
  wake(KEYS[6])
end
return res
