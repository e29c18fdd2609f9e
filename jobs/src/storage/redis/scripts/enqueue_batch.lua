-- Stores a batch of jobs on one queue, all or none: a batch number, then the members, each with
-- a hook naming the batch. A continuation (already stored awaiting on its queue) is attached as
-- the batch's; an empty batch, finished at once, is queued in the outbox at once.
-- Returns {batch seq, first member seq, 1 if the outbox grew else 0}.
-- KEYS: 1 seq, 2 pending, 3 jobs, 4 wake, 5 hooks, 6 batches, 7 conts, 8 outbox
-- ARGV: 1 continuation queue ('' none), 2 continuation seq, then the member records
local n = #ARGV - 2
local last = redis.call('INCRBY', KEYS[1], n + 1)
local b = fmt(last - n)
local jobs, pending, hooks = {}, {}, {}
local hook = cjson.encode({b = b})
for i = 1, n do
  local id = fmt(last - n + i)
  jobs[#jobs + 1] = id
  jobs[#jobs + 1] = ARGV[2 + i]
  pending[#pending + 1] = id
  hooks[#hooks + 1] = id
  hooks[#hooks + 1] = hook
end
batched('HSET', KEYS[3], jobs)
batched('HSET', KEYS[5], hooks)
batched('RPUSH', KEYS[2], pending)
redis.call('HSET', KEYS[6], b .. ':t', n, b .. ':s', 0, b .. ':f', 0)
local fired = 0
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[6], b .. ':c', 1)
  redis.call('HSET', KEYS[7], b, cjson.encode({{ARGV[1], ARGV[2], 's'}}))
end
if n == 0 then
  -- Finished at once: decided (and kept for retention) like any finished batch.
  redis.call('RPUSH', KEYS[8], b .. '|O')
  fired = 1
end
if n > 0 then
  wake(KEYS[4])
end
return {tonumber(b), tonumber(b) + 1, fired}
