-- Makes awaiting continuations of one queue ready, or deletes them. Idempotent: a job no longer
-- awaiting is left alone. Returns how many were decided.
-- KEYS: 1 awaiting, 2 pending, 3 jobs, 4 hist, 5 wake, 6 deleted, 7 presult, 8 hooks
-- ARGV: per child: seq, run (1 or 0), parent result ('' none)
local now = now_ms()
local n = #ARGV / 3
local decided = 0
for i = 1, n do
  local id = ARGV[3 * i - 2]
  if redis.call('SREM', KEYS[1], id) == 1 then
    decided = decided + 1
    local rec = redis.call('HGET', KEYS[3], id)
    if ARGV[3 * i - 1] == '1' then
      local result = ARGV[3 * i]
      if result ~= '' then
        redis.call('HSET', KEYS[7], id, result)
        local h = {}
        local hook = redis.call('HGET', KEYS[8], id)
        if hook then
          h = cjson.decode(hook)
        end
        h.r = 1
        redis.call('HSET', KEYS[8], id, cjson.encode(h))
      end
      append_history(KEYS[4], {id}, {rec}, entry('E', now, 'parent finished'))
      redis.call('RPUSH', KEYS[2], id)
    else
      redis.call('ZADD', KEYS[6], now, id)
      append_history(KEYS[4], {id}, {rec},
        entry('D', now, 'parent ended without meeting the continuation\'s condition'))
    end
  end
end
if decided > 0 then
  wake(KEYS[5])
end
return decided
