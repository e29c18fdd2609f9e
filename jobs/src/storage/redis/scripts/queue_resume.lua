-- Resumes a paused queue and wakes a waiting worker if jobs wait. Returns 1.
-- KEYS: 1 stats, 2 pending, 3 wake
redis.call('HDEL', KEYS[1], 'paused')
if redis.call('LLEN', KEYS[2]) > 0 then
  wake(KEYS[3])
end
return 1
