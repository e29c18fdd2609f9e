-- Stores jobs on one queue, some with unique keys: a job whose key is held by a live job of the
-- queue (and whose claim has not lapsed) is not stored; the holder's id is returned instead.
-- Returns one id per job.
-- KEYS: 1 seq, 2 pending, 3 jobs, 4 scheduled, 5 hist, 6 wake, 7 unique, 8 hooks,
--       9 succeeded, 10 failed, 11 deleted
-- ARGV: 1 now_ms, then per job: due_ms (0: now), record, unique key ('' none), window_ms (0 none)
local now = tonumber(ARGV[1])
local n = (#ARGV - 1) / 4
local out = {}
local scheduled_entry = entry('S', now, '')
local stored = false
for i = 1, n do
  local base = 1 + (i - 1) * 4
  local due = tonumber(ARGV[base + 1])
  local key = ARGV[base + 3]
  local existing = nil
  if key ~= '' then
    local cur = redis.call('HGET', KEYS[7], key)
    if cur then
      local seq, expires = string.match(cur, '^(%d+)|(%d+)$')
      local live = seq and (tonumber(expires) == 0 or tonumber(expires) > now)
        and redis.call('HEXISTS', KEYS[3], seq) == 1
        and not redis.call('ZSCORE', KEYS[9], seq)
        and not redis.call('ZSCORE', KEYS[10], seq)
        and not redis.call('ZSCORE', KEYS[11], seq)
      if live then
        existing = seq
      end
    end
  end
  if existing then
    out[i] = existing
  else
    local id = fmt(redis.call('INCR', KEYS[1]))
    redis.call('HSET', KEYS[3], id, ARGV[base + 2])
    if due > now then
      redis.call('ZADD', KEYS[4], due, id)
      redis.call('HSET', KEYS[5], id, scheduled_entry)
    else
      redis.call('RPUSH', KEYS[2], id)
    end
    if key ~= '' then
      local window = tonumber(ARGV[base + 4])
      local expires = 0
      if window > 0 then
        expires = now + window
      end
      redis.call('HSET', KEYS[7], key, id .. '|' .. fmt(expires))
      redis.call('HSET', KEYS[8], id, cjson.encode({u = key}))
    end
    out[i] = id
    stored = true
  end
end
if stored then
  wake(KEYS[6])
end
return out
