-- Stores continuation `id` (a number its caller reserved) on its own queue once it is attached to
-- its parent or batch: awaiting, or decided at once when the caller says how (the parent had
-- ended already) or when the decision came first (the parent ended between the attach and this
-- call; see `continuation_decide.lua`). Returns 1, or 0 when the number is taken (nothing done).
-- KEYS: 1 awaiting, 2 pending, 3 jobs, 4 hist, 5 wake, 6 deleted, 7 presult, 8 hooks, 9 early
-- ARGV: 1 id, 2 now_ms, 3 record, 4 reason, 5 decision ('' none, '1' run, '0' delete),
--       6 parent result ('' none)
local id = ARGV[1]
if redis.call('HEXISTS', KEYS[3], id) == 1 then
  return 0
end
local now = tonumber(ARGV[2])
redis.call('HSET', KEYS[3], id, ARGV[3])
redis.call('HSET', KEYS[4], id, entry('A', now, ARGV[4]))
local run, result = ARGV[5], ARGV[6]
if run == '' then
  if redis.call('ZREM', KEYS[9], id .. '|1') == 1 then
    run = '1'
    result = redis.call('HGET', KEYS[7], id) or ''
  elseif redis.call('ZREM', KEYS[9], id .. '|0') == 1 then
    run = '0'
  end
end
if run == '' then
  redis.call('SADD', KEYS[1], id)
else
  decide_awaiting(KEYS, id, run == '1', result, now)
  if run == '1' then
    wake(KEYS[5])
  end
end
return 1
