-- Extends leases still held. Returns 1 (held) or 0 per lease.
-- KEYS: 1 leases, 2 tokens
-- ARGV: 1 lease_ms, then per lease: id, token
local deadline = fmt(now_ms() + tonumber(ARGV[1]))
local n = (#ARGV - 1) / 2
local ids = {}
for i = 1, n do
  ids[i] = ARGV[2 * i]
end
local held = hmget(KEYS[2], ids)
local res, kv = {}, {}
for i = 1, n do
  if held[i] and held[i] == ARGV[2 * i + 1] then
    res[i] = 1
    kv[#kv + 1] = deadline
    kv[#kv + 1] = ids[i]
  else
    res[i] = 0
  end
end
batched('ZADD', KEYS[1], kv, 'XX')
return res
