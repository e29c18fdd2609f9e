-- Removes dispatched outbox entries of one queue, with the continuations they decided (those whose
-- condition the parent's end met). Idempotent.
-- KEYS: 1 outbox, 2 conts, 3 hooks, 4 results
-- ARGV: the outbox entries handled (`seq|end`)
for i = 1, #ARGV do
  local item = ARGV[i]
  redis.call('LREM', KEYS[1], 1, item)
  local id, e = string.match(item, '^(%d+)|(%a)$')
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
return #ARGV
