-- Puts a failed or deleted job back on the queue with a fresh attempt count. Returns 1 or 0.
-- KEYS: 1 jobs, 2 failed, 3 deleted, 4 pending, 5 hist, 6 wake
-- ARGV: 1 id
local id = ARGV[1]
local rec = redis.call('HGET', KEYS[1], id)
if not rec then
  return 0
end
if redis.call('ZREM', KEYS[2], id) == 0 and redis.call('ZREM', KEYS[3], id) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], id, with_fresh_counts(rec))
append_history(KEYS[5], {id}, {rec}, entry('E', now_ms(), 'requeued'))
redis.call('RPUSH', KEYS[4], id)
wake(KEYS[6])
return 1
