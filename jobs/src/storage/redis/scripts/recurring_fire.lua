-- Enqueues jobs of one recurring job if its entry is still what the caller read (compare-and-set),
-- and advances it: the exactly-once step of the scheduler, and the manual trigger.
-- An entry is `revision|next_ms|last_ms|json` (next/last empty when none).
-- KEYS: 1 recurring, 2 seq, 3 pending, 4 jobs, 5 wake
-- ARGV: 1 id, 2 revision, 3 expected next ('*': any), 4 new next ('*': keep, '': none),
--       5 new last ('': keep), 6 now_ms, then one job record per job to enqueue
-- Returns -1 when the entry is gone or changed (nothing done), else the sequence number of the
-- first job enqueued (0 when none).
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if not rec then
  return -1
end
local rev, nxt, last, meta = string.match(rec, '^(%d+)|(%d*)|(%d*)|(.*)$')
if not rev or rev ~= ARGV[2] or (ARGV[3] ~= '*' and nxt ~= ARGV[3]) then
  return -1
end
local n = #ARGV - 6
local first = 0
if n > 0 then
  local top = redis.call('INCRBY', KEYS[2], n)
  first = top - n + 1
  local jobs, pending = {}, {}
  for i = 1, n do
    local id = fmt(first + i - 1)
    jobs[#jobs + 1] = id
    jobs[#jobs + 1] = ARGV[6 + i]
    pending[#pending + 1] = id
  end
  batched('HSET', KEYS[4], jobs)
  batched('RPUSH', KEYS[3], pending)
  wake(KEYS[5])
end
if ARGV[4] ~= '*' then
  nxt = ARGV[4]
end
if ARGV[5] ~= '' then
  last = ARGV[5]
end
redis.call('HSET', KEYS[1], ARGV[1], rev .. '|' .. nxt .. '|' .. last .. '|' .. meta)
return first
