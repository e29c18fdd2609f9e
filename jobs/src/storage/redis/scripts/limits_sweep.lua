-- Drops the ended holders of concurrency-slot sets no job was granted a slot of lately (a set
-- left with none is gone, and leaves the index); a set with a live holder is checked again later.
-- Returns how many sets are gone.
-- KEYS: 1 lease groups, 2 tokens, 3 limit keys, then the slots sets to check
local now = now_ms()
local gone = 0
for i = 4, #KEYS do
  if live_holders(KEYS[i], KEYS[1], KEYS[2], now) == 0 then
    redis.call('ZREM', KEYS[3], KEYS[i])
    gone = gone + 1
  else
    redis.call('ZADD', KEYS[3], now, KEYS[i])
  end
end
return gone
