-- Marks jobs whose handlers start now, under leases still held: a lease that runs out after this
-- counts as a crash of its job (see fetch.lua). Returns one character per lease, '1' marked
-- (held) or '0' not (the lease was lost).
-- KEYS: 1 tokens, 2 started
-- ARGV: per lease: id, token
local n = #ARGV / 2
local ids = {}
for i = 1, n do
  ids[i] = ARGV[2 * i - 1]
end
local held = hmget(KEYS[1], ids)
local res, kv = {}, {}
for i = 1, n do
  local token = ARGV[2 * i]
  if held[i] and held[i] == token then
    res[i] = '1'
    kv[#kv + 1] = ids[i]
    kv[#kv + 1] = token
  else
    res[i] = '0'
  end
end
batched('HSET', KEYS[2], kv)
return table.concat(res)
