-- Helpers of the flow scripts (unique jobs, continuations, limits). `hooks` maps a job to a JSON
-- object of the flow data it has: `u` its unique key, `c` continuations wait on it, `r` it holds
-- its parent's result, `b` the batch it belongs to. A batch's counters live in the batches hash
-- as fields `<batch>:t` (total), `:s` (succeeded), `:f` (failed), `:c` (has a continuation);
-- a finished batch is in `batches_done` by finish time, and goes with its counters by retention.
-- Plain jobs have no entry, so they cost the hot path nothing but one
-- EXISTS per completed batch.

-- Whether the continuation condition `on` (s, a, d) is met by the end `e` (O, F, D):
-- 1 run it, 0 delete it, nil keep waiting.
local function decide(on, e)
  if e == 'O' then
    if on == 'd' then return 0 end
    return 1
  end
  if e == 'D' then
    if on == 's' then return 0 end
    return 1
  end
  if e == 'F' and on == 'a' then
    return 1
  end
  return nil
end

-- Applies the end `e` of job `id` whose hook is `hook` (JSON): frees its unique key, drops its
-- parent result, queues its continuations in the outbox. Returns whether the outbox grew.
-- Keys: hooks, unique, outbox, results, presult, batches. `result` is its JSON return value or ''.
local function hook_ended(hooks, unique, outbox, results, presult, batches, id, hook, e, result)
  local h = cjson.decode(hook)
  local fired = false
  if h.b then
    local b = tostring(h.b)
    if e == 'O' then
      local done = redis.call('HINCRBY', batches, b .. ':s', 1)
      local total = tonumber(redis.call('HGET', batches, b .. ':t') or '0')
      -- Every finished batch goes to the outbox: its continuation (if any) is decided there,
      -- and its counters are kept for the retention of succeeded jobs from then on
      -- (`continuation_commit.lua`).
      if done == total then
        redis.call('RPUSH', outbox, b .. '|O')
        fired = true
      end
      h.b = nil
    elseif e == 'F' then
      redis.call('HINCRBY', batches, b .. ':f', 1)
    else
      h.b = nil
    end
  end
  if h.u then
    local cur = redis.call('HGET', unique, h.u)
    if cur and string.match(cur, '^(%d+)|') == id then
      redis.call('HDEL', unique, h.u)
    end
    h.u = nil
  end
  if h.r then
    redis.call('HDEL', presult, id)
    h.r = nil
  end
  if h.c then
    if e == 'O' and result ~= '' then
      redis.call('HSET', results, id, result)
    end
    redis.call('RPUSH', outbox, id .. '|' .. e)
    fired = true
  end
  if next(h) == nil then
    redis.call('HDEL', hooks, id)
  else
    redis.call('HSET', hooks, id, cjson.encode(h))
  end
  return fired
end

-- Ends job `id` (record `rec`, already out of every state index) Deleted with `reason`: records
-- it, trims the deleted jobs kept and settles its flow hooks. `K` are the keys `delete.lua` and
-- `cancel.lua` share: 1 jobs, 5 deleted, 6 hist, 9-14 hooks, unique, outbox, results, presult,
-- batches. Returns whether continuations must now be decided.
local function deleted_now(K, id, rec, now, reason, max, ttl)
  redis.call('ZADD', K[5], now, id)
  append_history(K[6], {id}, {rec}, entry('D', now, reason))
  trim(K[5], K[1], K[6], max, ttl, now, 100)
  local hook = redis.call('HGET', K[9], id)
  return hook and hook_ended(K[9], K[10], K[11], K[12], K[13], K[14], id, hook, 'D', '') or false
end

-- How long a continuation's decision waits for the continuation to be stored (see
-- `continuation_decide.lua`): far longer than a `continue_with` takes between its two steps.
local EARLY_TTL_MS = 24 * 3600 * 1000

-- Makes the awaiting continuation `id` (already out of the awaiting set) ready (`run`) or
-- deletes it. `K` are the keys `continuation_decide.lua` and `continuation_create.lua` share:
-- 1 awaiting, 2 pending, 3 jobs, 4 hist, 5 wake, 6 deleted, 7 presult, 8 hooks. The caller
-- wakes fetches.
local function decide_awaiting(K, id, run, result, now)
  local rec = redis.call('HGET', K[3], id)
  if run then
    if result ~= '' then
      redis.call('HSET', K[7], id, result)
      local h = {}
      local hook = redis.call('HGET', K[8], id)
      if hook then
        h = cjson.decode(hook)
      end
      h.r = 1
      redis.call('HSET', K[8], id, cjson.encode(h))
    end
    append_history(K[4], {id}, {rec}, entry('E', now, 'parent finished'))
    redis.call('RPUSH', K[2], id)
  else
    redis.call('ZADD', K[6], now, id)
    append_history(K[4], {id}, {rec},
      entry('D', now, 'parent ended without meeting the continuation\'s condition'))
  end
end

-- Drops from the concurrency-slot set `slots` the holders (`seq|token`) whose lease ended or ran
-- out (a set left with none is gone), and returns how many are still live. `groups` and
-- `tokens` are the lease groups and tokens of the queue.
local function live_holders(slots, groups, tokens, now)
  local live = 0
  for _, m in ipairs(redis.call('SMEMBERS', slots)) do
    local s, t = string.match(m, '^(%d+)|(%d+)$')
    local deadline = s and redis.call('ZSCORE', groups, t)
    if s and redis.call('HGET', tokens, s) == t and deadline and tonumber(deadline) > now then
      live = live + 1
    else
      redis.call('SREM', slots, m)
    end
  end
  return live
end
