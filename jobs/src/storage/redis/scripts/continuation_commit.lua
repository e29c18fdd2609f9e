-- Removes dispatched outbox entries of one queue, with the continuations they decided (those whose
-- condition the parent's end met). A finished batch's entry marks it done; the counters of done
-- batches go by the retention of succeeded jobs (at most `max`, none older than `ttl`; up to 100
-- a call). Idempotent.
-- KEYS: 1 outbox, 2 conts, 3 hooks, 4 results, 5 batches, 6 batches done
-- ARGV: 1 succeeded max, 2 succeeded ttl ms, then the outbox entries handled (`seq|end`)
local now = now_ms()
for i = 3, #ARGV do
  local item = ARGV[i]
  redis.call('LREM', KEYS[1], 1, item)
  local id, e = string.match(item, '^(%d+)|(%a)$')
  if id and e == 'O' and redis.call('HEXISTS', KEYS[5], id .. ':t') == 1 then
    redis.call('ZADD', KEYS[6], now, id)
  end
  if id then
    local cur = redis.call('HGET', KEYS[2], id)
    local kept = {}
    if cur then
      for _, c in ipairs(cjson.decode(cur)) do
        if decide(c[3], e) == nil then
          kept[#kept + 1] = c
        end
      end
    end
    if #kept > 0 then
      redis.call('HSET', KEYS[2], id, cjson.encode(kept))
    else
      redis.call('HDEL', KEYS[2], id)
      redis.call('HDEL', KEYS[4], id)
      local hook = redis.call('HGET', KEYS[3], id)
      if hook then
        local h = cjson.decode(hook)
        h.c = nil
        if next(h) == nil then
          redis.call('HDEL', KEYS[3], id)
        else
          redis.call('HSET', KEYS[3], id, cjson.encode(h))
        end
      end
    end
  end
end
local max, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local over = redis.call('ZCARD', KEYS[6]) - max
local expired = {}
if over > 0 then
  expired = redis.call('ZRANGE', KEYS[6], 0, math.min(over, 100) - 1)
end
if #expired < 100 then
  local old = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now - ttl, 'LIMIT', #expired, 100 - #expired)
  for _, b in ipairs(old) do
    expired[#expired + 1] = b
  end
end
for _, b in ipairs(expired) do
  redis.call('HDEL', KEYS[5], b .. ':t', b .. ':s', b .. ':f', b .. ':c')
  redis.call('ZREM', KEYS[6], b)
end
return #ARGV - 2
