-- Extends leases still held. Returns 1 (held) or 0 per lease. A lease is extended with its whole
-- fetch (its lease group): a worker renews all the jobs it holds at once.
-- KEYS: 1 lease groups, 2 tokens
-- ARGV: 1 lease_ms, then per lease: id, token
local deadline = fmt(now_ms() + tonumber(ARGV[1]))
local n = (#ARGV - 1) / 2
local ids = {}
for i = 1, n do
  ids[i] = ARGV[2 * i]
end
local held = hmget(KEYS[2], ids)
local res, kv, seen = {}, {}, {}
for i = 1, n do
  local token = ARGV[2 * i + 1]
  if held[i] and held[i] == token then
    res[i] = 1
    if not seen[token] then
      seen[token] = true
      kv[#kv + 1] = deadline
      kv[#kv + 1] = token
    end
  else
    res[i] = 0
  end
end
batched('ZADD', KEYS[1], kv, 'XX')
return res
