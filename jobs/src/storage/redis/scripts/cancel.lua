-- Cancels a job by its state: an enqueued, scheduled or awaiting job is deleted (an awaiting
-- continuation out of the awaiting set is left alone by its parent's end); a processing job gets a
-- cancel request its worker acts on. Returns 1 deleted, 2 requested, 3 finished, 0 not found,
-- 4 deleted with continuations to decide (a deleted job frees its unique key like a deletion).
-- KEYS: 1 jobs, 2 pending, 3 scheduled, 4 failed, 5 deleted, 6 hist, 7 tokens, 8 succeeded,
--       9 hooks, 10 unique, 11 outbox, 12 results, 13 presult, 14 batches, 15 awaiting,
--       16 cancels
-- ARGV: 1 id, 2 deleted_max, 3 deleted_ttl_ms
local id = ARGV[1]
local rec = redis.call('HGET', KEYS[1], id)
if not rec then
  return 0
end
local now = now_ms()
if redis.call('HEXISTS', KEYS[7], id) == 1 then
  redis.call('HSET', KEYS[16], id, now)
  return 2
end
local found = redis.call('ZREM', KEYS[3], id) == 1 or redis.call('SREM', KEYS[15], id) == 1
if not found
  and not redis.call('ZSCORE', KEYS[4], id)
  and not redis.call('ZSCORE', KEYS[5], id)
  and not redis.call('ZSCORE', KEYS[8], id) then
  -- Enqueued: O(queue length), acceptable for an administrative call.
  found = redis.call('LREM', KEYS[2], 1, id) == 1
end
if not found then
  return 3
end
if deleted_now(KEYS, id, rec, now, 'cancelled', tonumber(ARGV[2]), tonumber(ARGV[3])) then
  return 4
end
return 1
