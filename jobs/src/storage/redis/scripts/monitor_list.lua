-- Lists one page of a queue's jobs in one state, from a cursor, with optional filters on the
-- job name and on a substring of the arguments, looking at no more than `budget` entries of the
-- state's index. Returns {total in the state, entries looked at, next cursor ('' at the end),
-- then seq, record, history ('' for none) for each job listed}.
-- KEYS: 1 the state's index, 2 jobs, 3 hist
-- ARGV: 1 kind: 'list' (pending, in queue order), 'asc' / 'desc' (a sorted set by score,
--       oldest / newest first), 'hkeys' (the tokens hash, by number), 'set' (awaiting, in scan
--       order, each scan batch sorted)
--       2 cursor ('' from the start): list `index:seq`, asc/desc `score:seq`, hkeys `seq`,
--       set a scan cursor
--       3 limit, 4 budget, 5 name ('' any), 6 substring of the arguments ('' any)
local kind, cursor = ARGV[1], ARGV[2]
local limit, budget = tonumber(ARGV[3]), tonumber(ARGV[4])
local want_name, want_text = ARGV[5], ARGV[6]
local filtered = want_name ~= '' or want_text ~= ''
local key = KEYS[1]

local out = {0, 0, ''}
local found, examined = 0, 0
local last = nil

-- Whether a record passes the filters: its third field is the name, the rest the arguments.
local function passes(rec)
  if not filtered then
    return true
  end
  local a = string.find(rec, '|', 1, true)
  local b = a and string.find(rec, '|', a + 1, true)
  local c = b and string.find(rec, '|', b + 1, true)
  if not c then
    return false
  end
  if want_name ~= '' and string.sub(rec, b + 1, c - 1) ~= want_name then
    return false
  end
  if want_text ~= '' and not string.find(rec, want_text, c + 1, true) then
    return false
  end
  return true
end

-- Looks at one index entry; returns false once the page is full or the budget spent.
local function look(seq, position)
  if found >= limit or examined >= budget then
    return false
  end
  examined = examined + 1
  last = position
  local rec = redis.call('HGET', KEYS[2], seq)
  if rec and passes(rec) then
    found = found + 1
    out[#out + 1] = seq
    out[#out + 1] = rec
    out[#out + 1] = redis.call('HGET', KEYS[3], seq) or ''
  end
  return true
end

-- A cursor `a:b` (checked by the caller).
local function split(c)
  return string.match(c, '^([^:]+):(.+)$')
end

local more = false
if kind == 'list' then
  out[1] = redis.call('LLEN', key)
  local start = 0
  if cursor ~= '' then
    local idx, seq = split(cursor)
    idx = tonumber(idx)
    if redis.call('LINDEX', key, idx) == seq then
      start = idx + 1
    else
      local p = redis.call('LPOS', key, seq, 'MAXLEN', idx + 1001)
      if p then
        start = p + 1
      end
    end
  end
  local at = start
  while true do
    local step = math.min(budget - examined, 1000)
    if step <= 0 or found >= limit then
      more = redis.call('LINDEX', key, at) ~= false
      break
    end
    local items = redis.call('LRANGE', key, at, at + step - 1)
    for i = 1, #items do
      if not look(items[i], fmt(at + i - 1) .. ':' .. items[i]) then
        more = true
        break
      end
    end
    if more or #items < step then
      break
    end
    at = at + #items
  end
elseif kind == 'asc' or kind == 'desc' then
  out[1] = redis.call('ZCARD', key)
  local desc = kind == 'desc'
  local start = 0
  local tie_score, tie_member = nil, nil
  if cursor ~= '' then
    local score, seq = split(cursor)
    local r
    if desc then
      r = redis.call('ZREVRANK', key, seq)
    else
      r = redis.call('ZRANK', key, seq)
    end
    if r and tonumber(redis.call('ZSCORE', key, seq)) == tonumber(score) then
      start = r + 1
    else
      -- The job left (or moved): go on from its score, past the ties already seen.
      if desc then
        start = redis.call('ZCOUNT', key, '(' .. score, '+inf')
      else
        start = redis.call('ZCOUNT', key, '-inf', '(' .. score)
      end
      tie_score, tie_member = tonumber(score), seq
    end
  end
  local at = start
  while true do
    local step = math.min(budget - examined, 1000)
    if step <= 0 or found >= limit then
      more = #redis.call(desc and 'ZREVRANGE' or 'ZRANGE', key, at, at) > 0
      break
    end
    local items = redis.call(desc and 'ZREVRANGE' or 'ZRANGE', key, at, at + step - 1, 'WITHSCORES')
    local n = #items / 2
    for i = 1, n do
      local member, score = items[2 * i - 1], items[2 * i]
      local seen = tie_score and tonumber(score) == tie_score
        and ((desc and member >= tie_member) or (not desc and member <= tie_member))
      if not seen then
        if not look(member, score .. ':' .. member) then
          more = true
          break
        end
      end
    end
    if more or n < step then
      break
    end
    at = at + n
  end
elseif kind == 'hkeys' then
  local seqs = {}
  local after = cursor ~= '' and tonumber(cursor) or -1
  for _, f in ipairs(redis.call('HKEYS', key)) do
    local n = tonumber(f)
    if n and n > after then
      seqs[#seqs + 1] = n
    end
  end
  out[1] = math.max(redis.call('HLEN', key) - redis.call('HEXISTS', key, TOKENS_PIN), 0)
  table.sort(seqs)
  for i = 1, #seqs do
    if not look(fmt(seqs[i]), fmt(seqs[i])) then
      more = true
      break
    end
  end
elseif kind == 'set' then
  out[1] = redis.call('SCARD', key)
  local c = cursor ~= '' and cursor or '0'
  repeat
    local r = redis.call('SSCAN', key, c, 'COUNT', math.max(limit, 100))
    c = r[1]
    local batch = r[2]
    table.sort(batch, function(x, y) return tonumber(x) < tonumber(y) end)
    for i = 1, #batch do
      -- A scan batch is taken whole (the scan cursor cannot stop inside one).
      examined = examined + 1
      local rec = redis.call('HGET', KEYS[2], batch[i])
      if rec and passes(rec) then
        found = found + 1
        out[#out + 1] = batch[i]
        out[#out + 1] = rec
        out[#out + 1] = redis.call('HGET', KEYS[3], batch[i]) or ''
      end
    end
    last = c
  until c == '0' or found >= limit or examined >= budget
  more = c ~= '0'
else
  return redis.error_reply('unknown listing ' .. kind)
end

out[2] = examined
if more and last then
  out[3] = last
end
return out
