-- Shared by every script. All keys start with the prefix in ARGV[1]; a job lives in
-- the hash <p>job:<id>, waits in <p>waiting:<user> (scored by priority, then arrival),
-- and <p>ring lists the users that have waiting jobs, in claim order.
local p = ARGV[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Lower priority first, then arrival: 2^40 arrivals fit below one priority step.
local function waiting_score(priority, seq)
  return tonumber(priority) * 1099511627776 + tonumber(seq)
end

local function add_waiting(id, user, priority, seq)
  local wk = p .. 'waiting:' .. user
  if redis.call('ZCARD', wk) == 0 then
    redis.call('RPUSH', p .. 'ring', user)
  end
  redis.call('ZADD', wk, waiting_score(priority, seq), id)
end

local function remove_waiting(id, user)
  local wk = p .. 'waiting:' .. user
  local removed = redis.call('ZREM', wk, id)
  if removed == 1 and redis.call('ZCARD', wk) == 0 then
    redis.call('LREM', p .. 'ring', 0, user)
  end
  return removed
end

-- Tells one idle worker there is work; the list is capped so it never grows unbounded.
local function wake_one(id)
  redis.call('LPUSH', p .. 'wake', id)
  redis.call('LTRIM', p .. 'wake', 0, 999)
end

local function finish(id, state, error_text)
  local jk = p .. 'job:' .. id
  local now = now_ms()
  redis.call('ZREM', p .. 'active', id)
  redis.call('HSET', jk, 'state', state, 'finished_at', now)
  if error_text and error_text ~= '' then
    redis.call('HSET', jk, 'error', error_text)
  end
  redis.call('HDEL', jk, 'token', 'lease_until')
  redis.call('ZADD', p .. state, now, id)
  redis.call('HINCRBY', p .. 'stats', state, 1)
end

-- How many claims until this waiting job runs (1 = next). The claim serves the ring's
-- users in turn, one job each, so a job of rank r in its user's queue waits for up to
-- r+1 jobs of each user ahead of its user in the ring and up to r of each user after.
local function position(id)
  local jk = p .. 'job:' .. id
  if redis.call('HGET', jk, 'state') ~= 'waiting' then
    return -1
  end
  local user = redis.call('HGET', jk, 'user_id')
  local rank = redis.call('ZRANK', p .. 'waiting:' .. user, id)
  if not rank then
    return -1
  end
  local pos = rank + 1
  local ahead = true
  for _, other in ipairs(redis.call('LRANGE', p .. 'ring', 0, -1)) do
    if other == user then
      ahead = false
    else
      local n = redis.call('ZCARD', p .. 'waiting:' .. other)
      if ahead then
        pos = pos + math.min(n, rank + 1)
      else
        pos = pos + math.min(n, rank)
      end
    end
  end
  return pos
end

local function job_fields(id)
  return redis.call('HGETALL', p .. 'job:' .. id)
end
