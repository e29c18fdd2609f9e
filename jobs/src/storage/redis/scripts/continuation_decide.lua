-- Makes awaiting continuations of one queue ready, or deletes them. Idempotent: a job no longer
-- awaiting is left alone. A continuation not stored yet (its `continue_with` attached it to the
-- parent and has yet to store it, see `flow.rs`) gets its decision kept in `early`, as a member
-- `seq|run` (its parent's result in presult), which storing it applies; decisions nobody came
-- for within a day (that `continue_with` died in between) are dropped here, a hundred a call.
-- Returns how many were decided.
-- KEYS: 1 awaiting, 2 pending, 3 jobs, 4 hist, 5 wake, 6 deleted, 7 presult, 8 hooks, 9 early
-- ARGV: per child: seq, run (1 or 0), parent result ('' none)
local now = now_ms()
local n = #ARGV / 3
local decided = 0
for i = 1, n do
  local id, run, result = ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i]
  if redis.call('SREM', KEYS[1], id) == 1 then
    decided = decided + 1
    decide_awaiting(KEYS, id, run == '1', result, now)
  elseif redis.call('HEXISTS', KEYS[3], id) == 0 then
    redis.call('ZADD', KEYS[9], now, id .. '|' .. run)
    if run == '1' and result ~= '' then
      redis.call('HSET', KEYS[7], id, result)
    end
  end
end
local stale = redis.call('ZRANGEBYSCORE', KEYS[9], '-inf', now - EARLY_TTL_MS, 'LIMIT', 0, 100)
for _, m in ipairs(stale) do
  redis.call('ZREM', KEYS[9], m)
  local id = string.match(m, '^(%d+)|')
  if id and redis.call('HEXISTS', KEYS[3], id) == 0 then
    redis.call('HDEL', KEYS[7], id)
  end
end
if decided > 0 then
  wake(KEYS[5])
end
return decided
