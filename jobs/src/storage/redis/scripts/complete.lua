-- Records the end of attempts whose lease is still held. Returns one character per completion
-- ('1' applied, '0' not: the lease was lost, '2' applied and the job's continuations must now be
-- decided, it has flow hooks), or '' when all were applied with nothing to decide.
-- KEYS: 1 jobs, 2 lease groups, 3 tokens, 4 scheduled, 5 failed, 6 succeeded, 7 deleted, 8 hist,
--       9 stats, 10 wake, 11 hooks, 12 unique, 13 outbox, 14 results, 15 presult, 16 batches,
--       17 cancels, 18 lease counts, 19 start marks
-- ARGV: 1 succeeded_max, 2 succeeded_ttl_ms, 3 deleted_max, 4 deleted_ttl_ms, 5 the number S of
--       plain successes (no result to keep), 6 the number G of tokens they were leased under;
--       then G pairs token, count (the plain successes of each token, in order); then the S
--       plain successes' ids, then their started_ms; then per other completion: id, token,
--       started_ms, kind (O, S, F, D), at_ms, reason, result
local W = 7
local S, G = tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_ms()
-- Formatted once: scores handed to Redis as Lua numbers are formatted per element.
local now_s = fmt(now)
if not S or not G then
  return redis.error_reply('complete: malformed counts of plain successes')
end
-- Where the plain successes' ids and starts begin, and the last argument before the others.
local IDS = 7 + 2 * G
local STARTS = IDS + S
local HEAD = STARTS + S - 1
local n = S + (#ARGV - HEAD) / W
if n % 1 ~= 0 then
  return redis.error_reply('complete: malformed arguments')
end
-- Where completion i's arguments start in ARGV (past the plain successes).
local function base(i)
  return HEAD + (i - S - 1) * W
end
local function start_of(i)
  if i <= S then
    return ARGV[STARTS + i - 1]
  end
  return ARGV[base(i) + 3]
end
-- The ids of all completions: the plain successes' copied from ARGV in one go (no Lua loop per
-- job), then the others'.
local ids = slice(ARGV, IDS, S)
for i = S + 1, n do
  ids[i] = ARGV[base(i) + 1]
end
local held = hmget(KEYS[3], ids)
-- The caller sends each lease at most once (a repeated one would be applied twice).
-- res[i]: '0' lost (the lease is no longer held), '2' applied with continuations to decide;
-- applied otherwise. Usually empty, and answered as ''.
local res, lost = {}, 0
-- The leases that end, counted per token.
local ended = new_tally()
local i = 0
for g = 1, G do
  local tok, m = ARGV[5 + 2 * g], tonumber(ARGV[6 + 2 * g])
  if not m or m < 1 or i + m > S then
    return redis.error_reply('complete: malformed group of successes at argument ' .. (5 + 2 * g))
  end
  local kept = 0
  for _ = 1, m do
    i = i + 1
    if held[i] == tok then
      kept = kept + 1
    else
      res[i] = '0'
      lost = lost + 1
    end
  end
  if kept > 0 then
    tally(ended, tok, kept)
  end
end
if i ~= S then
  return redis.error_reply('complete: the groups of successes do not add up to ' .. S)
end
for j = S + 1, n do
  local tok = ARGV[base(j) + 2]
  if held[j] == tok then
    tally(ended, tok, 1)
  else
    res[j] = '0'
    lost = lost + 1
  end
end
local function answer()
  if next(res) == nil then
    return ''
  end
  local chars = {}
  for j = 1, n do
    chars[j] = res[j] or '1'
  end
  return table.concat(chars)
end
if lost == n then
  return answer()
end
-- The applied completions: the j-th is completion ok_at(j). Usually all of them.
local ok, ok_ids = nil, ids
if lost > 0 then
  ok, ok_ids = {}, {}
  for j = 1, n do
    if not res[j] then
      ok[#ok + 1] = j
      ok_ids[#ok_ids + 1] = ids[j]
    end
  end
end
local function ok_at(j)
  if ok then
    return ok[j]
  end
  return j
end
end_lease_counts(KEYS[2], KEYS[18], KEYS[3], KEYS[19], ok_ids, ended.toks, ended.ended)
-- The attempt is over, so is any cancel request made while it ran.
if redis.call('EXISTS', KEYS[17]) == 1 then
  batched('HDEL', KEYS[17], ok_ids)
end
-- The kind of completion i (plain successes have none in ARGV).
local function kind_of(i)
  if i <= S then
    return 'O'
  end
  return ARGV[base(i) + 4]
end
-- A success reads and rewrites neither the record nor its implicit first history entry: its
-- attempt count is the stored one plus the attempt that succeeded (the reader adds it), and a
-- history that starts with the start of an attempt was enqueued at the record's time (the reader
-- prepends that entry). Only its own entries are appended. Other ends rewrite the record.
local done, done_ids, other, other_ids = nil, ok_ids, {}, {}
local succeeded, scheduled, failed, deleted = {}, {}, {}, {}
if lost > 0 or S < n then
  -- done[j] is the j-th success's completion (all of them are plain successes otherwise).
  done, done_ids = {}, {}
  for j = 1, #ok_ids do
    local i = ok_at(j)
    if kind_of(i) == 'O' then
      done[#done + 1] = i
      done_ids[#done_ids + 1] = ids[i]
    else
      other[#other + 1] = i
      other_ids[#other_ids + 1] = ids[i]
    end
  end
end
if #done_ids > 0 then
  local hs = hmget(KEYS[8], done_ids)
  local done_entry = ',0:O' .. now_s .. ',0:'
  local kv = {}
  for j = 1, #done_ids do
    local id = done_ids[j]
    kv[2 * j - 1] = id
    kv[2 * j] = (hs[j] or '') .. 'P' .. start_of(done and done[j] or j) .. done_entry
    succeeded[2 * j - 1] = now_s
    succeeded[2 * j] = id
  end
  batched('HSET', KEYS[8], kv)
end
if #other > 0 then
  local recs = hmget(KEYS[1], other_ids)
  local jobs, entries = {}, {}
  local bump = function(a) return a + 1 end
  for j = 1, #other do
    local i = other[j]
    local b = base(i)
    local id = ids[i]
    local kind = ARGV[b + 4]
    local reason = ARGV[b + 6]
    if recs[j] then
      jobs[#jobs + 1] = id
      local rec = with_attempts(recs[j], bump)
      if kind == 'S' then
        rec = with_time(rec, ARGV[b + 5])
      end
      jobs[#jobs + 1] = rec
    end
    local e = entry('P', start_of(i), '')
    if kind == 'S' then
      scheduled[#scheduled + 1] = ARGV[b + 5]
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
  redis.call('HINCRBY', KEYS[9], 'succeeded', fmt(#succeeded / 2))
end
if #failed > 0 then
  redis.call('HINCRBY', KEYS[9], 'failed', fmt(#failed / 2))
end
local bound = #ok_ids + 100
trim(KEYS[6], KEYS[1], KEYS[8], tonumber(ARGV[1]), tonumber(ARGV[2]), now, bound)
trim(KEYS[7], KEYS[1], KEYS[8], tonumber(ARGV[3]), tonumber(ARGV[4]), now, bound)
if #scheduled > 0 then
  wake(KEYS[10])
end
-- Flow hooks: only queues that hold jobs with hooks pay more than this EXISTS.
if redis.call('EXISTS', KEYS[11]) == 1 then
  local hooks = hmget(KEYS[11], ok_ids)
  for j = 1, #ok_ids do
    local i = ok_at(j)
    local kind = kind_of(i)
    local result = ''
    if i > S then
      result = ARGV[base(i) + 7]
    end
    if hooks[j] and kind ~= 'S' then
      if hook_ended(KEYS[11], KEYS[12], KEYS[13], KEYS[14], KEYS[15], KEYS[16], ids[i], hooks[j],
          kind, result) then
        res[i] = '2'
      end
    end
  end
end
return answer()
