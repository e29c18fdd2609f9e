-- Hands leased jobs back to the front of the queue without counting an attempt.
-- KEYS: 1 lease groups, 2 tokens, 3 pending, 4 jobs, 5 hist, 6 wake, 7 lease counts, 8 start marks
-- ARGV: per lease: id, token
local now = now_ms()
local n = #ARGV / 2
local ids = {}
for i = 1, n do
  ids[i] = ARGV[2 * i - 1]
end
local held = hmget(KEYS[2], ids)
local ok, ok_toks, seen = {}, {}, {}
for i = 1, n do
  if held[i] and held[i] == ARGV[2 * i] and not seen[ids[i]] then
    seen[ids[i]] = true
    ok[#ok + 1] = ids[i]
    ok_toks[#ok_toks + 1] = ARGV[2 * i]
  end
end
if #ok == 0 then
  return 0
end
end_leases(KEYS[1], KEYS[7], KEYS[2], KEYS[8], ok, ok_toks)
local recs = hmget(KEYS[4], ok)
append_history(KEYS[5], ok, recs, entry('E', now, 'handed back by a worker shutting down'))
batched('LPUSH', KEYS[3], ok)
wake(KEYS[6])
return #ok
