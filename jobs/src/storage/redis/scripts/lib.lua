-- Helpers prepended to every script. A job record is `counts|enqueued_ms|name|args`, where
-- `counts` is `attempts`, or `attempts:crashes:orphaned` once a lease of the job ran out; a history
-- is a string of entries `<state char><at_ms>,<reason length>:<reason>` (E enqueued, S scheduled,
-- P processing, O succeeded, F failed, D deleted), written only once a job leaves its first state.
-- A history that starts with `P` (a first attempt that succeeded) has an implicit first entry
-- `E<enqueued_ms>` the reader prepends.

-- No call unpacks more than this many values (Lua's stack limit is near 8,000).
local CHUNK = 500

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The tokens hash holds only jobs in flight, often fewer than Redis's
-- `hash-max-listpack-entries` (512 by default): Redis would then keep it as a listpack, where
-- every token lookup is a linear scan (a tenth of Redis's time per job in `e2e`). This field,
-- never a job id, has a value longer than `hash-max-listpack-value` (64 bytes), so the hash is
-- converted to a hash table and, never empty, stays one.
local TOKENS_PIN = '~'
local TOKENS_PIN_VALUE = 'pins this hash as a hash table: a small listpack would be scanned per lookup'

-- Integer formatting: `%d` avoids the floating-point printf Lua uses for numbers it converts
-- itself (a measurable share of Redis CPU in large batches). Exact up to 2^53.
local function fmt(n)
  return string.format('%d', n)
end

-- Runs `cmd key [opt] items...` in bounded chunks (CHUNK is even, so pairs stay together).
local function batched(cmd, key, items, opt)
  local n = #items
  local i = 1
  while i <= n do
    local j = math.min(i + CHUNK - 1, n)
    if opt then
      redis.call(cmd, key, opt, unpack(items, i, j))
    else
      redis.call(cmd, key, unpack(items, i, j))
    end
    i = j + 1
  end
end

-- HMGET in bounded chunks; missing fields are `false`.
local function hmget(key, fields)
  local n = #fields
  if n <= CHUNK then
    if n == 0 then
      return {}
    end
    return redis.call('HMGET', key, unpack(fields))
  end
  local out = {}
  local i = 1
  while i <= n do
    local j = math.min(i + CHUNK - 1, n)
    local part = redis.call('HMGET', key, unpack(fields, i, j))
    for k = 1, #part do
      out[i + k - 1] = part[k]
    end
    i = j + 1
  end
  return out
end

-- `at` is a number or an already formatted string (e.g. straight from ARGV).
local function entry(state, at, reason)
  reason = reason or ''
  if type(at) ~= 'string' then
    at = fmt(at)
  end
  return state .. at .. ',' .. #reason .. ':' .. reason
end

-- The attempts and enqueued time of a record, or nil when it is malformed.
local function record_head(rec)
  if not rec then
    return nil
  end
  local attempts, enqueued = string.match(rec, '^(%d+)[%d:]*|(%d+)|[^|]*|')
  return attempts, enqueued
end

-- The record with its attempt count replaced, its crash counts kept (malformed records are
-- returned unchanged).
local function with_attempts(rec, f)
  local attempts = string.match(rec, '^(%d+)[|:]')
  if not attempts then
    return rec
  end
  return fmt(f(tonumber(attempts))) .. string.sub(rec, #attempts + 1)
end

-- The record with its time (second field) replaced by `at`, a formatted number: a retry's
-- record holds its due time, where its queue wait starts (malformed records are returned
-- unchanged).
local function with_time(rec, at)
  local head = string.match(rec, '^[%d:]+|%d+|')
  if not head then
    return rec
  end
  local counts = string.match(head, '^[%d:]+|')
  return counts .. at .. string.sub(rec, #head)
end

-- The record with all its counts at zero (a requeued job starts afresh).
local function with_fresh_counts(rec)
  local counts = string.match(rec, '^[%d:]+|')
  if not counts then
    return rec
  end
  return '0' .. string.sub(rec, #counts)
end

-- The record after a lease of it ran out: one more crash when `crashed` (its start was marked),
-- one more orphaned lease otherwise. Returns the record and the new count (0, and the record
-- unchanged, when it is malformed).
local function with_lost_lease(rec, crashed)
  local counts = string.match(rec, '^[%d:]+')
  local a, c, o = string.match(counts or '', '^(%d+):(%d+):(%d+)$')
  if not a then
    a = string.match(counts or '', '^(%d+)$')
    if not a then
      return rec, 0
    end
    c, o = 0, 0
  end
  c, o = tonumber(c), tonumber(o)
  local n
  if crashed then
    c = c + 1
    n = c
  else
    o = o + 1
    n = o
  end
  return a .. ':' .. fmt(c) .. ':' .. fmt(o) .. string.sub(rec, #counts + 1), n
end

-- Appends one entry per id to the history hash. `recs[i]` is the id's record (or false), used to
-- write the implicit first entry of a job whose history was never materialised; `entries` is a
-- string (the same entry for all) or a table (one per id).
local function append_history(hist, ids, recs, entries)
  if #ids == 0 then
    return
  end
  local hs = hmget(hist, ids)
  local kv = {}
  for i = 1, #ids do
    local h = hs[i]
    if not h then
      local _, enqueued = record_head(recs[i])
      h = 'E' .. (enqueued or '0') .. ',0:'
    end
    local e = entries
    if type(entries) == 'table' then
      e = entries[i]
    end
    kv[2 * i - 1] = ids[i]
    kv[2 * i] = h .. e
  end
  batched('HSET', hist, kv)
end

-- Removes finished jobs beyond `max` or older than `ttl_ms`, at most `bound` of each per call.
-- Both kinds are the lowest-scored members of `zkey` (scores are finishing times), read first
-- (their records and histories go too) and then removed by rank: no member is looked up again.
local function trim(zkey, jobs, hist, max, ttl_ms, now, bound)
  local victims = {}
  local n = redis.call('ZCARD', zkey)
  if n > max then
    victims = redis.call('ZRANGE', zkey, '0', fmt(math.min(n - max, bound) - 1))
    if #victims > 0 then
      redis.call('ZREMRANGEBYRANK', zkey, '0', fmt(#victims - 1))
    end
  end
  local old = redis.call('ZRANGEBYSCORE', zkey, '-inf', fmt(now - ttl_ms), 'LIMIT', '0', fmt(bound))
  local k = #victims
  if #old > 0 then
    redis.call('ZREMRANGEBYRANK', zkey, '0', fmt(#old - 1))
    for i = 1, #old do
      k = k + 1
      victims[k] = old[i]
    end
  end
  if k > 0 then
    batched('HDEL', jobs, victims)
    batched('HDEL', hist, victims)
  end
end

-- Removes the lease groups `gone` (their tokens) and their counts.
local function drop_lease_groups(groups, counts, gone)
  if #gone > 0 then
    batched('ZREM', groups, gone)
    batched('HDEL', counts, gone)
  end
end

-- Ends the leases of `ids` (all checked as held): drops their tokens and start marks and counts
-- them off their fetches' lease groups, `ended[k]` jobs off the group of token `toks[k]` (each
-- token once); a group goes once none of its jobs is held. `groups` holds one member per fetch
-- (its token, scored by its lease deadline) and `counts` how many jobs each still holds: a fetch
-- of 64 jobs is one sorted-set entry, not 64. `started` (the start marks) may be nil where no
-- job can have started (a mark left behind names an older token, so it is never misread).
local function end_lease_counts(groups, counts, tokens, started, ids, toks, ended)
  if #ids == 0 then
    return
  end
  batched('HDEL', tokens, ids)
  -- Most jobs finish within the acknowledgement batch that would carry their mark: often none.
  if started and redis.call('EXISTS', started) == 1 then
    batched('HDEL', started, ids)
  end
  local gone = {}
  for k = 1, #toks do
    local t = toks[k]
    if redis.call('HINCRBY', counts, t, fmt(-ended[k])) <= 0 then
      gone[#gone + 1] = t
    end
  end
  drop_lease_groups(groups, counts, gone)
end

-- A count of ended leases per token: `toks` lists each token once, in the order first seen,
-- and `ended[k]` how many leases of `toks[k]` ended (the arguments of `end_lease_counts`).
local function new_tally()
  return {toks = {}, ended = {}, at = {}}
end

-- Counts `m` more ended leases of token `tok`.
local function tally(t, tok, m)
  local k = t.at[tok]
  if k then
    t.ended[k] = t.ended[k] + m
  else
    k = #t.toks + 1
    t.at[tok] = k
    t.toks[k] = tok
    t.ended[k] = m
  end
end

-- Ends the leases of `ids`, the i-th held under `toks[i]` (which the caller checked).
local function end_leases(groups, counts, tokens, started, ids, toks)
  local t = new_tally()
  for i = 1, #ids do
    tally(t, toks[i], 1)
  end
  end_lease_counts(groups, counts, tokens, started, ids, t.toks, t.ended)
end

-- A new table of the `n` values of `t` from index `from` on (copied by `unpack`, in one go up to
-- a bound well below Lua's stack limit).
local function slice(t, from, n)
  if n <= 4 * CHUNK then
    return {unpack(t, from, from + n - 1)}
  end
  local out = {}
  for k = 1, n do
    out[k] = t[from + k - 1]
  end
  return out
end

local function wake(key)
  if redis.call('LLEN', key) == 0 then
    redis.call('RPUSH', key, '1')
  end
end
