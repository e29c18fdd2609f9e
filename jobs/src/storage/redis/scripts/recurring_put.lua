-- Stores a recurring job's entry if the one there is still at the revision the caller read
-- (0: none), so two registrations racing cannot lose one another's revision bump.
-- KEYS: 1 recurring
-- ARGV: 1 id, 2 expected revision, 3 entry
-- Returns 1 when stored, 0 when the entry changed meanwhile.
local rec = redis.call('HGET', KEYS[1], ARGV[1])
local rev = '0'
if rec then
  rev = string.match(rec, '^(%d+)|') or '0'
end
if rev ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
