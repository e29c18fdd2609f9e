-- Attaches a continuation (not stored yet: `continuation_create.lua` stores it next) to its
-- parent, on the parent's queue. When the parent already ended in
-- a way that decides the continuation, nothing is attached and {end, result} is returned, for the
-- caller to decide the child; {'-'} when the parent is unknown; {''} when attached.
-- KEYS: 1 jobs, 2 hooks, 3 conts, 4 succeeded, 5 failed, 6 deleted, 7 results
-- ARGV: 1 parent seq, 2 child queue, 3 child seq, 4 on (s, a, d)
local id = ARGV[1]
if redis.call('HEXISTS', KEYS[1], id) == 0 then
  return {'-'}
end
local e = nil
if redis.call('ZSCORE', KEYS[4], id) then
  e = 'O'
elseif redis.call('ZSCORE', KEYS[6], id) then
  e = 'D'
elseif redis.call('ZSCORE', KEYS[5], id) then
  e = 'F'
end
if e and decide(ARGV[4], e) ~= nil then
  return {e, redis.call('HGET', KEYS[7], id) or ''}
end
local conts = {}
local cur = redis.call('HGET', KEYS[3], id)
if cur then
  conts = cjson.decode(cur)
end
-- Sent again (a retried call), it attaches once.
for _, c in ipairs(conts) do
  if c[1] == ARGV[2] and c[2] == ARGV[3] then
    return {''}
  end
end
conts[#conts + 1] = {ARGV[2], ARGV[3], ARGV[4]}
redis.call('HSET', KEYS[3], id, cjson.encode(conts))
local h = {}
local hook = redis.call('HGET', KEYS[2], id)
if hook then
  h = cjson.decode(hook)
end
h.c = 1
redis.call('HSET', KEYS[2], id, cjson.encode(h))
return {''}
