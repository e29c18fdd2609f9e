-- Helpers of the flow scripts (unique jobs, continuations, limits). `hooks` maps a job to a JSON
-- object of the flow data it has: `u` its unique key, `c` continuations wait on it, `r` it holds
-- its parent's result. Plain jobs have no entry, so they cost the hot path nothing but one
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
-- Keys: hooks, unique, outbox, results, presult. `result` is its JSON return value or ''.
local function hook_ended(hooks, unique, outbox, results, presult, id, hook, e, result)
  local h = cjson.decode(hook)
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
  local fired = false
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
