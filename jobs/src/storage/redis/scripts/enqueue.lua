-- Stores jobs on one queue. Returns the sequence number of the first; numbers follow ARGV order.
-- KEYS: 1 seq, 2 pending, 3 jobs, 4 scheduled, 5 hist, 6 wake
-- ARGV: 1 now_ms, 2 the number M of jobs to run now, then their M records, then per delayed
--       job: due_ms, record
local now = tonumber(ARGV[1])
local m = tonumber(ARGV[2])
local d = (#ARGV - 2 - m) / 2
local n = m + d
local last = redis.call('INCRBY', KEYS[1], n)
local first = last - n + 1
local jobs, pending = {}, {}
for i = 1, m do
  local id = fmt(first + i - 1)
  jobs[2 * i - 1] = id
  jobs[2 * i] = ARGV[2 + i]
  pending[i] = id
end
batched('HSET', KEYS[3], jobs)
batched('RPUSH', KEYS[2], pending)
if d > 0 then
  local delayed, scheduled, hist = {}, {}, {}
  local scheduled_entry = entry('S', now, '')
  for i = 1, d do
    local id = fmt(first + m + i - 1)
    local base = 2 + m + 2 * (i - 1)
    delayed[2 * i - 1] = id
    delayed[2 * i] = ARGV[base + 2]
    scheduled[2 * i - 1] = ARGV[base + 1]
    scheduled[2 * i] = id
    hist[2 * i - 1] = id
    hist[2 * i] = scheduled_entry
  end
  batched('HSET', KEYS[3], delayed)
  batched('ZADD', KEYS[4], scheduled)
  batched('HSET', KEYS[5], hist)
end
wake(KEYS[6])
return first
