-- Records a queue's lifetime counters as the snapshot of a minute and of an hour, in ring slots,
-- unless the slot already holds that bucket (the first writer wins). A slot holds
-- `bucket_ms|succeeded|failed`.
-- KEYS: 1 stats, 2 history
-- ARGV: 1 minute bucket ms, 2 its field, 3 hour bucket ms, 4 its field
local c = redis.call('HMGET', KEYS[1], 'succeeded', 'failed')
local value = '|' .. (c[1] or '0') .. '|' .. (c[2] or '0')
for i = 1, 3, 2 do
  local cur = redis.call('HGET', KEYS[2], ARGV[i + 1])
  if not cur or string.match(cur, '^(%d+)|') ~= ARGV[i] then
    redis.call('HSET', KEYS[2], ARGV[i + 1], ARGV[i] .. value)
  end
end
return 1
