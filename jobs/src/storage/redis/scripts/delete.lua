-- Deletes a job that is enqueued, scheduled, failed or awaiting (a continuation: once out of the
-- awaiting set, its parent's end leaves it alone). Returns 1 or 0.
-- Returns 2 when continuations wait on the job and must now be decided.
-- KEYS: 1 jobs, 2 pending, 3 scheduled, 4 failed, 5 deleted, 6 hist, 7 tokens, 8 succeeded,
--       9 hooks, 10 unique, 11 outbox, 12 results, 13 presult, 14 batches, 15 awaiting
-- ARGV: 1 id, 2 deleted_max, 3 deleted_ttl_ms
local id = ARGV[1]
local rec = redis.call('HGET', KEYS[1], id)
if not rec then
  return 0
end
local found = redis.call('ZREM', KEYS[3], id) == 1 or redis.call('ZREM', KEYS[4], id) == 1
  or redis.call('SREM', KEYS[15], id) == 1
if not found
  and redis.call('HEXISTS', KEYS[7], id) == 0
  and not redis.call('ZSCORE', KEYS[8], id)
  and not redis.call('ZSCORE', KEYS[5], id) then
  -- Enqueued: O(queue length), acceptable for an administrative call.
  found = redis.call('LREM', KEYS[2], 1, id) == 1
end
if not found then
  return 0
end
if deleted_now(KEYS, id, rec, now_ms(), 'deleted', tonumber(ARGV[2]), tonumber(ARGV[3])) then
  return 2
end
return 1
