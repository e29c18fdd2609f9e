-- Stores a continuation in Awaiting on its own queue. Returns its sequence number.
-- KEYS: 1 seq, 2 jobs, 3 hist, 4 awaiting
-- ARGV: 1 now_ms, 2 record, 3 reason
local now = tonumber(ARGV[1])
local id = fmt(redis.call('INCR', KEYS[1]))
redis.call('HSET', KEYS[2], id, ARGV[2])
redis.call('HSET', KEYS[3], id, entry('A', now, ARGV[3]))
redis.call('SADD', KEYS[4], id)
return id
