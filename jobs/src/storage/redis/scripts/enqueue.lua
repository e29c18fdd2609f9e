-- Stores jobs on one queue. Returns the sequence number of the first.
-- KEYS: 1 seq, 2 pending, 3 jobs, 4 scheduled, 5 hist, 6 wake
-- ARGV: 1 now_ms, then per job: due_ms (0: now), record
local now = tonumber(ARGV[1])
local n = (#ARGV - 1) / 2
local last = redis.call('INCRBY', KEYS[1], n)
local first = last - n + 1
local jobs, pending, scheduled, hist = {}, {}, {}, {}
local scheduled_entry = entry('S', now, '')
for i = 1, n do
  local id = fmt(first + i - 1)
  local due = tonumber(ARGV[2 * i])
  jobs[#jobs + 1] = id
  jobs[#jobs + 1] = ARGV[2 * i + 1]
  if due > now then
    scheduled[#scheduled + 1] = due
    scheduled[#scheduled + 1] = id
    hist[#hist + 1] = id
    hist[#hist + 1] = scheduled_entry
  else
    pending[#pending + 1] = id
  end
end
batched('HSET', KEYS[3], jobs)
batched('RPUSH', KEYS[2], pending)
batched('ZADD', KEYS[4], scheduled)
batched('HSET', KEYS[5], hist)
wake(KEYS[6])
return first
