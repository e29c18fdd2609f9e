-- Leases up to `max` jobs of one queue, after promoting due scheduled jobs and reaping expired
-- leases (at most `limit` of each). Returns {now, next event ms or -1, token, ids, records}: one
-- fencing token for the whole batch (0, and no ids or records, when nothing was taken), the ids
-- as one string, separated by commas, and the records as an array in the same order.
-- KEYS: 1 pending, 2 jobs, 3 lease groups, 4 tokens, 5 scheduled, 6 hist, 7 stats, 8 wake,
--       9 lease counts, 10 per-job leases of earlier versions (read only to reap them),
--       11 start marks
-- ARGV: 1 max, 2 lease_ms, 3 limit, 4 maintain ('1': promote, reap and report the next event;
--       '0': only lease, for back-to-back fetches of a busy worker — the caller maintains every
--       few milliseconds and always before it waits)
--       5 payload limit in bytes: a record whose arguments are longer is leased, but only the
--       length of its arguments is returned in its place (an integer), so the worker never
--       receives it (it fails the job)
local lease = tonumber(ARGV[2])
local maintain = ARGV[4] ~= '0'
local now = now_ms()
-- Numbers handed to Redis are formatted once, as integers (see `fmt`).
local now_s = fmt(now)

-- The jobs whose lease ran out, and the tokens they were held under: those still held under the
-- token of a fetch whose lease group expired (found by one pass over the tokens hash, which
-- holds only jobs in flight; expiries are rare: a worker that died or stalled), and those of the
-- per-job lease set earlier versions kept.
local function expired_jobs()
  local out, toks = {}, {}
  local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now_s, 'LIMIT', '0', ARGV[3])
  if #gone > 0 then
    local dead = {}
    for i = 1, #gone do
      dead[gone[i]] = true
    end
    local held = redis.call('HGETALL', KEYS[4])
    for i = 1, #held, 2 do
      if dead[held[i + 1]] then
        out[#out + 1] = held[i]
        toks[#out] = held[i + 1]
      end
    end
    drop_lease_groups(KEYS[3], KEYS[9], gone)
  end
  local old = redis.call('ZRANGEBYSCORE', KEYS[10], '-inf', now_s, 'LIMIT', '0', ARGV[3])
  if #old > 0 then
    batched('ZREM', KEYS[10], old)
    local held = hmget(KEYS[4], old)
    for i = 1, #old do
      if held[i] then
        out[#out + 1] = old[i]
        toks[#out] = held[i]
      end
    end
  end
  return out, toks
end

-- The length of a record's arguments: what follows its third `|` (a record without three is
-- malformed; all of it counts).
local function args_length(rec)
  local at = 0
  for _ = 1, 3 do
    at = string.find(rec, '|', at + 1, true)
    if not at then
      return #rec
    end
  end
  return #rec - at
end

local due = {}
local expired, expired_toks = {}, {}
if maintain then
  due = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now_s, 'LIMIT', '0', ARGV[3])
  expired, expired_toks = expired_jobs()
end
if #due > 0 then
  batched('ZREM', KEYS[5], due)
  batched('RPUSH', KEYS[1], due)
  append_history(KEYS[6], due, {}, entry('E', now, ''))
end

-- A lease that ran out is a crash of its job when the job was marked started under it, and an
-- orphaned lease otherwise (the job waited in its worker's buffer): never an attempt. The
-- reasons are the ones of `storage/crash_accounting.rs`.
if #expired > 0 then
  batched('HDEL', KEYS[4], expired)
  local marks = {}
  if redis.call('EXISTS', KEYS[11]) == 1 then
    marks = hmget(KEYS[11], expired)
    batched('HDEL', KEYS[11], expired)
  end
  local recs = hmget(KEYS[2], expired)
  local kv, entries, back, later = {}, {}, {}, {}
  for i = 1, #expired do
    local crashed = marks[i] and marks[i] == expired_toks[i]
    local n = 0
    if recs[i] then
      local rec
      rec, n = with_lost_lease(recs[i], crashed)
      kv[#kv + 1] = expired[i]
      kv[#kv + 1] = rec
    end
    if crashed then
      -- Runs again after a pause of `n` seconds, jittered to 50-150 % (by its number and the
      -- time: scripts have no randomness of their own), as `storage/crash_accounting.rs` says.
      local jitter = 500 + (tonumber(expired[i]) * 7919 + now) % 1001
      local at = now + math.max(n, 1) * jitter
      later[#later + 1] = fmt(at)
      later[#later + 1] = expired[i]
      entries[i] = entry('S', now,
        'lease expired while it ran: its worker died or hung (crash ' .. fmt(n) .. ')')
    else
      back[#back + 1] = expired[i]
      entries[i] = entry('E', now, 'lease expired before it started: its worker stopped or '
        .. 'hung; handed back without counting an attempt')
    end
  end
  batched('HSET', KEYS[2], kv)
  append_history(KEYS[6], expired, recs, entries)
  batched('LPUSH', KEYS[1], back)
  batched('ZADD', KEYS[5], later)
end

local out = {now, -1, 0}
-- A paused queue (see `monitor.rs`) is maintained but leases nothing.
local paused = redis.call('HEXISTS', KEYS[7], 'paused') == 1
local ids = not paused and redis.call('LPOP', KEYS[1], ARGV[1])
if ids then
  local recs = hmget(KEYS[2], ids)
  -- One fencing token per fetch: a job fetched again later always gets a newer one, which is all
  -- fencing needs. The token also names the fetch's lease group: one deadline for all its jobs.
  local token = fmt(redis.call('HINCRBY', KEYS[7], 'token', 1))
  -- Records are returned as stored, beside their ids (`false`, a nil reply, for an id whose
  -- record is gone: it is dropped, not leased). The caller decodes them and fails the ones it
  -- cannot (a pattern match per record here cost more than a seventh of fetch and complete).
  out[3] = token
  -- One string for all ids: each element of a script's reply costs Redis more than the id.
  out[4] = table.concat(ids, ',')
  out[5] = recs
  -- The pin rides along in the first HSET: Redis converts the hash before inserting the rest.
  -- (`#t`, a search for the table's border, is avoided per element: `k` counts.)
  local tokens, k = {TOKENS_PIN, TOKENS_PIN_VALUE}, 2
  local max_payload = tonumber(ARGV[5])
  for i = 1, #ids do
    local rec = recs[i]
    if rec then
      tokens[k + 1] = ids[i]
      tokens[k + 2] = token
      k = k + 2
      -- Only a record this long can hold arguments over the limit (one comparison per job):
      -- their exact length, past the record's three other fields, is found for those alone.
      if #rec > max_payload then
        local size = args_length(rec)
        if size > max_payload then
          recs[i] = size
        end
      end
    end
  end
  local leased = k / 2 - 1
  if leased > 0 then
    batched('HSET', KEYS[4], tokens)
    redis.call('ZADD', KEYS[3], fmt(now + lease), token)
    redis.call('HSET', KEYS[9], token, fmt(leased))
  end
end

-- Wake another waiting worker while work remains; clear a stale signal otherwise.
if not paused and redis.call('LLEN', KEYS[1]) > 0 then
  wake(KEYS[8])
else
  redis.call('DEL', KEYS[8])
end

local nxt = -1
if maintain then
  for _, key in ipairs({KEYS[5], KEYS[3], KEYS[10]}) do
    local s = redis.call('ZRANGE', key, '0', '0', 'WITHSCORES')
    if s[2] and (nxt < 0 or tonumber(s[2]) < nxt) then
      nxt = tonumber(s[2])
    end
  end
end
out[2] = nxt
return out
