-- Records the end of attempts whose lease is still held. Returns 1 (applied) or 0 per completion.
-- A completion whose job has flow hooks and whose continuations must now be decided returns 2.
-- KEYS: 1 jobs, 2 leases, 3 tokens, 4 scheduled, 5 failed, 6 succeeded, 7 deleted, 8 hist,
--       9 stats, 10 wake, 11 hooks, 12 unique, 13 outbox, 14 results, 15 presult, 16 batches, 17 cancels
-- ARGV: 1 succeeded_max, 2 succeeded_ttl_ms, 3 deleted_max, 4 deleted_ttl_ms, 5 the number S of
--       plain successes, then per plain success (no result to keep): id, token, started_ms;
--       then per other completion: id, token, started_ms, kind (O, S, F, D), at_ms, reason, result
local W = 7
local S = tonumber(ARGV[5])
local HEAD = 5 + 3 * S
local now = now_ms()
-- Formatted once: scores handed to Redis as Lua numbers are formatted per element.
local now_s = fmt(now)
local n = S + (#ARGV - HEAD) / W
-- Where completion i's id sits in ARGV (its token and start follow it).
local function at(i)
  if i <= S then
    return 6 + 3 * (i - 1)
  end
  return HEAD + 1 + (i - S - 1) * W
end
local ids = {}
for i = 1, n do
  ids[i] = ARGV[at(i)]
end
local held = hmget(KEYS[3], ids)
local res, ok, ok_at, seen = {}, {}, {}, {}
local res_at = {}
for i = 1, n do
  local base = at(i) - 1
  if held[i] and held[i] == ARGV[base + 2] and not seen[ids[i]] then
    seen[ids[i]] = true
    res[i] = 1
    ok[#ok + 1] = ids[i]
    ok_at[#ok_at + 1] = base
    res_at[#ok] = i
  else
    res[i] = 0
  end
end
if #ok == 0 then
  return res
end
batched('ZREM', KEYS[2], ok)
batched('HDEL', KEYS[3], ok)
-- The attempt is over, so is any cancel request made while it ran.
if redis.call('EXISTS', KEYS[17]) == 1 then
  batched('HDEL', KEYS[17], ok)
end
-- A success reads and rewrites neither the record nor its implicit first history entry: its
-- attempt count is the stored one plus the attempt that succeeded (the reader adds it), and a
-- history that starts with the start of an attempt was enqueued at the record's time (the reader
-- prepends that entry). Only its own entries are appended. Other ends rewrite the record.
local done_ids, done_tail, other_ids, other_at = {}, {}, {}, {}
local succeeded, scheduled, failed, deleted = {}, {}, {}, {}
local done_entry = 'O' .. now_s .. ',0:'
local kinds = {}
for j = 1, #ok do
  local base = ok_at[j]
  local kind = 'O'
  if res_at[j] > S then
    kind = ARGV[base + 4]
  end
  kinds[j] = kind
  if kind == 'O' then
    done_ids[#done_ids + 1] = ok[j]
    done_tail[#done_tail + 1] = 'P' .. ARGV[base + 3] .. ',0:' .. done_entry
    succeeded[#succeeded + 1] = now_s
    succeeded[#succeeded + 1] = ok[j]
  else
    other_ids[#other_ids + 1] = ok[j]
    other_at[#other_at + 1] = base
  end
end
if #done_ids > 0 then
  local hs = hmget(KEYS[8], done_ids)
  local kv = {}
  for i = 1, #done_ids do
    kv[#kv + 1] = done_ids[i]
    kv[#kv + 1] = (hs[i] or '') .. done_tail[i]
  end
  batched('HSET', KEYS[8], kv)
end
if #other_ids > 0 then
  local recs = hmget(KEYS[1], other_ids)
  local jobs, entries = {}, {}
  local bump = function(a) return a + 1 end
  for j = 1, #other_ids do
    local base = other_at[j]
    local id = other_ids[j]
    local kind = ARGV[base + 4]
    local reason = ARGV[base + 6]
    if recs[j] then
      jobs[#jobs + 1] = id
      jobs[#jobs + 1] = with_attempts(recs[j], bump)
    end
    local e = entry('P', ARGV[base + 3], '')
    if kind == 'S' then
      scheduled[#scheduled + 1] = ARGV[base + 5]
      scheduled[#scheduled + 1] = id
      e = e .. entry('S', now_s, reason)
    elseif kind == 'F' then
      failed[#failed + 1] = now_s
      failed[#failed + 1] = id
      e = e .. entry('F', now_s, reason)
    else
      deleted[#deleted + 1] = now_s
      deleted[#deleted + 1] = id
      e = e .. entry('D', now_s, reason)
    end
    entries[j] = e
  end
  batched('HSET', KEYS[1], jobs)
  append_history(KEYS[8], other_ids, recs, entries)
end
batched('ZADD', KEYS[6], succeeded)
batched('ZADD', KEYS[4], scheduled)
batched('ZADD', KEYS[5], failed)
batched('ZADD', KEYS[7], deleted)
if #succeeded > 0 then
  redis.call('HINCRBY', KEYS[9], 'succeeded', #succeeded / 2)
end
if #failed > 0 then
  redis.call('HINCRBY', KEYS[9], 'failed', #failed / 2)
end
local bound = #ok + 100
trim(KEYS[6], KEYS[1], KEYS[8], tonumber(ARGV[1]), tonumber(ARGV[2]), now, bound)
trim(KEYS[7], KEYS[1], KEYS[8], tonumber(ARGV[3]), tonumber(ARGV[4]), now, bound)
if #scheduled > 0 then
  wake(KEYS[10])
end
-- Flow hooks: only queues that hold jobs with hooks pay more than this EXISTS.
if redis.call('EXISTS', KEYS[11]) == 1 then
  local hooks = hmget(KEYS[11], ok)
  for j = 1, #ok do
    local base = ok_at[j]
    local kind = kinds[j]
    local result = ''
    if res_at[j] > S then
      result = ARGV[base + 7]
    end
    if hooks[j] and kind ~= 'S' then
      if hook_ended(KEYS[11], KEYS[12], KEYS[13], KEYS[14], KEYS[15], KEYS[16], ok[j], hooks[j], kind,
          result) then
        res[res_at[j]] = 2
      end
    end
  end
end
return res
